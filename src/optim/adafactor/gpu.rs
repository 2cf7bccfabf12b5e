//! The GPU Adafactor: per step, the axis means of g^2 + eps of the factored tensors
//! (one [`AxisMeans`] dispatch per gradient buffer), then the passes of
//! `shaders/adafactor.wgsl` tensor by tensor, all recorded into the caller's encoder.

use crate::arena::{ParamSet, ParamTensor, UploadRing};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::adafactor::words::{AdaStep, AdaTensor, step_words};
use crate::optim::adafactor_reference::{AdafactorRule, AdafactorState};
use crate::optim::axis_means::{AxisMeans, AxisTensor};
use crate::optim::config::Caution;
use crate::optim::factored::{AxisView, FactoredDims};
use crate::optim::grad_norm::GradNorm;
use crate::optim::own_kernels::{
    CHUNK, Slot, WG_SIZE, bind_group, pipelines, tensor_layout, tensor_module, uniform,
    view_binding,
};
use crate::optim::plan::grid_for;
#[cfg(feature = "nn")]
use crate::optim::stats::ChunkRanges;
use crate::wgsl::{Part, ShaderBuilder, lib, shader_part};

/// `adafactor.wgsl`.
static ADAFACTOR: Part = shader_part!(
    "adafactor.wgsl",
    &["line_term"],
    &[
        "flat_index",
        "chunk_of",
        "workgroup_sum",
        "workgroup_count",
        "chunk_element",
        "partials_sum",
        "partials_count",
        "caution_scale",
        "line_sum",
        "skipping",
    ]
);

/// Terms `row_scale` sums in order before their chunk joins the total.
const SUM_CHUNK: u32 = 32;
/// Scratch words per tensor: clip divisor, rate, caution scale, padding.
const FACTOR_WORDS: u32 = 4;
/// Bytes of one 32-bit word.
const WORD: u64 = 4;

/// The entry points of `adafactor.wgsl`, in pass order.
const ENTRIES: [&str; 7] = [
    "ema",
    "row_scale",
    "measure",
    "finalize_clip",
    "momentum",
    "finalize_caution",
    "apply",
];
const ROW_SCALE: usize = 1;
const MOMENTUM: usize = 4;
const FINALIZE_CAUTION: usize = 5;

/// The module of `adafactor.wgsl` with its constants and helpers.
pub(crate) fn shader() -> ShaderBuilder {
    tensor_module::<AdaTensor, AdaStep>("coptim adafactor")
        .constant("SUM_CHUNK", SUM_CHUNK)
        .constant("FACTOR_WORDS", FACTOR_WORDS)
        .part(&lib::LINE_SUM)
        .part(&lib::OWN_STATUS)
        .part(&ADAFACTOR)
}

/// The factored tensors whose gradients share one buffer: their means and the EMA of
/// them (the row and column moments, laid out as the means).
#[derive(Debug)]
struct FactoredGroup {
    means: AxisMeans,
    moments: wgpu::Buffer,
}

/// One tensor: its uniform words, its own state buffers, its bind group and the grid
/// of each pass (`[0, 0]` where the pass skips it).
#[derive(Debug)]
struct TensorSlot {
    words: AdaTensor,
    moment: Option<wgpu::Buffer>,
    full_second: Option<wgpu::Buffer>,
    group: Option<usize>,
    bind_group: wgpu::BindGroup,
    grids: [(u32, u32); 7],
}

/// Buffers every tensor's bind group shares.
struct Shared {
    layout: wgpu::BindGroupLayout,
    step: wgpu::Buffer,
    scratch: wgpu::Buffer,
    partials: wgpu::Buffer,
    status: wgpu::Buffer,
    unused_rw: wgpu::Buffer,
    unused_r: wgpu::Buffer,
}

