//! Scaled dot-product multi-head self-attention on a packed `qkv` tensor.
//!
//! Short sequences (at most [`FUSED_MAX_TOKENS`] tokens) run fused
//! (`nn_attention.wgsl`): one kernel forward (scores, softmax and weighted sum per
//! query row, nothing but the probabilities through memory) and two backward (per
//! query row: dS and dQ; per key row: dK and dV). Longer ones run as batched matmuls
//! and a softmax, whose tiles pay off there. Either way Q, K and V are read in place
//! inside `qkv` (per-head strided views) and the output is written with heads
//! already merged, so no permute copies are needed:
//!
//! ```text
//! forward:  S = scale * Q K^T      P = softmax(S)      O = P V
//! backward: dP = dO V^T            dV = P^T dO
//!           dS = P * (dP - rowsum(dP * P))
//!           dQ = scale * dS K      dK = scale * dS^T Q
//! ```

use crate::error::{Error, Result};
use crate::nn::bindings::{D_OUT, D_QKV, D_SCORES, Family, OUT, PROBS, QKV, uniform_block};
use crate::nn::dispatch::Dispatch;
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::matmul::{Dims, Product, View};
use crate::nn::ops::softmax::{softmax_backward, softmax_forward};
use crate::nn::ops::{CompileCx, Compiled, GradMode, Modes, Op};
use crate::nn::tensor::{DType, Tensor};

/// Longest sequence that runs through the fused kernels. Each invocation of the
/// fused kernels loops over all tokens of its head, so their work per invocation
/// grows with the sequence while the matmul path's tiles amortize it.
pub(crate) const FUSED_MAX_TOKENS: usize = 64;

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
        /// [`GradMode::flag`] of the qkv gradient.
        accumulate: u32,
        pad0: u32,
    }
}

/// The bindings of `nn_attention.wgsl`.
pub(crate) const ATTENTION: Family =
    Family::new::<AttnParams>(&[QKV, OUT, PROBS, D_OUT, D_SCORES, D_QKV]);

/// Multi-head attention: `[batch, tokens, 3 * dim]` to `[batch, tokens, dim]`.
#[derive(Debug)]
pub(crate) struct Attention {
    qkv: Var,
    batch: usize,
    tokens: usize,
    dim: usize,
    heads: usize,
}

impl Attention {
    pub fn new(g: &GraphBuilder, qkv: Var, heads: usize) -> Result<(Self, Vec<usize>)> {
        let s = g.shape(qkv);
        if g.dtype(qkv) != DType::F32
            || s.len() != 3
            || !s[2].is_multiple_of(3)
            || heads == 0
            || !(s[2] / 3).is_multiple_of(heads)
        {
            return Err(Error::shape(
                "attention",
                format!(
                    "qkv {s:?} must be f32 [batch, tokens, 3 * dim] with dim divisible by {heads} heads"
                ),
            ));
        }
        let (batch, tokens, dim) = (s[0], s[1], s[2] / 3);
        Ok((
            Self {
                qkv,
                batch,
                tokens,
                dim,
                heads,
            },
            vec![batch, tokens, dim],
        ))
    }

    fn head_dim(&self) -> usize {
        self.dim / self.heads
    }

