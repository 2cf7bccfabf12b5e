// nn_tokens.wgsl: the token plumbing of a vision transformer.
//
//   patchify:      images [B, C, H, W] -> tokens [B, P, C * p * p], P = (H / p) * (W / p),
//                  patches in row-major order, features in (c, ky, kx) order: a Linear
//                  on these tokens equals timm's Conv2d patch embedding whose weight
//                  [D, C, p, p] is read as [D, C * p * p].
//   prepend:       tokens [B, N, D], token [D] -> [B, N + 1, D] (class token first).
//   pool:          tokens [B, N, D] -> [B, D], the mean over tokens (mode POOL_MEAN)
//                  or the token at params.index (POOL_SELECT, a gather).
//   gather_tokens: tokens x [B, S, D] and ids [B, T] (u32) -> [B, T, D], out[b, t] =
//                  x[b, ids[b, t]] (MAE's visible tokens: S = N patches, T = K kept).
//   unshuffle:     the same gather where an id >= S takes the fill token other [D]
//                  instead (MAE's decoder input: S = K encoded tokens, T = N, ids =
//                  ids_restore, the fill is the mask token).
//
// The gathers' backward passes are deterministic scatter-adds without atomics: each
// source token's gradient sums, in ascending t, the output tokens that read it (one
// invocation per element scans the sample's T ids), and the fill token's gradient
// sums every output token that took it, in ascending (b, t) (per-sample partial
// sums added in b order).
//
// One invocation per output element. Gradient outputs are overwritten, or added to
// when params.accumulate != 0.
//
// Entry points and the bindings each uses:
//   patchify_forward:        params, x (images), out (tokens)
//   patchify_backward:       params, dy (tokens), out (images)
//   prepend_forward:         params, x (tokens), other (token), out
//   prepend_backward_tokens: params, dy, out (tokens)
//   prepend_backward_token:  params, dy, out (token), summed over the batch
//   pool_forward:            params, x, out
//   pool_backward:           params, dy, out
//   gather_tokens_forward:   params, x (sources), ids, out
//   unshuffle_forward:       params, x (sources), other (fill token), ids, out
//   gather_tokens_backward:  params, ids, dy, out (sources' gradient)
//   unshuffle_backward_fill: params, ids, dy, out (fill token's gradient)
//
// WG_SIZE comes from the generated constants, Invocation and flat_index from
// lib/grid.wgsl and accumulated from lib/accumulate.wgsl (src/nn/kernels.rs assembles
// the module).
//
// Bindings (group 0), declared by the builder from TOKENS in src/nn/ops/tokens.rs,
// which also defines the uniform block TokParams (`len` is the invocation space of
// each entry point; for patchify `tokens` is the patches per image and `dim` is
// C * p * p; for the gathers `tokens` is T and `sources` is S):
//   params  uniform      TokParams
//   x       storage r    input
//   other   storage r    the prepended token, the gathers' fill token
//   ids     storage r    the gathers' source token per output token [B, T] (u32)
//   dy      storage r    upstream gradient
//   out     storage rw   output values or gradient

// Pooling modes (TokParams.mode).
const POOL_MEAN: u32 = 0u;
const POOL_SELECT: u32 = 1u;

// Element `i` of a [batch, n, dim] tensor as (batch, token, feature).
struct TokenAt {
    b: u32,
    t: u32,
    d: u32,
}

fn token_at(i: u32, n: u32) -> TokenAt {
    return TokenAt(i / (params.dim * n), (i / params.dim) % n, i % params.dim);
}

// Image element (c, yy, xx) of patch feature f of patch token `token`: patches in
// row-major order, features in (c, ky, kx) order.
fn pixel_of(token: u32, f: u32) -> vec3<u32> {
    let p = params.patch_size;
    let grid_w = params.width / p;
    let yy = (token / grid_w) * p + (f / p) % p;
    let xx = (token % grid_w) * p + f % p;
    return vec3<u32>(f / (p * p), yy, xx);
}

// The patch token and feature that hold image element (c, yy, xx): pixel_of inverted.
fn feature_of(c: u32, yy: u32, xx: u32) -> vec2<u32> {
    let p = params.patch_size;
    let token = (yy / p) * (params.width / p) + xx / p;
    return vec2<u32>(token, c * p * p + (yy % p) * p + xx % p);
}

