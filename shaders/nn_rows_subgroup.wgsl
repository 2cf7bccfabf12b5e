// nn_rows_subgroup.wgsl: reductions across the ROW_WG_SIZE invocations of a
// workgroup with subgroup operations and a single barrier (requires
// Features::SUBGROUP). Same interface as nn_rows_workgroup.wgsl, which documents it.
//
// Each subgroup reduces with subgroupAdd / subgroupMax; its first invocation stores
// the result in its own slot (the others store the identity), and after one barrier
// every invocation combines all ROW_WG_SIZE slots. This needs neither the subgroup
// size nor how subgroups map onto invocation indices.

// The invocation inputs the reductions need.
struct Lane {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) subgroup_lane: u32,
}

var<workgroup> row_scratch: array<f32, 2u * ROW_WG_SIZE>;

// Sum over the workgroup of every invocation's `v`.
fn row_sum(lane: Lane, v: f32, bank: u32) -> f32 {
    let base = bank * ROW_WG_SIZE;
    let partial = subgroupAdd(v);
    row_scratch[base + lane.index] = select(0.0, partial, lane.subgroup_lane == 0u);
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < ROW_WG_SIZE; i++) {
        total += row_scratch[base + i];
    }
    return total;
}

// Maximum over the workgroup of every invocation's `v` (every invocation of a
// subgroup stores the subgroup's maximum, so no identity is needed).
fn row_max(lane: Lane, v: f32, bank: u32) -> f32 {
    let base = bank * ROW_WG_SIZE;
    row_scratch[base + lane.index] = subgroupMax(v);
    workgroupBarrier();
    var m = row_scratch[base];
    for (var i = 1u; i < ROW_WG_SIZE; i++) {
        m = max(m, row_scratch[base + i]);
    }
    return m;
}
