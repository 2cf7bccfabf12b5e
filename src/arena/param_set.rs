//! The tensors an optimizer steps: where each one's parameters and gradients live.
//!
//! A [`ParamSet`] is built either from coptim's own [`ParamStore`] or from views of
//! buffers the caller already has ([`ParamSet::from_views`]); the optimizer then owns
//! only its state, tables and scratch.

use std::collections::HashMap;
use std::sync::Arc;

use crate::arena::layout::{ArenaLimits, F32_BYTES, Layout, TensorId};
use crate::arena::read_buffer;
use crate::arena::view::BufferView;
use crate::arena::{Arena, ElementType, ParamStore};
use crate::context::GpuContext;
use crate::error::{Error, Result};

/// How the kernels read parameters and gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamAccess {
    /// Whole vec4s: coptim's arenas, where every tensor is 16-byte aligned and owns
    /// its padding.
    Vec4,
    /// One f32 at a time, touching only the tensor's own elements: a caller's buffers
    /// at any 4-byte offset.
    Scalar,
}

/// One tensor to register from a caller's buffers.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    /// Unique name (parameter groups select tensors by name).
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Where the parameter values live.
    pub param: BufferView,
    /// Where the gradients live; `None` puts them in a gradient arena coptim allocates
    /// ([`ParamSet::grad_arena`]).
    pub grad: Option<BufferView>,
}

impl ParamSpec {
    /// A tensor whose gradients coptim allocates.
    pub fn new(name: impl Into<String>, shape: &[usize], param: BufferView) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            param,
            grad: None,
        }
    }

    /// The same tensor with gradients in a caller's buffer.
    pub fn with_grad(mut self, grad: BufferView) -> Self {
        self.grad = Some(grad);
        self
    }
}

/// One registered tensor.
#[derive(Debug, Clone)]
pub struct ParamTensor {
    /// Unique name.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Number of elements.
    pub len: u64,
    /// Where the parameter values live.
    pub param: BufferView,
    /// Where the gradients live.
    pub grad: BufferView,
}

/// Parameters and gradients of every tensor an optimizer steps, wherever they live.
#[derive(Debug, Clone)]
pub struct ParamSet {
    tensors: Vec<ParamTensor>,
    index: HashMap<String, usize>,
    state_layout: Arc<Layout>,
    access: ParamAccess,
    store: Option<ParamStore>,
    grad_arena: Option<Arena>,
}

impl From<&ParamStore> for ParamSet {
    fn from(store: &ParamStore) -> Self {
        let layout = store.layout().clone();
        let tensors = layout
            .tensors()
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let id = TensorId(i);
                let view =
                    |arena: &Arena| BufferView::new(arena.buffer_of(id), arena.byte_range(id).0);
                ParamTensor {
                    name: info.name.clone(),
                    shape: info.shape.clone(),
                    len: info.len,
                    param: view(&store.params),
                    grad: view(&store.grads),
                }
            })
            .collect();
        Self::assemble(
            tensors,
            layout,
            ParamAccess::Vec4,
            Some(store.clone()),
            None,
        )
    }
}

impl From<ParamStore> for ParamSet {
    fn from(store: ParamStore) -> Self {
        ParamSet::from(&store)
    }
}

impl From<&ParamSet> for ParamSet {
    fn from(set: &ParamSet) -> Self {
        set.clone()
    }
}

impl ParamSet {
    /// Registers tensors that live in the caller's buffers, with the device's limits.
    /// Every view is checked (usage, alignment, bounds, overlap, device); tensors
    /// larger than one storage binding are stepped in several windows.
    ///
    /// ```no_run
    /// # fn main() -> coptim::Result<()> {
    /// use coptim::arena::{BufferView, ParamSet, ParamSpec};
    /// let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
    /// let weights = ctx.device().create_buffer(&wgpu::BufferDescriptor {
    ///     label: Some("my weights"),
    ///     size: 4 * 1000,
    ///     usage: wgpu::BufferUsages::STORAGE,
    ///     mapped_at_creation: false,
    /// });
    /// let set = ParamSet::from_views(&ctx, &[
    ///     ParamSpec::new("a", &[10, 20], BufferView::new(&weights, 0)),
    ///     ParamSpec::new("b", &[7], BufferView::new(&weights, 804)),
    /// ])?;
    /// // Gradients go into `set.grad_arena()`; the optimizer updates `weights` in place.
    /// # Ok(()) }
    /// ```
    pub fn from_views(ctx: &GpuContext, specs: &[ParamSpec]) -> Result<Self> {
        Self::from_views_with_limits(ctx, specs, ArenaLimits::from_limits(ctx.limits()))
    }

