// adamw.wgsl: AdamW and C-AdamW (timm `adamw`/`cadamw`, torch.optim.AdamW), the
// algorithm hooks of optim_step.wgsl.
//
//   p  *= 1 - lr * wd   (cautious decay: only where u * p >= 0, see decayed)
//   m   = lerp(m, g, 1 - beta1)
//   v   = beta2 * v + (1 - beta2) * g * g
//   torch-style: p -= (lr / bc1) * (m * mask) / (sqrt(v) / sqrt(bc2) + eps)
//   HF-style:    p -= (lr * sqrt(bc2) / bc1) * (m * mask) / (sqrt(v) + eps)
//
// The mask uses the raw new first moment, as timm does: sign(m) is the sign of the
// update because the denominator is positive.
// State: state0 = exp_avg, state1 = exp_avg_sq.

// StepParams.variant of HF-style eps.
const EPS_STYLE_HF: u32 = 1u;

fn caution_direction(s: u32, g: vec4<f32>, gp: GroupParams, first_step: bool) -> vec4<f32> {
    return torch_lerp(load_state0(s), g, gp.one_minus_beta1);
}

fn step_vec4(at: At, g: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) {
    let hf = step.variant == EPS_STYLE_HF;
    let bc2_sqrt = sqrt(c.bias.y);
    let step_size = select(c.gp.lr / c.bias.x, c.gp.lr * bc2_sqrt / c.bias.x, hf);
    let den_div = select(bc2_sqrt, 1.0, hf);
    let p = load_param(at.param, valid);
    let m = load_state0(at.state);
    let v = load_state1(at.state);
    let m_new = torch_lerp(m, g, c.gp.one_minus_beta1);
    let v_new = v * c.gp.beta2 + c.gp.one_minus_beta2 * g * g;
    let den = sqrt(v_new) / den_div + c.gp.eps;
    let mask = caution_mask(m_new, g, scale, step);
    let p_new = decayed(p, m_new, c.decay, step) - step_size * ((m_new * mask) / den);
    store_param(at.param, select(p, p_new, valid), valid);
    store_state0(at.state, select(m, m_new, valid));
    store_state1(at.state, select(v, v_new, valid));
}
