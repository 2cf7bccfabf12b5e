// nn_matmul_common.wgsl: what every matmul variant shares. The Rust side
// (src/nn/matmul_variant.rs, src/nn/modules.rs) builds each variant's module as
//   generated constants and bindings + this file + the variant's kernel file
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
// Bindings (group 0), declared by the builder from MATMUL in src/nn/ops/matmul.rs,
// which also defines the uniform block MatmulParams (m, n, k, inner_batch, the views
// a_offset, a_outer, a_inner, a_row, a_col and likewise b_* and c_*, alpha,
// accumulate, bias):
//   params  uniform      MatmulParams
//   a       storage r    tensor holding A
//   b       storage r    tensor holding B
//   bias    storage r    bias per column of C (read only when params.bias != 0)
//   c       storage rw   tensor holding C

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
