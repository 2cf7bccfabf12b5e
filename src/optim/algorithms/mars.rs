//! MARS and C-MARS (timm `mars`/`cmars`, timm/optim/mars.py): the variance-reduced
//! gradient `c = g + gamma * beta1 / (1 - beta1) * (g - last_grad)`, clipped to unit
//! norm per tensor, drives an AdamW or Lion step; 1-D tensors take a plain AdamW path
//! unless `optimize_1d`. Hyperparameters, f64 reference, WGSL hooks (`shaders/mars.wgsl`)
//! and timm names.
//!
//! The per-tensor norm of `c` comes from the norm pass ([`Rules::norm_pass_states`]),
//! which runs before the caution count because the clipped `c` decides the mask.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Algorithm, Decay, Direction, GroupHyper, LrFamily, Member, RefStep, Rules, hook_needs, hooks,
    non_negative, sign, timm_betas, timm_pair, unit_interval,
};
use crate::error::{Error, Result};
use crate::optim::config::Caution;
use crate::optim::reference::{Mask, TensorStep, apply_factors};
use crate::optim::timm::{CAUTION, TimmArgs, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// Which step the MARS path takes with the momentum (timm's `mars_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarsType {
    /// Adam's normalized step (`"adamw"`).
    #[serde(rename = "adamw")]
    AdamW,
    /// The sign of the momentum (`"lion"`).
    Lion,
}

impl MarsType {
    /// timm's name of the type.
    pub fn timm_name(self) -> &'static str {
        match self {
            MarsType::AdamW => "adamw",
            MarsType::Lion => "lion",
        }
    }
}

/// MARS's hyperparameters, as timm's `Mars` names them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mars {
    /// First-moment decay (also scales the gradient correction).
    pub beta1: f64,
    /// Second-moment decay (AdamW type).
    pub beta2: f64,
    /// Denominator epsilon (torch-style: `sqrt(v) / sqrt(bc2) + eps`).
    pub eps: f64,
    /// Weight of the gradient difference in the corrected gradient.
    pub gamma: f64,
    /// The step of the MARS path.
    pub mars_type: MarsType,
    /// Run 1-D tensors on the MARS path too (otherwise plain AdamW).
    pub optimize_1d: bool,
    /// Learning-rate factor of the AdamW path of 1-D tensors.
    pub lr_1d_factor: f64,
    /// First-moment decay of the AdamW path of 1-D tensors.
    pub beta1_1d: f64,
    /// Second-moment decay of the AdamW path of 1-D tensors.
    pub beta2_1d: f64,
}

impl Default for Mars {
    /// timm's defaults: betas (0.9, 0.99), eps 1e-8, gamma 0.025, AdamW type, 1-D
    /// tensors on AdamW with the same betas and learning rate.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            gamma: 0.025,
            mars_type: MarsType::AdamW,
            optimize_1d: false,
            lr_1d_factor: 1.0,
            beta1_1d: 0.9,
            beta2_1d: 0.99,
        }
    }
}

/// `mars.wgsl`: MARS's hooks, its norm terms included.
static SHADER: Part = shader_part!(
    "mars.wgsl",
    hooks!("norm_terms"),
    hook_needs!("one_minus_pow")
);

impl Mars {
    /// Whether a tensor of `rank` dimensions takes the MARS path (timm/optim/mars.py:46).
    fn mars_path(&self, rank: usize) -> bool {
        self.optimize_1d || rank >= 2
    }

    /// The corrected gradient clipped to unit norm (timm/optim/mars.py:48-54); `g`
    /// itself on the first step.
    fn corrected_gradient(&self, g: &[f64], last: &[f64], t: i32) -> Vec<f64> {
        let coef = self.gamma * (self.beta1 / (1.0 - self.beta1));
        let c: Vec<f64> = if t == 1 {
            g.to_vec()
        } else {
            g.iter()
                .zip(last)
                .map(|(g, l)| g + coef * (g - l))
                .collect()
        };
        let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt().max(1.0);
        c.iter().map(|x| x / norm).collect()
    }
}

impl Rules for Mars {
    /// timm's state, the previous gradient first: the norm pass reads only it.
    fn member(&self) -> Member {
        let states = &["last_grad", "exp_avg", "exp_avg_sq"];
        let hyper = GroupHyper::betas(self.beta1, self.beta2).eps(self.eps);
        Member::new("mars", states, hyper)
    }

    fn validate(&self) -> Result<()> {
        self.group_hyper().validate()?;
        unit_interval("MARS beta1_1d", self.beta1_1d)?;
        unit_interval("MARS beta2_1d", self.beta2_1d)?;
        non_negative("MARS gamma", self.gamma)?;
        non_negative("MARS lr_1d_factor", self.lr_1d_factor)
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        let coef = self.gamma * (self.beta1 / (1.0 - self.beta1));
        module
            .constant("MARS_LION", self.mars_type == MarsType::Lion)
            .constant("MARS_OPTIMIZE_1D", self.optimize_1d)
            .constant("MARS_GAMMA_COEF", coef as f32)
            .constant("MARS_LR_1D_FACTOR", self.lr_1d_factor as f32)
            .constant("MARS_BETA1_1D", self.beta1_1d as f32)
            .constant("MARS_ONE_MINUS_BETA1_1D", (1.0 - self.beta1_1d) as f32)
            .constant("MARS_BETA2_1D", self.beta2_1d as f32)
            .constant("MARS_ONE_MINUS_BETA2_1D", (1.0 - self.beta2_1d) as f32)
            .part(&SHADER)
    }

