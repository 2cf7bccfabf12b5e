//! The GPU Muon: the momentum, mask and norm passes (`shaders/muon.wgsl`), the batched
//! Newton-Schulz products per matrix shape, and the update, all recorded into the
//! caller's encoder; the fallback tensors step through the engine's AdamW
//! ([`Optimizer`]) on a [`ParamSet`] of their views.

use std::collections::BTreeMap;

use crate::arena::{ParamSet, ParamSpec, ParamTensor, UploadRing};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::nn::{DType, Kernels, Tensor};
use crate::optim::config::Caution;
use crate::optim::grad_norm::GradNorm;
use crate::optim::inputs::StepInputs;
use crate::optim::muon::launch::{self, CHUNK, Launch, Slot, WG_SIZE, grid, uniform};
use crate::optim::muon::newton_schulz::{NewtonSchulz, NsPrecision};
use crate::optim::muon::words::{MuonStep, MuonTensor, StepWords};
use crate::optim::muon::{Muon, muon_matrix};
use crate::optim::own_kernels::view_binding;
use crate::optim::runtime::Optimizer;
use crate::optim::stats::ChunkRanges;

/// `muon.wgsl`'s bindings after the tensor's and step's uniforms, param and grad:
/// momentum, x, partials, factors, status.
const SLOTS: [Slot; 5] = [Slot::ReadWrite; 5];

/// The entry points of `muon.wgsl`, in pass order (the products run before `apply`).
const ENTRIES: [&str; 4] = ["measure", "finalize", "normalize", "apply"];
/// `ENTRIES`' last pass, after the Newton-Schulz products.
const APPLY: usize = 3;

/// One matrix Muon orthogonalizes: its launches of each pass.
#[derive(Debug)]
struct Matrix {
    /// Index in the [`ParamSet`].
    tensor: usize,
    /// Its momentum buffer.
    momentum: Tensor,
    /// The passes of [`ENTRIES`].
    launches: [Launch; 4],
}

/// Muon (or C-Muon with caution) stepping every tensor of a [`ParamSet`] on the GPU:
/// matrices timm finds suitable by Newton-Schulz, the others by the fallback AdamW.
#[derive(Debug)]
pub struct MuonOptimizer {
    ctx: GpuContext,
    words: StepWords,
    params: ParamSet,
    matrices: Vec<Matrix>,
    batches: Vec<NewtonSchulz>,
    step_params: wgpu::Buffer,
    /// The global gradient norm of every tensor (the fallback's too), the step's
    /// non-finite flag and clip coefficient (`OwnStatus`).
    norm: GradNorm,
    fallback: Option<Optimizer>,
    uploads: UploadRing,
    /// Per chunk of each matrix, in matrix order: (agreeing count, sum of squares).
    partials: Option<wgpu::Buffer>,
}

/// Where a matrix sits in its shape's Newton-Schulz batch.
struct Placement<'a> {
    batch: &'a NewtonSchulz,
    slot: usize,
    partial_base: u64,
    index: usize,
}

impl MuonOptimizer {
    /// Muon `muon` (with `caution`: C-Muon) at weight decay `weight_decay` over
    /// `params`, its Newton-Schulz products in `precision`.
    pub fn new(
        ctx: &GpuContext,
        params: impl Into<ParamSet>,
        muon: Muon,
        caution: Caution,
        weight_decay: f64,
        precision: NsPrecision,
    ) -> Result<Self> {
        let params: ParamSet = params.into();
        muon.validate()?;
        let fallback_cfg = muon.fallback(1.0, weight_decay, caution);
        fallback_cfg.validate()?;
        let kernels = Kernels::with_matmul(ctx, precision.variant(ctx)?)?;
        let shapes = group_by_shape(params.tensors());
        let sequence = muon.ns_coefficients.sequence(muon.ns_steps);
        let batches = shapes
            .iter()
            .map(|(&(r, c), members)| NewtonSchulz::new(&kernels, r, c, members.len(), &sequence))
            .collect::<Result<Vec<_>>>()?;
        let step_params = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("coptim muon step"),
            size: std::mem::size_of::<MuonStep>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let norm = GradNorm::new(ctx, params.tensors(), "Muon")?;
        let words = StepWords {
            muon,
            caution,
            weight_decay,
        };
        let mut fallback = fallback_optimizer(ctx, &params, fallback_cfg)?;
        // The step's one record (`TrainOptimizer`'s) covers the fallback's tensors too.
        if let Some(f) = &mut fallback {
            f.stop_records();
        }
        let mut opt = Self {
            ctx: ctx.clone(),
            words,
            params,
            matrices: Vec::new(),
            batches,
            step_params,
            norm,
            fallback,
            uploads: UploadRing::new("coptim muon step upload"),
            partials: None,
        };
        let (matrices, partials) = opt.build_matrices(&shapes)?;
        (opt.matrices, opt.partials) = (matrices, Some(partials));
        Ok(opt)
    }

