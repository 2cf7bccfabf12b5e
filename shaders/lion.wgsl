// lion.wgsl: Lion and C-Lion (timm `lion`/`clion`; C-Optim c_lion.py), the algorithm
// hooks of optim_step.wgsl.
//
//   p *= 1 - lr * wd   (cautious decay: only where u * p >= 0, see decayed)
//   u  = sign(lerp(m, g, 1 - beta1))      (= sign(beta1 * m + (1 - beta1) * g))
//   p -= lr * u * mask
//   m  = lerp(m, g, 1 - beta2)            (after the step)
//
// State: state0 = exp_avg.

fn caution_direction(s: u32, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    return sign(torch_lerp(load_state0(s), g, c.gp.one_minus_beta1));
}

fn step_vec4(at: At, g: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) {
    let p = load_param(at.param, valid);
    let m = load_state0(at.state);
    let u = sign(torch_lerp(m, g, c.gp.one_minus_beta1));
    let mask = caution_mask(u, g, scale, step);
    let p_new = decayed(p, u, c.decay, step) - c.gp.lr * (u * mask);
    store_param(at.param, select(p, p_new, valid), valid);
    store_state0(at.state, select(m, torch_lerp(m, g, c.gp.one_minus_beta2), valid));
}
