// nn_matmul.wgsl: batched, strided matrix product
//   C[b] = alpha * A[b] @ B[b] (+ bias per column) (+ C[b] when accumulating)
//
// Every operand is a strided view, so transposed operands (swap the row and column
// strides), attention heads inside a packed qkv tensor (inner batch stride) and
// results written straight into a merged-heads layout need no copies. Element (i, j)
// of batch b = outer * inner_batch + inner lives at
//   offset + outer * stride_outer + inner * stride_inner + i * stride_row + j * stride_col.
//
// One workgroup computes a TILE_M x TILE_N tile of C; each invocation an 8x8 block
// held in sixteen vec4 accumulators (named variables, never a dynamically indexed
// array, so they stay in registers). Per step of TILE_K, A and B tiles are staged in
// workgroup memory (k-major, as vec4 along m and n), so the inner loop does four vec4
// loads per 64 multiply-adds, and there are only two barriers per TILE_K. (On
// lavapipe every divergent workgroup load is a loop over lanes, so the speed follows
// multiply-adds per loaded value: 8x8 blocks run about 2-3x faster than 4x4.) Loads are
// coalesced along whichever dimension of each operand is contiguous.
//
// Entry points:
//   matmul: one dispatch of (ceil(N / TILE_N), ceil(M / TILE_M), batches) workgroups.
//
// Bindings (group 0):
//   0 params  uniform      MatmulParams
//   1 a       storage r    tensor holding A
//   2 b       storage r    tensor holding B
//   3 bias    storage r    bias per column of C (read only when params.bias != 0)
//   4 c       storage rw   tensor holding C

const TILE_M: u32 = 128u;
const TILE_N: u32 = 128u;
const TILE_K: u32 = 16u;
const WG_SIZE: u32 = 256u;
// Invocations along n; each covers 8 consecutive columns (and 8 rows).
const THREADS_N: u32 = TILE_N / 8u;
// vec4 entries per k-row of the staged tiles.
const TILE_M_VEC: u32 = TILE_M / 4u;
const TILE_N_VEC: u32 = TILE_N / 4u;
// Scalar loads per invocation per tile.
const LOADS_A: u32 = TILE_M * TILE_K / WG_SIZE;
const LOADS_B: u32 = TILE_N * TILE_K / WG_SIZE;

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    inner_batch: u32,
    a_offset: u32,
    a_outer: u32,
    a_inner: u32,
    a_row: u32,
    a_col: u32,
    b_offset: u32,
    b_outer: u32,
    b_inner: u32,
    b_row: u32,
    b_col: u32,
    c_offset: u32,
    c_outer: u32,
    c_inner: u32,
    c_row: u32,
    c_col: u32,
    alpha: f32,
    accumulate: u32,
    bias: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// tile_a[k * TILE_M_VEC + m / 4][m % 4] = A(row0 + m, k0 + k)
var<workgroup> tile_a: array<vec4<f32>, TILE_K * TILE_M_VEC>;
// tile_b[k * TILE_N_VEC + n / 4][n % 4] = B(k0 + k, col0 + n)
var<workgroup> tile_b: array<vec4<f32>, TILE_K * TILE_N_VEC>;

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
    let outer = wg.z / p.inner_batch;
    let inner = wg.z % p.inner_batch;
    let a_base = p.a_offset + outer * p.a_outer + inner * p.a_inner;
    let b_base = p.b_offset + outer * p.b_outer + inner * p.b_inner;
    let c_base = p.c_offset + outer * p.c_outer + inner * p.c_inner;
    // Coalesce along k when A's rows are contiguous, along m otherwise.
    let a_k_fast = p.a_col == 1u;
    // Coalesce along n when B's rows are contiguous, along k otherwise.
    let b_n_fast = p.b_col == 1u;

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
        for (var r = 0u; r < LOADS_A; r++) {
            let e = r * WG_SIZE + lid;
            let kk = select(e / TILE_M, e % TILE_K, a_k_fast);
            let mm = select(e % TILE_M, e / TILE_K, a_k_fast);
            let gi = row0 + mm;
            let gk = k0 + kk;
            var v = 0.0;
            if gi < p.m && gk < p.k {
                v = a[a_base + gi * p.a_row + gk * p.a_col];
            }
            tile_a[kk * TILE_M_VEC + mm / 4u][mm % 4u] = v;
        }
        for (var r = 0u; r < LOADS_B; r++) {
            let e = r * WG_SIZE + lid;
            let kk = select(e % TILE_K, e / TILE_N, b_n_fast);
            let nn = select(e / TILE_K, e % TILE_N, b_n_fast);
            let gj = col0 + nn;
            let gk = k0 + kk;
            var v = 0.0;
            if gj < p.n && gk < p.k {
                v = b[b_base + gk * p.b_row + gj * p.b_col];
            }
            tile_b[kk * TILE_N_VEC + nn / 4u][nn % 4u] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let a0 = tile_a[kk * TILE_M_VEC + 2u * ty];
            let a1 = tile_a[kk * TILE_M_VEC + 2u * ty + 1u];
            let b0 = tile_b[kk * TILE_N_VEC + 2u * tx];
            let b1 = tile_b[kk * TILE_N_VEC + 2u * tx + 1u];
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

fn store4(p: MatmulParams, c_base: u32, gi: u32, gj0: u32, acc: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        let gj = gj0 + j;
        if gi < p.m && gj < p.n {
            var v = p.alpha * acc[j];
            if p.bias != 0u {
                v += bias[gj];
            }
            let idx = c_base + gi * p.c_row + gj * p.c_col;
            if p.accumulate != 0u {
                v += c[idx];
            }
            c[idx] = v;
        }
    }
}
