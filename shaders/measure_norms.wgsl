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
fn measure_norms(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let m = measuring_block(group);
    var sums = vec4<f32>(0.0);
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        let x = grad_lane(m.blk, k, lid);
        if x.lane.valid.x {
            sums += norm_terms(x.lane.at, x.g * m.clip, x.lane.valid, m.c);
        }
    }
    flag_loaded_nonfinite();
    let total = workgroup_sum4(sums, lid);
    if m.in_range && lid == 0u {
        partials[m.blk.global].sums = total;
    }
}
