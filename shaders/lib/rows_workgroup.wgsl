// lib/rows_workgroup.wgsl: row_sum and row_max for a team of one workgroup
// (lib/rows_team.wgsl documents the interface), reducing through workgroup memory: a
// tree of log2(ROW_WG_SIZE) barriers, for adapters without subgroup operations.

// The tree reduction behind row_sum (take_max false) and row_max (true).
fn row_reduce(lid: u32, v: f32, bank: u32, take_max: bool) -> f32 {
    let base = bank * ROW_WG_SIZE;
    row_scratch[base + lid] = v;
    workgroupBarrier();
    for (var stride = ROW_WG_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lid < stride {
            let mine = row_scratch[base + lid];
            let other = row_scratch[base + lid + stride];
            row_scratch[base + lid] = select(mine + other, max(mine, other), take_max);
        }
        workgroupBarrier();
    }
    return row_scratch[base];
}

fn row_sum(lid: u32, v: f32, bank: u32) -> f32 {
    return row_reduce(lid, v, bank, false);
}

fn row_max(lid: u32, v: f32, bank: u32) -> f32 {
    return row_reduce(lid, v, bank, true);
}
