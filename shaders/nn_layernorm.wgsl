// nn_layernorm.wgsl: LayerNorm over the last dimension, with elementwise affine.
//
//   y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps)
//
// (biased variance, as torch.nn.LayerNorm). The forward pass saves mean and rstd per
// row for the backward pass. One workgroup of ROW_WG_SIZE invocations per row
// (forward, input gradient) or per feature (parameter gradients: a column sum over
// the rows); each invocation takes a strided share of the row, and the workgroup
// reduces with `row_sum` (nn_rows_subgroup.wgsl or nn_rows_workgroup.wgsl, prepended
// with the generated constant ROW_WG_SIZE). Workgroups are numbered over a 2-D grid.
//
// Each entry point has a `<name>_per_invocation` twin with the same bindings that
// runs one invocation per row (per feature for the parameter gradients) on a flat
// WG_SIZE grid, with no barriers: the variant for CPU adapters (RowLayout in
// src/nn/kernels.rs chooses).
//
// Entry points and the bindings each uses:
//   layernorm_forward:         params, x, weight, bias, y, stats
//   layernorm_backward_input:  params, x, weight, stats, dy, dx
//                              dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
//                              g = dy * weight
//   layernorm_backward_params: params, x, stats, dy, dweight, dbias
//                              dweight = sum_rows dy * xhat, dbias = sum_rows dy
//
// Bindings (group 0):
//   0 params   uniform      LnParams
//   1 x        storage r    input [rows, dim]
//   2 weight   storage r    [dim]
//   3 bias     storage r    [dim]
//   4 y        storage rw   output [rows, dim]
//   5 stats    storage rw   [rows, 2]: mean, rstd (written forward, read backward)
//   6 dy       storage r    upstream gradient [rows, dim]
//   7 dx       storage rw   input gradient (accumulate_x: add instead of overwrite)
//   8 dweight  storage rw   weight gradient (accumulate_weight)
//   9 dbias    storage rw   bias gradient (accumulate_bias)

struct LnParams {
    rows: u32,
    dim: u32,
    eps: f32,
    accumulate_x: u32,
    accumulate_weight: u32,
    accumulate_bias: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: LnParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(9) var<storage, read_write> dbias: array<f32>;

@compute @workgroup_size(ROW_WG_SIZE)
fn layernorm_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    let row = workgroup_linear(wg, nwg);
    if row < params.rows {
        let base = row * params.dim;
        let n = f32(params.dim);
        var s = 0.0;
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            s += x[base + j];
        }
        let mean = row_sum(lane, s, 0u) / n;
        var q = 0.0;
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            let d = x[base + j] - mean;
            q += d * d;
        }
        let rstd = inverseSqrt(row_sum(lane, q, 1u) / n + params.eps);
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            y[base + j] = (x[base + j] - mean) * rstd * weight[j] + bias[j];
        }
        if lane.index == 0u {
            stats[2u * row] = mean;
            stats[2u * row + 1u] = rstd;
        }
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn layernorm_backward_input(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    let row = workgroup_linear(wg, nwg);
    if row < params.rows {
        let base = row * params.dim;
        let mean = stats[2u * row];
        let rstd = stats[2u * row + 1u];
        var sg = 0.0;
        var sgx = 0.0;
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            let g = dy[base + j] * weight[j];
            sg += g;
            sgx += g * (x[base + j] - mean) * rstd;
        }
        let n = f32(params.dim);
        let mg = row_sum(lane, sg, 0u) / n;
        let mgx = row_sum(lane, sgx, 1u) / n;
        for (var j = lane.index; j < params.dim; j += ROW_WG_SIZE) {
            let xhat = (x[base + j] - mean) * rstd;
            let v = rstd * (dy[base + j] * weight[j] - mg - xhat * mgx);
            if params.accumulate_x != 0u {
                dx[base + j] += v;
            } else {
                dx[base + j] = v;
            }
        }
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn layernorm_backward_params(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    let j = workgroup_linear(wg, nwg);
    if j < params.dim {
        var sw = 0.0;
        var sb = 0.0;
        for (var row = lane.index; row < params.rows; row += ROW_WG_SIZE) {
            let i = row * params.dim + j;
            let xhat = (x[i] - stats[2u * row]) * stats[2u * row + 1u];
            sw += dy[i] * xhat;
            sb += dy[i];
        }
        sw = row_sum(lane, sw, 0u);
        sb = row_sum(lane, sb, 1u);
        if lane.index == 0u {
            if params.accumulate_weight != 0u {
                sw += dweight[j];
            }
            if params.accumulate_bias != 0u {
                sb += dbias[j];
            }
            dweight[j] = sw;
            dbias[j] = sb;
        }
    }
}

// ---- One invocation per row (per feature for the parameter gradients), for CPU
// adapters: no barriers, and each invocation walks its row with plain loads.

@compute @workgroup_size(WG_SIZE)
fn layernorm_forward_per_invocation(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = invocation_linear(wg, nwg, lid);
    if row < params.rows {
        let base = row * params.dim;
        let n = f32(params.dim);
        var s = 0.0;
        for (var j = 0u; j < params.dim; j++) {
            s += x[base + j];
        }
        let mean = s / n;
        var q = 0.0;
        for (var j = 0u; j < params.dim; j++) {
            let d = x[base + j] - mean;
            q += d * d;
        }
        let rstd = inverseSqrt(q / n + params.eps);
        for (var j = 0u; j < params.dim; j++) {
            y[base + j] = (x[base + j] - mean) * rstd * weight[j] + bias[j];
        }
        stats[2u * row] = mean;
        stats[2u * row + 1u] = rstd;
    }
}

@compute @workgroup_size(WG_SIZE)
fn layernorm_backward_input_per_invocation(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = invocation_linear(wg, nwg, lid);
    if row < params.rows {
        let base = row * params.dim;
        let mean = stats[2u * row];
        let rstd = stats[2u * row + 1u];
        var sg = 0.0;
        var sgx = 0.0;
        for (var j = 0u; j < params.dim; j++) {
            let g = dy[base + j] * weight[j];
            sg += g;
            sgx += g * (x[base + j] - mean) * rstd;
        }
        let n = f32(params.dim);
        let mg = sg / n;
        let mgx = sgx / n;
        for (var j = 0u; j < params.dim; j++) {
            let xhat = (x[base + j] - mean) * rstd;
            let v = rstd * (dy[base + j] * weight[j] - mg - xhat * mgx);
            if params.accumulate_x != 0u {
                dx[base + j] += v;
            } else {
                dx[base + j] = v;
            }
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn layernorm_backward_params_per_invocation(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let j = invocation_linear(wg, nwg, lid);
    if j < params.dim {
        var sw = 0.0;
        var sb = 0.0;
        for (var row = 0u; row < params.rows; row++) {
            let i = row * params.dim + j;
            let xhat = (x[i] - stats[2u * row]) * stats[2u * row + 1u];
            sw += dy[i] * xhat;
            sb += dy[i];
        }
        if params.accumulate_weight != 0u {
            sw += dweight[j];
        }
        if params.accumulate_bias != 0u {
            sb += dbias[j];
        }
        dweight[j] = sw;
        dbias[j] = sb;
    }
}
