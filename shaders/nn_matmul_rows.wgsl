// nn_matmul_rows.wgsl: matmul for CPU adapters (lavapipe, SwiftShader), the `rows`
// variant. Composed after nn_matmul_common.wgsl (the operation, strided views and
// bindings) and nn_matmul_lanes.wgsl (the layout of rows and columns).
//
// A CPU adapter runs the invocations of a workgroup as the lanes of SIMD registers
// and pays for every workgroup barrier and every divergent (per-lane) load. Here
// every invocation of a workgroup works on the same ROWS rows of C (the row index
// comes from the workgroup id alone, so each A element is one uniform load broadcast
// to all lanes) and on its own COLS columns (consecutive lanes, consecutive
// columns). No workgroup memory, no barrier: per k an invocation does COLS loads of
// B and ROWS uniform loads of A for ROWS * COLS multiply-adds.
//
// Entry points:
//   matmul: one dispatch of (ceil(N / GROUP_COLS), ceil(M / ROWS), batches).

@compute @workgroup_size(WG_SIZE)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let bases = batch_bases(p, wg.z);
    let row0 = wg.y * ROWS;
    let col0 = wg.x * GROUP_COLS + lid;
    let cols = lane_columns(p, bases.y, col0);
    var acc: LaneAcc;
    for (var k = 0u; k < p.k; k++) {
        let a_vals = rows_of_a(p, bases.x + k * p.a_col, row0);
        lane_fma(&acc, a_vals, cols, k * p.b_row);
    }
    store_lanes(p, bases.z, row0, col0, &acc);
}
