//! Parameter layouts to benchmark: shaped like a transformer, one flat tensor, or
//! many equal small tensors.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

/// Tensors in the [`ModelLayout::ManySmall`] layout.
pub const MANY_SMALL_TENSORS: u64 = 200;

/// Smallest parameter count a layout is built for.
pub const MIN_PARAMS: u64 = 4096;

/// How a model's parameters are split into tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelLayout {
    /// A pre-norm transformer: per block a fused QKV matrix, an output projection and
    /// a 4x MLP (four weight matrices, their biases, two LayerNorms with weight and
    /// bias), plus a token embedding and a final LayerNorm: a few large matrices and
    /// many small vectors (about 100 tensors).
    Transformer,
    /// One flat tensor.
    Single,
    /// [`MANY_SMALL_TENSORS`] tensors of (nearly) equal size: compared with
    /// [`ModelLayout::Single`] of the same total, shows what the tensor count costs.
    ManySmall,
}

impl ModelLayout {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ModelLayout::Transformer => "transformer",
            ModelLayout::Single => "single",
            ModelLayout::ManySmall => "many-small",
        }
    }

    /// Named shapes of about `params` parameters (exactly `params` for `single` and
    /// `many-small`; within one embedding row for `transformer`).
    ///
    /// ```
    /// use coptim::bench::ModelLayout;
    /// let shapes = ModelLayout::Transformer.shapes(1 << 20).unwrap();
    /// let total: usize = shapes.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    /// assert!(total.abs_diff(1 << 20) < 1024);
    /// assert!(shapes.len() > 50);
    /// ```
    pub fn shapes(self, params: u64) -> Result<Vec<(String, Vec<usize>)>> {
        if params < MIN_PARAMS {
            return Err(Error::InvalidConfig(format!(
                "{params} parameters: a benchmark layout needs at least {MIN_PARAMS}"
            )));
        }
        let p = params as usize;
        Ok(match self {
            ModelLayout::Single => vec![("w".into(), vec![p])],
            ModelLayout::ManySmall => {
                let n = MANY_SMALL_TENSORS as usize;
                (0..n)
                    .map(|i| {
                        let len = p / n + usize::from(i < p % n);
                        (format!("t{i}"), vec![len])
                    })
                    .collect()
            }
            ModelLayout::Transformer => transformer(p),
        })
    }
}

/// Blocks of width `d`: 12 d^2 weights and 13 d biases and norm parameters each.
fn block_params(d: usize) -> usize {
    12 * d * d + 13 * d
}

fn transformer(p: usize) -> Vec<(String, Vec<usize>)> {
    const MAX_LAYERS: usize = 8;
    // Width: a multiple of 16 such that MAX_LAYERS blocks fit in the budget.
    let d = ((((p / (12 * MAX_LAYERS)) as f64).sqrt() as usize) / 16 * 16).max(16);
    let layers = (p.saturating_sub(2 * d) / block_params(d)).clamp(1, MAX_LAYERS);
    let mut out = Vec::new();
    for l in 0..layers {
        let b = format!("blocks.{l}");
        out.push((format!("{b}.ln1.weight"), vec![d]));
        out.push((format!("{b}.ln1.bias"), vec![d]));
        out.push((format!("{b}.attn.qkv.weight"), vec![3 * d, d]));
        out.push((format!("{b}.attn.qkv.bias"), vec![3 * d]));
        out.push((format!("{b}.attn.proj.weight"), vec![d, d]));
        out.push((format!("{b}.attn.proj.bias"), vec![d]));
        out.push((format!("{b}.ln2.weight"), vec![d]));
        out.push((format!("{b}.ln2.bias"), vec![d]));
        out.push((format!("{b}.mlp.fc1.weight"), vec![4 * d, d]));
        out.push((format!("{b}.mlp.fc1.bias"), vec![4 * d]));
        out.push((format!("{b}.mlp.fc2.weight"), vec![d, 4 * d]));
        out.push((format!("{b}.mlp.fc2.bias"), vec![d]));
    }
    out.push(("ln_f.weight".into(), vec![d]));
    out.push(("ln_f.bias".into(), vec![d]));
    // The embedding takes what is left (at least one row).
    let used = layers * block_params(d) + 2 * d;
    let rows = (p.saturating_sub(used) / d).max(1);
    out.insert(0, ("tok_embed.weight".into(), vec![rows, d]));
    out
}

impl fmt::Display for ModelLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelLayout {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "transformer" => Ok(ModelLayout::Transformer),
            "single" => Ok(ModelLayout::Single),
            "many-small" => Ok(ModelLayout::ManySmall),
            _ => Err(Error::InvalidConfig(format!(
                "unknown layout `{s}` (transformer, single, many-small)"
            ))),
        }
    }
}

/// Parses a parameter count with an optional binary suffix: `4096`, `64K`, `1M`,
/// `1G` (K = 2^10, M = 2^20, G = 2^30).
///
/// ```
/// assert_eq!(coptim::bench::parse_count("16M").unwrap(), 16 << 20);
/// assert_eq!(coptim::bench::parse_count("1000").unwrap(), 1000);
/// ```
pub fn parse_count(s: &str) -> Result<u64> {
    let t = s.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| Error::InvalidConfig(format!("`{s}` is not a count like 4096, 64K or 16M")))
}

/// Formats a count with the largest exact binary suffix (`16M`, `65K`, `1000`).
pub fn format_count(n: u64) -> String {
    for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{suffix}", n >> shift);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(shapes: &[(String, Vec<usize>)]) -> u64 {
        shapes
            .iter()
            .map(|(_, s)| s.iter().product::<usize>() as u64)
            .sum()
    }

    #[test]
    fn layouts_hold_the_requested_parameters() {
        for p in [MIN_PARAMS, 65_536, 1 << 20, 16 << 20, 64 << 20] {
            assert_eq!(total(&ModelLayout::Single.shapes(p).unwrap()), p);
            let many = ModelLayout::ManySmall.shapes(p).unwrap();
            assert_eq!(many.len() as u64, MANY_SMALL_TENSORS);
            assert_eq!(total(&many), p);
            let tr = ModelLayout::Transformer.shapes(p).unwrap();
            let d = tr.iter().find(|(n, _)| n == "ln_f.weight").unwrap().1[0] as u64;
            assert!(total(&tr).abs_diff(p) <= d, "{p}: {}", total(&tr));
        }
        assert!(ModelLayout::Single.shapes(MIN_PARAMS - 1).is_err());
    }

    #[test]
    fn counts_parse_and_print() {
        assert_eq!(parse_count("64k").unwrap(), 65_536);
        assert_eq!(parse_count("1G").unwrap(), 1 << 30);
        assert!(parse_count("x").is_err());
        assert!(parse_count("").is_err());
        assert_eq!(format_count(16 << 20), "16M");
        assert_eq!(format_count(1000), "1000");
        assert_eq!(
            "many-small".parse::<ModelLayout>().unwrap(),
            ModelLayout::ManySmall
        );
    }
}
