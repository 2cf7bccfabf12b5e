//! The GPU optimizer: owns the state arenas and records a step's passes into a
//! command encoder.

use crate::arena::{Arena, ParamSet, UploadRing};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::bindings::{
    BindingSources, PartialsLayout, ReduceBindings, StepBuffers, WindowBindings, buffer_places,
    check_storage_budget,
};
use crate::optim::config::{NonFinite, OptimizerConfig};
use crate::optim::gpu_types::{
    GpuBlockPartial, GpuGroupParams, GpuStatus, GpuStepParams, GpuTensorEntry,
};
use crate::optim::inputs::StepInputs;
use crate::optim::kernels::{MAX_GROUPS, Pipelines};
use crate::optim::plan::{Plan, grid_for};
use crate::optim::stats::{StatsQueue, StepStats};

/// Options that do not change the math: limits to plan dispatches with.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptimizerOptions {
    /// Cap on workgroups per dispatch dimension (defaults to the device limit);
    /// tests lower it to exercise 2-D grids.
    pub max_workgroups_per_dim: Option<u32>,
}

/// A cautious (or plain) optimizer stepping every tensor of a [`ParamSet`] (a
/// [`ParamStore`](crate::ParamStore) or views of the caller's own buffers) on the GPU.
///
/// ```no_run
/// # fn main() -> coptim::Result<()> {
/// use coptim::optim::{Caution, Optimizer, OptimizerConfig, StepInputs};
/// let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
/// let store = coptim::ParamStore::new(&ctx, &[("w", vec![256, 128]), ("b", vec![256])])?;
/// let cfg = OptimizerConfig::adamw(1e-3).with_caution(Caution::hard());
/// let mut opt = Optimizer::new(&ctx, &store, cfg)?;
/// // ... write gradients into store.grads, then:
/// let mut encoder = ctx.device().create_command_encoder(&Default::default());
/// opt.record_step(&mut encoder, &StepInputs::lr(3e-4))?;
/// ctx.queue().submit([encoder.finish()]);
/// let records = opt.take_stats()?; // every finished step, in order
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Optimizer {
    ctx: GpuContext,
    config: OptimizerConfig,
    lr: f64,
    params: ParamSet,
    state: Vec<Arena>,
    groups_of_tensors: Vec<usize>,
    plan: Plan,
    pipelines: Pipelines,
    buffers: StepBuffers,
    windows: Vec<WindowBindings>,
    reduce: ReduceBindings,
    scheduled: u64,
    uploads: UploadRing,
    stats: StatsQueue,
    /// Whether each step records its readback record (off for an optimizer stepping
    /// inside another, whose record carries the counts).
    records: bool,
    /// Whether the clip coefficient comes with the seed of
    /// [`Optimizer::record_step_seeded`] (another optimizer's norm of the tensors
    /// both step) instead of this one's clip pass.
    clip_seeded: bool,
    /// The first step's commands passed validation (see [`Optimizer::record_step`]).
    checked: bool,
}

impl Optimizer {
    /// Creates the optimizer, its zeroed state, and every pipeline and bind group.
    /// `params` is a `&ParamStore` or a [`ParamSet`] of the caller's buffers.
    pub fn new(
        ctx: &GpuContext,
        params: impl Into<ParamSet>,
        config: OptimizerConfig,
    ) -> Result<Self> {
        Self::with_options(ctx, params, config, OptimizerOptions::default())
    }

