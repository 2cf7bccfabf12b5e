//! Muon and C-Muon (timm `muon`, timm/optim/muon.py; C-Optim's c_muon.py): momentum,
//! then Newton-Schulz orthogonalization of each suitable matrix; unsuitable tensors
//! (vectors, tiny or extreme-aspect matrices) fall back to AdamW (NAdamW with Nesterov).
//!
//! C-Muon masks the (Nesterov) update where the new momentum and the gradient disagree
//! and rescales it by `mean_clamp` BEFORE the orthogonalization, as C-Optim's
//! `muon_update`; its fallback AdamW is timm's cautious AdamW.
//!
//! With feature `nn`: `reference` is the f64 step (on the autograd's f64 matmul), and
//! [`MuonOptimizer`] runs the step on the GPU with the Newton-Schulz products through
//! the autograd's matmul kernels.

#[cfg(feature = "nn")]
mod gpu;
#[cfg(feature = "nn")]
pub(crate) mod launch;
#[cfg(feature = "nn")]
mod newton_schulz;
#[cfg(feature = "nn")]
pub mod reference;
#[cfg(feature = "nn")]
pub(crate) mod words;

#[cfg(feature = "nn")]
pub use gpu::MuonOptimizer;
#[cfg(feature = "nn")]
pub use launch::{muon_source, scale_source};
#[cfg(feature = "nn")]
pub use newton_schulz::{NewtonSchulz, NsPrecision};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::algorithms::{AdamW, Algorithm, EpsStyle, NAdamW};
use crate::optim::config::{Caution, OptimizerConfig};

/// The Newton-Schulz coefficient sets timm offers (`ns_coefficients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NsCoefficients {
    /// Keller Jordan's original single triple (3.4445, -4.7750, 2.0315).
    Original,
    /// The five tuned triples of modded-nanogpt (timm's default).
    #[default]
    Quintic,
    /// Polar Express, safety 1e-2 (arXiv 2505.16932).
    PolarExpress,
    /// Polar Express, safety 2e-2 (modded-nanogpt).
    PolarExpressSafer,
}

impl NsCoefficients {
    /// timm's name of the set.
    pub fn name(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Quintic => "quintic",
            Self::PolarExpress => "polar_express",
            Self::PolarExpressSafer => "polar_express_safer",
        }
    }

    /// The set named `name` (timm's preset names).
    pub fn by_name(name: &str) -> Result<Self> {
        [
            Self::Original,
            Self::Quintic,
            Self::PolarExpress,
            Self::PolarExpressSafer,
        ]
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "unknown ns_coefficients `{name}` (original, quintic, polar_express, \
                 polar_express_safer)"
            ))
        })
    }

    /// The triples as timm lists them.
    pub fn triples(self) -> &'static [[f64; 3]] {
        match self {
            Self::Original => &[[3.4445, -4.7750, 2.0315]],
            Self::Quintic => &QUINTIC,
            Self::PolarExpress => &POLAR_EXPRESS,
            Self::PolarExpressSafer => &POLAR_EXPRESS_SAFER,
        }
    }

    /// The `(a, b, c)` of each of `steps` iterations: the list truncated, or its last
    /// triple repeated (timm's `zeropower_via_newtonschulz`).
    pub fn sequence(self, steps: usize) -> Vec<[f64; 3]> {
        let t = self.triples();
        (0..steps).map(|i| t[i.min(t.len() - 1)]).collect()
    }
}

/// timm's "quintic" set (modded-nanogpt train_gpt_medium.py).
const QUINTIC: [[f64; 3]; 5] = [
    [4.0848, -6.8946, 2.9270],
    [3.9505, -6.3029, 2.6377],
    [3.7418, -5.5913, 2.3037],
    [2.8769, -3.1427, 1.2046],
    [2.8366, -3.0525, 1.2012],
];

/// timm's "polar_express" set.
const POLAR_EXPRESS: [[f64; 3]; 8] = [
    [8.237312490495555, -23.157747414558198, 16.680568411445915],
    [4.082441999064835, -2.893047735332586, 0.5252849256975648],
    [3.9263479922546582, -2.8547468034765298, 0.5318022422894988],
    [3.2982187133085143, -2.424541981026706, 0.48632008358844075],
    [2.2970369434552573, -1.63662558125903, 0.4002628455953627],
    [1.8763805351440397, -1.2347896577722228, 0.35891887501668385],
    [1.8564423485617974, -1.2132449880935525, 0.3568003487825883],
    [1.8749994008682747, -1.2499988017229169, 0.3749994008546422],
];

/// timm's "polar_express_safer" set.
const POLAR_EXPRESS_SAFER: [[f64; 3]; 8] = [
    [8.156554524902461, -22.48329292557795, 15.878769915207462],
    [4.0429299351667245, -2.808917465908704, 0.5000178451051299],
    [3.8916678022926563, -2.7724841532176825, 0.5060648178503389],
    [3.285753657755658, -2.3681294933425394, 0.46449024233003117],
    [2.3005307116270983, -1.6111665557258408, 0.3833374427545273],
    [1.8631210546382593, -1.2042160621002727, 0.3421879560523383],
    [1.8382572152247512, -1.1779263289537742, 0.3396513038637379],
    [1.8749999923301852, -1.2499999836060613, 0.374999991275876],
];

