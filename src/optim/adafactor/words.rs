//! The uniform blocks of `shaders/adafactor.wgsl`: a step's rates and switches
//! (`AdaStep`) from the rule, and one tensor's sizes and places (`AdaTensor`).

use crate::optim::adafactor_reference::AdafactorRule;
use crate::optim::config::Caution;
#[cfg(test)]
use crate::wgsl::WgslStruct;
use crate::wgsl::wgsl_struct;

wgsl_struct! {
    /// `AdaStep` of `adafactor.wgsl` (`step`): this step's rates and switches.
    pub(crate) struct AdaStep {
        /// 1 - beta2_t = t^decay_rate (timm), or from big_vision's decay.
        decay_rate: f32,
        eps: f32,
        /// 0: no clipping.
        clip_threshold: f32,
        /// timm: the external base rate before the parameter scale
        /// (`RELATIVE_NONE`); big_vision: the rate.
        lr: f32,
        scale_parameter: u32,
        eps_scale: f32,
        big_vision: u32,
        has_momentum: u32,
        beta1: f32,
        bf16: u32,
        /// timm: wd (times the tensor's rate); big_vision: the decay itself.
        decay: f32,
        caution: u32,
        /// Mask weight of a disagreeing coordinate (0: hard mask).
        disagree: f32,
        /// `NORM_*` of `lib/caution_scale.wgsl`.
        norm_kind: u32,
        /// min of mean_clamp, eps of mean_plus_eps.
        norm_param: f32,
        /// `RELATIVE_*`: timm's relative step.
        relative: u32,
        /// big_vision: the step offset of its decay, ...
        decay_offset: f32,
        /// ... and the cap of beta2.
        beta2_cap: f32,
        pad0: u32,
        pad1: u32,
    }
}

wgsl_struct! {
    /// `AdaTensor` of `adafactor.wgsl` (`tensor`): one tensor's sizes and places.
    pub(crate) struct AdaTensor {
        pub len: u32,
        pub factored: u32,
        /// The row moment is the means over q (else over p).
        pub rows_reduce_q: u32,
        pub index: u32,
        pub param_base: u32,
        pub grad_base: u32,
        pub chunks: u32,
        pub partial_base: u32,
        pub outer: u32,
        pub n_p: u32,
        pub mid: u32,
        pub n_q: u32,
        pub inner: u32,
        pub means_base: u32,
        pub both_base: u32,
        /// Elements `ema` updates: len, or the count of both means.
        pub ema_len: u32,
    }
}

/// `adafactor.wgsl`'s `RELATIVE_*`: timm's rate is the external one, ...
const RELATIVE_NONE: u32 = 0;
/// ... `min(1e-2, 1/sqrt(t))`, ...
const RELATIVE_STEP: u32 = 1;
/// ... or `min(1e-6 t, 1/sqrt(t))` (`warmup_init`).
const RELATIVE_WARMUP: u32 = 2;

/// `AdaStep` of `rule` with `caution` (the kernels take what depends on the step t
/// from the GPU's count of completed steps, so that a skipped step does not count).
pub(crate) fn step_words(rule: &AdafactorRule, caution: Caution) -> AdaStep {
    let (norm_kind, norm_param) = caution.norm_words();
    let mut w = AdaStep {
        eps: rule.eps() as f32,
        clip_threshold: rule.clip_threshold().unwrap_or(0.0) as f32,
        caution: caution.is_on() as u32,
        disagree: caution.disagree_weight() as f32,
        norm_kind,
        norm_param: norm_param as f32,
        ..bytemuck::Zeroable::zeroed()
    };
    match rule {
        AdafactorRule::Timm(a) => {
            w.decay_rate = a.decay_rate as f32;
            w.relative = match (a.lr, a.warmup_init) {
                (Some(_), _) => RELATIVE_NONE,
                (None, false) => RELATIVE_STEP,
                (None, true) => RELATIVE_WARMUP,
            };
            w.lr = a.lr.unwrap_or(0.0) as f32;
            w.scale_parameter = a.base_lr(1).1 as u32;
            w.eps_scale = a.eps_scale as f32;
            w.has_momentum = a.beta1.is_some() as u32;
            w.beta1 = a.beta1.unwrap_or(0.0) as f32;
            w.decay = a.weight_decay as f32;
        }
        AdafactorRule::BigVision(a) => {
            w.decay_rate = a.decay_rate as f32;
            w.decay_offset = a.decay_offset as f32;
            w.beta2_cap = a.beta2_cap as f32;
            w.lr = a.lr as f32;
            w.big_vision = 1;
            w.has_momentum = a.momentum.is_some() as u32;
            w.beta1 = a.momentum.unwrap_or(0.0) as f32;
            w.bf16 = (a.momentum_bf16 && a.momentum.is_some()) as u32;
            let scale = if a.unscaled_wd { 1.0 } else { a.lr };
            w.decay = (scale * a.weight_decay) as f32;
        }
    }
    w
}

/// The layouts of its mirror structs (checked by `own_kernels`' test).
#[cfg(test)]
pub(crate) fn mirrors() -> Vec<crate::wgsl::MirrorLayout> {
    vec![AdaStep::mirror(), AdaTensor::mirror()]
}
