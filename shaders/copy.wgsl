// copy.wgsl: the bandwidth yardstick of `coptim bench`: dst[i] = src[i].
//
// One workgroup copies one block of WG_SIZE * VEC_PER_THREAD vec4s; invocation `lid`
// handles the vec4s that block_slot(k, lid) names (src/access.rs, AccessPattern):
// strided across the workgroup (coalesced on GPUs) or a contiguous run per invocation
// (CPU adapters). Whole blocks skip the per-load bounds check.
//
// Constants prepended by Rust (src/bench/copy.rs), not declared here:
//   WG_SIZE         u32   invocations per workgroup
//   VEC_PER_THREAD  u32   vec4s per invocation
//   CONTIGUOUS      bool  true: a contiguous run per invocation; false: strided
//
// Bindings (group 0):
//   0 src    storage r    array<vec4<f32>>, the chunk read
//   1 dst    storage rw   array<vec4<f32>>, the chunk written (same length)
//   2 info   uniform      CopyInfo: vec4s in the chunk, workgroups along x

const BLOCK_VEC4: u32 = WG_SIZE * VEC_PER_THREAD;

struct CopyInfo {
    len_vec4: u32,
    grid_x: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> info: CopyInfo;

// Offset within the block of invocation `lid`'s k-th vec4.
fn block_slot(k: u32, lid: u32) -> u32 {
    if CONTIGUOUS {
        return lid * VEC_PER_THREAD + k;
    }
    return k * WG_SIZE + lid;
}

@compute @workgroup_size(WG_SIZE)
fn copy(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let base = (wg.x + wg.y * info.grid_x) * BLOCK_VEC4;
    if base + BLOCK_VEC4 <= info.len_vec4 {
        for (var k = 0u; k < VEC_PER_THREAD; k++) {
            let i = base + block_slot(k, lid);
            dst[i] = src[i];
        }
    } else {
        for (var k = 0u; k < VEC_PER_THREAD; k++) {
            let i = base + block_slot(k, lid);
            if i < info.len_vec4 {
                dst[i] = src[i];
            }
        }
    }
}
