// lib/workgroup_sum.wgsl: a deterministic sum over one workgroup.
//
// Needs the constant WG_SIZE (a power of two) from the module's generated constants.
// Every invocation of the workgroup must call it (it has barriers).

var<workgroup> sum_scratch: array<f32, WG_SIZE>;

// Sum of `value` over the workgroup in a fixed tree order; the result is valid in
// every invocation.
fn workgroup_sum(value: f32, lid: u32) -> f32 {
    sum_scratch[lid] = value;
    workgroupBarrier();
    for (var stride = WG_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lid < stride {
            sum_scratch[lid] += sum_scratch[lid + stride];
        }
        workgroupBarrier();
    }
    let total = sum_scratch[0];
    workgroupBarrier();
    return total;
}
