// laprop.wgsl: LaProp and C-LaProp (timm `laprop`/`claprop`, timm/optim/laprop.py), the
// algorithm hooks of optim_step.wgsl.
//
//   v   = beta2 * v + (1 - beta2) * g * g
//   m   = beta1 * m + lr * (1 - beta1) * g / (sqrt(v / bc2) + eps)
//   p  -= (lr / ema_lr) * (m * mask)          (0 while ema_lr is 0)
//   p  *= 1 - lr * wd                          (after the step)
//
// bc2 = 1 - beta2^t and ema_lr = the beta1-EMA of the learning rate (bias .y and .z,
// advance_bias in optim_common.wgsl). The mask is taken on the new m (not written back).
// State: state0 = exp_avg, state1 = exp_avg_sq.

// The new second and first moments.
fn laprop_moments(m: vec4<f32>, v: vec4<f32>, g: vec4<f32>, c: StepContext) -> array<vec4<f32>, 2> {
    let v_new = v * c.gp.beta2 + c.gp.one_minus_beta2 * g * g;
    let den = sqrt(v_new / c.bias.y) + c.gp.eps;
    let m_new = m * c.gp.beta1 + (c.gp.lr * c.gp.one_minus_beta1) * (g / den);
    return array<vec4<f32>, 2>(m_new, v_new);
}

fn caution_direction(s: u32, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    return laprop_moments(load_state0(s), load_state1(s), g, c)[0];
}

fn step_vec4(at: At, g: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) {
    let p = load_param(at.param, valid);
    let m = load_state0(at.state);
    let v = load_state1(at.state);
    let moments = laprop_moments(m, v, g, c);
    let m_new = moments[0];
    let mask = caution_mask(m_new, g, scale, step);
    let step_size = select(0.0, c.gp.lr / c.bias.z, c.bias.z != 0.0);
    let moved = p - step_size * (m_new * mask);
    let p_new = select(moved, moved * c.decay, decay_reaches(m_new, p, step));
    store_param(at.param, select(p, p_new, valid), valid);
    store_state0(at.state, select(m, m_new, valid));
    store_state1(at.state, select(v, moments[1], valid));
}
