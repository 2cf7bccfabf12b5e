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
//   attention_forward:        qkv, out, probs
//   attention_backward_query: qkv, out, probs, d_out, d_scores, d_qkv
//   attention_backward_key:   qkv, probs, d_out, d_scores, d_qkv
//
// WG_SIZE comes from the generated constants, Invocation and flat_index from
// lib/grid.wgsl and accumulated from lib/accumulate.wgsl (src/nn/kernels.rs assembles
// the module).
//
// Bindings (group 0), declared by the builder from ATTENTION in
// src/nn/ops/attention.rs, which also defines the uniform block AttnParams (`rows`,
// B * H * N, is the invocation space of every entry point):
//   params    uniform      AttnParams
//   qkv       storage r    [B, N, 3 * D]
//   out       storage rw   [B, N, D] (written forward, read backward)
//   probs     storage rw   [B * H, N, N] (written forward, read backward)
//   d_out     storage r    [B, N, D] upstream gradient
//   d_scores  storage rw   [B * H, N, N] dS (written by the query kernel)
//   d_qkv     storage rw   [B, N, 3 * D] gradient (added to when accumulate != 0)

// Where one invocation's (batch, head, token) lives in each tensor. Row i of the
// head's K is at k_head + i * qkv_stride (V likewise); row i of its slice of out /
// d_out is at out_head + i * D.
struct Site {
    // This invocation's token.
    token: u32,
    // First element of row `token` of the head's Q (add D for K, 2 D for V).
    qkv_row: u32,
    // First element of token 0 of the head's Q, K and V in the same batch.
    q_head: u32,
    k_head: u32,
    v_head: u32,
    // Elements between consecutive tokens of qkv (3 D).
    qkv_stride: u32,
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
    let stride = 3u * params.dim;
    let q_head = b * n * stride + h * params.head_dim;
    let out_head = b * n * params.dim + h * params.head_dim;
    return Site(
        token,
        q_head + token * stride,
        q_head,
        q_head + params.dim,
        q_head + 2u * params.dim,
        stride,
        out_head + token * params.dim,
        out_head,
        r * n,
        bh * n * n,
    );
}

@compute @workgroup_size(WG_SIZE)
fn attention_forward(inv: Invocation) {
    let r = flat_index(inv);
    if r >= params.rows {
        return;
    }
    let s = site(r);
    // Scores into this row of probs, and their maximum.
    var m = 0.0;
    for (var j = 0u; j < params.tokens; j++) {
        var dot = 0.0;
        for (var d = 0u; d < params.head_dim; d++) {
            dot += qkv[s.qkv_row + d] * qkv[s.k_head + j * s.qkv_stride + d];
        }
        let score = params.scale * dot;
        probs[s.square_row + j] = score;
        m = select(max(m, score), score, j == 0u);
    }
    var sum = 0.0;
    for (var j = 0u; j < params.tokens; j++) {
        let e = exp(probs[s.square_row + j] - m);
        probs[s.square_row + j] = e;
        sum += e;
    }
    let inv_sum = 1.0 / sum;
    for (var j = 0u; j < params.tokens; j++) {
        probs[s.square_row + j] *= inv_sum;
    }
    for (var d = 0u; d < params.head_dim; d++) {
        var acc = 0.0;
        for (var j = 0u; j < params.tokens; j++) {
            acc += probs[s.square_row + j] * qkv[s.v_head + j * s.qkv_stride + d];
        }
        out[s.out_row + d] = acc;
    }
}

@compute @workgroup_size(WG_SIZE)
fn attention_backward_query(inv: Invocation) {
    let r = flat_index(inv);
    if r >= params.rows {
        return;
    }
    let s = site(r);
    // rowsum(dP * P) = dO . O for this query row.
    var d_dot_o = 0.0;
    for (var d = 0u; d < params.head_dim; d++) {
        d_dot_o += d_out[s.out_row + d] * out[s.out_row + d];
    }
    for (var j = 0u; j < params.tokens; j++) {
        var dp = 0.0;
        for (var d = 0u; d < params.head_dim; d++) {
            dp += d_out[s.out_row + d] * qkv[s.v_head + j * s.qkv_stride + d];
        }
        d_scores[s.square_row + j] = probs[s.square_row + j] * (dp - d_dot_o);
    }
    for (var d = 0u; d < params.head_dim; d++) {
        var acc = 0.0;
        for (var j = 0u; j < params.tokens; j++) {
            acc += d_scores[s.square_row + j] * qkv[s.k_head + j * s.qkv_stride + d];
        }
        let at = s.qkv_row + d;
        d_qkv[at] = accumulated(params.scale * acc, d_qkv[at], params.accumulate);
    }
}

// This invocation's token is the key / value row j.
@compute @workgroup_size(WG_SIZE)
fn attention_backward_key(inv: Invocation) {
    let r = flat_index(inv);
    if r >= params.rows {
        return;
    }
    let s = site(r);
    let n = params.tokens;
    for (var d = 0u; d < params.head_dim; d++) {
        var dk = 0.0;
        var dv = 0.0;
        for (var i = 0u; i < n; i++) {
            let at = s.square_head + i * n + s.token;
            dk += d_scores[at] * qkv[s.q_head + i * s.qkv_stride + d];
            dv += probs[at] * d_out[s.out_head + i * params.dim + d];
        }
        let k_at = s.qkv_row + params.dim + d;
        let v_at = k_at + params.dim;
        d_qkv[k_at] = accumulated(params.scale * dk, d_qkv[k_at], params.accumulate);
        d_qkv[v_at] = accumulated(dv, d_qkv[v_at], params.accumulate);
    }
}
