// optim_step.wgsl: the two per-block entry points every algorithm shares.
//
// The algorithm file (adamw.wgsl, lion.wgsl, sgd.wgsl, lamb.wgsl, ...) supplies:
//   caution_direction(s, g, c: StepContext) -> vec4<f32>
//       the direction whose sign decides the mask, from the state (vec4 index s)
//       before the step
//   step_vec4(at: At, g, valid, scale, c: StepContext)
//       the fused update of the four elements at `at` (lanes outside the tensor keep
//       their old values)
//   tensor_terms(at, g, dir, valid, c: StepContext) -> vec4<f32>  (with add_block_sums)
//       four per-coordinate terms summed per tensor (tensor_sums_block.wgsl), or
//       none (tensor_sums_none.wgsl)
//   and, with a norm pass (measure_norms.wgsl), norm_terms(at, g, valid, c)
// and params_{vec4,scalar}.wgsl supplies load_param, store_param and load_grad, and
// grad_decay_{none,coupled}.wgsl step_grad (the gradient the algorithm sees).
//
// Entry points:
//   count_agreement: the measuring pass (caution, or tensor sums); per block, counts
//                    the coordinates whose direction agrees in sign with the gradient
//                    (integer partial count), sums the algorithm's tensor terms, and
//                    flags NaN/inf gradients
//   update:          the fused step for every tensor of the window; does nothing when
//                    the step is skipped (update_block; algorithms with segment sums
//                    use tensor_segments.wgsl's update_segments instead)
//
// Bindings (group 0; BINDING_* constants generated from `binding` in src/optim/kernels.rs):
//   0 params          storage rw   parameter window (params_<variant>.wgsl; count: tensor sums
//                                  or coupled decay only)
//   1 grads           storage r    gradient window (params_<variant>.wgsl)
//   2 state0          storage rw   first state window (generated slots, state_<dtype>.wgsl codec)
//   3 state1          storage rw   second state window (AdamW, LAMB, ...)
//   4 blocks          storage r    block table of the window
//   5 tensors         storage r    per-tensor table (group, scale, sums)
//   6 step            uniform      StepParams
//   7 status          uniform      StatusView (update: step count, bias corrections, clip)
//   8 window          uniform      WindowInfo
//   9 partials        storage rw   per-block records: agreement count, float sums
//  10 status_rw       storage rw   StatusRw (count_agreement: found_inf, clip, step)
//  11 state2          storage rw   third state window (Adan, MARS, ...)
//  12 state3          storage rw   fourth state window (Adan)
//
// A pass binds only the state slots it reads; every pass fits the device's
// max_storage_buffers_per_shader_stage (checked in src/optim/bindings.rs).

@group(0) @binding(BINDING_BLOCKS) var<storage, read> blocks: array<Block>;
@group(0) @binding(BINDING_TENSORS) var<storage, read> tensors: array<TensorEntry>;
@group(0) @binding(BINDING_STEP) var<uniform> step: StepParams;
@group(0) @binding(BINDING_STATUS) var<uniform> status: StatusView;
@group(0) @binding(BINDING_WINDOW) var<uniform> window: WindowInfo;
@group(0) @binding(BINDING_PARTIALS) var<storage, read_write> partials: array<BlockPartial>;
@group(0) @binding(BINDING_STATUS_RW) var<storage, read_write> status_rw: StatusRw;

// What an update needs besides the element data (the same in every pass).
struct StepContext {
    gp: GroupParams,
    bias: vec4<f32>,    // this step's bias corrections (see advance_bias)
    decay: f32,         // 1 - lr * weight_decay
    first_step: bool,   // this is the first completed step
    t: u32,             // this step's number, from 1
    rank: u32,          // the tensor's number of dimensions
    sums: vec4<f32>,    // the tensor's float sums as finalized so far this step: the norm
                        // pass's (measuring pass), the measuring pass's (update)
    seg_len: u32,       // the tensor's segment length (0: none; tensor_segments.wgsl)
    first_segment: u32, // its first segment record
    segment_sums: vec4<f32>,  // the resolved record of the segment being stepped (its
    segment_flag: u32,        // sums and flag; zeros outside the segment passes)
}

// The context of step number `t` of tensor `entry` with bias corrections `bias`.
fn step_context(entry: TensorEntry, bias: vec4<f32>, t: u32) -> StepContext {
    let gp = step.groups[entry.group];
    let decay = 1.0 - gp.lr * gp.weight_decay;
    return StepContext(gp, bias, decay, t == 1u, t, entry.rank, entry.sums, entry.seg_len, entry.first_segment, vec4<f32>(0.0), 0u);
}

// The context in a pass before advance_step (the norm and measuring passes): the bias
// corrections and step count advance here as advance_step will advance them.
fn measuring_context(entry: TensorEntry) -> StepContext {
    let bias = advance_bias(step.groups[entry.group], status_rw.bias[entry.group]);
    return step_context(entry, bias, status_rw.step + 1u);
}

// The gradient clip factor in a pass before advance_step.
fn measuring_clip() -> f32 {
    return select(1.0, status_rw.clip_coef, clipping(step));
}

// The block of a measuring pass's workgroup `group` (the norm pass, the measuring pass,
// the segment rounds; see window_block), its tensor, their context and the gradient
// clip factor.
struct MeasuringBlock {
    in_range: bool,
    blk: Block,
    t: TensorEntry,
    c: StepContext,
    clip: f32,
}

fn measuring_block(group: Workgroup) -> MeasuringBlock {
    let w = window_block(group);
    let t = tensors[w.blk.tensor];
    return MeasuringBlock(w.in_range, w.blk, t, measuring_context(t), measuring_clip());
}

@compute @workgroup_size(WG_SIZE)
fn count_agreement(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let m = measuring_block(group);
    var agree = 0u;
    var sums = vec4<f32>(0.0);
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        let x = grad_lane(m.blk, k, lid);
        if x.lane.valid.x {
            let g = step_grad(x.lane, x.g * m.clip, m.c);
            let dir = caution_direction(x.lane.at.state, g, m.c);
            agree += count_agree(dir, g, x.lane.valid);
            sums += tensor_terms(x.lane.at, g, dir, x.lane.valid, m.c);
        }
    }
    flag_loaded_nonfinite();
    add_block_count(agree, m.blk.global, lid);
    add_block_sums(sums, m.blk.global, lid, m.in_range);
}

// The block of an update pass's workgroup `group`, its tensor, their context and the
// gradient clip factor; `live` false: no block, or the step is skipped.
struct UpdateBlock {
    live: bool,
    blk: Block,
    t: TensorEntry,
    c: StepContext,
    clip: f32,
}

fn update_block(group: Workgroup) -> UpdateBlock {
    var u: UpdateBlock;
    let b = block_index(group.id, window);
    u.live = b < window.num_blocks && !(step.skip_nonfinite != 0u && status.found_inf != 0u);
    if u.live {
        u.blk = blocks[b];
        u.t = tensors[u.blk.tensor];
        u.c = step_context(u.t, status.bias[u.t.group], status.step);
        u.clip = select(1.0, status.clip_coef, clipping(step));
    }
    return u;
}

@compute @workgroup_size(WG_SIZE)
fn update(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let u = update_block(group);
    if !u.live {
        return;
    }
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        let lane = block_lane(u.blk, k, lid);
        if lane.valid.x {
            let g = step_grad(lane, load_grad(lane.at.grad, lane.valid) * u.clip, u.c);
            step_vec4(lane.at, g, lane.valid, u.t.scale, u.c);
        }
    }
}
