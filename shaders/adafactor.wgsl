// adafactor.wgsl: the Adafactor family's step (src/optim/adafactor/gpu.rs), one
// dispatch per tensor and pass, after the axis means of g^2 + eps
// (shaders/axis_means.wgsl) for the factored tensors, and after grad_norm.wgsl's
// passes over every gradient, whose status (lib/own_status.wgsl) holds the step t
// (completed steps, this one included), whether the step is skipped (a NaN or an
// infinity: no state or parameter is written) and the clip coefficient that scales
// every gradient (1 when not clipping). The f64 reference is
// src/optim/adafactor_reference.rs.
//
// Passes, in order: ema (second moment), row_scale (factored: mean of the row
// moment over the column-reduced dimension), measure (per chunk: sum of u^2 and of
// p^2), finalize_clip (per tensor: clip divisor and learning rate), momentum (first
// moment and, per chunk, the agreeing count), finalize_caution (per tensor: caution
// scale), apply.
//
// Generated constants: WG_SIZE (invocations per workgroup, a power of two), ITEMS
// (elements per invocation in the chunked passes, even), SUM_CHUNK (terms summed in
// order before joining a line's total), FACTOR_WORDS (scratch words per tensor);
// generated structs: AdaTensor, AdaStep (src/optim/adafactor/words.rs), and
// bindings 0-3 (tensor_module of src/optim/own_kernels.rs).
// Shared helpers: lib/grid.wgsl, lib/chunk_partials.wgsl (with workgroup_sum
// and lib/workgroup_count.wgsl, its chunk_partial and chunk_count from
// lib/tensor_partials.wgsl), lib/caution_scale.wgsl, lib/line_sum.wgsl.
//
// Bindings (group 0):
//   0 tensor    uniform      AdaTensor: the tensor's sizes and places
//   1 step      uniform      AdaStep: this step's rates and switches
//   2 param     storage rw   parameters (from tensor.param_base)
//   3 grad      storage r    gradients (from tensor.grad_base)
//   4 moment    storage rw   the first moment: f32 bits per element, or two bf16 per
//                            word (element 2k low half) when step.bf16
//   5 second    storage rw   unfactored: the full second moment; factored: the EMA'd
//                            means laid out as `means` (from tensor.means_base)
//   6 means     storage r    factored: this step's means over q, then over p
//   7 scratch   storage rw   per tensor FACTOR_WORDS words (clip divisor, learning
//                            rate, caution scale), then each factored tensor's row
//                            scales (from tensor.both_base)
//   8 partials  storage rw   per chunk: two words (bitcast sums, or a count)
//   9 status    storage rw   OwnStatus: step t, non-finite flag, clip coefficient

// timm's rate: the external one, min(1e-2, 1/sqrt(t)), or min(1e-6 t, 1/sqrt(t))
// (warmup_init).
const RELATIVE_NONE: u32 = 0u;
const RELATIVE_STEP: u32 = 1u;
const RELATIVE_WARMUP: u32 = 2u;

// Words of a tensor's factors in `scratch`.
const CLIP_DIVISOR: u32 = 0u;
const RATE: u32 = 1u;
const CAUTION_SCALE: u32 = 2u;

@group(0) @binding(4) var<storage, read_write> moment: array<u32>;
@group(0) @binding(5) var<storage, read_write> second: array<f32>;
@group(0) @binding(6) var<storage, read> means: array<f32>;
@group(0) @binding(7) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(8) var<storage, read_write> partials: array<vec2<u32>>;
@group(0) @binding(9) var<storage, read_write> status: OwnStatus;

// The step t (from 1), counting completed steps only.
fn step_t() -> f32 {
    return f32(status.step);
}

// 1 - beta2_t of the step (AdafactorRule::second_moment_weight).
fn second_weight() -> f32 {
    let t = step_t();
    if step.big_vision == 0u {
        return pow(t, step.decay_rate);
    }
    let s = max(t - step.decay_offset, 1.0);
    return 1.0 - min(step.beta2_cap, 1.0 - pow(s, -step.decay_rate));
}

// The step's rate before the parameter scale (TimmAdafactor::base_lr).
fn base_lr() -> f32 {
    if step.relative == RELATIVE_NONE {
        return step.lr;
    }
    let t = step_t();
    let min_step = select(1e-2, 1e-6 * t, step.relative == RELATIVE_WARMUP);
    return min(min_step, 1.0 / sqrt(t));
}

// Element `i`'s gradient, clipped.
fn grad_at(i: u32) -> f32 {
    return grad[tensor.grad_base + i] * status.clip_coef;
}

// A mean of g^2 + eps (axis_means.wgsl, unclipped) as the mean of (c g)^2 + eps.
fn clipped_mean(m: f32) -> f32 {
    let c = status.clip_coef;
    if c == 1.0 {
        return m;
    }
    return c * c * (m - step.eps) + step.eps;
}

