//! Newton-Schulz orthogonalization on the GPU, batched over the matrices of one shape:
//! each product of an iteration is one batched dispatch of the autograd's matmul
//! kernels (the batch index is the grid's z), and the `b A` and `a X` terms are
//! scaled copies that the products accumulate into, as timm's `baddbmm` path:
//!
//! ```text
//! A = X X^T;  B = b A;  B += c A A;  Y = a X;  Y += B X;  X <-> Y
//! ```
//!
//! The products stage in f16 ([`MatmulVariant::TiledF16`], f32 accumulation) where
//! [`NsPrecision`] says so, in f32 otherwise.

use crate::context::GpuContext;
use crate::error::Result;
use crate::nn::{DType, Dims, GradMode, Kernels, MatmulVariant, Product, Tensor, View};
use crate::optim::muon::launch::{self, Launch, Slot, WG_SIZE, grid};

/// The precision of the Newton-Schulz products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NsPrecision {
    /// f16 staging on GPUs with `shader-f16`, f32 otherwise (CPU adapters: f32, where
    /// f16 saves no time).
    #[default]
    Auto,
    /// f32 products (the device's default matmul variant).
    F32,
    /// f16-staged products with f32 accumulation (needs `shader-f16`).
    F16,
}

impl NsPrecision {
    /// The matmul variant for the products on `ctx`; [`crate::Error::MissingFeature`]
    /// for `F16` without `shader-f16`.
    pub fn variant(self, ctx: &GpuContext) -> Result<MatmulVariant> {
        let f16 = MatmulVariant::TiledF16;
        let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
        match self {
            Self::Auto if !cpu && f16.check(ctx).is_ok() => Ok(f16),
            Self::Auto | Self::F32 => Ok(MatmulVariant::for_context(ctx)),
            Self::F16 => f16.check(ctx).map(|_| f16),
        }
    }
}

/// The scratch of one shape's batch: X and Y (`batch x rows x cols`), A and B
/// (`batch x rows x rows`).
#[derive(Debug)]
struct Scratch {
    x: Tensor,
    y: Tensor,
    a: Tensor,
    b: Tensor,
}

/// The recorded Newton-Schulz iterations of `batch` matrices of `rows x cols`
/// (`rows <= cols`: callers transpose tall matrices), from [`NewtonSchulz::input`]
/// to [`NewtonSchulz::output`].
#[derive(Debug)]
pub struct NewtonSchulz {
    rows: usize,
    cols: usize,
    batch: usize,
    scratch: Scratch,
    launches: Vec<Launch>,
    /// The result is in `y` (an odd number of iterations).
    output_in_y: bool,
}

impl NewtonSchulz {
    /// The iterations `coefficients` (one `(a, b, c)` each) for `batch` matrices of
    /// `rows x cols` with the products of `kernels`.
    pub fn new(
        kernels: &Kernels,
        rows: usize,
        cols: usize,
        batch: usize,
        coefficients: &[[f64; 3]],
    ) -> Result<Self> {
        assert!(rows <= cols, "Newton-Schulz runs on wide matrices");
        let ctx = kernels.context();
        let tensor = |shape: &[usize], label: &str| Tensor::zeros(ctx, shape, DType::F32, label);
        let scratch = Scratch {
            x: tensor(&[batch, rows, cols], "coptim muon X")?,
            y: tensor(&[batch, rows, cols], "coptim muon Y")?,
            a: tensor(&[batch, rows, rows], "coptim muon A")?,
            b: tensor(&[batch, rows, rows], "coptim muon B")?,
        };
        let layout = launch::layout(ctx, "coptim muon scale", &SCALE_SLOTS);
        let scale = launch::pipelines(
            ctx,
            &launch::scale_module(),
            &layout,
            &["scale_copy"],
            "Muon",
        )?
        .remove(0);
        let mut ns = Self {
            rows,
            cols,
            batch,
            scratch,
            launches: Vec::new(),
            output_in_y: coefficients.len() % 2 == 1,
        };
        let scaler = Scaler {
            ctx,
            layout: &layout,
            pipeline: &scale,
        };
        for (i, &[a, b, c]) in coefficients.iter().enumerate() {
            let (x, y) = if i % 2 == 0 {
                (&ns.scratch.x, &ns.scratch.y)
            } else {
                (&ns.scratch.y, &ns.scratch.x)
            };
            let iteration = ns.iteration(kernels, &scaler, [x, y], [a, b, c])?;
            ns.launches.extend(iteration);
        }
        Ok(ns)
    }

