//! The f64 reference of the Adafactor family, tensor by tensor: timm's `Adafactor`
//! (`adafactor`, `cadafactor`; timm/optim/adafactor.py), the Hugging Face rule C-Optim's
//! C-Adafactor builds on (c_adafactor.py), and big_vision's variant
//! (`adafactorbv`, `cadafactorbv`; timm/optim/adafactor_bv.py). The GPU members are
//! held to it; it is held to the golden vectors of `scripts/golden_adafactor.py`.
//!
//! A step of one tensor with gradient `g` (step `t` from 1):
//!
//! ```text
//! s      = g^2 + eps                          (eps: timm's eps1, 1e-30)
//! factored over (col, row):  R = lerp(R, mean_row(s), 1 - beta2_t)
//!                            C = lerp(C, mean_col(s), 1 - beta2_t)
//!                            u = g / sqrt(R / mean_col(R)) / sqrt(C)
//! otherwise:                 V = lerp(V, s, 1 - beta2_t);  u = g / sqrt(V)
//! u     /= max(rms(u) / clip_threshold, 1)
//! ```
//!
//! then each variant's momentum, caution, learning rate and weight decay (see
//! `AdafactorRule::finish`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::config::Caution;
use crate::optim::factored::{AxisView, FactoredDims, Factoring};

/// Rounds to bfloat16 (round to nearest, ties to even; through f32 as torch does).
fn to_bf16(x: f64) -> f64 {
    let bits = (x as f32).to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) & 0xffff_0000;
    f32::from_bits(rounded) as f64
}

/// timm's `Adafactor` and the Hugging Face rule of C-Optim's c_adafactor.py.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimmAdafactor {
    /// The external learning rate; `None`: the relative step `min(min_step, 1/sqrt(t))`.
    pub lr: Option<f64>,
    /// Added to every `g^2` (timm `eps`, Hugging Face `eps[0]`).
    pub eps: f64,
    /// Lower bound of the parameter scale (timm `eps_scale`, Hugging Face `eps[1]`).
    pub eps_scale: f64,
    /// Update RMS threshold.
    pub clip_threshold: f64,
    /// `beta2_t = 1 - t^decay_rate`.
    pub decay_rate: f64,
    /// First-moment decay; `None`: no first moment (then caution has nothing to mask).
    pub beta1: Option<f64>,
    /// Decoupled decay, scaled by the step's learning rate.
    pub weight_decay: f64,
    /// Scale the learning rate by `max(eps_scale, rms(p))`.
    pub scale_parameter: bool,
    /// Relative step `min(1e-6 t, 1/sqrt(t))` instead of `min(1e-2, 1/sqrt(t))`.
    pub warmup_init: bool,
    /// Which dimensions to factor.
    pub factoring: Factoring,
    /// The parameter scale applies to an external learning rate too (Hugging Face and
    /// C-Optim; timm applies it to the relative step only).
    pub scale_external_lr: bool,
}

impl TimmAdafactor {
    /// timm's defaults (relative step, parameter scale, no first moment).
    pub fn timm() -> Self {
        Self {
            lr: None,
            eps: 1e-30,
            eps_scale: 1e-3,
            clip_threshold: 1.0,
            decay_rate: -0.8,
            beta1: None,
            weight_decay: 0.0,
            scale_parameter: true,
            warmup_init: false,
            factoring: Factoring::Timm { min_dim_size: 16 },
            scale_external_lr: false,
        }
    }

    /// C-Optim's c_adafactor.py defaults (Hugging Face's rule: every tensor of rank
    /// >= 2 factored over its last two dimensions).
    pub fn coptim() -> Self {
        Self {
            factoring: Factoring::LastTwo,
            scale_external_lr: true,
            ..Self::timm()
        }
    }

    /// The step's learning rate before the parameter scale (the external one, or the
    /// relative step `min(min_step, 1/sqrt(t))`), and whether the parameter scale
    /// `max(eps_scale, rms(p))` multiplies it (timm `_get_lr`).
    pub fn base_lr(&self, t: i32) -> (f64, bool) {
        let relative = self.lr.is_none();
        let base = self.lr.unwrap_or_else(|| {
            let min_step = if self.warmup_init {
                1e-6 * t as f64
            } else {
                1e-2
            };
            min_step.min(1.0 / (t as f64).sqrt())
        });
        (
            base,
            self.scale_parameter && (relative || self.scale_external_lr),
        )
    }

    /// The step's learning rate for a parameter of RMS `rms`.
    fn lr_at(&self, t: i32, rms: f64) -> f64 {
        match self.base_lr(t) {
            (base, true) => base * self.eps_scale.max(rms),
            (base, false) => base,
        }
    }
}

