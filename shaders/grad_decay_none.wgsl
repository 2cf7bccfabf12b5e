// grad_decay_none.wgsl: the gradient the algorithm sees when weight decay, if any, is
// decoupled (every algorithm but coupled ADOPT): the clipped gradient itself.

fn step_grad(lane: Lane, g: vec4<f32>, c: StepContext) -> vec4<f32> {
    return g;
}
