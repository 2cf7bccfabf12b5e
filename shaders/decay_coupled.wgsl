// decay_coupled.wgsl: coupled (L2) weight decay, `g = g + wd * p` on the pre-step
// parameter before the algorithm sees the gradient (timm RMSpropTF without
// `decoupled_decay`, rmsprop_tf.py:264-265): both passes use this gradient, so the
// caution mask is taken against it. No decoupled decay: decay_factor is 1.

fn decay_grad(at: At, g: vec4<f32>, valid: vec4<bool>, gp: GroupParams) -> vec4<f32> {
    return g + gp.weight_decay * load_param(at.param, valid);
}

fn decay_factor(gp: GroupParams) -> f32 {
    return 1.0;
}
