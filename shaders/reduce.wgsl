// reduce.wgsl: the reductions around an optimizer step.
//
// Entry points, in the order a step runs them:
//   check_finite:    per block, flags NaN/inf gradients (plain optimizers; caution's
//                    count pass does this itself)
//   grad_sumsq:      per block, partial sum of squares of the gradients (clipping),
//                    deterministic tree reduction into the block record's sums.x; also
//                    flags NaN/inf
//   finalize_clip:   one workgroup: sums the block records in a fixed order, writes the
//                    global norm and the clip coefficient: max_norm / (norm + 1e-6)
//                    capped at 1 (torch; lib/clip_coefficient.wgsl), then divided
//                    by max(norm' / clip_max_ratio, 1)
//                    (timm LAMB's max_grad_norm; norm' the norm after the first clip)
//   finalize_sums:   one workgroup per tensor, after a norm pass (measure_norms.wgsl):
//                    sums the tensor's block records' float sums in block order by a
//                    fixed tree, writes its float sums
//   finalize_scale:  one workgroup per tensor: sums the tensor's block records in block
//                    order (integer counts; float sums as finalize_sums), writes its kept
//                    count, caution scale and float sums
//   advance_step:    one invocation: unless the step is skipped, counts it and advances
//                    each group's bias corrections (advance_bias, optim_common.wgsl)
//
// Bindings (group 0; BINDING_* constants generated from `binding` in src/optim/kernels.rs):
//   1 grads           storage r    gradient window (params_<variant>.wgsl)
//   4 blocks          storage r    block table of the window
//   5 tensors         storage rw   per-tensor table (finalize_scale writes scale, kept, sums)
//   6 step            uniform      StepParams
//   8 window          uniform      WindowInfo (finalize_scale: num_blocks = tensors)
//   9 partials        storage rw   per-block records (BlockPartial)
//  10 status_rw       storage rw   StatusRw

@group(0) @binding(BINDING_BLOCKS) var<storage, read> blocks: array<Block>;
@group(0) @binding(BINDING_TENSORS) var<storage, read_write> tensors: array<TensorEntry>;
@group(0) @binding(BINDING_STEP) var<uniform> step: StepParams;
@group(0) @binding(BINDING_WINDOW) var<uniform> window: WindowInfo;
@group(0) @binding(BINDING_PARTIALS) var<storage, read_write> partials: array<BlockPartial>;
@group(0) @binding(BINDING_STATUS_RW) var<storage, read_write> status_rw: StatusRw;

var<workgroup> tensor_count: atomic<u32>;

// Sums over the workgroup use workgroup_sum and workgroup_sum4 (workgroup_sum_part!
// of src/wgsl.rs): a fixed-order tree after a fixed-order strided loop, so the norm
// and the tensor sums are deterministic.

@compute @workgroup_size(WG_SIZE)
fn check_finite(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let blk = window_block(group).blk;
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        _ = grad_lane(blk, k, lid);
    }
    flag_loaded_nonfinite();
}

@compute @workgroup_size(WG_SIZE)
fn grad_sumsq(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let w = window_block(group);
    var sumsq = 0.0;
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        // Lanes past the block's end add an exact zero.
        let g = grad_lane(w.blk, k, lid).g;
        sumsq += dot(g, g);
    }
    flag_loaded_nonfinite();
    let total = workgroup_sum(sumsq, lid);
    if w.in_range && lid == 0u {
        partials[w.blk.global].sums = vec4<f32>(total, 0.0, 0.0, 0.0);
    }
}

@compute @workgroup_size(WG_SIZE)
fn finalize_clip(@builtin(local_invocation_index) lid: u32) {
    let n = arrayLength(&partials);
    var acc = 0.0;
    for (var i = lid; i < n; i += WG_SIZE) {
        acc += partials[i].sums.x;
    }
    let total = workgroup_sum(acc, lid);
    if lid == 0u {
        let norm = sqrt(total);
        status_rw.grad_norm = norm;
        var coef = clip_coefficient(norm, step.clip_max_norm);
        if step.clip_max_ratio > 0.0 {
            coef = coef / max(norm * coef / step.clip_max_ratio, 1.0);
        }
        status_rw.clip_coef = coef;
    }
}

// The tensor of a per-tensor workgroup (the window counts tensors): its index and its
// block records, none for the grid's spare workgroups (`in_range` false).
struct WindowTensor {
    index: u32,
    in_range: bool,
    first_block: u32,
    num_blocks: u32,
}

fn window_tensor(group: Workgroup) -> WindowTensor {
    let t = block_index(group.id, window);
    if t < window.num_blocks {
        return WindowTensor(t, true, tensors[t].first_block, tensors[t].num_blocks);
    }
    return WindowTensor(t, false, 0u, 0u);
}

// The float sums of tensor `w`'s block records, in block order by a fixed tree (every
// invocation of the workgroup calls it: it holds barriers).
fn tensor_block_sums(w: WindowTensor, lid: u32) -> vec4<f32> {
    var sums = vec4<f32>(0.0);
    for (var i = lid; i < w.num_blocks; i += WG_SIZE) {
        sums += partials[w.first_block + i].sums;
    }
    return workgroup_sum4(sums, lid);
}

@compute @workgroup_size(WG_SIZE)
fn finalize_sums(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let w = window_tensor(group);
    let sums = tensor_block_sums(w, lid);
    if w.in_range && lid == 0u {
        tensors[w.index].sums = sums;
    }
}

@compute @workgroup_size(WG_SIZE)
fn finalize_scale(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let w = window_tensor(group);
    var acc = 0u;
    for (var i = lid; i < w.num_blocks; i += WG_SIZE) {
        acc += atomicLoad(&partials[w.first_block + i].count);
    }
    if acc != 0u {
        atomicAdd(&tensor_count, acc);
    }
    // Its barriers also order every atomicAdd above before the load below.
    let tensor_sums = tensor_block_sums(w, lid);
    if w.in_range && lid == 0u {
        let t = w.index;
        let kept = atomicLoad(&tensor_count);
        let scale = caution_scale(
            kept,
            tensors[t].numel,
            step.disagree_weight,
            step.norm_kind,
            step.norm_param,
        );
        tensors[t].scale = scale;
        tensors[t].kept = kept;
        tensors[t].sums = tensor_sums;
    }
}

@compute @workgroup_size(1)
fn advance_step() {
    if step.skip_nonfinite != 0u && atomicLoad(&status_rw.found_inf) != 0u {
        return;
    }
    status_rw.step += 1u;
    for (var g = 0u; g < step.num_groups; g++) {
        status_rw.bias[g] = advance_bias(step.groups[g], status_rw.bias[g]);
    }
}
