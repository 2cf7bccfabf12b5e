// nn_matmul_tiled.wgsl: matmul for GPUs, block tiling through workgroup memory plus
// register tiling (the `tiled` and `tiled_f16` variants; see nn_matmul_common.wgsl
// for the operation, the strided views and the bindings).
//
// One workgroup computes a TILE_M x TILE_N tile of C; each invocation an 8x8 block
// held in sixteen vec4 accumulators (named variables, never a dynamically indexed
// array, so they stay in registers). Per step of TILE_K, A and B tiles are staged in
// workgroup memory (k-major, as vec4 along m and n), so the inner loop does four vec4
// loads per 64 multiply-adds, and there are only two barriers per TILE_K. Loads are
// coalesced along whichever dimension of each operand is contiguous.
//
// Generated constants (src/nn/matmul_variant.rs): TILE_M, TILE_N, TILE_K, WG_SIZE,
// and the scalar type `Stage` of the staged tiles (f32, or f16 for the f16 variant:
// inputs are rounded to f16 as they are staged, products accumulate in f32).
//
// Entry points:
//   matmul: one dispatch of (ceil(N / TILE_N), ceil(M / TILE_M), batches) workgroups.

// Invocations along n; each covers 8 consecutive columns (and 8 rows).
const THREADS_N: u32 = TILE_N / 8u;
// vec4 entries per k-row of the staged tiles.
const TILE_M_VEC: u32 = TILE_M / 4u;
const TILE_N_VEC: u32 = TILE_N / 4u;
// Scalar loads per invocation per tile.
const LOADS_A: u32 = TILE_M * TILE_K / WG_SIZE;
const LOADS_B: u32 = TILE_N * TILE_K / WG_SIZE;

// tile_a[k * TILE_M_VEC + m / 4][m % 4] = A(row0 + m, k0 + k)
var<workgroup> tile_a: array<vec4<Stage>, TILE_K * TILE_M_VEC>;
// tile_b[k * TILE_N_VEC + n / 4][n % 4] = B(k0 + k, col0 + n)
var<workgroup> tile_b: array<vec4<Stage>, TILE_K * TILE_N_VEC>;

