// lib/workgroup_sum4.wgsl: a deterministic sum of a vec4 over one workgroup.
//
// The vec4 twin of lib/workgroup_sum.wgsl, with its own scratch so that modules summing
// scalars do not pay four times the workgroup memory. Needs the constant WG_SIZE (a
// power of two). Every invocation of the workgroup must call it (it has barriers).

var<workgroup> sum4_scratch: array<vec4<f32>, WG_SIZE>;

// Sum of `value` over the workgroup in a fixed tree order; valid in every invocation.
fn workgroup_sum4(value: vec4<f32>, lid: u32) -> vec4<f32> {
    sum4_scratch[lid] = value;
    workgroupBarrier();
    for (var stride = WG_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lid < stride {
            sum4_scratch[lid] += sum4_scratch[lid + stride];
        }
        workgroupBarrier();
    }
    let total = sum4_scratch[0];
    workgroupBarrier();
    return total;
}
