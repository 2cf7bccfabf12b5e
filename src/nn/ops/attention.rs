//! Scaled dot-product multi-head attention, optionally causal, on Q, K and V in one
//! of two layouts: one packed `qkv` tensor (timm's ViT) or three tensors (HF LLaMA's
//! separate projections). Both are strided views of the same kind (a base offset and
//! a row stride per part), so one set of kernels serves both.
//!
//! Short sequences (at most [`FUSED_MAX_TOKENS`], 24, tokens by default, see
//! [`Kernels::with_fused_attention_max`](crate::nn::Kernels::with_fused_attention_max))
//! with heads of at most [`FUSED_MAX_HEAD_DIM`] features run fused
//! (`nn_attention.wgsl`): one kernel forward (scores, softmax and weighted sum per
//! query row, nothing but the probabilities through memory) and three backward (per
//! query row: dS and dQ; per key row: dK; per value row: dV). Longer ones run as
//! batched matmuls and a softmax, whose tiles pay off there. Either way Q, K and V are
//! read in place (per-head strided views) and the output is written with heads
//! already merged, so no permute copies are needed:
//!
//! ```text
//! forward:  S = scale * Q K^T      P = softmax(S)      O = P V
//! backward: dP = dO V^T            dV = P^T dO
//!           dS = P * (dP - rowsum(dP * P))
//!           dQ = scale * dS K      dK = scale * dS^T Q
//! ```
//!
//! Causal attention masks `S[i, j]` for `j > i`: the fused kernels never compute those
//! scores and write `P = 0` there; the matmul path's softmax runs over the first
//! `i + 1` entries of row `i` and writes 0 after them. Either way the backward pass
//! sees `P = 0`, hence `dS = 0`, at every masked entry.
//!
//! The gradients of the three parts are written in part order (Q, K, V), so when one
//! variable feeds several parts the first part's [`GradMode`] (the graph gives the
//! first slot the overwrite) is applied first.

use crate::error::Result;
use crate::nn::bindings::{D_OUT, D_QKV, D_SCORES, Family, K, OUT, PROBS, Q, V, uniform_block};
use crate::nn::dispatch::Dispatch;
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::matmul::{Dims, Product, View};
use crate::nn::ops::softmax::{softmax_backward, softmax_forward};
use crate::nn::ops::{CompileCx, Compiled, GradMode, Modes, Op, reject_shape};
use crate::nn::tensor::{DType, Tensor};

/// Longest sequence that runs through the fused kernels. Each invocation of the
/// fused kernels loops over all tokens of its head, so their work per invocation
/// grows with the sequence while the matmul path's tiles amortize it. On lavapipe
/// the fused kernels win at the ViT's 17 tokens but lose at the language model's 32
/// (head_dim 16) and 64 (head_dim 32) tokens (BENCHMARKS.md, issue 11).
pub(crate) const FUSED_MAX_TOKENS: usize = 24;

/// Widest head that runs through the fused kernels: each invocation keeps a row of
/// its head (its query or upstream gradient, and its output's sums) in private
/// arrays of this many elements (`MAX_HEAD_DIM` in `nn_attention.wgsl`), registers
/// on a GPU. Wider heads run as matmuls.
pub(crate) const FUSED_MAX_HEAD_DIM: usize = 32;

uniform_block! {
    /// The uniform block of `nn_attention.wgsl`.
    struct AttnParams {
        /// B * H * N: the invocation space of every entry point.
        rows: u32,
        tokens: u32,
        dim: u32,
        heads: u32,
        head_dim: u32,
        scale: f32,
        /// [`GradMode::flag`] of the gradient the kernel writes.
        accumulate: u32,
        /// 1: query i sees keys 0..=i only.
        causal: u32,
        /// Elements between consecutive tokens of Q, K and V (3 D packed, D separate).
        stride: u32,
        /// Element of token 0, feature 0 of Q, K and V in their tensors.
        q_offset: u32,
        k_offset: u32,
        v_offset: u32,
    }
}

/// The bindings of `nn_attention.wgsl`.
pub(crate) const ATTENTION: Family =
    Family::new::<AttnParams>(&[Q, K, V, OUT, PROBS, D_OUT, D_SCORES, D_QKV]);

