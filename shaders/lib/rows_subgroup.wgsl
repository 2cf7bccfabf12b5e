// lib/rows_subgroup.wgsl: row_sum and row_max for a team of one workgroup
// (lib/rows_team.wgsl documents the interface), reducing with subgroup operations and
// a single barrier (requires Features::SUBGROUP).
//
// Each subgroup reduces with subgroupAdd / subgroupMax; for the sum, its first active
// invocation stores the result in its own slot and the others store 0; for the
// maximum every invocation stores the subgroup's. After one barrier every invocation
// combines all ROW_WG_SIZE slots. This needs neither the subgroup size nor how
// subgroups map onto invocation indices.

fn row_sum(lid: u32, v: f32, bank: u32) -> f32 {
    let base = bank * ROW_WG_SIZE;
    let partial = subgroupAdd(v);
    let first = subgroupBroadcastFirst(lid) == lid;
    row_scratch[base + lid] = select(0.0, partial, first);
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < ROW_WG_SIZE; i++) {
        total += row_scratch[base + i];
    }
    return total;
}

fn row_max(lid: u32, v: f32, bank: u32) -> f32 {
    let base = bank * ROW_WG_SIZE;
    row_scratch[base + lid] = subgroupMax(v);
    workgroupBarrier();
    var m = row_scratch[base];
    for (var i = 1u; i < ROW_WG_SIZE; i++) {
        m = max(m, row_scratch[base + i]);
    }
    return m;
}
