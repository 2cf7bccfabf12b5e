//! Benchmarking optimizer steps against the memory-bandwidth floor.
//!
//! An optimizer step is memory-bound: its floor is the bytes it must move
//! ([`step_bytes_per_param`]) over the device's bandwidth. This module times steps
//! ([`Timer`]: GPU timestamps where available, submit-and-wait wall time otherwise) on
//! model-shaped parameter layouts ([`ModelLayout`]) and compares the achieved
//! bandwidth with a plain copy kernel ([`CopyKernel`]) measured in the same run on the
//! same device, and with a native memcpy ([`NativeCopy`]) of the same bytes on the
//! host: the memory's own bandwidth, which a CPU adapter (lavapipe) could reach in
//! principle. Copy variants ([`CopyVariant`]: access pattern, workgroup size, vec4s
//! per invocation) are timed side by side. [`run`] does the whole sweep behind
//! `coptim bench`.

pub mod budget;
mod copy;
mod layout;
mod native;
#[cfg(feature = "train")]
pub mod nn;
mod timer;

pub use copy::{COPY, CopyBuffers, CopyKernel, CopyPattern, CopyVariant};
pub use layout::{MANY_SMALL_TENSORS, MIN_PARAMS, ModelLayout, format_count, parse_count};
pub use native::{NATIVE_THREADS, NativeCopy, NativeResult};
pub use timer::{RecordFn, Timer, TimingMethod, median};

use serde::Serialize;

use crate::arena::{ElementType, ParamStore, TensorId};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::{Algorithm, Caution, NonFinite, Optimizer, OptimizerConfig, StepInputs};
use crate::stream::StreamShape;

/// Bytes one step must move per parameter, counting every element-wise pass:
///
/// - the update reads p, g and the state and writes p and the state:
///   `12 + 2 * states * s` (s = bytes per state element; AdamW keeps two states);
/// - with caution, pass 1 (the agreement count) reads g and the states its direction
///   needs ([`Algorithm::count_pass_states`]: one, two for LaProp): `4 + k * s`;
/// - an algorithm with per-tensor sums (LAMB) runs that pass with or without caution
///   and reads p too: `8 + k * s`; so does one with coupled decay (ADOPT's, RMSpropTF's `wd * p`)
///   when caution runs it;
/// - an algorithm with per-segment sums (AdamP, SGDP) runs a first such pass always
///   (which also checks the gradients) and, with caution, a second one: `8 + k * s`
///   each;
/// - an algorithm with its own gradient clip (LAMB's `max_grad_norm`) reads g once
///   more for the global norm: `4`;
/// - an algorithm with a norm pass (MARS) reads g and the states it needs
///   ([`Algorithm::norm_pass_states`]) before the count: `4 + k * s`;
/// - otherwise, the non-finite check (when on) reads g once more: `4`.
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
/// let laprop = Algorithm::by_name("laprop").unwrap();
/// assert_eq!(step_bytes_per_param(&laprop, true, ElementType::F32, true), 40);
/// let lamb = Algorithm::by_name("lamb").unwrap();
/// assert_eq!(step_bytes_per_param(&lamb, true, ElementType::F32, true), 28 + 16 + 4);
/// let mars = Algorithm::by_name("mars").unwrap();
/// assert_eq!(step_bytes_per_param(&mars, false, ElementType::F32, true), 36 + 8);
/// assert_eq!(step_bytes_per_param(&mars, true, ElementType::F32, true), 36 + 8 + 12);
/// // Adan reads and writes four state tensors; its count pass reads exp_avg only.
/// let adan = Algorithm::by_name("adan").unwrap();
/// assert_eq!(step_bytes_per_param(&adan, true, ElementType::F32, true), 44 + 8);
/// let adopt = Algorithm::by_name("adopt").unwrap();
/// assert_eq!(step_bytes_per_param(&adopt, true, ElementType::F32, true), 28 + 16);
/// let adamp = Algorithm::by_name("adamp").unwrap();
/// assert_eq!(step_bytes_per_param(&adamp, true, ElementType::F32, true), 28 + 2 * 16);
/// let rmsprop = Algorithm::by_name("rmsproptf").unwrap();
/// assert_eq!(step_bytes_per_param(&rmsprop, true, ElementType::F32, true), 28 + 16);
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
    let clip = if algorithm.rules().max_grad_norm().is_some() {
        4
    } else {
        0
    };
    let norms = algorithm.norm_pass_states().map_or(0, |k| 4 + k as u64 * s);
    let k = algorithm.count_pass_states() as u64;
    let count_pass = 4 + 4 * algorithm.count_reads_params() as u64 + k * s;
    let extra = if algorithm.needs_segment_sums() {
        count_pass * (1 + caution as u64)
    } else if algorithm.needs_tensor_sums() || caution {
        count_pass
    } else if nonfinite_check && clip == 0 && norms == 0 {
        4
    } else {
        0
    };
    update + clip + norms + extra
}

