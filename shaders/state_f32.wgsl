// state_f32.wgsl: optimizer state stored as f32, four elements per vec4.
//
// @binding(2) state0: first state tensor (exp_avg, or momentum_buffer)
// @binding(3) state1: second state tensor (exp_avg_sq, ...)
// @binding(11) state2: third state tensor (RMSpropTF's centered grad_avg with momentum)

@group(0) @binding(BINDING_STATE0) var<storage, read_write> state0: array<vec4<f32>>;
@group(0) @binding(BINDING_STATE1) var<storage, read_write> state1: array<vec4<f32>>;
@group(0) @binding(BINDING_STATE2) var<storage, read_write> state2: array<vec4<f32>>;

fn load_state0(i: u32) -> vec4<f32> {
    return state0[i];
}

fn store_state0(i: u32, v: vec4<f32>) {
    state0[i] = v;
}

fn load_state1(i: u32) -> vec4<f32> {
    return state1[i];
}

fn store_state1(i: u32, v: vec4<f32>) {
    state1[i] = v;
}

fn load_state2(i: u32) -> vec4<f32> {
    return state2[i];
}

fn store_state2(i: u32, v: vec4<f32>) {
    state2[i] = v;
}
