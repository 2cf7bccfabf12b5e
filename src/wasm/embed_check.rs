//! The embedding flow of `examples/embed.rs` and `examples/embed_interleaved.rs`, run
//! in the browser on the page's device and checked against the f64 reference
//! ([`ReferenceOptimizer`]).
//!
//! The "caller" here owns three buffers: `dense` (a header word, then tensors `w`
//! `[7, 5]` and `b` `[5]` one word apart), `splats` (a three-word header, then the
//! interleaved fields `position` `[N, 3]`, `opacity` `[N]` and `color` `[N, 3]`) and
//! `grads` (every gradient, packed from byte 8 one word apart). Every tensor starts
//! at a 4-byte aligned offset that no storage binding could start at. It uploads
//! every step's gradient into a staging buffer, then records, into ONE command
//! encoder of its own, for each step a copy of that step's gradient into `grads`
//! and coptim's step with the caller's learning rate for that step (a cosine it
//! computes; `color` runs at twice the rate through a group). One submit; the
//! per-step records come back through the async readback path.

use serde::{Deserialize, Serialize};
use wgpu::util::DeviceExt;

use crate::GpuContext;
use crate::arena::{BufferView, ParamSet, ParamSpec, read_buffer};
use crate::error::{Error, Result};
use crate::optim::{
    GroupConfig, LrSchedule, Optimizer, OptimizerConfig, ReferenceOptimizer, StepInputs,
};
use crate::train::OptimizerKind;

/// Relative tolerance of every tensor's parameters against the f64 reference (max
/// |gpu - ref| / max |ref|): the one of `tests/embed_views.rs`, where f32 kernels stay
/// within a few ulps of the parameters' scale over a few steps.
pub const PARAM_TOLERANCE: f64 = 1e-6;
/// Relative tolerance of the recorded gradient norm against the reference's: an f32
/// sum of under a thousand squares in a tree errs by a few ulps, far below this.
pub const GRAD_NORM_TOLERANCE: f64 = 1e-5;

/// Most steps one check records.
const MAX_STEPS: usize = 32;
/// Splats in the interleaved buffer.
const SPLATS: usize = 40;
/// The words in front of the tensors of `dense` and `splats`; never written by coptim.
const DENSE_HEADER: [u32; 1] = [0xC0FF_EE00];
const SPLAT_HEADER: [u32; 3] = [SPLATS as u32, 1, 0xC0FF_EE01];
/// Words between consecutive tensors of `dense` and `grads`.
const GAP_WORDS: usize = 1;
/// First byte of the packed gradients in `grads`.
const GRAD_START: u64 = 8;
/// Every word outside a tensor holds this, and must still hold it at the end.
const SENTINEL: f32 = 1234.5;
/// The global gradient-norm clip: the gradients' norm is about 3, so it acts.
const CLIP: f64 = 2.0;
/// The cosine's floor, as a fraction of the peak rate.
const LR_FLOOR: f64 = 0.1;

/// What the page asks for, as JSON: `{ optimizer, lr, weightDecay, steps, seed, fault }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckOptions {
    /// A cautious member's timm name (`cadamw`, `clamb`, ...).
    pub optimizer: String,
    /// Peak learning rate of the caller's cosine.
    pub lr: f64,
    /// Decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Steps recorded into the one encoder (1 to 32).
    pub steps: usize,
    /// Seed of the initial parameters and the gradients.
    #[serde(default)]
    pub seed: u64,
    /// A bad input to feed: `nonfinite` (a NaN in the middle step's gradient) or
    /// `out-of-range` (the `b` view runs past its buffer).
    #[serde(default)]
    pub fault: Option<Fault>,
}

/// The bad inputs the check can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// A NaN in one coordinate of the middle step's gradient: that step is skipped.
    Nonfinite,
    /// The view of `b` ends past the end of `dense`: the parameter set is refused.
    OutOfRange,
}

/// One step's record next to the reference's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepCheck {
    /// The record's scheduled step.
    pub step: u64,
    /// The learning rate the record reports and the caller's cosine at this step.
    pub lr: [f64; 2],
    /// The record's found-inf flag (the step was skipped) and the reference's.
    pub skipped: [bool; 2],
    /// Kept coordinates per tensor: the record's.
    pub kept: Vec<u64>,
    /// Kept coordinates per tensor: the reference's.
    pub expected_kept: Vec<u64>,
    /// Per tensor, how many coordinates' masks f32 rounding may flip.
    pub ambiguous: Vec<u64>,
    /// The record's gradient norm and the reference's (null when not finite).
    pub grad_norm: [f64; 2],
}

