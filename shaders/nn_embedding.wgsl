// nn_embedding.wgsl: token embedding (a gather of table rows) and its gradient (a
// scatter-add into the table's gradient), deterministic and without atomics.
//
//   forward:  out[t, d] = weight[ids[t], d]                 for the N = ids' tokens
//   backward: dweight[r, d] = sum over t with ids[t] = r of dy[t, d], summed in
//             ascending t, so every run gives the same bits.
//
// The backward pass first builds a token list per table row (embedding_index: one
// invocation per row r scans the ids, O(V N) in all), then sums each row's tokens
// (embedding_backward: one invocation per (row, feature), O(N D + V D) in all).
// token_index holds, for row r, its first list entry at [2 r] and its token count at
// [2 r + 1]; the lists start at [2 V]: first the tokens of row 0 in ascending order,
// then those of row 1, ...
//
// Ids are checked against V where the caller uploads them (Graph::record_write_ids);
// an id >= V that bypasses that check is read as V - 1 here (never out of bounds).
//
// Entry points and the bindings each uses:
//   embedding_forward:  one invocation per output element   weight, ids, out
//   embedding_index:    one invocation per table row        ids, token_index
//   embedding_backward: one invocation per table element    dy, token_index, dweight
//
// WG_SIZE comes from the generated constants, Invocation and flat_index from
// lib/grid.wgsl and accumulated from lib/accumulate.wgsl (src/nn/kernels.rs assembles
// the module).
//
// Bindings (group 0), declared by the builder from EMBEDDING in
// src/nn/ops/embedding.rs, which also defines the uniform block EmbParams:
//   params       uniform      EmbParams (tokens N, vocab V, dim D, accumulate)
//   weight       storage r    the table [V, D]
//   ids          storage r    [N] (u32)
//   out          storage rw   [N, D]
//   dy           storage r    [N, D] upstream gradient
//   token_index  storage rw   [2 V + N] (u32) the per-row token lists
//   dweight      storage rw   [V, D] the table's gradient (added to when
//                             params.accumulate != 0)

// Where the token lists start in token_index.
fn lists_start() -> u32 {
    return 2u * params.vocab;
}

// The table row of token t.
fn row_of(t: u32) -> u32 {
    return min(ids[t], params.vocab - 1u);
}

@compute @workgroup_size(WG_SIZE)
fn embedding_forward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.tokens * params.dim {
        let t = i / params.dim;
        out[i] = weight[row_of(t) * params.dim + i % params.dim];
    }
}

@compute @workgroup_size(WG_SIZE)
fn embedding_index(inv: Invocation) {
    let r = flat_index(inv);
    if r >= params.vocab {
        return;
    }
    // Tokens of lower rows come first in the lists.
    var first = 0u;
    var count = 0u;
    for (var t = 0u; t < params.tokens; t++) {
        let row = row_of(t);
        first += u32(row < r);
        count += u32(row == r);
    }
    token_index[2u * r] = first;
    token_index[2u * r + 1u] = count;
    var at = lists_start() + first;
    for (var t = 0u; t < params.tokens; t++) {
        if row_of(t) == r {
            token_index[at] = t;
            at++;
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn embedding_backward(inv: Invocation) {
    let i = flat_index(inv);
    if i >= params.vocab * params.dim {
        return;
    }
    let r = i / params.dim;
    let d = i % params.dim;
    let first = lists_start() + token_index[2u * r];
    let end = first + token_index[2u * r + 1u];
    var sum = 0.0;
    for (var at = first; at < end; at++) {
        sum += dy[token_index[at] * params.dim + d];
    }
    dweight[i] = accumulated(sum, dweight[i], params.accumulate);
}