// The terms row_scale sums: the row moment.
fn line_term(at: u32) -> f32 {
    return second[at];
}

// torch's lerp: a + w (b - a) for w < 0.5, else b - (b - a)(1 - w).
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w < 0.5 {
        return a + w * (b - a);
    }
    return b - (b - a) * (1.0 - w);
}

fn factor(k: u32) -> f32 {
    return scratch[tensor.index * FACTOR_WORDS + k];
}

// bf16 bits (low 16) of `v`, rounded to nearest even (NaN kept quiet).
fn bf16_bits(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if (b & 0x7fffffffu) > 0x7f800000u {
        return (b >> 16u) | 0x40u;
    }
    return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

fn bf16_round(v: f32) -> f32 {
    return bitcast<f32>(bf16_bits(v) << 16u);
}

fn load_moment(i: u32) -> f32 {
    if step.bf16 == 0u {
        return bitcast<f32>(moment[i]);
    }
    let word = moment[i / 2u];
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (i & 1u) == 1u));
}

// Element `i`'s (row, column) moments' indices in `second`, and its row scale's.
struct FactorIndex {
    row: u32,
    col: u32,
    both: u32,
}

fn factor_index(i: u32) -> FactorIndex {
    let k = i % tensor.inner;
    let q = (i / tensor.inner) % tensor.n_q;
    let m = (i / (tensor.inner * tensor.n_q)) % tensor.mid;
    let op = i / (tensor.inner * tensor.n_q * tensor.mid);
    let o = op / tensor.n_p;
    let om = o * tensor.mid + m;
    let q_mean = (op * tensor.mid + m) * tensor.inner + k;
    let p_mean = (om * tensor.n_q + q) * tensor.inner + k;
    let q_len = tensor.outer * tensor.n_p * tensor.mid * tensor.inner;
    let q_at = tensor.means_base + q_mean;
    let p_at = tensor.means_base + q_len + p_mean;
    let both = tensor.both_base + om * tensor.inner + k;
    if tensor.rows_reduce_q == 1u {
        return FactorIndex(q_at, p_at, both);
    }
    return FactorIndex(p_at, q_at, both);
}

// The unclipped update of element `i`: g / sqrt(R / mean(R)) / sqrt(C), or g / sqrt(V).
fn update(i: u32) -> f32 {
    let g = grad_at(i);
    if tensor.factored == 0u {
        return g / sqrt(second[i]);
    }
    let f = factor_index(i);
    return g / sqrt(second[f.row] / scratch[f.both]) / sqrt(second[f.col]);
}

// The second moment's EMA: V from g^2 + eps, or the factored means from `means`.
@compute @workgroup_size(WG_SIZE)
fn ema(inv: Invocation) {
    let i = flat_index(inv);
    if i >= tensor.ema_len || skipping() {
        return;
    }
    if tensor.factored == 0u {
        let g = grad_at(i);
        second[i] = lerp(second[i], g * g + step.eps, second_weight());
    } else {
        let j = tensor.means_base + i;
        second[j] = lerp(second[j], clipped_mean(means[j]), second_weight());
    }
}

// The mean of the row moment over the column-reduced dimension, per (outer, mid,
// inner) index, summed in chunks of SUM_CHUNK as axis_means.wgsl (line_sum).
@compute @workgroup_size(WG_SIZE)
fn row_scale(inv: Invocation) {
    let b = flat_index(inv);
    if b >= tensor.outer * tensor.mid * tensor.inner {
        return;
    }
    let k = b % tensor.inner;
    let om = b / tensor.inner;
    var first: u32;
    var stride: u32;
    var count: u32;
    if tensor.rows_reduce_q == 1u {
        // R = means over q, [outer, n_p, mid, inner]: its line runs along p.
        let m = om % tensor.mid;
        let o = om / tensor.mid;
        first = tensor.means_base + (o * tensor.n_p * tensor.mid + m) * tensor.inner + k;
        stride = tensor.mid * tensor.inner;
        count = tensor.n_p;
    } else {
        // R = means over p, [outer, mid, n_q, inner]: its line runs along q.
        let q_len = tensor.outer * tensor.n_p * tensor.mid * tensor.inner;
        first = tensor.means_base + q_len + om * tensor.n_q * tensor.inner + k;
        stride = tensor.inner;
        count = tensor.n_q;
    }
    scratch[tensor.both_base + b] = line_sum(first, stride, count) / f32(count);
}

