//! Matrix products: [`Matmul`] (plain and batched, transposes read in place) and
//! [`Linear`] (`x @ W^T + b` with the bias fused), plus the strided dispatch that the
//! attention op shares.

use crate::error::{Error, Result};
use crate::nn::bindings::{A, B, BIAS, C, Family, uniform_block};
use crate::nn::dispatch::Dispatch;
use crate::nn::graph::{GraphBuilder, Var};
use crate::nn::kernels::Kernels;
use crate::nn::modules::Kernel;
use crate::nn::ops::elementwise::sum_rows;
use crate::nn::ops::{CompileCx, Compiled, GradMode, Modes, Op, check_f32, reject_shape, wanted};
use crate::nn::tensor::{Tensor, numel};

/// A strided matrix view inside a tensor, in elements: entry (i, j) of batch
/// `outer * inner_batch + inner` is at
/// `offset + outer * outer_stride + inner * inner_stride + i * row + j * col`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct View {
    pub offset: u32,
    pub outer: u32,
    pub inner: u32,
    pub row: u32,
    pub col: u32,
}

impl View {
    /// A row-major `rows x cols` matrix, `batch_stride` apart (0: shared by all).
    pub fn row_major(cols: usize, batch_stride: usize) -> Self {
        Self {
            offset: 0,
            outer: batch_stride as u32,
            inner: 0,
            row: cols as u32,
            col: 1,
        }
    }

    /// `[offset, outer, inner, row, col]`, the order of the uniform block's fields.
    fn fields(self) -> [u32; 5] {
        [self.offset, self.outer, self.inner, self.row, self.col]
    }

    /// The transposed view (no data moves).
    pub fn t(self) -> Self {
        Self {
            row: self.col,
            col: self.row,
            ..self
        }
    }
}

/// Sizes of a (batched) product of `m x k` and `k x n` matrices; the batch index
/// splits into `batch / inner_batch` outer and `inner_batch` inner parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    pub inner_batch: usize,
}

impl Dims {
    /// An `m x k` by `k x n` product over the same batches.
    fn sized(self, m: usize, n: usize, k: usize) -> Self {
        Self { m, n, k, ..self }
    }
}

uniform_block! {
    /// The uniform block of every matmul module (`nn_matmul_common.wgsl`): the sizes,
    /// and each operand's [`View`] as `<operand>_offset, _outer, _inner, _row, _col`.
    struct MatmulParams {
        m: u32,
        n: u32,
        k: u32,
        inner_batch: u32,
        a_offset: u32,
        a_outer: u32,
        a_inner: u32,
        a_row: u32,
        a_col: u32,
        b_offset: u32,
        b_outer: u32,
        b_inner: u32,
        b_row: u32,
        b_col: u32,
        c_offset: u32,
        c_outer: u32,
        c_inner: u32,
        c_row: u32,
        c_col: u32,
        alpha: f32,
        /// [`GradMode::flag`] of C.
        accumulate: u32,
        /// 1 when a bias per column of C is added.
        bias: u32,
        pad0: u32,
        pad1: u32,
    }
}

/// The bindings of every matmul module.
pub(crate) const MATMUL: Family = Family::new::<MatmulParams>(&[A, B, BIAS, C]);

/// Largest workgroup count per grid dimension (the WebGPU default limit).
const MAX_GRID_DIM: usize = 65535;

