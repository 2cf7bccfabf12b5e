//! The differentiable operations: each one records its forward kernels and the
//! backward kernels that write the gradients of its inputs.
//!
//! An op is compiled once per graph (buffers, uniforms and bind groups are made then);
//! the compiled dispatches are recorded every step.

mod attention;
mod elementwise;
mod layernorm;
mod loss;
mod matmul;
mod softmax;
mod tokens;

pub(crate) use attention::Attention;
pub(crate) use elementwise::{Add, Pointwise};
pub(crate) use layernorm::LayerNorm;
pub(crate) use loss::{CorrectCount, CrossEntropy};
pub(crate) use matmul::{Linear, Matmul};
pub(crate) use softmax::Softmax;
pub(crate) use tokens::{Patchify, Pool, PoolMode, Prepend};

use std::fmt;

use crate::error::Result;
use crate::nn::dispatch::{Dispatch, group_grid, linear_grid};
use crate::nn::graph::Var;
use crate::nn::kernels::{Kernel, Kernels, RowLayout};
use crate::nn::tensor::{DType, Tensor};

/// How a backward kernel stores an input's gradient: the first op (in backward
/// order) to reach a tensor overwrites its gradient, later ones add to it. No
/// gradient buffer needs clearing between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GradMode {
    Overwrite,
    Accumulate,
}

impl GradMode {
    /// The `accumulate` flag of the kernels' uniform blocks.
    pub fn flag(self) -> u32 {
        (self == GradMode::Accumulate) as u32
    }
}

/// An op's kernels, ready to record.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    pub forward: Vec<Dispatch>,
    pub backward: Vec<Dispatch>,
}

/// A node of the tape.
pub(crate) trait Op: fmt::Debug + Send + Sync {
    /// The input variables, in slot order.
    fn inputs(&self) -> Vec<Var>;

    /// Whether the output is differentiable with respect to input `slot`.
    fn differentiable(&self, _slot: usize) -> bool {
        true
    }

    /// Builds the forward dispatches, and the backward dispatches for every input
    /// slot whose mode is `Some` (`modes` is in slot order).
    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled>;
}

/// What an op sees while compiling: the tensors of every variable, and a way to
/// make scratch buffers and dispatches.
pub(crate) struct CompileCx<'a> {
    pub kernels: &'a Kernels,
    pub values: &'a [Tensor],
    pub grads: &'a [Option<Tensor>],
    pub scratch: &'a mut Vec<Tensor>,
}

impl CompileCx<'_> {
    /// The value of a variable.
    pub fn value(&self, v: Var) -> &Tensor {
        &self.values[v.index()]
    }

    /// The gradient of a variable, when it needs one.
    pub fn grad(&self, v: Var) -> Option<&Tensor> {
        self.grads[v.index()].as_ref()
    }

    /// The gradient of an op's output, when the backward pass reaches the op.
    pub fn out_grad(&self, out: Var) -> Option<Tensor> {
        self.grad(out).cloned()
    }

    /// A buffer the op keeps between its forward and backward kernels.
    pub fn scratch(&mut self, shape: &[usize], label: &str) -> Result<Tensor> {
        let t = Tensor::zeros(self.kernels.context(), shape, DType::F32, label)?;
        self.scratch.push(t.clone());
        Ok(t)
    }

    /// The grid of a row kernel over `rows` rows: one workgroup per row, or one
    /// invocation per row, as the kernels' [`RowLayout`] says.
    pub fn row_grid(&self, rows: usize) -> [u32; 3] {
        match self.kernels.row_layout() {
            RowLayout::PerWorkgroup => group_grid(rows),
            RowLayout::PerInvocation => linear_grid(rows),
        }
    }

    /// A dispatch of `kernel` with `params` at binding 0 and the given tensors.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        kernel: Kernel,
        params: &P,
        tensors: &[(u32, &Tensor)],
        grid: [u32; 3],
    ) -> Dispatch {
        Dispatch::new(self.kernels, kernel, params, tensors, grid)
    }
}

/// The gradient tensor of input `v` together with its mode, when it is wanted.
pub(crate) fn wanted<'a>(
    cx: &'a CompileCx<'_>,
    v: Var,
    mode: Option<GradMode>,
) -> Option<(&'a Tensor, GradMode)> {
    Some((cx.grad(v)?, mode?))
}

#[cfg(test)]
mod tests {
    use crate::nn::shader_modules;
    use crate::wgsl::layout_check::check_mirrors;

    /// Every op's parameter struct matches naga's layout of the WGSL struct of the same
    /// name in every module that declares it (all matmul specializations and both row
    /// reductions included), and every one is declared somewhere.
    #[test]
    fn op_params_match_every_module() {
        let mirrors = [
            super::attention::mirror(),
            super::elementwise::mirror(),
            super::layernorm::mirror(),
            super::loss::mirror(),
            super::matmul::mirror(),
            super::softmax::mirror(),
            super::tokens::mirror(),
        ];
        let mut seen = [false; 7];
        for (name, source) in shader_modules() {
            for (m, seen) in mirrors.iter().zip(seen.iter_mut()) {
                *seen |= check_mirrors(name, &source, std::slice::from_ref(m)) > 0;
            }
        }
        for (m, seen) in mirrors.iter().zip(seen) {
            assert!(seen, "no module declares `{}`", m.wgsl_name);
        }
    }
}
