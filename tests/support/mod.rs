//! Test support for the gradient-norm clipping of the optimizers with kernels of
//! their own (Adafactor, Muon): the gradients a clipped GPU step sees and those its
//! f64 reference steps on.

/// One clipped step's gradients.
pub struct ClippedStep {
    /// The gradients times the step's scale, as the GPU sees them (f32, in f64).
    pub grads: Vec<Vec<f64>>,
    /// `grads` scaled by torch's `clip_grad_norm_` coefficient.
    pub scaled: Vec<Vec<f64>>,
    /// `min(1, max_norm / (norm + 1e-6))`, `norm` the f64 global norm of `grads`.
    pub coef: f64,
}

/// The step on `grads` times `scale`, clipped to `max_norm`.
pub fn clipped_step(grads: &[Vec<f64>], scale: f64, max_norm: f64) -> ClippedStep {
    let grads: Vec<Vec<f64>> = grads
        .iter()
        .map(|g| g.iter().map(|x| f64::from((x * scale) as f32)).collect())
        .collect();
    let norm = grads.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    let coef = (max_norm / (norm + 1e-6)).min(1.0);
    let scaled = grads
        .iter()
        .map(|g| g.iter().map(|x| x * coef).collect())
        .collect();
    ClippedStep {
        grads,
        scaled,
        coef,
    }
}
