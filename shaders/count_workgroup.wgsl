// count_workgroup.wgsl: the portable fallback of count_subgroup.wgsl: a workgroup
// atomic, one barrier, and one global atomic per block.

var<workgroup> block_count: atomic<u32>;

fn add_block_count(count: u32, slot: u32, lid: u32) {
    if count != 0u {
        atomicAdd(&block_count, count);
    }
    workgroupBarrier();
    if lid == 0u {
        let total = atomicLoad(&block_count);
        if total != 0u {
            atomicAdd(&partials[slot].count, total);
        }
    }
}
