// nn_tokens.wgsl: the token plumbing of a vision transformer.
//
//   patchify:      images [B, C, H, W] -> tokens [B, P, C * p * p], P = (H / p) * (W / p),
//                  patches in row-major order, features in (c, ky, kx) order: a Linear
//                  on these tokens equals timm's Conv2d patch embedding whose weight
//                  [D, C, p, p] is read as [D, C * p * p].
//   prepend:       tokens [B, N, D], token [D] -> [B, N + 1, D] (class token first).
//   pool:          tokens [B, N, D] -> [B, D], the mean over tokens (mode POOL_MEAN)
//                  or the token at params.index (POOL_SELECT, a gather).
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
//
// WG_SIZE comes from the generated constants and invocation_linear from
// lib/grid.wgsl (src/nn/kernels.rs assembles the module).
//
// Bindings (group 0):
//   0 params  uniform      TokParams
//   1 x       storage r    input
//   2 other   storage r    the prepended token
//   3 dy      storage r    upstream gradient
//   4 out     storage rw   output values or gradient

// Pooling modes (TokParams.mode).
const POOL_MEAN: u32 = 0u;
const POOL_SELECT: u32 = 1u;

struct TokParams {
    // Elements of the invocation space (output or input, per entry point).
    len: u32,
    batch: u32,
    // Tokens (N); for patchify the patches per image (P).
    tokens: u32,
    // Features per token (D); for patchify C * p * p.
    dim: u32,
    channels: u32,
    height: u32,
    width: u32,
    patch_size: u32,
    mode: u32,
    index: u32,
    accumulate: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: TokParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> other: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn store_grad(i: u32, v: f32) {
    if params.accumulate != 0u {
        out[i] += v;
    } else {
        out[i] = v;
    }
}

@compute @workgroup_size(WG_SIZE)
fn patchify_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_linear(wg, nwg, lid);
    if i < params.len {
        let p = params.patch_size;
        let grid_w = params.width / p;
        let per_image = params.tokens * params.dim;
        let b = i / per_image;
        let token = (i % per_image) / params.dim;
        let f = i % params.dim;
        let c = f / (p * p);
        let ky = (f / p) % p;
        let kx = f % p;
        let yy = (token / grid_w) * p + ky;
        let xx = (token % grid_w) * p + kx;
        out[i] = x[((b * params.channels + c) * params.height + yy) * params.width + xx];
    }
}

@compute @workgroup_size(WG_SIZE)
fn patchify_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_linear(wg, nwg, lid);
    if i < params.len {
        let p = params.patch_size;
        let grid_w = params.width / p;
        let xx = i % params.width;
        let yy = (i / params.width) % params.height;
        let c = (i / (params.width * params.height)) % params.channels;
        let b = i / (params.width * params.height * params.channels);
        let token = (yy / p) * grid_w + xx / p;
        let f = c * p * p + (yy % p) * p + xx % p;
        store_grad(i, dy[(b * params.tokens + token) * params.dim + f]);
    }
}

@compute @workgroup_size(WG_SIZE)
fn prepend_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_linear(wg, nwg, lid);
    if i < params.len {
        let d = i % params.dim;
        let t = (i / params.dim) % (params.tokens + 1u);
        let b = i / (params.dim * (params.tokens + 1u));
        if t == 0u {
            out[i] = other[d];
        } else {
            out[i] = x[(b * params.tokens + t - 1u) * params.dim + d];
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn prepend_backward_tokens(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_linear(wg, nwg, lid);
    if i < params.len {
        let d = i % params.dim;
        let t = (i / params.dim) % params.tokens;
        let b = i / (params.dim * params.tokens);
        store_grad(i, dy[(b * (params.tokens + 1u) + t + 1u) * params.dim + d]);
    }
}

@compute @workgroup_size(WG_SIZE)
fn prepend_backward_token(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let d = invocation_linear(wg, nwg, lid);
    if d < params.dim {
        var s = 0.0;
        for (var b = 0u; b < params.batch; b++) {
            s += dy[b * (params.tokens + 1u) * params.dim + d];
        }
        store_grad(d, s);
    }
}

@compute @workgroup_size(WG_SIZE)
fn pool_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_linear(wg, nwg, lid);
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
fn pool_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_linear(wg, nwg, lid);
    if i < params.len {
        let d = i % params.dim;
        let t = (i / params.dim) % params.tokens;
        let b = i / (params.dim * params.tokens);
        let g = dy[b * params.dim + d];
        var v = g / f32(params.tokens);
        if params.mode == POOL_SELECT {
            v = select(0.0, g, t == params.index);
        }
        store_grad(i, v);
    }
}
