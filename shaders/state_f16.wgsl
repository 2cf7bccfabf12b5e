// state_f16.wgsl: optimizer state stored as IEEE binary16 (vec4<f16>, 8 bytes per
// four elements). Needs `shader-f16` (Features::SHADER_F16); the including module
// starts with `enable f16;` (src/optim/kernels.rs adds it). Arithmetic stays in f32:
// loads widen exactly, stores convert with the device's f32 -> f16 conversion (round
// to nearest even on Vulkan/Metal/D3D12 hardware; WGSL allows either neighbour).
// Values beyond +-65504 become infinite and magnitudes below 6.1e-5 lose precision
// (subnormals) or flush to zero: f16 suits moments of order 1e-4..1e4 only.
//
// @binding(2) state0: first state tensor (exp_avg, or momentum_buffer)
// @binding(3) state1: second state tensor (exp_avg_sq, ...)
// @binding(11) state2: third state tensor (RMSpropTF's centered grad_avg with momentum)

@group(0) @binding(BINDING_STATE0) var<storage, read_write> state0: array<vec4<f16>>;
@group(0) @binding(BINDING_STATE1) var<storage, read_write> state1: array<vec4<f16>>;
@group(0) @binding(BINDING_STATE2) var<storage, read_write> state2: array<vec4<f16>>;

fn load_state0(i: u32) -> vec4<f32> {
    return vec4<f32>(state0[i]);
}

fn store_state0(i: u32, v: vec4<f32>) {
    state0[i] = vec4<f16>(v);
}

fn load_state1(i: u32) -> vec4<f32> {
    return vec4<f32>(state1[i]);
}

fn store_state1(i: u32, v: vec4<f32>) {
    state1[i] = vec4<f16>(v);
}

fn load_state2(i: u32) -> vec4<f32> {
    return vec4<f32>(state2[i]);
}

fn store_state2(i: u32, v: vec4<f32>) {
    state2[i] = vec4<f16>(v);
}
