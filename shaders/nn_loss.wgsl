// nn_loss.wgsl: softmax cross-entropy from logits (mean over the batch), correct
// predictions, and a small sum reduction.
//
//   loss_r = logsumexp(x_r) - x_r[label_r], computed as m + log(sum exp(x - m)) with
//   m = max(x_r) so that no exp overflows; loss = mean_r loss_r.
//   dx_r = dloss / B * (softmax(x_r) - onehot(label_r)).
//   A row is correct when its first maximal logit is at the label (torch.argmax).
//
// ce_forward_rows runs ROW_WG_SIZE invocations per row (workgroups numbered over a
// 2-D grid) that reduce with `row_max` / `row_sum` (nn_rows_subgroup.wgsl or
// nn_rows_workgroup.wgsl, prepended with the generated constant ROW_WG_SIZE); the
// other entry points use WG_SIZE invocations per workgroup.
//
// Labels are validated on the CPU before upload; an out-of-range label here is
// clamped to the last class instead of reading out of bounds.
//
// ce_forward_rows_per_invocation is its twin with one invocation per row on a flat
// WG_SIZE grid and no barriers, for CPU adapters (RowLayout in src/nn/kernels.rs);
// WG_SIZE is a generated constant too.
//
// Entry points and the bindings each uses:
//   ce_forward_rows: one workgroup per row      params, logits, labels, rows
//                    rows[2r] = loss_r, rows[2r + 1] = logsumexp(x_r)
//   correct_rows:    one invocation per row     params, logits, labels, rows
//                    rows[r] = 1 or 0
//   reduce_sum:      one workgroup              params, rows, out
//                    out[0] = scale * sum_r rows[r * stride]
//   ce_backward:     one invocation per logit   params, logits, labels, rows, dloss, dlogits
//
// Bindings (group 0):
//   0 params   uniform      LossParams
//   1 logits   storage r    [rows, classes]
//   2 labels   storage r    [rows] (u32)
//   3 rows     storage rw   per-row scratch
//   4 out      storage rw   [1] the reduced value
//   5 dloss    storage r    [1] gradient of the loss (1 for a loss being minimized)
//   6 dlogits  storage rw   logits gradient (added to when params.accumulate != 0)

struct LossParams {
    rows: u32,
    classes: u32,
    // reduce_sum: stride between summed entries of `rows`, and the factor applied.
    stride: u32,
    scale: f32,
    accumulate: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: LossParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> rows: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> dloss: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;

var<workgroup> partial: array<f32, WG_SIZE>;

fn label_of(row: u32) -> u32 {
    return min(labels[row], params.classes - 1u);
}

@compute @workgroup_size(ROW_WG_SIZE)
fn ce_forward_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    let row = wg.y * nwg.x + wg.x;
    if row < params.rows {
        let base = row * params.classes;
        // Invocations past the end of a short row contribute its first logit.
        var m = logits[base];
        for (var j = lane.index; j < params.classes; j += ROW_WG_SIZE) {
            m = max(m, logits[base + j]);
        }
        m = row_max(lane, m, 0u);
        var s = 0.0;
        for (var j = lane.index; j < params.classes; j += ROW_WG_SIZE) {
            s += exp(logits[base + j] - m);
        }
        let lse = m + log(row_sum(lane, s, 1u));
        if lane.index == 0u {
            rows[2u * row] = lse - logits[base + label_of(row)];
            rows[2u * row + 1u] = lse;
        }
    }
}

// One invocation per row, for CPU adapters (no barriers).
@compute @workgroup_size(WG_SIZE)
fn ce_forward_rows_per_invocation(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = invocation_linear(wg, nwg, lid);
    if row < params.rows {
        let base = row * params.classes;
        var m = logits[base];
        for (var j = 1u; j < params.classes; j++) {
            m = max(m, logits[base + j]);
        }
        var s = 0.0;
        for (var j = 0u; j < params.classes; j++) {
            s += exp(logits[base + j] - m);
        }
        let lse = m + log(s);
        rows[2u * row] = lse - logits[base + label_of(row)];
        rows[2u * row + 1u] = lse;
    }
}

@compute @workgroup_size(WG_SIZE)
fn correct_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = invocation_linear(wg, nwg, lid);
    if row < params.rows {
        let base = row * params.classes;
        var best = 0u;
        for (var j = 1u; j < params.classes; j++) {
            if logits[base + j] > logits[base + best] {
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
    partial[lid] = s;
    workgroupBarrier();
    if lid == 0u {
        var total = 0.0;
        for (var i = 0u; i < WG_SIZE; i++) {
            total += partial[i];
        }
        out[0] = params.scale * total;
    }
}

@compute @workgroup_size(WG_SIZE)
fn ce_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_linear(wg, nwg, lid);
    if i < params.rows * params.classes {
        let row = i / params.classes;
        let j = i % params.classes;
        let p = exp(logits[i] - rows[2u * row + 1u]);
        let onehot = select(0.0, 1.0, j == label_of(row));
        let v = dloss[0] / f32(params.rows) * (p - onehot);
        if params.accumulate != 0u {
            dlogits[i] += v;
        } else {
            dlogits[i] = v;
        }
    }
}
