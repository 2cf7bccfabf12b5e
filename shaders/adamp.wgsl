// adamp.wgsl: AdamP and C-AdamP (timm `adamp`/`cadamp`; timm/optim/adamp.py:114-149),
// the algorithm hooks of optim_step.wgsl on projection.wgsl.
//
//   m   = beta1 * m + (1 - beta1) * g
//   v   = beta2 * v + (1 - beta2) * g * g
//   u   = (beta1 * m + (1 - beta1) * g) / den if nesterov else m / den,
//         den = sqrt(v) / sqrt(bc2) + eps
//   u   = projected and masked (projection.wgsl); r = wd_ratio where projected, else 1
//   p  *= 1 - lr * wd * r   (cautious decay: only where u * p >= 0, u before the mask)
//   p  -= (lr / bc1) * u
//
// State: state0 = exp_avg, state1 = exp_avg_sq.
// Generated constant (bool): ADAMP_NESTEROV.

fn adamp_moments(m: vec4<f32>, v: vec4<f32>, g: vec4<f32>, gp: GroupParams) -> mat2x4<f32> {
    return mat2x4<f32>(m * gp.beta1 + gp.one_minus_beta1 * g, v * gp.beta2 + gp.one_minus_beta2 * g * g);
}

// The update before projection from the new moments.
fn adamp_update(mv: mat2x4<f32>, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    let den = sqrt(mv[1]) / sqrt(c.bias.y) + c.gp.eps;
    if ADAMP_NESTEROV {
        return (c.gp.beta1 * mv[0] + c.gp.one_minus_beta1 * g) / den;
    }
    return mv[0] / den;
}

fn caution_direction(s: u32, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    return adamp_update(adamp_moments(load_state0(s), load_state1(s), g, c.gp), g, c);
}

fn perturb(at: At, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    return caution_direction(at.state, g, c);
}

fn step_vec4(at: At, g: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) {
    let p = load_param(at.param, valid);
    let m = load_state0(at.state);
    let v = load_state1(at.state);
    let mv = adamp_moments(m, v, g, c.gp);
    let x = projected_step(at, p, g, adamp_update(mv, g, c), valid, scale, c);
    let decay = 1.0 - c.gp.lr * c.gp.weight_decay * x.wd_ratio;
    let p_new = decayed(p, x.direction, decay, step) - (c.gp.lr / c.bias.x) * x.update;
    store_param(at.param, select(p, p_new, valid), valid);
    store_state0(at.state, select(m, mv[0], valid));
    store_state1(at.state, select(v, mv[1], valid));
}
