// projection.wgsl: AdamP's and SGDP's projection and "spherical" caution
// (timm/optim/adamp.py:29-61), shared by adamp.wgsl and sgdp.wgsl, on the segment sums
// of tensor_segments.wgsl (a tensor of rank > 1 has one segment per row: the channel
// view; rank 1 has none and is never projected).
//
// With u the algorithm's update (`perturb`) and g the gradient, for each tensor:
//   round 1 (measure_segments) sums per row:  (p.g, p.p, g.g, p.u)
//   finalize_segments: cos = |p.g| / (max(|g|, eps) max(|p|, eps)) per row (channel)
//     or over the tensor (layer); the channel view projects if every row's cos is
//     below delta / sqrt(row length), else the layer view if its cos is below
//     delta / sqrt(numel), else nothing. Projecting with the view's norm
//     n = |p| + eps:  u_perp = u - p (p.u) / n^2,  g_perp = g - p (p.g) / n^2,
//     and weight decay is scaled by wd_ratio
//   caution: mask = caution_mask(u_perp, g_perp) (the usual mask against g when not
//     projected); round 2 (count_segments) counts it and sums p.(u_perp a) per row
//     (a the mask weight before the scale s); finalize_masked: the update becomes
//     u_perp a s - p s (p.(u_perp a)) / n^2 (timm re-projects the masked update)
//
// Resolved record of each segment (tensor_segments.wgsl): sums = (p.u / n^2,
// p.g / n^2, 1 / n^2, p.(u_perp a) / n^2) of its view, flag = the view (PROJECT_*).
// The algorithm part supplies perturb(at, g, c) -> vec4<f32>. delta and wd_ratio are the
// group's (GroupParams).

const PROJECT_NONE: u32 = 0u;
const PROJECT_CHANNEL: u32 = 1u;
const PROJECT_LAYER: u32 = 2u;

var<workgroup> rows_over: atomic<u32>;

// The resolved coefficients of the segment being stepped (StepContext's
// segment_sums and segment_flag: one record per piece, tensor_segments.wgsl).
struct Coefs {
    ku: f32,
    kg: f32,
    k2: f32,
    view: u32,
}

fn segment_coefs(c: StepContext) -> Coefs {
    return Coefs(c.segment_sums.x, c.segment_sums.y, c.segment_sums.w, c.segment_flag);
}

// |cos| between p and g from the sums (p.g, p.p, g.g, _), as torch's
// cosine_similarity clamps each norm at eps.
fn abs_cosine(s: vec4<f32>, eps: f32) -> f32 {
    return abs(s.x) / (max(sqrt(s.z), eps) * max(sqrt(s.y), eps));
}

fn segment_terms(at: At, g: vec4<f32>, valid: vec4<bool>, c: StepContext) -> mat4x4<f32> {
    let p = load_param(at.param, valid);
    return mat4x4<f32>(p * g, p * p, g * g, p * perturb(at, g, c));
}

// The update projected (where the tensor's view says) and the gradient it is
// compared with.
struct Projected {
    u: vec4<f32>,
    against: vec4<f32>,
    view: u32,
    k2: f32,
}

fn project(k: Coefs, p: vec4<f32>, g: vec4<f32>, u: vec4<f32>) -> Projected {
    if k.view == PROJECT_NONE {
        return Projected(u, g, k.view, k.k2);
    }
    return Projected(u - p * k.ku, g - p * k.kg, k.view, k.k2);
}

// The segment records matter (round 2's sums, the update's coefficients) only
// where the tensor projects.
fn segment_records_used(c: StepContext) -> bool {
    return c.segment_flag != PROJECT_NONE;
}

// Round 2's terms: the mask's count, and p.(u_perp a) where the tensor projects (the
// parameters are read only there; the view is the same for all of a tensor's rows).
fn masked_terms(at: At, g: vec4<f32>, valid: vec4<bool>, c: StepContext) -> MaskedTerms {
    let u = perturb(at, g, c);
    let zero = vec4<f32>(0.0);
    let k = segment_coefs(c);
    if k.view == PROJECT_NONE {
        return MaskedTerms(mat4x4<f32>(), count_agree(u, g, valid));
    }
    let p = load_param(at.param, valid);
    let x = project(k, p, g, u);
    let a = caution_mask(x.u, x.against, 1.0, step);
    return MaskedTerms(mat4x4<f32>(p * x.u * a, zero, zero, zero), count_agree(x.u, x.against, valid));
}

