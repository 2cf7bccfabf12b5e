// lib/clip_coefficient.wgsl: the factor of global gradient-norm clipping, as
// torch.nn.utils.clip_grad_norm_ computes it, for every optimizer that clips
// (reduce.wgsl's finalize_clip, grad_norm.wgsl's finalize_norm).

// torch.nn.utils.clip_grad_norm_ adds this to the norm.
const CLIP_EPS: f32 = 1e-6;

// min(1, max_norm / (norm + 1e-6)) of gradients of global norm `norm`; 1 when
// `max_norm` is 0 (no clipping).
fn clip_coefficient(norm: f32, max_norm: f32) -> f32 {
    if max_norm > 0.0 {
        return min(1.0, max_norm / (norm + CLIP_EPS));
    }
    return 1.0;
}
