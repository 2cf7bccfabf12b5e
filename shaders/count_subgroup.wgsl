// count_subgroup.wgsl: adds a workgroup's agreement count to its block's partial
// with one subgroupAdd and one atomic per subgroup (no workgroup barrier).
// Requires Features::SUBGROUP. `partials` is declared by the including module.

fn add_block_count(count: u32, slot: u32, lid: u32) {
    let total = subgroupAdd(count);
    // The first active invocation of the subgroup (naga has no subgroupElect).
    let first = subgroupExclusiveAdd(1u) == 0u;
    if first && total != 0u {
        atomicAdd(&partials[slot].count, total);
    }
}