    /// Like [`Optimizer::new`] with explicit [`OptimizerOptions`].
    pub fn with_options(
        ctx: &GpuContext,
        params: impl Into<ParamSet>,
        config: OptimizerConfig,
        options: OptimizerOptions,
    ) -> Result<Self> {
        let set: ParamSet = params.into();
        ctx.check_lost()?;
        let groups_of_tensors = check_setup(ctx, &set, &config)?;
        let layout = set.state_layout().clone();
        let max_dim = options
            .max_workgroups_per_dim
            .unwrap_or(u32::MAX)
            .min(ctx.limits().max_compute_workgroups_per_dimension);
        let (tensor_buffers, places) = buffer_places(&set);
        let sizes: Vec<u64> = tensor_buffers.iter().map(|b| b.size()).collect();
        let seg_lens: Vec<u64> = set
            .tensors()
            .iter()
            .map(|t| config.algorithm.segment_len(&t.shape))
            .collect();
        let plan = Plan::new(&layout, &places, &seg_lens, &sizes, max_dim)?;
        let numel: Vec<u64> = set.tensors().iter().map(|t| t.len).collect();
        let partials = PartialsLayout::new(&plan, &numel, &seg_lens);
        check_partials(ctx, &partials)?;
        let state = config
            .algorithm
            .state_names()
            .iter()
            .map(|name| Arena::new(ctx, layout.clone(), config.state_dtype, name))
            .collect::<Result<Vec<_>>>()?;
        let buffers = StepBuffers::new(ctx.device(), &set, &plan, &groups_of_tensors, &partials);
        let pipelines = Pipelines::new(ctx, &config.algorithm, config.state_dtype, set.access())?;
        let sources = BindingSources {
            device: ctx.device(),
            pipelines: &pipelines,
            buffers: &buffers,
            tensor_buffers: &tensor_buffers,
            state: &state,
            count_reads_params: config.algorithm.count_reads_params(),
            count_states: config.algorithm.rules().count_states(),
            norm_states: config.algorithm.norm_pass_states(),
        };
        let num_tensors = layout.num_tensors() as u32;
        let tensor_grid = grid_for(num_tensors, max_dim)?;
        let (windows, reduce) = ctx.guarded("creating the optimizer's bind groups", || {
            let windows = plan
                .windows
                .iter()
                .enumerate()
                .map(|(w, wp)| sources.window(w, wp))
                .collect();
            (windows, sources.reduce(num_tensors, tensor_grid))
        })?;
        let stats = StatsQueue::new(
            &buffers.status,
            &buffers.tensor_table,
            numel,
            config.caution.is_on(),
        );
        Ok(Self {
            ctx: ctx.clone(),
            lr: config.lr,
            config,
            params: set,
            state,
            groups_of_tensors,
            plan,
            pipelines,
            buffers,
            windows,
            reduce,
            scheduled: 0,
            uploads: UploadRing::new("coptim step params upload"),
            stats,
            records: true,
            clip_seeded: false,
            checked: false,
        })
    }

    /// The configuration the optimizer was built with (its `lr` is the initial base
    /// rate; see [`Optimizer::learning_rate`]).
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// The parameters and gradients this optimizer steps.
    pub fn params(&self) -> &ParamSet {
        &self.params
    }

    /// The state arenas, in the order of [`Algorithm::state_names`](crate::optim::Algorithm::state_names).
    pub fn state(&self) -> &[Arena] {
        &self.state
    }

    /// Steps recorded so far (skipped ones included); drives the schedule.
    pub fn scheduled_steps(&self) -> u64 {
        self.scheduled
    }

