// muon_scale.wgsl: dst = scale * src, the b * A and a * X terms of a Newton-Schulz
// iteration that the products then accumulate into (src/optim/muon/newton_schulz.rs).
//
// Generated constant: WG_SIZE.
//
// Bindings (group 0):
//   0 params  uniform      ScaleParams (len, scale)
//   1 src     storage r    the batch to scale
//   2 dst     storage rw   where the scaled batch goes

struct ScaleParams {
    len: u32,
    scale: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: ScaleParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn scale_copy(inv: Invocation) {
    let i = flat_index(inv);
    if i < params.len {
        dst[i] = params.scale * src[i];
    }
}