/// One strided product `C = alpha * A @ B (+ bias per column) (+ C when
/// accumulating)`, each operand a tensor and a [`View`] of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Product<'t> {
    a: (&'t Tensor, View),
    b: (&'t Tensor, View),
    c: (&'t Tensor, View),
    dims: Dims,
    alpha: f32,
    mode: GradMode,
    bias: Option<&'t Tensor>,
}

impl<'t> Product<'t> {
    /// `C = A @ B`, overwriting C, with no bias.
    pub fn new(
        a: (&'t Tensor, View),
        b: (&'t Tensor, View),
        c: (&'t Tensor, View),
        dims: Dims,
    ) -> Self {
        Self {
            a,
            b,
            c,
            dims,
            alpha: 1.0,
            mode: GradMode::Overwrite,
            bias: None,
        }
    }

    /// The product scaled by `alpha`.
    pub fn scaled(self, alpha: f32) -> Self {
        Self { alpha, ..self }
    }

    /// The product written to C as `mode` says.
    pub fn mode(self, mode: GradMode) -> Self {
        Self { mode, ..self }
    }

    /// The product plus `bias` per column of C, when given.
    pub fn bias(self, bias: Option<&'t Tensor>) -> Self {
        Self { bias, ..self }
    }

    /// The dispatch, with the specialization of the kernels' matmul variant for this
    /// shape; [`Error::LimitExceeded`] when its grid is too large.
    pub fn dispatch(self, cx: &CompileCx<'_>) -> Result<Dispatch> {
        self.dispatch_on(cx.kernels)
    }

    /// [`Product::dispatch`] on `kernels`, outside a graph (Muon's Newton-Schulz).
    pub fn dispatch_on(self, kernels: &Kernels) -> Result<Dispatch> {
        let dims = self.dims;
        let shader = kernels.matmul_variant().shader_for(dims.m, dims.n);
        let grid = shader.grid(dims.m, dims.n, dims.batch);
        if let Some(&g) = grid.iter().find(|&&g| g > MAX_GRID_DIM) {
            return Err(Error::LimitExceeded {
                what: format!("matmul workgroups along one dimension ({dims:?})"),
                needed: g as u64,
                allowed: MAX_GRID_DIM as u64,
            });
        }
        let (a, b, c) = (self.a.0, self.b.0, self.c.0);
        Ok(Dispatch::new(
            kernels,
            Kernel::Matmul(shader),
            &(&self.params()).into(),
            &[(A, a), (B, b), (BIAS, self.bias.unwrap_or(a)), (C, c)],
            grid.map(|g| g as u32),
        ))
    }

    fn params(&self) -> MatmulParams {
        let dims = self.dims;
        let [a_offset, a_outer, a_inner, a_row, a_col] = self.a.1.fields();
        let [b_offset, b_outer, b_inner, b_row, b_col] = self.b.1.fields();
        let [c_offset, c_outer, c_inner, c_row, c_col] = self.c.1.fields();
        MatmulParams {
            m: dims.m as u32,
            n: dims.n as u32,
            k: dims.k as u32,
            inner_batch: dims.inner_batch.max(1) as u32,
            a_offset,
            a_outer,
            a_inner,
            a_row,
            a_col,
            b_offset,
            b_outer,
            b_inner,
            b_row,
            b_col,
            c_offset,
            c_outer,
            c_inner,
            c_row,
            c_col,
            alpha: self.alpha,
            accumulate: self.mode.flag(),
            bias: self.bias.is_some() as u32,
            ..Default::default()
        }
    }
}

/// The gradient of an operand of a product: the operand, its gradient mode, the two
/// factors, the operand's view (the gradient is written through it) and the sizes.
type GradProduct<'t> = (Var, Option<GradMode>, [(&'t Tensor, View); 2], View, Dims);

/// The products of `grads` whose operand wants a gradient.
fn grad_products(cx: &CompileCx<'_>, grads: [GradProduct<'_>; 2]) -> Result<Vec<Dispatch>> {
    let mut dispatches = Vec::new();
    for (input, mode, [lhs, rhs], view, dims) in grads {
        if let Some((grad, mode)) = wanted(cx, input, mode) {
            let product = Product::new(lhs, rhs, (grad, view), dims).mode(mode);
            dispatches.push(product.dispatch(cx)?);
        }
    }
    Ok(dispatches)
}

/// `forward` in a fresh [`Compiled`], then, when the backward pass reaches the product
/// (`out` has a gradient dC), the gradient products `grads(dC)` lists.
fn product_with_grads<'t>(
    cx: &'t CompileCx<'_>,
    out: Var,
    forward: Product<'t>,
    grads: impl FnOnce(&'t Tensor) -> [GradProduct<'t>; 2],
) -> Result<Compiled> {
    let mut compiled = Compiled::default();
    compiled.forward.push(forward.dispatch(cx)?);
    if let Some(dc) = cx.grad(out) {
        compiled.backward = grad_products(cx, grads(dc))?;
    }
    Ok(compiled)
}

/// `op(A) @ op(B)`, 2-D or batched 3-D.
#[derive(Debug)]
pub(crate) struct Matmul {
    a: Var,
    b: Var,
    transpose_a: bool,
    transpose_b: bool,
    dims: Dims,
    /// Stored (rows, cols) of each operand.
    a_cols: usize,
    b_cols: usize,
}