// Per chunk of WG_SIZE * ITEMS elements: the sums of u^2 and of p^2.
@compute @workgroup_size(WG_SIZE)
fn measure(inv: Invocation) {
    let chunk = chunk_of(inv);
    let lid = inv.lid;
    var u_sq = 0.0;
    var p_sq = 0.0;
    if chunk < tensor.chunks {
        for (var k = 0u; k < ITEMS; k++) {
            let i = chunk_element(chunk, k, lid);
            if i < tensor.len {
                let u = update(i);
                let p = param[tensor.param_base + i];
                u_sq += u * u;
                p_sq += p * p;
            }
        }
    }
    let u_total = workgroup_sum(u_sq, lid);
    let p_total = workgroup_sum(p_sq, lid);
    if lid == 0u && chunk < tensor.chunks {
        partials[tensor.partial_base + chunk] = vec2<u32>(bitcast<u32>(u_total), bitcast<u32>(p_total));
    }
}

// One workgroup: the clip divisor max(1, rms(u) / threshold) and the tensor's rate
// (times max(eps_scale, rms(p)) with the parameter scale).
@compute @workgroup_size(WG_SIZE)
fn finalize_clip(@builtin(local_invocation_index) lid: u32) {
    let u_sq = partials_sum(0u, lid);
    let p_sq = partials_sum(1u, lid);
    if lid == 0u {
        let n = f32(tensor.len);
        var divisor = 1.0;
        if step.clip_threshold > 0.0 {
            divisor = max(sqrt(u_sq / n) / step.clip_threshold, 1.0);
        }
        var rate = base_lr();
        if step.scale_parameter != 0u {
            rate *= max(step.eps_scale, sqrt(p_sq / n));
        }
        let at = tensor.index * FACTOR_WORDS;
        scratch[at + CLIP_DIVISOR] = divisor;
        scratch[at + RATE] = rate;
    }
}

// The clipped update of element `i`, times the rate for timm (whose momentum holds
// the step), unscaled for big_vision.
fn step_update(i: u32) -> f32 {
    let u = update(i) / factor(CLIP_DIVISOR);
    if step.big_vision != 0u {
        return u;
    }
    return u * factor(RATE);
}

// The first moment of element `i` (< len), updated; returns it.
fn new_moment(i: u32) -> f32 {
    let x = step_update(i);
    if step.bf16 == 0u {
        return lerp(load_moment(i), x, 1.0 - step.beta1);
    }
    return bf16_round(lerp(load_moment(i), bf16_round(x), 1.0 - step.beta1));
}

fn agrees(m: f32, i: u32) -> u32 {
    return select(0u, 1u, m * grad_at(i) > 0.0);
}

// Per chunk: the first moment of each pair of elements (one invocation writes both
// halves of a bf16 word) and the count of coordinates where it agrees with g.
@compute @workgroup_size(WG_SIZE)
fn momentum(inv: Invocation) {
    let chunk = chunk_of(inv);
    let lid = inv.lid;
    var kept = 0u;
    if chunk < tensor.chunks && !skipping() {
        for (var k = 0u; k < ITEMS / 2u; k++) {
            let i = (chunk * ITEMS / 2u + k) * WG_SIZE * 2u + 2u * lid;
            if i < tensor.len {
                let lo = new_moment(i);
                var hi = 0.0;
                kept += agrees(lo, i);
                if i + 1u < tensor.len {
                    hi = new_moment(i + 1u);
                    kept += agrees(hi, i + 1u);
                }
                if step.bf16 == 0u {
                    moment[i] = bitcast<u32>(lo);
                    if i + 1u < tensor.len {
                        moment[i + 1u] = bitcast<u32>(hi);
                    }
                } else {
                    moment[i / 2u] = bf16_bits(lo) | (bf16_bits(hi) << 16u);
                }
            }
        }
    }
    let total = workgroup_count(kept, lid);
    if lid == 0u && chunk < tensor.chunks {
        partials[tensor.partial_base + chunk] = vec2<u32>(total, 0u);
    }
}

// One workgroup: the caution scale of the agreeing count (config.rs
// Normalization::scale).
@compute @workgroup_size(WG_SIZE)
fn finalize_caution(@builtin(local_invocation_index) lid: u32) {
    let kept = partials_count(0u, lid);
    if lid == 0u {
        scratch[tensor.index * FACTOR_WORDS + CAUTION_SCALE] =
            caution_scale(kept, tensor.len, step.disagree, step.norm_kind, step.norm_param);
    }
}

// p = p (1 - decay) - lr x, x the (masked, rescaled) first moment or the update.
@compute @workgroup_size(WG_SIZE)
fn apply(inv: Invocation) {
    let i = flat_index(inv);
    if i >= tensor.len || skipping() {
        return;
    }
    var x: f32;
    if step.has_momentum == 0u {
        x = step_update(i);
    } else {
        x = load_moment(i);
        if step.caution != 0u {
            let weight = select(step.disagree, 1.0, agrees(x, i) == 1u);
            x *= weight * factor(CAUTION_SCALE);
        }
    }
    var lr = 1.0;
    var decay = step.decay;
    if step.big_vision != 0u {
        lr = step.lr;
    } else {
        decay *= factor(RATE);
    }
    let j = tensor.param_base + i;
    param[j] = param[j] * (1.0 - decay) - lr * x;
}
