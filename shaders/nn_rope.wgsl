// nn_rope.wgsl: rotary position embedding (RoPE) in HF's rotate_half convention, and
// its gradient.
//
// x is [batch, tokens, heads * head_dim] with features ordered (head, head_dim); the
// token index is the position t. Within each head, features i and i + half
// (half = head_dim / 2) form a pair rotated by angle(t, i) = t * theta^(-2i / head_dim):
//   y1 = x1 cos - x2 sin,   y2 = x2 cos + x1 sin
// The gradient is the inverse rotation (sin negated):
//   dx1 = dy1 cos + dy2 sin,   dx2 = dy2 cos - dy1 sin
// One invocation per pair, over a 2-D grid of workgroups (lib/grid.wgsl) so that
// large tensors stay under the per-dimension dispatch limit. cos and sin come from a
// table the host computes in f32 as PyTorch does (src/nn/ops/rope.rs): WGSL's cos and
// sin promise no accuracy for arguments as large as t (up to the context length).
//
// Entry points and the bindings each uses:
//   rope_forward:   out = rotate(x, +angle)                     params, x, cos_sin, out
//   rope_backward:  out (+)= rotate(dy, -angle)                 params, dy, cos_sin, out
//
// WG_SIZE comes from the generated constants, Invocation and flat_index from
// lib/grid.wgsl and accumulated from lib/accumulate.wgsl (src/nn/kernels.rs assembles
// the module).
//
// Bindings (group 0), declared by the builder from ROPE in src/nn/ops/rope.rs, which
// also defines the uniform block RopeParams:
//   params   uniform      RopeParams
//   x        storage r    input [batch, tokens, heads * head_dim]
//   dy       storage r    upstream gradient, the shape of x
//   cos_sin  storage r    [tokens, half, 2]: cos and sin of angle(t, i)
//   out      storage rw   output (forward) or the gradient of x (backward:
//                         params.accumulate adds instead of overwriting)

// Rotation directions: forward, and back (the gradient).
const FORWARD: f32 = 1.0;
const INVERSE: f32 = -1.0;

// Where pair `p` lives: its two elements and its (cos, sin) entry in the table.
struct Pair {
    first: u32,
    second: u32,
    table: u32,
}

fn pair_at(p: u32) -> Pair {
    let i = p % params.half;
    // Pairs are ordered (batch, token, head, i): `row` counts (batch, token, head).
    let row = p / params.half;
    let t = (row / params.heads) % params.tokens;
    let first = row * 2u * params.half + i;
    return Pair(first, first + params.half, 2u * (t * params.half + i));
}

// (a, b) rotated by `direction` times the pair's angle.
fn rotated(a: f32, b: f32, pair: Pair, direction: f32) -> vec2<f32> {
    let c = cos_sin[pair.table];
    let s = direction * cos_sin[pair.table + 1u];
    return vec2(a * c - b * s, b * c + a * s);
}

@compute @workgroup_size(WG_SIZE)
fn rope_forward(inv: Invocation) {
    let p = flat_index(inv);
    if p < params.pairs {
        let pair = pair_at(p);
        let r = rotated(x[pair.first], x[pair.second], pair, FORWARD);
        out[pair.first] = r.x;
        out[pair.second] = r.y;
    }
}

@compute @workgroup_size(WG_SIZE)
fn rope_backward(inv: Invocation) {
    let p = flat_index(inv);
    if p < params.pairs {
        let pair = pair_at(p);
        let r = rotated(dy[pair.first], dy[pair.second], pair, INVERSE);
        out[pair.first] = accumulated(r.x, out[pair.first], params.accumulate);
        out[pair.second] = accumulated(r.y, out[pair.second], params.accumulate);
    }
}