    /// The base learning rate: what the schedule multiplies for
    /// [`StepInputs::scheduled`] and [`StepInputs::scale`].
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// Sets the base learning rate for the steps recorded from now on (burn's and
    /// candle's `set_learning_rate`). Fails, changing nothing, unless it is finite
    /// and non-negative.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        if !lr.is_finite() || lr < 0.0 {
            return Err(Error::InvalidConfig(format!(
                "learning rate {lr} is not a finite non-negative number"
            )));
        }
        self.lr = lr;
        Ok(())
    }

    /// The learning rate the next step recorded with [`StepInputs::scheduled`] will
    /// use for group `g` (`g == groups.len()` is the default group).
    pub fn next_lr(&self, g: usize) -> f64 {
        let (lr_scale, _) = self.config.group_hyper(g);
        self.lr * self.config.schedule.factor(self.scheduled + 1) * lr_scale
    }

    /// Number of compute dispatches one step records.
    pub fn dispatches_per_step(&self) -> usize {
        let w = self.windows.len();
        let passes = self.passes();
        let mut n = w + 1; // updates + advance
        if passes.clip {
            n += w + 1;
        }
        if passes.measure {
            n += w + 1;
        }
        if passes.norms {
            n += w + 1;
        }
        if passes.segments {
            n += w + 1 + passes.measure as usize;
        }
        if passes.check {
            n += w;
        }
        n
    }

    fn passes(&self) -> Passes {
        let cfg = &self.config;
        let clip = !self.clip_seeded
            && (cfg.clip_grad_norm.is_some() || cfg.algorithm.rules().max_grad_norm().is_some());
        let measure = cfg.caution.is_on() || cfg.algorithm.needs_tensor_sums();
        let norms = cfg.algorithm.norm_pass_states().is_some();
        let segments = cfg.algorithm.needs_segment_sums();
        Passes {
            clip,
            measure,
            norms,
            segments,
            check: !measure
                && !clip
                && !norms
                && !segments
                && cfg.non_finite == NonFinite::SkipStep,
        }
    }

    /// Records one optimizer step into `encoder` with the step's `inputs` (learning
    /// rate, optional loss to record): nothing is submitted and nothing is read back.
    /// The gradients must be written (by the caller's kernels or queue writes) before
    /// the encoder is submitted. Bad inputs fail with [`Error::InvalidConfig`] before
    /// anything is recorded. Each step's record arrives through
    /// [`Optimizer::take_stats`] once the encoder has run.
    ///
    /// The first call also records the step's passes into an encoder of the
    /// optimizer's own inside error scopes and finishes it, never submitting it, so
    /// that commands the device rejects when encoding them fail with [`Error::Gpu`]
    /// instead of reaching wgpu's uncaptured-error handler (which panics by default)
    /// when the caller finishes its encoder. Natively the check completes in this
    /// call, and on failure nothing is recorded into `encoder`. On the web the
    /// browser answers error scopes asynchronously: the error is returned by the
    /// first later call that checks the context ([`Optimizer::record_step`],
    /// [`Optimizer::take_stats`], [`Optimizer::next_stats`],
    /// [`GpuContext::check_lost`]). Buffers destroyed or left mapped by the caller
    /// are reported by wgpu only at submit (as WebGPU specifies), which the engine
    /// leaves to the caller.
    pub fn record_step(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &StepInputs<'_>,
    ) -> Result<()> {
        self.record_step_seeded(encoder, inputs, None)
    }

    /// [`Optimizer::record_step`] with the step's non-finite flag starting from the
    /// first word of `seed` (when given: another optimizer's status, laid out as
    /// [`GpuStatus`] in its first four words, after its check of the tensors this one
    /// steps) instead of from 0, so that both skip the same steps; with
    /// [`Optimizer::clip_from_seed`], the clip coefficient and norm (words 2 and 3)
    /// come from it too.
    pub(crate) fn record_step_seeded(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &StepInputs<'_>,
        seed: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        self.ctx.check_lost()?;
        let lrs = inputs.group_lrs(&self.config, self.lr, self.scheduled + 1)?;
        self.check_first_step()?;
        self.scheduled += 1;
        let params = self.step_params(&lrs);
        self.uploads.record_write(
            &self.ctx,
            encoder,
            &self.buffers.step_params,
            0,
            bytemuck::bytes_of(&params),
        );
        self.record_passes(encoder, seed);
        if self.records {
            let default_lr = lrs[self.config.groups.len()];
            self.stats
                .record(&self.ctx, encoder, inputs, self.scheduled, default_lr);
        }
        Ok(())
    }

    /// Records the passes of a step into an encoder of the optimizer's own and
    /// finishes it inside error scopes, once (see [`Optimizer::record_step`]).
    fn check_first_step(&mut self) -> Result<()> {
        if self.checked {
            return Ok(());
        }
        self.ctx.guarded("the optimizer's first step", || {
            let mut probe =
                self.ctx
                    .device()
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("coptim first-step check (never submitted)"),
                    });
            self.record_passes(&mut probe, None);
            probe.finish()
        })?;
        self.checked = true;
        Ok(())
    }

    /// The buffer clears and compute passes of one step, in order; the non-finite
    /// flag (and with a seeded clip, the clip words) start from `seed`'s, or from 0.
    fn record_passes(&self, encoder: &mut wgpu::CommandEncoder, seed: Option<&wgpu::Buffer>) {
        let passes = self.passes();
        let status = &self.buffers.status;
        match seed {
            Some(seed) => {
                encoder.copy_buffer_to_buffer(seed, 0, status, 0, 4);
                if self.clip_seeded {
                    encoder.copy_buffer_to_buffer(seed, 8, status, 8, 8);
                }
            }
            None => encoder.clear_buffer(status, 0, Some(4)),
        }
        if passes.measure {
            encoder.clear_buffer(&self.buffers.partials, 0, None);
        }
        let p = &self.pipelines;
        let r = &self.reduce;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("coptim step"),
            timestamp_writes: None,
        });
        let windows = |pass: &mut wgpu::ComputePass<'_>,
                       pipeline: &wgpu::ComputePipeline,
                       pick: &dyn Fn(&WindowBindings) -> &wgpu::BindGroup| {
            pass.set_pipeline(pipeline);
            for w in &self.windows {
                pass.set_bind_group(0, pick(w), &[]);
                pass.dispatch_workgroups(w.grid.0, w.grid.1, 1);
            }
        };
        let single = |pass: &mut wgpu::ComputePass<'_>,
                      pipeline: &wgpu::ComputePipeline,
                      group: &wgpu::BindGroup,
                      grid: (u32, u32)| {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(grid.0, grid.1, 1);
        };
        if passes.clip {
            windows(&mut pass, &p.grad_sumsq, &|w| &w.grad_sumsq);
            single(&mut pass, &p.finalize_clip, &r.finalize_clip, (1, 1));
        }
        if let (Some(norms), Some(finalize)) = (&p.norms, &r.finalize_sums) {
            windows(&mut pass, &norms.measure, &|w| {
                w.norms.as_ref().expect("bound with the norm pipelines")
            });
            single(&mut pass, &norms.finalize, finalize, r.tensor_grid);
        }
        if passes.check {
            windows(&mut pass, &p.check_finite, &|w| &w.check_finite);
        }
        let segments = p.segments.as_ref().zip(r.segments.as_ref());
        if let Some((s, (round1, _))) = segments {
            windows(&mut pass, &s.measure, &|w| {
                w.measure.as_ref().expect("segment sums")
            });
            single(&mut pass, &s.finalize, round1, r.tensor_grid);
        }
        if passes.measure {
            windows(&mut pass, &p.count, &|w| &w.count);
            single(
                &mut pass,
                &p.finalize_scale,
                &r.finalize_scale,
                r.tensor_grid,
            );
            if let Some((s, (_, round2))) = segments {
                single(&mut pass, &s.finalize_masked, round2, r.tensor_grid);
            }
        }
        single(&mut pass, &p.advance_step, &r.advance, (1, 1));
        windows(&mut pass, &p.update, &|w| &w.update);
    }

    /// Records a step with [`StepInputs::scheduled`] and submits it, without waiting.
    /// Convenience for programs that do not manage their own encoders.
    pub fn step(&mut self) -> Result<()> {
        let mut encoder =
            self.ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("coptim step"),
                });
        self.record_step(&mut encoder, &StepInputs::scheduled())?;
        self.ctx.queue().submit([encoder.finish()]);
        Ok(())
    }

    /// Steps and waits for the GPU (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step_blocking(&mut self) -> Result<()> {
        self.step()?;
        self.ctx.wait_idle()
    }

    /// The record of every step whose readback has completed since the last call, in
    /// step order, without waiting: kept counts per tensor, whether the step was
    /// skipped, the gradient norm (when clipping), the learning rate and the loss
    /// (when the step's inputs named one). No step is left out: records of steps
    /// still on the GPU come in a later call.
    pub fn take_stats(&mut self) -> Result<Vec<StepStats>> {
        self.stats.poll(&self.ctx)
    }

    /// The newest completed record, without waiting (`None` if none is ready). The
    /// older completed records are discarded: use [`Optimizer::take_stats`] for every
    /// one.
    pub fn latest_stats(&mut self) -> Result<Option<StepStats>> {
        Ok(self.take_stats()?.pop())
    }

    /// The oldest record not yet returned, waiting for it (its encoder must have been
    /// submitted).
    pub async fn next_stats(&mut self) -> Result<StepStats> {
        self.stats.next(&self.ctx).await
    }

    /// Steps recorded whose records have not been returned yet.
    pub fn stats_in_flight(&self) -> usize {
        self.stats.in_flight()
    }

    /// Waits for the GPU and returns the record of the newest recorded step (the older
    /// ones are discarded). Fails if no step is in flight, or if an encoder holding
    /// one was never submitted.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn stats_blocking(&mut self) -> Result<StepStats> {
        let mut newest = None;
        while self.stats.in_flight() > 0 {
            newest = Some(pollster::block_on(self.next_stats())?);
        }
        newest.ok_or_else(|| Error::Readback("no statistics were recorded".into()))
    }

    /// Reads the GPU step state: (completed steps, bias corrections per group).
    pub async fn read_status(&self) -> Result<(u64, Vec<[f32; 2]>)> {
        let bytes = crate::arena::read_buffer(
            &self.ctx,
            &self.buffers.status,
            0,
            std::mem::size_of::<GpuStatus>() as u64,
        )
        .await?;
        let status: GpuStatus = bytemuck::pod_read_unaligned(&bytes);
        let n = self.config.groups.len() + 1;
        Ok((
            status.step as u64,
            status.bias[..n].iter().map(|b| [b[0], b[1]]).collect(),
        ))
    }

    /// The per-tensor float sums the last measuring pass left, one `[f32; 4]` per
    /// tensor (LAMB: `sum (a u)^2, sum (a u)(c p), sum (c p)^2, sum p^2`, see
    /// `shaders/lamb.wgsl`; meaningless for algorithms without tensor sums), for
    /// diagnostics and tests of the reduction.
    pub async fn read_tensor_sums(&self) -> Result<Vec<[f32; 4]>> {
        let table = &self.buffers.tensor_table;
        let bytes = crate::arena::read_buffer(&self.ctx, table, 0, table.size()).await?;
        let entries: Vec<GpuTensorEntry> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(entries.iter().map(|e| e.sums).collect())
    }

    /// The per-segment float sums the last step's first measuring round left, per
    /// tensor one `[f32; 4]` per segment (AdamP and SGDP: `p.g, p.p, g.g, p.u` per row,
    /// see `shaders/projection.wgsl`; empty for tensors without segments), for
    /// diagnostics and tests of the reduction.
    pub async fn read_segment_sums(&self) -> Result<Vec<Vec<[f32; 4]>>> {
        let partials = &self.buffers.partials;
        let bytes = crate::arena::read_buffer(&self.ctx, partials, 0, partials.size()).await?;
        let records: Vec<GpuBlockPartial> = bytemuck::pod_collect_to_vec(&bytes);
        let table = &self.buffers.tensor_table;
        let bytes = crate::arena::read_buffer(&self.ctx, table, 0, table.size()).await?;
        let entries: Vec<GpuTensorEntry> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(entries
            .iter()
            .map(|e| {
                (0..e.numel.checked_div(e.seg_len).unwrap_or(0))
                    .map(|i| records[(e.first_segment + 2 * i) as usize].sums)
                    .collect()
            })
            .collect())
    }

    pub(crate) fn status_buffer(&self) -> &wgpu::Buffer {
        &self.buffers.status
    }

    /// The per-tensor table (its `kept` counts), for an enclosing optimizer's record.
    #[cfg(feature = "nn")]
    pub(crate) fn tensor_table(&self) -> &wgpu::Buffer {
        &self.buffers.tensor_table
    }

    /// Stops recording per-step records: an enclosing optimizer's record carries
    /// this one's counts ([`Optimizer::tensor_table`]).
    #[cfg(feature = "nn")]
    pub(crate) fn stop_records(&mut self) {
        self.records = false;
    }

    /// Clips at `max_norm` with the clip coefficient of the seed of each step
    /// ([`Optimizer::record_step_seeded`]: an enclosing optimizer's global norm),
    /// running no clip pass of its own.
    #[cfg(feature = "nn")]
    pub(crate) fn clip_from_seed(&mut self, max_norm: f64) -> Result<()> {
        let config = self.config.clone().with_clip_grad_norm(max_norm);
        config.validate()?;
        self.config = config;
        self.clip_seeded = true;
        Ok(())
    }

    pub(crate) fn set_scheduled(&mut self, scheduled: u64) {
        self.scheduled = scheduled;
    }

    pub(crate) fn ctx(&self) -> &GpuContext {
        &self.ctx
    }

    /// Group index of each tensor.
    pub fn groups_of_tensors(&self) -> &[usize] {
        &self.groups_of_tensors
    }

    /// Number of dispatches per pass (binding windows) of the plan (for reports).
    pub fn windows(&self) -> usize {
        self.plan.windows.len()
    }

    /// Staging buffers the step-parameter upload ring holds (constant once steps are
    /// submitted as fast as they are recorded).
    pub fn upload_buffers(&self) -> usize {
        self.uploads.len()
    }

    /// Staging buffers the per-step records use (constant once records are read as
    /// fast as steps are submitted).
    pub fn record_buffers(&self) -> usize {
        self.stats.staging_buffers()
    }

    /// Invocations per workgroup of the step kernels (the context's
    /// [`StreamShape`](crate::stream::StreamShape)).
    pub fn workgroup_size(&self) -> u32 {
        self.ctx.stream_shape().wg_size
    }

    /// The `StepParams` of a step whose groups use learning rates `lrs`.
    fn step_params(&self, lrs: &[f64]) -> GpuStepParams {
        let cfg = &self.config;
        let rules = cfg.algorithm.rules();
        let mut groups = [GpuGroupParams::default(); MAX_GROUPS];
        for (g, (slot, &lr)) in groups.iter_mut().zip(lrs).enumerate() {
            slot.lr = lr as f32;
            let wd = cfg.group_hyper(g).1;
            // Coupled decay adds `wd * p` to the gradient: timm corrects only the
            // decoupled rate.
            slot.weight_decay = if cfg.algorithm.coupled_decay() {
                wd as f32
            } else {
                cfg.decay.weight_decay_for_lr(wd, lr, cfg.lr) as f32
            };
            rules.pack(slot);
        }
        let (norm_kind, norm_param) = cfg.caution.norm_words();
        GpuStepParams {
            caution: cfg.caution.is_on() as u32,
            norm_kind,
            norm_param: norm_param as f32,
            disagree_weight: cfg.caution.disagree_weight() as f32,
            clip_max_norm: cfg.clip_grad_norm.unwrap_or(0.0) as f32,
            skip_nonfinite: (cfg.non_finite == NonFinite::SkipStep) as u32,
            num_groups: lrs.len() as u32,
            variant: rules.variant(),
            cautious_decay: cfg.decay.cautious as u32,
            clip_max_ratio: rules.max_grad_norm().unwrap_or(0.0) as f32,
            piece_base: self.buffers.block_records as u32,
            pad: 0,
            groups,
        }
    }
}

