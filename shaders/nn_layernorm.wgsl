// nn_layernorm.wgsl: LayerNorm and RMSNorm over the last dimension, with elementwise
// affine (LayerNorm: weight and bias; RMSNorm: weight only).
//
//   LayerNorm: y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps)
//   RMSNorm:   y = x * rstd * weight,                   rstd = 1 / sqrt(mean(x^2) + eps)
//
// (biased variance, as torch.nn.LayerNorm; RMSNorm as HF's LlamaRMSNorm). RMSNorm is
// LayerNorm without centering: the kernels share every reduction and take a
// `centered` flag (a constant at each call site), and RMSNorm stores a mean of 0 so
// that xhat = (x - mean) * rstd holds for both. The forward pass saves mean and rstd
// per row for the backward pass. The ROW_LANES invocations of a row team (a row-team
// part from shaders/lib/, see rows_team.wgsl) share a row (the forward pass, the input
// gradient) or a feature (the parameter gradients: a column sum over the rows); each
// takes a strided share and the team reduces with `row_sum`.
//
// Entry points and the bindings each uses:
//   layernorm_forward:         x, weight, bias, y, stats
//   rmsnorm_forward:           x, weight, y, stats
//   layernorm_backward_input:  x, weight, stats, dy, dx
//                              dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
//                              g = dy * weight
//   rmsnorm_backward_input:    x, weight, stats, dy, dx
//                              dx = rstd * (g - xhat * mean(g * xhat))
//   layernorm_backward_params: x, stats, dy, dweight, dbias (both norms)
//                              dweight = sum_rows dy * xhat, dbias = sum_rows dy
//
// Bindings (group 0), declared by the builder from LAYERNORM in
// src/nn/ops/layernorm.rs, which also defines the uniform block LnParams:
//   params   uniform      LnParams
//   x        storage r    input [rows, dim]
//   weight   storage r    [dim]
//   bias     storage r    [dim]
//   y        storage rw   output [rows, dim]
//   stats    storage rw   [rows, 2]: mean (0 for RMSNorm), rstd (written forward,
//                         read backward)
//   dy       storage r    upstream gradient [rows, dim]
//   dx       storage rw   input gradient (accumulate_x: add instead of overwrite)
//   dweight  storage rw   weight gradient (accumulate_weight)
//   dbias    storage rw   bias gradient (accumulate_bias)

// Mean (0 unless `centered`) and rstd of the row starting at `base`, returned to the
// whole team; lane 0 saves them in `stats`.
fn row_stats(lid: u32, row: u32, centered: bool) -> vec2<f32> {
    let base = row * params.dim;
    let n = f32(params.dim);
    var mean = 0.0;
    if centered {
        var s = 0.0;
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            s += x[base + j];
        }
        mean = row_sum(lid, s, 0u) / n;
    }
    var q = 0.0;
    for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
        let d = x[base + j] - mean;
        q += d * d;
    }
    let rstd = inverseSqrt(row_sum(lid, q, 1u) / n + params.eps);
    if row_lane(lid) == 0u {
        stats[2u * row] = mean;
        stats[2u * row + 1u] = rstd;
    }
    return vec2(mean, rstd);
}

// The input gradient of a row from the saved stats; without centering, the mean(g)
// term (the gradient through the mean) is absent.
fn row_input_grad(lid: u32, row: u32, centered: bool) {
    let base = row * params.dim;
    let mean = stats[2u * row];
    let rstd = stats[2u * row + 1u];
    let n = f32(params.dim);
    var sg = 0.0;
    var sgx = 0.0;
    for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
        let g = dy[base + j] * weight[j];
        sg += g;
        sgx += g * (x[base + j] - mean) * rstd;
    }
    var mg = 0.0;
    if centered {
        mg = row_sum(lid, sg, 0u) / n;
    }
    let mgx = row_sum(lid, sgx, 1u) / n;
    for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
        let xhat = (x[base + j] - mean) * rstd;
        let v = rstd * (dy[base + j] * weight[j] - mg - xhat * mgx);
        dx[base + j] = accumulated(v, dx[base + j], params.accumulate_x);
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn layernorm_forward(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let row = row_index(group, lid);
    if row < params.rows {
        let base = row * params.dim;
        let s = row_stats(lid, row, true);
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            y[base + j] = (x[base + j] - s.x) * s.y * weight[j] + bias[j];
        }
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn rmsnorm_forward(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let row = row_index(group, lid);
    if row < params.rows {
        let base = row * params.dim;
        let rstd = row_stats(lid, row, false).y;
        for (var j = row_lane(lid); j < params.dim; j += ROW_LANES) {
            y[base + j] = x[base + j] * rstd * weight[j];
        }
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn layernorm_backward_input(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let row = row_index(group, lid);
    if row < params.rows {
        row_input_grad(lid, row, true);
    }
}

@compute @workgroup_size(ROW_WG_SIZE)
fn rmsnorm_backward_input(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let row = row_index(group, lid);
    if row < params.rows {
        row_input_grad(lid, row, false);
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
