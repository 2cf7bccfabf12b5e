//! Softmax cross-entropy from logits ([`CrossEntropy`], mean over the batch) and the
//! number of correct predictions ([`CorrectCount`]).

use crate::error::{Error, Result};
use crate::nn::bindings::{DLOGITS, DLOSS, Family, LABELS, LOGITS, OUT, ROWS, uniform_block};
use crate::nn::dispatch::Dispatch;
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Op};
use crate::nn::tensor::{DType, Tensor};

uniform_block! {
    /// The uniform block of `nn_loss.wgsl`.
    struct LossParams {
        rows: u32,
        classes: u32,
        /// `reduce_sum`: the stride between summed entries of `rows`.
        stride: u32,
        /// `reduce_sum`: the factor applied to the sum.
        scale: f32,
        /// [`GradMode::flag`] of the logits' gradient.
        accumulate: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

/// The bindings of `nn_loss.wgsl`.
pub(crate) const LOSS: Family =
    Family::new::<LossParams>(&[LOGITS, LABELS, ROWS, OUT, DLOSS, DLOGITS]);

impl LossParams {
    fn new(rows: usize, classes: usize) -> Self {
        Self {
            rows: rows as u32,
            classes: classes as u32,
            stride: 1,
            scale: 1.0,
            ..Default::default()
        }
    }
}

/// Logits `[rows, classes]` (f32) and their labels `[rows]` (u32): the inputs of both
/// ops of this module.
#[derive(Debug)]
struct LabelledLogits {
    logits: Var,
    labels: Var,
    rows: usize,
    classes: usize,
}

impl LabelledLogits {
    /// Checks the shapes and dtypes; `op` names the op in the error.
    fn new(g: &GraphBuilder, op: &str, logits: Var, labels: Var) -> Result<Self> {
        let (sl, sy) = (g.shape(logits), g.shape(labels));
        if g.dtype(logits) != DType::F32
            || g.dtype(labels) != DType::U32
            || sl.len() != 2
            || sy != [sl[0]]
            || sl[1] == 0
        {
            return Err(Error::shape(
                op,
                format!("logits {sl:?} (f32 [batch, classes]) and labels {sy:?} (u32 [batch])"),
            ));
        }
        Ok(Self {
            logits,
            labels,
            rows: sl[0],
            classes: sl[1],
        })
    }

    fn inputs(&self) -> Vec<Var> {
        vec![self.logits, self.labels]
    }

    /// The per-row kernel `kernel` into `rows` and their sum scaled by `scale` into
    /// `out` (`stride` entries of `rows` per row).
    fn rows_then_sum(
        &self,
        cx: &CompileCx<'_>,
        (kernel, rows, stride): (Kernel, &Tensor, usize),
        scale: f32,
        out: Var,
    ) -> [Dispatch; 2] {
        let (x, y) = (cx.value(self.logits), cx.value(self.labels));
        let p = LossParams::new(self.rows, self.classes);
        let per_row = cx.launch(
            kernel,
            &p,
            &[(LOGITS, x), (LABELS, y), (ROWS, rows)],
            self.rows,
        );
        let sum = LossParams {
            stride: stride as u32,
            scale,
            ..p
        };
        let reduce = cx.launch(
            Kernel::ReduceSum,
            &sum,
            &[(ROWS, rows), (OUT, cx.value(out))],
            1,
        );
        [per_row, reduce]
    }
}

/// Mean softmax cross-entropy, `[1]`.
#[derive(Debug)]
pub(crate) struct CrossEntropy(LabelledLogits);

impl CrossEntropy {
    pub fn new(g: &GraphBuilder, logits: Var, labels: Var) -> Result<(Self, Vec<usize>)> {
        Ok((
            Self(LabelledLogits::new(g, "cross_entropy", logits, labels)?),
            vec![1],
        ))
    }
}

impl Op for CrossEntropy {
    fn inputs(&self) -> Vec<Var> {
        self.0.inputs()
    }

    fn differentiable(&self, slot: usize) -> bool {
        slot == 0
    }

    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let ll = &self.0;
        // rows[2r] = loss of row r, rows[2r + 1] = its log-sum-exp.
        let rows = cx.scratch(&[ll.rows, 2], "coptim cross-entropy rows")?;
        let mean = 1.0 / ll.rows as f32;
        let forward = ll.rows_then_sum(cx, (Kernel::CeForwardRows, &rows, 2), mean, out);
        let mut compiled = Compiled {
            forward: forward.to_vec(),
            backward: Vec::new(),
        };
        if let Some((dloss, dx, mode)) = cx.backward(out, ll.logits, modes[0]) {
            let p = LossParams {
                accumulate: mode.flag(),
                ..LossParams::new(ll.rows, ll.classes)
            };
            let (x, y) = (cx.value(ll.logits), cx.value(ll.labels));
            compiled.backward.push(cx.launch(
                Kernel::CeBackward,
                &p,
                &[
                    (LOGITS, x),
                    (LABELS, y),
                    (ROWS, &rows),
                    (DLOSS, &dloss),
                    (DLOGITS, dx),
                ],
                ll.rows * ll.classes,
            ));
        }
        Ok(compiled)
    }
}

/// Number of rows whose argmax is the label, `[1]` (f32).
#[derive(Debug)]
pub(crate) struct CorrectCount(LabelledLogits);

impl CorrectCount {
    pub fn new(g: &GraphBuilder, logits: Var, labels: Var) -> Result<(Self, Vec<usize>)> {
        Ok((
            Self(LabelledLogits::new(g, "correct_count", logits, labels)?),
            vec![1],
        ))
    }
}

impl Op for CorrectCount {
    fn inputs(&self) -> Vec<Var> {
        self.0.inputs()
    }

    fn differentiable(&self, _slot: usize) -> bool {
        false
    }

    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        _modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let rows = cx.scratch(&[self.0.rows], "coptim correct rows")?;
        let forward = self
            .0
            .rows_then_sum(cx, (Kernel::CorrectRows, &rows, 1), 1.0, out);
        Ok(Compiled {
            forward: forward.to_vec(),
            backward: Vec::new(),
        })
    }
}
