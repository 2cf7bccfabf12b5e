// lib/grid.wgsl: workgroup and invocation indexing over a 2-D dispatch grid.
//
// A dispatch of more than max_compute_workgroups_per_dimension workgroups is split
// into x * y; these give each workgroup (and invocation) one linear index.

// Linear index of workgroup `wg` in a grid of `nwg` workgroups.
fn workgroup_linear(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.y * nwg.x + wg.x;
}

// The builtins that place a workgroup, the same in all its invocations. (A row
// kernel takes them apart from local_invocation_index: to the uniformity analysis a
// struct with one non-uniform member is non-uniform as a whole, and a row team's
// barriers need a uniform row index.)
struct Workgroup {
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) count: vec3<u32>,
}

// The builtins that place an invocation of a flat kernel: its entry point takes
// `inv: Invocation` and calls `flat_index(inv)`.
struct Invocation {
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// Linear index of an invocation over the whole grid, with `WG_SIZE` (a generated
// constant) invocations per workgroup.
fn flat_index(inv: Invocation) -> u32 {
    return workgroup_linear(inv.wg, inv.nwg) * WG_SIZE + inv.lid;
}
