// nn_attention.wgsl: fused scaled dot-product multi-head attention for short
// sequences, optionally causal, on Q, K and V in one of two layouts:
//
//   packed (timm's ViT, after the qkv Linear): one tensor [B, N, 3 * D], features
//     ordered (q/k/v, head, head_dim): q, k and v bind the same buffer, stride 3 D,
//     offsets 0, D and 2 D;
//   separate (HF LLaMA's q_proj, k_proj, v_proj): three tensors [B, N, D], stride D,
//     offsets 0.
//   Row t of head h of batch b of part X is at X_offset + (b N + t) stride + h hd.
//   out [B, N, D] with heads merged; P [B * H, N, N] the attention probabilities
//   (saved for backward).
//
//   forward:  S = scale * Q K^T,  P = softmax(S) (row-wise, max-subtracted),  O = P V
//   backward: dP = dO V^T,  dS = P * (dP - rowsum(dO * O)),  (rowsum(dP * P) = dO . O)
//             dQ = scale * dS K,  dK = scale * dS^T Q,  dV = P^T dO
//   causal:   query i sees keys j <= i only: S[i, j] for j > i is never computed,
//             P[i, j] = 0 there, and the backward kernels skip those entries.
//
// One invocation per (batch, head, token): scores, softmax and the weighted sum of a
// query row happen in one invocation with no barrier and no workgroup memory; K and V
// of a head are read by every invocation of that head (they stay in cache for short
// sequences). Each invocation keeps its own row (the query, dO) and its output row's
// sums in private arrays of MAX_HEAD_DIM (a generated constant: the op runs heads
// wider than that as matmuls), so every element of K, V, Q or dO it needs is read
// once per key or query, and each output element still sums its terms in key (or
// query) order. Backward is three kernels, each writing one gradient (so no two
// writable bindings ever alias): per query row dS and dQ, then per key row dK, and
// per value row dV. The key kernel reads the dS the query kernel wrote.
//
// Entry points and the bindings each uses:
//   attention_forward:        q, k, v, out, probs
//   attention_backward_query: k, v, out, probs, d_out, d_scores, d_qkv (dQ)
//   attention_backward_key:   q, probs, d_out, d_scores, d_qkv (dK)
//   attention_backward_value: q, probs, d_out, d_scores, d_qkv (dV)
// (the key and value kernels share one body, so each binds what either reads)
//
// WG_SIZE and MAX_HEAD_DIM come from the generated constants, Invocation and
// flat_index from lib/grid.wgsl and accumulated from lib/accumulate.wgsl
// (src/nn/kernels.rs assembles the module).
//
// Bindings (group 0), declared by the builder from ATTENTION in
// src/nn/ops/attention.rs, which also defines the uniform block AttnParams (`rows`,
// B * H * N, is the invocation space of every entry point):
//   params    uniform      AttnParams
//   q, k, v   storage r    queries, keys, values (one packed tensor bound three times,
//                          or three tensors)
//   out       storage rw   [B, N, D] (written forward, read backward)
//   probs     storage rw   [B * H, N, N] (written forward, read backward)
//   d_out     storage r    [B, N, D] upstream gradient
//   d_scores  storage rw   [B * H, N, N] dS (written by the query kernel)
//   d_qkv     storage rw   the gradient of the part the kernel differentiates, laid
//                          out like that part (added to when accumulate != 0)

// Where one invocation's (batch, head, token) lives in each tensor. Row i of the
// head's K is at k_head + i * stride (Q, V likewise); row i of its slice of out /
// d_out is at out_head + i * D.
struct Site {
    // The invocation's row of the B * H * N (batch, head, token) rows: past `rows` in
    // the grid's last workgroup, where the invocation does nothing.
    index: u32,
    // This invocation's token.
    token: u32,
    // First element of token 0 of the head's Q, K and V in the same batch.
    q_head: u32,
    k_head: u32,
    v_head: u32,
    // Offset of row `token` from token 0 of the head in Q, K and V.
    row: u32,
    // First element of the head's slice of row `token` of out / d_out.
    out_row: u32,
    // First element of the head's slice of token 0 of out / d_out.
    out_head: u32,
    // First element of row `token` of the head's N x N matrices.
    square_row: u32,
    // First element of the head's N x N matrices.
    square_head: u32,
    // The keys query `token` sees: all N, or 0..=token when causal.
    keys: u32,
}

// Which gradient `transposed_gradient` writes.
const KEY_PART: u32 = 1u;
const VALUE_PART: u32 = 2u;

fn site(inv: Invocation) -> Site {
    let r = flat_index(inv);
    let n = params.tokens;
    let token = r % n;
    let bh = r / n;
    let h = bh % params.heads;
    let b = bh / params.heads;
    let head = b * n * params.stride + h * params.head_dim;
    let out_head = b * n * params.dim + h * params.head_dim;
    return Site(
        r,
        token,
        params.q_offset + head,
        params.k_offset + head,
        params.v_offset + head,
        token * params.stride,
        out_head + token * params.dim,
        out_head,
        r * n,
        bh * n * n,
        select(n, token + 1u, params.causal != 0u),
    );
}

