// grad_norm.wgsl: the global gradient norm, the non-finite check and the clip
// coefficient of the optimizers with kernels of their own (Muon, the Adafactor
// family; src/optim/grad_norm.rs), before their step's passes. The same two passes as
// reduce.wgsl's grad_sumsq and finalize_clip, over per-chunk partials
// (lib/chunk_partials.wgsl):
//   measure_norm:  one dispatch per tensor, one workgroup per chunk of it: the sum of
//                  g^2 in a fixed tree order (workgroup_sum) into the chunk's partial;
//                  flags a NaN or infinity
//   finalize_norm: one workgroup: the partials of every tensor summed in chunk order
//                  (partials_sum), the norm and its clip coefficient
//                  (lib/clip_coefficient.wgsl), and the step counted as completed
//                  or skipped
//
// Generated constants: WG_SIZE (invocations per workgroup, a power of two), ITEMS
// (elements per invocation); generated struct: NormTensor (src/optim/grad_norm.rs).
//
// Bindings (group 0):
//   0 tensor    uniform      NormTensor: the tensor (finalize_norm: all chunks)
//   1 grad      storage r    gradients (from tensor.grad_base)
//   2 partials  storage rw   per chunk: (bitcast sum of squares, 0)
//   3 status    storage rw   OwnStatus (lib/own_status.wgsl)

@group(0) @binding(0) var<uniform> tensor: NormTensor;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> status: OwnStatus;

const EXPONENT_BITS: u32 = 0x7f800000u;

@compute @workgroup_size(WG_SIZE)
fn measure_norm(inv: Invocation) {
    let chunk = chunk_of(inv);
    let lid = inv.lid;
    var sumsq = 0.0;
    var finite = true;
    for (var k = 0u; k < ITEMS; k++) {
        let i = chunk_element(chunk, k, lid);
        if chunk < tensor.chunks && i < tensor.len {
            let g = grad[tensor.grad_base + i];
            sumsq += g * g;
            finite = finite && (bitcast<u32>(g) & EXPONENT_BITS) != EXPONENT_BITS;
        }
    }
    if !finite {
        atomicOr(&status.found_inf, 1u);
    }
    let total = workgroup_sum(sumsq, lid);
    if lid == 0u && chunk < tensor.chunks {
        partials[tensor.partial_base + chunk] = vec2<u32>(bitcast<u32>(total), 0u);
    }
}

@compute @workgroup_size(WG_SIZE)
fn finalize_norm(@builtin(local_invocation_index) lid: u32) {
    let sumsq = partials_sum(0u, lid);
    if lid == 0u {
        let norm = sqrt(sumsq);
        status.grad_norm = norm;
        status.clip_coef = clip_coefficient(norm, tensor.clip_max_norm);
        if skipping() {
            status.skipped += 1u;
        } else {
            status.step += 1u;
        }
    }
}
