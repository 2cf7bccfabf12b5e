//! RMSpropTF and C-RMSpropTF (timm `rmsproptf`/`crmsproptf`, `rmsproptfw`,
//! `rmsproptfc`; timm/optim/rmsprop_tf.py): RMSprop with TensorFlow's conventions:
//! `square_avg` starts at ones (:143), eps inside the square root (:274, :277), and by
//! default the learning rate accumulated in the momentum buffer (:282-287). Weight decay
//! is coupled L2 (`g + wd * p`, :265) unless `decoupled_decay` (:261-263). Caution masks
//! the new momentum buffer only, and only with momentum (:285-286, :291-292); the masked
//! copy is not written back. Hyperparameters, f64 reference, WGSL hooks
//! (`shaders/rmsprop_tf.wgsl`) and timm names.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Algorithm, Decay, Direction, GroupHyper, HOOK_NEEDS, HOOKS, Member, RefStep, Rules, positive,
    state_accessors, unit_interval,
};
use crate::error::Result;
use crate::optim::config::Caution;
use crate::optim::timm::{CAUTION, CORRECTED, DECOUPLED_DECAY, TimmArgs, TimmName};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// RMSpropTF's hyperparameters and switches, as timm's `RMSpropTF` names them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RmsPropTf {
    /// Smoothing constant of `square_avg` (and `grad_avg`): `avg += (1 - alpha) * (x - avg)`.
    pub alpha: f64,
    /// Added to the second moment inside the square root.
    pub eps: f64,
    /// Momentum factor; 0 keeps no momentum buffer (and leaves caution nothing to mask).
    pub momentum: f64,
    /// Centered: divide by the root of the variance `square_avg - grad_avg^2`.
    pub centered: bool,
    /// The momentum buffer accumulates `lr * g / avg` and the step is the buffer
    /// (TensorFlow); otherwise it accumulates `g / avg` and the step is `lr` times it.
    pub lr_in_momentum: bool,
    /// Decoupled decay `p *= 1 - lr * wd` before the step (`decoupled_decay`, timm
    /// `rmsproptfw`) instead of coupled `g += wd * p`.
    pub decoupled: bool,
}

impl Default for RmsPropTf {
    /// timm's `rmsproptf`: alpha 0.9, eps 1e-10, momentum 0.9 (the factory's), not
    /// centered, lr in momentum, coupled decay.
    fn default() -> Self {
        Self {
            alpha: 0.9,
            eps: 1e-10,
            momentum: 0.9,
            centered: false,
            lr_in_momentum: true,
            decoupled: false,
        }
    }
}

/// `rmsprop_tf.wgsl`: RMSpropTF's hooks.
static SHADER: Part = shader_part!("rmsprop_tf.wgsl", HOOKS, HOOK_NEEDS);

/// The optional states, by the names the WGSL reads them with.
const OPTIONAL_STATES: &[&str] = &["momentum_buffer", "grad_avg"];

impl RmsPropTf {
    /// `square_avg`, then the states timm keeps for the configuration (:143-147).
    fn states(&self) -> &'static [&'static str] {
        match (self.has_momentum(), self.centered) {
            (false, false) => &["square_avg"],
            (true, false) => &["square_avg", "momentum_buffer"],
            (false, true) => &["square_avg", "grad_avg"],
            (true, true) => &["square_avg", "momentum_buffer", "grad_avg"],
        }
    }

    fn has_momentum(&self) -> bool {
        self.momentum > 0.0
    }
}

impl Rules for RmsPropTf {
    /// alpha in the second-moment slot, the momentum factor and eps.
    fn member(&self) -> Member {
        let hyper = GroupHyper {
            momentum: Some(self.momentum),
            ..GroupHyper::betas(0.0, self.alpha).eps(self.eps)
        };
        Member::new("rmsproptf", self.states(), hyper)
    }

    fn validate(&self) -> Result<()> {
        unit_interval("alpha", self.alpha)?;
        unit_interval("momentum", self.momentum)?;
        positive("eps", self.eps)
    }

    /// The new buffer needs every state.
    fn count_states(&self) -> usize {
        self.state_names().len()
    }

    fn shader(&self, module: ShaderBuilder) -> ShaderBuilder {
        let module = module
            .constant("RMSPROP_MOMENTUM", self.has_momentum())
            .constant("RMSPROP_CENTERED", self.centered)
            .constant("RMSPROP_LR_IN_MOMENTUM", self.lr_in_momentum)
            .constant("RMSPROP_DECOUPLED", self.decoupled);
        state_accessors(module, OPTIONAL_STATES, self.state_names()).part(&SHADER)
    }