    /// The launches of every matrix, in the order of `shapes`.
    fn build_matrices(
        &self,
        shapes: &BTreeMap<(usize, usize), Vec<usize>>,
    ) -> Result<(Vec<Matrix>, wgpu::Buffer)> {
        let layout = launch::tensor_layout(&self.ctx, "coptim muon", &SLOTS);
        let pipelines =
            launch::pipelines(&self.ctx, &launch::muon_module(), &layout, &ENTRIES, "Muon")?;
        let total_chunks: u64 = shapes
            .values()
            .flatten()
            .map(|&t| self.params.tensors()[t].len.div_ceil(CHUNK))
            .sum();
        let storage = |label, size: u64| {
            self.ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(1) * 8,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let partials = storage("coptim muon partials", total_chunks);
        let factors = storage(
            "coptim muon factors",
            shapes.values().flatten().count() as u64,
        );
        let shared = Shared {
            layout: &layout,
            pipelines: &pipelines,
            partials: &partials,
            factors: &factors,
        };
        let mut matrices = Vec::new();
        let mut partial_base = 0;
        for (batch, members) in self.batches.iter().zip(shapes.values()) {
            for (slot, &tensor) in members.iter().enumerate() {
                let place = Placement {
                    batch,
                    slot,
                    partial_base,
                    index: matrices.len(),
                };
                matrices.push(self.matrix(&shared, tensor, &place)?);
                partial_base += self.params.tensors()[tensor].len.div_ceil(CHUNK);
            }
        }
        Ok((matrices, partials))
    }

    /// The momentum buffer and launches of tensor `tensor` placed at `place`.
    fn matrix(&self, shared: &Shared<'_>, tensor: usize, place: &Placement<'_>) -> Result<Matrix> {
        let t = &self.params.tensors()[tensor];
        let (rows, cols) = muon_matrix(&t.shape).expect("grouped tensors are matrices");
        let momentum = Tensor::zeros(
            &self.ctx,
            &[t.len as usize],
            DType::F32,
            "coptim muon momentum",
        )?;
        let (param, param_base) = view_binding(&self.ctx, t, &t.param, "Muon")?;
        let (grad, grad_base) = view_binding(&self.ctx, t, &t.grad, "Muon")?;
        let chunks = t.len.div_ceil(CHUNK);
        let words = MuonTensor {
            len: t.len as u32,
            rows: rows as u32,
            cols: cols as u32,
            transposed: (rows > cols) as u32,
            param_base,
            grad_base,
            x_base: (place.slot * rows * cols) as u32,
            partial_base: place.partial_base as u32,
            chunks: chunks as u32,
            index: place.index as u32,
            lr_scale: self.words.muon.adjust_lr.scale(rows, cols) as f32,
            pad: 0,
        };
        let uniform = uniform(&self.ctx, "coptim muon tensor", bytemuck::bytes_of(&words));
        let group = |x: &Tensor| {
            launch::bind_group(
                &self.ctx,
                shared.layout,
                &[
                    uniform.as_entire_buffer_binding(),
                    self.step_params.as_entire_buffer_binding(),
                    param.clone(),
                    grad.clone(),
                    momentum.binding(),
                    x.binding(),
                    shared.partials.as_entire_buffer_binding(),
                    shared.factors.as_entire_buffer_binding(),
                    self.norm.status().as_entire_buffer_binding(),
                ],
            )
        };
        let (input, output) = (group(place.batch.input()), group(place.batch.output()));
        let max_dim = self.ctx.limits().max_compute_workgroups_per_dimension;
        let flat = grid(t.len.div_ceil(u64::from(WG_SIZE)), max_dim);
        let launch = |k: usize, bind_group: &wgpu::BindGroup, grid| Launch::Own {
            pipeline: shared.pipelines[k].clone(),
            bind_group: bind_group.clone(),
            grid,
        };
        let launches = [
            launch(0, &input, launch::grid(chunks, max_dim)),
            launch(1, &input, [1, 1]),
            launch(2, &input, flat),
            launch(3, &output, flat),
        ];
        Ok(Matrix {
            tensor,
            momentum,
            launches,
        })
    }

    /// Records one step at learning rate `lr` (the fallback at `lr *
    /// fallback_lr_scale`) into `encoder`: nothing is submitted or read back. First
    /// the global norm of every gradient (orthogonalized or fallback); when one is
    /// NaN or infinite, the whole step is skipped on the GPU: momenta, fallback state
    /// and parameters stay as they were, and [`MuonOptimizer::read_skipped_steps`]
    /// counts it. With [`MuonOptimizer::with_clip_grad_norm`], every gradient is
    /// scaled by the clip coefficient of that norm.
    pub fn record_step(&mut self, encoder: &mut wgpu::CommandEncoder, lr: f64) -> Result<()> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::InvalidConfig(format!(
                "learning rate {lr} is not a finite non-negative number"
            )));
        }
        self.ctx.check_lost()?;
        if !self.matrices.is_empty() {
            let words = self.words.at(lr);
            self.uploads.record_write(
                &self.ctx,
                encoder,
                &self.step_params,
                0,
                bytemuck::bytes_of(&words),
            );
        }
        self.norm.record(encoder);
        if let Some(fallback) = &mut self.fallback {
            let inputs = StepInputs::lr(lr * self.words.muon.fallback_lr_scale);
            fallback.record_step_seeded(encoder, &inputs, Some(self.norm.status()))?;
        }
        self.record_passes(encoder);
        Ok(())
    }

    /// Clips the global gradient norm (over every tensor, the fallback's included) to
    /// `max_norm` before each step, as `torch.nn.utils.clip_grad_norm_`: every
    /// gradient is scaled by `min(1, max_norm / (norm + 1e-6))`. Fails unless
    /// `max_norm` is finite and positive.
    pub fn with_clip_grad_norm(mut self, max_norm: f64) -> Result<Self> {
        self.norm.set_clip(&self.ctx, Some(max_norm), "Muon")?;
        if let Some(f) = &mut self.fallback {
            f.clip_from_seed(max_norm)?;
        }
        Ok(self)
    }

    /// One compute pass of Muon's passes over every matrix, pass by pass, with the
    /// Newton-Schulz products before the update.
    fn record_passes(&self, encoder: &mut wgpu::CommandEncoder) {
        if self.matrices.is_empty() {
            return;
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("coptim muon step"),
            timestamp_writes: None,
        });
        for k in 0..APPLY {
            for m in &self.matrices {
                m.launches[k].record(&mut pass);
            }
        }
        for batch in &self.batches {
            batch.record(&mut pass);
        }
        for m in &self.matrices {
            m.launches[APPLY].record(&mut pass);
        }
    }

    /// Steps skipped so far because a gradient was NaN or infinite, read from the GPU
    /// (every recorded step must have been submitted).
    pub async fn read_skipped_steps(&self) -> Result<u64> {
        Ok(u64::from(self.norm.read(&self.ctx).await?.skipped))
    }

    /// The step status its records read (`OwnStatus`).
    pub(crate) fn status(&self) -> &wgpu::Buffer {
        self.norm.status()
    }

    /// Staging buffers its steps use: Muon's upload ring, and the fallback's uploads
    /// and records. Constant once steps are submitted as fast as they are recorded.
    pub fn staging_buffers(&self) -> usize {
        self.uploads.len()
            + self
                .fallback
                .as_ref()
                .map_or(0, |f| f.upload_buffers() + f.record_buffers())
    }

    /// The parameters and gradients this optimizer steps.
    pub fn params(&self) -> &ParamSet {
        &self.params
    }

    /// The momentum buffer of tensor `tensor` (an index in [`MuonOptimizer::params`])
    /// when Muon orthogonalizes it.
    pub fn momentum(&self, tensor: usize) -> Option<&Tensor> {
        self.matrices
            .iter()
            .find(|m| m.tensor == tensor)
            .map(|m| &m.momentum)
    }

    /// The AdamW of the fallback tensors, if any.
    pub fn fallback(&self) -> Option<&Optimizer> {
        self.fallback.as_ref()
    }

    /// The per-chunk partials (agreeing count first) and, for each matrix, its
    /// `(tensor, first chunk, chunks)` there: where a step's kept counts are.
    pub(crate) fn kept_chunks(&self) -> Option<(&wgpu::Buffer, ChunkRanges)> {
        let mut first = 0;
        let ranges = self
            .matrices
            .iter()
            .map(|m| {
                let chunks = self.params.tensors()[m.tensor].len.div_ceil(CHUNK);
                first += chunks;
                (m.tensor, first - chunks, chunks)
            })
            .collect();
        self.partials.as_ref().map(|p| (p, ranges))
    }

    /// The hyperparameters it steps with: Muon's, the caution and the weight decay.
    pub fn settings(&self) -> (Muon, Caution, f64) {
        let w = &self.words;
        (w.muon, w.caution, w.weight_decay)
    }

    /// The device it runs on.
    pub(crate) fn ctx(&self) -> &GpuContext {
        &self.ctx
    }

    /// The fallback AdamW, mutably (to restore its state).
    pub(crate) fn fallback_mut(&mut self) -> Option<&mut Optimizer> {
        self.fallback.as_mut()
    }

    /// Multiply-adds of one step's Newton-Schulz products, times two (FLOPs).
    pub fn newton_schulz_flops(&self) -> u64 {
        self.batches.iter().map(NewtonSchulz::flops).sum()
    }
}