/// A member of the Adafactor family (an [`AdafactorRule`] with its caution) stepping
/// every tensor of a [`ParamSet`] on the GPU.
#[derive(Debug)]
pub struct AdafactorOptimizer {
    ctx: GpuContext,
    rule: AdafactorRule,
    caution: Caution,
    params: ParamSet,
    /// Steps recorded (skipped ones included; the kernels count completed steps in
    /// `norm`'s status).
    steps: i32,
    /// The global gradient norm, the step's non-finite flag, clip coefficient and
    /// completed steps (`OwnStatus`).
    norm: GradNorm,
    groups: Vec<FactoredGroup>,
    slots: Vec<TensorSlot>,
    pipelines: Vec<wgpu::ComputePipeline>,
    step_params: wgpu::Buffer,
    uploads: UploadRing,
    /// Per chunk of each tensor, in tensor order: two words (sums, or the agreeing
    /// count first); read by the training engine's records (feature `nn`).
    #[cfg_attr(not(feature = "nn"), allow(dead_code))]
    partials: wgpu::Buffer,
}

/// A new zeroed buffer of `words` 32-bit words (at least one).
fn words_buffer(
    ctx: &GpuContext,
    label: &str,
    words: u64,
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: words.max(1) * WORD,
        usage,
        mapped_at_creation: false,
    })
}