    /// Like [`ParamSet::from_views`] with explicit (e.g. smaller) limits, which size
    /// both the binding windows and the optimizer's state arenas.
    pub fn from_views_with_limits(
        ctx: &GpuContext,
        specs: &[ParamSpec],
        limits: ArenaLimits,
    ) -> Result<Self> {
        let shapes: Vec<(&str, Vec<usize>)> = specs
            .iter()
            .map(|s| (s.name.as_str(), s.shape.clone()))
            .collect();
        let state_layout = Arc::new(Layout::new(&shapes, limits)?);
        let owned: Vec<(&str, Vec<usize>)> = specs
            .iter()
            .filter(|s| s.grad.is_none())
            .map(|s| (s.name.as_str(), s.shape.clone()))
            .collect();
        let grad_arena = if owned.is_empty() {
            None
        } else {
            let layout = Arc::new(Layout::new(&owned, limits)?);
            Some(Arena::new(ctx, layout, ElementType::F32, "grads")?)
        };
        let tensors = specs
            .iter()
            .zip(state_layout.tensors())
            .map(|(spec, info)| {
                let grad = match (&spec.grad, &grad_arena) {
                    (Some(view), _) => view.clone(),
                    (None, arena) => arena_view(arena.as_ref(), &spec.name)?,
                };
                Ok(ParamTensor {
                    name: spec.name.clone(),
                    shape: spec.shape.clone(),
                    len: info.len,
                    param: spec.param.clone(),
                    grad,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        validate_views(&tensors)?;
        check_same_device(ctx, &tensors)?;
        Ok(Self::assemble(
            tensors,
            state_layout,
            ParamAccess::Scalar,
            None,
            grad_arena,
        ))
    }

    fn assemble(
        tensors: Vec<ParamTensor>,
        state_layout: Arc<Layout>,
        access: ParamAccess,
        store: Option<ParamStore>,
        grad_arena: Option<Arena>,
    ) -> Self {
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Self {
            tensors,
            index,
            state_layout,
            access,
            store,
            grad_arena,
        }
    }

    /// Every tensor, in registration order.
    pub fn tensors(&self) -> &[ParamTensor] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn id(&self, name: &str) -> Result<TensorId> {
        self.index
            .get(name)
            .map(|&i| TensorId(i))
            .ok_or_else(|| Error::UnknownTensor(name.to_string()))
    }

    /// The placement of the optimizer's state: the same names and shapes, in arenas
    /// coptim owns (for a [`ParamStore`], its own layout).
    pub fn state_layout(&self) -> &Arc<Layout> {
        &self.state_layout
    }

    /// How the kernels access parameters and gradients.
    pub fn access(&self) -> ParamAccess {
        self.access
    }

    /// The store this set was made from, if it was made from one.
    pub fn store(&self) -> Option<&ParamStore> {
        self.store.as_ref()
    }

    /// The gradient arena coptim allocated for tensors registered without gradients.
    pub fn grad_arena(&self) -> Option<&Arena> {
        self.grad_arena.as_ref()
    }

    /// Writes a tensor's parameters through the queue (the buffer needs `COPY_DST`).
    pub fn write_param(&self, ctx: &GpuContext, id: TensorId, values: &[f32]) -> Result<()> {
        let t = &self.tensors[id.0];
        write_view(ctx, &t.name, "parameters", &t.param, t.len, values)
    }

    /// Writes a tensor's gradients through the queue (the buffer needs `COPY_DST`).
    pub fn write_grad(&self, ctx: &GpuContext, id: TensorId, values: &[f32]) -> Result<()> {
        let t = &self.tensors[id.0];
        write_view(ctx, &t.name, "gradients", &t.grad, t.len, values)
    }

    /// Reads a tensor's parameters back (the buffer needs `COPY_SRC`).
    pub async fn read_param(&self, ctx: &GpuContext, id: TensorId) -> Result<Vec<f32>> {
        let t = &self.tensors[id.0];
        require_usage(
            &t.name,
            "parameters",
            &t.param,
            wgpu::BufferUsages::COPY_SRC,
        )?;
        let bytes = read_buffer(ctx, &t.param.buffer, t.param.offset, t.len * F32_BYTES).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Blocking form of [`ParamSet::read_param`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_param_blocking(&self, ctx: &GpuContext, id: TensorId) -> Result<Vec<f32>> {
        pollster::block_on(self.read_param(ctx, id))
    }
}

/// Fails unless the view's buffer has `usage`.
fn require_usage(
    tensor: &str,
    what: &str,
    view: &BufferView,
    usage: wgpu::BufferUsages,
) -> Result<()> {
    if view.buffer.usage().contains(usage) {
        return Ok(());
    }
    Err(Error::InvalidView {
        tensor: tensor.to_string(),
        reason: format!("{what}: the buffer lacks {usage:?} usage"),
    })
}

/// Writes `values` over a view of `len` elements.
fn write_view(
    ctx: &GpuContext,
    tensor: &str,
    what: &str,
    view: &BufferView,
    len: u64,
    values: &[f32],
) -> Result<()> {
    if values.len() as u64 != len {
        return Err(Error::LengthMismatch {
            what: format!("{what} of tensor `{tensor}`"),
            expected: len,
            got: values.len() as u64,
        });
    }
    require_usage(tensor, what, view, wgpu::BufferUsages::COPY_DST)?;
    ctx.queue()
        .write_buffer(&view.buffer, view.offset, bytemuck::cast_slice(values));
    Ok(())
}

/// The view of tensor `name` in the gradient arena.
fn arena_view(arena: Option<&Arena>, name: &str) -> Result<BufferView> {
    let arena = arena.ok_or_else(|| Error::UnknownTensor(name.to_string()))?;
    let id = arena.layout().id(name)?;
    Ok(BufferView::new(arena.buffer_of(id), arena.byte_range(id).0))
}

/// Usage, alignment and bounds of every view; parameter views must not overlap one
/// another, and gradients must not share a buffer with parameters (one dispatch binds
/// both, one of them writable).
fn validate_views(tensors: &[ParamTensor]) -> Result<()> {
    for t in tensors {
        t.param.validate(&t.name, "parameters", t.len)?;
        t.grad.validate(&t.name, "gradients", t.len)?;
    }
    for (i, a) in tensors.iter().enumerate() {
        for b in &tensors[i + 1..] {
            if a.param.overlaps(a.len, &b.param, b.len) {
                return Err(Error::InvalidView {
                    tensor: b.name.clone(),
                    reason: format!("parameters overlap those of `{}`", a.name),
                });
            }
        }
        if let Some(b) = tensors.iter().find(|b| b.param.buffer == a.grad.buffer) {
            return Err(Error::InvalidView {
                tensor: a.name.clone(),
                reason: format!(
                    "gradients share a buffer with the parameters of `{}`; keep gradients in another buffer",
                    b.name
                ),
            });
        }
    }
    Ok(())
}

/// Binds every distinct buffer once under a validation error scope: a buffer of
/// another device of the same wgpu `Instance` is reported as [`Error::InvalidView`]
/// instead of a panic. Limits: a buffer of another `Instance` cannot be told apart by
/// wgpu-core (resource ids are per instance), and on the web the scope cannot be
/// awaited here (the browser reports a foreign buffer at first use).
#[cfg(not(target_arch = "wasm32"))]
fn check_same_device(ctx: &GpuContext, tensors: &[ParamTensor]) -> Result<()> {
    let device = ctx.device();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("coptim view check"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: true },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }],
    });
    let mut seen: Vec<&wgpu::Buffer> = Vec::new();
    for t in tensors {
        for view in [&t.param, &t.grad] {
            if seen.contains(&&view.buffer) {
                continue;
            }
            seen.push(&view.buffer);
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let _probe = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("coptim view check"),
                layout: &layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &view.buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(4),
                    }),
                }],
            });
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(Error::InvalidView {
                    tensor: t.name.clone(),
                    reason: format!("the buffer cannot be bound on this device: {e}"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn check_same_device(_ctx: &GpuContext, _tensors: &[ParamTensor]) -> Result<()> {
    Ok(())
}
