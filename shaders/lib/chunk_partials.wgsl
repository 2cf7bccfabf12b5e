// lib/chunk_partials.wgsl: a tensor's totals from per-chunk partials, in two passes.
//
// A chunked pass gives each workgroup one chunk of WG_SIZE * ITEMS elements of a
// tensor: its invocation `lid` takes elements chunk_element(chunk, k, lid) for
// k < ITEMS, and the workgroup leaves one partial of two words for the chunk (f32
// sums as bits, or u32 counts). A finalize pass of one workgroup per tensor joins the
// tensor's partials with partials_sum (f32 words, in a fixed order) or
// partials_count (u32 words, exact).
//
// Needs the constants WG_SIZE and ITEMS, lib/grid.wgsl, workgroup_sum and
// workgroup_count, and from the module: chunk_partial(c), the partial of chunk c of the dispatch's tensor, and
// chunk_count(), its number of chunks. Every invocation of the workgroup must call
// the joining functions (they have barriers).

// The chunk of a chunked pass's invocation (its workgroup's index in the grid).
fn chunk_of(inv: Invocation) -> u32 {
    return workgroup_linear(inv.wg, inv.nwg);
}

// Element `k` of invocation `lid` in chunk `chunk` (adjacent invocations read
// adjacent elements).
fn chunk_element(chunk: u32, k: u32, lid: u32) -> u32 {
    return (chunk * ITEMS + k) * WG_SIZE + lid;
}

// The sum over the tensor's chunks of f32 word `w` of their partials.
fn partials_sum(w: u32, lid: u32) -> f32 {
    var total = 0.0;
    for (var c = lid; c < chunk_count(); c += WG_SIZE) {
        total += bitcast<f32>(chunk_partial(c)[w]);
    }
    return workgroup_sum(total, lid);
}

// The sum over the tensor's chunks of u32 count `w` of their partials.
fn partials_count(w: u32, lid: u32) -> u32 {
    var total = 0u;
    for (var c = lid; c < chunk_count(); c += WG_SIZE) {
        total += chunk_partial(c)[w];
    }
    return workgroup_count(total, lid);
}
