// adopt.wgsl: ADOPT and C-ADOPT (timm `adopt`/`cadopt`, `adoptw`/`cadoptw`,
// `adoptc`/`cadoptc`; timm/optim/adopt.py:294-347), the algorithm hooks of
// optim_step.wgsl.
//
//   g   = g + wd * p                 coupled decay, unless ADOPT_DECOUPLED
//                                    (grad_decay_coupled.wgsl: the mask sees it too)
//   step 1: v = g * g, nothing else  (no decay, no step, m stays 0)
//   later steps t:
//   p  *= 1 - lr * wd                (ADOPT_DECOUPLED; cautious decay: see decayed)
//   n   = g / max(sqrt(v), eps)      (v of the steps before)
//   n   = clamp(n, -b, b), b = (t - 1)^ADOPT_CLIP_EXP     (ADOPT_CLIP)
//   m   = lerp(m, n, 1 - beta1)
//   p  -= lr * (m * mask)            (mask of the new m against g)
//   v   = beta2 * v + (1 - beta2) * g * g                 (after the step)
//
// Generated constants: ADOPT_DECOUPLED (bool), ADOPT_CLIP (bool), ADOPT_CLIP_EXP (f32).
// State: state0 = exp_avg, state1 = exp_avg_sq.

// The new first moment: the EMA of the normalized, clipped gradient.
fn adopt_moment(m: vec4<f32>, v: vec4<f32>, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    var n = g / max(sqrt(v), vec4<f32>(c.gp.eps));
    if ADOPT_CLIP {
        let bound = pow(f32(c.t) - 1.0, ADOPT_CLIP_EXP);
        n = clamp(n, vec4<f32>(-bound), vec4<f32>(bound));
    }
    return torch_lerp(m, n, c.gp.one_minus_beta1);
}

// No direction on the first step, which only initializes v.
fn caution_direction(s: u32, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    if c.first_step {
        return vec4<f32>(0.0);
    }
    return adopt_moment(load_state0(s), load_state1(s), g, c);
}

fn step_vec4(at: At, g: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) {
    let v = load_state1(at.state);
    if c.first_step {
        store_state1(at.state, select(v, v + g * g, valid));
        return;
    }
    let p = load_param(at.param, valid);
    let m = load_state0(at.state);
    let m_new = adopt_moment(m, v, g, c);
    let mask = caution_mask(m_new, g, scale, step);
    var kept = p;
    if ADOPT_DECOUPLED {
        kept = decayed(p, m_new, c.decay, step);
    }
    let p_new = kept - c.gp.lr * (m_new * mask);
    let v_new = v * c.gp.beta2 + c.gp.one_minus_beta2 * g * g;
    store_param(at.param, select(p, p_new, valid), valid);
    store_state0(at.state, select(m, m_new, valid));
    store_state1(at.state, select(v, v_new, valid));
}
