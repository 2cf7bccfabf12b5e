// nn_softmax.wgsl: softmax over the last dimension and its gradient.
//
//   y = exp(x - max) / sum(exp(x - max))
//   dx = y * (dy - sum(dy * y))
//
// One workgroup of ROW_WG_SIZE invocations per row, each taking a strided share of
// the row; the workgroup reduces with `row_max` / `row_sum` (nn_rows_subgroup.wgsl
// or nn_rows_workgroup.wgsl, prepended with the generated constant ROW_WG_SIZE).
// Workgroups are numbered over a 2-D grid.
//
// Each entry point has a `<name>_per_invocation` twin with the same bindings that
// runs one invocation per row on a flat WG_SIZE grid, with no barriers: the variant
// for CPU adapters (RowLayout in src/nn/kernels.rs chooses).
//
// Entry points and the bindings each uses:
//   softmax_forward:  params, x, y
//   softmax_backward: params, y, dy, dx
//
// Bindings (group 0):
//   0 params  uniform      SoftmaxParams
//   1 x       storage r    input [rows, dim]
//   2 y       storage rw   output [rows, dim] (read by the backward pass)
//   3 dy      storage r    upstream gradient
//   4 dx      storage rw   input gradient (added to when params.accumulate != 0)

struct SoftmaxParams {
    rows: u32,
    dim: u32,
    accumulate: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: SoftmaxParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(ROW_WG_SIZE)
fn softmax_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    let row = workgroup_linear(wg, nwg);
    if row < params.rows {
        let base = row * params.dim;
        // Invocations past the end of a short row contribute its first element.
        var m = x[base];
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            m = max(m, x[base + j]);
        }
        m = row_max(lane, m, 0u);
        var s = 0.0;
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            s += exp(x[base + j] - m);
        }
        let inv = 1.0 / row_sum(lane, s, 1u);
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            y[base + j] = exp(x[base + j] - m) * inv;
        }
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn softmax_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    let row = workgroup_linear(wg, nwg);
    if row < params.rows {
        let base = row * params.dim;
        var dot = 0.0;
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            dot += dy[base + j] * y[base + j];
        }
        dot = row_sum(lane, dot, 0u);
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            let v = y[base + j] * (dy[base + j] - dot);
            if params.accumulate != 0u {
                dx[base + j] += v;
            } else {
                dx[base + j] = v;
            }
        }
    }
}

// ---- One invocation per row, for CPU adapters (no barriers).

@compute @workgroup_size(WG_SIZE)
fn softmax_forward_per_invocation(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = invocation_linear(wg, nwg, lid);
    if row < params.rows {
        let base = row * params.dim;
        var m = x[base];
        for (var j = 1u; j < params.dim; j++) {
            m = max(m, x[base + j]);
        }
        var s = 0.0;
        for (var j = 0u; j < params.dim; j++) {
            let e = exp(x[base + j] - m);
            y[base + j] = e;
            s += e;
        }
        let inv = 1.0 / s;
        for (var j = 0u; j < params.dim; j++) {
            y[base + j] *= inv;
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn softmax_backward_per_invocation(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = invocation_linear(wg, nwg, lid);
    if row < params.rows {
        let base = row * params.dim;
        var dot = 0.0;
        for (var j = 0u; j < params.dim; j++) {
            dot += dy[base + j] * y[base + j];
        }
        for (var j = 0u; j < params.dim; j++) {
            let v = y[base + j] * (dy[base + j] - dot);
            if params.accumulate != 0u {
                dx[base + j] += v;
            } else {
                dx[base + j] = v;
            }
        }
    }
}