/// The three parts of attention, in the order their gradients are written.
const PARTS: [Part; 3] = [Part::Query, Part::Key, Part::Value];

/// Q, K or V.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Query = 0,
    Key = 1,
    Value = 2,
}

impl Part {
    /// The backward kernel that writes this part's gradient.
    fn kernel(self) -> Kernel {
        match self {
            Part::Query => Kernel::AttentionBackwardQuery,
            Part::Key => Kernel::AttentionBackwardKey,
            Part::Value => Kernel::AttentionBackwardValue,
        }
    }
}

/// Multi-head attention: packed `[batch, tokens, 3 * dim]` or three
/// `[batch, tokens, dim]` to `[batch, tokens, dim]`.
#[derive(Debug)]
pub(crate) struct Attention {
    /// `[qkv]` (packed) or `[q, k, v]`.
    inputs: Vec<Var>,
    batch: usize,
    tokens: usize,
    dim: usize,
    heads: usize,
    causal: bool,
}

impl Attention {
    /// Attention on one packed `qkv` `[batch, tokens, 3 * dim]`, not causal.
    pub fn packed(g: &GraphBuilder, qkv: Var, heads: usize) -> Result<(Self, Vec<usize>)> {
        let s = g.shape(qkv);
        reject_shape(
            g.dtype(qkv) != DType::F32
                || s.len() != 3
                || !s[2].is_multiple_of(3)
                || heads == 0
                || !(s[2] / 3).is_multiple_of(heads),
            "attention",
            || {
                format!(
                    "qkv {s:?} must be f32 [batch, tokens, 3 * dim] with dim divisible by {heads} heads"
                )
            },
        )?;
        Ok(Self::sized(vec![qkv], [s[0], s[1], s[2] / 3], heads, false))
    }

    /// Attention on `q`, `k`, `v`, each `[batch, tokens, dim]`.
    pub fn separate(
        g: &GraphBuilder,
        [q, k, v]: [Var; 3],
        heads: usize,
        causal: bool,
    ) -> Result<(Self, Vec<usize>)> {
        let s = g.shape(q).to_vec();
        let fits = |x: Var| g.dtype(x) == DType::F32 && g.shape(x) == s;
        reject_shape(
            !(fits(q) && fits(k) && fits(v))
                || s.len() != 3
                || heads == 0
                || !s[2].is_multiple_of(heads),
            "causal_attention",
            || {
                format!(
                    "q {s:?}, k {:?}, v {:?} must be f32 [batch, tokens, dim] alike with dim divisible by {heads} heads",
                    g.shape(k),
                    g.shape(v)
                )
            },
        )?;
        Ok(Self::sized(
            vec![q, k, v],
            [s[0], s[1], s[2]],
            heads,
            causal,
        ))
    }

    fn sized(
        inputs: Vec<Var>,
        [batch, tokens, dim]: [usize; 3],
        heads: usize,
        causal: bool,
    ) -> (Self, Vec<usize>) {
        let op = Self {
            inputs,
            batch,
            tokens,
            dim,
            heads,
            causal,
        };
        (op, vec![batch, tokens, dim])
    }

    fn head_dim(&self) -> usize {
        self.dim / self.heads
    }

    fn packed_layout(&self) -> bool {
        self.inputs.len() == 1
    }

    /// The input slot holding `part`.
    fn slot(&self, part: Part) -> usize {
        match self.packed_layout() {
            true => 0,
            false => part as usize,
        }
    }

    /// Elements between consecutive tokens of Q, K and V.
    fn stride(&self) -> usize {
        match self.packed_layout() {
            true => 3 * self.dim,
            false => self.dim,
        }
    }

    /// Element of token 0, feature 0 of `part` in its tensor.
    fn offset(&self, part: Part) -> usize {
        match self.packed_layout() {
            true => part as usize * self.dim,
            false => 0,
        }
    }

    /// `part` of every (batch, head) inside its tensor.
    fn part_view(&self, part: Part) -> View {
        let (n, stride) = (self.tokens, self.stride());
        View {
            offset: self.offset(part) as u32,
            outer: (n * stride) as u32,
            inner: self.head_dim() as u32,
            row: stride as u32,
            col: 1,
        }
    }

