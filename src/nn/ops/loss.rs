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

/// Checks `logits [rows, classes]` against `labels [rows]` (u32).
fn check(g: &GraphBuilder, op: &str, logits: Var, labels: Var) -> Result<(usize, usize)> {
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
    Ok((sl[0], sl[1]))
}

/// `out[0] = scale * sum_r rows[r * stride]` in one workgroup.
fn reduce(cx: &CompileCx<'_>, mut p: LossParams, rows: &Tensor, out: &Tensor) -> Dispatch {
    p.accumulate = 0;
    cx.dispatch(Kernel::ReduceSum, &p, &[(3, rows), (4, out)], [1, 1, 1])
}

/// Mean softmax cross-entropy, `[1]`.
#[derive(Debug)]
pub(crate) struct CrossEntropy {
    logits: Var,
    labels: Var,
    rows: usize,
    classes: usize,
}

impl CrossEntropy {
    pub fn new(g: &GraphBuilder, logits: Var, labels: Var) -> Result<(Self, Vec<usize>)> {
        let (rows, classes) = check(g, "cross_entropy", logits, labels)?;
        Ok((
            Self {
                logits,
                labels,
                rows,
                classes,
            },
            vec![1],
        ))
    }
}

impl Op for CrossEntropy {
    fn inputs(&self) -> Vec<Var> {
        vec![self.logits, self.labels]
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
        let rows = cx.scratch(&[self.rows, 2], "coptim cross-entropy rows")?;
        let (x, y, loss) = (cx.value(self.logits), cx.value(self.labels), cx.value(out));
        let p = LossParams::new(self.rows, self.classes);
        let mut compiled = Compiled::default();
        compiled.forward.push(cx.dispatch(
            Kernel::CeForwardRows,
            &p,
            &[(1, x), (2, y), (3, &rows)],
            cx.row_grid(self.rows),
        ));
        let mean = LossParams {
            stride: 2,
            scale: 1.0 / self.rows as f32,
            ..p
        };
        compiled.forward.push(reduce(cx, mean, &rows, loss));
        if let Some(dloss) = cx.out_grad(out)
            && let Some((dx, mode)) = wanted(cx, self.logits, modes[0])
        {
            let bwd = LossParams {
                accumulate: mode.flag(),
                ..p
            };
            compiled.backward.push(cx.dispatch(
                Kernel::CeBackward,
                &bwd,
                &[(1, x), (2, y), (3, &rows), (5, &dloss), (6, dx)],
                linear_grid(self.rows * self.classes),
            ));
        }
        Ok(compiled)
    }
}

/// Number of rows whose argmax is the label, `[1]` (f32).
#[derive(Debug)]
pub(crate) struct CorrectCount {
    logits: Var,
    labels: Var,
    rows: usize,
    classes: usize,
}

impl CorrectCount {
    pub fn new(g: &GraphBuilder, logits: Var, labels: Var) -> Result<(Self, Vec<usize>)> {
        let (rows, classes) = check(g, "correct_count", logits, labels)?;
        Ok((
            Self {
                logits,
                labels,
                rows,
                classes,
            },
            vec![1],
        ))
    }
}

impl Op for CorrectCount {
    fn inputs(&self) -> Vec<Var> {
        vec![self.logits, self.labels]
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
        let rows = cx.scratch(&[self.rows], "coptim correct rows")?;
        let (x, y, count) = (cx.value(self.logits), cx.value(self.labels), cx.value(out));
        let p = LossParams::new(self.rows, self.classes);
        let mut compiled = Compiled::default();
        compiled.forward.push(cx.dispatch(
            Kernel::CorrectRows,
            &p,
            &[(1, x), (2, y), (3, &rows)],
            linear_grid(self.rows),
        ));
        compiled.forward.push(reduce(cx, p, &rows, count));
        Ok(compiled)
    }
}
