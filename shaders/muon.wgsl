// muon.wgsl: Muon's element-wise passes around the Newton-Schulz products
// (src/optim/muon/gpu.rs), one dispatch per matrix and pass: measure, finalize,
// normalize and, after the products, apply. They run after grad_norm.wgsl's passes
// over every gradient (the fallback AdamW's tensors too), whose status says whether
// the step is skipped (a NaN or an infinity: momentum and parameters untouched) and
// by what the gradients are scaled (the clip coefficient, 1 when not clipping).
//
// Generated constants: WG_SIZE (invocations per workgroup, a power of two), ITEMS
// (elements per invocation in the chunked passes); generated structs: MuonTensor,
// MuonStep (src/optim/muon/words.rs), and bindings 0-3 (tensor_module of
// src/optim/own_kernels.rs).
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
//   8 status    storage rw   OwnStatus (lib/own_status.wgsl): the step's non-finite
//                            flag and clip coefficient
//
// The matrix is `rows x cols` (timm's flattened (out, in * spatial)); X holds it
// transposed when `transposed` (rows > cols), as timm's zeropower_via_newtonschulz.

@group(0) @binding(4) var<storage, read_write> momentum: array<f32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<vec2<u32>>;
@group(0) @binding(7) var<storage, read_write> factors: array<f32>;
@group(0) @binding(8) var<storage, read_write> status: OwnStatus;

// Where element `i` (row-major in the matrix) lives in X.
fn x_index(i: u32) -> u32 {
    if tensor.transposed == 0u {
        return tensor.x_base + i;
    }
    let r = i / tensor.cols;
    let c = i % tensor.cols;
    return tensor.x_base + c * tensor.rows + r;
}

// Momentum (timm: buf.lerp_(g, 1 - momentum)) of the (clipped) gradient, the
// (Nesterov) update, C-Optim's mask of momentum against gradient; writes the masked
// update into X and leaves, per chunk, the agreeing count and the bits of the sum of squares of the masked update.
@compute @workgroup_size(WG_SIZE)
fn measure(inv: Invocation) {
    let chunk = chunk_of(inv);
    let lid = inv.lid;
    let live = chunk < tensor.chunks && !skipping();
    var kept = 0u;
    var sumsq = 0.0;
    for (var k = 0u; k < ITEMS; k++) {
        let i = chunk_element(chunk, k, lid);
        if live && i < tensor.len {
            let g = grad[tensor.grad_base + i] * status.clip_coef;
            let m = momentum[i] + (1.0 - step.momentum) * (g - momentum[i]);
            momentum[i] = m;
            var u = m;
            if step.nesterov != 0u {
                u = g + step.momentum * (m - g);
            }
            let agree = m * g > 0.0;
            kept += select(0u, 1u, agree);
            if step.caution != 0u && !agree {
                u *= step.disagree;
            }
            sumsq += u * u;
            x[x_index(i)] = u;
        }
    }
    let kept_sum = workgroup_count(kept, lid);
    let sumsq_sum = workgroup_sum(sumsq, lid);
    if lid == 0u && live {
        partials[tensor.partial_base + chunk] = vec2<u32>(kept_sum, bitcast<u32>(sumsq_sum));
    }
}

// One workgroup: the matrix's count and norm from its chunks, and the factor
// scale / max(scale * ||u * mask||, eps) that normalizes X (timm clamps the norm).
@compute @workgroup_size(WG_SIZE)
fn finalize(@builtin(local_invocation_index) lid: u32) {
    let kept = partials_count(0u, lid);
    let sumsq = partials_sum(1u, lid);
    if lid == 0u {
        if skipping() {
            return;
        }
        var scale = 1.0;
        if step.caution != 0u {
            scale = caution_scale(kept, tensor.len, step.disagree, step.norm_kind, step.norm_param);
        }
        let norm = scale * sqrt(sumsq);
        factors[tensor.index] = scale / max(norm, step.eps);
    }
}

// X *= factor: the masked, rescaled update divided by its Frobenius norm.
@compute @workgroup_size(WG_SIZE)
fn normalize(inv: Invocation) {
    let i = flat_index(inv);
    if i < tensor.len && !skipping() {
        x[tensor.x_base + i] *= factors[tensor.index];
    }
}

// p = p * (1 - lr * wd) - lr * lr_scale * O, O the orthogonalized update.
@compute @workgroup_size(WG_SIZE)
fn apply(inv: Invocation) {
    let i = flat_index(inv);
    if i < tensor.len && !skipping() {
        let j = tensor.param_base + i;
        let decayed = param[j] * (1.0 - step.lr * step.weight_decay);
        param[j] = decayed - step.lr * tensor.lr_scale * x[x_index(i)];
    }
}
