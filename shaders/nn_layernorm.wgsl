// nn_layernorm.wgsl: LayerNorm over the last dimension, with elementwise affine.
//
//   y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps)
//
// (biased variance, as torch.nn.LayerNorm). The forward pass saves mean and rstd per
// row for the backward pass. The ROW_LANES invocations of a row team (a row-team part
// from shaders/lib/, see rows_team.wgsl) share a row (the forward pass, the input
// gradient) or a feature (the parameter gradients: a column sum over the rows); each
// takes a strided share and the team reduces with `row_sum`.
//
// Entry points and the bindings each uses:
//   layernorm_forward:         x, weight, bias, y, stats
//   layernorm_backward_input:  x, weight, stats, dy, dx
//                              dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
//                              g = dy * weight
//   layernorm_backward_params: x, stats, dy, dweight, dbias
//                              dweight = sum_rows dy * xhat, dbias = sum_rows dy
//
// Bindings (group 0), declared by the builder from LAYERNORM in
// src/nn/ops/layernorm.rs, which also defines the uniform block LnParams:
//   params   uniform      LnParams
//   x        storage r    input [rows, dim]
//   weight   storage r    [dim]
//   bias     storage r    [dim]
//   y        storage rw   output [rows, dim]
//   stats    storage rw   [rows, 2]: mean, rstd (written forward, read backward)
//   dy       storage r    upstream gradient [rows, dim]
//   dx       storage rw   input gradient (accumulate_x: add instead of overwrite)
//   dweight  storage rw   weight gradient (accumulate_weight)
//   dbias    storage rw   bias gradient (accumulate_bias)

@compute @workgroup_size(ROW_WG_SIZE)
fn layernorm_forward(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let row = row_index(group, lid);
    if row < params.rows {
        let base = row * params.dim;
        let n = f32(params.dim);
        var s = 0.0;
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            s += x[base + j];
        }
        let mean = row_sum(lid, s, 0u) / n;
        var q = 0.0;
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            let d = x[base + j] - mean;
            q += d * d;
        }
        let rstd = inverseSqrt(row_sum(lid, q, 1u) / n + params.eps);
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            y[base + j] = (x[base + j] - mean) * rstd * weight[j] + bias[j];
        }
        if row_lane(lid) == 0u {
            stats[2u * row] = mean;
            stats[2u * row + 1u] = rstd;
        }
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn layernorm_backward_input(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let row = row_index(group, lid);
    if row < params.rows {
        let base = row * params.dim;
        let mean = stats[2u * row];
        let rstd = stats[2u * row + 1u];
        var sg = 0.0;
        var sgx = 0.0;
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            let g = dy[base + j] * weight[j];
            sg += g;
            sgx += g * (x[base + j] - mean) * rstd;
        }
        let n = f32(params.dim);
        let mg = row_sum(lid, sg, 0u) / n;
        let mgx = row_sum(lid, sgx, 1u) / n;
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            let xhat = (x[base + j] - mean) * rstd;
            let v = rstd * (dy[base + j] * weight[j] - mg - xhat * mgx);
            dx[base + j] = accumulated(v, dx[base + j], params.accumulate_x);
        }
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn layernorm_backward_params(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let j = row_index(group, lid);
    if j < params.dim {
        var sw = 0.0;
        var sb = 0.0;
        for (var row = row_lane(lid); row < params.rows; row += ROW_LANES) {
            let i = row * params.dim + j;
            let xhat = (x[i] - stats[2u * row]) * stats[2u * row + 1u];
            sw += dy[i] * xhat;
            sb += dy[i];
        }
        sw = row_sum(lid, sw, 0u);
        sb = row_sum(lid, sb, 1u);
        if row_lane(lid) == 0u {
            dweight[j] = accumulated(sw, dweight[j], params.accumulate_weight);
            dbias[j] = accumulated(sb, dbias[j], params.accumulate_bias);
        }
    }
}
