//! Rotary position embedding (RoPE), HF's `rotate_half` convention, with the token
//! index as position. The cos/sin table is computed on the host, in f32 as PyTorch's
//! `LlamaRotaryEmbedding` computes it (so a PyTorch model with the same weights sees
//! the same angles), and uploaded once when the graph is built: WGSL's `cos` and `sin`
//! promise no accuracy for angles as large as the positions, so the kernel could not
//! match PyTorch computing them itself.

use crate::error::{Error, Result};
use crate::nn::bindings::{COS_SIN, DY, Family, OUT, X, uniform_block};
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::modules::Kernel;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Modes, Op, reject_shape};
use crate::nn::tensor::DType;

uniform_block! {
    /// The uniform block of `nn_rope.wgsl`.
    struct RopeParams {
        /// batch * tokens * heads * half: the invocation space.
        pairs: u32,
        /// head_dim / 2.
        half: u32,
        heads: u32,
        tokens: u32,
        /// [`GradMode::flag`] of the input gradient.
        accumulate: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

/// The bindings of `nn_rope.wgsl`.
pub(crate) const ROPE: Family = Family::new::<RopeParams>(&[X, DY, COS_SIN, OUT]);

/// `theta^(-2i / head_dim)` for `i < head_dim / 2` in f32 as PyTorch (HF
/// `_compute_default_rope_parameters`) computes it: `1 / theta^(f32(2i) / f32(head_dim))`,
/// each step rounded to f32. The power is taken in f64 and rounded once, so the result
/// is the same on every platform.
fn inv_freq(head_dim: usize, theta: f32) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / head_dim as f32;
            1.0 / f64::from(theta).powf(f64::from(exponent)) as f32
        })
        .collect()
}

/// `(cos, sin)` of the angle `f32(t) * inv_freq[i]` (rounded to f32, as PyTorch's
/// `LlamaRotaryEmbedding.forward` makes it) for `t < tokens`, `i < head_dim / 2`, as a
/// `[tokens, head_dim / 2, 2]` table. Cosines and sines are taken in f64 and rounded
/// once (PyTorch's f32 `cos` and `sin` are within an ulp of them).
pub(crate) fn cos_sin_table(tokens: usize, head_dim: usize, theta: f32) -> Vec<f32> {
    let inv_freq = inv_freq(head_dim, theta);
    (0..tokens)
        .flat_map(|t| {
            inv_freq.iter().flat_map(move |&f| {
                let angle = f64::from(t as f32 * f);
                [angle.cos() as f32, angle.sin() as f32]
            })
        })
        .collect()
}

/// RoPE on `[batch, tokens, heads * head_dim]`.
#[derive(Debug)]
pub(crate) struct Rope {
    x: Var,
    tokens: usize,
    heads: usize,
    head_dim: usize,
    theta: f32,
    /// Rotated pairs in all: batch * tokens * heads * head_dim / 2.
    pairs: usize,
}

impl Rope {
    pub fn new(g: &GraphBuilder, x: Var, heads: usize, theta: f32) -> Result<(Self, Vec<usize>)> {
        let s = g.shape(x);
        let fits = g.dtype(x) == DType::F32
            && s.len() == 3
            && heads > 0
            && s[2].is_multiple_of(heads)
            && (s[2] / heads).is_multiple_of(2)
            && s[2] > 0;
        reject_shape(!fits, "rope", || {
            format!(
                "x {s:?} must be f32 [batch, tokens, dim] with dim split by {heads} heads into an even, nonzero head dimension"
            )
        })?;
        if !(theta.is_finite() && theta > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "rope theta {theta} must be positive and finite"
            )));
        }
        let op = Self {
            x,
            tokens: s[1],
            heads,
            head_dim: s[2] / heads,
            theta,
            pairs: s[0] * s[1] * s[2] / 2,
        };
        Ok((op, s.to_vec()))
    }

    fn params(&self, mode: GradMode) -> RopeParams {
        RopeParams {
            pairs: self.pairs as u32,
            half: (self.head_dim / 2) as u32,
            heads: self.heads as u32,
            tokens: self.tokens as u32,
            accumulate: mode.flag(),
            ..Default::default()
        }
    }
}

