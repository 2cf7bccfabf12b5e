// decay_decoupled.wgsl: decoupled weight decay (every algorithm but the coupled ones):
// the gradient reaches the algorithm as it is, and the algorithm multiplies the
// parameter by decay_factor (timm's `p *= 1 - lr * wd`; corrected decay packs its
// weight decay so that this is 1 - lr^2 / max_lr * wd).

fn decay_grad(at: At, g: vec4<f32>, valid: vec4<bool>, gp: GroupParams) -> vec4<f32> {
    return g;
}

fn decay_factor(gp: GroupParams) -> f32 {
    return 1.0 - gp.lr * gp.weight_decay;
}