@compute @workgroup_size(WG_SIZE)
fn patchify_forward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let at = token_at(i, params.tokens);
        let px = pixel_of(at.t, at.d);
        out[i] = x[((at.b * params.channels + px.x) * params.height + px.y) * params.width + px.z];
    }
}

@compute @workgroup_size(WG_SIZE)
fn patchify_backward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let xx = i % params.width;
        let yy = (i / params.width) % params.height;
        let c = (i / (params.width * params.height)) % params.channels;
        let b = i / (params.width * params.height * params.channels);
        let tf = feature_of(c, yy, xx);
        let g = dy[(b * params.tokens + tf.x) * params.dim + tf.y];
        out[i] = accumulated(g, out[i], params.accumulate);
    }
}

@compute @workgroup_size(WG_SIZE)
fn prepend_forward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let at = token_at(i, params.tokens + 1u);
        if at.t == 0u {
            out[i] = other[at.d];
        } else {
            out[i] = x[(at.b * params.tokens + at.t - 1u) * params.dim + at.d];
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn prepend_backward_tokens(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let at = token_at(i, params.tokens);
        let g = dy[(at.b * (params.tokens + 1u) + at.t + 1u) * params.dim + at.d];
        out[i] = accumulated(g, out[i], params.accumulate);
    }
}

@compute @workgroup_size(WG_SIZE)
fn prepend_backward_token(inv: Invocation) {
    let d = flat_index(inv);
    if d < params.dim {
        var s = 0.0;
        for (var b = 0u; b < params.batch; b++) {
            s += dy[b * (params.tokens + 1u) * params.dim + d];
        }
        out[d] = accumulated(s, out[d], params.accumulate);
    }
}

@compute @workgroup_size(WG_SIZE)
fn pool_forward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let d = i % params.dim;
        let b = i / params.dim;
        let base = b * params.tokens * params.dim + d;
        if params.mode == POOL_SELECT {
            out[i] = x[base + params.index * params.dim];
        } else {
            var s = 0.0;
            for (var t = 0u; t < params.tokens; t++) {
                s += x[base + t * params.dim];
            }
            out[i] = s / f32(params.tokens);
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn pool_backward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let at = token_at(i, params.tokens);
        let g = dy[at.b * params.dim + at.d];
        var v = g / f32(params.tokens);
        if params.mode == POOL_SELECT {
            v = select(0.0, g, at.t == params.index);
        }
        out[i] = accumulated(v, out[i], params.accumulate);
    }
}

// The source token of output token t of sample b: its id, or params.sources (the
// fill token) for an id at or above it. Ids are checked where the caller uploads
// them (Graph::record_write_ids); a gather without fill reads an unchecked id as the
// last source token, so nothing is read out of bounds.
fn source_of(b: u32, t: u32) -> u32 {
    return min(ids[b * params.tokens + t], params.sources);
}

// Element d of source token s of sample b.
fn source_element(b: u32, s: u32, d: u32) -> u32 {
    return (b * params.sources + s) * params.dim + d;
}

// Feature d of the upstream gradient summed over the output tokens of sample b whose
// source is `source` (params.sources: the fill token), in ascending token order.
fn sum_from_source(b: u32, source: u32, d: u32) -> f32 {
    var g = 0.0;
    for (var t = 0u; t < params.tokens; t++) {
        if source_of(b, t) == source {
            g += dy[(b * params.tokens + t) * params.dim + d];
        }
    }
    return g;
}

@compute @workgroup_size(WG_SIZE)
fn gather_tokens_forward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let at = token_at(i, params.tokens);
        let s = min(source_of(at.b, at.t), params.sources - 1u);
        out[i] = x[source_element(at.b, s, at.d)];
    }
}

@compute @workgroup_size(WG_SIZE)
fn unshuffle_forward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let at = token_at(i, params.tokens);
        let s = source_of(at.b, at.t);
        if s < params.sources {
            out[i] = x[source_element(at.b, s, at.d)];
        } else {
            out[i] = other[at.d];
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn gather_tokens_backward(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        let at = token_at(i, params.sources);
        let g = sum_from_source(at.b, at.t, at.d);
        out[i] = accumulated(g, out[i], params.accumulate);
    }
}

@compute @workgroup_size(WG_SIZE)
fn unshuffle_backward_fill(inv: Invocation) {
    let d = flat_index(inv);
    if d < params.dim {
        var g = 0.0;
        for (var b = 0u; b < params.batch; b++) {
            g += sum_from_source(b, params.sources, d);
        }
        out[d] = accumulated(g, out[d], params.accumulate);
    }
}