/// big_vision's Adafactor as timm's `AdafactorBigVision`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BigVisionAdafactor {
    /// The learning rate.
    pub lr: f64,
    /// Factors the two largest dimensions when the smaller is at least this.
    pub min_dim_size: usize,
    /// `beta2_t = min(beta2_cap, 1 - (t - decay_offset)^-decay_rate)`.
    pub decay_rate: f64,
    /// Steps the decay schedule is offset by (clamped to step 1).
    pub decay_offset: i32,
    /// Upper bound of `beta2_t`.
    pub beta2_cap: f64,
    /// Momentum; `None`: none (then caution has nothing to mask).
    pub momentum: Option<f64>,
    /// Keep the momentum in bfloat16 (timm's default) instead of f32.
    pub momentum_bf16: bool,
    /// Added to every `g^2` (timm: 1e-30 for f32 gradients).
    pub eps: f64,
    /// Decoupled decay.
    pub weight_decay: f64,
    /// Update RMS threshold; `None`: no clipping.
    pub clipping_threshold: Option<f64>,
    /// Decay not scaled by the learning rate (`p *= 1 - wd`).
    pub unscaled_wd: bool,
}

impl Default for BigVisionAdafactor {
    /// timm's defaults.
    fn default() -> Self {
        Self {
            lr: 1.0,
            min_dim_size: 16,
            decay_rate: 0.8,
            decay_offset: 0,
            beta2_cap: 0.999,
            momentum: Some(0.9),
            momentum_bf16: true,
            eps: 1e-30,
            weight_decay: 0.0,
            clipping_threshold: None,
            unscaled_wd: false,
        }
    }
}

/// One member of the family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdafactorRule {
    /// timm's `Adafactor` or C-Optim's.
    Timm(TimmAdafactor),
    /// timm's `AdafactorBigVision`.
    BigVision(BigVisionAdafactor),
}

/// One tensor's state, named as timm names it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdafactorState {
    /// Steps taken.
    pub step: i32,
    /// The first moment (empty without one).
    pub exp_avg: Vec<f64>,
    /// Means over the row-reduced dimension (factored tensors).
    pub exp_avg_sq_row: Vec<f64>,
    /// Means over the column-reduced dimension (factored tensors).
    pub exp_avg_sq_col: Vec<f64>,
    /// The full second moment (tensors not factored).
    pub exp_avg_sq: Vec<f64>,
}

/// A tensor's factored layout: its view and which of its two dimensions the rows
/// reduce.
struct Factored {
    view: AxisView,
    rows_reduce_q: bool,
}

impl Factored {
    fn new(shape: &[usize], dims: FactoredDims) -> Self {
        Self {
            view: AxisView::new(shape, dims.col_reduces, dims.row_reduces),
            rows_reduce_q: dims.row_reduces > dims.col_reduces,
        }
    }

    /// (row index, column index, index of the mean over both) of element `e`.
    fn indices(&self, e: usize) -> (usize, usize, usize) {
        let v = &self.view;
        let (q, p) = (v.q_mean_index(e), v.p_mean_index(e));
        let both = v.p_mean_index(e) / (v.n_q * v.inner) * v.inner + e % v.inner;
        if self.rows_reduce_q {
            (q, p, both)
        } else {
            (p, q, both)
        }
    }

    /// (rows, columns) lengths.
    fn lens(&self) -> (usize, usize) {
        let v = &self.view;
        if self.rows_reduce_q {
            (v.q_means_len(), v.p_means_len())
        } else {
            (v.p_means_len(), v.q_means_len())
        }
    }
}

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

fn lerp(a: &mut f64, b: f64, w: f64) {
    *a += w * (b - *a);
}

impl AdafactorRule {
    /// Checks the rule with `caution`: caution needs a first moment to mask (timm's
    /// `Adafactor(caution=True)` without `betas`, and `AdafactorBigVision` without
    /// momentum, silently step without a mask; timm's `cadafactor` name sets
    /// betas (0.9, 0.999) for that reason), warm-up needs the relative step, and
    /// decays lie in [0, 1).
    pub fn validate(&self, caution: Caution) -> Result<()> {
        let (first_moment, what) = match self {
            AdafactorRule::Timm(a) => {
                if a.warmup_init && a.lr.is_some() {
                    return Err(Error::InvalidConfig(
                        "Adafactor's warmup_init needs the relative step (no external lr)".into(),
                    ));
                }
                (a.beta1, "beta1 (timm `betas`)")
            }
            AdafactorRule::BigVision(a) => (a.momentum, "momentum"),
        };
        match first_moment {
            Some(b) if !(0.0..1.0).contains(&b) => Err(Error::InvalidConfig(format!(
                "Adafactor's {what} = {b} is not in [0, 1)"
            ))),
            None if caution.is_on() => Err(Error::InvalidConfig(format!(
                "caution masks Adafactor's first moment, and this configuration keeps none: \
                 set {what} (timm's class would silently step without a mask)"
            ))),
            _ => Ok(()),
        }
    }

