//! Softmax cross-entropy from logits ([`CrossEntropy`], mean over the batch) and the
//! number of correct predictions ([`CorrectCount`]).

use crate::error::Result;
use crate::nn::bindings::{DLOSS, DX, Family, LABELS, MASK, OUT, ROWS, TARGET, X, uniform_block};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{CompileCx, Compiled, Modes, Op, reject_shape};
use crate::nn::tensor::{DType, Tensor, numel};

uniform_block! {
    /// The uniform block of `nn_loss.wgsl`.
    struct LossParams {
        rows: u32,
        /// Logits per row; the masked MSE's features per row (P).
        classes: u32,
        /// `reduce_sum`: the stride between summed entries of `rows`.
        stride: u32,
        /// `reduce_sum`: the factor applied to the sum.
        scale: f32,
        /// [`GradMode::flag`] of the logits' gradient.
        accumulate: u32,
        /// The masked MSE normalizes each target row (norm_pix_loss) when not 0.
        norm_target: u32,
        pad1: u32,
        pad2: u32,
    }
}

/// The bindings of `nn_loss.wgsl`.
pub(crate) const LOSS: Family =
    Family::new::<LossParams>(&[X, LABELS, TARGET, MASK, ROWS, OUT, DLOSS, DX]);

impl LossParams {
    /// The block of `rows` rows of `classes` entries (sum stride 1, scale 1).
    pub(super) fn new(rows: usize, classes: usize) -> Self {
        Self {
            rows: rows as u32,
            classes: classes as u32,
            stride: 1,
            scale: 1.0,
            ..Default::default()
        }
    }
}

/// Mean softmax cross-entropy of logits and labels, `[1]`.
pub(crate) type CrossEntropy = LabelledLogits<false>;
/// Number of rows whose argmax is the label, `[1]` (f32); not differentiable.
pub(crate) type CorrectCount = LabelledLogits<true>;

/// An op on logits `[..., classes]` (f32, `rows` rows) and their labels `[...]` (u32):
/// [`CrossEntropy`], or [`CorrectCount`] when `COUNT_CORRECT`.
#[derive(Debug)]
pub(crate) struct LabelledLogits<const COUNT_CORRECT: bool> {
    logits: Var,
    labels: Var,
    rows: usize,
    classes: usize,
}

impl<const COUNT_CORRECT: bool> LabelledLogits<COUNT_CORRECT> {
    /// Checks the shapes and dtypes.
    pub fn new(g: &GraphBuilder, logits: Var, labels: Var) -> Result<(Self, Vec<usize>)> {
        let op = match COUNT_CORRECT {
            true => "correct_count",
            false => "cross_entropy",
        };
        let (sl, sy) = (g.shape(logits), g.shape(labels));
        reject_shape(
            g.dtype(logits) != DType::F32
                || g.dtype(labels) != DType::U32
                || sl.len() < 2
                || sy != &sl[..sl.len() - 1]
                || sl[sl.len() - 1] == 0,
            op,
            || format!("logits {sl:?} (f32 [..., classes]) and labels {sy:?} (u32 [...])"),
        )?;
        let op = Self {
            logits,
            labels,
            rows: numel(sy),
            classes: sl[sl.len() - 1],
        };
        Ok((op, vec![1]))
    }

    /// The per-row kernel `kernel` into `rows` and their sum scaled by `scale` into
    /// `out` (`stride` entries of `rows` per row).
    fn rows_then_sum(
        &self,
        cx: &CompileCx<'_>,
        (kernel, rows, stride): (Kernel, &Tensor, usize),
        scale: f32,
        out: Var,
    ) -> Compiled {
        let (x, y) = (cx.value(self.logits), cx.value(self.labels));
        let p = LossParams::new(self.rows, self.classes);
        let per_row = cx.launch(kernel, &p, &[(X, x), (LABELS, y), (ROWS, rows)], self.rows);
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
        Compiled {
            forward: vec![per_row, reduce],
            backward: Vec::new(),
        }
    }

    /// Per-row losses and log-sum-exps, their mean, and the logits' gradient.
    fn cross_entropy(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: Modes<'_>,
    ) -> Result<Compiled> {
        // rows[2r] = loss of row r, rows[2r + 1] = its log-sum-exp.
        let rows = cx.scratch(&[self.rows, 2], "coptim cross-entropy rows")?;
        let mean = 1.0 / self.rows as f32;
        let mut compiled = self.rows_then_sum(cx, (Kernel::CeForwardRows, &rows, 2), mean, out);
        if let Some((dloss, dx, mode)) = cx.backward(out, self.logits, modes[0]) {
            let p = LossParams {
                accumulate: mode.flag(),
                ..LossParams::new(self.rows, self.classes)
            };
            let (x, y) = (cx.value(self.logits), cx.value(self.labels));
            compiled.backward.push(cx.launch(
                Kernel::CeBackward,
                &p,
                &[
                    (X, x),
                    (LABELS, y),
                    (ROWS, &rows),
                    (DLOSS, &dloss),
                    (DX, dx),
                ],
                self.rows * self.classes,
            ));
        }
        Ok(compiled)
    }
}

impl<const COUNT_CORRECT: bool> Op for LabelledLogits<COUNT_CORRECT> {
    fn inputs(&self) -> Vec<Var> {
        vec![self.logits, self.labels]
    }

    fn differentiable(&self, slot: usize) -> bool {
        slot == 0 && !COUNT_CORRECT
    }

    fn id_bound(&self, slot: usize) -> Option<usize> {
        (slot == 1).then_some(self.classes)
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        if !COUNT_CORRECT {
            return self.cross_entropy(cx, out, modes);
        }
        let rows = cx.scratch(&[self.rows], "coptim correct rows")?;
        Ok(self.rows_then_sum(cx, (Kernel::CorrectRows, &rows, 1), 1.0, out))
    }
}