/// timm's `adjust_lr_fn`: the per-matrix learning-rate scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdjustLr {
    /// No scale (timm `adjust_lr_fn=None`).
    None,
    /// `sqrt(max(1, out / in))` (Keller Jordan's Muon).
    Original,
    /// `0.2 * sqrt(max(out, in))` (Kimi; timm's default).
    #[default]
    MatchRmsAdamw,
    /// `sqrt(out / in)` (Scion, Bernstein).
    RmsToRms,
}

impl AdjustLr {
    /// The scale of a matrix of `out` rows and `inp` columns.
    pub fn scale(self, out: usize, inp: usize) -> f64 {
        let (o, i) = (out as f64, inp as f64);
        match self {
            Self::None => 1.0,
            Self::Original => (o / i).max(1.0).sqrt(),
            Self::MatchRmsAdamw => 0.2 * o.max(i).sqrt(),
            Self::RmsToRms => (o / i).sqrt(),
        }
    }
}

/// Muon's hyperparameters, with timm's defaults (`Muon.__init__`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Muon {
    /// Momentum factor (0.95).
    pub momentum: f64,
    /// Nesterov momentum, and NAdamW for the fallback (timm `muon`: false; `nmuon`:
    /// true).
    pub nesterov: bool,
    /// Newton-Schulz iterations (5).
    pub ns_steps: usize,
    /// Coefficient set (quintic).
    pub ns_coefficients: NsCoefficients,
    /// Lower clamp of the Frobenius norm, and the fallback AdamW's eps (1e-7).
    pub eps: f64,
    /// Learning-rate scale per matrix (match_rms_adamw).
    pub adjust_lr: AdjustLr,
    /// The fallback AdamW's rate is `lr * fallback_lr_scale` (1).
    pub fallback_lr_scale: f64,
    /// The fallback AdamW's betas ((0.9, 0.95)).
    pub betas: (f64, f64),
}

impl Default for Muon {
    fn default() -> Self {
        Self {
            momentum: 0.95,
            nesterov: false,
            ns_steps: 5,
            ns_coefficients: NsCoefficients::Quintic,
            eps: 1e-7,
            adjust_lr: AdjustLr::MatchRmsAdamw,
            fallback_lr_scale: 1.0,
            betas: (0.9, 0.95),
        }
    }
}

/// timm's `_is_suitable_for_muon` sizes: both sides at least this long.
const MIN_DIM_SIZE: usize = 4;
/// ... and an aspect ratio of at most this.
const MAX_ASPECT_RATIO: f64 = 128.0;

/// The `(rows, cols)` Muon orthogonalizes for a tensor of `shape` (timm's "flatten"
/// mode: `(out, in * spatial)`), or `None` when timm's rule sends it to the fallback:
/// fewer than two non-unit dimensions, a unit first or second dimension, a side under
/// 4 or an aspect ratio over 128.
pub fn muon_matrix(shape: &[usize]) -> Option<(usize, usize)> {
    if shape.len() < 2 || shape.iter().filter(|&&d| d > 1).count() < 2 {
        return None;
    }
    if shape[0] == 1 || shape[1] == 1 {
        return None;
    }
    let (rows, cols) = (shape[0], shape[1..].iter().product::<usize>());
    let (lo, hi) = (rows.min(cols), rows.max(cols));
    if lo < MIN_DIM_SIZE || hi as f64 / lo as f64 > MAX_ASPECT_RATIO {
        return None;
    }
    Some((rows, cols))
}

impl Muon {
    /// Checks every hyperparameter is in range (timm's `_validate_scalar` and more).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(Error::InvalidConfig(format!(
                "muon {what} = {v} is out of range"
            )))
        };
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", self.momentum);
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return bad("eps", self.eps);
        }
        if !(self.fallback_lr_scale >= 0.0 && self.fallback_lr_scale.is_finite()) {
            return bad("fallback_lr_scale", self.fallback_lr_scale);
        }
        if self.ns_steps == 0 {
            return bad("ns_steps", 0.0);
        }
        self.fallback(0.0, 0.0, Caution::Off).validate()
    }

    /// The configuration of the fallback optimizer of tensors [`muon_matrix`] rejects:
    /// AdamW (NAdamW with Nesterov) with Muon's betas and eps at `lr *
    /// fallback_lr_scale`, weight decay `wd`, and `caution`.
    pub fn fallback(&self, lr: f64, wd: f64, caution: Caution) -> OptimizerConfig {
        let adam = AdamW {
            beta1: self.betas.0,
            beta2: self.betas.1,
            eps: self.eps,
            eps_style: EpsStyle::Torch,
        };
        let algorithm = if self.nesterov {
            Algorithm::NAdamW(NAdamW { adam })
        } else {
            Algorithm::AdamW(adam)
        };
        OptimizerConfig::new(algorithm, lr * self.fallback_lr_scale)
            .with_weight_decay(wd)
            .with_caution(caution)
    }
}
