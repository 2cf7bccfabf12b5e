// lib/rows_invocation.wgsl: row teams of one invocation (ROW_LANES = 1; see
// lib/rows_team.wgsl for the interface) over a flat grid of ROW_WG_SIZE-invocation
// workgroups: no barriers and no workgroup memory, the layout for CPU adapters
// (RowLayout in src/nn/kernels.rs chooses). A reduction over one invocation is the
// identity.

fn row_index(group: Workgroup, lid: u32) -> u32 {
    return workgroup_linear(group.id, group.count) * ROW_WG_SIZE + lid;
}

fn row_lane(lid: u32) -> u32 {
    return 0u;
}

fn row_sum(lid: u32, v: f32, bank: u32) -> f32 {
    return v;
}

fn row_max(lid: u32, v: f32, bank: u32) -> f32 {
    return v;
}
