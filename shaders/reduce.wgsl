// reduce.wgsl: the reductions around an optimizer step.
//
// Entry points, in the order a step runs them:
//   check_finite:    per block, flags NaN/inf gradients (plain optimizers; caution's
//                    count pass does this itself)
//   grad_sumsq:      per block, partial sum of squares of the gradients (clipping),
//                    deterministic tree reduction; also flags NaN/inf
//   finalize_clip:   one workgroup: sums the partials in a fixed order, writes the
//                    global norm and the clip coefficient max_norm / (norm + 1e-6) <= 1
//   finalize_scale:  one workgroup per tensor: sums the tensor's integer partial counts
//                    and writes its kept count and caution scale
//   advance_step:    one invocation: unless the step is skipped, counts it and advances
//                    each group's bias corrections (advance_bias, optim_common.wgsl)
//
// Bindings (group 0; BINDING_* constants generated from `binding` in src/optim/kernels.rs):
//   1 grads           storage r    gradient window (params_<variant>.wgsl)
//   4 blocks          storage r    block table of the window
//   5 tensors         storage rw   per-tensor table (finalize_scale writes scale, kept)
//   6 step            uniform      StepParams
//   8 window          uniform      WindowInfo (finalize_scale: num_blocks = tensors)
//   9 partial_counts  storage rw   per-block agreement counts
//  10 status_rw       storage rw   StatusRw
//  11 partial_sumsq   storage rw   per-block partial sums of squares

@group(0) @binding(BINDING_BLOCKS) var<storage, read> blocks: array<Block>;
@group(0) @binding(BINDING_TENSORS) var<storage, read_write> tensors: array<TensorEntry>;
@group(0) @binding(BINDING_STEP) var<uniform> step: StepParams;
@group(0) @binding(BINDING_WINDOW) var<uniform> window: WindowInfo;
@group(0) @binding(BINDING_PARTIAL_COUNTS) var<storage, read_write> partial_counts: array<atomic<u32>>;
@group(0) @binding(BINDING_STATUS_RW) var<storage, read_write> status_rw: StatusRw;
@group(0) @binding(BINDING_PARTIAL_SUMSQ) var<storage, read_write> partial_sumsq: array<f32>;

// torch.nn.utils.clip_grad_norm_ adds this to the norm.
const CLIP_EPS: f32 = 1e-6;

var<workgroup> tensor_count: atomic<u32>;

// Sums over the workgroup use workgroup_sum (lib/workgroup_sum.wgsl): a fixed-order
// tree, so the gradient norm is deterministic.

@compute @workgroup_size(WG_SIZE)
fn check_finite(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = block_index(wg, window);
    if b >= window.num_blocks {
        return;
    }
    let blk = blocks[b];
    var bad = 0u;
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        let e = block_elem(k, lid);
        if e < blk.len {
            let valid = lanes_valid(e, blk.len);
            bad += count_nonfinite(load_grad(blk.grad_start + e, valid), valid);
        }
    }
    if bad != 0u {
        atomicOr(&status_rw.found_inf, 1u);
    }
}

@compute @workgroup_size(WG_SIZE)
fn grad_sumsq(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = block_index(wg, window);
    var sumsq = 0.0;
    var bad = 0u;
    var slot = 0u;
    let in_range = b < window.num_blocks;
    if in_range {
        let blk = blocks[b];
        slot = blk.global;
        for (var k = 0u; k < VEC_PER_THREAD; k++) {
            let e = block_elem(k, lid);
            if e < blk.len {
                let valid = lanes_valid(e, blk.len);
                let g = load_grad(blk.grad_start + e, valid);
                sumsq += dot(g, g);
                bad += count_nonfinite(g, valid);
            }
        }
    }
    if bad != 0u {
        atomicOr(&status_rw.found_inf, 1u);
    }
    let total = workgroup_sum(sumsq, lid);
    if in_range && lid == 0u {
        partial_sumsq[slot] = total;
    }
}

@compute @workgroup_size(WG_SIZE)
fn finalize_clip(@builtin(local_invocation_index) lid: u32) {
    let n = arrayLength(&partial_sumsq);
    var acc = 0.0;
    for (var i = lid; i < n; i += WG_SIZE) {
        acc += partial_sumsq[i];
    }
    let total = workgroup_sum(acc, lid);
    if lid == 0u {
        let norm = sqrt(total);
        status_rw.grad_norm = norm;
        status_rw.clip_coef = min(1.0, step.clip_max_norm / (norm + CLIP_EPS));
    }
}

@compute @workgroup_size(WG_SIZE)
fn finalize_scale(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = block_index(wg, window);
    let in_range = t < window.num_blocks;
    var acc = 0u;
    if in_range {
        let entry = tensors[t];
        for (var i = lid; i < entry.num_blocks; i += WG_SIZE) {
            acc += atomicLoad(&partial_counts[entry.first_block + i]);
        }
    }
    if acc != 0u {
        atomicAdd(&tensor_count, acc);
    }
    workgroupBarrier();
    if in_range && lid == 0u {
        let kept = atomicLoad(&tensor_count);
        let n = f32(tensors[t].numel);
        let mask_sum = f32(kept) + step.disagree_weight * (n - f32(kept));
        var scale = 1.0;
        switch step.norm_kind {
            case NORM_MEAN_CLAMP: {
                scale = 1.0 / max(mask_sum / n, step.norm_param);
            }
            case NORM_NUMEL_OVER_COUNT_PLUS_ONE: {
                scale = n / (mask_sum + 1.0);
            }
            default: {
                scale = 1.0 / (mask_sum / n + step.norm_param);
            }
        }
        tensors[t].scale = scale;
        tensors[t].kept = kept;
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
