// nn_matmul_rows_subgroup_cols8.wgsl: the 8-column block of the `rows_subgroup`
// matmul (nn_matmul_rows_subgroup.wgsl, placed before this file): each invocation
// holds 8 columns of C, a workgroup 64. For products wider than 32 columns.

// Columns of C per invocation (the fields of Block and Columns).
const COLS: u32 = 8u;

// An invocation's accumulators: column c of its block in field c{c}.
struct Block {
    c0: Rows32,
    c1: Rows32,
    c2: Rows32,
    c3: Rows32,
    c4: Rows32,
    c5: Rows32,
    c6: Rows32,
    c7: Rows32,
}

// Offsets in B of an invocation's COLS columns (clamped into B).
struct Columns {
    j0: u32,
    j1: u32,
    j2: u32,
    j3: u32,
    j4: u32,
    j5: u32,
    j6: u32,
    j7: u32,
}

// The offsets in B of the columns of the invocation whose first column is col0.
fn columns(p: MatmulParams, b_base: u32, col0: u32) -> Columns {
    return Columns(
        column(p, b_base, col0, 0u),
        column(p, b_base, col0, 1u),
        column(p, b_base, col0, 2u),
        column(p, b_base, col0, 3u),
        column(p, b_base, col0, 4u),
        column(p, b_base, col0, 5u),
        column(p, b_base, col0, 6u),
        column(p, b_base, col0, 7u),
    );
}

// Zero accumulators.
fn zero_block() -> Block {
    let z = zero_rows();
    return Block(z, z, z, z, z, z, z, z);
}

// One step of k: acc + a_col x B(k, columns); `b_k` is the offset of row k of B.
fn step(acc: Block, a_col: Rows32, js: Columns, b_k: u32) -> Block {
    return Block(
        fma32(acc.c0, a_col, b[js.j0 + b_k]),
        fma32(acc.c1, a_col, b[js.j1 + b_k]),
        fma32(acc.c2, a_col, b[js.j2 + b_k]),
        fma32(acc.c3, a_col, b[js.j3 + b_k]),
        fma32(acc.c4, a_col, b[js.j4 + b_k]),
        fma32(acc.c5, a_col, b[js.j5 + b_k]),
        fma32(acc.c6, a_col, b[js.j6 + b_k]),
        fma32(acc.c7, a_col, b[js.j7 + b_k]),
    );
}

// Stores the block of the invocation whose first column is col0.
fn store_block(p: MatmulParams, c_base: u32, row0: u32, col0: u32, acc: Block) {
    store32(p, c_base, row0, col0, acc.c0);
    store32(p, c_base, row0, col0 + SUBGROUP_LANES, acc.c1);
    store32(p, c_base, row0, col0 + 2u * SUBGROUP_LANES, acc.c2);
    store32(p, c_base, row0, col0 + 3u * SUBGROUP_LANES, acc.c3);
    store32(p, c_base, row0, col0 + 4u * SUBGROUP_LANES, acc.c4);
    store32(p, c_base, row0, col0 + 5u * SUBGROUP_LANES, acc.c5);
    store32(p, c_base, row0, col0 + 6u * SUBGROUP_LANES, acc.c6);
    store32(p, c_base, row0, col0 + 7u * SUBGROUP_LANES, acc.c7);
}
