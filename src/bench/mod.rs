//! Benchmarking optimizer steps against the memory-bandwidth floor.
//!
//! An optimizer step is memory-bound: its floor is the bytes it must move
//! ([`step_bytes_per_param`]) over the device's bandwidth. This module times steps
//! ([`Timer`]: GPU timestamps where available, submit-and-wait wall time otherwise) on
//! model-shaped parameter layouts ([`ModelLayout`]) and compares the achieved
//! bandwidth with a plain copy kernel ([`CopyKernel`]) measured in the same run on the
//! same device. [`run`] does the whole sweep behind `coptim bench`.

pub mod budget;
mod copy;
mod layout;
#[cfg(feature = "train")]
pub mod nn;
mod timer;

pub use copy::{COPY_WGSL, CopyKernel, VEC_PER_THREAD};
pub use layout::{MANY_SMALL_TENSORS, MIN_PARAMS, ModelLayout, format_count, parse_count};
pub use timer::{RecordFn, Timer, TimingMethod, median};

use serde::Serialize;

use crate::arena::{ElementType, ParamStore, TensorId};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::{Algorithm, Caution, NonFinite, Optimizer, OptimizerConfig, StepInputs};

/// Bytes one step must move per parameter, counting every element-wise pass:
///
/// - the update reads p, g and the state and writes p and the state:
///   `12 + 2 * states * s` (s = bytes per state element; AdamW keeps two states);
/// - with caution, pass 1 (the agreement count) reads g and the first state: `4 + s`;
/// - without caution, the non-finite check (when on) reads g once more: `4`.
///
/// Per-block and per-tensor metadata (block tables, partial counts: under 0.1% of
/// the total at 4096 elements per block) is not counted.
///
/// ```
/// use coptim::ElementType;
/// use coptim::bench::step_bytes_per_param;
/// use coptim::optim::Algorithm;
/// let adamw = Algorithm::adamw();
/// assert_eq!(step_bytes_per_param(&adamw, false, ElementType::F32, false), 28);
/// assert_eq!(step_bytes_per_param(&adamw, false, ElementType::F32, true), 32);
/// assert_eq!(step_bytes_per_param(&adamw, true, ElementType::F32, true), 36);
/// assert_eq!(step_bytes_per_param(&adamw, false, ElementType::Bf16, false), 20);
/// ```
pub fn step_bytes_per_param(
    algorithm: &Algorithm,
    caution: bool,
    state: ElementType,
    nonfinite_check: bool,
) -> u64 {
    let s = state.bytes();
    let states = algorithm.state_names().len() as u64;
    let update = 12 + 2 * states * s;
    let extra = if caution {
        4 + s
    } else if nonfinite_check {
        4
    } else {
        0
    };
    update + extra
}

/// What [`run`] measures.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Model sizes in parameters.
    pub params: Vec<u64>,
    /// Layouts to split each size into.
    pub layouts: Vec<ModelLayout>,
    /// Algorithms (their default hyperparameters).
    pub algorithms: Vec<Algorithm>,
    /// Caution settings to run for each algorithm (`false`: plain, `true`: hard mask).
    pub cautions: Vec<bool>,
    /// State element types.
    pub state_dtypes: Vec<ElementType>,
    /// Untimed steps before timing.
    pub warmup: u32,
    /// Timed steps (the median is reported).
    pub steps: u32,
    /// Keep the engine's default non-finite gradient check (skip the step on NaN/inf).
    pub nonfinite_check: bool,
    /// Use timestamp queries when the device has them.
    pub timestamps: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            params: vec![1 << 20, 16 << 20, 64 << 20],
            layouts: vec![ModelLayout::Transformer],
            algorithms: vec![Algorithm::adamw(), Algorithm::lion(), Algorithm::sgd(false)],
            cautions: vec![false, true],
            state_dtypes: vec![ElementType::F32],
            warmup: 3,
            steps: 20,
            nonfinite_check: true,
            timestamps: true,
        }
    }
}

impl BenchOptions {
    /// A smoke run: 64K parameters, one warm-up step and three timed steps.
    pub fn quick(mut self) -> Self {
        self.params = vec![64 << 10];
        self.warmup = 1;
        self.steps = 3;
        self
    }

    /// Number of measurement groups [`run`] makes, for progress bars.
    pub fn groups(&self) -> u64 {
        (self.params.len() * self.layouts.len() * self.algorithms.len() * self.state_dtypes.len())
            as u64
    }
}

/// The adapter a report was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterSummary {
    /// Adapter name.
    pub name: String,
    /// Backend (`Vulkan`, `Metal`, ...).
    pub backend: String,
    /// Device type (`Cpu`, `DiscreteGpu`, ...).
    pub device_type: String,
}