/// Which optional passes a step runs.
struct Passes {
    clip: bool,
    /// The norm pass and its per-tensor sums (before the measuring pass).
    norms: bool,
    /// The measuring pass and per-tensor reduction (caution counts, tensor sums; with
    /// segment sums, round 2 and its per-tensor pass).
    measure: bool,
    /// Round 1 of the segment sums and its per-tensor pass.
    segments: bool,
    /// The stand-alone finite check (when no clip, norm, measuring or
    /// segment pass does it).
    check: bool,
}

/// Checks that the partials fit one storage binding of the device.
fn check_partials(ctx: &GpuContext, partials: &PartialsLayout) -> Result<()> {
    let allowed = ctx.limits().max_storage_buffer_binding_size;
    if partials.bytes() > allowed || partials.records > u32::MAX as u64 {
        return Err(Error::LimitExceeded {
            what: "per-block and per-segment records of the optimizer".into(),
            needed: partials.bytes(),
            allowed,
        });
    }
    Ok(())
}

/// Checks the configuration against the device and the parameter set; returns each
/// tensor's group.
fn check_setup(ctx: &GpuContext, set: &ParamSet, config: &OptimizerConfig) -> Result<Vec<usize>> {
    config.validate()?;
    check_storage_budget(&config.algorithm, ctx.limits())?;
    if config.state_dtype == crate::arena::ElementType::F16 && !ctx.capabilities().f16 {
        return Err(Error::MissingFeature {
            adapter: ctx.adapter_info().name.clone(),
            feature: "SHADER_F16 (for f16 optimizer state; bf16 works everywhere)".into(),
        });
    }
    if config.groups.len() + 1 > MAX_GROUPS {
        return Err(Error::LimitExceeded {
            what: "parameter groups".into(),
            needed: config.groups.len() as u64 + 1,
            allowed: MAX_GROUPS as u64 - 1,
        });
    }
    if let Some(t) = set.tensors().iter().find(|t| t.len > u32::MAX as u64) {
        return Err(Error::LimitExceeded {
            what: format!("elements of tensor `{}`", t.name),
            needed: t.len,
            allowed: u32::MAX as u64,
        });
    }
    let names: Vec<&str> = set.tensors().iter().map(|t| t.name.as_str()).collect();
    config.group_of_tensors(&names)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::arena::{BufferView, ParamSpec};

    /// Elements of the caller's one tensor.
    const LEN: u64 = 64;

    /// A device the caller made, wrapped without touching its uncaptured-error
    /// handler (wgpu's default, which panics on any error outside a scope).
    fn callers_context() -> GpuContext {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
            .expect("a GPU adapter (install mesa-vulkan-drivers)");
        let (device, queue) =
            pollster::block_on(adapter.request_device(&Default::default())).expect("a device");
        GpuContext::from_device(device, queue)
    }

    /// AdamW over one tensor in a buffer of the caller's.
    fn optimizer(ctx: &GpuContext) -> Optimizer {
        let weights = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("caller weights"),
            size: LEN * 4,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let view = BufferView::new(&weights, 0);
        let set = ParamSet::from_views(ctx, &[ParamSpec::new("w", &[LEN as usize], view)]);
        Optimizer::new(ctx, set.unwrap(), OptimizerConfig::adamw(1e-3)).unwrap()
    }

    #[test]
    fn a_valid_first_step_passes_the_check_and_runs() {
        let ctx = callers_context();
        let mut opt = optimizer(&ctx);
        for _ in 0..2 {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            opt.record_step(&mut encoder, &StepInputs::lr(1e-3))
                .unwrap();
            ctx.queue().submit([encoder.finish()]);
        }
        let steps: Vec<u64> = (0..2)
            .map(|_| {
                pollster::block_on(opt.next_stats())
                    .unwrap()
                    .completed_steps
            })
            .collect();
        assert_eq!(steps, [1, 2]);
    }

    /// A configuration the device rejects only when its commands are encoded (here a
    /// dispatch one workgroup wider than the device allows, which no plan makes):
    /// without the check, wgpu's default handler would panic when the caller
    /// finishes its encoder.
    #[test]
    fn a_first_step_the_device_rejects_is_a_typed_error() {
        let ctx = callers_context();
        let mut opt = optimizer(&ctx);
        let too_wide = ctx.limits().max_compute_workgroups_per_dimension + 1;
        opt.windows[0].grid = (too_wide, 1);
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let err = opt
            .record_step(&mut encoder, &StepInputs::lr(1e-3))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Gpu(m) if m.contains("the optimizer's first step")),
            "{err}"
        );
        assert_eq!((opt.scheduled_steps(), opt.stats_in_flight()), (0, 0));
        // Nothing reached the caller's encoder: it finishes and runs cleanly.
        ctx.queue().submit([encoder.finish()]);
        ctx.wait_idle().unwrap();
    }
}