/// What the check found; the page's test decides with it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// The optimizer's display name, e.g. `C-AdamW`.
    pub optimizer: String,
    /// Tensor names, in the order of every per-tensor list.
    pub tensors: Vec<String>,
    /// Elements per tensor.
    pub numel: Vec<u64>,
    /// One entry per record that came back, in order.
    pub steps: Vec<StepCheck>,
    /// Completed (not skipped) steps on the GPU after the last record.
    pub completed_steps: u64,
    /// Per tensor, max |gpu - ref| / max |ref| of the final parameters.
    pub rel_error: Vec<f64>,
    /// The largest of `rel_error`.
    pub max_rel_error: f64,
    /// [`PARAM_TOLERANCE`].
    pub tolerance: f64,
    /// [`GRAD_NORM_TOLERANCE`].
    pub grad_norm_tolerance: f64,
    /// Words outside the tensors (headers, gaps) that changed: must be 0.
    pub neighbours_written: usize,
}

/// Runs the check on `ctx`; a bad view or option is an error, a non-finite gradient
/// shows in the report.
pub async fn run(ctx: &GpuContext, options: &CheckOptions) -> Result<CheckReport> {
    let mut config = options.config()?;
    let caller = CallerBuffers::new(ctx, options)?;
    let params = ParamSet::from_views(ctx, &caller.specs(options.fault))?;
    let schedule = config.schedule;
    config.schedule = LrSchedule::Constant;
    let mut opt = Optimizer::new(ctx, &params, config.clone())?;
    config.schedule = schedule;
    let mut reference = ReferenceOptimizer::new(config.clone(), &caller.lens())?;
    let grads: Vec<Vec<Vec<f32>>> = (1..=options.steps)
        .map(|step| caller.gradients(options, step))
        .collect();
    let staging = caller.gradient_staging(ctx, &grads);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    for step in 1..=options.steps {
        let at = (step as u64 - 1) * caller.grads.size();
        encoder.copy_buffer_to_buffer(&staging, at, &caller.grads, 0, caller.grads.size());
        let lr = config.lr * schedule.factor(step as u64);
        opt.record_step(&mut encoder, &StepInputs::lr(lr))?;
    }
    ctx.queue().submit([encoder.finish()]);

    let mut expected = caller.initial_params();
    let mut steps = Vec::with_capacity(options.steps);
    let mut completed_steps = 0;
    for step_grads in &grads {
        let record = opt.next_stats().await?;
        let wide: Vec<Vec<f64>> = step_grads.iter().map(|g| widen(g)).collect();
        let want = reference.step(&mut expected, &wide)?;
        completed_steps = record.completed_steps;
        steps.push(StepCheck {
            step: record.scheduled_step,
            lr: [
                record.lr,
                config.lr * schedule.factor(record.scheduled_step),
            ],
            skipped: [record.skipped, want.skipped],
            kept: record.kept,
            expected_kept: want.kept,
            ambiguous: want.ambiguous,
            grad_norm: [f64::from(record.grad_norm), want.grad_norm],
        });
    }
    let rel_error = caller.param_errors(ctx, &expected).await?;
    Ok(CheckReport {
        optimizer: OptimizerKind::from_name(&options.optimizer)?.label(),
        tensors: caller.layout.iter().map(|t| t.name.to_string()).collect(),
        numel: caller.lens().iter().map(|(_, n)| *n as u64).collect(),
        steps,
        completed_steps,
        max_rel_error: rel_error.iter().copied().fold(0.0, f64::max),
        rel_error,
        tolerance: PARAM_TOLERANCE,
        grad_norm_tolerance: GRAD_NORM_TOLERANCE,
        neighbours_written: caller.neighbours_written(ctx).await?,
    })
}

impl CheckOptions {
    /// The optimizer from its timm name, with the clip, the `color` group and the
    /// caller's cosine (for the reference; the GPU gets each step's rate).
    fn config(&self) -> Result<OptimizerConfig> {
        if !(1..=MAX_STEPS).contains(&self.steps) {
            return Err(Error::InvalidConfig(format!(
                "between 1 and {MAX_STEPS} steps, got {}",
                self.steps
            )));
        }
        let kwargs = serde_json::json!({ "lr": self.lr, "weight_decay": self.weight_decay });
        let config = OptimizerConfig::from_timm(&self.optimizer, &kwargs)?;
        if !config.caution.is_on() {
            return Err(Error::InvalidConfig(format!(
                "`{}` is not a cautious member",
                self.optimizer
            )));
        }
        Ok(config
            .with_clip_grad_norm(CLIP)
            .with_group(GroupConfig {
                name: "color".into(),
                tensors: vec!["color".into()],
                lr_scale: 2.0,
                weight_decay: self.weight_decay,
            })
            .with_schedule(LrSchedule::Cosine {
                total: self.steps as u64,
                floor: LR_FLOOR,
            }))
    }
}

