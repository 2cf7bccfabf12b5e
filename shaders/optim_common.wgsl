// optim_common.wgsl: declarations shared by every optimizer kernel.
//
// The Rust side (src/optim/kernels.rs) builds each optimizer module as
//   optim_common.wgsl + count_{subgroup,workgroup}.wgsl + <algorithm>.wgsl
// so the structs, constants and block indexing below are identical everywhere.
//
// Work is cut into blocks: one workgroup handles one block of at most BLOCK_ELEMS
// consecutive elements of one tensor inside one binding window (multi-tensor apply:
// a single dispatch covers every tensor of the window).

const WG_SIZE: u32 = 256u;
// vec4 loads per invocation per block.
const VEC_PER_THREAD: u32 = 4u;
const BLOCK_VEC4: u32 = WG_SIZE * VEC_PER_THREAD;
const BLOCK_ELEMS: u32 = BLOCK_VEC4 * 4u;
const MAX_GROUPS: u32 = 16u;

// Caution normalization kinds (StepParams.norm_kind).
const NORM_MEAN_CLAMP: u32 = 0u;
const NORM_NUMEL_OVER_COUNT_PLUS_ONE: u32 = 1u;
const NORM_MEAN_PLUS_EPS: u32 = 2u;

// One block of work.
struct Block {
    tensor: u32,  // index into the tensor table
    start: u32,   // first element, relative to the bound window (multiple of 4)
    len: u32,     // elements in this block, 1..=BLOCK_ELEMS
    global: u32,  // block number across all windows (index of its partial count)
}

// Per-tensor table; `scale` and `kept` are written by finalize_scale every step.
struct TensorEntry {
    group: u32,
    numel: u32,
    first_block: u32,
    num_blocks: u32,
    scale: f32,
    kept: u32,
    pad0: u32,
    pad1: u32,
}

// Hyperparameters of one parameter group for the current step.
struct GroupParams {
    lr: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    eps: f32,
    momentum: f32,
}

// Rewritten by the CPU before every step.
struct StepParams {
    caution: u32,          // 0: off, 1: on
    norm_kind: u32,        // NORM_*
    norm_param: f32,       // mean_clamp min, or mean_plus_eps eps
    disagree_weight: f32,  // 0 for a hard mask, the soft factor otherwise
    clip_max_norm: f32,    // <= 0: no clipping
    skip_nonfinite: u32,
    num_groups: u32,
    eps_style: u32,        // AdamW: 0 torch-style, 1 HF-style
    groups: array<GroupParams, MAX_GROUPS>,
}

// The GPU-side step state, as the update kernels read it (a uniform view of the
// buffer that reduce.wgsl writes).
struct StatusView {
    found_inf: u32,
    step: u32,          // completed steps, including this one once advanced
    clip_coef: f32,     // 1 when not clipping
    grad_norm: f32,
    bias: array<vec4<f32>, MAX_GROUPS>,  // x: 1 - beta1^t, y: 1 - beta2^t
}

// The same buffer, as the reduction kernels write it.
struct StatusRw {
    found_inf: atomic<u32>,
    step: u32,
    clip_coef: f32,
    grad_norm: f32,
    bias: array<vec4<f32>, MAX_GROUPS>,
}

struct WindowInfo {
    num_blocks: u32,
    grid_x: u32,  // workgroups along x; blocks beyond 65535 use y
    pad0: u32,    // uniform structs are padded to 16 bytes, as the Rust mirror is
    pad1: u32,
}

fn block_index(wg: vec3<u32>, info: WindowInfo) -> u32 {
    return wg.x + wg.y * info.grid_x;
}

// Lanes of the vec4 at element `e` that lie inside [0, end).
fn lanes_valid(e: u32, end: u32) -> vec4<bool> {
    return vec4<u32>(e, e + 1u, e + 2u, e + 3u) < vec4<u32>(end);
}

fn is_finite4(x: vec4<f32>) -> vec4<bool> {
    let exp_bits = bitcast<vec4<u32>>(x) & vec4<u32>(0x7f800000u);
    return exp_bits != vec4<u32>(0x7f800000u);
}

// The caution mask for a vec4: 1 where the direction agrees with the gradient,
// `disagree_weight` elsewhere, times the tensor's scale. All ones when caution is off.
fn caution_mask(dir: vec4<f32>, g: vec4<f32>, scale: f32, p: StepParams) -> vec4<f32> {
    if p.caution == 0u {
        return vec4<f32>(1.0);
    }
    let agree = dir * g > vec4<f32>(0.0);
    return select(vec4<f32>(p.disagree_weight), vec4<f32>(1.0), agree) * scale;
}

// Number of lanes (inside the tensor) whose direction agrees with the gradient.
fn count_agree(dir: vec4<f32>, g: vec4<f32>, valid: vec4<bool>) -> u32 {
    let agree = (dir * g > vec4<f32>(0.0)) & valid;
    return dot(select(vec4<u32>(0u), vec4<u32>(1u), agree), vec4<u32>(1u));
}

// Lanes inside the tensor whose gradient is NaN or infinite.
fn count_nonfinite(g: vec4<f32>, valid: vec4<bool>) -> u32 {
    let bad = !is_finite4(g) & valid;
    return dot(select(vec4<u32>(0u), vec4<u32>(1u), bad), vec4<u32>(1u));
}

// torch.lerp(a, b, w) as PyTorch's CPU kernel evaluates it.
fn torch_lerp(a: vec4<f32>, b: vec4<f32>, w: f32) -> vec4<f32> {
    if w < 0.5 {
        return a + w * (b - a);
    }
    return b - (b - a) * (1.0 - w);
}
