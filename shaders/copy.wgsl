// copy.wgsl: the bandwidth yardstick of `coptim bench`: dst[i] = src[i].
//
// Reads one buffer and writes another with the same access pattern as the optimizer
// kernels (vec4<f32> loads, WG_SIZE invocations per workgroup, VEC_PER_THREAD vec4s
// per invocation, strided by WG_SIZE so that neighbouring invocations touch
// neighbouring vec4s), so its bandwidth is what an optimizer pass can hope for.
//
// Bindings (group 0):
//   0 src    storage r    array<vec4<f32>>, the chunk read
//   1 dst    storage rw   array<vec4<f32>>, the chunk written (same length)
//   2 info   uniform      CopyInfo: vec4s in the chunk, workgroups along x
//
// Pipeline-overridable constant:
//   VEC_PER_THREAD  vec4s per invocation (the optimizer kernels' value, set from Rust)

const WG_SIZE: u32 = 256u;
override VEC_PER_THREAD: u32 = 4u;

struct CopyInfo {
    len_vec4: u32,
    grid_x: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> info: CopyInfo;

@compute @workgroup_size(WG_SIZE)
fn copy(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let base = (wg.x + wg.y * info.grid_x) * WG_SIZE * VEC_PER_THREAD;
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        let i = base + k * WG_SIZE + lid;
        if i < info.len_vec4 {
            dst[i] = src[i];
        }
    }
}
