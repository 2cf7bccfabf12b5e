//! The tape: [`GraphBuilder`] declares inputs, parameters and ops symbolically (shapes
//! are checked as ops are added); [`Graph`] is the compiled result, with every
//! activation, gradient, uniform block and bind group allocated once, recorded into a
//! caller's command encoder each step.

use std::sync::Arc;

use crate::arena::{Layout, ParamStore, TensorId, UploadRing};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::nn::dispatch::Dispatch;
use crate::nn::kernels::Kernels;
use crate::nn::ops::{self, CompileCx, GradMode, Op, PoolMode};
use crate::nn::tensor::{DType, Tensor, numel};

/// A variable of a graph under construction: an input, a parameter or an op's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(usize);

impl Var {
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

/// Pointwise nonlinearities, as PyTorch computes them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)` (`torch.nn.ReLU`); the derivative at 0 is 0.
    #[default]
    Relu,
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (`nn.GELU(approximate="tanh")`).
    GeluTanh,
    /// `x Phi(x)` with the normal CDF `Phi` (`nn.GELU()`, the erf form).
    GeluErf,
}

impl Activation {
    /// The activation kind constant of `nn_elementwise.wgsl` (`ACT_*`).
    pub(crate) fn code(self) -> u32 {
        match self {
            Activation::Relu => 0,
            Activation::GeluTanh => 1,
            Activation::GeluErf => 2,
        }
    }
}

#[derive(Debug)]
enum Source {
    Input,
    /// Fixed values, uploaded once when the graph is built (not trained).
    Constant(Vec<f32>),
    Param(TensorId),
    Op,
}

#[derive(Debug)]
struct Node {
    shape: Vec<usize>,
    dtype: DType,
    source: Source,
}

/// Declares a computation: inputs, parameters of a [`ParamStore`] layout, and ops.
/// Every op method checks shapes and returns [`Error::ShapeMismatch`] (never panics).
///
/// ```no_run
/// # fn main() -> coptim::Result<()> {
/// use coptim::nn::{Activation, GraphBuilder, Kernels};
/// let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
/// let store = coptim::ParamStore::new(&ctx, &[("w", vec![10, 784]), ("b", vec![10])])?;
/// let mut g = GraphBuilder::new(store.layout().clone());
/// let x = g.input(&[32, 784]);
/// let labels = g.labels(32);
/// let (w, b) = (g.param("w")?, g.param("b")?);
/// let logits = g.linear(x, w, Some(b))?;
/// let loss = g.cross_entropy(logits, labels)?;
/// let graph = g.build(&Kernels::new(&ctx), &store, &[loss])?;
/// let mut encoder = ctx.device().create_command_encoder(&Default::default());
/// let mut uploads = coptim::arena::UploadRing::new("batch uploads");
/// graph.value(x).record_write(&mut uploads, &ctx, &mut encoder, &vec![0.0f32; 32 * 784])?;
/// graph.value(labels).record_write(&mut uploads, &ctx, &mut encoder, &[0u32; 32])?;
/// graph.record_forward(&mut encoder);
/// graph.record_backward(&mut encoder); // gradients land in store.grads
/// ctx.queue().submit([encoder.finish()]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GraphBuilder {
    layout: Arc<Layout>,
    nodes: Vec<Node>,
    ops: Vec<(Box<dyn Op>, Var)>,
}

