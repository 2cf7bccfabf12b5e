// nn_softmax.wgsl: softmax over the last dimension and its gradient.
//
//   y = exp(x - max) / sum(exp(x - max))
//   dx = y * (dy - sum(dy * y))
//
// The ROW_LANES invocations of a row team (a row-team part from shaders/lib/, see
// rows_team.wgsl) share a row, each taking a strided share; the team reduces
// with `row_max` / `row_sum`.
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

@compute @workgroup_size(ROW_WG_SIZE)
fn softmax_forward(inv: Invocation) {
    let row = row_index(inv);
    if row < params.rows {
        let base = row * params.dim;
        // Invocations past the end of a short row contribute its first element.
        var m = x[base];
        for (var j = row_lane(inv); j < params.dim; j += ROW_LANES) {
            m = max(m, x[base + j]);
        }
        m = row_max(inv, m, 0u);
        // y holds exp(x - m) until every lane has its share of the sum.
        var s = 0.0;
        for (var j = row_lane(inv); j < params.dim; j += ROW_LANES) {
            let e = exp(x[base + j] - m);
            y[base + j] = e;
            s += e;
        }
        let inv_sum = 1.0 / row_sum(inv, s, 1u);
        for (var j = row_lane(inv); j < params.dim; j += ROW_LANES) {
            y[base + j] *= inv_sum;
        }
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn softmax_backward(inv: Invocation) {
    let row = row_index(inv);
    if row < params.rows {
        let base = row * params.dim;
        var dot = 0.0;
        for (var j = row_lane(inv); j < params.dim; j += ROW_LANES) {
            dot += dy[base + j] * y[base + j];
        }
        dot = row_sum(inv, dot, 0u);
        for (var j = row_lane(inv); j < params.dim; j += ROW_LANES) {
            let v = y[base + j] * (dy[base + j] - dot);
            dx[base + j] = accumulated(v, dx[base + j], params.accumulate);
        }
    }
}