    /// Updates the states (`square_avg` reads 1 at the first step) and returns the
    /// step: the new momentum buffer (times `lr` unless it carries it), or
    /// `lr * g / avg` without momentum (timm/optim/rmsprop_tf.py:268-295).
    fn reference_direction(&self, state: &mut [&mut Vec<f64>], step: &RefStep) -> Direction {
        let (g, lr) = (step.g, step.lr());
        let (square_avg, rest) = state.split_first_mut().expect("RMSpropTF keeps square_avg");
        let (mut buf, mut grad_avg) = match rest {
            [] => (None, None),
            [x] if self.has_momentum() => (Some(x), None),
            [x] => (None, Some(x)),
            [b, a] => (Some(b), Some(a)),
            _ => unreachable!("RMSpropTF keeps at most three state tensors"),
        };
        let c = 1.0 - self.alpha;
        let buf_lr = if self.lr_in_momentum { lr } else { 1.0 };
        let step_lr = if buf.is_some() && self.lr_in_momentum {
            1.0
        } else {
            lr
        };
        let (mut dir, mut mag) = (Vec::with_capacity(g.len()), Vec::with_capacity(g.len()));
        for j in 0..g.len() {
            let old = if step.t == 1 { 1.0 } else { square_avg[j] };
            square_avg[j] = old + c * (g[j] * g[j] - old);
            let var = match grad_avg.as_deref_mut() {
                Some(a) => {
                    a[j] += c * (g[j] - a[j]);
                    square_avg[j] - a[j] * a[j]
                }
                None => square_avg[j],
            };
            let ratio = g[j] / (var + self.eps).sqrt();
            let (d, m) = match buf.as_deref_mut() {
                Some(b) => {
                    let m = (self.momentum * b[j]).abs() + (buf_lr * ratio).abs();
                    b[j] = self.momentum * b[j] + buf_lr * ratio;
                    (b[j], m)
                }
                None => (ratio, ratio.abs()),
            };
            dir.push(d);
            mag.push(m);
        }
        Direction {
            delta: dir.iter().map(|d| step_lr * d).collect(),
            sign_src: dir,
            sign_mag: mag,
        }
    }

    /// Coupled into the gradient (`g + wd * p`, which the mask sees) unless decoupled.
    fn decay(&self) -> Decay {
        Decay::coupled_unless(self.decoupled)
    }

    fn caution_applies(&self) -> bool {
        self.has_momentum()
    }

    fn timm_group(&self) -> Value {
        json!({
            "alpha": self.alpha,
            "eps": self.eps,
            "momentum": self.momentum,
            "centered": self.centered,
            "lr_in_momentum": self.lr_in_momentum,
            "decoupled_decay": self.decoupled,
        })
    }
}

/// timm `rmsproptf`, `crmsproptf`, `rmsproptfw` (decoupled decay) and `rmsproptfc`
/// (corrected decoupled decay) (timm.optim.RMSpropTF; the factory's alpha 0.9 is the
/// class default).
pub(crate) const TIMM: &[TimmName] = &[
    RMSPROPTF,
    RMSPROPTF.alias("crmsproptf", &[CAUTION]),
    RMSPROPTF.alias("rmsproptfw", &[DECOUPLED_DECAY]),
    RMSPROPTF.alias("rmsproptfc", &[DECOUPLED_DECAY, CORRECTED]),
];

/// timm.optim.RMSpropTF.
const RMSPROPTF: TimmName = TimmName::new("rmsproptf", 1e-2, timm_rmsprop_tf)
    .momentum()
    .eps();

/// The keywords of timm.optim.RMSpropTF. With momentum 0 timm's `caution` masks
/// nothing (rmsprop_tf.py:294-295), so coptim's caution is off.
fn timm_rmsprop_tf(args: &mut TimmArgs) -> Result<(Algorithm, Caution)> {
    let d = RmsPropTf::default();
    let rms = RmsPropTf {
        alpha: args.f64("alpha", d.alpha)?,
        eps: args.f64("eps", d.eps)?,
        momentum: args.f64("momentum", 0.0)?,
        centered: args.bool("centered", d.centered)?,
        lr_in_momentum: args.bool("lr_in_momentum", d.lr_in_momentum)?,
        decoupled: args.bool("decoupled_decay", d.decoupled)?,
    };
    // timm corrects only the decoupled rate (:261-263); coupled decay ignores it.
    args.corrected_decay()?;
    let caution = args.caution()?;
    let caution = if rms.has_momentum() {
        caution
    } else {
        Caution::Off
    };
    Ok((Algorithm::RmsPropTf(rms), caution))
}
