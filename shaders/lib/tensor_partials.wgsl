// lib/tensor_partials.wgsl: the module side of lib/chunk_partials.wgsl for the
// optimizers with kernels of their own (Muon, the Adafactor family, the gradient
// norm): the dispatch's tensor is the module's uniform `tensor` (its `partial_base`
// and `chunks`) and its partials are the module's binding
// `partials: array<vec2<u32>>`.

// The partial of chunk c of the dispatch's tensor.
fn chunk_partial(c: u32) -> vec2<u32> {
    return partials[tensor.partial_base + c];
}

// The dispatch's tensor's number of chunks.
fn chunk_count() -> u32 {
    return tensor.chunks;
}
