// lib/row_logsumexp.wgsl: the pieces of a numerically safe log-sum-exp over a row of
// the module's `x` binding (softmax, the cross-entropy rows), reduced over the row's
// team (lib/rows_team.wgsl; banks 0 and 1).

// The maximum m of x[base .. base + n] and the sum of exp(x - m) over it, valid in
// every invocation of the team. Every invocation of the team must call it.
fn row_max_sum_exp(lid: u32, base: u32, n: u32) -> vec2<f32> {
    // Invocations past the end of a short row contribute its first element.
    var m = x[base];
    for (var j = row_lane(lid); j < n; j += ROW_LANES) {
        m = max(m, x[base + j]);
    }
    m = row_max(lid, m, 0u);
    var s = 0.0;
    for (var j = row_lane(lid); j < n; j += ROW_LANES) {
        s += exp(x[base + j] - m);
    }
    return vec2<f32>(m, row_sum(lid, s, 1u));
}