/// Which buffer of the caller a tensor lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    Dense,
    Splats,
}

/// One tensor of the caller: name, shape, buffer, byte offset of its parameters and
/// of its gradient.
#[derive(Debug, Clone)]
struct Placed {
    name: &'static str,
    shape: Vec<usize>,
    home: Home,
    offset: u64,
    grad_offset: u64,
}

impl Placed {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The caller's tensors, each placed in its buffer.
fn placement() -> Vec<Placed> {
    let tensors: [(&str, Vec<usize>, Home); 5] = [
        ("w", vec![7, 5], Home::Dense),
        ("b", vec![5], Home::Dense),
        ("position", vec![SPLATS, 3], Home::Splats),
        ("opacity", vec![SPLATS], Home::Splats),
        ("color", vec![SPLATS, 3], Home::Splats),
    ];
    let gap = 4 * GAP_WORDS as u64;
    let mut dense_at = 4 * DENSE_HEADER.len() as u64;
    let mut splat_at = 4 * SPLAT_HEADER.len() as u64;
    let mut grad_at = GRAD_START;
    // The byte `at` points to, then `at` moved past `bytes` more.
    let advance = |at: &mut u64, bytes: u64| {
        let first = *at;
        *at += bytes;
        first
    };
    tensors
        .into_iter()
        .map(|(name, shape, home)| {
            let bytes = 4 * shape.iter().product::<usize>() as u64;
            let offset = match home {
                Home::Dense => advance(&mut dense_at, bytes + gap),
                Home::Splats => advance(&mut splat_at, bytes),
            };
            let grad_offset = advance(&mut grad_at, bytes + gap);
            Placed {
                name,
                shape,
                home,
                offset,
                grad_offset,
            }
        })
        .collect()
}

/// The caller's buffers and what they held at the start.
struct CallerBuffers {
    layout: Vec<Placed>,
    dense: wgpu::Buffer,
    splats: wgpu::Buffer,
    grads: wgpu::Buffer,
    /// The words `dense` and `splats` start with.
    start: [Vec<f32>; 2],
}

impl CallerBuffers {
    /// Fills `dense` and `splats` with the header, sentinels and random parameters,
    /// and `grads` with sentinels.
    fn new(ctx: &GpuContext, options: &CheckOptions) -> Result<Self> {
        let layout = placement();
        let start = [Home::Dense, Home::Splats].map(|home| initial_words(&layout, home, options));
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let init = |label: &str, words: &[f32]| {
            ctx.device()
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(words),
                    usage,
                })
        };
        let last = layout.last().expect("tensors");
        let grad_words = (last.grad_offset / 4) as usize + last.len() + GAP_WORDS;
        Ok(Self {
            dense: init("caller dense", &start[0]),
            splats: init("caller splats", &start[1]),
            grads: init("caller grads", &vec![SENTINEL; grad_words]),
            layout,
            start,
        })
    }

    fn buffer(&self, home: Home) -> &wgpu::Buffer {
        match home {
            Home::Dense => &self.dense,
            Home::Splats => &self.splats,
        }
    }

    /// Views of every tensor; with [`Fault::OutOfRange`], `b` starts one word short of
    /// the end of `dense`.
    fn specs(&self, fault: Option<Fault>) -> Vec<ParamSpec> {
        self.layout
            .iter()
            .map(|t| {
                let buffer = self.buffer(t.home);
                let offset = match fault {
                    Some(Fault::OutOfRange) if t.name == "b" => buffer.size() - 4,
                    _ => t.offset,
                };
                ParamSpec::new(t.name, &t.shape, BufferView::new(buffer, offset))
                    .with_grad(BufferView::new(&self.grads, t.grad_offset))
            })
            .collect()
    }

    fn lens(&self) -> Vec<(&'static str, usize)> {
        self.layout.iter().map(|t| (t.name, t.len())).collect()
    }

    /// Every tensor's starting parameters, widened for the reference.
    fn initial_params(&self) -> Vec<Vec<f64>> {
        self.layout
            .iter()
            .map(|t| {
                let words = &self.start[t.home as usize];
                let first = (t.offset / 4) as usize;
                widen(&words[first..first + t.len()])
            })
            .collect()
    }

    /// Step `step`'s gradient of every tensor (a NaN in the middle step's first
    /// coordinate with [`Fault::Nonfinite`]).
    fn gradients(&self, options: &CheckOptions, step: usize) -> Vec<Vec<f32>> {
        let mut grads: Vec<Vec<f32>> = (0u64..)
            .zip(&self.layout)
            .map(|(i, t)| noise(options.seed, 1000 * step as u64 + i, t.len(), 0.1))
            .collect();
        if options.fault == Some(Fault::Nonfinite) && step == options.steps.div_ceil(2) {
            grads[2][0] = f32::NAN;
        }
        grads
    }

    /// A buffer of every step's `grads` contents, one after the other.
    fn gradient_staging(&self, ctx: &GpuContext, steps: &[Vec<Vec<f32>>]) -> wgpu::Buffer {
        let words = (self.grads.size() / 4) as usize;
        let mut all = Vec::with_capacity(words * steps.len());
        for step in steps {
            let mut packed = vec![SENTINEL; words];
            for (t, g) in self.layout.iter().zip(step) {
                let first = (t.grad_offset / 4) as usize;
                packed[first..first + g.len()].copy_from_slice(g);
            }
            all.extend(packed);
        }
        ctx.device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("caller gradient staging"),
                contents: bytemuck::cast_slice(&all),
                usage: wgpu::BufferUsages::COPY_SRC,
            })
    }

    /// Reads both parameter buffers back.
    async fn read_words(&self, ctx: &GpuContext) -> Result<[Vec<f32>; 2]> {
        let mut out = [Vec::new(), Vec::new()];
        for (home, words) in [Home::Dense, Home::Splats].into_iter().zip(&mut out) {
            let buffer = self.buffer(home);
            let bytes = read_buffer(ctx, buffer, 0, buffer.size()).await?;
            *words = bytemuck::cast_slice(&bytes).to_vec();
        }
        Ok(out)
    }

    /// Per tensor, max |gpu - ref| / max |ref| of the parameters now on the GPU.
    async fn param_errors(&self, ctx: &GpuContext, expected: &[Vec<f64>]) -> Result<Vec<f64>> {
        let words = self.read_words(ctx).await?;
        Ok(self
            .layout
            .iter()
            .zip(expected)
            .map(|(t, want)| {
                let first = (t.offset / 4) as usize;
                rel_error(&words[t.home as usize][first..first + t.len()], want)
            })
            .collect())
    }

    /// Words of `dense` and `splats` outside every tensor that differ from the start.
    async fn neighbours_written(&self, ctx: &GpuContext) -> Result<usize> {
        let words = self.read_words(ctx).await?;
        let mut written = 0;
        for (home, now) in [Home::Dense, Home::Splats].into_iter().zip(&words) {
            let inside = |i: usize| {
                self.layout.iter().any(|t| {
                    let first = (t.offset / 4) as usize;
                    t.home == home && (first..first + t.len()).contains(&i)
                })
            };
            let start = &self.start[home as usize];
            written += (0..now.len())
                .filter(|&i| !inside(i) && now[i].to_bits() != start[i].to_bits())
                .count();
        }
        Ok(written)
    }
}

