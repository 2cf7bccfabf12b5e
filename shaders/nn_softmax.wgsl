// nn_softmax.wgsl: softmax over the last dimension and its gradient.
//
//   y = exp(x - max) / sum(exp(x - max))
//   dx = y * (dy - sum(dy * y))
//   causal (params.causal != 0, causal attention's scores): the rows are those of
//   square [dim, dim] blocks, and row i of a block is the softmax of its first i + 1
//   entries, y = 0 after them; the backward formula then gives dx = 0 there.
//
// The ROW_LANES invocations of a row team (a row-team part from shaders/lib/, see
// rows_team.wgsl) share a row, each taking a strided share; the team reduces
// with `row_sum`, and the forward pass gets the row's maximum and sum of exponentials
// from lib/row_logsumexp.wgsl.
//
// Entry points and the bindings each uses:
//   softmax_forward:  x, y
//   softmax_backward: y, dy, dx
//
// Bindings (group 0), declared by the builder from SOFTMAX in src/nn/ops/softmax.rs,
// which also defines the uniform block SoftmaxParams:
//   params  uniform      SoftmaxParams
//   x       storage r    input [rows, dim]
//   y       storage rw   output [rows, dim] (read by the backward pass)
//   dy      storage r    upstream gradient
//   dx      storage rw   input gradient (added to when params.accumulate != 0)

// The entries of `row` the softmax runs over: all, or the first (row mod dim) + 1.
fn row_len(row: u32) -> u32 {
    return select(params.dim, row % params.dim + 1u, params.causal != 0u);
}

@compute @workgroup_size(ROW_WG_SIZE)
fn softmax_forward(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let row = row_index(group, lid);
    if row < params.rows {
        let base = row * params.dim;
        let len = row_len(row);
        let max_sum = row_max_sum_exp(lid, base, len);
        let inv_sum = 1.0 / max_sum.y;
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            y[base + j] = select(0.0, exp(x[base + j] - max_sum.x) * inv_sum, j < len);
        }
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn softmax_backward(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let row = row_index(group, lid);
    if row < params.rows {
        let base = row * params.dim;
        var dot = 0.0;
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            dot += dy[base + j] * y[base + j];
        }
        dot = row_sum(lid, dot, 0u);
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            let v = y[base + j] * (dy[base + j] - dot);
            dx[base + j] = accumulated(v, dx[base + j], params.accumulate);
        }
    }
}