    /// The rule at external learning rate `lr` (big_vision's rate, or timm's external
    /// one; timm's relative step, `lr: None`, is kept). Fails unless `lr` is finite
    /// and non-negative.
    pub fn with_lr(self, lr: f64) -> Result<Self> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::InvalidConfig(format!(
                "learning rate {lr} is not a finite non-negative number"
            )));
        }
        Ok(match self {
            AdafactorRule::Timm(a) => AdafactorRule::Timm(TimmAdafactor {
                lr: a.lr.map(|_| lr),
                ..a
            }),
            AdafactorRule::BigVision(a) => AdafactorRule::BigVision(BigVisionAdafactor { lr, ..a }),
        })
    }

    /// The external learning rate (`None`: timm's relative step).
    pub fn lr(&self) -> Option<f64> {
        match self {
            AdafactorRule::Timm(a) => a.lr,
            AdafactorRule::BigVision(a) => Some(a.lr),
        }
    }

    /// The dimensions a tensor of `shape` is factored over.
    pub fn factored_dims(&self, shape: &[usize]) -> Option<FactoredDims> {
        match self {
            AdafactorRule::Timm(a) => a.factoring.dims(shape),
            AdafactorRule::BigVision(a) => Factoring::LargestTwo {
                min_dim_size: a.min_dim_size,
            }
            .dims(shape),
        }
    }

    /// `1 - beta2_t` of step `t`.
    pub(crate) fn second_moment_weight(&self, t: i32) -> f64 {
        match self {
            AdafactorRule::Timm(a) => (t as f64).powf(a.decay_rate),
            AdafactorRule::BigVision(a) => {
                let step = (t - a.decay_offset).max(1) as f64;
                1.0 - a.beta2_cap.min(1.0 - step.powf(-a.decay_rate))
            }
        }
    }

    /// Added to every `g^2`.
    pub(crate) fn eps(&self) -> f64 {
        match self {
            AdafactorRule::Timm(a) => a.eps,
            AdafactorRule::BigVision(a) => a.eps,
        }
    }

    /// The update RMS threshold, if it clips.
    pub(crate) fn clip_threshold(&self) -> Option<f64> {
        match self {
            AdafactorRule::Timm(a) => Some(a.clip_threshold),
            AdafactorRule::BigVision(a) => a.clipping_threshold,
        }
    }

    /// Zero state for a tensor of `shape`.
    pub fn init_state(&self, shape: &[usize]) -> AdafactorState {
        let n: usize = shape.iter().product();
        let momentum = match self {
            AdafactorRule::Timm(a) => a.beta1.is_some(),
            AdafactorRule::BigVision(a) => a.momentum.is_some(),
        };
        let mut s = AdafactorState {
            exp_avg: vec![0.0; if momentum { n } else { 0 }],
            ..AdafactorState::default()
        };
        match self.factored_dims(shape) {
            Some(dims) => {
                let (rows, cols) = Factored::new(shape, dims).lens();
                s.exp_avg_sq_row = vec![0.0; rows];
                s.exp_avg_sq_col = vec![0.0; cols];
            }
            None => s.exp_avg_sq = vec![0.0; n],
        }
        s
    }

    /// One step of a tensor of `shape`: updates `p` and `state` from gradient `g`.
    pub fn step(
        &self,
        state: &mut AdafactorState,
        shape: &[usize],
        p: &mut [f64],
        g: &[f64],
        caution: Caution,
    ) {
        state.step += 1;
        let t = state.step;
        let w = self.second_moment_weight(t);
        let sq: Vec<f64> = g.iter().map(|x| x * x + self.eps()).collect();
        let mut u = match self.factored_dims(shape) {
            Some(dims) => factored_update(state, &Factored::new(shape, dims), &sq, g, w),
            None => {
                let v = &mut state.exp_avg_sq;
                (0..g.len())
                    .map(|j| {
                        lerp(&mut v[j], sq[j], w);
                        g[j] / v[j].sqrt()
                    })
                    .collect()
            }
        };
        if let Some(threshold) = self.clip_threshold() {
            let d = (rms(&u) / threshold).max(1.0);
            u.iter_mut().for_each(|x| *x /= d);
        }
        self.finish(state, p, g, u, caution);
    }

    /// The variant's momentum, caution, learning rate and decay on the clipped
    /// update `u`: timm multiplies `u` by the step's lr before the momentum (whose
    /// value is the step), decays `p *= 1 - wd * lr` and steps; big_vision keeps the
    /// momentum (in bf16) of the unscaled `u`, masks it, multiplies by the lr, then
    /// decays and steps.
    fn finish(
        &self,
        state: &mut AdafactorState,
        p: &mut [f64],
        g: &[f64],
        mut u: Vec<f64>,
        caution: Caution,
    ) {
        let (lr, beta, bf16, decay) = match self {
            AdafactorRule::Timm(a) => {
                let lr = a.lr_at(state.step, rms(p));
                u.iter_mut().for_each(|x| *x *= lr);
                (1.0, a.beta1, false, a.weight_decay * lr)
            }
            AdafactorRule::BigVision(a) => {
                let decay = if a.unscaled_wd { 1.0 } else { a.lr } * a.weight_decay;
                (a.lr, a.momentum, a.momentum_bf16, decay)
            }
        };
        if let Some(beta) = beta {
            let m = &mut state.exp_avg;
            for (m, &x) in m.iter_mut().zip(&u) {
                if bf16 {
                    *m = to_bf16(*m + (1.0 - beta) * (to_bf16(x) - *m));
                } else {
                    lerp(m, x, 1.0 - beta);
                }
            }
            u.clone_from(m);
            mask(&mut u, g, caution);
        }
        for (p, u) in p.iter_mut().zip(&u) {
            *p = *p * (1.0 - decay) - lr * u;
        }
    }
}