/// Usage of a state buffer (saved and restored by copies).
const STATE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl AdafactorOptimizer {
    /// `rule` with `caution` over `params`; rejects what [`AdafactorRule::validate`]
    /// rejects.
    pub fn new(
        ctx: &GpuContext,
        params: impl Into<ParamSet>,
        rule: AdafactorRule,
        caution: Caution,
    ) -> Result<Self> {
        rule.validate(caution)?;
        let params: ParamSet = params.into();
        let (groups, placed) = factored_groups(ctx, &params, &rule)?;
        let n = params.tensors().len() as u64;
        let both: u64 = placed.iter().flatten().map(|p| p.both_len()).sum();
        let chunks: u64 = params.tensors().iter().map(|t| t.len.div_ceil(CHUNK)).sum();
        let storage = wgpu::BufferUsages::STORAGE;
        let norm = GradNorm::new(ctx, params.tensors(), "Adafactor")?;
        let shared = Shared {
            layout: tensor_layout(ctx, "coptim adafactor", &SLOTS),
            step: words_buffer(
                ctx,
                "coptim adafactor step",
                (std::mem::size_of::<AdaStep>() as u64) / WORD,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            scratch: words_buffer(
                ctx,
                "coptim adafactor scratch",
                n * FACTOR_WORDS as u64 + both,
                storage,
            ),
            partials: words_buffer(
                ctx,
                "coptim adafactor partials",
                2 * chunks,
                storage | wgpu::BufferUsages::COPY_SRC,
            ),
            status: norm.status().clone(),
            unused_rw: words_buffer(ctx, "coptim adafactor unused", 1, storage),
            unused_r: words_buffer(ctx, "coptim adafactor unused", 1, storage),
        };
        let mut slots = Vec::with_capacity(params.tensors().len());
        let (mut partial_base, mut both_base) = (0u64, n * FACTOR_WORDS as u64);
        for (i, t) in params.tensors().iter().enumerate() {
            let words = AdaTensor {
                index: i as u32,
                chunks: t.len.div_ceil(CHUNK) as u32,
                partial_base: partial_base as u32,
                both_base: both_base as u32,
                ..Default::default()
            };
            let slot = tensor_slot(ctx, &rule, &shared, &groups, t, words, placed[i].as_ref())?;
            partial_base += t.len.div_ceil(CHUNK);
            both_base += placed[i].as_ref().map_or(0, Placed::both_len);
            slots.push(slot);
        }
        let pipelines = pipelines(ctx, &shader(), &shared.layout, &ENTRIES, "Adafactor")?;
        Ok(Self {
            ctx: ctx.clone(),
            rule,
            caution,
            params,
            steps: 0,
            norm,
            groups,
            slots,
            pipelines,
            step_params: shared.step,
            uploads: UploadRing::new("coptim adafactor step upload"),
            partials: shared.partials,
        })
    }

    /// Records one step into `encoder` (nothing is submitted or read back); every
    /// recorded step must be submitted. First the global norm of every gradient:
    /// when one is NaN or infinite, the whole step is skipped on the GPU (factored
    /// and full second moments, first moments and parameters untouched, and the step
    /// t of the next one not advanced), and
    /// [`AdafactorOptimizer::read_skipped_steps`] counts it. With
    /// [`AdafactorOptimizer::with_clip_grad_norm`], every gradient is scaled by the
    /// clip coefficient of that norm.
    pub fn record_step(&mut self, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        self.record_step_at(encoder, None)
    }

    /// Records one step like [`AdafactorOptimizer::record_step`], at learning rate
    /// `lr` when given ([`AdafactorRule::with_lr`]: timm's relative step keeps its
    /// own); fails on a negative or non-finite rate before recording anything.
    pub fn record_step_at(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        lr: Option<f64>,
    ) -> Result<()> {
        self.ctx.check_lost()?;
        let rule = match lr {
            Some(lr) => self.rule.with_lr(lr)?,
            None => self.rule,
        };
        let words = step_words(&rule, self.caution);
        self.uploads.record_write(
            &self.ctx,
            encoder,
            &self.step_params,
            0,
            bytemuck::bytes_of(&words),
        );
        self.steps += 1;
        self.norm.record(encoder);
        for group in &self.groups {
            group.means.record(encoder);
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("coptim adafactor step"),
            timestamp_writes: None,
        });
        let momentum = has_momentum(&self.rule);
        for (k, pipeline) in self.pipelines.iter().enumerate() {
            let skip = (k == MOMENTUM && !momentum)
                || (k == FINALIZE_CAUTION && !(momentum && self.caution.is_on()));
            if skip {
                continue;
            }
            pass.set_pipeline(pipeline);
            for slot in self.slots.iter().filter(|s| s.grids[k].0 > 0) {
                pass.set_bind_group(0, &slot.bind_group, &[]);
                pass.dispatch_workgroups(slot.grids[k].0, slot.grids[k].1, 1);
            }
        }
        Ok(())
    }

    /// The parameters and gradients this optimizer steps.
    pub fn params(&self) -> &ParamSet {
        &self.params
    }

    /// The per-chunk partials (agreeing count first once a cautious step ran) and,
    /// for each tensor, its `(tensor, first chunk, chunks)` there.
    #[cfg(feature = "nn")]
    pub(crate) fn kept_chunks(&self) -> (&wgpu::Buffer, ChunkRanges) {
        let mut first = 0;
        let ranges = self
            .params
            .tensors()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let chunks = t.len.div_ceil(CHUNK);
                first += chunks;
                (i, first - chunks, chunks)
            })
            .collect();
        (&self.partials, ranges)
    }

    /// Steps recorded so far (skipped ones included).
    pub fn steps(&self) -> i32 {
        self.steps
    }

    /// Clips the global gradient norm (over every tensor) to `max_norm` before each
    /// step, as `torch.nn.utils.clip_grad_norm_`: every gradient is scaled by
    /// `min(1, max_norm / (norm + 1e-6))`. Fails unless `max_norm` is finite and
    /// positive.
    pub fn with_clip_grad_norm(self, max_norm: f64) -> Result<Self> {
        self.norm.set_clip(&self.ctx, Some(max_norm), "Adafactor")?;
        Ok(self)
    }

    /// Steps skipped so far because a gradient was NaN or infinite, read from the GPU
    /// (every recorded step must have been submitted).
    pub async fn read_skipped_steps(&self) -> Result<u64> {
        Ok(u64::from(self.norm.read(&self.ctx).await?.skipped))
    }

    /// Completed (not skipped) steps, the step t of the last, read from the GPU.
    pub async fn read_completed_steps(&self) -> Result<i32> {
        Ok(self.norm.read(&self.ctx).await?.step as i32)
    }

    /// The step status its records read (`OwnStatus`).
    #[cfg(feature = "nn")]
    pub(crate) fn status(&self) -> &wgpu::Buffer {
        self.norm.status()
    }

    /// Bytes of optimizer state this optimizer keeps on the GPU (its first moments,
    /// full second moments and row and column moments), not counting per-step scratch.
    pub fn state_size(&self) -> u64 {
        let own: u64 = self
            .slots
            .iter()
            .flat_map(|s| [&s.moment, &s.full_second])
            .flatten()
            .map(wgpu::Buffer::size)
            .sum();
        own + self.groups.iter().map(|g| g.moments.size()).sum::<u64>()
    }

    /// Reads tensor `tensor`'s state (as the reference keeps it; bf16 momentum
    /// widened exactly).
    pub async fn read_state(&self, tensor: usize) -> Result<AdafactorState> {
        let slot = self.slot(tensor)?;
        let shape = &self.params.tensors()[tensor].shape;
        let mut state = self.rule.init_state(shape);
        state.step = self.read_completed_steps().await?;
        let ctx = &self.ctx;
        if let Some(moment) = &slot.moment {
            let bytes = read_words(ctx, moment, 0, (moment.size() / WORD) as usize).await?;
            let words: &[u32] = bytemuck::cast_slice(&bytes);
            state.exp_avg = decode_moment(words, state.exp_avg.len(), self.bf16());
        }
        if let Some(v) = &slot.full_second {
            state.exp_avg_sq = to_f64(&read_words(ctx, v, 0, state.exp_avg_sq.len()).await?);
        }
        if let Some(g) = slot.group {
            let (rows, cols) = (state.exp_avg_sq_row.len(), state.exp_avg_sq_col.len());
            let w = &slot.words;
            let moments = &self.groups[g].moments;
            let (row_at, col_at) = if w.rows_reduce_q == 1 {
                (w.means_base as u64, w.means_base as u64 + rows as u64)
            } else {
                (w.means_base as u64 + cols as u64, w.means_base as u64)
            };
            state.exp_avg_sq_row = to_f64(&read_words(ctx, moments, row_at, rows).await?);
            state.exp_avg_sq_col = to_f64(&read_words(ctx, moments, col_at, cols).await?);
        }
        Ok(state)
    }

    /// Every state tensor's place, tensor by tensor, named `<state>.<tensor>`.
    pub(super) fn pieces(&self) -> Vec<Piece<'_>> {
        let mut pieces = Vec::new();
        for (slot, t) in self.slots.iter().zip(self.params.tensors()) {
            let name = |key: &str| format!("{key}.{}", t.name);
            if let Some(moment) = &slot.moment {
                let (bf16, len) = (self.bf16(), t.len);
                pieces.push(Piece {
                    name: name("exp_avg"),
                    bf16,
                    buffer: moment,
                    offset: 0,
                    bytes: if bf16 { 2 * len } else { WORD * len },
                });
            }
            if let Some(v) = &slot.full_second {
                pieces.push(Piece::f32(name("exp_avg_sq"), v, 0, t.len));
            }
            if let Some(g) = slot.group {
                let w = &slot.words;
                let moments = &self.groups[g].moments;
                let q_len = u64::from(w.outer * w.n_p * w.mid * w.inner);
                let p_len = u64::from(w.ema_len) - q_len;
                let base = u64::from(w.means_base);
                let (q_key, p_key) = if w.rows_reduce_q == 1 {
                    ("exp_avg_sq_row", "exp_avg_sq_col")
                } else {
                    ("exp_avg_sq_col", "exp_avg_sq_row")
                };
                pieces.push(Piece::f32(name(q_key), moments, base, q_len));
                pieces.push(Piece::f32(name(p_key), moments, base + q_len, p_len));
            }
        }
        pieces
    }

    /// The device it runs on.
    pub(super) fn ctx(&self) -> &GpuContext {
        &self.ctx
    }

    /// The rule and caution it steps with.
    pub fn config(&self) -> (AdafactorRule, Caution) {
        (self.rule, self.caution)
    }

    /// Sets the steps taken (a restored state's), on the GPU too.
    pub(super) fn set_steps(&mut self, steps: i32) {
        self.steps = steps;
        self.norm.set_completed(&self.ctx, steps as u32);
    }

    fn slot(&self, tensor: usize) -> Result<&TensorSlot> {
        self.slots.get(tensor).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "tensor {tensor} is not one of Adafactor's {}",
                self.slots.len()
            ))
        })
    }

    fn bf16(&self) -> bool {
        matches!(self.rule, AdafactorRule::BigVision(a) if a.momentum_bf16)
    }
}

