// params_vec4.wgsl: parameters and gradients read and written as vec4<f32>, for
// coptim's own arenas (every tensor starts 16-byte aligned and owns its padding).
//
// @binding(0) params: parameter window, read_write
// @binding(1) grads:  gradient window, read
//
// The element indices passed in are multiples of 4 in this variant.

@group(0) @binding(BINDING_PARAMS) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(BINDING_GRADS) var<storage, read> grads: array<vec4<f32>>;

fn load_param(e: u32, valid: vec4<bool>) -> vec4<f32> {
    return params[e / 4u];
}

// `v` holds the old values in the lanes outside the tensor (the padding is coptim's).
fn store_param(e: u32, v: vec4<f32>, valid: vec4<bool>) {
    params[e / 4u] = v;
}

fn load_grad(e: u32, valid: vec4<bool>) -> vec4<f32> {
    return select(vec4<f32>(0.0), grads[e / 4u], valid);
}
