//! The differentiable operations: each one records its forward kernels and the
//! backward kernels that write the gradients of its inputs.
//!
//! An op is compiled once per graph (buffers, uniforms and bind groups are made then);
//! the compiled dispatches are recorded every step.

mod attention;
mod elementwise;
mod embedding;
mod gather;
mod layernorm;
mod loss;
mod masked_mse;
mod matmul;
mod rope;
mod softmax;
mod tokens;

pub(crate) use attention::{ATTENTION, Attention, FUSED_MAX_HEAD_DIM, FUSED_MAX_TOKENS};
pub(crate) use elementwise::{ELEMENTWISE, add, pointwise, silu_gate};
pub(crate) use embedding::{EMBEDDING, Embedding};
pub(crate) use gather::GatherTokens;
pub(crate) use layernorm::{LAYERNORM, LayerNorm};
pub(crate) use loss::{CorrectCount, CrossEntropy, LOSS};
pub(crate) use masked_mse::MaskedMse;
pub(crate) use matmul::{Dims, Linear, MATMUL, Matmul, Product, View};
pub(crate) use rope::{ROPE, Rope};
pub(crate) use softmax::{SOFTMAX, softmax};
pub(crate) use tokens::{PoolMode, TOKENS, patchify, pool, prepend};

use std::fmt;

use crate::error::{Error, Result};
use crate::nn::bindings::{Binding, DX, DY, OTHER, OUT, Uniform, UniformBlock, X, Y};
use crate::nn::dispatch::{Dispatch, group_grid, linear_grid};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::kernels::{Kernels, RowLayout};
use crate::nn::modules::{Grid, Kernel};
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

impl Compiled {
    /// An op's one forward dispatch, its backward ones to be pushed.
    pub fn forward(dispatch: Dispatch) -> Self {
        Self {
            forward: vec![dispatch],
            backward: Vec::new(),
        }
    }
}

/// The kernels of a [`PlanOp`]: one forward kernel and, per input slot, one backward
/// kernel that writes that input's gradient.
///
/// Each kernel's buffers ([`Kernel::buffers`]) are bound by name: `x` and `other` are
/// the values of the first and second input, `y` the output; a backward kernel's `dy`
/// is the output's gradient; `out` (and `dx`) is the tensor the kernel writes (the
/// output forward, the input's gradient backward).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    forward: Kernel,
    backward: &'static [Kernel],
}

impl Plan {
    /// The forward kernel, and the backward kernel of each input slot.
    pub const fn new(forward: Kernel, backward: &'static [Kernel]) -> Self {
        Self { forward, backward }
    }
}

/// The uniform block of one launch of a [`PlanOp`], from the tensor the kernel writes
/// and the gradient mode, with the size the kernel runs over.
type UniformFor = Box<dyn Fn(&Tensor, GradMode) -> (Uniform, usize) + Send + Sync>;

/// An op described by its [`Plan`] and how each launch's uniform block is made
/// (activations, adds, softmax and the token ops).
pub(crate) struct PlanOp {
    inputs: Vec<Var>,
    plan: Plan,
    uniform: UniformFor,
}

impl PlanOp {
    /// The op of `plan` on `inputs`; `uniform(written, mode)` gives a launch's block
    /// and size.
    pub fn new<P: UniformBlock>(
        inputs: Vec<Var>,
        plan: Plan,
        uniform: impl Fn(&Tensor, GradMode) -> (P, usize) + Send + Sync + 'static,
    ) -> Self {
        let uniform: UniformFor = Box::new(move |t: &Tensor, mode| {
            let (block, size) = uniform(t, mode);
            (Uniform::from(&block), size)
        });
        Self {
            inputs,
            plan,
            uniform,
        }
    }

    /// The dispatch of `kernel` writing `written` (`dy` is the output's gradient, for
    /// a backward kernel).
    fn launch(
        &self,
        cx: &CompileCx<'_>,
        (kernel, written, mode): (Kernel, &Tensor, GradMode),
        y: &Tensor,
        dy: Option<&Tensor>,
    ) -> Dispatch {
        let tensors: Vec<(Binding, &Tensor)> = kernel
            .buffers()
            .iter()
            .map(|&b| match b {
                X => (b, cx.value(self.inputs[0])),
                OTHER => (b, cx.value(self.inputs[1])),
                Y => (b, y),
                DY => (b, dy.expect("only a backward kernel binds dy")),
                OUT | DX => (b, written),
                _ => unreachable!("{kernel:?} binds `{}`", b.name()),
            })
            .collect();
        let (uniform, size) = (self.uniform)(written, mode);
        cx.launch(kernel, uniform, &tensors, size)
    }
}

