// lib/own_status.wgsl: the step status of the optimizers with kernels of their own
// (Muon, the Adafactor family; src/optim/grad_norm.rs): its first four words are laid
// out as the engine's StatusRw (optim_common.wgsl), so that Muon's fallback AdamW
// takes the flag and the clip coefficient from it by buffer copies. skipping() reads
// the module's binding `status: OwnStatus`.

struct OwnStatus {
    // non-zero when a gradient of this step is NaN or infinite (cleared each step)
    found_inf: atomic<u32>,
    // completed (not skipped) steps, this one included once counted
    step: u32,
    // this step's clip coefficient (1 when not clipping)
    clip_coef: f32,
    // this step's global gradient norm, before clipping
    grad_norm: f32,
    // steps skipped since the optimizer was built
    skipped: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Whether this step is skipped (a gradient was found not finite).
fn skipping() -> bool {
    return atomicLoad(&status.found_inf) != 0u;
}