/// Where one state tensor lives: `bytes` bytes from byte `offset` of `buffer`, f32
/// or (big_vision's momentum) bf16 elements.
#[derive(Debug)]
pub(super) struct Piece<'a> {
    pub name: String,
    pub bf16: bool,
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub bytes: u64,
}

impl<'a> Piece<'a> {
    fn f32(name: String, buffer: &'a wgpu::Buffer, first: u64, len: u64) -> Self {
        Self {
            name,
            bf16: false,
            buffer,
            offset: first * WORD,
            bytes: len * WORD,
        }
    }
}

/// Whether `rule` keeps a first moment.
fn has_momentum(rule: &AdafactorRule) -> bool {
    match rule {
        AdafactorRule::Timm(a) => a.beta1.is_some(),
        AdafactorRule::BigVision(a) => a.momentum.is_some(),
    }
}

/// `len` words of `buffer` from word `first`.
async fn read_words(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    first: u64,
    len: usize,
) -> Result<Vec<u8>> {
    crate::arena::read_buffer(ctx, buffer, first * WORD, len as u64 * WORD).await
}

fn to_f64(bytes: &[u8]) -> Vec<f64> {
    let v: Vec<f32> = bytemuck::pod_collect_to_vec(bytes);
    v.into_iter().map(f64::from).collect()
}

