//! Softmax cross-entropy from logits ([`CrossEntropy`], mean over the batch) and the
//! number of correct predictions ([`CorrectCount`]).

use crate::error::{Error, Result};
use crate::nn::dispatch::{Dispatch, linear_grid};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::kernels::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Op, wanted};
use crate::nn::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LossParams {
    rows: u32,
    classes: u32,
    stride: u32,
    scale: f32,
    accumulate: u32,
    pad: [u32; 3],
}

impl LossParams {
    fn new(rows: usize, classes: usize) -> Self {
        Self {
            rows: rows as u32,
            classes: classes as u32,
            stride: 1,
            scale: 1.0,
            accumulate: 0,
            pad: [0; 3],
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
}

/// `out[0] = scale * sum_r rows[r * stride]` in one workgroup.
fn reduce(cx: &CompileCx<'_>, mut p: LossParams, rows: &Tensor, out: &Tensor) -> Dispatch {
    p.accumulate = 0;
    cx.dispatch(Kernel::ReduceSum, &p, &[(3, rows), (4, out)], [1, 1, 1])
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
        // rows[2r] = loss of row r, rows[2r + 1] = its log-sum-exp.
        let rows = cx.scratch(&[self.0.rows, 2], "coptim cross-entropy rows")?;
        let (x, y, loss) = (
            cx.value(self.0.logits),
            cx.value(self.0.labels),
            cx.value(out),
        );
        let p = LossParams::new(self.0.rows, self.0.classes);
        let mut compiled = Compiled::default();
        compiled.forward.push(cx.dispatch(
            Kernel::CeForwardRows,
            &p,
            &[(1, x), (2, y), (3, &rows)],
            cx.row_grid(self.0.rows),
        ));
        let mean = LossParams {
            stride: 2,
            scale: 1.0 / self.0.rows as f32,
            ..p
        };
        compiled.forward.push(reduce(cx, mean, &rows, loss));
        if let Some(dloss) = cx.out_grad(out)
            && let Some((dx, mode)) = wanted(cx, self.0.logits, modes[0])
        {
            let bwd = LossParams {
                accumulate: mode.flag(),
                ..p
            };
            compiled.backward.push(cx.dispatch(
                Kernel::CeBackward,
                &bwd,
                &[(1, x), (2, y), (3, &rows), (5, &dloss), (6, dx)],
                linear_grid(self.0.rows * self.0.classes),
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
        let (x, y, count) = (
            cx.value(self.0.logits),
            cx.value(self.0.labels),
            cx.value(out),
        );
        let p = LossParams::new(self.0.rows, self.0.classes);
        let mut compiled = Compiled::default();
        compiled.forward.push(cx.dispatch(
            Kernel::CorrectRows,
            &p,
            &[(1, x), (2, y), (3, &rows)],
            linear_grid(self.0.rows),
        ));
        compiled.forward.push(reduce(cx, p, &rows, count));
        Ok(compiled)
    }
}

/// The layout of [`LossParams`], for the test against naga's layout of the WGSL struct.
#[cfg(test)]
pub(super) fn mirror() -> crate::wgsl::MirrorLayout {
    crate::wgsl::mirror_layout!(
        LossParams,
        "LossParams",
        [rows, classes, stride, scale, accumulate]
    )
}