impl Op for Rope {
    fn inputs(&self) -> Vec<Var> {
        vec![self.x]
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let half = self.head_dim / 2;
        let table = cx.scratch(&[self.tokens, half, 2], "coptim rope cos_sin")?;
        table.write_f32(
            cx.kernels.context(),
            &cos_sin_table(self.tokens, self.head_dim, self.theta),
        )?;
        let (x, y) = (cx.value(self.x), cx.value(out));
        let mut compiled = Compiled::forward(cx.launch(
            Kernel::RopeForward,
            &self.params(GradMode::Overwrite),
            &[(X, x), (COS_SIN, &table), (OUT, y)],
            self.pairs,
        ));
        if let Some((dy, dx, mode)) = cx.backward(out, self.x, modes[0]) {
            compiled.backward.push(cx.launch(
                Kernel::RopeBackward,
                &self.params(mode),
                &[(DY, &dy), (COS_SIN, &table), (OUT, dx)],
                self.pairs,
            ));
        }
        Ok(compiled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table holds cos and sin of t * theta^(-2i / head_dim) to within the f32
    /// rounding of the frequency and the angle: at t = 0 exactly (1, 0), at i = 0
    /// (frequency 1) exactly the f32 cos and sin of t, elsewhere within
    /// `t * 2^-20` of the f64 angle's.
    #[test]
    fn table_is_the_f32_angles() {
        let (tokens, head_dim, theta) = (130, 16, 10_000.0f32);
        let table = cos_sin_table(tokens, head_dim, theta);
        assert_eq!(table.len(), tokens * head_dim);
        for t in 0..tokens {
            for i in 0..head_dim / 2 {
                let k = 2 * (t * head_dim / 2 + i);
                let angle = t as f64 * 10_000f64.powf(-2.0 * i as f64 / head_dim as f64);
                let tol = t as f64 * 2f64.powi(-20) + 1e-7;
                assert!(
                    (f64::from(table[k]) - angle.cos()).abs() <= tol,
                    "cos t {t} i {i}"
                );
                assert!(
                    (f64::from(table[k + 1]) - angle.sin()).abs() <= tol,
                    "sin t {t} i {i}"
                );
                if i == 0 {
                    assert_eq!(table[k], (t as f32 as f64).cos() as f32);
                }
            }
        }
        assert_eq!(&table[..2], &[1.0, 0.0]);
    }

    /// The frequencies and the angles at t = 127 are PyTorch's, bit for bit. Golden
    /// bits from torch 2.x on the CPU:
    /// `inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))`,
    /// `angles = (inv[:, None] @ torch.tensor([[127.0]])).squeeze(1)`, viewed as int32.
    #[test]
    fn frequencies_and_angles_are_pytorchs() {
        let golden: [(usize, &[u32], &[u32]); 2] = [
            (
                6,
                &[0x3f800000, 0x3d3e1e95, 0x3b0d3169],
                &[0x42fe0000, 0x40bca258, 0x3e8c1706],
            ),
            (
                16,
                &[
                    0x3f800000, 0x3ea1e89b, 0x3dcccccd, 0x3d0186e3, 0x3c23d70a, 0x3b4f3e38,
                    0x3a83126f, 0x39a5cb60,
                ],
                &[
                    0x42fe0000, 0x4220a4ca, 0x414b3333, 0x408083d5, 0x3fa28f5c, 0x3ecd9fbc,
                    0x3e020c4a, 0x3d247fc9,
                ],
            ),
        ];
        for (head_dim, inv_bits, angle_bits) in golden {
            let inv = inv_freq(head_dim, 10_000.0);
            let bits: Vec<u32> = inv.iter().map(|f| f.to_bits()).collect();
            assert_eq!(bits, inv_bits, "inv_freq, head_dim {head_dim}");
            let angles: Vec<u32> = inv.iter().map(|f| (127.0 * f).to_bits()).collect();
            assert_eq!(angles, angle_bits, "angles at t = 127, head_dim {head_dim}");
        }
    }
}