/// How [`run`] steps and times every configuration; the report repeats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StepProtocol {
    /// Untimed steps before timing.
    pub warmup: u32,
    /// Timed steps (the median is reported).
    pub steps: u32,
    /// Plain optimizers keep the engine's default non-finite gradient check (skip the
    /// step on NaN/inf).
    pub nonfinite_check: bool,
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
    /// How every configuration is stepped and timed.
    pub protocol: StepProtocol,
    /// Use timestamp queries when the device has them.
    pub timestamps: bool,
    /// Copy kernel variants timed side by side at each model size (none: skip).
    pub copy_variants: Vec<CopyVariant>,
    /// Stream shapes to run every step with, side by side (none: the adapter's own).
    pub stream_shapes: Vec<StreamShape>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            params: vec![1 << 20, 16 << 20, 64 << 20],
            layouts: vec![ModelLayout::Transformer],
            algorithms: vec![Algorithm::adamw(), Algorithm::lion(), Algorithm::sgd(false)],
            cautions: vec![false, true],
            state_dtypes: vec![ElementType::F32],
            protocol: StepProtocol {
                warmup: 3,
                steps: 20,
                nonfinite_check: true,
            },
            timestamps: true,
            copy_variants: CopyVariant::sweep(),
            stream_shapes: Vec::new(),
        }
    }
}