impl Matmul {
    pub fn new(
        g: &GraphBuilder,
        a: Var,
        b: Var,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<(Self, Vec<usize>)> {
        check_f32(g, "matmul", &[a, b])?;
        let (sa, sb) = (g.shape(a).to_vec(), g.shape(b).to_vec());
        let rank = sa.len();
        reject_shape(
            !(rank == 2 || rank == 3) || sb.len() != rank || (rank == 3 && sa[0] != sb[0]),
            "matmul",
            || format!("operands {sa:?} and {sb:?} must both be 2-D, or 3-D with equal batch"),
        )?;
        let batch = if rank == 3 { sa[0] } else { 1 };
        let (ar, ac) = (sa[rank - 2], sa[rank - 1]);
        let (br, bc) = (sb[rank - 2], sb[rank - 1]);
        let (m, k) = if transpose_a { (ac, ar) } else { (ar, ac) };
        let (kb, n) = if transpose_b { (bc, br) } else { (br, bc) };
        reject_shape(k != kb, "matmul", || {
            format!(
                "inner dimensions differ: {sa:?}{} @ {sb:?}{}",
                if transpose_a { "^T" } else { "" },
                if transpose_b { "^T" } else { "" }
            )
        })?;
        let mut shape = if rank == 3 { vec![batch] } else { vec![] };
        shape.extend([m, n]);
        let dims = Dims {
            m,
            n,
            k,
            batch,
            inner_batch: 1,
        };
        Ok((
            Self {
                a,
                b,
                transpose_a,
                transpose_b,
                dims,
                a_cols: ac,
                b_cols: bc,
            },
            shape,
        ))
    }

    /// Logical views: A as `m x k`, B as `k x n`, C as `m x n`.
    fn views(&self) -> (View, View, View) {
        let d = self.dims;
        let a = View::row_major(self.a_cols, d.m * d.k);
        let b = View::row_major(self.b_cols, d.k * d.n);
        (
            if self.transpose_a { a.t() } else { a },
            if self.transpose_b { b.t() } else { b },
            View::row_major(d.n, d.m * d.n),
        )
    }
}

impl Op for Matmul {
    fn inputs(&self) -> Vec<Var> {
        vec![self.a, self.b]
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let d = self.dims;
        let (va, vb, vc) = self.views();
        let (a, b, c) = (cx.value(self.a), cx.value(self.b), cx.value(out));
        let forward = Product::new((a, va), (b, vb), (c, vc), d);
        // dA = dC @ op(B)^T and dB = op(A)^T @ dC, each written through its operand's
        // logical view.
        let compiled = product_with_grads(cx, out, forward, |dc| {
            [
                (
                    self.a,
                    modes[0],
                    [(dc, vc), (b, vb.t())],
                    va,
                    d.sized(d.m, d.k, d.n),
                ),
                (
                    self.b,
                    modes[1],
                    [(a, va.t()), (dc, vc)],
                    vb,
                    d.sized(d.k, d.n, d.m),
                ),
            ]
        })?;
        Ok(compiled)
    }
}

/// `x @ W^T + b` over the last dimension of `x`.
#[derive(Debug)]
pub(crate) struct Linear {
    x: Var,
    weight: Var,
    bias: Option<Var>,
    rows: usize,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    pub fn new(
        g: &GraphBuilder,
        x: Var,
        weight: Var,
        bias: Option<Var>,
    ) -> Result<(Self, Vec<usize>)> {
        let mut vars = vec![x, weight];
        vars.extend(bias);
        check_f32(g, "linear", &vars)?;
        let (sx, sw) = (g.shape(x).to_vec(), g.shape(weight).to_vec());
        let in_features = *sx.last().unwrap_or(&0);
        // A Conv2d patch-embedding weight [out, c, p, p] is read as [out, c * p * p].
        let out_features = sw.first().copied().unwrap_or(0);
        reject_shape(
            sx.len() < 2 || sw.len() < 2 || numel(&sw[1..]) != in_features,
            "linear",
            || format!("input {sx:?} does not fit weight {sw:?} (expected [out, {in_features}])"),
        )?;
        if let Some(b) = bias {
            reject_shape(g.shape(b) != [out_features], "linear", || {
                format!("bias {:?} for {out_features} outputs", g.shape(b))
            })?;
        }
        let mut shape = sx[..sx.len() - 1].to_vec();
        shape.push(out_features);
        Ok((
            Self {
                x,
                weight,
                bias,
                rows: numel(&sx) / in_features,
                in_features,
                out_features,
            },
            shape,
        ))
    }
}

impl Op for Linear {
    fn inputs(&self) -> Vec<Var> {
        let mut v = vec![self.x, self.weight];
        v.extend(self.bias);
        v
    }

    fn compile(&self, cx: &mut CompileCx<'_>, out: Var, modes: Modes<'_>) -> Result<Compiled> {
        let (m, k, n) = (self.rows, self.in_features, self.out_features);
        let dims = Dims {
            m,
            n,
            k,
            batch: 1,
            inner_batch: 1,
        };
        let vx = View::row_major(k, 0);
        let vw = View::row_major(k, 0); // [n, k]
        let vy = View::row_major(n, 0);
        let (x, w, y) = (cx.value(self.x), cx.value(self.weight), cx.value(out));
        let bias = self.bias.map(|b| cx.value(b));
        let forward = Product::new((x, vx), (w, vw.t()), (y, vy), dims).bias(bias);
        // dx [m, k] = dy [m, n] @ W [n, k] and dW [n, k] = dy^T [n, m] @ x [m, k].
        let mut compiled = product_with_grads(cx, out, forward, |dy| {
            [
                (
                    self.x,
                    modes[0],
                    [(dy, vy), (w, vw)],
                    vx,
                    dims.sized(m, k, n),
                ),
                (
                    self.weight,
                    modes[1],
                    [(dy, vy.t()), (x, vx)],
                    vw,
                    dims.sized(n, k, m),
                ),
            ]
        })?;
        // db [n] = sum over rows of dy
        if let Some(dy) = cx.grad(out)
            && let Some(b) = self.bias
            && let Some((db, mode)) = wanted(cx, b, modes[2])
        {
            compiled.backward.push(sum_rows(cx, dy, db, n, mode));
        }
        Ok(compiled)
    }
}
