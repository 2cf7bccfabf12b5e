// params_scalar.wgsl: parameters and gradients read and written one f32 at a time,
// for views of a caller's buffers at any 4-byte offset. Only the lanes inside the
// tensor are touched: the caller's neighbouring data is never read or rewritten.
//
// @binding(0) params: parameter window, read_write
// @binding(1) grads:  gradient window, read

@group(0) @binding(BINDING_PARAMS) var<storage, read_write> params: array<f32>;
@group(0) @binding(BINDING_GRADS) var<storage, read> grads: array<f32>;

const LANES: u32 = 4u;

fn load_param(e: u32, valid: vec4<bool>) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var l = 0u; l < LANES; l++) {
        if valid[l] {
            v[l] = params[e + l];
        }
    }
    return v;
}

fn store_param(e: u32, v: vec4<f32>, valid: vec4<bool>) {
    for (var l = 0u; l < LANES; l++) {
        if valid[l] {
            params[e + l] = v[l];
        }
    }
}

fn load_grad(e: u32, valid: vec4<bool>) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var l = 0u; l < LANES; l++) {
        if valid[l] {
            v[l] = grads[e + l];
        }
    }
    return v;
}
