// nn_attention.wgsl: fused scaled dot-product multi-head self-attention for short
// sequences, on a packed qkv tensor (timm's layout after the qkv Linear).
//
//   qkv [B, N, 3 * D], features ordered (q/k/v, head, head_dim); out [B, N, D] with
//   heads merged; P [B * H, N, N] the attention probabilities (saved for backward).
//
//   forward:  S = scale * Q K^T,  P = softmax(S) (row-wise, max-subtracted),  O = P V
//   backward: dP = dO V^T,  dS = P * (dP - rowsum(dO * O)),  (rowsum(dP * P) = dO . O)
//             dQ = scale * dS K,  dK = scale * dS^T Q,  dV = P^T dO
//
// One invocation per (batch, head, token): scores, softmax and the weighted sum of a
// query row happen in one invocation with no barrier and no workgroup memory; K and V
// of a head are read by every invocation of that head (they stay in cache for short
// sequences). Backward is two kernels: one per query row (dS and dQ), one per key row
// (dK and dV), each writing a disjoint part of dqkv.
//
// Entry points and the bindings each uses:
//   attention_forward:        params, qkv, out, probs
//   attention_backward_query: params, qkv, out, probs, d_out, d_scores, d_qkv
//   attention_backward_key:   params, qkv, probs, d_out, d_scores, d_qkv
//
// WG_SIZE comes from the generated constants and invocation_linear from
// lib/grid.wgsl (src/nn/kernels.rs assembles the module).
//
// Bindings (group 0):
//   0 params    uniform      AttnParams
//   1 qkv       storage r    [B, N, 3 * D]
//   2 out       storage rw   [B, N, D] (written forward, read backward)
//   3 probs     storage rw   [B * H, N, N] (written forward, read backward)
//   4 d_out     storage r    [B, N, D] upstream gradient
//   5 d_scores  storage rw   [B * H, N, N] dS (written by the query kernel)
//   6 d_qkv     storage rw   [B, N, 3 * D] gradient (added to when accumulate != 0)

struct AttnParams {
    // B * H * N: the invocation space of every entry point.
    rows: u32,
    tokens: u32,
    dim: u32,
    heads: u32,
    head_dim: u32,
    scale: f32,
    accumulate: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: AttnParams;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read> d_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> d_scores: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_qkv: array<f32>;

// Where one invocation's (batch, head, token) lives in each tensor.
struct Site {
    // First element of row `token` of the head's Q (add D for K, 2 D for V).
    qkv_row: u32,
    // First element of token 0 of the head's Q in the same batch.
    qkv_head: u32,
    // First element of the head's slice of row `token` of out / d_out.
    out_row: u32,
    // First element of the head's slice of token 0 of out / d_out.
    out_head: u32,
    // First element of row `token` of the head's N x N matrices.
    square_row: u32,
    // First element of the head's N x N matrices.
    square_head: u32,
}

fn site(r: u32) -> Site {
    let n = params.tokens;
    let token = r % n;
    let bh = r / n;
    let h = bh % params.heads;
    let b = bh / params.heads;
    let row3 = 3u * params.dim;
    let qkv_head = b * n * row3 + h * params.head_dim;
    let out_head = b * n * params.dim + h * params.head_dim;
    return Site(
        qkv_head + token * row3,
        qkv_head,
        out_head + token * params.dim,
        out_head,
        r * n,
        bh * n * n,
    );
}

fn store_grad(i: u32, v: f32) {
    if params.accumulate != 0u {
        d_qkv[i] += v;
    } else {
        d_qkv[i] = v;
    }
}

@compute @workgroup_size(WG_SIZE)
fn attention_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = invocation_linear(wg, nwg, lid);
    if r >= params.rows {
        return;
    }
    let s = site(r);
    let n = params.tokens;
    let hd = params.head_dim;
    let row3 = 3u * params.dim;
    let k0 = s.qkv_head + params.dim;
    // Scores into this row of probs, and their maximum.
    var m = 0.0;
    for (var j = 0u; j < n; j++) {
        var dot = 0.0;
        for (var d = 0u; d < hd; d++) {
            dot += qkv[s.qkv_row + d] * qkv[k0 + j * row3 + d];
        }
        let score = params.scale * dot;
        probs[s.square_row + j] = score;
        m = select(max(m, score), score, j == 0u);
    }
    var sum = 0.0;
    for (var j = 0u; j < n; j++) {
        let e = exp(probs[s.square_row + j] - m);
        probs[s.square_row + j] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var j = 0u; j < n; j++) {
        probs[s.square_row + j] *= inv;
    }
    let v0 = k0 + params.dim;
    for (var d = 0u; d < hd; d++) {
        var acc = 0.0;
        for (var j = 0u; j < n; j++) {
            acc += probs[s.square_row + j] * qkv[v0 + j * row3 + d];
        }
        out[s.out_row + d] = acc;
    }
}

@compute @workgroup_size(WG_SIZE)
fn attention_backward_query(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = invocation_linear(wg, nwg, lid);
    if r >= params.rows {
        return;
    }
    let s = site(r);
    let n = params.tokens;
    let hd = params.head_dim;
    let row3 = 3u * params.dim;
    // rowsum(dP * P) = dO . O for this query row.
    var d_dot_o = 0.0;
    for (var d = 0u; d < hd; d++) {
        d_dot_o += d_out[s.out_row + d] * out[s.out_row + d];
    }
    let v0 = s.qkv_head + 2u * params.dim;
    for (var j = 0u; j < n; j++) {
        var dp = 0.0;
        for (var d = 0u; d < hd; d++) {
            dp += d_out[s.out_row + d] * qkv[v0 + j * row3 + d];
        }
        d_scores[s.square_row + j] = probs[s.square_row + j] * (dp - d_dot_o);
    }
    let k0 = s.qkv_head + params.dim;
    for (var d = 0u; d < hd; d++) {
        var acc = 0.0;
        for (var j = 0u; j < n; j++) {
            acc += d_scores[s.square_row + j] * qkv[k0 + j * row3 + d];
        }
        store_grad(s.qkv_row + d, params.scale * acc);
    }
}

@compute @workgroup_size(WG_SIZE)
fn attention_backward_key(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = invocation_linear(wg, nwg, lid);
    if r >= params.rows {
        return;
    }
    // This invocation's token is the key / value row j.
    let s = site(r);
    let n = params.tokens;
    let hd = params.head_dim;
    let row3 = 3u * params.dim;
    let j = r % n;
    for (var d = 0u; d < hd; d++) {
        var dk = 0.0;
        var dv = 0.0;
        for (var i = 0u; i < n; i++) {
            let at = s.square_head + i * n + j;
            dk += d_scores[at] * qkv[s.qkv_head + i * row3 + d];
            dv += probs[at] * d_out[s.out_head + i * params.dim + d];
        }
        store_grad(s.qkv_row + params.dim + d, params.scale * dk);
        store_grad(s.qkv_row + 2u * params.dim + d, dv);
    }
}
