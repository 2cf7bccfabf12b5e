//! Seeded, platform-independent parameter initialization.
//!
//! Every value is drawn from one ChaCha8 stream (seeded with `seed_from_u64`) in the
//! order the parameters are declared, using only IEEE-exact operations (`+ - * /`
//! and `sqrt`) plus a logarithm computed here from those: the same seed gives
//! bit-identical weights on every platform, wasm included (no libm calls).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How one parameter tensor is initialized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Uniform on `[-bound, bound)`: PyTorch's `nn.Linear` default (kaiming-uniform
    /// with `a = sqrt(5)`) for weights and biases is `bound = 1 / sqrt(fan_in)`.
    Uniform {
        /// Half-width of the interval.
        bound: f64,
    },
    /// Normal with mean 0 and standard deviation `std`, redrawn outside `[lo, hi]`
    /// (`timm.layers.trunc_normal_(std=.02)` uses the absolute bounds -2 and 2).
    TruncNormal {
        /// Standard deviation before truncation.
        std: f64,
        /// Lower bound (absolute).
        lo: f64,
        /// Upper bound (absolute).
        hi: f64,
    },
    /// Every element equal to a constant (LayerNorm weight 1, biases 0).
    Constant(f64),
}

impl Init {
    /// `Uniform` with `bound = 1 / sqrt(fan_in)`, PyTorch's Linear and Conv2d default.
    pub fn torch_default(fan_in: usize) -> Self {
        Init::Uniform {
            bound: 1.0 / (fan_in.max(1) as f64).sqrt(),
        }
    }

    /// timm's `trunc_normal_(std=std)` (bounds -2 and 2).
    pub fn trunc_normal(std: f64) -> Self {
        Init::TruncNormal {
            std,
            lo: -2.0,
            hi: 2.0,
        }
    }

    /// Normal with mean 0 and standard deviation `std`, untruncated
    /// (`torch.nn.init.normal_(std=std)`, HF LLaMA's initialization).
    pub fn normal(std: f64) -> Self {
        Init::TruncNormal {
            std,
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY,
        }
    }

    /// Draws `n` values from `rng`.
    pub fn sample(&self, rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        match *self {
            Init::Uniform { bound } => (0..n)
                .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32)
                .collect(),
            Init::TruncNormal { std, lo, hi } => (0..n)
                .map(|_| {
                    loop {
                        let v = std * standard_normal(rng);
                        if (lo..=hi).contains(&v) {
                            break v as f32;
                        }
                    }
                })
                .collect(),
            Init::Constant(c) => vec![c as f32; n],
        }
    }
}

/// The generator every model initialization starts from.
pub fn rng_for_seed(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A standard normal variate (Marsaglia's polar method; the second variate of each
/// pair is discarded so that the stream position depends only on the draw count).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    loop {
        let u = rng.random::<f64>() * 2.0 - 1.0;
        let v = rng.random::<f64>() * 2.0 - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * ln(s) / s).sqrt();
        }
    }
}

/// Natural logarithm of a positive, finite, normal `x` from exact operations only:
/// `x = m * 2^e` with `m` in `[sqrt(1/2), sqrt(2))`, `ln m = 2 atanh((m - 1) / (m + 1))`
/// by its series (accurate to a few ulps; what matters here is that it is exact
/// arithmetic, hence identical everywhere).
fn ln(x: f64) -> f64 {
    const LN_2: f64 = std::f64::consts::LN_2;
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    while term.abs() > 1e-18 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    e as f64 * LN_2 + 2.0 * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std() {
        for x in [1e-300, 1e-9, 0.1, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 1e9] {
            let (a, b) = (ln(x), x.ln());
            assert!(
                (a - b).abs() <= 1e-15 * b.abs().max(1.0),
                "ln({x}) = {a}, std {b}"
            );
        }
    }

    #[test]
    fn samples_have_the_right_spread() {
        let mut rng = rng_for_seed(0);
        let v = Init::trunc_normal(0.02).sample(&mut rng, 20000);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 1e-3 && (var.sqrt() - 0.02).abs() < 1e-3);
        let u = Init::torch_default(16).sample(&mut rng, 1000);
        assert!(u.iter().all(|x| x.abs() <= 0.25));
    }
}
