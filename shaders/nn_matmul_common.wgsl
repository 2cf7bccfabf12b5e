// nn_matmul_common.wgsl: what every matmul variant shares. The Rust side
// (src/nn/matmul_variant.rs) builds each variant's module as
//   generated constants + this file + the variant's kernel file
// so the kernel files declare neither their tile constants nor these items.
//
//   C[b] = alpha * A[b] @ B[b] (+ bias per column) (+ C[b] when accumulating)
//
// Every operand is a strided view, so transposed operands (swap the row and column
// strides), attention heads inside a packed qkv tensor (inner batch stride) and
// results written straight into a merged-heads layout need no copies. Element (i, j)
// of batch b = outer * inner_batch + inner lives at
//   offset + outer * stride_outer + inner * stride_inner + i * stride_row + j * stride_col.
//
// Bindings (group 0):
//   0 params  uniform      MatmulParams
//   1 a       storage r    tensor holding A
//   2 b       storage r    tensor holding B
//   3 bias    storage r    bias per column of C (read only when params.bias != 0)
//   4 c       storage rw   tensor holding C

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

// Start of batch `batch` in A, B and C.
fn batch_bases(p: MatmulParams, batch: u32) -> vec3<u32> {
    let outer = batch / p.inner_batch;
    let inner = batch % p.inner_batch;
    return vec3<u32>(
        p.a_offset + outer * p.a_outer + inner * p.a_inner,
        p.b_offset + outer * p.b_outer + inner * p.b_inner,
        p.c_offset + outer * p.c_outer + inner * p.c_inner,
    );
}

// Writes alpha * acc (+ bias) (+ the old value) to C(gi, gj) when it is inside C.
fn store_c(p: MatmulParams, c_base: u32, gi: u32, gj: u32, acc: f32) {
    if gi < p.m && gj < p.n {
        var v = p.alpha * acc;
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
