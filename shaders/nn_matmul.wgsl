// nn_matmul.wgsl: batched, strided matrix product
//   C[b] = alpha * A[b] @ B[b] (+ bias per column) (+ C[b] when accumulating)
//
// Every operand is a strided view, so transposed operands (swap the row and column
// strides), attention heads inside a packed qkv tensor (inner batch stride) and
// results written straight into a merged-heads layout need no copies. Element (i, j)
// of batch b = outer * inner_batch + inner lives at
//   offset + outer * stride_outer + inner * stride_inner + i * stride_row + j * stride_col.
//
// One workgroup computes a TILE_M x TILE_N tile of C; each invocation a 4x4 block
// held in four vec4 accumulators. Per step of TILE_K, A and B tiles are staged in
// workgroup memory (k-major, as vec4 along m and n), so the inner loop does two vec4
// loads per 16 multiply-adds, and there are only two barriers per TILE_K. Loads are
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

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 32u;
const WG_SIZE: u32 = 256u;
// Invocations along n; each covers 4 consecutive columns (and 4 rows).
const THREADS_N: u32 = TILE_N / 4u;
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

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
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
            let av = tile_a[kk * TILE_M_VEC + ty];
            let bv = tile_b[kk * TILE_N_VEC + tx];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        workgroupBarrier();
    }

    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let gi = row0 + ty * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let gj = col0 + tx * 4u + j;
            if gi < p.m && gj < p.n {
                var v = p.alpha * rows[i][j];
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
}
