// measure_norms.wgsl: the norm pass, for algorithms whose caution direction needs
// per-tensor sums of the step's gradient (MARS: the norm of the corrected gradient).
// It is the gradient-norm pass of reduce.wgsl (grad_sumsq) made per tensor and
// algorithm-provided: per block, the sum of the algorithm's
//   norm_terms(at, g, valid, c: StepContext) -> vec4<f32>
// in a fixed tree order into the block record (BlockPartial.sums); finalize_sums
// (reduce.wgsl) then sums a tensor's blocks in block order into TensorEntry.sums, which
// the measuring and update passes read as StepContext.sums. Runs after the clip pass
// and before the measuring pass, whose algorithm then adds no tensor terms
// (tensor_sums_none.wgsl), so the block records keep these sums and finalize_scale
// writes the same values again. It also flags NaN/inf gradients (as the measuring
// pass does), so a step with a norm pass needs no separate finite check.
// Bindings: those of optim_step.wgsl's count_agreement (grads, the first states,
// blocks, tensors, step, window, partials, status_rw), declared there.

@compute @workgroup_size(WG_SIZE)
fn measure_norms(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = block_index(wg, window);
    var sums = vec4<f32>(0.0);
    var bad = 0u;
    var slot = 0u;
    let in_range = b < window.num_blocks;
    if in_range {
        let blk = blocks[b];
        slot = blk.global;
        let c = measuring_context(tensors[blk.tensor]);
        let clip = measuring_clip();
        for (var k = 0u; k < VEC_PER_THREAD; k++) {
            let lane = block_lane(blk, k, lid);
            if lane.valid.x {
                let g_raw = load_grad(lane.at.grad, lane.valid);
                sums += norm_terms(lane.at, g_raw * clip, lane.valid, c);
                bad += count_nonfinite(g_raw, lane.valid);
            }
        }
    }
    if bad != 0u {
        atomicOr(&status_rw.found_inf, 1u);
    }
    let total = workgroup_sum4(sums, lid);
    if in_range && lid == 0u {
        partials[slot].sums = total;
    }
}
