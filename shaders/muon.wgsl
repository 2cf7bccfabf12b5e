// muon.wgsl: Muon's element-wise passes around the Newton-Schulz products
// (src/optim/muon/gpu.rs), one dispatch per matrix and pass.
//
// Generated constants: WG_SIZE (invocations per workgroup, a power of two), ITEMS
// (elements per invocation in the chunked passes).
//
// Bindings (group 0):
//   0 tensor    uniform      MuonTensor: the matrix's sizes and places
//   1 step      uniform      MuonStep: this step's rates and switches
//   2 param     storage rw   parameters (the matrix starts at tensor.param_base)
//   3 grad      storage r    gradients (from tensor.grad_base)
//   4 momentum  storage rw   the matrix's momentum buffer
//   5 x         storage rw   the Newton-Schulz batch: its input in `measure` and
//                            `normalize`, its output in `apply` (from tensor.x_base)
//   6 partials  storage rw   per chunk: (agreeing count, bitcast sum of squares)
//   7 factors   storage rw   per matrix: the factor that normalizes X
//
// The matrix is `rows x cols` (timm's flattened (out, in * spatial)); X holds it
// transposed when `transposed` (rows > cols), as timm's zeropower_via_newtonschulz.

struct MuonTensor {
    len: u32,
    rows: u32,
    cols: u32,
    transposed: u32,
    param_base: u32,
    grad_base: u32,
    x_base: u32,
    partial_base: u32,
    chunks: u32,
    index: u32,
    // lr scale of timm's adjust_lr_fn for this matrix
    lr_scale: f32,
    pad: u32,
}

struct MuonStep {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    eps: f32,
    nesterov: u32,
    caution: u32,
    // mask weight of a disagreeing coordinate (0: hard mask)
    disagree: f32,
    // NORM_MEAN_CLAMP, NORM_NUMEL_OVER_COUNT_PLUS_ONE or NORM_MEAN_PLUS_EPS
    norm_kind: u32,
    // min of mean_clamp, eps of mean_plus_eps
    norm_param: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

const NORM_MEAN_CLAMP: u32 = 0u;
const NORM_NUMEL_OVER_COUNT_PLUS_ONE: u32 = 1u;
const NORM_MEAN_PLUS_EPS: u32 = 2u;

@group(0) @binding(0) var<uniform> tensor: MuonTensor;
@group(0) @binding(1) var<uniform> step: MuonStep;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> momentum: array<f32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<vec2<u32>>;
@group(0) @binding(7) var<storage, read_write> factors: array<f32>;

// Where element `i` (row-major in the matrix) lives in X.
fn x_index(i: u32) -> u32 {
    if tensor.transposed == 0u {
        return tensor.x_base + i;
    }
    let r = i / tensor.cols;
    let c = i % tensor.cols;
    return tensor.x_base + c * tensor.rows + r;
}

// Momentum (timm: buf.lerp_(g, 1 - momentum)), the (Nesterov) update, C-Optim's mask
// of momentum against gradient; writes the masked update into X and sums, per chunk,
// the agreeing count and the squares of the masked update.
@compute @workgroup_size(WG_SIZE)
fn measure(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let chunk = workgroup_linear(wg, nwg);
    var kept = 0.0;
    var sumsq = 0.0;
    if chunk < tensor.chunks {
        for (var k = 0u; k < ITEMS; k++) {
            let i = (chunk * ITEMS + k) * WG_SIZE + lid;
            if i < tensor.len {
                let g = grad[tensor.grad_base + i];
                let m = momentum[i] + (1.0 - step.momentum) * (g - momentum[i]);
                momentum[i] = m;
                var u = m;
                if step.nesterov != 0u {
                    u = g + step.momentum * (m - g);
                }
                let agree = m * g > 0.0;
                kept += select(0.0, 1.0, agree);
                if step.caution != 0u && !agree {
                    u *= step.disagree;
                }
                sumsq += u * u;
                x[x_index(i)] = u;
            }
        }
    }
    let kept_sum = workgroup_sum(kept, lid);
    let sumsq_sum = workgroup_sum(sumsq, lid);
    if lid == 0u && chunk < tensor.chunks {
        partials[tensor.partial_base + chunk] = vec2<u32>(u32(kept_sum), bitcast<u32>(sumsq_sum));
    }
}

// The caution scale of `kept` agreeing coordinates out of `n` (config.rs
// Normalization::scale).
fn caution_scale(kept: f32, n: f32) -> f32 {
    let mask_sum = kept + step.disagree * (n - kept);
    switch step.norm_kind {
        case NORM_NUMEL_OVER_COUNT_PLUS_ONE: {
            return n / (mask_sum + 1.0);
        }
        case NORM_MEAN_PLUS_EPS: {
            return 1.0 / (mask_sum / n + step.norm_param);
        }
        default: {
            return 1.0 / max(mask_sum / n, step.norm_param);
        }
    }
}

// One workgroup: the matrix's count and norm from its chunks, and the factor
// scale / max(scale * ||u * mask||, eps) that normalizes X (timm clamps the norm).
@compute @workgroup_size(WG_SIZE)
fn finalize(@builtin(local_invocation_index) lid: u32) {
    var kept = 0u;
    var sumsq = 0.0;
    for (var c = lid; c < tensor.chunks; c += WG_SIZE) {
        let part = partials[tensor.partial_base + c];
        kept += part.x;
        sumsq += bitcast<f32>(part.y);
    }
    // per-invocation counts stay far below 2^24: exact as f32
    let kept_total = workgroup_sum(f32(kept), lid);
    let sumsq_total = workgroup_sum(sumsq, lid);
    if lid == 0u {
        var scale = 1.0;
        if step.caution != 0u {
            scale = caution_scale(kept_total, f32(tensor.len));
        }
        let norm = scale * sqrt(sumsq_total);
        factors[tensor.index] = scale / max(norm, step.eps);
    }
}

// X *= factor: the masked, rescaled update divided by its Frobenius norm.
@compute @workgroup_size(WG_SIZE)
fn normalize(inv: Invocation) {
    let i = flat_index(inv);
    if i < tensor.len {
        x[tensor.x_base + i] *= factors[tensor.index];
    }
}

// p = p * (1 - lr * wd) - lr * lr_scale * O, O the orthogonalized update.
@compute @workgroup_size(WG_SIZE)
fn apply(inv: Invocation) {
    let i = flat_index(inv);
    if i < tensor.len {
        let j = tensor.param_base + i;
        let decayed = param[j] * (1.0 - step.lr * step.weight_decay);
        param[j] = decayed - step.lr * tensor.lr_scale * x[x_index(i)];
    }
}
