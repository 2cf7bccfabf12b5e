// lib/caution_scale.wgsl: the factor that rescales a caution mask (config.rs
// Normalization::scale), for every optimizer's kernels.

// Normalization kinds, the words Rust writes from Caution::norm_words.
const NORM_MEAN_CLAMP: u32 = 0u;
const NORM_NUMEL_OVER_COUNT_PLUS_ONE: u32 = 1u;
const NORM_MEAN_PLUS_EPS: u32 = 2u;

// The scale of a mask with `kept` agreeing coordinates out of `n`, a disagreeing one
// weighing `disagree`; `param` is mean_clamp's min or mean_plus_eps's eps. The
// disagreeing count n - kept is taken exactly in u32 before its one rounding to f32.
fn caution_scale(kept: u32, n: u32, disagree: f32, kind: u32, param: f32) -> f32 {
    let len = f32(n);
    let mask_sum = f32(kept) + disagree * f32(n - kept);
    switch kind {
        case NORM_NUMEL_OVER_COUNT_PLUS_ONE: {
            return len / (mask_sum + 1.0);
        }
        case NORM_MEAN_PLUS_EPS: {
            return 1.0 / (mask_sum / len + param);
        }
        default: {
            return 1.0 / max(mask_sum / len, param);
        }
    }
}
