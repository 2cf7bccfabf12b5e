// state_bf16.wgsl: optimizer state stored as bfloat16, two per u32, so the four
// elements of one vec4 are one vec2<u32> (8 bytes). Works on every adapter: only
// integer and bit operations, no shader-f16.
//
// Element 2k is the low half of word k and element 2k + 1 the high half (the
// little-endian byte order of the arena's `ElementType::Bf16` encoding). Loads widen
// exactly (bf16 is the top half of an f32); stores round to nearest, ties to even,
// with overflow to infinity and NaN kept quiet, exactly as `half::bf16::from_f32`.
//
// @binding(2) state0: first state tensor (exp_avg, or momentum_buffer)
// @binding(3) state1: second state tensor (exp_avg_sq, ...)
// @binding(11) state2: third state tensor (RMSpropTF's centered grad_avg with momentum)

@group(0) @binding(BINDING_STATE0) var<storage, read_write> state0: array<vec2<u32>>;
@group(0) @binding(BINDING_STATE1) var<storage, read_write> state1: array<vec2<u32>>;
@group(0) @binding(BINDING_STATE2) var<storage, read_write> state2: array<vec2<u32>>;

fn bf16_unpack4(w: vec2<u32>) -> vec4<f32> {
    let hi = vec2<u32>(0xffff0000u);
    return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & hi.x, w.y << 16u, w.y & hi.y));
}

// The bf16 bits (in the low 16 bits) of each lane, rounded to nearest even.
fn bf16_round4(v: vec4<f32>) -> vec4<u32> {
    let b = bitcast<vec4<u32>>(v);
    let rne = (b + vec4<u32>(0x7fffu) + ((b >> vec4<u32>(16u)) & vec4<u32>(1u))) >> vec4<u32>(16u);
    let nan = (b & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
    return select(rne, (b >> vec4<u32>(16u)) | vec4<u32>(0x40u), nan);
}

fn bf16_pack4(v: vec4<f32>) -> vec2<u32> {
    let h = bf16_round4(v);
    return vec2<u32>(h.x | (h.y << 16u), h.z | (h.w << 16u));
}

fn load_state0(i: u32) -> vec4<f32> {
    return bf16_unpack4(state0[i]);
}

fn store_state0(i: u32, v: vec4<f32>) {
    state0[i] = bf16_pack4(v);
}

fn load_state1(i: u32) -> vec4<f32> {
    return bf16_unpack4(state1[i]);
}

fn store_state1(i: u32, v: vec4<f32>) {
    state1[i] = bf16_pack4(v);
}

fn load_state2(i: u32) -> vec4<f32> {
    return bf16_unpack4(state2[i]);
}

fn store_state2(i: u32, v: vec4<f32>) {
    state2[i] = bf16_pack4(v);
}