/// The first moment of `len` elements from its words (f32 bits, or two bf16 a word).
fn decode_moment(words: &[u32], len: usize, bf16: bool) -> Vec<f64> {
    (0..len)
        .map(|i| {
            let bits = if !bf16 {
                words[i]
            } else if i % 2 == 0 {
                words[i / 2] << 16
            } else {
                words[i / 2] & 0xffff_0000
            };
            f64::from(f32::from_bits(bits))
        })
        .collect()
}

/// Where a factored tensor sits: its group, its means' offset there and its dims.
#[derive(Debug, Clone, Copy)]
struct Placed {
    group: usize,
    means_base: u64,
    view: AxisView,
    dims: FactoredDims,
}

impl Placed {
    /// Writes its view, factoring and offsets into a tensor's `words`.
    fn fill(&self, words: &mut AdaTensor) {
        let v = self.view;
        words.factored = 1;
        words.rows_reduce_q = (self.dims.row_reduces > self.dims.col_reduces) as u32;
        (words.outer, words.n_p, words.mid) = (v.outer as u32, v.n_p as u32, v.mid as u32);
        (words.n_q, words.inner) = (v.n_q as u32, v.inner as u32);
        words.means_base = self.means_base as u32;
        words.ema_len = (v.q_means_len() + v.p_means_len()) as u32;
    }

    /// Elements of its row scale (the row moment's mean over the column-reduced dim).
    fn both_len(&self) -> u64 {
        (self.view.outer * self.view.mid * self.view.inner) as u64
    }
}