    /// Q, K or V (`part` 0, 1, 2) of every (batch, head) inside `qkv`.
    fn qkv_view(&self, part: usize) -> View {
        let (n, d, hd) = (self.tokens, self.dim, self.head_dim());
        View {
            offset: (part * d) as u32,
            outer: (n * 3 * d) as u32,
            inner: hd as u32,
            row: (3 * d) as u32,
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

    /// The fused kernels: one forward, two backward.
    fn fused(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let n = self.tokens;
        let rows = self.batch * self.heads * n;
        let scores_shape = [self.batch * self.heads, n, n];
        let probs = cx.scratch(&scores_shape, "coptim attention probabilities")?;
        let (qkv, o) = (cx.value(self.qkv).clone(), cx.value(out).clone());
        let params = |mode: GradMode| AttnParams {
            rows: rows as u32,
            tokens: n as u32,
            dim: self.dim as u32,
            heads: self.heads as u32,
            head_dim: self.head_dim() as u32,
            scale: self.scale(),
            accumulate: mode.flag(),
            pad0: 0,
        };
        let mut compiled = Compiled::forward(cx.launch(
            Kernel::AttentionForward,
            &params(GradMode::Overwrite),
            &[(QKV, &qkv), (OUT, &o), (PROBS, &probs)],
            rows,
        ));
        let Some((d_out, dqkv, mode)) = cx.backward(out, self.qkv, modes[0]) else {
            return Ok(compiled);
        };
        let dqkv: Tensor = dqkv.clone();
        let d_scores = cx.scratch(&scores_shape, "coptim attention dS")?;
        let saved = [(QKV, &qkv), (PROBS, &probs), (D_OUT, &d_out)];
        let grads = [(D_SCORES, &d_scores), (D_QKV, &dqkv)];
        for (kernel, extra) in [
            (Kernel::AttentionBackwardQuery, Some((OUT, &o))),
            (Kernel::AttentionBackwardKey, None),
        ] {
            let tensors: Vec<_> = saved.into_iter().chain(extra).chain(grads).collect();
            compiled
                .backward
                .push(cx.launch(kernel, &params(mode), &tensors, rows));
        }
        Ok(compiled)
    }

    /// Batched matmuls through the score matrices, and a softmax.
    fn matmuls(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let (n, hd) = (self.tokens, self.head_dim());
        let scale = self.scale();
        let scores_shape = [self.batch * self.heads, n, n];
        // Scores before softmax; reused for dS in the backward pass.
        let scores = cx.scratch(&scores_shape, "coptim attention scores")?;
        let probs = cx.scratch(&scores_shape, "coptim attention probabilities")?;
        let (q, k, v) = (self.qkv_view(0), self.qkv_view(1), self.qkv_view(2));
        let (sv, ov) = (self.score_view(), self.out_view());
        let (qkv, o) = (cx.value(self.qkv).clone(), cx.value(out).clone());
        let (square, narrow) = (self.dims(n, n, hd), self.dims(n, hd, n));
        let forward = vec![
            Product::new((&qkv, q), (&qkv, k.t()), (&scores, sv), square)
                .scaled(scale)
                .dispatch(cx)?,
            softmax_forward(cx, &scores, &probs, n),
            Product::new((&probs, sv), (&qkv, v), (&o, ov), narrow).dispatch(cx)?,
        ];
        let mut compiled = Compiled {
            forward,
            backward: Vec::new(),
        };
        let Some((d_out, dqkv, mode)) = cx.backward(out, self.qkv, modes[0]) else {
            return Ok(compiled);
        };
        let dqkv = dqkv.clone();
        compiled.backward =
            self.matmuls_backward(cx, (&qkv, &scores, &probs), &d_out, &dqkv, mode)?;
        Ok(compiled)
    }

    /// The backward dispatches of the matmul path; `saved` is (qkv, scores, probs)
    /// and the scores buffer is reused for dS.
    fn matmuls_backward(
        &self,
        cx: &mut CompileCx<'_>,
        (qkv, d_scores, probs): (&Tensor, &Tensor, &Tensor),
        d_out: &Tensor,
        dqkv: &Tensor,
        mode: GradMode,
    ) -> Result<Vec<Dispatch>> {
        let (n, hd) = (self.tokens, self.head_dim());
        let d_probs = cx.scratch(&[self.batch * self.heads, n, n], "coptim attention dP")?;
        let (q, k, v) = (self.qkv_view(0), self.qkv_view(1), self.qkv_view(2));
        let (sv, ov) = (self.score_view(), self.out_view());
        let (square, narrow) = (self.dims(n, n, hd), self.dims(n, hd, n));
        // dQ and dK: scale * dS K and scale * dS^T Q, written into dqkv.
        let d_qk = |(ds, kq, dst): (View, View, View)| {
            Product::new((d_scores, ds), (qkv, kq), (dqkv, dst), narrow)
                .scaled(self.scale())
                .mode(mode)
                .dispatch(cx)
        };
        Ok(vec![
            Product::new((d_out, ov), (qkv, v.t()), (&d_probs, sv), square).dispatch(cx)?,
            Product::new((probs, sv.t()), (d_out, ov), (dqkv, v), narrow)
                .mode(mode)
                .dispatch(cx)?,
            softmax_backward(cx, probs, &d_probs, d_scores, n, GradMode::Overwrite),
            d_qk((sv, k, q))?,
            d_qk((sv.t(), q, k))?,
        ])
    }
}

impl Op for Attention {
    fn inputs(&self) -> Vec<Var> {
        vec![self.qkv]
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        match self.tokens <= FUSED_MAX_TOKENS {
            true => self.fused(cx, out, modes),
            false => self.matmuls(cx, out, modes),
        }
    }
}
