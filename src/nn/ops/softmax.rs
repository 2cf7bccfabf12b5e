//! Softmax over the last dimension (attention probabilities, class probabilities).

use crate::error::{Error, Result};
use crate::nn::dispatch::Dispatch;
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::kernels::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Op, wanted};
use crate::nn::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SoftmaxParams {
    rows: u32,
    dim: u32,
    accumulate: u32,
    pad: u32,
}

fn params(y: &Tensor, dim: usize, mode: GradMode) -> SoftmaxParams {
    SoftmaxParams {
        rows: (y.len() / dim) as u32,
        dim: dim as u32,
        accumulate: mode.flag(),
        pad: 0,
    }
}

/// `y = softmax(x)` over rows of `dim`.
pub(crate) fn softmax_forward(cx: &CompileCx<'_>, x: &Tensor, y: &Tensor, dim: usize) -> Dispatch {
    cx.dispatch(
        Kernel::SoftmaxForward,
        &params(y, dim, GradMode::Overwrite),
        &[(1, x), (2, y)],
        cx.row_grid(y.len() / dim),
    )
}

/// `dx (+)= y * (dy - sum(dy * y))` over rows of `dim`.
pub(crate) fn softmax_backward(
    cx: &CompileCx<'_>,
    y: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    dim: usize,
    mode: GradMode,
) -> Dispatch {
    cx.dispatch(
        Kernel::SoftmaxBackward,
        &params(y, dim, mode),
        &[(2, y), (3, dy), (4, dx)],
        cx.row_grid(y.len() / dim),
    )
}

/// Softmax over the last dimension.
#[derive(Debug)]
pub(crate) struct Softmax {
    x: Var,
    dim: usize,
}

impl Softmax {
    pub fn new(g: &GraphBuilder, x: Var) -> Result<(Self, Vec<usize>)> {
        if g.dtype(x) != DType::F32 {
            return Err(Error::shape("softmax", "input must be an f32 tensor"));
        }
        let dim = *g.shape(x).last().unwrap_or(&0);
        Ok((Self { x, dim }, g.shape(x).to_vec()))
    }
}

impl Op for Softmax {
    fn inputs(&self) -> Vec<Var> {
        vec![self.x]
    }

    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let (x, y) = (cx.value(self.x), cx.value(out));
        let mut compiled = Compiled::default();
        compiled.forward.push(softmax_forward(cx, x, y, self.dim));
        if let Some(dy) = cx.out_grad(out)
            && let Some((dx, mode)) = wanted(cx, self.x, modes[0])
        {
            compiled
                .backward
                .push(softmax_backward(cx, y, &dy, dx, self.dim, mode));
        }
        Ok(compiled)
    }
}

/// The layout of [`SoftmaxParams`], for the test against naga's layout of the WGSL struct.
#[cfg(test)]
pub(super) fn mirror() -> crate::wgsl::MirrorLayout {
    crate::wgsl::mirror_layout!(SoftmaxParams, "SoftmaxParams", [rows, dim, accumulate])
}