    /// The previous gradient and the first moment.
    fn count_states(&self) -> usize {
        2
    }

    fn norm_pass_states(&self) -> Option<usize> {
        Some(1)
    }

    /// Updates the state and returns the step before the mask, the learning rate (and
    /// `lr_1d_factor` on the AdamW path) included (timm/optim/mars.py:46-86, :207).
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        let [last, m, v] = state else {
            unreachable!("MARS keeps three state tensors")
        };
        let (g, t) = (step.g, step.t);
        let mars = self.mars_path(step.rank);
        let (x, beta1, beta2, lr) = if mars {
            let c = self.corrected_gradient(g, last, t);
            (c, self.beta1, self.beta2, step.lr())
        } else {
            let lr = step.lr() * self.lr_1d_factor;
            (g.to_vec(), self.beta1_1d, self.beta2_1d, lr)
        };
        let (bc1, bc2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
        let mut delta = Vec::with_capacity(g.len());
        let mut mag = Vec::with_capacity(g.len());
        for j in 0..g.len() {
            mag.push((beta1 * m[j]).abs() + ((1.0 - beta1) * x[j]).abs());
            m[j] = beta1 * m[j] + (1.0 - beta1) * x[j];
            delta.push(if mars && self.mars_type == MarsType::Lion {
                lr * sign(m[j])
            } else {
                v[j] = beta2 * v[j] + (1.0 - beta2) * x[j] * x[j];
                lr * (m[j] / bc1) / (v[j].sqrt() / bc2.sqrt() + self.eps)
            });
        }
        last.copy_from_slice(g);
        Direction {
            delta,
            sign_src: m.to_vec(),
            sign_mag: mag,
        }
    }

    /// The direction and its mask; the decay `p * wd` inside the update is
    /// `p *= 1 - lr * wd` before the step (times `lr_1d_factor` on the AdamW path). The
    /// Lion type takes the sign of the masked momentum, so the mask's scale drops out
    /// (timm/optim/mars.py:61, :70).
    fn reference_step(&self, mut x: TensorStep<'_>) -> (u64, u64) {
        let dir = self.reference_direction(&mut x.state, &x.step);
        let mars = self.mars_path(x.step.rank);
        if !mars {
            x.decay.rate *= self.lr_1d_factor;
        }
        let mask = Mask::new(x.caution, x.step.g, &dir);
        let factors: Vec<f64> = if mars && self.mars_type == MarsType::Lion {
            mask.factors.iter().map(|&f| sign(f)).collect()
        } else {
            mask.factors
        };
        apply_factors(x, &dir.delta, &factors, Decay::BeforeStep);
        mask.counts
    }

    /// The Lion type steps by the sign of the momentum on the MARS path.
    fn lr_family(&self) -> LrFamily {
        match self.mars_type {
            MarsType::AdamW => LrFamily::AdamLike,
            MarsType::Lion => LrFamily::SignBased,
        }
    }

    fn timm_keywords(&self) -> Value {
        json!({
            "gamma": self.gamma,
            "mars_type": self.mars_type.timm_name(),
            "optimize_1d": self.optimize_1d,
            "lr_1d_factor": self.lr_1d_factor,
            "betas_1d": [self.beta1_1d, self.beta2_1d],
        })
    }
}

/// timm `mars` and `cmars` (timm.optim.Mars; timm/optim/_optim_factory.py: the
/// `mars` and `cmars` entries).
pub(crate) const TIMM: &[TimmName] = &[MARS, MARS.alias("cmars", &[CAUTION])];

/// timm.optim.Mars.
const MARS: TimmName = TimmName::new("mars", 3e-3, timm_mars).betas().eps();

/// The keywords of timm.optim.Mars (timm/optim/mars.py:97-132).
fn timm_mars(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let d = Mars::default();
    let (beta1, beta2) = timm_betas(args, [d.beta1, d.beta2])?;
    let mars_type = match args.string("mars_type", d.mars_type.timm_name())?.as_str() {
        "adamw" => MarsType::AdamW,
        "lion" => MarsType::Lion,
        other => {
            return Err(Error::InvalidConfig(format!(
                "timm `mars`: keyword `mars_type` = \"{other}\" is not \"adamw\" or \"lion\""
            )));
        }
    };
    let (beta1_1d, beta2_1d) = match args.optional_f64_list("betas_1d")? {
        Some(list) => timm_pair("betas_1d", &list)?,
        None => (beta1, beta2),
    };
    let mars = Mars {
        beta1,
        beta2,
        eps: args.f64("eps", d.eps)?,
        gamma: args.f64("gamma", d.gamma)?,
        mars_type,
        optimize_1d: args.bool("optimize_1d", d.optimize_1d)?,
        lr_1d_factor: args.f64("lr_1d_factor", d.lr_1d_factor)?,
        beta1_1d,
        beta2_1d,
    };
    Ok((Algorithm::Mars(mars), args.caution()?))
}
