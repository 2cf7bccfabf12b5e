// sgdp.wgsl: SGDP and C-SGDP (timm `sgdp`/`csgdp`; timm/optim/sgdp.py:224-246), the
// algorithm hooks of optim_step.wgsl on projection.wgsl.
//
//   buf = momentum * buf + g              (buf starts at 0; dampening 0)
//   u   = g + momentum * buf if nesterov else buf
//   u   = projected and masked (projection.wgsl); r = wd_ratio where projected, else 1
//   p  *= 1 - lr * wd * r / (1 - momentum)   (cautious decay: only where u * p >= 0)
//   p  -= lr * u
//
// State: state0 = momentum.
// Generated constant (bool): SGDP_NESTEROV.

fn sgdp_buffer(buf: vec4<f32>, g: vec4<f32>, gp: GroupParams) -> vec4<f32> {
    return buf * gp.momentum + g;
}

fn sgdp_update(buf_new: vec4<f32>, g: vec4<f32>, gp: GroupParams) -> vec4<f32> {
    if SGDP_NESTEROV {
        return g + gp.momentum * buf_new;
    }
    return buf_new;
}

fn caution_direction(s: u32, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    return sgdp_update(sgdp_buffer(load_state0(s), g, c.gp), g, c.gp);
}

fn perturb(at: At, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    return caution_direction(at.state, g, c);
}

fn step_vec4(at: At, g: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) {
    let p = load_param(at.param, valid);
    let buf = load_state0(at.state);
    let buf_new = sgdp_buffer(buf, g, c.gp);
    let x = projected_step(at, p, g, sgdp_update(buf_new, g, c.gp), valid, scale, c);
    let rate = c.gp.lr * c.gp.weight_decay * x.wd_ratio / (1.0 - c.gp.momentum);
    let p_new = decayed(p, x.direction, 1.0 - rate, step) - c.gp.lr * x.update;
    store_param(at.param, select(p, p_new, valid), valid);
    store_state0(at.state, select(buf, buf_new, valid));
}
