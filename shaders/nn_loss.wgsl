// nn_loss.wgsl: softmax cross-entropy from logits (mean over all rows: the batch, or
// every token of a language model's batch), correct predictions, and a small sum
// reduction.
//
//   loss_r = logsumexp(x_r) - x_r[label_r], computed as m + log(sum exp(x - m)) with
//   m = max(x_r) so that no exp overflows; loss = mean_r loss_r.
//   dx_r = dloss / B * (softmax(x_r) - onehot(label_r)).
//   A row is correct when its first maximal logit is at the label (torch.argmax).
//
// The masked MSE of a masked autoencoder, over rows r (patches) of P features:
//   t_r = target_r, or with params.norm_target (norm_pix_loss) (target_r - mean_r) /
//   sqrt(var_r + NORM_EPS) with the UNBIASED variance (divides by P - 1: torch.var's
//   default, what MAE calls); loss_r = mean_j (x_rj - t_rj)^2;
//   loss = sum_r mask_r loss_r / sum_r mask_r; dx_rj = dloss mask_r 2 (x_rj - t_rj) /
//   (P sum_r mask_r). The target gets no gradient.
//
// ce_forward_rows is a row kernel: the ROW_LANES invocations of a row team (a
// row-team part from shaders/lib/, see rows_team.wgsl) share a row, whose maximum and
// sum of exponentials come from lib/row_logsumexp.wgsl. The other entry points are
// flat kernels of WG_SIZE invocations per workgroup (lib/grid.wgsl); reduce_sum sums
// with workgroup_sum (lib::WORKGROUP_SUM, src/wgsl.rs).
//
// Labels are validated on the CPU before upload (the model runtime, or
// Graph::record_write_ids); an out-of-range label here is clamped to the last class
// instead of reading out of bounds.
//
// Entry points and the bindings each uses:
//   ce_forward_rows: one row team per row        x, labels, rows
//                    rows[2r] = loss_r, rows[2r + 1] = logsumexp(x_r)
//   correct_rows:    one invocation per row      x, labels, rows
//                    rows[r] = 1 or 0
//   reduce_sum:      one workgroup               rows, out
//                    out[0] = scale * sum_r rows[r * stride]
//   ce_backward:     one invocation per logit    x, labels, rows, dloss, dx
//   mse_forward_rows: one invocation per row     x, targets, mask, rows
//                    rows[MSE_STRIDE r + MSE_*] = mask_r loss_r, mask_r, and the
//                    target's mean_r and std_r (0 and 1 without norm_target)
//   reduce_ratio:    one workgroup               rows, out
//                    out[0] = sum_r rows[MSE_STRIDE r] / sum_r rows[MSE_STRIDE r + 1],
//                    that denominator also into rows[MSE_STRIDE * params.rows]
//   mse_backward:    one invocation per x entry  x, targets, rows, dloss, dx
//
// Bindings (group 0), declared by the builder from LOSS in src/nn/ops/loss.rs, which
// also defines the uniform block LossParams:
//   params   uniform      LossParams
//   x        storage r    the logits [rows, classes]; the MSE's prediction [rows, P]
//   targets  storage r    the MSE's target [rows, P]
//   mask     storage r    the MSE's row weights [rows] (1 = masked patch)
//   labels   storage r    [rows] (u32)
//   rows     storage rw   per-row scratch
//   out      storage rw   [1] the reduced value
//   dloss    storage r    [1] gradient of the loss (1 for a loss being minimized)
//   dx       storage rw   the logits' gradient (added to when params.accumulate != 0)

// The entries of a row's masked-MSE scratch (MSE_STRIDE per row).
const MSE_STRIDE: u32 = 4u;
const MSE_LOSS: u32 = 0u;
const MSE_WEIGHT: u32 = 1u;
const MSE_MEAN: u32 = 2u;
const MSE_STD: u32 = 3u;
// norm_pix_loss's eps inside the square root (MAE's 1.e-6).
const NORM_EPS: f32 = 1e-6;

fn label_of(row: u32) -> u32 {
    return min(labels[row], params.classes - 1u);
}

