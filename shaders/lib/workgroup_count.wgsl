// lib/workgroup_count.wgsl: an exact integer sum over one workgroup.
//
// Counts add as u32 through one workgroup atomic: exact for any total below 2^32
// (an f32 sum is exact only up to 2^24), and the same whatever order the adds land
// in. Every invocation of the workgroup must call it (it has barriers).

var<workgroup> count_total: atomic<u32>;

// Sum of `value` over the workgroup; valid in every invocation.
fn workgroup_count(value: u32, lid: u32) -> u32 {
    if lid == 0u {
        atomicStore(&count_total, 0u);
    }
    workgroupBarrier();
    if value != 0u {
        atomicAdd(&count_total, value);
    }
    workgroupBarrier();
    let total = atomicLoad(&count_total);
    workgroupBarrier();
    return total;
}