    /// The `[tokens, tokens]` score matrices, contiguous per (batch, head).
    fn score_view(&self) -> View {
        let n = self.tokens;
        View {
            offset: 0,
            outer: (self.heads * n * n) as u32,
            inner: (n * n) as u32,
            row: n as u32,
            col: 1,
        }
    }

    /// One head's `[tokens, head_dim]` slice of the merged `[batch, tokens, dim]`.
    fn out_view(&self) -> View {
        View {
            offset: 0,
            outer: (self.tokens * self.dim) as u32,
            inner: self.head_dim() as u32,
            row: self.dim as u32,
            col: 1,
        }
    }

    fn dims(&self, m: usize, n: usize, k: usize) -> Dims {
        Dims {
            m,
            n,
            k,
            batch: self.batch * self.heads,
            inner_batch: self.heads,
        }
    }

    fn scale(&self) -> f32 {
        (self.head_dim() as f32).powf(-0.5)
    }

    fn scores_shape(&self) -> [usize; 3] {
        [self.batch * self.heads, self.tokens, self.tokens]
    }

    /// The value of `part`'s tensor.
    fn value<'c>(&self, cx: &'c CompileCx<'_>, part: Part) -> &'c Tensor {
        cx.value(self.inputs[self.slot(part)])
    }

    /// Per part, its gradient tensor and mode when the backward pass reaches the op and
    /// the part's variable wants a gradient.
    fn part_grads(
        &self,
        cx: &CompileCx<'_>,
        out: Var,
        modes: Modes<'_>,
    ) -> [Option<(Tensor, GradMode)>; 3] {
        PARTS.map(|part| {
            let slot = self.slot(part);
            let (_, dx, mode) = cx.backward(out, self.inputs[slot], modes[slot])?;
            Some((dx.clone(), mode))
        })
    }

    fn params(&self, mode: GradMode) -> AttnParams {
        AttnParams {
            rows: (self.batch * self.heads * self.tokens) as u32,
            tokens: self.tokens as u32,
            dim: self.dim as u32,
            heads: self.heads as u32,
            head_dim: self.head_dim() as u32,
            scale: self.scale(),
            accumulate: mode.flag(),
            causal: self.causal as u32,
            stride: self.stride() as u32,
            q_offset: self.offset(Part::Query) as u32,
            k_offset: self.offset(Part::Key) as u32,
            v_offset: self.offset(Part::Value) as u32,
        }
    }

    /// The fused kernels: one forward, one backward per part.
    fn fused(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let rows = self.batch * self.heads * self.tokens;
        let probs = cx.scratch(&self.scores_shape(), "coptim attention probabilities")?;
        let [q, k, v] = PARTS.map(|p| self.value(cx, p).clone());
        let o = cx.value(out).clone();
        let mut compiled = Compiled::forward(cx.launch(
            Kernel::AttentionForward,
            &self.params(GradMode::Overwrite),
            &[(Q, &q), (K, &k), (V, &v), (OUT, &o), (PROBS, &probs)],
            rows,
        ));
        let mut grads = self.part_grads(cx, out, modes);
        if grads.iter().all(Option::is_none) {
            return Ok(compiled);
        }
        let d_out = cx
            .out_grad(out)
            .expect("a part's gradient implies the output's");
        // dK needs the dS of the query kernel, which also writes dQ: into a scratch
        // tensor when Q itself wants no gradient.
        if grads[0].is_none() && grads[1].is_some() {
            let dq = cx.scratch(q.shape(), "coptim attention unused dQ")?;
            grads[0] = Some((dq, GradMode::Overwrite));
        }
        let d_scores = cx.scratch(&self.scores_shape(), "coptim attention dS")?;
        for (part, grad) in PARTS.into_iter().zip(grads) {
            let Some((dx, mode)) = grad else { continue };
            let mut tensors = match part {
                Part::Query => vec![
                    (K, &k),
                    (V, &v),
                    (OUT, &o),
                    (PROBS, &probs),
                    (D_OUT, &d_out),
                    (D_SCORES, &d_scores),
                ],
                // One body serves both: it binds what either reads.
                Part::Key | Part::Value => vec![
                    (Q, &q),
                    (PROBS, &probs),
                    (D_OUT, &d_out),
                    (D_SCORES, &d_scores),
                ],
            };
            tensors.push((D_QKV, &dx));
            let dispatch = cx.launch(part.kernel(), &self.params(mode), &tensors, rows);
            compiled.backward.push(dispatch);
        }
        Ok(compiled)
    }

