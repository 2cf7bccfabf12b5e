// sgd.wgsl: SGD with momentum and C-SGD (timm `sgdw`/`csgdw`), plain or Nesterov, the
// algorithm hooks of optim_step.wgsl.
//
//   p   *= 1 - lr * wd
//   buf  = momentum * buf + g             (first step: buf = g)
//   u    = g + momentum * buf if nesterov else buf
//   p   -= lr * u * mask
//
// State: state0 = momentum_buffer.

// Nesterov momentum is a pipeline constant.
override NESTEROV: bool = false;

fn momentum_buffer(buf: vec4<f32>, g: vec4<f32>, gp: GroupParams, first_step: bool) -> vec4<f32> {
    if first_step {
        return g;
    }
    return buf * gp.momentum + g;
}

fn sgd_direction(buf_new: vec4<f32>, g: vec4<f32>, gp: GroupParams) -> vec4<f32> {
    if NESTEROV {
        return g + gp.momentum * buf_new;
    }
    return buf_new;
}

fn caution_direction(s: u32, g: vec4<f32>, gp: GroupParams, first_step: bool) -> vec4<f32> {
    return sgd_direction(momentum_buffer(load_state0(s), g, gp, first_step), g, gp);
}

fn step_vec4(at: At, g: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) {
    let p = load_param(at.param, valid);
    let buf = load_state0(at.state);
    let buf_new = momentum_buffer(buf, g, c.gp, c.first_step);
    let u = sgd_direction(buf_new, g, c.gp);
    let mask = caution_mask(u, g, scale, step);
    let p_new = p * c.decay - c.gp.lr * (u * mask);
    store_param(at.param, select(p, p_new, valid), valid);
    store_state0(at.state, select(buf, buf_new, valid));
}
