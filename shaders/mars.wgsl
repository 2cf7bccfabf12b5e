// mars.wgsl: MARS and C-MARS (timm `mars`/`cmars`; timm/optim/mars.py:25-87, :207), the
// algorithm hooks of optim_step.wgsl and of its norm pass (measure_norms.wgsl).
//
// MARS path (rank >= 2, or every tensor with MARS_OPTIMIZE_1D; :46):
//   c   = g on the first step, else (g - last_grad) * gamma * beta1 / (1 - beta1) + g  (:48-52)
//   c  /= max(||c||, 1)       ||c||^2 per tensor from the norm pass (c.sums.x)        (:54)
//   m   = beta1 * m + (1 - beta1) * c                                                 (:55)
//   adamw type: v = beta2 * v + (1 - beta2) * c * c
//               p -= lr * (wd * p + (m * mask / bc1) / (sqrt(v) / sqrt(bc2) + eps))  (:63-68, :73)
//   lion type:  p -= lr * (wd * p + sign(m * mask))  (the mask's scale drops out)     (:69-70)
// AdamW path (1-D tensors without MARS_OPTIMIZE_1D; :75-86), with betas_1d, their bias
// corrections bc1d, bc2d, and lr * lr_1d_factor (decay included):
//   m = b1d * m + (1 - b1d) * g;   v = b2d * v + (1 - b2d) * g * g
//   p -= lr * f * (wd * p + (m * mask / bc1d) / (sqrt(v) / sqrt(bc2d) + eps))
// Both: the mask compares m with the raw gradient g (:57-61); last_grad = g after the
// step (:207). The decay wd * p inside the update is p *= 1 - lr * wd before the step
// (cautious decay judged on m, whose sign is the update's).
//
// Generated constants: MARS_LION, MARS_OPTIMIZE_1D (bool); MARS_GAMMA_COEF
// (gamma * beta1 / (1 - beta1), computed in f64), MARS_LR_1D_FACTOR, MARS_BETA1_1D,
// MARS_ONE_MINUS_BETA1_1D, MARS_BETA2_1D, MARS_ONE_MINUS_BETA2_1D (f32).
// State: state0 = last_grad, state1 = exp_avg, state2 = exp_avg_sq (left as it is by the
// lion type on the MARS path, as timm leaves it).

fn on_mars_path(c: StepContext) -> bool {
    return MARS_OPTIMIZE_1D || c.rank >= 2u;
}

// The corrected gradient before the clip, from the previous gradient `last`.
fn corrected_gradient(last: vec4<f32>, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    if c.first_step {
        return g;
    }
    return (g - last) * MARS_GAMMA_COEF + g;
}

// What the moments average: the clipped corrected gradient, or g on the AdamW path.
fn averaged(last: vec4<f32>, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    if !on_mars_path(c) {
        return g;
    }
    return corrected_gradient(last, g, c) / max(sqrt(c.sums.x), 1.0);
}

// The path's (beta1, 1 - beta1, beta2, 1 - beta2).
fn path_betas(c: StepContext) -> vec4<f32> {
    if on_mars_path(c) {
        return vec4<f32>(c.gp.beta1, c.gp.one_minus_beta1, c.gp.beta2, c.gp.one_minus_beta2);
    }
    return vec4<f32>(MARS_BETA1_1D, MARS_ONE_MINUS_BETA1_1D, MARS_BETA2_1D, MARS_ONE_MINUS_BETA2_1D);
}

// The path's bias corrections (1 - beta1^t, 1 - beta2^t).
fn path_bias(c: StepContext) -> vec2<f32> {
    if on_mars_path(c) {
        return c.bias.xy;
    }
    return vec2<f32>(
        one_minus_pow(MARS_BETA1_1D, MARS_ONE_MINUS_BETA1_1D, c.t),
        one_minus_pow(MARS_BETA2_1D, MARS_ONE_MINUS_BETA2_1D, c.t),
    );
}

fn norm_terms(at: At, g: vec4<f32>, valid: vec4<bool>, c: StepContext) -> vec4<f32> {
    if !on_mars_path(c) {
        return vec4<f32>(0.0);
    }
    let x = select(vec4<f32>(0.0), corrected_gradient(load_state0(at.state), g, c), valid);
    return vec4<f32>(dot(x, x), 0.0, 0.0, 0.0);
}

fn caution_direction(s: u32, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    let b = path_betas(c);
    return load_state1(s) * b.x + b.y * averaged(load_state0(s), g, c);
}

fn step_vec4(at: At, g: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) {
    let p = load_param(at.param, valid);
    let last = load_state0(at.state);
    let m = load_state1(at.state);
    let x = averaged(last, g, c);
    let b = path_betas(c);
    let m_new = m * b.x + b.y * x;
    let mask = caution_mask(m_new, g, scale, step);
    let mars = on_mars_path(c);
    var p_new: vec4<f32>;
    if mars && MARS_LION {
        p_new = decayed(p, m_new, c.decay, step) - c.gp.lr * sign(m_new * mask);
    } else {
        let v = load_state2(at.state);
        let v_new = v * b.z + b.w * x * x;
        let bc = path_bias(c);
        let lr = select(c.gp.lr * MARS_LR_1D_FACTOR, c.gp.lr, mars);
        let decay = select(1.0 - lr * c.gp.weight_decay, c.decay, mars);
        let u = ((m_new * mask) / bc.x) / (sqrt(v_new) / sqrt(bc.y) + c.gp.eps);
        p_new = decayed(p, m_new, decay, step) - lr * u;
        store_state2(at.state, select(v, v_new, valid));
    }
    store_param(at.param, select(p, p_new, valid), valid);
    store_state0(at.state, select(last, g, valid));
    store_state1(at.state, select(m, m_new, valid));
}