@compute @workgroup_size(ROW_WG_SIZE)
fn ce_forward_rows(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let row = row_index(group, lid);
    if row < params.rows {
        let base = row * params.classes;
        let max_sum = row_max_sum_exp(lid, base, params.classes);
        let lse = max_sum.x + log(max_sum.y);
        if row_lane(lid) == 0u {
            rows[2u * row] = lse - x[base + label_of(row)];
            rows[2u * row + 1u] = lse;
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn correct_rows(inv: Invocation) {
    let row = flat_index(inv);
    if row < params.rows {
        let base = row * params.classes;
        var best = 0u;
        for (var j = 1u; j < params.classes; j++) {
            if x[base + j] > x[base + best] {
                best = j;
            }
        }
        rows[row] = select(0.0, 1.0, best == labels[row]);
    }
}

@compute @workgroup_size(WG_SIZE)
fn reduce_sum(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var r = lid; r < params.rows; r += WG_SIZE) {
        s += rows[r * params.stride];
    }
    let total = workgroup_sum(s, lid);
    if lid == 0u {
        out[0] = params.scale * total;
    }
}

@compute @workgroup_size(WG_SIZE)
fn ce_backward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.rows * params.classes {
        let row = i / params.classes;
        let j = i % params.classes;
        let p = exp(x[i] - rows[2u * row + 1u]);
        let onehot = select(0.0, 1.0, j == label_of(row));
        let v = dloss[0] / f32(params.rows) * (p - onehot);
        dx[i] = accumulated(v, dx[i], params.accumulate);
    }
}

// The mean and standard deviation sqrt(unbiased var + NORM_EPS) of target row r.
// The mean is summed as offsets from the row's first value, so that a constant row
// (a blank patch) has exactly its value as the mean and a normalized target of
// exactly 0, as PyTorch computes it; a plain f32 sum rounds, and the division by
// sqrt(NORM_EPS) = 1e-3 magnifies that into targets of about 1e-4.
fn target_moments(base: u32) -> vec2<f32> {
    let p = params.classes;
    let first = targets[base];
    var offsets = 0.0;
    for (var j = 1u; j < p; j++) {
        offsets += targets[base + j] - first;
    }
    let mean = first + offsets / f32(p);
    var squares = 0.0;
    for (var j = 0u; j < p; j++) {
        let c = targets[base + j] - mean;
        squares += c * c;
    }
    return vec2<f32>(mean, sqrt(squares / f32(p - 1u) + NORM_EPS));
}

@compute @workgroup_size(WG_SIZE)
fn mse_forward_rows(inv: Invocation) {
    let row = flat_index(inv);
    if row < params.rows {
        let base = row * params.classes;
        var moments = vec2<f32>(0.0, 1.0);
        if params.norm_target != 0u {
            moments = target_moments(base);
        }
        var squares = 0.0;
        for (var j = 0u; j < params.classes; j++) {
            let e = x[base + j] - (targets[base + j] - moments.x) / moments.y;
            squares += e * e;
        }
        let at = row * MSE_STRIDE;
        rows[at + MSE_LOSS] = mask[row] * (squares / f32(params.classes));
        rows[at + MSE_WEIGHT] = mask[row];
        rows[at + MSE_MEAN] = moments.x;
        rows[at + MSE_STD] = moments.y;
    }
}

@compute @workgroup_size(WG_SIZE)
fn reduce_ratio(@builtin(local_invocation_index) lid: u32) {
    var loss = 0.0;
    var weight = 0.0;
    for (var r = lid; r < params.rows; r += WG_SIZE) {
        loss += rows[r * MSE_STRIDE + MSE_LOSS];
        weight += rows[r * MSE_STRIDE + MSE_WEIGHT];
    }
    let loss_total = workgroup_sum(loss, lid);
    let weight_total = workgroup_sum(weight, lid);
    if lid == 0u {
        out[0] = loss_total / weight_total;
        rows[params.rows * MSE_STRIDE] = weight_total;
    }
}

@compute @workgroup_size(WG_SIZE)
fn mse_backward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.rows * params.classes {
        let at = (i / params.classes) * MSE_STRIDE;
        let t = (targets[i] - rows[at + MSE_MEAN]) / rows[at + MSE_STD];
        let scale = dloss[0] * rows[at + MSE_WEIGHT] / (f32(params.classes) * rows[params.rows * MSE_STRIDE]);
        let v = 2.0 * scale * (x[i] - t);
        dx[i] = accumulated(v, dx[i], params.accumulate);
    }
}
