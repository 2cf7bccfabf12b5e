// nn_matmul_rows_subgroup.wgsl: matmul for CPU adapters with subgroups (lavapipe),
// the `rows_subgroup` variant (needs Features::SUBGROUP and subgroups of at least
// SUBGROUP_LANES invocations). Composed after nn_matmul_common.wgsl (the operation,
// strided views and bindings).
//
// Why: inside a loop, lavapipe (Mesa 22-23) emits every storage load as a scalar
// loop over the SIMD lanes (one per invocation), even when all lanes read one
// address, while arithmetic and subgroup shuffles by a constant lane run on whole
// SIMD registers. The `rows` kernel loads the 16 values of A that a step of k needs
// in every invocation; here a workgroup is ONE subgroup of SUBGROUP_LANES
// invocations, and for each run of SUBGROUP_LANES values of k, lane l loads A(rows,
// k0 + l) once and every lane takes each k's column of A from its owner with
// `subgroupShuffle`. Per step of k an invocation then loads BLOCK_ROWS /
// SUBGROUP_LANES values of A and COLS of B for BLOCK_ROWS * COLS multiply-adds (4 + 8
// loads for 256, against 16 + 8 for 128 in `rows`): every value of A and B is loaded
// once per workgroup.
//
// Layout: a workgroup computes BLOCK_ROWS rows and COLS * SUBGROUP_LANES columns of
// C; invocation i holds the columns col0 + i + c * SUBGROUP_LANES (c < COLS), so the
// B loads of one step are contiguous across lanes when B's rows are. COLS and the
// column block (struct Block, struct Columns, fns columns, zero_block, step,
// store_block) are generated for COLS by src/nn/matmul_blocks.rs: 8 (64
// columns per workgroup) or 4 (32, for narrow products: the 8-column block computes
// and throws away half its columns when C has 32 or fewer); so is the rows block for
// BLOCK_ROWS (struct Rows32, fns zero_rows, fma32, store32). The
// accumulators are named struct fields (never a dynamically indexed array: naga
// bounds every loop, so drivers cannot unroll them, and an indexed array would live
// in memory). Rows, columns and k past the end are clamped for loading (A's values
// past k are zeroed) and dropped when storing: the inner loop has no branch. No
// workgroup memory, no barrier.
//
// Entry points:
//   matmul: one dispatch of (ceil(N / (COLS * SUBGROUP_LANES)), ceil(M / BLOCK_ROWS),
//   batches), workgroups of SUBGROUP_LANES.

// These two constants are mirrored in
// src/nn/matmul_variant.rs (a unit test compares them), which generates the rows
// block for BLOCK_ROWS; load_a, from_lane and run_of_k are written for them.
// Invocations per workgroup: one subgroup on adapters whose subgroups have at least
// this many lanes (lavapipe: 8), and the run of k shared per A load.
const SUBGROUP_LANES: u32 = 8u;
// Rows of C per workgroup (the fields of Rows32).
const BLOCK_ROWS: u32 = 32u;

// A(row0 + r .. row0 + r + 4, k) (clamped into A); `a_k` is the offset of column k.
fn load_a4(p: MatmulParams, a_k: u32, r: u32) -> vec4<f32> {
    let last = p.m - 1u;
    return vec4<f32>(
        a[a_k + min(r, last) * p.a_row],
        a[a_k + min(r + 1u, last) * p.a_row],
        a[a_k + min(r + 2u, last) * p.a_row],
        a[a_k + min(r + 3u, last) * p.a_row],
    );
}

// A(row0 .. row0 + 32, k), or zeros when `live` is false (a k past the end; a
// select, not a product, so an infinite A stays out of the padding).
fn load_a(p: MatmulParams, a_k: u32, row0: u32, live: bool) -> Rows32 {
    let z = vec4<f32>(0.0);
    return Rows32(
        select(z, load_a4(p, a_k, row0), live),
        select(z, load_a4(p, a_k, row0 + 4u), live),
        select(z, load_a4(p, a_k, row0 + 8u), live),
        select(z, load_a4(p, a_k, row0 + 12u), live),
        select(z, load_a4(p, a_k, row0 + 16u), live),
        select(z, load_a4(p, a_k, row0 + 20u), live),
        select(z, load_a4(p, a_k, row0 + 24u), live),
        select(z, load_a4(p, a_k, row0 + 28u), live),
    );
}

// Lane `lane`'s column of A (a constant at every call, so a register shuffle).
fn from_lane(x: Rows32, lane: u32) -> Rows32 {
    return Rows32(
        subgroupShuffle(x.r0, lane),
        subgroupShuffle(x.r1, lane),
        subgroupShuffle(x.r2, lane),
        subgroupShuffle(x.r3, lane),
        subgroupShuffle(x.r4, lane),
        subgroupShuffle(x.r5, lane),
        subgroupShuffle(x.r6, lane),
        subgroupShuffle(x.r7, lane),
    );
}

// The run of SUBGROUP_LANES steps from k0, A's columns shared from `mine` (lane l's
// is column k0 + l). Steps past the end of k add zeros (their A is zero, their B row
// clamped).
fn run_of_k(p: MatmulParams, acc: Block, mine: Rows32, js: Columns, k0: u32) -> Block {
    let last = p.k - 1u;
    var out = step(acc, from_lane(mine, 0u), js, min(k0, last) * p.b_row);
    out = step(out, from_lane(mine, 1u), js, min(k0 + 1u, last) * p.b_row);
    out = step(out, from_lane(mine, 2u), js, min(k0 + 2u, last) * p.b_row);
    out = step(out, from_lane(mine, 3u), js, min(k0 + 3u, last) * p.b_row);
    out = step(out, from_lane(mine, 4u), js, min(k0 + 4u, last) * p.b_row);
    out = step(out, from_lane(mine, 5u), js, min(k0 + 5u, last) * p.b_row);
    out = step(out, from_lane(mine, 6u), js, min(k0 + 6u, last) * p.b_row);
    return step(out, from_lane(mine, 7u), js, min(k0 + 7u, last) * p.b_row);
}

// Offset in B of column c of this invocation (clamped into B).
fn column(p: MatmulParams, b_base: u32, col0: u32, c: u32) -> u32 {
    return b_base + min(col0 + c * SUBGROUP_LANES, p.n - 1u) * p.b_col;
}

@compute @workgroup_size(SUBGROUP_LANES)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let p = params;
    let bases = batch_bases(p, wg.z);
    let row0 = wg.y * BLOCK_ROWS;
    let col0 = wg.x * COLS * SUBGROUP_LANES + lid;
    let js = columns(p, bases.y, col0);
    var acc = zero_block();
    for (var k0 = 0u; k0 < p.k; k0 += SUBGROUP_LANES) {
        let k = k0 + lane;
        let mine = load_a(p, bases.x + min(k, p.k - 1u) * p.a_col, row0, k < p.k);
        acc = run_of_k(p, acc, mine, js, k0);
    }
    store_block(p, bases.z, row0, col0, acc);
}
