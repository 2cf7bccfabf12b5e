//! [`EngineConfig`]: the configuration of any of coptim's three optimizer engines
//! (the element-wise [`Optimizer`](crate::Optimizer), Muon and the Adafactor family),
//! and timm's names for the two that are not element-wise.
//!
//! timm 1.0 registers `muon` and `nmuon` (its factory gives them momentum 0.9, not
//! the class's 0.95), `adafactor`, `cadafactor` (betas (0.9, 0.999), so that caution
//! has a first moment to mask), `adafactorbv` and `cadafactorbv`. `cmuon` and `cnmuon`
//! are coptim's names for C-Optim's C-Muon (timm's Muon has no caution keyword).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::optim::adafactor_reference::{AdafactorRule, BigVisionAdafactor, TimmAdafactor};
use crate::optim::config::{Caution, OptimizerConfig};
use crate::optim::factored::Factoring;
use crate::optim::muon::{AdjustLr, Muon, NsCoefficients};
use crate::optim::schedule::LrSchedule;
use crate::optim::timm::TimmArgs;

/// Muon (C-Muon with caution) with its learning rate, decay and schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MuonConfig {
    /// Muon's hyperparameters.
    pub muon: Muon,
    /// The mask (C-Optim's C-Muon, and a cautious fallback AdamW).
    pub caution: Caution,
    /// Base learning rate.
    pub lr: f64,
    /// Decoupled weight decay (every tensor, the fallback's too).
    pub weight_decay: f64,
    /// The schedule of [`StepInputs::scheduled`](crate::optim::StepInputs::scheduled).
    pub schedule: LrSchedule,
    /// Global gradient-norm clipping over every tensor (`None`: off).
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
}

/// A member of the Adafactor family with its caution and schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdafactorConfig {
    /// The rule, with its learning rate (timm's `lr: None`: the relative step, which
    /// no schedule scales) and weight decay.
    pub rule: AdafactorRule,
    /// The mask (needs a first moment).
    pub caution: Caution,
    /// The schedule of [`StepInputs::scheduled`](crate::optim::StepInputs::scheduled).
    pub schedule: LrSchedule,
    /// Global gradient-norm clipping over every tensor (`None`: off).
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
}

/// The configuration of one of coptim's optimizer engines.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineConfig {
    /// A member of the element-wise registry.
    Elementwise(OptimizerConfig),
    /// Muon or C-Muon.
    Muon(MuonConfig),
    /// The Adafactor family.
    Adafactor(AdafactorConfig),
}

/// Which engine a name outside the element-wise registry builds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Family {
    Muon,
    Adafactor,
    BigVision,
}

/// The names outside the element-wise registry: (name, family, cautious, Nesterov).
const MATRIX_NAMES: [(&str, Family, bool, bool); 8] = [
    ("muon", Family::Muon, false, false),
    ("cmuon", Family::Muon, true, false),
    ("nmuon", Family::Muon, false, true),
    ("cnmuon", Family::Muon, true, true),
    ("adafactor", Family::Adafactor, false, false),
    ("cadafactor", Family::Adafactor, true, false),
    ("adafactorbv", Family::BigVision, false, false),
    ("cadafactorbv", Family::BigVision, true, false),
];

/// Muon's and Adafactor's names, in the order the registry lists them after the
/// element-wise members.
pub fn matrix_names() -> impl Iterator<Item = &'static str> {
    MATRIX_NAMES.iter().map(|n| n.0)
}

