// lion.wgsl: Lion and C-Lion (timm `lion`/`clion`; C-Optim c_lion.py).
//
//   p *= 1 - lr * wd
//   u  = sign(lerp(m, g, 1 - beta1))      (= beta1 * m + (1 - beta1) * g)
//   p -= lr * u * mask
//   m  = lerp(m, g, 1 - beta2)            (after the step)
//
// Entry points:
//   count_agreement: pass 1 of caution (agreement of u with g per block)
//   update:          the fused step for every tensor of the window
//
// Bindings (group 0):
//   0 params          storage rw   parameter window (vec4<f32>)
//   1 grads           storage r    gradient window (vec4<f32>)
//   2 state0          storage rw   exp_avg window (state_<dtype>.wgsl)
//   4 blocks          storage r    block table of the window
//   5 tensors         storage r    per-tensor table (group, scale)
//   6 step            uniform      StepParams
//   7 status          uniform      StatusView
//   8 window          uniform      WindowInfo
//   9 partial_counts  storage rw   per-block agreement counts (count_agreement)
//  10 status_rw       storage rw   StatusRw (count_agreement)

@group(0) @binding(0) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> blocks: array<Block>;
@group(0) @binding(5) var<storage, read> tensors: array<TensorEntry>;
@group(0) @binding(6) var<uniform> step: StepParams;
@group(0) @binding(7) var<uniform> status: StatusView;
@group(0) @binding(8) var<uniform> window: WindowInfo;
@group(0) @binding(9) var<storage, read_write> partial_counts: array<atomic<u32>>;
@group(0) @binding(10) var<storage, read_write> status_rw: StatusRw;

// timm: exp_avg.lerp(grad, 1 - beta1)
fn lion_interp(m: vec4<f32>, g: vec4<f32>, gp: GroupParams) -> vec4<f32> {
    return torch_lerp(m, g, gp.one_minus_beta1);
}

@compute @workgroup_size(WG_SIZE)
fn count_agreement(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = block_index(wg, window);
    var agree = 0u;
    var bad = 0u;
    var slot = 0u;
    if b < window.num_blocks {
        let blk = blocks[b];
        slot = blk.global;
        let gp = step.groups[tensors[blk.tensor].group];
        let first_step = status_rw.step == 0u;
        let clip = select(1.0, status_rw.clip_coef, step.clip_max_norm > 0.0);
        let end = blk.start + blk.len;
        for (var k = 0u; k < VEC_PER_THREAD; k++) {
            let e = blk.start + (k * WG_SIZE + lid) * 4u;
            if e < end {
                let i = e / 4u;
                let valid = lanes_valid(e, end);
                let g_raw = grads[i];
                let g = g_raw * clip;
                let dir = sign(lion_interp(load_state0(i), g, gp));
                agree += count_agree(dir, g, valid);
                bad += count_nonfinite(g_raw, valid);
            }
        }
    }
    if bad != 0u {
        atomicOr(&status_rw.found_inf, 1u);
    }
    add_block_count(agree, slot, lid);
}

@compute @workgroup_size(WG_SIZE)
fn update(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = block_index(wg, window);
    if b >= window.num_blocks || (step.skip_nonfinite != 0u && status.found_inf != 0u) {
        return;
    }
    let blk = blocks[b];
    let t = tensors[blk.tensor];
    let gp = step.groups[t.group];
    let clip = select(1.0, status.clip_coef, step.clip_max_norm > 0.0);
    let decay = 1.0 - gp.lr * gp.weight_decay;
    let end = blk.start + blk.len;
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        let e = blk.start + (k * WG_SIZE + lid) * 4u;
        if e < end {
            let i = e / 4u;
            let valid = lanes_valid(e, end);
            let g = grads[i] * clip;
            let p = params[i];
            let m = load_state0(i);
            let u = sign(lion_interp(m, g, gp));
            let mask = caution_mask(u, g, t.scale, step);
            let p_new = p * decay - gp.lr * (u * mask);
            params[i] = select(p, p_new, valid);
            store_state0(i, select(m, torch_lerp(m, g, gp.one_minus_beta2), valid));
        }
    }
}