    /// Batched matmuls through the score matrices, and a softmax (causal when the
    /// op is).
    fn matmuls(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let (n, hd) = (self.tokens, self.head_dim());
        // Scores before softmax; reused for dS in the backward pass.
        let scores = cx.scratch(&self.scores_shape(), "coptim attention scores")?;
        let probs = cx.scratch(&self.scores_shape(), "coptim attention probabilities")?;
        let [q, k, v] = PARTS.map(|p| (self.value(cx, p).clone(), self.part_view(p)));
        let (sv, ov) = (self.score_view(), self.out_view());
        let o = cx.value(out).clone();
        let (square, narrow) = (self.dims(n, n, hd), self.dims(n, hd, n));
        let forward = vec![
            Product::new((&q.0, q.1), (&k.0, k.1.t()), (&scores, sv), square)
                .scaled(self.scale())
                .dispatch(cx)?,
            softmax_forward(cx, &scores, &probs, n, self.causal),
            Product::new((&probs, sv), (&v.0, v.1), (&o, ov), narrow).dispatch(cx)?,
        ];
        let mut compiled = Compiled {
            forward,
            backward: Vec::new(),
        };
        let grads = self.part_grads(cx, out, modes);
        if grads.iter().any(Option::is_some) {
            let d_out = cx
                .out_grad(out)
                .expect("a part's gradient implies the output's");
            compiled.backward =
                self.matmuls_backward(cx, [&q, &k, &v], (&scores, &probs), &d_out, grads)?;
        }
        Ok(compiled)
    }

    /// The backward dispatches of the matmul path: dP, dS (into the scores buffer),
    /// then the gradient of each part that wants one, in part order.
    fn matmuls_backward(
        &self,
        cx: &mut CompileCx<'_>,
        [q, k, v]: [&(Tensor, View); 3],
        (d_scores, probs): (&Tensor, &Tensor),
        d_out: &Tensor,
        grads: [Option<(Tensor, GradMode)>; 3],
    ) -> Result<Vec<Dispatch>> {
        let (n, hd) = (self.tokens, self.head_dim());
        let d_probs = cx.scratch(&self.scores_shape(), "coptim attention dP")?;
        let (sv, ov) = (self.score_view(), self.out_view());
        let (square, narrow) = (self.dims(n, n, hd), self.dims(n, hd, n));
        let mut dispatches = vec![
            Product::new((d_out, ov), (&v.0, v.1.t()), (&d_probs, sv), square).dispatch(cx)?,
            softmax_backward(cx, probs, &d_probs, d_scores, n, GradMode::Overwrite),
        ];
        for (part, grad) in PARTS.into_iter().zip(grads) {
            let Some((dx, mode)) = grad else { continue };
            let dst = (&dx, self.part_view(part));
            // dQ = scale dS K, dK = scale dS^T Q, dV = P^T dO.
            let product = match part {
                Part::Query => Product::new((d_scores, sv), (&k.0, k.1), dst, narrow),
                Part::Key => Product::new((d_scores, sv.t()), (&q.0, q.1), dst, narrow),
                Part::Value => Product::new((probs, sv.t()), (d_out, ov), dst, narrow),
            };
            let scale = if part == Part::Value {
                1.0
            } else {
                self.scale()
            };
            dispatches.push(product.scaled(scale).mode(mode).dispatch(cx)?);
        }
        Ok(dispatches)
    }
}

impl Op for Attention {
    fn inputs(&self) -> Vec<Var> {
        self.inputs.clone()
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let fused = self.tokens <= cx.kernels.fused_attention_max()
            && self.head_dim() <= FUSED_MAX_HEAD_DIM;
        match fused {
            true => self.fused(cx, out, modes),
            false => self.matmuls(cx, out, modes),
        }
    }
}