    /// The launches of one iteration from `x` into `y`.
    fn iteration(
        &self,
        kernels: &Kernels,
        scaler: &Scaler<'_>,
        [x, y]: [&Tensor; 2],
        [a, b, c]: [f64; 3],
    ) -> Result<Vec<Launch>> {
        let (r, n, batch) = (self.rows, self.cols, self.batch);
        let wide = View::row_major(n, r * n);
        let square = View::row_major(r, r * r);
        let dims = |m, n, k| Dims {
            m,
            n,
            k,
            batch,
            inner_batch: 1,
        };
        let (ta, tb) = (&self.scratch.a, &self.scratch.b);
        let gram = Product::new((x, wide), (x, wide.t()), (ta, square), dims(r, r, n));
        let poly = Product::new((ta, square), (ta, square), (tb, square), dims(r, r, r))
            .scaled(c as f32)
            .mode(GradMode::Accumulate);
        let next = Product::new((tb, square), (x, wide), (y, wide), dims(r, n, r))
            .mode(GradMode::Accumulate);
        Ok(vec![
            Launch::Matmul(gram.dispatch_on(kernels)?),
            scaler.launch(ta, tb, b as f32),
            Launch::Matmul(poly.dispatch_on(kernels)?),
            scaler.launch(x, y, a as f32),
            Launch::Matmul(next.dispatch_on(kernels)?),
        ])
    }

    /// Where the callers write the normalized matrices (`batch x rows x cols`).
    pub fn input(&self) -> &Tensor {
        &self.scratch.x
    }

    /// Where the orthogonalized matrices are once the iterations ran.
    pub fn output(&self) -> &Tensor {
        if self.output_in_y {
            &self.scratch.y
        } else {
            &self.scratch.x
        }
    }

    /// Records every iteration into `pass`.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for launch in &self.launches {
            launch.record(pass);
        }
    }

    /// Multiply-adds of the products of one run: per iteration `r^2 n` (X X^T),
    /// `r^3` (A A) and `r^2 n` (B X), times the batch.
    pub fn flops(&self) -> u64 {
        let (r, n) = (self.rows as u64, self.cols as u64);
        let per_iteration = 2 * r * r * n + r * r * r;
        2 * per_iteration * self.batch as u64 * (self.launches.len() / 5) as u64
    }

    /// Records the iterations alone in a pass of their own (tests and benchmarks).
    pub fn record_alone(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("coptim newton-schulz"),
            timestamp_writes: None,
        });
        self.record(&mut pass);
    }
}

/// `muon_scale.wgsl`'s bindings: params, src, dst.
const SCALE_SLOTS: [Slot; 3] = [Slot::Uniform, Slot::Read, Slot::ReadWrite];

/// Builds the scaled copies of one batch.
struct Scaler<'a> {
    ctx: &'a GpuContext,
    layout: &'a wgpu::BindGroupLayout,
    pipeline: &'a wgpu::ComputePipeline,
}

impl Scaler<'_> {
    /// `dst = scale * src`, over all of `src`.
    fn launch(&self, src: &Tensor, dst: &Tensor, scale: f32) -> Launch {
        let len = src.len() as u32;
        let words = [len, scale.to_bits(), 0, 0];
        let params = launch::uniform(
            self.ctx,
            "coptim muon scale params",
            bytemuck::cast_slice(&words),
        );
        let bind_group = launch::bind_group(
            self.ctx,
            self.layout,
            &[
                params.as_entire_buffer_binding(),
                src.binding(),
                dst.binding(),
            ],
        );
        let groups = u64::from(len).div_ceil(u64::from(WG_SIZE));
        Launch::Own {
            pipeline: self.pipeline.clone(),
            bind_group,
            grid: grid(
                groups,
                self.ctx.limits().max_compute_workgroups_per_dimension,
            ),
        }
    }
}
