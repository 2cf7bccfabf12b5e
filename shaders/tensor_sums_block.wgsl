// tensor_sums_block.wgsl: the per-block half of the per-tensor float sums, for
// algorithms whose update needs them (LAMB's trust ratio). The algorithm part supplies
//   tensor_terms(at, g, dir, valid, c: StepContext) -> vec4<f32>
// (four per-coordinate terms, summed over the tensor); count_agreement adds them up per
// invocation, and this part sums the workgroup in a fixed tree order into the block's
// record. finalize_scale (reduce.wgsl) then sums a tensor's blocks in block order into
// TensorEntry.sums: deterministic for a given stream shape.
// `partials` is declared by optim_step.wgsl.

fn add_block_sums(sums: vec4<f32>, slot: u32, lid: u32, in_range: bool) {
    let total = workgroup_sum4(sums, lid);
    if in_range && lid == 0u {
        partials[slot].sums = total;
    }
}
