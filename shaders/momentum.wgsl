// momentum.wgsl: the heavy-ball update of sgd.wgsl and sgdp.wgsl (timm/optim/sgdw.py,
// timm/optim/sgdp.py):
//
//   u = g + momentum * buf if nesterov else buf   (buf: the updated momentum buffer)
//
// No bindings.

fn momentum_update(buf_new: vec4<f32>, g: vec4<f32>, momentum: f32, nesterov: bool) -> vec4<f32> {
    if nesterov {
        return g + momentum * buf_new;
    }
    return buf_new;
}