impl GraphBuilder {
    /// An empty graph whose parameters come from `layout` (a [`ParamStore`]'s).
    pub fn new(layout: Arc<Layout>) -> Self {
        Self {
            layout,
            nodes: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// The shape of a variable.
    pub fn shape(&self, v: Var) -> &[usize] {
        &self.nodes[v.0].shape
    }

    pub(crate) fn dtype(&self, v: Var) -> DType {
        self.nodes[v.0].dtype
    }

    /// An f32 input (e.g. images), written by the caller before each forward pass.
    pub fn input(&mut self, shape: &[usize]) -> Var {
        self.push_node(shape.to_vec(), DType::F32, Source::Input)
    }

    /// An f32 constant of `shape` holding `values` (row-major), uploaded once when the
    /// graph is built and never trained (e.g. MAE's fixed sin-cos position tables).
    pub fn constant(&mut self, shape: &[usize], values: Vec<f32>) -> Result<Var> {
        if values.len() != numel(shape) {
            return Err(Error::LengthMismatch {
                what: format!("constant of shape {shape:?}"),
                expected: numel(shape) as u64,
                got: values.len() as u64,
            });
        }
        Ok(self.push_node(shape.to_vec(), DType::F32, Source::Constant(values)))
    }

    /// A `u32` input of `len` class labels.
    pub fn labels(&mut self, len: usize) -> Var {
        self.push_node(vec![len], DType::U32, Source::Input)
    }

    /// A `u32` input of any shape: token ids (e.g. `[batch, tokens]` for
    /// [`GraphBuilder::embedding`]) or per-token labels (for
    /// [`GraphBuilder::cross_entropy`]). Write it with [`Graph::record_write_ids`],
    /// which checks every id against the ops that read it.
    pub fn ids(&mut self, shape: &[usize]) -> Var {
        self.push_node(shape.to_vec(), DType::U32, Source::Input)
    }

    /// The parameter called `name` in the layout (the same variable on every call).
    pub fn param(&mut self, name: &str) -> Result<Var> {
        let id = self.layout.id(name)?;
        if let Some(i) = self
            .nodes
            .iter()
            .position(|n| matches!(n.source, Source::Param(p) if p == id))
        {
            return Ok(Var(i));
        }
        let shape = self.layout.info(id).shape.clone();
        Ok(self.push_node(shape, DType::F32, Source::Param(id)))
    }

    /// `op(a) @ op(b)`, where `op` transposes the last two dimensions when asked.
    /// Both operands are 2-D, or both 3-D with the same batch size (batched matmul).
    /// Transposed operands are read in place, without copies.
    pub fn matmul(&mut self, a: Var, b: Var, transpose_a: bool, transpose_b: bool) -> Result<Var> {
        self.push_op(ops::Matmul::new(self, a, b, transpose_a, transpose_b))
    }

    /// `x @ weight^T + bias` over the last dimension of `x` (`torch.nn.Linear`):
    /// `x` is `[..., in]`, `weight` `[out, in]`, `bias` `[out]`; the bias add is fused
    /// into the matmul.
    pub fn linear(&mut self, x: Var, weight: Var, bias: Option<Var>) -> Result<Var> {
        self.push_op(ops::Linear::new(self, x, weight, bias))
    }

    /// `a + b`, where `b`'s shape (leading 1s dropped) equals the trailing dimensions
    /// of `a`'s: a residual add (same shapes), a bias add (`b` is `[features]`) or a
    /// learned position embedding (`b` is `[1, tokens, dim]`).
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.push_op(ops::add(self, a, b))
    }

    /// A pointwise nonlinearity.
    pub fn activation(&mut self, x: Var, kind: Activation) -> Result<Var> {
        self.push_op(ops::pointwise(self, x, kind))
    }

    /// LayerNorm over the last dimension with elementwise affine `weight` and `bias`
    /// (`torch.nn.LayerNorm(dim, eps)`).
    pub fn layer_norm(&mut self, x: Var, weight: Var, bias: Var, eps: f32) -> Result<Var> {
        self.push_op(ops::LayerNorm::new(self, x, weight, Some(bias), eps))
    }

    /// RMSNorm over the last dimension with elementwise `weight` and no bias, as HF's
    /// `LlamaRMSNorm`: `x / sqrt(mean(x^2) + eps) * weight`. `weight` is `[dim]` for
    /// `x` `[..., dim]`; `eps` is positive.
    pub fn rms_norm(&mut self, x: Var, weight: Var, eps: f32) -> Result<Var> {
        self.push_op(ops::LayerNorm::new(self, x, weight, None, eps))
    }

    /// Rotary position embedding of `x` `[batch, tokens, heads * head_dim]` (features
    /// ordered (head, head_dim), `head_dim` even), position = token index, in HF's
    /// `rotate_half` convention: within each head, feature `i` and `i + head_dim / 2`
    /// rotate by `t * theta^(-2i / head_dim)`. The cos/sin table is computed in f32 as
    /// PyTorch computes it. No parameters; the gradient is the inverse rotation.
    pub fn rope(&mut self, x: Var, heads: usize, theta: f32) -> Result<Var> {
        self.push_op(ops::Rope::new(self, x, heads, theta))
    }

    /// `silu(gate) * up` elementwise (SwiGLU's gate, `silu(x) = x / (1 + exp(-x))`);
    /// both f32 of the same shape, both differentiable.
    pub fn silu_gate(&mut self, gate: Var, up: Var) -> Result<Var> {
        self.push_op(ops::silu_gate(self, gate, up))
    }

    /// Softmax over the last dimension.
    pub fn softmax(&mut self, x: Var) -> Result<Var> {
        self.push_op(ops::softmax(self, x))
    }

    /// Token embedding (`torch.nn.Embedding`): rows of `table` `[vocab, dim]` gathered
    /// by `ids` (u32, any shape, from [`GraphBuilder::ids`]), giving
    /// `[ids' shape..., dim]`. Differentiable with respect to the table (a
    /// deterministic scatter-add); the table may also feed other ops, e.g. a tied
    /// output head `linear(h, table, None)`, and the gradients add up.
    pub fn embedding(&mut self, table: Var, ids: Var) -> Result<Var> {
        self.push_op(ops::Embedding::new(self, table, ids))
    }

    /// Scaled dot-product multi-head self-attention on packed projections, as timm's
    /// `Attention` after its `qkv` Linear: `qkv` is `[batch, tokens, 3 * dim]` with
    /// features ordered (q/k/v, head, head_dim); the result is `[batch, tokens, dim]`
    /// with heads concatenated, ready for the output projection. Scores are scaled by
    /// `head_dim^-0.5`.
    pub fn attention(&mut self, qkv: Var, heads: usize) -> Result<Var> {
        self.push_op(ops::Attention::packed(self, qkv, heads))
    }

    /// Causal scaled dot-product multi-head attention on separate projections, as HF
    /// LLaMA's attention after RoPE: `q`, `k` and `v` are `[batch, tokens, dim]` with
    /// features ordered (head, head_dim); query `i` attends to keys `0..=i`. The result
    /// is `[batch, tokens, dim]` with heads concatenated; scores are scaled by
    /// `head_dim^-0.5`.
    pub fn causal_attention(&mut self, q: Var, k: Var, v: Var, heads: usize) -> Result<Var> {
        self.push_op(ops::Attention::separate(self, [q, k, v], heads, true))
    }

    /// Cuts images `[batch, channels, height, width]` into non-overlapping
    /// `patch x patch` tokens `[batch, patches, channels * patch * patch]`, patches in
    /// row-major order and features in (channel, row, column) order; a
    /// [`GraphBuilder::linear`] on them is timm's Conv2d patch embedding. For one
    /// channel this is also MAE's `patchify` of the loss targets (its features are in
    /// (row, column, channel) order: the same for one channel, not for more).
    pub fn patchify(&mut self, images: Var, patch: usize) -> Result<Var> {
        self.push_op(ops::patchify(self, images, patch))
    }

    /// Prepends `token` (`[dim]`, or `[1, 1, dim]` like timm's `cls_token`) to every
    /// sequence of `tokens` `[batch, n, dim]`, giving `[batch, n + 1, dim]`.
    pub fn prepend_token(&mut self, tokens: Var, token: Var) -> Result<Var> {
        self.push_op(ops::prepend(self, tokens, token))
    }

    /// The mean over the tokens of `[batch, n, dim]`, giving `[batch, dim]`.
    pub fn mean_tokens(&mut self, x: Var) -> Result<Var> {
        self.push_op(ops::pool(self, x, PoolMode::Mean))
    }

    /// Gathers token `index` of every sequence of `[batch, n, dim]`, giving
    /// `[batch, dim]` (the class token is index 0).
    pub fn select_token(&mut self, x: Var, index: usize) -> Result<Var> {
        self.push_op(ops::pool(self, x, PoolMode::Select(index)))
    }

    /// Gathers tokens per sample, as MAE's `random_masking` keeps the visible patches:
    /// `x` `[batch, n, dim]` and `ids` `[batch, k]` (u32, from [`GraphBuilder::ids`],
    /// each below `n`) give `[batch, k, dim]` with `out[b, j] = x[b, ids[b, j]]`. The
    /// gradient of `x` sums, per token, the outputs that read it (deterministic; an
    /// id may repeat).
    pub fn gather_tokens(&mut self, x: Var, ids: Var) -> Result<Var> {
        self.push_op(ops::GatherTokens::new(
            self,
            "gather_tokens",
            (x, ids, None),
        ))
    }

    /// MAE's decoder input: the encoded visible tokens `x` `[batch, k, dim]` (class
    /// token removed) put back in patch order with `mask_token` (`[dim]`, or
    /// `[1, 1, dim]` like MAE's) at the removed patches, by `ids_restore` `[batch, n]`
    /// (u32, each below `n`): `out[b, i] = x[b, ids_restore[b, i]]` when that id is
    /// below `k`, else the mask token, giving `[batch, n, dim]`. Differentiable with
    /// respect to `x` and the mask token (whose gradient sums every masked slot,
    /// deterministically).
    pub fn unshuffle_tokens(&mut self, x: Var, ids_restore: Var, mask_token: Var) -> Result<Var> {
        let inputs = (x, ids_restore, Some(mask_token));
        self.push_op(ops::GatherTokens::new(self, "unshuffle_tokens", inputs))
    }

    /// MAE's reconstruction loss: per row (patch) the mean over the last dimension of
    /// `(pred - target)^2`, averaged over the rows weighted by `mask` (1 = masked:
    /// `sum(loss * mask) / sum(mask)`), a `[1]` tensor. `pred` and `target` are f32
    /// `[..., patch]` (e.g. `[batch, n, p * p * c]`), `mask` f32 `[...]`. With
    /// `norm_target` (MAE's `norm_pix_loss`) each target row is first normalized to
    /// `(t - mean) / sqrt(var + 1e-6)` with the unbiased variance, as MAE does.
    /// Differentiable with respect to `pred` only. A mask summing to 0 gives NaN (as
    /// in PyTorch).
    pub fn masked_mse(
        &mut self,
        pred: Var,
        target: Var,
        mask: Var,
        norm_target: bool,
    ) -> Result<Var> {
        self.push_op(ops::MaskedMse::new(self, (pred, target, mask), norm_target))
    }

    /// Mean softmax cross-entropy of `logits` `[..., classes]` against `labels` (u32,
    /// the leading shape of the logits, from [`GraphBuilder::labels`] or
    /// [`GraphBuilder::ids`]), over all rows, computed stably with log-sum-exp; a `[1]`
    /// tensor. Differentiable with respect to the logits. For a language model:
    /// logits `[batch, tokens, vocab]` against next-token ids `[batch, tokens]`.
    pub fn cross_entropy(&mut self, logits: Var, labels: Var) -> Result<Var> {
        self.push_op(ops::CrossEntropy::new(self, logits, labels))
    }

    /// The number of rows whose first maximal logit is at the label, as a `[1]` f32
    /// tensor (exact below 2^24); shapes as for [`GraphBuilder::cross_entropy`]. Not
    /// differentiable.
    pub fn correct_count(&mut self, logits: Var, labels: Var) -> Result<Var> {
        self.push_op(ops::CorrectCount::new(self, logits, labels))
    }

    /// Allocates and compiles the graph. `seeds` are the outputs the backward pass
    /// starts from: their gradient tensors start at 1 (right for a loss) and the
    /// caller may overwrite them (e.g. with `dL/dy` of a larger computation). Seeds
    /// must not feed other ops. Gradients of the store's parameters are written into
    /// `store.grads` (overwritten each backward pass; zero for parameters that do not
    /// reach a seed). `store` must have the layout this builder was made with.
    pub fn build(self, kernels: &Kernels, store: &ParamStore, seeds: &[Var]) -> Result<Graph> {
        self.check_build_inputs(store, seeds)?;
        let ctx = kernels.context().clone();
        let needs_grad = self.needs_grad(seeds);
        let (values, grads) = self.allocate_tensors(&ctx, store, seeds, &needs_grad)?;
        for &s in seeds {
            if let Some(g) = &grads[s.0] {
                g.write_f32(&ctx, &vec![1.0; g.len()])?;
            }
        }
        let modes = self.grad_modes(&needs_grad);
        let mut scratch = Vec::new();
        let (forward, backward) = {
            let mut cx = CompileCx {
                kernels,
                values: &values,
                grads: &grads,
                scratch: &mut scratch,
            };
            self.compile_ops(&mut cx, &modes)?
        };
        let clears = self.unwritten_param_grads(store, &needs_grad);
        let id_bounds = self.id_bounds();
        Ok(Graph {
            shapes: self.nodes.into_iter().map(|n| n.shape).collect(),
            id_bounds,
            values,
            grads,
            forward,
            backward,
            clears,
            _scratch: scratch,
        })
    }

    /// Rejects a store with another layout and seeds that are not f32 or feed other ops.
    fn check_build_inputs(&self, store: &ParamStore, seeds: &[Var]) -> Result<()> {
        if !Arc::ptr_eq(store.layout(), &self.layout) && **store.layout() != *self.layout {
            return Err(Error::InvalidConfig(
                "the graph was declared for a different parameter layout".into(),
            ));
        }
        for &s in seeds {
            if self.nodes[s.0].dtype != DType::F32 {
                return Err(Error::InvalidConfig("a seed must be an f32 tensor".into()));
            }
            if self.ops.iter().any(|(op, _)| op.inputs().contains(&s)) {
                return Err(Error::InvalidConfig(
                    "a seed of the backward pass must not feed other ops".into(),
                ));
            }
        }
        Ok(())
    }

    /// Per variable: whether it both depends on a parameter and reaches a seed
    /// through differentiable inputs, i.e. whether it needs a gradient.
    fn needs_grad(&self, seeds: &[Var]) -> Vec<bool> {
        let n = self.nodes.len();
        let mut from_param: Vec<bool> = self
            .nodes
            .iter()
            .map(|n| matches!(n.source, Source::Param(_)))
            .collect();
        for (op, out) in &self.ops {
            from_param[out.0] = op
                .inputs()
                .iter()
                .enumerate()
                .any(|(slot, v)| op.differentiable(slot) && from_param[v.0]);
        }
        let mut to_seed = vec![false; n];
        for &s in seeds {
            to_seed[s.0] = true;
        }
        for (op, out) in self.ops.iter().rev() {
            if to_seed[out.0] {
                for (slot, v) in op.inputs().iter().enumerate() {
                    if op.differentiable(slot) {
                        to_seed[v.0] = true;
                    }
                }
            }
        }
        (0..n).map(|i| from_param[i] && to_seed[i]).collect()
    }

    /// The value and (where needed) gradient tensor of every variable: parameters
    /// view the store's arenas, inputs and op outputs get fresh zeroed tensors.
    fn allocate_tensors(
        &self,
        ctx: &GpuContext,
        store: &ParamStore,
        seeds: &[Var],
        needs_grad: &[bool],
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        let n = self.nodes.len();
        let mut values = Vec::with_capacity(n);
        let mut grads = Vec::with_capacity(n);
        for (i, node) in self.nodes.iter().enumerate() {
            let label = format!("coptim nn var {i}");
            let (value, grad) = match node.source {
                Source::Param(id) => (
                    Tensor::from_arena(&store.params, id)?,
                    match needs_grad[i] {
                        true => Some(Tensor::from_arena(&store.grads, id)?),
                        false => None,
                    },
                ),
                Source::Input | Source::Constant(_) | Source::Op => {
                    let value = Tensor::zeros(ctx, &node.shape, node.dtype, &label)?;
                    if let Source::Constant(values) = &node.source {
                        value.write_f32(ctx, values)?;
                    }
                    let grad = if needs_grad[i] || seeds.contains(&Var(i)) {
                        Some(Tensor::zeros(ctx, &node.shape, DType::F32, &label)?)
                    } else {
                        None
                    };
                    (value, grad)
                }
            };
            values.push(value);
            grads.push(grad);
        }
        Ok((values, grads))
    }

    /// How each op writes the gradient of each input (per op, in op order).
    /// Backward order is reverse op order: the first op there to reach a
    /// variable overwrites its gradient, the others accumulate.
    fn grad_modes(&self, needs_grad: &[bool]) -> Vec<Vec<Option<GradMode>>> {
        let mut modes: Vec<Vec<Option<GradMode>>> = Vec::with_capacity(self.ops.len());
        let mut seen = vec![false; self.nodes.len()];
        for (op, out) in self.ops.iter().rev() {
            let op_modes = op
                .inputs()
                .iter()
                .enumerate()
                .map(|(slot, v)| {
                    if !(needs_grad[out.0] && needs_grad[v.0] && op.differentiable(slot)) {
                        return None;
                    }
                    let mode = if seen[v.0] {
                        GradMode::Accumulate
                    } else {
                        GradMode::Overwrite
                    };
                    seen[v.0] = true;
                    Some(mode)
                })
                .collect();
            modes.push(op_modes);
        }
        modes.reverse();
        modes
    }

    /// Compiles every op, giving the forward dispatches (op order) and the
    /// backward dispatches (reverse op order).
    fn compile_ops(
        &self,
        cx: &mut CompileCx,
        modes: &[Vec<Option<GradMode>>],
    ) -> Result<(Vec<Dispatch>, Vec<Dispatch>)> {
        let mut forward = Vec::new();
        let mut backward_per_op = Vec::with_capacity(self.ops.len());
        for ((op, out), op_modes) in self.ops.iter().zip(modes) {
            let compiled = op.compile(cx, *out, op_modes)?;
            forward.extend(compiled.forward);
            backward_per_op.push(compiled.backward);
        }
        let backward = backward_per_op.into_iter().rev().flatten().collect();
        Ok((forward, backward))
    }

    /// Per variable: the smallest [`Op::id_bound`](ops::Op::id_bound) of the ops that
    /// read it as indices, if any.
    fn id_bounds(&self) -> Vec<Option<usize>> {
        let mut bounds = vec![None; self.nodes.len()];
        for (op, _) in &self.ops {
            for (slot, v) in op.inputs().into_iter().enumerate() {
                if let Some(b) = op.id_bound(slot) {
                    let old: &mut Option<usize> = &mut bounds[v.0];
                    *old = Some(old.map_or(b, |o| o.min(b)));
                }
            }
        }
        bounds
    }

    /// The gradient ranges of parameters that no op writes: zero, so they are
    /// cleared every backward pass.
    fn unwritten_param_grads(
        &self,
        store: &ParamStore,
        needs_grad: &[bool],
    ) -> Vec<(wgpu::Buffer, u64, u64)> {
        let mut clears = Vec::new();
        for (i, _) in self.layout.tensors().iter().enumerate() {
            let id = TensorId(i);
            let written = self.nodes.iter().enumerate().any(|(v, node)| {
                matches!(node.source, Source::Param(p) if p == id) && needs_grad[v]
            });
            if !written {
                let (offset, size) = store.grads.byte_range(id);
                clears.push((store.grads.buffer_of(id).clone(), offset, size));
            }
        }
        clears
    }

    fn push_node(&mut self, shape: Vec<usize>, dtype: DType, source: Source) -> Var {
        self.nodes.push(Node {
            shape,
            dtype,
            source,
        });
        Var(self.nodes.len() - 1)
    }

    /// Adds the op an op's `new` built (or passes its error on) and returns its output.
    fn push_op(&mut self, built: Result<(impl Op + 'static, Vec<usize>)>) -> Result<Var> {
        let (op, shape) = built?;
        let v = self.push_node(shape, DType::F32, Source::Op);
        self.ops.push((Box::new(op), v));
        Ok(v)
    }
}

/// A compiled graph: every buffer allocated once for its shapes, every kernel bound.
/// Record [`Graph::record_forward`] then [`Graph::record_backward`] into an encoder
/// each step; nothing is read back unless the caller copies it out.
#[derive(Debug)]
pub struct Graph {
    shapes: Vec<Vec<usize>>,
    id_bounds: Vec<Option<usize>>,
    values: Vec<Tensor>,
    grads: Vec<Option<Tensor>>,
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    clears: Vec<(wgpu::Buffer, u64, u64)>,
    _scratch: Vec<Tensor>,
}

impl Graph {
    /// The shape of a variable.
    pub fn shape(&self, v: Var) -> &[usize] {
        &self.shapes[v.0]
    }

    /// Number of elements of a variable.
    pub fn len(&self, v: Var) -> usize {
        numel(&self.shapes[v.0])
    }

    /// The tensor holding a variable's value (inputs are written through it).
    pub fn value(&self, v: Var) -> &Tensor {
        &self.values[v.0]
    }

    /// The tensor holding a variable's gradient, for variables on a path from a
    /// parameter to a seed, and for the seeds themselves.
    pub fn grad(&self, v: Var) -> Option<&Tensor> {
        self.grads[v.0].as_ref()
    }

    /// Records a write of `ids` into the u32 input `v` (as
    /// [`Tensor::record_write`]) after checking each against every op that reads `v`
    /// as indices: an id at or above an embedding's vocabulary, a loss's number of
    /// classes or the tokens of a token gather or unshuffle is
    /// [`Error::LabelOutOfRange`] and nothing is recorded. (The kernels clamp ids
    /// that bypass this check, so they never read out of bounds.)
    pub fn record_write_ids(
        &self,
        v: Var,
        uploads: &mut UploadRing,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        ids: &[u32],
    ) -> Result<()> {
        if let Some(classes) = self.id_bounds[v.0]
            && let Some((index, &label)) = ids
                .iter()
                .enumerate()
                .find(|(_, id)| **id as usize >= classes)
        {
            return Err(Error::LabelOutOfRange {
                index,
                label,
                classes,
            });
        }
        self.values[v.0].record_write(uploads, ctx, encoder, ids)
    }

    /// Number of kernel launches of the forward and of the backward pass.
    pub fn dispatch_counts(&self) -> (usize, usize) {
        (self.forward.len(), self.backward.len())
    }

    /// Records the forward pass (one compute pass).
    pub fn record_forward(&self, encoder: &mut wgpu::CommandEncoder) {
        record_pass(encoder, "coptim nn forward", &self.forward);
    }

    /// Records the backward pass: gradients of every parameter into the store's
    /// `grads` arena (overwritten, not accumulated) and of every intermediate
    /// variable into its gradient buffer.
    pub fn record_backward(&self, encoder: &mut wgpu::CommandEncoder) {
        for (buffer, offset, size) in &self.clears {
            encoder.clear_buffer(buffer, *offset, Some(*size));
        }
        record_pass(encoder, "coptim nn backward", &self.backward);
    }
}

fn record_pass(encoder: &mut wgpu::CommandEncoder, label: &str, dispatches: &[Dispatch]) {
    if dispatches.is_empty() {
        return;
    }
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(label),
        timestamp_writes: None,
    });
    for d in dispatches {
        d.record(&mut pass);
    }
}