impl AdapterSummary {
    /// The adapter of `ctx`.
    pub fn of(ctx: &GpuContext) -> Self {
        let info = ctx.adapter_info();
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
        }
    }
}

/// The copy kernel at one model size.
#[derive(Debug, Clone, Serialize)]
pub struct CopyResult {
    /// The model size this copy stands for.
    pub params: u64,
    /// Bytes one copy moves (read + write): the f32 AdamW floor, 28 B per parameter.
    pub bytes: u64,
    /// Median time of one copy.
    pub ms: f64,
    /// Achieved bandwidth, read and write counted.
    pub gbps: f64,
}

/// One optimizer configuration on one layout.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// `adamw`, `lion` or `sgd`.
    pub optimizer: String,
    /// Hard caution mask (timm `cadamw`, `clion`, `csgdw`).
    pub caution: bool,
    /// `f32`, `bf16` or `f16`.
    pub state_dtype: String,
    /// Parameters (sum of tensor sizes).
    pub params: u64,
    /// Tensors.
    pub tensors: u64,
    /// Median step time.
    pub step_ms: f64,
    /// Bytes the step must move ([`step_bytes_per_param`] times `params`).
    pub bytes_per_step: u64,
    /// `bytes_per_step / step_ms`, in GB/s (10^9 bytes).
    pub gbps: f64,
    /// `gbps` over the copy kernel's GB/s at the same model size.
    pub fraction_of_copy: f64,
    /// Layout name.
    pub layout: String,
    /// Copy bandwidth this result is compared with: the copy kernel at the same model
    /// size, timed in the same interleaved rounds.
    pub copy_gbps: f64,
    /// Compute dispatches per step.
    pub dispatches: u64,
    /// Fastest sample, for a feel of the noise.
    pub min_ms: f64,
}

/// Everything one run measured; `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The adapter.
    pub adapter: AdapterSummary,
    /// Copy bandwidth at the largest model size measured (median of all its samples).
    pub copy_gbps: f64,
    /// One entry per configuration.
    pub results: Vec<BenchResult>,
    /// How step times were measured.
    pub timing: TimingMethod,
    /// The copy kernel at each model size.
    pub copies: Vec<CopyResult>,
    /// Warm-up steps and timed steps per configuration.
    pub warmup: u32,
    /// Timed steps per configuration.
    pub steps: u32,
    /// Whether plain optimizers ran the non-finite gradient check.
    pub nonfinite_check: bool,
}

/// Step time of a cautious configuration over its plain counterpart.
#[derive(Debug, Clone, PartialEq)]
pub struct CautionRatio {
    /// Algorithm name.
    pub optimizer: String,
    /// Layout name.
    pub layout: String,
    /// State element type.
    pub state_dtype: String,
    /// Parameters.
    pub params: u64,
    /// Cautious step time over plain step time.
    pub time_ratio: f64,
    /// The byte floor's ratio.
    pub bytes_ratio: f64,
}

impl BenchReport {
    /// Cautious over plain step time for every configuration measured both ways.
    pub fn caution_ratios(&self) -> Vec<CautionRatio> {
        let mut out = Vec::new();
        for c in self.results.iter().filter(|r| r.caution) {
            if let Some(p) = self.results.iter().find(|r| {
                !r.caution
                    && r.optimizer == c.optimizer
                    && r.layout == c.layout
                    && r.state_dtype == c.state_dtype
                    && r.params == c.params
            }) {
                out.push(CautionRatio {
                    optimizer: c.optimizer.clone(),
                    layout: c.layout.clone(),
                    state_dtype: c.state_dtype.clone(),
                    params: c.params,
                    time_ratio: c.step_ms / p.step_ms,
                    bytes_ratio: c.bytes_per_step as f64 / p.bytes_per_step as f64,
                });
            }
        }
        out
    }
}

/// What [`run`] is about to measure, for progress reporting.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Layout.
    pub layout: ModelLayout,
    /// Model size.
    pub params: u64,
    /// Algorithm name.
    pub optimizer: &'static str,
    /// State element type.
    pub state_dtype: ElementType,
}

