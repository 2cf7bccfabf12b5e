// adamw.wgsl: AdamW and C-AdamW (timm `adamw`/`cadamw`, torch.optim.AdamW).
//
// Entry points:
//   count_agreement: pass 1 of caution; per block, counts coordinates where the new
//                    first moment agrees in sign with the gradient (timm masks the raw
//                    exp_avg; sign(m) == sign(update) since den > 0).
//   update:          the fused step for every tensor of the window.
//
// Bindings (group 0):
//   0 params          storage rw   parameter window (vec4<f32>)
//   1 grads           storage r    gradient window (vec4<f32>)
//   2 state0          storage rw   exp_avg window (state_<dtype>.wgsl)
//   3 state1          storage rw   exp_avg_sq window (state_<dtype>.wgsl)
//   4 blocks          storage r    block table of the window
//   5 tensors         storage r    per-tensor table (group, scale)
//   6 step            uniform      StepParams
//   7 status          uniform      StatusView (step count, bias corrections, clip)
//   8 window          uniform      WindowInfo
//   9 partial_counts  storage rw   per-block agreement counts (count_agreement)
//  10 status_rw       storage rw   StatusRw (count_agreement: found_inf, clip_coef)

@group(0) @binding(0) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> blocks: array<Block>;
@group(0) @binding(5) var<storage, read> tensors: array<TensorEntry>;
@group(0) @binding(6) var<uniform> step: StepParams;
@group(0) @binding(7) var<uniform> status: StatusView;
@group(0) @binding(8) var<uniform> window: WindowInfo;
@group(0) @binding(9) var<storage, read_write> partial_counts: array<atomic<u32>>;
@group(0) @binding(10) var<storage, read_write> status_rw: StatusRw;

const EPS_STYLE_HF: u32 = 1u;

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
        let clip = select(1.0, status_rw.clip_coef, step.clip_max_norm > 0.0);
        let end = blk.start + blk.len;
        for (var k = 0u; k < VEC_PER_THREAD; k++) {
            let e = blk.start + (k * WG_SIZE + lid) * 4u;
            if e < end {
                let i = e / 4u;
                let valid = lanes_valid(e, end);
                let g_raw = grads[i];
                let g = g_raw * clip;
                let m_new = torch_lerp(load_state0(i), g, gp.one_minus_beta1);
                agree += count_agree(m_new, g, valid);
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
    let bias = status.bias[t.group];
    let clip = select(1.0, status.clip_coef, step.clip_max_norm > 0.0);
    let decay = 1.0 - gp.lr * gp.weight_decay;
    let hf = step.eps_style == EPS_STYLE_HF;
    // torch: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
    // HF:    p -= (lr * sqrt(bc2) / bc1) * m / (sqrt(v) + eps)
    let bc2_sqrt = sqrt(bias.y);
    let step_size = select(gp.lr / bias.x, gp.lr * bc2_sqrt / bias.x, hf);
    let den_div = select(bc2_sqrt, 1.0, hf);
    let end = blk.start + blk.len;
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        let e = blk.start + (k * WG_SIZE + lid) * 4u;
        if e < end {
            let i = e / 4u;
            let valid = lanes_valid(e, end);
            let g = grads[i] * clip;
            let p = params[i];
            let m = load_state0(i);
            let v = load_state1(i);
            let m_new = torch_lerp(m, g, gp.one_minus_beta1);
            let v_new = v * gp.beta2 + gp.one_minus_beta2 * g * g;
            let den = sqrt(v_new) / den_div + gp.eps;
            let mask = caution_mask(m_new, g, t.scale, step);
            let p_new = p * decay - step_size * ((m_new * mask) / den);
            params[i] = select(p, p_new, valid);
            store_state0(i, select(m, m_new, valid));
            store_state1(i, select(v, v_new, valid));
        }
    }
}