impl EngineConfig {
    /// What `timm.optim.create_optimizer_v2(params, name, **kwargs)` builds for a plain
    /// list of tensors: an element-wise member ([`OptimizerConfig::from_timm`]) or
    /// Muon or the Adafactor family (see the module's documentation for the names).
    /// Unknown names and keywords are [`Error::InvalidConfig`]s naming them.
    pub fn from_timm(name: &str, kwargs: &Value) -> Result<Self> {
        let lower = name.to_ascii_lowercase();
        let Some(&(name, family, cautious, nesterov)) = MATRIX_NAMES.iter().find(|n| n.0 == lower)
        else {
            return OptimizerConfig::from_timm(name, kwargs).map(Self::Elementwise);
        };
        let mut defaults = vec![("caution", Value::Bool(cautious))];
        match family {
            Family::Muon => defaults.extend([
                ("momentum", json!(0.9)),
                ("nesterov", Value::Bool(nesterov)),
                ("adjust_lr_fn", json!("match_rms_adamw")),
            ]),
            Family::Adafactor if cautious => defaults.push(("betas", json!([0.9, 0.999]))),
            Family::Adafactor => {}
            Family::BigVision => defaults.push(("momentum", json!(0.9))),
        }
        let mut args = TimmArgs::for_name(name, kwargs, &defaults)?;
        let config = match family {
            Family::Muon => Self::Muon(muon_args(&mut args)?),
            Family::Adafactor => Self::Adafactor(adafactor_args(&mut args)?),
            Family::BigVision => Self::Adafactor(big_vision_args(&mut args)?),
        };
        args.done()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every hyperparameter is in range.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Elementwise(c) => c.validate(),
            Self::Muon(m) => {
                m.muon.validate()?;
                m.muon
                    .fallback(m.lr, m.weight_decay, m.caution)
                    .validate()?;
                check_clip(m.clip_grad_norm)
            }
            Self::Adafactor(a) => {
                a.caution.validate()?;
                a.rule.validate(a.caution)?;
                check_clip(a.clip_grad_norm)
            }
        }
    }

    /// The mask.
    pub fn caution(&self) -> Caution {
        match self {
            Self::Elementwise(c) => c.caution,
            Self::Muon(m) => m.caution,
            Self::Adafactor(a) => a.caution,
        }
    }

    /// The same configuration with mask `caution`.
    pub fn with_caution(self, caution: Caution) -> Self {
        match self {
            Self::Elementwise(c) => Self::Elementwise(c.with_caution(caution)),
            Self::Muon(m) => Self::Muon(MuonConfig { caution, ..m }),
            Self::Adafactor(a) => Self::Adafactor(AdafactorConfig { caution, ..a }),
        }
    }

    /// The same configuration at base learning rate `lr` (an Adafactor on timm's
    /// relative step takes it as its external rate, as timm's factory does when given
    /// one) and weight decay `wd`.
    pub fn with_lr_and_decay(self, lr: f64, wd: f64) -> Self {
        match self {
            Self::Elementwise(c) => {
                Self::Elementwise(OptimizerConfig { lr, ..c }.with_weight_decay(wd))
            }
            Self::Muon(m) => Self::Muon(MuonConfig {
                lr,
                weight_decay: wd,
                ..m
            }),
            Self::Adafactor(a) => Self::Adafactor(AdafactorConfig {
                rule: match a.rule {
                    AdafactorRule::Timm(t) => AdafactorRule::Timm(TimmAdafactor {
                        lr: Some(lr),
                        weight_decay: wd,
                        ..t
                    }),
                    AdafactorRule::BigVision(b) => AdafactorRule::BigVision(BigVisionAdafactor {
                        lr,
                        weight_decay: wd,
                        ..b
                    }),
                },
                ..a
            }),
        }
    }

    /// The same configuration clipping the global gradient norm at `max_norm`
    /// (`None`: off), for every engine.
    pub fn with_clip_grad_norm(self, max_norm: Option<f64>) -> Self {
        match self {
            Self::Elementwise(c) => Self::Elementwise(OptimizerConfig {
                clip_grad_norm: max_norm,
                ..c
            }),
            Self::Muon(m) => Self::Muon(MuonConfig {
                clip_grad_norm: max_norm,
                ..m
            }),
            Self::Adafactor(a) => Self::Adafactor(AdafactorConfig {
                clip_grad_norm: max_norm,
                ..a
            }),
        }
    }

    /// The same configuration with learning-rate schedule `schedule`.
    pub fn with_schedule(self, schedule: LrSchedule) -> Self {
        match self {
            Self::Elementwise(c) => Self::Elementwise(c.with_schedule(schedule)),
            Self::Muon(m) => Self::Muon(MuonConfig { schedule, ..m }),
            Self::Adafactor(a) => Self::Adafactor(AdafactorConfig { schedule, ..a }),
        }
    }

    /// The name people write in prose, without the `C-` of a mask: `Muon`,
    /// `NMuon`, `Adafactor`, `Adafactor (big_vision)`; `None` for an element-wise
    /// member (its algorithm names it).
    pub fn matrix_label(&self) -> Option<&'static str> {
        match self {
            Self::Elementwise(_) => None,
            Self::Muon(m) if m.muon.nesterov => Some("NMuon"),
            Self::Muon(_) => Some("Muon"),
            Self::Adafactor(a) => Some(match a.rule {
                AdafactorRule::Timm(_) => "Adafactor",
                AdafactorRule::BigVision(_) => "Adafactor (big_vision)",
            }),
        }
    }
}

/// Fails unless a clip norm is finite and positive (as [`OptimizerConfig::validate`]).
fn check_clip(clip: Option<f64>) -> Result<()> {
    match clip {
        Some(c) if !(c.is_finite() && c > 0.0) => Err(Error::InvalidConfig(format!(
            "clip_grad_norm = {c} must be positive"
        ))),
        _ => Ok(()),
    }
}

