//! [`generate`]: autoregressive sampling from a language model.

use rand::RngExt;

use crate::error::{Error, Result};
use crate::model::arch::InputKind;
use crate::model::init::rng_for_seed;
use crate::model::runtime::{Inputs, Model};

/// How each next token is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Softmax temperature, positive: below 1 sharper, above 1 flatter.
    pub temperature: f64,
    /// Draw only among the `k` most probable tokens (`None`: all).
    pub top_k: Option<usize>,
    /// Seed of the draws: the same seed, model and prompt give the same text.
    pub seed: u64,
}

impl Sampling {
    fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "the temperature must be positive and finite, got {}",
                self.temperature
            )));
        }
        if self.top_k == Some(0) {
            return Err(Error::InvalidConfig("top-k must be at least 1".into()));
        }
        Ok(())
    }
}

/// `length` tokens drawn one at a time after `prompt` (token ids) from a language
/// model: each step runs the model on the last `context` tokens (the prompt and what
/// was drawn so far; a shorter window is padded on the right, which causal attention
/// never reads) and draws from its next-token distribution at `sampling`'s
/// temperature and top-k. Returns only the drawn tokens. Fails with
/// [`Error::InvalidConfig`] for an image model, an empty prompt or bad sampling
/// options, and with [`Error::LabelOutOfRange`] for a prompt id outside the
/// vocabulary.
pub async fn generate(
    model: &mut Model,
    prompt: &[u32],
    length: usize,
    sampling: &Sampling,
) -> Result<Vec<u32>> {
    sampling.validate()?;
    if model.io().input != InputKind::Tokens {
        return Err(Error::InvalidConfig(format!(
            "the {} model does not read tokens",
            model.io().name
        )));
    }
    if prompt.is_empty() {
        return Err(Error::InvalidConfig("the prompt is empty".into()));
    }
    let (context, vocab) = (model.sample_len(), model.io().classes);
    let mut rng = rng_for_seed(sampling.seed);
    let mut tokens = prompt.to_vec();
    for _ in 0..length {
        let window = &tokens[tokens.len().saturating_sub(context)..];
        let last = window.len() - 1;
        let mut ids = window.to_vec();
        ids.resize(context, 0);
        let probs = model.predict(Inputs::Tokens(&ids), 1).await?;
        let row = &probs[last * vocab..(last + 1) * vocab];
        tokens.push(draw(row, sampling, rng.random::<f64>()));
    }
    Ok(tokens.split_off(prompt.len()))
}

/// Blocking form of [`generate`].
#[cfg(not(target_arch = "wasm32"))]
pub fn generate_blocking(
    model: &mut Model,
    prompt: &[u32],
    length: usize,
    sampling: &Sampling,
) -> Result<Vec<u32>> {
    pollster::block_on(generate(model, prompt, length, sampling))
}

/// The token a uniform draw `u` in `[0, 1)` picks from `probs` reweighted to
/// `p^(1 / temperature)` over the top-k tokens (ties keep the lower id).
fn draw(probs: &[f32], sampling: &Sampling, u: f64) -> u32 {
    let mut ranked: Vec<(usize, f64)> = probs
        .iter()
        .enumerate()
        .map(|(i, &p)| (i, f64::from(p).max(0.0).powf(1.0 / sampling.temperature)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(sampling.top_k.unwrap_or(ranked.len()));
    let total: f64 = ranked.iter().map(|(_, w)| w).sum();
    let mut target = u * total;
    for &(i, w) in &ranked {
        if target < w {
            return i as u32;
        }
        target -= w;
    }
    ranked[0].0 as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(temperature: f64, top_k: Option<usize>) -> Sampling {
        Sampling {
            temperature,
            top_k,
            seed: 0,
        }
    }

    #[test]
    fn draws_follow_the_reweighted_distribution() {
        let probs = [0.1, 0.6, 0.3];
        let s = sampling(1.0, None);
        // Cumulative 0.6 (id 1), 0.9 (id 2), 1.0 (id 0), in ranked order.
        assert_eq!(
            [0.0, 0.59, 0.61, 0.89, 0.95].map(|u| draw(&probs, &s, u)),
            [1, 1, 2, 2, 0]
        );
        // Top-1 is greedy whatever the draw; a low temperature nearly so.
        assert!(
            [0.0, 0.5, 0.999]
                .iter()
                .all(|&u| draw(&probs, &sampling(1.0, Some(1)), u) == 1)
        );
        assert_eq!(draw(&probs, &sampling(0.05, None), 0.999), 1);
        // Top-2 renormalizes over ids 1 and 2: 0.6 / 0.9 = 0.667.
        assert_eq!(draw(&probs, &sampling(1.0, Some(2)), 0.7), 2);
    }
}