/// The words a parameter buffer starts with: its header, sentinels between the
/// tensors and one after the last, and each tensor's random starting values.
fn initial_words(layout: &[Placed], home: Home, options: &CheckOptions) -> Vec<f32> {
    let header: &[u32] = match home {
        Home::Dense => &DENSE_HEADER,
        Home::Splats => &SPLAT_HEADER,
    };
    let mine: Vec<(u64, &Placed)> = (0u64..)
        .zip(layout)
        .filter(|(_, t)| t.home == home)
        .collect();
    let end = mine
        .iter()
        .map(|(_, t)| (t.offset / 4) as usize + t.len())
        .max()
        .unwrap_or(0);
    let mut words = vec![SENTINEL; end + GAP_WORDS];
    for (w, h) in words.iter_mut().zip(header) {
        *w = f32::from_bits(*h);
    }
    for (i, t) in mine {
        let first = (t.offset / 4) as usize;
        words[first..first + t.len()].copy_from_slice(&noise(options.seed, i, t.len(), 1.0));
    }
    words
}

/// `n` deterministic values in `[-scale, scale)` from `seed` and `stream` (SplitMix64).
fn noise(seed: u64, stream: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
            scale * (2.0 * unit - 1.0)
        })
        .collect()
}

fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

/// max |a - b| / max |b| (the absolute error when `b` is all zero).
fn rel_error(gpu: &[f32], want: &[f64]) -> f64 {
    let num = gpu
        .iter()
        .zip(want)
        .map(|(&a, b)| (f64::from(a) - b).abs())
        // A NaN on the GPU is an infinite error (f64::max would skip it).
        .map(|d| if d.is_nan() { f64::INFINITY } else { d })
        .fold(0.0, f64::max);
    let den = want.iter().map(|b| b.abs()).fold(0.0, f64::max);
    if den == 0.0 { num } else { num / den }
}