@compute @workgroup_size(WG_SIZE)
fn attention_forward(inv: Invocation) {
    let s = site(inv);
    if s.index >= params.rows {
        return;
    }
    // The query row, read once.
    var q_row: array<f32, MAX_HEAD_DIM>;
    for (var d = 0u; d < params.head_dim; d++) {
        q_row[d] = q[s.q_head + s.row + d];
    }
    // Scores into this row of probs, and their maximum.
    var m = 0.0;
    for (var j = 0u; j < s.keys; j++) {
        let key = s.k_head + j * params.stride;
        var dot = 0.0;
        for (var d = 0u; d < params.head_dim; d++) {
            dot += q_row[d] * k[key + d];
        }
        let score = params.scale * dot;
        probs[s.square_row + j] = score;
        m = select(max(m, score), score, j == 0u);
    }
    var sum = 0.0;
    for (var j = 0u; j < s.keys; j++) {
        let e = exp(probs[s.square_row + j] - m);
        probs[s.square_row + j] = e;
        sum += e;
    }
    // Normalize, and sum the value rows weighted by the probabilities (each
    // output element over j in order, as a dot product would).
    let inv_sum = 1.0 / sum;
    var acc: array<f32, MAX_HEAD_DIM>;
    for (var j = 0u; j < s.keys; j++) {
        let p = probs[s.square_row + j] * inv_sum;
        probs[s.square_row + j] = p;
        let value = s.v_head + j * params.stride;
        for (var d = 0u; d < params.head_dim; d++) {
            acc[d] += p * v[value + d];
        }
    }
    for (var j = s.keys; j < params.tokens; j++) {
        probs[s.square_row + j] = 0.0;
    }
    for (var d = 0u; d < params.head_dim; d++) {
        out[s.out_row + d] = acc[d];
    }
}

@compute @workgroup_size(WG_SIZE)
fn attention_backward_query(inv: Invocation) {
    let s = site(inv);
    if s.index >= params.rows {
        return;
    }
    // The row of dO, read once, and rowsum(dP * P) = dO . O.
    var d_out_row: array<f32, MAX_HEAD_DIM>;
    var d_dot_o = 0.0;
    for (var d = 0u; d < params.head_dim; d++) {
        d_out_row[d] = d_out[s.out_row + d];
        d_dot_o += d_out_row[d] * out[s.out_row + d];
    }
    // Per key j: dP, dS (stored for the key kernel) and its term of dQ.
    var acc: array<f32, MAX_HEAD_DIM>;
    for (var j = 0u; j < s.keys; j++) {
        let value = s.v_head + j * params.stride;
        var dp = 0.0;
        for (var d = 0u; d < params.head_dim; d++) {
            dp += d_out_row[d] * v[value + d];
        }
        let ds = probs[s.square_row + j] * (dp - d_dot_o);
        d_scores[s.square_row + j] = ds;
        let key = s.k_head + j * params.stride;
        for (var d = 0u; d < params.head_dim; d++) {
            acc[d] += ds * k[key + d];
        }
    }
    for (var d = 0u; d < params.head_dim; d++) {
        let at = s.q_head + s.row + d;
        d_qkv[at] = accumulated(params.scale * acc[d], d_qkv[at], params.accumulate);
    }
}

// dK = scale * dS^T Q or dV = P^T dO, row `s.token` (a key or value row): the sum
// over the queries that see it of dS[i, j] Q[i] (dK) or P[i, j] dO[i] (dV).
fn transposed_gradient(inv: Invocation, part: u32) {
    let s = site(inv);
    if s.index >= params.rows {
        return;
    }
    let first_query = select(0u, s.token, params.causal != 0u);
    let scale = select(1.0, params.scale, part == KEY_PART);
    let head = select(s.v_head, s.k_head, part == KEY_PART);
    var acc: array<f32, MAX_HEAD_DIM>;
    for (var i = first_query; i < params.tokens; i++) {
        let weight = s.square_head + i * params.tokens + s.token;
        var w = probs[weight];
        var row = s.out_head + i * params.dim;
        if part == KEY_PART {
            w = d_scores[weight];
            row = s.q_head + i * params.stride;
        }
        for (var d = 0u; d < params.head_dim; d++) {
            acc[d] += w * transposed_factor(part, row + d);
        }
    }
    for (var d = 0u; d < params.head_dim; d++) {
        let at = head + s.row + d;
        d_qkv[at] = accumulated(scale * acc[d], d_qkv[at], params.accumulate);
    }
}

// Element `at` of Q (dK) or of dO (dV).
fn transposed_factor(part: u32, at: u32) -> f32 {
    if part == KEY_PART {
        return q[at];
    }
    return d_out[at];
}

@compute @workgroup_size(WG_SIZE)
fn attention_backward_key(inv: Invocation) {
    transposed_gradient(inv, KEY_PART);
}

@compute @workgroup_size(WG_SIZE)
fn attention_backward_value(inv: Invocation) {
    transposed_gradient(inv, VALUE_PART);
}
