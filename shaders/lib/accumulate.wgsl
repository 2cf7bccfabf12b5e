// lib/accumulate.wgsl: the value every backward kernel stores for a gradient.
//
// The first op (in backward order) to reach a tensor overwrites its gradient and
// later ones add to it (GradMode in src/nn/ops/mod.rs), so no gradient buffer needs
// clearing between steps; `accumulate` is the op's flag for that tensor:
//   dst[i] = accumulated(v, dst[i], params.accumulate);

// `v`, plus the stored value `old` when accumulating.
fn accumulated(v: f32, old: f32, accumulate: u32) -> f32 {
    if accumulate != 0u {
        return old + v;
    }
    return v;
}
