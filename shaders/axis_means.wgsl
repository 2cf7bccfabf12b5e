// axis_means.wgsl: Adafactor's factored second-moment inputs, the means of x^2 + eps
// along each of two dimensions of every tensor of a table (src/optim/axis_means.rs).
//
// A tensor factored over dimensions p < q is viewed as [outer, n_p, mid, n_q, inner]
// (src/optim/factored.rs). Its outputs, from AxisEntry.out on: the means over q
// (shape [outer, n_p, mid, inner], row-major), then the means over p (shape
// [outer, mid, n_q, inner]). One invocation computes one output: it sums its line of
// the tensor with lib/line_sum.wgsl (chunks of SUM_CHUNK consecutive terms, their sums
// added in order: deterministic and without atomics). Adjacent invocations read adjacent elements
// along the means over p (coalesced); along the means over q each reads its own line.
//
// Bindings (group 0):
//   0 src      storage r    the tensors' elements (f32), each from AxisEntry.src
//   1 out      storage rw   the means (f32), each tensor's from AxisEntry.out
//   2 tensors  storage r    AxisEntry per tensor, in increasing `out`
//   3 params   uniform      AxisParams
// Generated constants: WG_SIZE (u32), SUM_CHUNK (u32); generated structs: AxisEntry,
// AxisParams (src/optim/axis_means.rs).

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> tensors: array<AxisEntry>;
@group(0) @binding(3) var<uniform> params: AxisParams;

// A line of a tensor: `count` elements from `first`, `stride` apart.
struct Line {
    first: u32,
    stride: u32,
    count: u32,
}

// The tensor whose outputs hold output `o` (the last with out <= o).
fn tensor_of(o: u32) -> u32 {
    var lo = 0u;
    var hi = params.num_tensors;
    while hi - lo > 1u {
        let mid = (lo + hi) / 2u;
        if tensors[mid].out <= o {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// The line behind output `j` of tensor `t` (counted from its first output).
fn line_of(t: AxisEntry, j: u32) -> Line {
    let q_len = t.outer * t.n_p * t.mid * t.inner;
    if j < q_len {
        // (outer, p, mid, inner): the line runs along q.
        let k = j % t.inner;
        let rest = j / t.inner;
        let m = rest % t.mid;
        let op = rest / t.mid;
        return Line(t.src + (op * t.mid + m) * t.n_q * t.inner + k, t.inner, t.n_q);
    }
    // (outer, mid, q, inner): the line runs along p.
    let i = j - q_len;
    let k = i % t.inner;
    let rest = i / t.inner;
    let iq = rest % t.n_q;
    let om = rest / t.n_q;
    let m = om % t.mid;
    let o = om / t.mid;
    let first = ((o * t.n_p * t.mid + m) * t.n_q + iq) * t.inner + k;
    return Line(t.src + first, t.mid * t.n_q * t.inner, t.n_p);
}

// The terms a line sums: x^2 + eps.
fn line_term(at: u32) -> f32 {
    let x = src[at];
    return x * x + params.eps;
}

@compute @workgroup_size(WG_SIZE)
fn axis_means(inv: Invocation) {
    let o = flat_index(inv);
    if o >= params.num_outputs {
        return;
    }
    let t = tensors[tensor_of(o)];
    let line = line_of(t, o - t.out);
    out[o] = line_sum(line.first, line.stride, line.count) / f32(line.count);
}