impl fmt::Debug for PlanOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanOp")
            .field("inputs", &self.inputs)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl Op for PlanOp {
    fn inputs(&self) -> Vec<Var> {
        self.inputs.clone()
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let y = cx.value(out);
        let forward = (self.plan.forward, y, GradMode::Overwrite);
        let mut compiled = Compiled::forward(self.launch(cx, forward, y, None));
        for (slot, &kernel) in self.plan.backward.iter().enumerate() {
            if let Some((dy, dx, mode)) = cx.backward(out, self.inputs[slot], modes[slot]) {
                let backward = self.launch(cx, (kernel, dx, mode), y, Some(&dy));
                compiled.backward.push(backward);
            }
        }
        Ok(compiled)
    }
}

/// A node of the tape.
pub(crate) trait Op: fmt::Debug + Send + Sync {
    /// The input variables, in slot order.
    fn inputs(&self) -> Vec<Var>;

    /// Whether the output is differentiable with respect to input `slot`.
    fn differentiable(&self, _slot: usize) -> bool {
        true
    }

    /// For a u32 input `slot` read as indices (token ids, labels): the bound every
    /// value must stay below.
    fn id_bound(&self, _slot: usize) -> Option<usize> {
        None
    }

    /// Builds the forward dispatches, and the backward dispatches for every input
    /// slot whose mode is `Some` (`modes` is in slot order).
    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled>;
}

/// How each input slot of an op wants its gradient (`None`: not at all).
pub(crate) type Modes<'a> = &'a [Option<GradMode>];

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

    /// A u32 buffer of `len` entries the op keeps between its kernels.
    pub fn scratch_u32(&mut self, len: usize, label: &str) -> Result<Tensor> {
        let t = Tensor::zeros(self.kernels.context(), &[len], DType::U32, label)?;
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

    /// A dispatch of `kernel` with `params` and the given tensors over `grid`.
    pub fn dispatch(
        &self,
        kernel: Kernel,
        params: impl Into<Uniform>,
        tensors: &[(Binding, &Tensor)],
        grid: [u32; 3],
    ) -> Dispatch {
        Dispatch::new(self.kernels, kernel, &params.into(), tensors, grid)
    }

    /// A dispatch of a kernel of the nn files over `size` invocations (a flat kernel)
    /// or rows (a row kernel); a single-workgroup kernel ignores `size`.
    pub fn launch(
        &self,
        kernel: Kernel,
        params: impl Into<Uniform>,
        tensors: &[(Binding, &Tensor)],
        size: usize,
    ) -> Dispatch {
        let grid = match kernel.grid() {
            Grid::Flat => linear_grid(size),
            Grid::Rows => self.row_grid(size),
            Grid::Single => [1, 1, 1],
            Grid::Matmul => unreachable!("a matmul's grid comes from its specialization"),
        };
        self.dispatch(kernel, params, tensors, grid)
    }

    /// The upstream gradient, input `v`'s gradient and its mode, when the backward
    /// pass reaches the op (`out` has a gradient) and `v` wants a gradient.
    pub fn backward(
        &self,
        out: Var,
        v: Var,
        mode: Option<GradMode>,
    ) -> Option<(Tensor, &Tensor, GradMode)> {
        let dy = self.out_grad(out)?;
        Some((dy, self.grad(v)?, mode?))
    }
}

/// A typed shape error of `op` unless every one of `vars` is an f32 tensor.
pub(super) fn check_f32(g: &GraphBuilder, op: &str, vars: &[Var]) -> Result<()> {
    let all_f32 = vars.iter().all(|&v| g.dtype(v) == DType::F32);
    reject_shape(!all_f32, op, || "operands must be f32 tensors")
}

/// A typed shape error of `op` when `bad` holds, its message written by `detail`
/// (only then).
pub(super) fn reject_shape<D: Into<String>>(
    bad: bool,
    op: &str,
    detail: impl FnOnce() -> D,
) -> Result<()> {
    match bad {
        true => Err(Error::shape(op, detail())),
        false => Ok(()),
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
    use super::*;
    use crate::nn::shader_modules;
    use crate::wgsl::WgslStruct;
    use crate::wgsl::layout_check::check_mirrors;

    /// Every op's uniform block matches naga's layout of the WGSL struct of the same
    /// name in every module that declares it (all matmul specializations and every row
    /// team included), and every one is declared somewhere.
    #[test]
    fn op_params_match_every_module() {
        let mirrors = [
            attention::AttnParams::mirror(),
            elementwise::EwParams::mirror(),
            embedding::EmbParams::mirror(),
            layernorm::LnParams::mirror(),
            loss::LossParams::mirror(),
            matmul::MatmulParams::mirror(),
            rope::RopeParams::mirror(),
            softmax::SoftmaxParams::mirror(),
            tokens::TokParams::mirror(),
        ];
        let mut seen = vec![false; mirrors.len()];
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
