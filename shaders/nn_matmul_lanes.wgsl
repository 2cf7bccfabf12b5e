// nn_matmul_lanes.wgsl: the layout of the `subgroup` matmul kernel
// (nn_matmul_subgroup.wgsl), placed between nn_matmul_common.wgsl and it.
//
// A workgroup computes ROWS rows of C; each invocation COLS columns of them,
// interleaved WG_SIZE apart (consecutive lanes hold consecutive columns). Rows and
// columns past the end of C are clamped to the last one for loading and dropped when
// storing, so the kernel's inner loop has no branch.
//
// Generated constants (src/nn/matmul_variant.rs): WG_SIZE, ROW_VECS (ROWS / 4), COLS.

// Rows of C per workgroup (all of its invocations share them).
const ROWS: u32 = ROW_VECS * 4u;
// Columns of C per workgroup.
const GROUP_COLS: u32 = WG_SIZE * COLS;

// Accumulators of one invocation: acc[c * ROW_VECS + v][i] holds
// C(row0 + 4 v + i, col0 + c * WG_SIZE).
alias LaneAcc = array<vec4<f32>, ROW_VECS * COLS>;

// Offsets in B of this invocation's columns, clamped into B.
fn lane_columns(p: MatmulParams, b_base: u32, col0: u32) -> array<u32, COLS> {
    var cols: array<u32, COLS>;
    for (var c = 0u; c < COLS; c++) {
        cols[c] = b_base + min(col0 + c * WG_SIZE, p.n - 1u) * p.b_col;
    }
    return cols;
}

// A(row0 .. row0 + ROWS, k) as vec4s of four rows; `a_k` is the offset of column k.
fn rows_of_a(p: MatmulParams, a_k: u32, row0: u32) -> array<vec4<f32>, ROW_VECS> {
    let last_row = p.m - 1u;
    var vals: array<vec4<f32>, ROW_VECS>;
    for (var v = 0u; v < ROW_VECS; v++) {
        let r = row0 + 4u * v;
        vals[v] = vec4<f32>(
            a[a_k + min(r, last_row) * p.a_row],
            a[a_k + min(r + 1u, last_row) * p.a_row],
            a[a_k + min(r + 2u, last_row) * p.a_row],
            a[a_k + min(r + 3u, last_row) * p.a_row],
        );
    }
    return vals;
}

// acc += a_vals (rows) x B(k, columns), `b_k` the offset of row k of B.
fn lane_fma(
    acc: ptr<function, LaneAcc>,
    a_vals: array<vec4<f32>, ROW_VECS>,
    cols: array<u32, COLS>,
    b_k: u32,
) {
    for (var c = 0u; c < COLS; c++) {
        let bv = vec4<f32>(b[cols[c] + b_k]);
        for (var v = 0u; v < ROW_VECS; v++) {
            (*acc)[c * ROW_VECS + v] = fma(a_vals[v], bv, (*acc)[c * ROW_VECS + v]);
        }
    }
}

// Stores an invocation's accumulators into C.
fn store_lanes(p: MatmulParams, c_base: u32, row0: u32, col0: u32, acc: ptr<function, LaneAcc>) {
    for (var c = 0u; c < COLS; c++) {
        let gj = col0 + c * WG_SIZE;
        for (var v = 0u; v < ROW_VECS; v++) {
            for (var i = 0u; i < 4u; i++) {
                store_c(p, c_base, row0 + 4u * v + i, gj, (*acc)[c * ROW_VECS + v][i]);
            }
        }
    }
}
