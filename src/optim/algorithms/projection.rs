//! AdamP's and SGDP's projection in f64 (timm/optim/adamp.py:29-61, `projection`),
//! shared by `adamp.rs` and `sgdp.rs`; the GPU side is `shaders/projection.wgsl`.
//!
//! For a tensor of rank > 1 (rows of `seg_len` elements: the channel view, then the
//! whole tensor: the layer view) the update `u` loses its component along the
//! parameter when the gradient is nearly orthogonal to it; caution then masks the
//! projected update against the projected gradient ("spherical" caution) and
//! projects the masked update again.

use super::{Direction, GroupHyper, Rules};
use crate::optim::config::Caution;
use crate::optim::reference::{DecayRate, Mask, TensorStep};
use crate::wgsl::{Part, ShaderBuilder, shader_part};

/// The projection hooks AdamP and SGDP share.
static PROJECTION: Part = shader_part!(
    "projection.wgsl",
    &[
        "segment_terms",
        "masked_terms",
        "segment_records_used",
        "projected_step",
        "finalize_segments",
        "finalize_masked",
    ],
    &[
        "perturb",
        "segment_total",
        "segment_record",
        "workgroup_sum4"
    ],
);

/// The projection's hyperparameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Projection {
    /// The threshold factor: a view projects when every |cos| < delta / sqrt(view length).
    pub delta: f64,
    /// Weight decay ratio where projected.
    pub wd_ratio: f64,
    /// Norm epsilon (cosine similarity clamps and `|p| + eps`).
    pub eps: f64,
}

/// One tensor's update after the projection and the mask.
pub(crate) struct Projected {
    /// The update to subtract (times the step size).
    pub update: Vec<f64>,
    /// The direction before the mask (cautious weight decay's test).
    pub direction: Vec<f64>,
    /// The weight decay ratio (`wd_ratio` where projected, else 1).
    pub wd_ratio: f64,
    /// (kept, ambiguous) coordinate counts of the mask.
    pub counts: (u64, u64),
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// |cos(p, g)| as torch's `cosine_similarity` (each norm clamped at `eps`).
fn abs_cosine(p: &[f64], g: &[f64], eps: f64) -> f64 {
    dot(p, g).abs() / (dot(g, g).sqrt().max(eps) * dot(p, p).sqrt().max(eps))
}

/// `x - p (p.x) / (|p| + eps)^2` on each run of `len` elements.
fn remove_radial(p: &[f64], x: &[f64], len: usize, eps: f64) -> Vec<f64> {
    p.chunks(len)
        .zip(x.chunks(len))
        .flat_map(|(p, x)| {
            let norm = dot(p, p).sqrt() + eps;
            let k = dot(p, x) / (norm * norm);
            p.iter().zip(x).map(move |(p, x)| x - p * k)
        })
        .collect()
}

impl Projection {
    /// The view that projects: rows of `seg_len` (channel), the whole tensor (layer),
    /// or none (`seg_len` 0: a vector is never projected).
    fn view(&self, p: &[f64], g: &[f64], seg_len: usize) -> Option<usize> {
        if seg_len == 0 {
            return None;
        }
        [seg_len, p.len()].into_iter().find(|&len| {
            let limit = self.delta / (len as f64).sqrt();
            p.chunks(len)
                .zip(g.chunks(len))
                .all(|(p, g)| abs_cosine(p, g, self.eps) < limit)
        })
    }

    /// Projects and masks `dir` (its `delta` is the update) against gradient `g`.
    pub fn apply(
        &self,
        p: &[f64],
        g: &[f64],
        dir: Direction,
        seg_len: usize,
        caution: Caution,
    ) -> Projected {
        let Some(len) = self.view(p, g, seg_len) else {
            let mask = Mask::new(caution, g, &dir);
            let update = dir
                .delta
                .iter()
                .zip(&mask.factors)
                .map(|(u, f)| u * f)
                .collect();
            return Projected {
                update,
                direction: dir.delta,
                wd_ratio: 1.0,
                counts: mask.counts,
            };
        };
        let u_perp = remove_radial(p, &dir.delta, len, self.eps);
        let g_perp = remove_radial(p, g, len, self.eps);
        let perp = Direction {
            sign_mag: dir
                .sign_mag
                .iter()
                .zip(&dir.delta)
                .zip(&u_perp)
                .map(|((m, u), v)| m + (u - v).abs())
                .collect(),
            sign_src: u_perp.clone(),
            delta: u_perp.clone(),
        };
        let mask = Mask::new(caution, &g_perp, &perp);
        let masked: Vec<f64> = u_perp
            .iter()
            .zip(&mask.factors)
            .map(|(u, f)| u * f)
            .collect();
        let update = if caution.is_on() {
            remove_radial(p, &masked, len, self.eps)
        } else {
            masked
        };
        Projected {
            update,
            direction: u_perp,
            wd_ratio: self.wd_ratio,
            counts: mask.counts,
        }
    }
}

impl Projection {
    /// `hyper` with the projection's own hyperparameters (GroupParams `delta`,
    /// `wd_ratio`: per group on the GPU, like the betas).
    pub fn group_hyper(&self, hyper: GroupHyper) -> GroupHyper {
        hyper.projection(self.delta, self.wd_ratio)
    }

    /// `module` with the projection's part, then the algorithm's `part`.
    pub fn shader(module: ShaderBuilder, part: &'static Part) -> ShaderBuilder {
        module.part(&PROJECTION).part(part)
    }

    /// Rows of `shape[1..]` for a tensor of rank > 1 (timm's channel view), else 0.
    pub fn row_len(shape: &[usize]) -> u64 {
        if shape.len() > 1 {
            shape[1..].iter().product::<usize>() as u64
        } else {
            0
        }
    }

    /// A projected algorithm's reference step: `rules`' direction at a unit rate, the
    /// projection and mask, decay scaled by the ratio over `decay_divisor`, then the
    /// step at the learning rate. Returns the mask's counts.
    pub fn reference_step(
        &self,
        rules: &impl Rules,
        mut x: TensorStep<'_>,
        decay_divisor: f64,
    ) -> (u64, u64) {
        let lr = x.step.lr();
        let dir = rules.reference_direction(&mut x.state, &x.step.at_unit_rate());
        let out = self.apply(x.p, x.step.g, dir, x.seg_len, x.caution);
        apply_step(x.p, &out, x.decay, out.wd_ratio / decay_divisor, lr);
        out.counts
    }
}

/// A direction of `len` coordinates, each `(delta, sign_src, sign_mag)` from `term(j)`.
pub(crate) fn collect_direction(
    len: usize,
    mut term: impl FnMut(usize) -> (f64, f64, f64),
) -> Direction {
    let mut dir = Direction {
        delta: Vec::with_capacity(len),
        sign_src: Vec::with_capacity(len),
        sign_mag: Vec::with_capacity(len),
    };
    for j in 0..len {
        let (delta, src, mag) = term(j);
        dir.delta.push(delta);
        dir.sign_src.push(src);
        dir.sign_mag.push(mag);
    }
    dir
}

/// `p` after decay at `rate` times `factor`, then the step `-step_size * update`.
fn apply_step(p: &mut [f64], x: &Projected, decay: DecayRate, factor: f64, step_size: f64) {
    let decay = DecayRate {
        rate: decay.rate * factor,
        ..decay
    };
    for (j, p) in p.iter_mut().enumerate() {
        *p = decay.apply(*p, x.direction[j]) - step_size * x.update[j];
    }
}
