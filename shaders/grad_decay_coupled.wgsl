// grad_decay_coupled.wgsl: the gradient the algorithm sees under coupled (L2) weight
// decay (ADOPT without `decoupled`, timm/optim/adopt.py:318-319): g + wd * p, which its
// state and its caution mask then see. Both passes read the parameters.

fn step_grad(lane: Lane, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    return g + c.gp.weight_decay * load_param(lane.at.param, lane.valid);
}