/// Updates the row and column means from `sq` with weight `w` and returns the
/// factored update of `g`.
fn factored_update(
    state: &mut AdafactorState,
    f: &Factored,
    sq: &[f64],
    g: &[f64],
    w: f64,
) -> Vec<f64> {
    let (rows, cols) = f.lens();
    let (n_row, n_col) = (sq.len() / rows, sq.len() / cols);
    let mut row_mean = vec![0.0; rows];
    let mut col_mean = vec![0.0; cols];
    let mut both = vec![0.0; sq.len() / (n_row * n_col)];
    for (e, s) in sq.iter().enumerate() {
        let (r, c, _) = f.indices(e);
        row_mean[r] += s / n_row as f64;
        col_mean[c] += s / n_col as f64;
    }
    let (row, col) = (&mut state.exp_avg_sq_row, &mut state.exp_avg_sq_col);
    row.iter_mut()
        .zip(&row_mean)
        .for_each(|(a, &b)| lerp(a, b, w));
    col.iter_mut()
        .zip(&col_mean)
        .for_each(|(a, &b)| lerp(a, b, w));
    // Each row entry meets every column once: the mean of the rows over the column-
    // reduced dimension, summed per element and divided by both dimensions.
    for e in 0..sq.len() {
        let (r, _, b) = f.indices(e);
        both[b] += row[r] / (n_row * n_col) as f64;
    }
    (0..g.len())
        .map(|e| {
            let (r, c, b) = f.indices(e);
            g[e] / (row[r] / both[b]).sqrt() / col[c].sqrt()
        })
        .collect()
}

/// `u *= mask * scale` with the mask `u * g > 0` (nothing when caution is off).
fn mask(u: &mut [f64], g: &[f64], caution: Caution) {
    if !caution.is_on() {
        return;
    }
    let agree: Vec<bool> = u.iter().zip(g).map(|(u, g)| u * g > 0.0).collect();
    let k = agree.iter().filter(|&&a| a).count() as u64;
    let scale = caution.scale(k, u.len() as u64);
    let w = caution.disagree_weight();
    for (u, a) in u.iter_mut().zip(agree) {
        *u *= if a { scale } else { w * scale };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caution_without_a_first_moment_is_rejected() {
        let plain = AdafactorRule::Timm(TimmAdafactor::timm());
        let err = plain.validate(Caution::hard()).unwrap_err();
        assert!(err.to_string().contains("beta1"), "{err}");
        plain.validate(Caution::Off).unwrap();
        let with_beta1 = AdafactorRule::Timm(TimmAdafactor {
            beta1: Some(0.9),
            ..TimmAdafactor::timm()
        });
        with_beta1.validate(Caution::hard()).unwrap();
        let bv = BigVisionAdafactor {
            momentum: None,
            ..BigVisionAdafactor::default()
        };
        let err = AdafactorRule::BigVision(bv)
            .validate(Caution::hard())
            .unwrap_err();
        assert!(err.to_string().contains("momentum"), "{err}");
        let warmup = TimmAdafactor {
            warmup_init: true,
            lr: Some(1e-3),
            ..TimmAdafactor::timm()
        };
        assert!(AdafactorRule::Timm(warmup).validate(Caution::Off).is_err());
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 1.0);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even 1.
        assert_eq!(to_bf16(1.0 + 2f64.powi(-8)), 1.0);
        assert_eq!(to_bf16(1.0 + 3.0 * 2f64.powi(-8)), 1.0 + 2f64.powi(-6));
        assert_eq!(to_bf16(-1.0 - 2f64.powi(-7)), -1.0 - 2f64.powi(-7));
    }
}
