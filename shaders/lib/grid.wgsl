// lib/grid.wgsl: workgroup indexing over a 2-D dispatch grid.
//
// A dispatch of more than max_compute_workgroups_per_dimension workgroups is split
// into x * y; these give each workgroup (and invocation) one linear index.

// Linear index of workgroup `wg` in a grid of `nwg` workgroups.
fn workgroup_linear(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.y * nwg.x + wg.x;
}

// Linear index of invocation `lid` of workgroup `wg`, with `WG_SIZE` (a generated
// constant) invocations per workgroup.
fn invocation_linear(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return workgroup_linear(wg, nwg) * WG_SIZE + lid;
}