/// What every matrix's launches share.
struct Shared<'a> {
    layout: &'a wgpu::BindGroupLayout,
    pipelines: &'a [wgpu::ComputePipeline],
    partials: &'a wgpu::Buffer,
    factors: &'a wgpu::Buffer,
}

/// The Muon tensors of `tensors` by the `(rows, cols)` of their Newton-Schulz matrix
/// (`rows <= cols`), each a list of tensor indices.
fn group_by_shape(tensors: &[ParamTensor]) -> BTreeMap<(usize, usize), Vec<usize>> {
    let mut shapes: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (i, t) in tensors.iter().enumerate() {
        if let Some((r, c)) = muon_matrix(&t.shape) {
            shapes.entry((r.min(c), r.max(c))).or_default().push(i);
        }
    }
    shapes
}

/// The engine's AdamW over the tensors Muon does not orthogonalize, if any.
fn fallback_optimizer(
    ctx: &GpuContext,
    params: &ParamSet,
    config: crate::optim::config::OptimizerConfig,
) -> Result<Option<Optimizer>> {
    let specs: Vec<ParamSpec> = params
        .tensors()
        .iter()
        .filter(|t| muon_matrix(&t.shape).is_none())
        .map(|t| {
            ParamSpec::new(t.name.clone(), &t.shape, t.param.clone()).with_grad(t.grad.clone())
        })
        .collect();
    if specs.is_empty() {
        return Ok(None);
    }
    let set = ParamSet::from_views(ctx, &specs)?;
    Optimizer::new(ctx, set, config).map(Some)
}
