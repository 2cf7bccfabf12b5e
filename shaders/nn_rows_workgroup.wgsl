// nn_rows_workgroup.wgsl: reductions across the ROW_WG_SIZE invocations of a
// workgroup through workgroup memory (a tree of log2(ROW_WG_SIZE) barriers), for
// adapters without subgroup operations. Prepended, after the generated constants,
// to the row kernels (nn_layernorm, nn_softmax, nn_loss); nn_rows_subgroup.wgsl is
// the same interface with subgroup operations.
//
// `ROW_WG_SIZE` (a power of two) comes from the generated constants. Every
// invocation of the workgroup must call a reduction (uniform control flow); each
// returns the result to all of them. Consecutive reductions alternate `bank` (0, 1)
// so that one reduction's writes never race the previous one's reads.

// The invocation inputs the reductions need.
struct Lane {
    @builtin(local_invocation_index) index: u32,
}

var<workgroup> row_scratch: array<f32, 2u * ROW_WG_SIZE>;

// Sum over the workgroup of every invocation's `v`.
fn row_sum(lane: Lane, v: f32, bank: u32) -> f32 {
    let base = bank * ROW_WG_SIZE;
    row_scratch[base + lane.index] = v;
    workgroupBarrier();
    for (var stride = ROW_WG_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lane.index < stride {
            row_scratch[base + lane.index] += row_scratch[base + lane.index + stride];
        }
        workgroupBarrier();
    }
    return row_scratch[base];
}

// Maximum over the workgroup of every invocation's `v`.
fn row_max(lane: Lane, v: f32, bank: u32) -> f32 {
    let base = bank * ROW_WG_SIZE;
    row_scratch[base + lane.index] = v;
    workgroupBarrier();
    for (var stride = ROW_WG_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lane.index < stride {
            let other = row_scratch[base + lane.index + stride];
            row_scratch[base + lane.index] = max(row_scratch[base + lane.index], other);
        }
        workgroupBarrier();
    }
    return row_scratch[base];
}