@compute @workgroup_size(WG_SIZE)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let tx = lid % THREADS_N;
    let ty = lid / THREADS_N;
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;
    let bases = batch_bases(p, wg.z);
    let a_base = bases.x;
    let b_base = bases.y;
    let c_base = bases.z;

    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    var acc40 = vec4<f32>(0.0);
    var acc41 = vec4<f32>(0.0);
    var acc50 = vec4<f32>(0.0);
    var acc51 = vec4<f32>(0.0);
    var acc60 = vec4<f32>(0.0);
    var acc61 = vec4<f32>(0.0);
    var acc70 = vec4<f32>(0.0);
    var acc71 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        stage_a(p, a_base, row0, k0, lid);
        stage_b(p, b_base, col0, k0, lid);
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let a0 = vec4<f32>(tile_a[kk * TILE_M_VEC + 2u * ty]);
            let a1 = vec4<f32>(tile_a[kk * TILE_M_VEC + 2u * ty + 1u]);
            let b0 = vec4<f32>(tile_b[kk * TILE_N_VEC + 2u * tx]);
            let b1 = vec4<f32>(tile_b[kk * TILE_N_VEC + 2u * tx + 1u]);
            acc00 += a0.x * b0;
            acc01 += a0.x * b1;
            acc10 += a0.y * b0;
            acc11 += a0.y * b1;
            acc20 += a0.z * b0;
            acc21 += a0.z * b1;
            acc30 += a0.w * b0;
            acc31 += a0.w * b1;
            acc40 += a1.x * b0;
            acc41 += a1.x * b1;
            acc50 += a1.y * b0;
            acc51 += a1.y * b1;
            acc60 += a1.z * b0;
            acc61 += a1.z * b1;
            acc70 += a1.w * b0;
            acc71 += a1.w * b1;
        }
        workgroupBarrier();
    }

    store4(p, c_base, row0 + ty * 8u + 0u, col0 + tx * 8u + 0u, acc00);
    store4(p, c_base, row0 + ty * 8u + 0u, col0 + tx * 8u + 4u, acc01);
    store4(p, c_base, row0 + ty * 8u + 1u, col0 + tx * 8u + 0u, acc10);
    store4(p, c_base, row0 + ty * 8u + 1u, col0 + tx * 8u + 4u, acc11);
    store4(p, c_base, row0 + ty * 8u + 2u, col0 + tx * 8u + 0u, acc20);
    store4(p, c_base, row0 + ty * 8u + 2u, col0 + tx * 8u + 4u, acc21);
    store4(p, c_base, row0 + ty * 8u + 3u, col0 + tx * 8u + 0u, acc30);
    store4(p, c_base, row0 + ty * 8u + 3u, col0 + tx * 8u + 4u, acc31);
    store4(p, c_base, row0 + ty * 8u + 4u, col0 + tx * 8u + 0u, acc40);
    store4(p, c_base, row0 + ty * 8u + 4u, col0 + tx * 8u + 4u, acc41);
    store4(p, c_base, row0 + ty * 8u + 5u, col0 + tx * 8u + 0u, acc50);
    store4(p, c_base, row0 + ty * 8u + 5u, col0 + tx * 8u + 4u, acc51);
    store4(p, c_base, row0 + ty * 8u + 6u, col0 + tx * 8u + 0u, acc60);
    store4(p, c_base, row0 + ty * 8u + 6u, col0 + tx * 8u + 4u, acc61);
    store4(p, c_base, row0 + ty * 8u + 7u, col0 + tx * 8u + 0u, acc70);
    store4(p, c_base, row0 + ty * 8u + 7u, col0 + tx * 8u + 4u, acc71);
}

// Stages A(row0.., k0..) into tile_a: each invocation loads LOADS_A elements,
// consecutive invocations along k when A's rows are contiguous, along m otherwise.
fn stage_a(p: MatmulParams, a_base: u32, row0: u32, k0: u32, lid: u32) {
    let k_fast = p.a_col == 1u;
    for (var r = 0u; r < LOADS_A; r++) {
        let e = r * WG_SIZE + lid;
        let kk = select(e / TILE_M, e % TILE_K, k_fast);
        let mm = select(e % TILE_M, e / TILE_K, k_fast);
        let gi = row0 + mm;
        let gk = k0 + kk;
        var v = 0.0;
        if gi < p.m && gk < p.k {
            v = a[a_base + gi * p.a_row + gk * p.a_col];
        }
        tile_a[kk * TILE_M_VEC + mm / 4u][mm % 4u] = Stage(v);
    }
}

// Stages B(k0.., col0..) into tile_b: consecutive invocations along n when B's rows
// are contiguous, along k otherwise.
fn stage_b(p: MatmulParams, b_base: u32, col0: u32, k0: u32, lid: u32) {
    let n_fast = p.b_col == 1u;
    for (var r = 0u; r < LOADS_B; r++) {
        let e = r * WG_SIZE + lid;
        let kk = select(e % TILE_K, e / TILE_N, n_fast);
        let nn = select(e / TILE_K, e % TILE_N, n_fast);
        let gj = col0 + nn;
        let gk = k0 + kk;
        var v = 0.0;
        if gj < p.n && gk < p.k {
            v = b[b_base + gk * p.b_row + gj * p.b_col];
        }
        tile_b[kk * TILE_N_VEC + nn / 4u][nn % 4u] = Stage(v);
    }
}

// Stores four consecutive columns of one row of C.
fn store4(p: MatmulParams, c_base: u32, gi: u32, gj0: u32, acc: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        store_c(p, c_base, gi, gj0 + j, acc[j]);
    }
}
