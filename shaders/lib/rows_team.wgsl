// lib/rows_team.wgsl: row teams, the way the row kernels (nn_layernorm, nn_softmax,
// nn_loss) spread a row over invocations. Each row is worked on by a team of
// ROW_LANES invocations (a generated constant, like ROW_WG_SIZE, the invocations per
// workgroup of a row entry point). Every team part provides:
//   row_index(group, lid) -> u32    the row (or column) the invocation's team works
//                                   on (group: lib/grid.wgsl's Workgroup;
//                                   lid: local_invocation_index)
//   row_lane(lid) -> u32            its place in the team: it takes elements
//                                   row_lane, row_lane + ROW_LANES, ... of the row
//   row_sum(lid, v, bank) -> f32    sum of `v` over the team, returned to all of it
//   row_max(lid, v, bank) -> f32    maximum of `v` over the team
// so that a row kernel, written once against it, runs with any team:
//   this file with rows_workgroup.wgsl  one workgroup per row, workgroup memory
//   this file with rows_subgroup.wgsl   one workgroup per row, subgroup operations
//   rows_invocation.wgsl alone          one invocation per row (CPU adapters)
//
// A row entry point takes `group: Workgroup` and `lid` apart, so that the row index
// of a workgroup team (from `group` alone) is uniform to the uniformity analysis.
//
// This file: one workgroup per row (ROW_LANES = ROW_WG_SIZE, a power of two). Every
// invocation of a workgroup must call a reduction (uniform control flow);
// consecutive reductions alternate `bank` (0, 1) so that one reduction's writes never
// race the previous one's reads.

var<workgroup> row_scratch: array<f32, 2u * ROW_WG_SIZE>;

fn row_index(group: Workgroup, lid: u32) -> u32 {
    return workgroup_linear(group.id, group.count);
}

fn row_lane(lid: u32) -> u32 {
    return lid;
}
