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

// Where pair `p` (one invocation's) lives: its two elements and its (cos, sin) entry
// in the table.
struct Pair {
    // The invocation's pair: past `pairs` in the grid's last workgroup, where the
    // invocation does nothing.
    index: u32,
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
    return Pair(p, first, first + params.half, 2u * (t * params.half + i));
}

// Stores (a, b) rotated by `direction` times the pair's angle into the pair's
// elements of out (added to them when params.accumulate is set: the forward pass
// never sets it).
fn store_rotated(pair: Pair, a: f32, b: f32, direction: f32) {
    let c = cos_sin[pair.table];
    let s = direction * cos_sin[pair.table + 1u];
    let first = a * c - b * s;
    let second = b * c + a * s;
    out[pair.first] = accumulated(first, out[pair.first], params.accumulate);
    out[pair.second] = accumulated(second, out[pair.second], params.accumulate);
}

@compute @workgroup_size(WG_SIZE)
fn rope_forward(inv: Invocation) {
    let pair = pair_at(flat_index(inv));
    if pair.index < params.pairs {
        store_rotated(pair, x[pair.first], x[pair.second], FORWARD);
    }
}

@compute @workgroup_size(WG_SIZE)
fn rope_backward(inv: Invocation) {
    let pair = pair_at(flat_index(inv));
    if pair.index < params.pairs {
        store_rotated(pair, dy[pair.first], dy[pair.second], INVERSE);
    }
}