/// The factored tensors' groups (one per gradient buffer), and each tensor's place.
fn factored_groups(
    ctx: &GpuContext,
    params: &ParamSet,
    rule: &AdafactorRule,
) -> Result<(Vec<FactoredGroup>, Vec<Option<Placed>>)> {
    let mut buffers: Vec<(wgpu::Buffer, Vec<AxisTensor>)> = Vec::new();
    let mut placed = Vec::with_capacity(params.tensors().len());
    for t in params.tensors() {
        let Some(dims) = rule.factored_dims(&t.shape) else {
            placed.push(None);
            continue;
        };
        let group = match buffers.iter().position(|(b, _)| *b == t.grad.buffer) {
            Some(g) => g,
            None => {
                buffers.push((t.grad.buffer.clone(), Vec::new()));
                buffers.len() - 1
            }
        };
        let view = AxisView::new(&t.shape, dims.col_reduces, dims.row_reduces);
        let members = &mut buffers[group].1;
        let means_base = members
            .iter()
            .map(|m| (m.view.q_means_len() + m.view.p_means_len()) as u64)
            .sum();
        members.push(AxisTensor {
            src: t.grad.offset / WORD,
            view,
        });
        placed.push(Some(Placed {
            group,
            means_base,
            view,
            dims,
        }));
    }
    let eps = rule.eps() as f32;
    let groups = buffers
        .iter()
        .map(|(buffer, members)| {
            let means = AxisMeans::new(ctx, buffer, members, eps, None)?;
            let total = *means.offsets().last().expect("the table has an end");
            let moments = words_buffer(
                ctx,
                "coptim adafactor row and column moments",
                total,
                STATE_USAGE,
            );
            Ok(FactoredGroup { means, moments })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((groups, placed))
}

/// Tensor `t`'s slot: its words completed from `placed`, its state buffers, its bind
/// group and its grids.
fn tensor_slot(
    ctx: &GpuContext,
    rule: &AdafactorRule,
    shared: &Shared,
    groups: &[FactoredGroup],
    t: &ParamTensor,
    mut words: AdaTensor,
    placed: Option<&Placed>,
) -> Result<TensorSlot> {
    let (param, param_base) = view_binding(ctx, t, &t.param, "Adafactor")?;
    let (grad, grad_base) = view_binding(ctx, t, &t.grad, "Adafactor")?;
    words.len = t.len as u32;
    words.param_base = param_base;
    words.grad_base = grad_base;
    let state = rule.init_state(&t.shape);
    let moment_words = if matches!(rule, AdafactorRule::BigVision(a) if a.momentum_bf16) {
        state.exp_avg.len().div_ceil(2)
    } else {
        state.exp_avg.len()
    };
    let moment = (moment_words > 0).then(|| {
        words_buffer(
            ctx,
            "coptim adafactor first moment",
            moment_words as u64,
            STATE_USAGE,
        )
    });
    let mut full_second = None;
    let means = match placed {
        Some(p) => {
            p.fill(&mut words);
            Some(&groups[p.group])
        }
        None => {
            words.ema_len = words.len;
            full_second = Some(words_buffer(
                ctx,
                "coptim adafactor second moment",
                t.len,
                STATE_USAGE,
            ));
            None
        }
    };
    let uniform = uniform(ctx, "coptim adafactor tensor", bytemuck::bytes_of(&words));
    let whole = wgpu::Buffer::as_entire_buffer_binding;
    let second = full_second
        .as_ref()
        .or(means.map(|g| &g.moments))
        .expect("one of them");
    let bindings = [
        whole(&uniform),
        whole(&shared.step),
        param,
        grad,
        whole(moment.as_ref().unwrap_or(&shared.unused_rw)),
        whole(second),
        whole(means.map_or(&shared.unused_r, |g| g.means.output())),
        whole(&shared.scratch),
        whole(&shared.partials),
        whole(&shared.status),
    ];
    let bind_group = bind_group(ctx, &shared.layout, &bindings);
    Ok(TensorSlot {
        grids: grids(ctx, &words, placed)?,
        words,
        moment,
        full_second,
        group: placed.map(|p| p.group),
        bind_group,
    })
}

/// Each pass's grid for a tensor of `words` (`(0, 0)`: row_scale of an unfactored one).
fn grids(ctx: &GpuContext, words: &AdaTensor, placed: Option<&Placed>) -> Result<[(u32, u32); 7]> {
    let max = ctx.limits().max_compute_workgroups_per_dimension;
    let flat = |n: u64| grid_for(n.div_ceil(u64::from(WG_SIZE)) as u32, max);
    let chunks = grid_for(words.chunks, max)?;
    let mut grids = [
        flat(u64::from(words.ema_len))?,
        (0, 0),
        chunks,
        (1, 1),
        chunks,
        (1, 1),
        flat(u64::from(words.len))?,
    ];
    if let Some(p) = placed {
        grids[ROW_SCALE] = flat(p.both_len())?;
    }
    Ok(grids)
}

/// `adafactor.wgsl`'s bindings after the tensor's and step's uniforms, param and
/// grad: moment, second, means, scratch, partials and status.
const SLOTS: [Slot; 6] = [
    Slot::ReadWrite,
    Slot::ReadWrite,
    Slot::Read,
    Slot::ReadWrite,
    Slot::ReadWrite,
    Slot::ReadWrite,
];
