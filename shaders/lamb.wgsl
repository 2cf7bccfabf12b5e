// lamb.wgsl: LAMB and C-LAMB (timm `lamb`/`clamb`, `lambw`/`clambw`;
// timm/optim/lamb.py:337-371), the algorithm hooks of optim_step.wgsl.
//
//   g  /= max(global_norm / max_grad_norm, 1)       (the clip pass: clip_max_ratio)
//   m   = lerp(m, g, 1 - beta1)                     (grad_averaging; else beta1 * m + g)
//   v   = beta2 * v + (1 - beta2) * g * g
//   u   = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)   (bc = 1 without bias correction)
//   u  *= mask                                      (caution: before decay and trust ratio)
//   coupled: u += wd * p                 decoupled: p *= 1 - lr * wd
//   r   = ||p|| / ||u||, 1 if either is 0, min(r, 1) with trust_clip;
//         only when wd != 0 or always_adapt (else r = 1)
//   p  -= lr * r * u
// Cautious weight decay drops the decay where u * p < 0 (u before the mask).
//
// The norms come from four per-tensor sums of the measuring pass (tensor_terms), with
// a = the mask weight before the scale (1, or the soft factor where disagreeing) and
// c = 1 where decay reaches the coordinate:
//   x = sum (a u)^2,  y = sum (a u)(c p),  z = sum (c p)^2,  w = sum p^2
// and the tensor's caution scale s and decay factor d = 1 - lr * wd:
//   coupled:   ||u||^2 = s^2 x + 2 s wd y + wd^2 z,   ||p||^2 = w
//   decoupled: ||u||^2 = s^2 x,                       ||p||^2 = (w - z) + d^2 z
//
// Generated constants (bool): LAMB_DECOUPLED, LAMB_TRUST_CLIP, LAMB_ALWAYS_ADAPT,
// LAMB_GRAD_AVERAGING, LAMB_BIAS_CORRECTION.
// State: state0 = exp_avg, state1 = exp_avg_sq.

fn first_moment(m: vec4<f32>, g: vec4<f32>, gp: GroupParams) -> vec4<f32> {
    if LAMB_GRAD_AVERAGING {
        return torch_lerp(m, g, gp.one_minus_beta1);
    }
    return m * gp.beta1 + g;
}

fn second_moment(v: vec4<f32>, g: vec4<f32>, gp: GroupParams) -> vec4<f32> {
    return v * gp.beta2 + gp.one_minus_beta2 * g * g;
}

// The Adam update before the mask, from the new moments and this step's bias
// corrections.
fn adam_update(m_new: vec4<f32>, v_new: vec4<f32>, bias: vec4<f32>, gp: GroupParams) -> vec4<f32> {
    let bc = select(vec4<f32>(1.0), bias, LAMB_BIAS_CORRECTION);
    return (m_new / bc.x) / (sqrt(v_new) / sqrt(bc.y) + gp.eps);
}

// 1 where weight decay reaches the coordinate (everywhere unless cautious decay).
fn decay_reach(u: vec4<f32>, p: vec4<f32>) -> vec4<f32> {
    return select(vec4<f32>(0.0), vec4<f32>(1.0), decay_reaches(u, p, step));
}

fn caution_direction(s: u32, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    return first_moment(load_state0(s), g, c.gp);
}

fn tensor_terms(at: At, g: vec4<f32>, dir: vec4<f32>, valid: vec4<bool>, c: StepContext) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    let p = select(zero, load_param(at.param, valid), valid);
    let u = adam_update(dir, second_moment(load_state1(at.state), g, c.gp), c.bias, c.gp);
    let au = select(zero, u * caution_mask(dir, g, 1.0, step), valid);
    let cp = p * decay_reach(u, p);
    return vec4<f32>(dot(au, au), dot(au, cp), dot(cp, cp), dot(p, p));
}

// The trust ratio of a tensor with float sums `sums` and caution scale `scale`.
fn trust_ratio(sums: vec4<f32>, scale: f32, c: StepContext) -> f32 {
    let wd = c.gp.weight_decay;
    if wd == 0.0 && !LAMB_ALWAYS_ADAPT {
        return 1.0;
    }
    let s = select(1.0, scale, step.caution != 0u);
    var p_sq = sums.w;
    var u_sq = s * s * sums.x;
    if LAMB_DECOUPLED {
        p_sq = (sums.w - sums.z) + c.decay * c.decay * sums.z;
    } else {
        u_sq += 2.0 * s * wd * sums.y + wd * wd * sums.z;
    }
    let p_norm = sqrt(max(p_sq, 0.0));
    let u_norm = sqrt(max(u_sq, 0.0));
    let r = select(1.0, p_norm / u_norm, p_norm > 0.0 && u_norm > 0.0);
    return select(r, min(r, 1.0), LAMB_TRUST_CLIP);
}

fn step_vec4(at: At, g: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) {
    let p = load_param(at.param, valid);
    let m = load_state0(at.state);
    let v = load_state1(at.state);
    let m_new = first_moment(m, g, c.gp);
    let v_new = second_moment(v, g, c.gp);
    let u = adam_update(m_new, v_new, c.bias, c.gp);
    let masked = u * caution_mask(m_new, g, scale, step);
    let r = trust_ratio(c.sums, scale, c);
    var p_new: vec4<f32>;
    if LAMB_DECOUPLED {
        p_new = decayed(p, u, c.decay, step) - c.gp.lr * (masked * r);
    } else {
        p_new = p - c.gp.lr * ((masked + c.gp.weight_decay * decay_reach(u, p) * p) * r);
    }
    store_param(at.param, select(p, p_new, valid), valid);
    store_state0(at.state, select(m, m_new, valid));
    store_state1(at.state, select(v, v_new, valid));
}
