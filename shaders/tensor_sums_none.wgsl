// tensor_sums_none.wgsl: the tensor-sum hooks of algorithms that need no per-tensor
// float sums (every element-wise one): no terms, nothing stored, no barrier.

fn tensor_terms(at: At, g: vec4<f32>, dir: vec4<f32>, valid: vec4<bool>, c: StepContext) -> vec4<f32> {
    return vec4<f32>(0.0);
}

fn add_block_sums(sums: vec4<f32>, slot: u32, lid: u32, in_range: bool) {}
