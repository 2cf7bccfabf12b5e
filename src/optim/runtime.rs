//! The GPU optimizer: owns the state arenas and records a step's passes into a
//! command encoder.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::arena::{Arena, ParamStore, Window};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::optim::config::{
    Algorithm, Caution, EpsStyle, NonFinite, Normalization, OptimizerConfig,
};
use crate::optim::gpu_types::{
    GpuGroupParams, GpuStatus, GpuStepParams, GpuTensorEntry, GpuWindowInfo,
};
use crate::optim::kernels::{MAX_GROUPS, Pipelines};
use crate::optim::plan::{Plan, grid_for};
use crate::optim::stats::{StatsRing, StepStats};

/// Options that do not change the math: limits to plan dispatches with.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptimizerOptions {
    /// Cap on workgroups per dispatch dimension (defaults to the device limit);
    /// tests lower it to exercise 2-D grids.
    pub max_workgroups_per_dim: Option<u32>,
}

/// Bind groups of one binding window.
#[derive(Debug)]
struct WindowBindings {
    grid: (u32, u32),
    count: wgpu::BindGroup,
    update: wgpu::BindGroup,
    check_finite: wgpu::BindGroup,
    grad_sumsq: wgpu::BindGroup,
}

/// A cautious (or plain) optimizer stepping every tensor of a [`ParamStore`] on the
/// GPU.
///
/// ```no_run
/// # fn main() -> coptim::Result<()> {
/// use coptim::optim::{Caution, Optimizer, OptimizerConfig};
/// let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
/// let store = coptim::ParamStore::new(&ctx, &[("w", vec![256, 128]), ("b", vec![256])])?;
/// let cfg = OptimizerConfig::adamw(1e-3).with_caution(Caution::hard());
/// let mut opt = Optimizer::new(&ctx, &store, cfg)?;
/// // ... write gradients into store.grads, then:
/// let mut encoder = ctx.device().create_command_encoder(&Default::default());
/// opt.record_step(&mut encoder)?;
/// ctx.queue().submit([encoder.finish()]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Optimizer {
    ctx: GpuContext,
    config: OptimizerConfig,
    store: ParamStore,
    state: Vec<Arena>,
    groups_of_tensors: Vec<usize>,
    plan: Plan,
    pipelines: Pipelines,
    tensor_table: wgpu::Buffer,
    step_params: wgpu::Buffer,
    status: wgpu::Buffer,
    partial_counts: wgpu::Buffer,
    windows: Vec<WindowBindings>,
    finalize_scale: (wgpu::BindGroup, (u32, u32)),
    finalize_clip: wgpu::BindGroup,
    advance: wgpu::BindGroup,
    scheduled: u64,
    stats: StatsRing,
}

impl Optimizer {
    /// Creates the optimizer, its zeroed state, and every pipeline and bind group.
    pub fn new(ctx: &GpuContext, store: &ParamStore, config: OptimizerConfig) -> Result<Self> {
        Self::with_options(ctx, store, config, OptimizerOptions::default())
    }

