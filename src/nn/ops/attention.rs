//! Scaled dot-product multi-head self-attention on a packed `qkv` tensor.
//!
//! Every product reads Q, K and V in place inside `qkv` (per-head strided views) and
//! writes the output with heads already merged, so no permute copies are needed:
//!
//! ```text
//! forward:  S = scale * Q K^T      P = softmax(S)      O = P V
//! backward: dP = dO V^T            dV = P^T dO
//!           dS = P * (dP - rowsum(dP * P))
//!           dQ = scale * dS K      dK = scale * dS^T Q
//! ```

use crate::error::{Error, Result};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::ops::matmul::{Dims, View, matmul_dispatch};
use crate::nn::ops::softmax::{softmax_backward, softmax_forward};
use crate::nn::ops::{CompileCx, Compiled, GradMode, Op, wanted};
use crate::nn::tensor::DType;

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
}

impl Op for Attention {
    fn inputs(&self) -> Vec<Var> {
        vec![self.qkv]
    }

    fn compile(
        &self,
        cx: &mut CompileCx<'_>,
        out: Var,
        modes: &[Option<GradMode>],
    ) -> Result<Compiled> {
        let (n, hd) = (self.tokens, self.head_dim());
        let scale = (hd as f32).powf(-0.5);
        let scores_shape = [self.batch * self.heads, n, n];
        // Scores before softmax; reused for dS in the backward pass.
        let scores = cx.scratch(&scores_shape, "coptim attention scores")?;
        let probs = cx.scratch(&scores_shape, "coptim attention probabilities")?;
        let (q, k, v) = (self.qkv_view(0), self.qkv_view(1), self.qkv_view(2));
        let (sv, ov) = (self.score_view(), self.out_view());
        let (qkv, o) = (cx.value(self.qkv).clone(), cx.value(out).clone());
        let overwrite = GradMode::Overwrite;
        let mut compiled = Compiled::default();
        compiled.forward.push(matmul_dispatch(
            cx,
            (&qkv, q),
            (&qkv, k.t()),
            (&scores, sv),
            self.dims(n, n, hd),
            scale,
            overwrite,
            None,
        )?);
        compiled
            .forward
            .push(softmax_forward(cx, &scores, &probs, n));
        compiled.forward.push(matmul_dispatch(
            cx,
            (&probs, sv),
            (&qkv, v),
            (&o, ov),
            self.dims(n, hd, n),
            1.0,
            overwrite,
            None,
        )?);
        let Some(d_out) = cx.out_grad(out) else {
            return Ok(compiled);
        };
        let Some((dqkv, mode)) = wanted(cx, self.qkv, modes[0]) else {
            return Ok(compiled);
        };
        let dqkv = dqkv.clone();
        let d_probs = cx.scratch(&scores_shape, "coptim attention dP")?;
        let d_scores = &scores;
        let b = &mut compiled.backward;
        b.push(matmul_dispatch(
            cx,
            (&d_out, ov),
            (&qkv, v.t()),
            (&d_probs, sv),
            self.dims(n, n, hd),
            1.0,
            overwrite,
            None,
        )?);
        b.push(matmul_dispatch(
            cx,
            (&probs, sv.t()),
            (&d_out, ov),
            (&dqkv, v),
            self.dims(n, hd, n),
            1.0,
            mode,
            None,
        )?);
        b.push(softmax_backward(
            cx, &probs, &d_probs, d_scores, n, overwrite,
        ));
        b.push(matmul_dispatch(
            cx,
            (d_scores, sv),
            (&qkv, k),
            (&dqkv, q),
            self.dims(n, hd, n),
            scale,
            mode,
            None,
        )?);
        b.push(matmul_dispatch(
            cx,
            (d_scores, sv.t()),
            (&qkv, q),
            (&dqkv, k),
            self.dims(n, hd, n),
            scale,
            mode,
            None,
        )?);
        Ok(compiled)
    }
}