// What the update pass applies: the final update and the unmasked direction
// (cautious decay's test) and the weight decay ratio.
struct ProjectedStep {
    update: vec4<f32>,
    direction: vec4<f32>,
    wd_ratio: f32,
}

fn projected_step(at: At, p: vec4<f32>, g: vec4<f32>, u: vec4<f32>, valid: vec4<bool>, scale: f32, c: StepContext) -> ProjectedStep {
    let x = project(segment_coefs(c), p, g, u);
    let masked = x.u * caution_mask(x.u, x.against, scale, step);
    if x.view == PROJECT_NONE {
        return ProjectedStep(masked, x.u, 1.0);
    }
    let reprojected = select(masked, masked - p * (scale * x.k2), step.caution != 0u);
    return ProjectedStep(reprojected, x.u, c.gp.wd_ratio);
}

// The tensor a finalize workgroup handles and its number of segments (0 when out of
// range or without segments).
fn finalize_tensor(wg: vec3<u32>) -> TensorEntry {
    let ti = min(block_index(wg, window), window.num_blocks - 1u);
    return tensors[ti];
}

fn segment_count(wg: vec3<u32>, t: TensorEntry) -> u32 {
    if block_index(wg, window) >= window.num_blocks || t.seg_len == 0u {
        return 0u;
    }
    return t.numel / t.seg_len;
}

// Round 1: each segment's sums, then the view and its coefficients.
@compute @workgroup_size(WG_SIZE)
fn finalize_segments(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = finalize_tensor(wg);
    let n = segment_count(wg, t);
    let eps = step.groups[t.group].eps;
    let delta = step.groups[t.group].delta;
    let row_limit = delta / sqrt(f32(max(t.seg_len, 1u)));
    var layer = vec4<f32>(0.0);
    for (var i = lid; i < n; i += WG_SIZE) {
        let s = segment_total(t, i);
        partials[segment_record(t.first_segment, i)].sums = s;
        layer += s;
        if !(abs_cosine(s, eps) < row_limit) {
            atomicOr(&rows_over, 1u);
        }
    }
    // Its barriers also order every atomicOr above before the load below.
    let total = workgroup_sum4(layer, lid);
    let channel = atomicLoad(&rows_over) == 0u;
    let layer_ok = abs_cosine(total, eps) < delta / sqrt(f32(t.numel));
    let view = select(select(PROJECT_NONE, PROJECT_LAYER, layer_ok), PROJECT_CHANNEL, channel);
    for (var i = lid; i < n; i += WG_SIZE) {
        let raw = segment_record(t.first_segment, i);
        let s = select(total, partials[raw].sums, view == PROJECT_CHANNEL);
        let norm = sqrt(s.y) + eps;
        let inv = 1.0 / (norm * norm);
        partials[raw + 1u].sums = vec4<f32>(s.w * inv, s.x * inv, inv, 0.0);
        partials[raw + 1u].flag = view;
    }
}

// Round 2 (caution): each segment's p.(u_perp a) in its view, over the view's norm.
@compute @workgroup_size(WG_SIZE)
fn finalize_masked(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = finalize_tensor(wg);
    var n = segment_count(wg, t);
    // Round 2 summed nothing where the tensor does not project (segment_records_used).
    if n != 0u && partials[segment_record(t.first_segment, 0u) + 1u].flag == PROJECT_NONE {
        n = 0u;
    }
    var layer = vec4<f32>(0.0);
    for (var i = lid; i < n; i += WG_SIZE) {
        let s = segment_total(t, i);
        partials[segment_record(t.first_segment, i) + 1u].sums.w = s.x;
        layer += s;
    }
    let total = workgroup_sum4(layer, lid);
    for (var i = lid; i < n; i += WG_SIZE) {
        let r = segment_record(t.first_segment, i) + 1u;
        let own = partials[r].sums;
        let sum = select(total.x, own.w, partials[r].flag == PROJECT_CHANNEL);
        partials[r].sums.w = sum * own.z;
    }
}