/// timm `Muon`'s keywords (coptim supports its defaults of `conv_mode`,
/// `normalize_spatial`, `safety_factor`, `algo`, `scale_eps` and `adamw_lr`).
fn muon_args(args: &mut TimmArgs) -> Result<MuonConfig> {
    let d = Muon::default();
    let lr = args.f64("lr", 0.02)?;
    let weight_decay = args.f64("weight_decay", 0.0)?;
    let betas = args.f64_list("betas", &[d.betas.0, d.betas.1])?;
    let [beta1, beta2] = betas[..] else {
        return Err(Error::InvalidConfig(format!(
            "timm Muon: betas {betas:?} are not two numbers"
        )));
    };
    let muon = Muon {
        momentum: args.f64("momentum", d.momentum)?,
        nesterov: args.bool("nesterov", d.nesterov)?,
        ns_steps: args.f64("ns_steps", d.ns_steps as f64)? as usize,
        ns_coefficients: NsCoefficients::by_name(&args.string("ns_coefficients", "quintic")?)?,
        eps: args.f64("eps", d.eps)?,
        adjust_lr: adjust_lr(args)?,
        fallback_lr_scale: args.f64("fallback_lr_scale", d.fallback_lr_scale)?,
        betas: (beta1, beta2),
    };
    for (key, value) in [
        ("conv_mode", json!("flatten")),
        ("normalize_spatial", json!(true)),
        ("safety_factor", json!(1.0)),
        ("algo", json!("muon")),
        ("scale_eps", json!(false)),
        ("adamw_lr", Value::Null),
    ] {
        args.only(key, value)?;
    }
    args.ignore("verbose");
    Ok(MuonConfig {
        muon,
        caution: args.caution()?,
        lr,
        weight_decay,
        schedule: LrSchedule::Constant,
        clip_grad_norm: None,
    })
}

/// timm's `adjust_lr_fn` keyword (its default filled in by the caller).
fn adjust_lr(args: &mut TimmArgs) -> Result<AdjustLr> {
    let name = match args.optional_string("adjust_lr_fn")? {
        None => return Ok(AdjustLr::None),
        Some(name) => name,
    };
    Ok(match name.as_str() {
        "original" => AdjustLr::Original,
        "match_rms_adamw" => AdjustLr::MatchRmsAdamw,
        "rms_to_rms" => AdjustLr::RmsToRms,
        other => {
            return Err(Error::InvalidConfig(format!(
                "timm Muon: unknown adjust_lr_fn `{other}` (original, match_rms_adamw, \
                 rms_to_rms or null)"
            )));
        }
    })
}

/// timm `Adafactor`'s keywords.
fn adafactor_args(args: &mut TimmArgs) -> Result<AdafactorConfig> {
    let d = TimmAdafactor::timm();
    let beta1 = args.optional_f64_list("betas")?.map(|b| b[0]);
    let rule = TimmAdafactor {
        lr: args.optional_f64("lr", None)?,
        eps: args.f64("eps", d.eps)?,
        eps_scale: args.f64("eps_scale", d.eps_scale)?,
        clip_threshold: args.f64("clip_threshold", d.clip_threshold)?,
        decay_rate: args.f64("decay_rate", d.decay_rate)?,
        beta1,
        weight_decay: args.f64("weight_decay", 0.0)?,
        scale_parameter: args.bool("scale_parameter", d.scale_parameter)?,
        warmup_init: args.bool("warmup_init", d.warmup_init)?,
        factoring: Factoring::Timm {
            min_dim_size: args.f64("min_dim_size_to_factor", 16.0)? as usize,
        },
        scale_external_lr: false,
    };
    Ok(AdafactorConfig {
        rule: AdafactorRule::Timm(rule),
        caution: args.caution()?,
        schedule: LrSchedule::Constant,
        clip_grad_norm: None,
    })
}

/// timm `AdafactorBigVision`'s keywords (momentum kept in bf16, its default).
fn big_vision_args(args: &mut TimmArgs) -> Result<AdafactorConfig> {
    let d = BigVisionAdafactor::default();
    args.only("momentum_dtype", json!("bfloat16"))?;
    args.only("corrected_weight_decay", json!(false))?;
    let rule = BigVisionAdafactor {
        lr: args.f64("lr", d.lr)?,
        min_dim_size: args.f64("min_dim_size_to_factor", d.min_dim_size as f64)? as usize,
        decay_rate: args.f64("decay_rate", d.decay_rate)?,
        decay_offset: args.f64("decay_offset", 0.0)? as i32,
        beta2_cap: args.f64("beta2_cap", d.beta2_cap)?,
        momentum: args.optional_f64("momentum", d.momentum)?,
        eps: args.optional_f64("eps", None)?.unwrap_or(d.eps),
        weight_decay: args.f64("weight_decay", 0.0)?,
        clipping_threshold: args.optional_f64("clipping_threshold", None)?,
        unscaled_wd: args.bool("unscaled_wd", false)?,
        ..d
    };
    Ok(AdafactorConfig {
        rule: AdafactorRule::BigVision(rule),
        caution: args.caution()?,
        schedule: LrSchedule::Constant,
        clip_grad_norm: None,
    })
}
