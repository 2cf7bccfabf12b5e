// nn_matmul_rows.wgsl: matmul for CPU adapters (lavapipe, SwiftShader), the `rows`
// variant. Composed after nn_matmul_common.wgsl (the operation, strided views and
// bindings).
//
// A CPU adapter runs the invocations of a workgroup as the lanes of SIMD registers.
// Inside a loop, lavapipe (Mesa 22-23) turns every storage or workgroup load into a
// loop over the lanes, even when all lanes read the same address, while arithmetic
// runs on whole SIMD registers: the speed follows multiply-adds per loaded scalar
// per invocation. So each invocation here computes a large register block, 16 rows x
// 8 columns of C (128 accumulators), from 16 loads of A and 8 of B per step of k:
// 5.3 multiply-adds per load (the tiled kernel's 8x8 block gets 4, plus its staging
// and barriers). The accumulators are named struct fields, never a dynamically
// indexed array (naga bounds its loops, so drivers cannot unroll them, and an
// indexed array would live in memory). All invocations of a workgroup share its 16
// rows; consecutive invocations hold consecutive columns (each invocation 8 of them,
// WG_SIZE apart), so the B loads of a step are contiguous across lanes. No workgroup
// memory, no barrier. Rows and columns past the end of C are clamped to the last one
// for loading and dropped when storing: the inner loop has no branch.
//
// Generated constants (src/nn/matmul_variant.rs): WG_SIZE. Generated for 16 rows by
// src/nn/matmul_blocks.rs: struct Rows16 (one column's 16 rows in four vec4 fields)
// and fns zero_rows, fma16 and store16.
//
// Entry points:
//   matmul: one dispatch of (ceil(N / (8 * WG_SIZE)), ceil(M / 16), batches).

// Rows of C per workgroup.
const BLOCK_ROWS: u32 = 16u;

// A(row0 + i, k) for i in 0..16 (clamped into A); `a_k` is the offset of column k.
fn load_a(p: MatmulParams, a_k: u32, row0: u32) -> Rows16 {
    let last = p.m - 1u;
    var v: array<f32, 16>;
    v[0] = a[a_k + min(row0, last) * p.a_row];
    v[1] = a[a_k + min(row0 + 1u, last) * p.a_row];
    v[2] = a[a_k + min(row0 + 2u, last) * p.a_row];
    v[3] = a[a_k + min(row0 + 3u, last) * p.a_row];
    v[4] = a[a_k + min(row0 + 4u, last) * p.a_row];
    v[5] = a[a_k + min(row0 + 5u, last) * p.a_row];
    v[6] = a[a_k + min(row0 + 6u, last) * p.a_row];
    v[7] = a[a_k + min(row0 + 7u, last) * p.a_row];
    v[8] = a[a_k + min(row0 + 8u, last) * p.a_row];
    v[9] = a[a_k + min(row0 + 9u, last) * p.a_row];
    v[10] = a[a_k + min(row0 + 10u, last) * p.a_row];
    v[11] = a[a_k + min(row0 + 11u, last) * p.a_row];
    v[12] = a[a_k + min(row0 + 12u, last) * p.a_row];
    v[13] = a[a_k + min(row0 + 13u, last) * p.a_row];
    v[14] = a[a_k + min(row0 + 14u, last) * p.a_row];
    v[15] = a[a_k + min(row0 + 15u, last) * p.a_row];
    return Rows16(
        vec4<f32>(v[0], v[1], v[2], v[3]),
        vec4<f32>(v[4], v[5], v[6], v[7]),
        vec4<f32>(v[8], v[9], v[10], v[11]),
        vec4<f32>(v[12], v[13], v[14], v[15]),
    );
}

// Offset in B of column `j` (clamped into B).
fn b_column(p: MatmulParams, b_base: u32, j: u32) -> u32 {
    return b_base + min(j, p.n - 1u) * p.b_col;
}

@compute @workgroup_size(WG_SIZE)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let bases = batch_bases(p, wg.z);
    let row0 = wg.y * BLOCK_ROWS;
    let col0 = wg.x * 8u * WG_SIZE + lid;
    let j0 = b_column(p, bases.y, col0);
    let j1 = b_column(p, bases.y, col0 + WG_SIZE);
    let j2 = b_column(p, bases.y, col0 + 2u * WG_SIZE);
    let j3 = b_column(p, bases.y, col0 + 3u * WG_SIZE);
    let j4 = b_column(p, bases.y, col0 + 4u * WG_SIZE);
    let j5 = b_column(p, bases.y, col0 + 5u * WG_SIZE);
    let j6 = b_column(p, bases.y, col0 + 6u * WG_SIZE);
    let j7 = b_column(p, bases.y, col0 + 7u * WG_SIZE);
    var c0 = zero_rows();
    var c1 = c0;
    var c2 = c0;
    var c3 = c0;
    var c4 = c0;
    var c5 = c0;
    var c6 = c0;
    var c7 = c0;
    for (var k = 0u; k < p.k; k++) {
        let a_col = load_a(p, bases.x + k * p.a_col, row0);
        let b_k = k * p.b_row;
        c0 = fma16(c0, a_col, b[j0 + b_k]);
        c1 = fma16(c1, a_col, b[j1 + b_k]);
        c2 = fma16(c2, a_col, b[j2 + b_k]);
        c3 = fma16(c3, a_col, b[j3 + b_k]);
        c4 = fma16(c4, a_col, b[j4 + b_k]);
        c5 = fma16(c5, a_col, b[j5 + b_k]);
        c6 = fma16(c6, a_col, b[j6 + b_k]);
        c7 = fma16(c7, a_col, b[j7 + b_k]);
    }
    store16(p, bases.z, row0, col0, c0);
    store16(p, bases.z, row0, col0 + WG_SIZE, c1);
    store16(p, bases.z, row0, col0 + 2u * WG_SIZE, c2);
    store16(p, bases.z, row0, col0 + 3u * WG_SIZE, c3);
    store16(p, bases.z, row0, col0 + 4u * WG_SIZE, c4);
    store16(p, bases.z, row0, col0 + 5u * WG_SIZE, c5);
    store16(p, bases.z, row0, col0 + 6u * WG_SIZE, c6);
    store16(p, bases.z, row0, col0 + 7u * WG_SIZE, c7);
}