    /// Like [`Optimizer::new`] with explicit [`OptimizerOptions`].
    pub fn with_options(
        ctx: &GpuContext,
        store: &ParamStore,
        config: OptimizerConfig,
        options: OptimizerOptions,
    ) -> Result<Self> {
        ctx.check_lost()?;
        config.validate()?;
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
        let layout = store.layout().clone();
        if !Arc::ptr_eq(store.grads.layout(), &layout) {
            return Err(Error::InvalidConfig(
                "parameters and gradients use different layouts".into(),
            ));
        }
        let names: Vec<&str> = layout.tensors().iter().map(|t| t.name.as_str()).collect();
        let groups_of_tensors = config.group_of_tensors(&names)?;
        for info in layout.tensors() {
            if info.len > u32::MAX as u64 {
                return Err(Error::LimitExceeded {
                    what: format!("elements of tensor `{}`", info.name),
                    needed: info.len,
                    allowed: u32::MAX as u64,
                });
            }
        }
        let max_dim = options
            .max_workgroups_per_dim
            .unwrap_or(u32::MAX)
            .min(ctx.limits().max_compute_workgroups_per_dimension);
        let plan = Plan::new(&layout, max_dim)?;
        let device = ctx.device();
        let state = config
            .algorithm
            .state_names()
            .iter()
            .map(|name| Arena::new(ctx, layout.clone(), config.state_dtype, name))
            .collect::<Result<Vec<_>>>()?;

        let entries: Vec<GpuTensorEntry> = layout
            .tensors()
            .iter()
            .enumerate()
            .map(|(t, info)| GpuTensorEntry {
                group: groups_of_tensors[t] as u32,
                numel: info.len as u32,
                first_block: plan.tensors[t].first,
                num_blocks: plan.tensors[t].count,
                scale: 1.0,
                kept: 0,
                pad: [0; 2],
            })
            .collect();
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let tensor_table = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("coptim tensor table"),
            contents: bytemuck::cast_slice(&entries),
            usage: storage,
        });
        let step_params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("coptim step params"),
            size: std::mem::size_of::<GpuStepParams>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let initial_status = GpuStatus {
            found_inf: 0,
            step: 0,
            clip_coef: 1.0,
            grad_norm: 0.0,
            bias: [[0.0; 4]; MAX_GROUPS],
        };
        let status = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("coptim status"),
            contents: bytemuck::bytes_of(&initial_status),
            usage: storage | wgpu::BufferUsages::UNIFORM,
        });
        let partial_bytes = (plan.total_blocks.max(1) as u64) * 4;
        let partial_counts = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("coptim partial counts"),
            size: partial_bytes,
            usage: storage,
            mapped_at_creation: false,
        });
        let partial_sumsq = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("coptim partial sumsq"),
            size: partial_bytes,
            usage: storage,
            mapped_at_creation: false,
        });
        let pipelines = Pipelines::new(ctx, &config.algorithm, config.state_dtype);

        let uniform = |label: &str, info: GpuWindowInfo| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(&info),
                usage: wgpu::BufferUsages::UNIFORM,
            })
        };
        let mut windows = Vec::with_capacity(plan.windows.len());
        for (w, wp) in plan.windows.iter().enumerate() {
            let blocks = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("coptim block table"),
                contents: if wp.blocks.is_empty() {
                    &[0u8; 16]
                } else {
                    bytemuck::cast_slice(&wp.blocks)
                },
                usage: wgpu::BufferUsages::STORAGE,
            });
            let info = uniform(
                "coptim window info",
                GpuWindowInfo {
                    num_blocks: wp.blocks.len() as u32,
                    grid_x: wp.grid.0,
                    pad: [0; 2],
                },
            );
            let win = wp.window;
            let mut all: Vec<(u32, wgpu::BindingResource<'_>)> = vec![
                (
                    0,
                    wgpu::BindingResource::Buffer(window_binding(&store.params, win)),
                ),
                (
                    1,
                    wgpu::BindingResource::Buffer(window_binding(&store.grads, win)),
                ),
                (
                    2,
                    wgpu::BindingResource::Buffer(window_binding(&state[0], win)),
                ),
                (4, blocks.as_entire_binding()),
                (5, tensor_table.as_entire_binding()),
                (6, step_params.as_entire_binding()),
                (7, status.as_entire_binding()),
                (8, info.as_entire_binding()),
                (9, partial_counts.as_entire_binding()),
                (10, status.as_entire_binding()),
                (11, partial_sumsq.as_entire_binding()),
            ];
            if let Some(s1) = state.get(1) {
                all.push((3, wgpu::BindingResource::Buffer(window_binding(s1, win))));
            }
            let make = |pipeline: &wgpu::ComputePipeline, used: &[u32], label: &str| {
                bind_group(device, pipeline, &all, used, &format!("{label} window {w}"))
            };
            let two_state = state.len() > 1;
            let update_used: &[u32] = if two_state {
                &[0, 1, 2, 3, 4, 5, 6, 7, 8]
            } else {
                &[0, 1, 2, 4, 5, 6, 7, 8]
            };
            windows.push(WindowBindings {
                grid: wp.grid,
                count: make(&pipelines.count, &[1, 2, 4, 5, 6, 8, 9, 10], "count"),
                update: make(&pipelines.update, update_used, "update"),
                check_finite: make(&pipelines.check_finite, &[1, 4, 8, 10], "check_finite"),
                grad_sumsq: make(&pipelines.grad_sumsq, &[1, 4, 8, 10, 11], "grad_sumsq"),
            });
        }
        let tensor_grid = grid_for(layout.num_tensors() as u32, max_dim)?;
        let tensor_info = uniform(
            "coptim tensor grid",
            GpuWindowInfo {
                num_blocks: layout.num_tensors() as u32,
                grid_x: tensor_grid.0,
                pad: [0; 2],
            },
        );
        let reduce_all: Vec<(u32, wgpu::BindingResource<'_>)> = vec![
            (5, tensor_table.as_entire_binding()),
            (6, step_params.as_entire_binding()),
            (8, tensor_info.as_entire_binding()),
            (9, partial_counts.as_entire_binding()),
            (10, status.as_entire_binding()),
            (11, partial_sumsq.as_entire_binding()),
        ];
        let finalize_scale = bind_group(
            device,
            &pipelines.finalize_scale,
            &reduce_all,
            &[5, 6, 8, 9],
            "finalize_scale",
        );
        let finalize_clip = bind_group(
            device,
            &pipelines.finalize_clip,
            &reduce_all,
            &[6, 10, 11],
            "finalize_clip",
        );
        let advance = bind_group(
            device,
            &pipelines.advance_step,
            &reduce_all,
            &[6, 10],
            "advance_step",
        );
        let stats = StatsRing::new(ctx, layout.num_tensors(), config.caution.is_on());
        Ok(Self {
            ctx: ctx.clone(),
            config,
            store: store.clone(),
            state,
            groups_of_tensors,
            plan,
            pipelines,
            tensor_table,
            step_params,
            status,
            partial_counts,
            windows,
            finalize_scale: (finalize_scale, tensor_grid),
            finalize_clip,
            advance,
            scheduled: 0,
            stats,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// The parameters and gradients this optimizer steps.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// The state arenas, in the order of [`Algorithm::state_names`].
    pub fn state(&self) -> &[Arena] {
        &self.state
    }

    /// Steps recorded so far (skipped ones included); drives the schedule.
    pub fn scheduled_steps(&self) -> u64 {
        self.scheduled
    }

    /// The learning rate the next recorded step will use for group `g`
    /// (`g == groups.len()` is the default group).
    pub fn next_lr(&self, g: usize) -> f64 {
        let (lr_scale, _) = self.config.group_hyper(g);
        self.config.lr * self.config.schedule.factor(self.scheduled + 1) * lr_scale
    }

    /// Number of compute dispatches one step records.
    pub fn dispatches_per_step(&self) -> usize {
        let w = self.windows.len();
        let clip = self.config.clip_grad_norm.is_some();
        let caution = self.config.caution.is_on();
        let check = !caution && !clip && self.config.non_finite == NonFinite::SkipStep;
        let mut n = w + 1; // updates + advance
        if clip {
            n += w + 1;
        }
        if caution {
            n += w + 1;
        }
        if check {
            n += w;
        }
        n
    }

    fn step_params_for(&self, scheduled: u64) -> GpuStepParams {
        let cfg = &self.config;
        let factor = cfg.schedule.factor(scheduled);
        let (beta1, beta2, eps, momentum, eps_style) = match cfg.algorithm {
            Algorithm::AdamW {
                beta1,
                beta2,
                eps,
                eps_style,
            } => (beta1, beta2, eps, 0.0, eps_style),
            Algorithm::Lion { beta1, beta2 } => (beta1, beta2, 0.0, 0.0, EpsStyle::Torch),
            Algorithm::Sgd { momentum, .. } => (0.0, 0.0, 0.0, momentum, EpsStyle::Torch),
        };
        let mut groups = [GpuGroupParams::default(); MAX_GROUPS];
        for (g, slot) in groups.iter_mut().enumerate().take(cfg.groups.len() + 1) {
            let (lr_scale, wd) = cfg.group_hyper(g);
            *slot = GpuGroupParams {
                lr: (cfg.lr * factor * lr_scale) as f32,
                weight_decay: wd as f32,
                beta1: beta1 as f32,
                beta2: beta2 as f32,
                one_minus_beta1: (1.0 - beta1) as f32,
                one_minus_beta2: (1.0 - beta2) as f32,
                eps: eps as f32,
                momentum: momentum as f32,
            };
        }
        let (norm_kind, norm_param) = match cfg.caution {
            Caution::Off => (0, 0.0),
            Caution::Hard { normalization } | Caution::Soft { normalization, .. } => {
                match normalization {
                    Normalization::MeanClamp { min } => (0, min),
                    Normalization::NumelOverCountPlusOne => (1, 0.0),
                    Normalization::MeanPlusEps { eps } => (2, eps),
                }
            }
        };
        GpuStepParams {
            caution: cfg.caution.is_on() as u32,
            norm_kind,
            norm_param: norm_param as f32,
            disagree_weight: cfg.caution.disagree_weight() as f32,
            clip_max_norm: cfg.clip_grad_norm.unwrap_or(0.0) as f32,
            skip_nonfinite: (cfg.non_finite == NonFinite::SkipStep) as u32,
            num_groups: (cfg.groups.len() + 1) as u32,
            eps_style: (eps_style == EpsStyle::Hf) as u32,
            groups,
        }
    }

    /// Records one optimizer step into `encoder`: nothing is submitted and nothing is
    /// read back. The gradients in the store must be written (by the caller's kernels
    /// or queue writes) before the encoder is submitted.
    pub fn record_step(&mut self, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        self.ctx.check_lost()?;
        self.scheduled += 1;
        let params = self.step_params_for(self.scheduled);
        let staging = self
            .ctx
            .device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("coptim step params upload"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::COPY_SRC,
            });
        encoder.copy_buffer_to_buffer(
            &staging,
            0,
            &self.step_params,
            0,
            std::mem::size_of::<GpuStepParams>() as u64,
        );
        // found_inf = 0
        encoder.clear_buffer(&self.status, 0, Some(4));
        let caution = self.config.caution.is_on();
        let clip = self.config.clip_grad_norm.is_some();
        let check = !caution && !clip && self.config.non_finite == NonFinite::SkipStep;
        if caution {
            encoder.clear_buffer(&self.partial_counts, 0, None);
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("coptim step"),
                timestamp_writes: None,
            });
            let dispatch_windows =
                |pass: &mut wgpu::ComputePass<'_>,
                 pipeline: &wgpu::ComputePipeline,
                 pick: &dyn Fn(&WindowBindings) -> &wgpu::BindGroup| {
                    pass.set_pipeline(pipeline);
                    for w in &self.windows {
                        pass.set_bind_group(0, pick(w), &[]);
                        pass.dispatch_workgroups(w.grid.0, w.grid.1, 1);
                    }
                };
            if clip {
                dispatch_windows(&mut pass, &self.pipelines.grad_sumsq, &|w| &w.grad_sumsq);
                pass.set_pipeline(&self.pipelines.finalize_clip);
                pass.set_bind_group(0, &self.finalize_clip, &[]);
                pass.dispatch_workgroups(1, 1, 1);
            }
            if check {
                dispatch_windows(&mut pass, &self.pipelines.check_finite, &|w| {
                    &w.check_finite
                });
            }
            if caution {
                dispatch_windows(&mut pass, &self.pipelines.count, &|w| &w.count);
                let (bg, grid) = &self.finalize_scale;
                pass.set_pipeline(&self.pipelines.finalize_scale);
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(grid.0, grid.1, 1);
            }
            pass.set_pipeline(&self.pipelines.advance_step);
            pass.set_bind_group(0, &self.advance, &[]);
            pass.dispatch_workgroups(1, 1, 1);
            dispatch_windows(&mut pass, &self.pipelines.update, &|w| &w.update);
        }
        self.stats
            .record(encoder, &self.status, &self.tensor_table, self.scheduled);
        Ok(())
    }

    /// Records, submits and (natively) returns without waiting. Convenience for
    /// programs that do not manage their own encoders.
    pub fn step(&mut self) -> Result<()> {
        let mut encoder =
            self.ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("coptim step"),
                });
        self.record_step(&mut encoder)?;
        self.ctx.queue().submit([encoder.finish()]);
        Ok(())
    }

    /// Steps and waits for the GPU (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step_blocking(&mut self) -> Result<()> {
        self.step()?;
        self.ctx.wait_idle()
    }

    /// The statistics of the most recent step whose readback has completed, without
    /// waiting (`None` if none is ready yet). Kept fractions per tensor and overall,
    /// whether the step was skipped, and the gradient norm (when clipping).
    pub fn latest_stats(&mut self) -> Option<StepStats> {
        self.stats.latest(&self.ctx, &self.plan_numels())
    }

    /// Waits for the GPU and returns the statistics of the newest recorded step.
    ///
    /// Mapping callbacks may run on whichever thread polls the device, so this polls
    /// until the readback has landed, nothing is in flight any more, or ten seconds
    /// have passed (a recorded step whose encoder was never submitted).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn stats_blocking(&mut self) -> Result<StepStats> {
        let numel = self.plan_numels();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            self.ctx.wait_idle()?;
            if let Some(stats) = self.stats.latest(&self.ctx, &numel) {
                return Ok(stats);
            }
            if !self.stats.in_flight() {
                return Err(Error::Readback("no statistics were recorded".into()));
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Readback(
                    "statistics did not arrive: was the step's encoder submitted?".into(),
                ));
            }
            std::thread::yield_now();
        }
    }

    fn plan_numels(&self) -> Vec<u64> {
        self.store
            .layout()
            .tensors()
            .iter()
            .map(|t| t.len)
            .collect()
    }

    /// Reads the GPU step state: (completed steps, bias corrections per group).
    pub async fn read_status(&self) -> Result<(u64, Vec<[f32; 2]>)> {
        let bytes = crate::arena::read_buffer(
            &self.ctx,
            &self.status,
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

    pub(crate) fn status_buffer(&self) -> &wgpu::Buffer {
        &self.status
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

    /// Number of workgroups per block-table window (for reports).
    pub fn windows(&self) -> usize {
        self.plan.windows.len()
    }

    /// Invocations per workgroup of the step kernels (the context's
    /// [`StreamShape`](crate::stream::StreamShape)).
    pub fn workgroup_size(&self) -> u32 {
        self.ctx.stream_shape().wg_size
    }
}

/// The part of `arena` that a window covers.
fn window_binding(arena: &Arena, win: Window) -> wgpu::BufferBinding<'_> {
    let bytes = arena.dtype().bytes();
    wgpu::BufferBinding {
        buffer: &arena.buffers()[win.segment],
        offset: win.start * bytes,
        size: wgpu::BufferSize::new((win.len * bytes).next_multiple_of(4)),
    }
}

/// A bind group for `pipeline` with the entries of `all` whose binding is in `used`.
fn bind_group(
    device: &wgpu::Device,
    pipeline: &wgpu::ComputePipeline,
    all: &[(u32, wgpu::BindingResource<'_>)],
    used: &[u32],
    label: &str,
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = all
        .iter()
        .filter(|(b, _)| used.contains(b))
        .map(|(b, r)| wgpu::BindGroupEntry {
            binding: *b,
            resource: r.clone(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}
