// nn_matmul_subgroup.wgsl: matmul sharing A through subgroup shuffles, the
// `subgroup` variant (needs Features::SUBGROUP). Composed after
// nn_matmul_common.wgsl (the operation, strided views and bindings) and
// nn_matmul_lanes.wgsl (the layout of rows and columns).
//
// A workgroup computes ROWS rows of C and each invocation COLS columns (coalesced B
// loads, no workgroup memory, no barrier); A is read once per subgroup instead of
// once per invocation: for each run of `subgroup_size`
// values of k, lane l loads A(rows, k0 + l), and every lane then takes each k's values
// from their owner with `subgroupShuffle`. WG_SIZE must be a multiple of the subgroup
// size (so every lane is active): 64 is, on every adapter wgpu reports.
//
// Entry points:
//   matmul: one dispatch of (ceil(N / GROUP_COLS), ceil(M / ROWS), batches).

@compute @workgroup_size(WG_SIZE)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sg_size: u32,
) {
    let p = params;
    let bases = batch_bases(p, wg.z);
    let row0 = wg.y * ROWS;
    let col0 = wg.x * GROUP_COLS + lid;
    let cols = lane_columns(p, bases.y, col0);
    let last_k = p.k - 1u;
    var acc: LaneAcc;
    for (var k0 = 0u; k0 < p.k; k0 += sg_size) {
        // This lane's share of A, zero past the end of k.
        let mine = k0 + lane;
        let live = select(0.0, 1.0, mine < p.k);
        let a_mine = rows_of_a(p, bases.x + min(mine, last_k) * p.a_col, row0);
        for (var kk = 0u; kk < sg_size; kk++) {
            var a_vals: array<vec4<f32>, ROW_VECS>;
            for (var v = 0u; v < ROW_VECS; v++) {
                a_vals[v] = subgroupShuffle(live * a_mine[v], kk);
            }
            lane_fma(&acc, a_vals, cols, min(k0 + kk, last_k) * p.b_row);
        }
    }
    store_lanes(p, bases.z, row0, col0, &acc);
}