impl BenchOptions {
    /// A smoke run: 64K parameters, one warm-up step and three timed steps.
    pub fn quick(mut self) -> Self {
        self.params = vec![64 << 10];
        self.protocol.warmup = 1;
        self.protocol.steps = 3;
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

/// A copy kernel variant at one model size.
#[derive(Debug, Clone, Serialize)]
pub struct CopyResult {
    /// The model size this copy stands for.
    pub params: u64,
    /// [`CopyVariant::name`], e.g. `contiguous-256x4`.
    pub variant: String,
    /// `strided` or `contiguous`.
    pub pattern: String,
    /// Invocations per workgroup.
    pub wg_size: u32,
    /// vec4s per invocation.
    pub vec_per_thread: u32,
    /// Bytes one copy moves (read + write): the f32 AdamW floor, 28 B per parameter.
    pub bytes: u64,
    /// Median time of one copy.
    pub ms: f64,
    /// Fastest copy, for a feel of the noise.
    pub min_ms: f64,
    /// Achieved bandwidth, read and write counted.
    pub gbps: f64,
    /// `gbps` over the fastest native memcpy at the same size.
    pub fraction_of_native: f64,
}

impl CopyResult {
    fn new(params: u64, variant: CopyVariant, bytes: u64, samples: &[f64], native: f64) -> Self {
        let ms = median(samples);
        let gbps = bytes as f64 / (ms * 1e6);
        Self {
            params,
            variant: variant.name(),
            pattern: variant.pattern.name().to_string(),
            wg_size: variant.shape.wg_size,
            vec_per_thread: variant.shape.vec_per_thread,
            bytes,
            ms,
            min_ms: samples.iter().copied().fold(f64::INFINITY, f64::min),
            gbps,
            fraction_of_native: gbps / native,
        }
    }
}

/// One optimizer configuration on one layout.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// `adamw`, `lion` or `sgd`.
    pub optimizer: String,
    /// Hard caution mask (timm `cadamw`, `clion`, `csgdw`).
    pub caution: bool,
    /// The kernels' [`StreamShape`], e.g. `8x128`.
    pub stream_shape: String,
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
    /// `gbps` over the fastest native memcpy (1 or 2 threads) at the same model size.
    pub fraction_of_native: f64,
    /// Layout name.
    pub layout: String,
    /// Copy bandwidth this result is compared with: the copy kernel at the same model
    /// size, timed in the same interleaved rounds.
    pub copy_gbps: f64,
    /// Native memcpy bandwidth this result is compared with (the fastest thread
    /// count at the same model size).
    pub native_gbps: f64,
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
    /// The copy kernel variant the adapter's steps are compared with
    /// ([`CopyVariant::for_context`]).
    pub copy_variant: String,
    /// Copy bandwidth at the largest model size measured (median of all its samples).
    pub copy_gbps: f64,
    /// Fastest native memcpy at the largest model size measured.
    pub native_gbps: f64,
    /// One entry per configuration.
    pub results: Vec<BenchResult>,
    /// How step times were measured.
    pub timing: TimingMethod,
    /// The adapter's copy kernel at each model size (samples of every group).
    pub copies: Vec<CopyResult>,
    /// Every variant of [`BenchOptions::copy_variants`] at each model size.
    pub copy_variants: Vec<CopyResult>,
    /// Native memcpy at each model size and thread count.
    pub natives: Vec<NativeResult>,
    /// How every configuration was stepped and timed (flattened in the JSON).
    #[serde(flatten)]
    pub protocol: StepProtocol,
}

/// Step time of a cautious configuration over its plain counterpart.
#[derive(Debug, Clone, PartialEq)]
pub struct CautionRatio {
    /// Algorithm name.
    pub optimizer: String,
    /// Stream shape of both steps.
    pub stream_shape: String,
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
                    && r.stream_shape == c.stream_shape
                    && r.layout == c.layout
                    && r.state_dtype == c.state_dtype
                    && r.params == c.params
            }) {
                out.push(CautionRatio {
                    optimizer: c.optimizer.clone(),
                    stream_shape: c.stream_shape.clone(),
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
/// measurement group. Per model size: a native memcpy of the copy's bytes (before and
/// after the size's GPU work, on each of [`NATIVE_THREADS`]), the copy variants of
/// `options.copy_variants` in interleaved rounds, then one group per (layout,
/// algorithm, state type): the adapter's copy kernel, the plain step and the cautious
/// step timed in interleaved rounds (copy, plain, cautious, copy, ...), so that
/// fractions of copy and cautious/plain ratios compare samples taken moments apart.
/// Configurations the device cannot run (f16 state without `shader-f16`) fail with
/// the engine's typed error.
pub fn run(
    ctx: &GpuContext,
    options: &BenchOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<BenchReport> {
    if options.protocol.steps == 0 {
        return Err(Error::InvalidConfig("at least one timed step".into()));
    }
    let max_wg = ctx.limits().max_compute_invocations_per_workgroup;
    if let Some(s) = options.stream_shapes.iter().find(|s| s.wg_size > max_wg) {
        return Err(Error::LimitExceeded {
            what: format!("invocations per workgroup of stream shape {}", s.name()),
            needed: u64::from(s.wg_size),
            allowed: u64::from(max_wg),
        });
    }
    let optimizers_alive = options.cautions.len() * options.stream_shapes.len().max(1);
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
        * optimizers_alive as u64;
    for &params in &options.params {
        budget::check_fits(ctx, params, state_bytes)?;
    }
    let mut timer = Timer::new(ctx, options.timestamps);
    let mut report = BenchReport {
        adapter: AdapterSummary::of(ctx),
        copy_variant: CopyVariant::for_context(ctx).name(),
        copy_gbps: 0.0,
        native_gbps: 0.0,
        results: Vec::new(),
        timing: timer.method(),
        copies: Vec::new(),
        copy_variants: Vec::new(),
        natives: Vec::new(),
        protocol: options.protocol,
    };
    for &params in &options.params {
        measure_size(ctx, options, &mut timer, params, progress, &mut report)?;
    }
    let largest = options.params.iter().copied().max().unwrap_or(0);
    report.copy_gbps = report
        .copies
        .iter()
        .find(|c| c.params == largest)
        .map_or(0.0, |c| c.gbps);
    report.native_gbps = best_native(&report.natives, largest);
    Ok(report)
}

/// The fastest native copy measured at `params`.
fn best_native(natives: &[NativeResult], params: u64) -> f64 {
    natives
        .iter()
        .filter(|n| n.params == params)
        .map(|n| n.gbps)
        .fold(0.0, f64::max)
}

/// Everything [`run`] measures at one model size, appended to `report`.
fn measure_size(
    ctx: &GpuContext,
    options: &BenchOptions,
    timer: &mut Timer,
    params: u64,
    progress: &mut dyn FnMut(&Progress),
    report: &mut BenchReport,
) -> Result<()> {
    let buffers = CopyBuffers::new(ctx, params * 28 / 8)?;
    let copy = CopyKernel::new(ctx, &buffers, CopyVariant::for_context(ctx))?;
    let mut native = NativeCopy::new(buffers.len());
    let mut native_samples = vec![Vec::new(); NATIVE_THREADS.len()];
    sample_native(&mut native, options.protocol.steps, &mut native_samples);
    let variant_samples = time_variants(ctx, timer, &buffers, options)?;
    let first_result = report.results.len();
    let mut copy_samples = Vec::new();
    for &layout in &options.layouts {
        let shapes = layout.shapes(params)?;
        let store = ParamStore::new(ctx, &shapes)?;
        fill(ctx, &store)?;
        for algorithm in &options.algorithms {
            for &dtype in &options.state_dtypes {
                progress(&Progress {
                    layout,
                    params,
                    optimizer: algorithm.name(),
                    state_dtype: dtype,
                });
                let group = Group {
                    store: &store,
                    layout,
                    algorithm,
                    dtype,
                };
                let samples = group.time(ctx, options, timer, &copy)?;
                copy_samples.extend_from_slice(&samples.copy);
                report.results.extend(samples.results);
            }
        }
    }
    sample_native(&mut native, options.protocol.steps, &mut native_samples);
    for (&threads, s) in NATIVE_THREADS.iter().zip(&native_samples) {
        report
            .natives
            .push(NativeResult::new(params, threads, native.bytes(), s));
    }
    let native_gbps = best_native(&report.natives, params);
    for r in &mut report.results[first_result..] {
        r.native_gbps = native_gbps;
        r.fraction_of_native = r.gbps / native_gbps;
    }
    let summary = |variant: CopyVariant, samples: &[f64]| {
        CopyResult::new(params, variant, copy.bytes(), samples, native_gbps)
    };
    report.copies.push(summary(copy.variant(), &copy_samples));
    for (variant, samples) in variant_samples {
        report.copy_variants.push(summary(variant, &samples));
    }
    Ok(())
}

/// Appends `samples` native copies per thread count to `out` (one list per entry of
/// [`NATIVE_THREADS`]).
fn sample_native(native: &mut NativeCopy, samples: u32, out: &mut [Vec<f64>]) {
    for (&threads, o) in NATIVE_THREADS.iter().zip(out.iter_mut()) {
        o.extend(native.samples(threads, samples));
    }
}

/// Times every variant of `options.copy_variants` on `buffers` in interleaved rounds.
fn time_variants(
    ctx: &GpuContext,
    timer: &mut Timer,
    buffers: &CopyBuffers,
    options: &BenchOptions,
) -> Result<Vec<(CopyVariant, Vec<f64>)>> {
    if options.copy_variants.is_empty() {
        return Ok(Vec::new());
    }
    let kernels = options
        .copy_variants
        .iter()
        .map(|&v| CopyKernel::new(ctx, buffers, v))
        .collect::<Result<Vec<_>>>()?;
    let mut records: Vec<_> = kernels
        .iter()
        .map(|k| {
            move |enc: &mut wgpu::CommandEncoder| {
                k.record(enc);
                Ok(())
            }
        })
        .collect();
    let mut work: Vec<&mut RecordFn<'_>> = Vec::new();
    for r in &mut records {
        work.push(r);
    }
    let samples =
        timer.time_interleaved(options.protocol.warmup, options.protocol.steps, &mut work)?;
    ctx.wait_idle()?;
    Ok(options.copy_variants.iter().copied().zip(samples).collect())
}

/// One measurement group: an algorithm and state type on one layout's store.
struct Group<'a> {
    store: &'a ParamStore,
    layout: ModelLayout,
    algorithm: &'a Algorithm,
    dtype: ElementType,
}

/// What a [`Group`] measured: the copy kernel's samples and one result per caution
/// setting (`native_gbps` still 0: filled in once the size's native copies are in).
struct GroupSamples {
    copy: Vec<f64>,
    results: Vec<BenchResult>,
}

impl Group<'_> {
    /// The (stream shape, caution) configurations a group times, in order.
    fn configs(ctx: &GpuContext, options: &BenchOptions) -> Vec<(StreamShape, bool)> {
        let shapes = if options.stream_shapes.is_empty() {
            vec![ctx.stream_shape()]
        } else {
            options.stream_shapes.clone()
        };
        shapes
            .iter()
            .flat_map(|&s| options.cautions.iter().map(move |&c| (s, c)))
            .collect()
    }

    fn optimizer(
        &self,
        ctx: &GpuContext,
        options: &BenchOptions,
        caution: bool,
    ) -> Result<Optimizer> {
        let mut cfg = OptimizerConfig::new(*self.algorithm, 1e-3)
            .with_weight_decay(0.01)
            .with_state_dtype(self.dtype);
        if caution {
            cfg = cfg.with_caution(Caution::hard());
        }
        if !options.protocol.nonfinite_check {
            cfg.non_finite = NonFinite::Ignore;
        }
        Optimizer::new(ctx, self.store, cfg)
    }

    /// Times the copy, then each (stream shape, caution setting)'s step, in
    /// interleaved rounds.
    fn time(
        &self,
        ctx: &GpuContext,
        options: &BenchOptions,
        timer: &mut Timer,
        copy: &CopyKernel,
    ) -> Result<GroupSamples> {
        let configs = Self::configs(ctx, options);
        let mut opts = configs
            .iter()
            .map(|&(shape, caution)| {
                self.optimizer(&ctx.with_stream_shape(shape), options, caution)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut record_copy = |enc: &mut wgpu::CommandEncoder| {
            copy.record(enc);
            Ok(())
        };
        let mut steps: Vec<_> = opts
            .iter_mut()
            .map(|opt| {
                move |enc: &mut wgpu::CommandEncoder| opt.record_step(enc, &StepInputs::scheduled())
            })
            .collect();
        let mut work: Vec<&mut RecordFn<'_>> = vec![&mut record_copy];
        for s in &mut steps {
            work.push(s);
        }
        let mut samples =
            timer.time_interleaved(options.protocol.warmup, options.protocol.steps, &mut work)?;
        drop(work);
        drop(steps);
        ctx.wait_idle()?;
        let copy_samples = samples.remove(0);
        let copy_gbps = copy.bytes() as f64 / (median(&copy_samples) * 1e6);
        let total = self.store.layout().total_len();
        let results = opts
            .iter()
            .zip(&configs)
            .zip(&samples)
            .map(|((opt, &(shape, caution)), s)| {
                let step_ms = median(s);
                let bytes = total
                    * step_bytes_per_param(
                        self.algorithm,
                        caution,
                        self.dtype,
                        options.protocol.nonfinite_check,
                    );
                let gbps = bytes as f64 / (step_ms * 1e6);
                BenchResult {
                    optimizer: self.algorithm.name().to_string(),
                    caution,
                    stream_shape: shape.name(),
                    state_dtype: self.dtype.name().to_string(),
                    params: total,
                    tensors: self.store.layout().num_tensors() as u64,
                    step_ms,
                    bytes_per_step: bytes,
                    gbps,
                    fraction_of_copy: gbps / copy_gbps,
                    fraction_of_native: 0.0,
                    layout: self.layout.name().to_string(),
                    copy_gbps,
                    native_gbps: 0.0,
                    dispatches: opt.dispatches_per_step() as u64,
                    min_ms: s.iter().copied().fold(f64::INFINITY, f64::min),
                }
            })
            .collect();
        Ok(GroupSamples {
            copy: copy_samples,
            results,
        })
    }
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