/// Runs every configuration of `options` on `ctx`, calling `progress` before each
/// measurement group. One group is one (size, layout, algorithm, state type): the
/// copy kernel, the plain step and the cautious step are timed in interleaved
/// rounds (copy, plain, cautious, copy, ...), so that fractions of copy and
/// cautious/plain ratios compare samples taken moments apart. Configurations the
/// device cannot run (f16 state without `shader-f16`) fail with the engine's typed
/// error.
pub fn run(
    ctx: &GpuContext,
    options: &BenchOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<BenchReport> {
    if options.steps == 0 {
        return Err(Error::InvalidConfig("at least one timed step".into()));
    }
    let state_bytes = options
        .algorithms
        .iter()
        .flat_map(|a| {
            options
                .state_dtypes
                .iter()
                .map(|d| a.state_names().len() as u64 * d.bytes())
        })
        .max()
        .unwrap_or(0)
        * options.cautions.len() as u64;
    for &params in &options.params {
        budget::check_fits(ctx, params, state_bytes)?;
    }
    let mut timer = Timer::new(ctx, options.timestamps);
    let mut results = Vec::new();
    let mut copies = Vec::new();
    for &params in &options.params {
        let copy = CopyKernel::new(ctx, params * 28 / 8)?;
        let mut copy_samples = Vec::new();
        for &layout in &options.layouts {
            let shapes = layout.shapes(params)?;
            let store = ParamStore::new(ctx, &shapes)?;
            fill(ctx, &store)?;
            let total = store.layout().total_len();
            for algorithm in &options.algorithms {
                for &dtype in &options.state_dtypes {
                    progress(&Progress {
                        layout,
                        params,
                        optimizer: algorithm.name(),
                        state_dtype: dtype,
                    });
                    let mut opts = options
                        .cautions
                        .iter()
                        .map(|&caution| {
                            let mut cfg = OptimizerConfig::new(*algorithm, 1e-3)
                                .with_weight_decay(0.01)
                                .with_state_dtype(dtype);
                            if caution {
                                cfg = cfg.with_caution(Caution::hard());
                            }
                            if !options.nonfinite_check {
                                cfg.non_finite = NonFinite::Ignore;
                            }
                            Optimizer::new(ctx, &store, cfg)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let mut record_copy = |enc: &mut wgpu::CommandEncoder| {
                        copy.record(enc);
                        Ok(())
                    };
                    let mut steps: Vec<_> = opts
                        .iter_mut()
                        .map(|opt| {
                            move |enc: &mut wgpu::CommandEncoder| {
                                opt.record_step(enc, &StepInputs::scheduled())
                            }
                        })
                        .collect();
                    let mut work: Vec<&mut RecordFn<'_>> = vec![&mut record_copy];
                    for s in &mut steps {
                        work.push(s);
                    }
                    let samples =
                        timer.time_interleaved(options.warmup, options.steps, &mut work)?;
                    drop(work);
                    drop(steps);
                    ctx.wait_idle()?;
                    let copy_gbps = copy.bytes() as f64 / (median(&samples[0]) * 1e6);
                    copy_samples.extend_from_slice(&samples[0]);
                    for ((opt, &caution), s) in
                        opts.iter().zip(&options.cautions).zip(&samples[1..])
                    {
                        let step_ms = median(s);
                        let bytes = total
                            * step_bytes_per_param(
                                algorithm,
                                caution,
                                dtype,
                                options.nonfinite_check,
                            );
                        let gbps = bytes as f64 / (step_ms * 1e6);
                        results.push(BenchResult {
                            optimizer: algorithm.name().to_string(),
                            caution,
                            state_dtype: dtype.name().to_string(),
                            params: total,
                            tensors: store.layout().num_tensors() as u64,
                            step_ms,
                            bytes_per_step: bytes,
                            gbps,
                            fraction_of_copy: gbps / copy_gbps,
                            layout: layout.name().to_string(),
                            copy_gbps,
                            dispatches: opt.dispatches_per_step() as u64,
                            min_ms: s.iter().copied().fold(f64::INFINITY, f64::min),
                        });
                    }
                }
            }
        }
        let ms = median(&copy_samples);
        copies.push(CopyResult {
            params,
            bytes: copy.bytes(),
            ms,
            gbps: copy.bytes() as f64 / (ms * 1e6),
        });
    }
    let copy_gbps = copies
        .iter()
        .max_by_key(|c| c.params)
        .map_or(0.0, |c| c.gbps);
    Ok(BenchReport {
        adapter: AdapterSummary::of(ctx),
        copy_gbps,
        results,
        timing: timer.method(),
        copies,
        warmup: options.warmup,
        steps: options.steps,
        nonfinite_check: options.nonfinite_check,
    })
}

/// Writes deterministic parameters and gradients of order 1 and 1e-2 (a cheap hash,
/// so that signs vary and caution masks are neither empty nor full).
fn fill(ctx: &GpuContext, store: &ParamStore) -> Result<()> {
    let hash = |i: u64, salt: u64| {
        let mut x = i.wrapping_add(salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    for (t, info) in store.layout().tensors().iter().enumerate() {
        let base = info.offset;
        let p: Vec<f32> = (0..info.len).map(|i| hash(base + i, 1)).collect();
        let g: Vec<f32> = (0..info.len).map(|i| 0.01 * hash(base + i, 2)).collect();
        store.params.write(ctx, TensorId(t), &p)?;
        store.grads.write(ctx, TensorId(t), &g)?;
    }
    ctx.wait_idle()
}
