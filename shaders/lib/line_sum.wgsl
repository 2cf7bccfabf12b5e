// lib/line_sum.wgsl: an ordered sum along a strided line, in chunks.
//
// Adds SUM_CHUNK consecutive terms at a time and the chunk sums in order: an error of
// about SUM_CHUNK + count / SUM_CHUNK ulps instead of count for a plain running sum,
// deterministic and without atomics.
//
// Needs the constant SUM_CHUNK and from the module line_term(at): the term at index
// `at` of the array it sums.

// The sum of line_term over `count` indices from `first`, `stride` apart.
fn line_sum(first: u32, stride: u32, count: u32) -> f32 {
    var total = 0.0;
    for (var c = 0u; c < count; c += SUM_CHUNK) {
        var chunk = 0.0;
        for (var i = c; i < min(c + SUM_CHUNK, count); i++) {
            chunk += line_term(first + i * stride);
        }
        total += chunk;
    }
    return total;
}
