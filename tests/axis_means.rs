//! Adafactor's reduction along an axis (`coptim::optim::axis_means`) against f64 means
//! on awkward shapes: one row, one column, lines shorter and longer than a sum chunk,
//! counts that are no multiple of the workgroup, rank 3 and 4 views with dimensions
//! before, between and after the two factored ones, tensors at odd offsets of one
//! buffer, and a grid split past a lowered per-dimension limit.

mod common;

use common::*;
use coptim::optim::axis_means::{AxisMeans, AxisTensor};
use coptim::optim::factored::{AxisView, Factoring};
use wgpu::util::DeviceExt;

/// Each mean sums up to 1,000 terms x^2 + eps (each within an ulp of its f64 value) in
/// f32: chunks of 32 in order, then the chunk sums in order, so the rounding error is
/// at most about (32 + 1000 / 32) * 2^-24 = 4e-6 of the sum of its (positive) terms.
const MEAN_TOL: f64 = 4e-6;
/// timm's eps1, added to every square.
const EPS: f64 = 1e-30;

/// (shape, the two factored dimensions).
fn cases() -> Vec<(Vec<usize>, (usize, usize))> {
    let timm = Factoring::Timm { min_dim_size: 0 };
    let bv = Factoring::LargestTwo { min_dim_size: 1 };
    let pick = |f: Factoring, shape: &[usize]| {
        let d = f.dims(shape).expect("factored");
        (shape.to_vec(), (d.col_reduces, d.row_reduces))
    };
    vec![
        pick(timm, &[1, 37]),
        pick(timm, &[37, 1]),
        pick(timm, &[5, 300]),
        pick(timm, &[1000, 3]),
        pick(timm, &[65, 65]),
        pick(Factoring::LastTwo, &[3, 4, 5]),
        pick(timm, &[20, 18, 3, 3]),
        pick(bv, &[3, 40, 2, 20]),
        pick(bv, &[64, 32]),
    ]
}

/// The f64 means over q, then over p, of x^2 + eps (`x` the tensor's elements).
fn f64_means(view: &AxisView, x: &[f64]) -> Vec<f64> {
    let mut q = vec![0.0; view.q_means_len()];
    let mut p = vec![0.0; view.p_means_len()];
    for (e, v) in x.iter().enumerate() {
        q[view.q_mean_index(e)] += v * v + EPS;
        p[view.p_mean_index(e)] += v * v + EPS;
    }
    q.iter_mut().for_each(|s| *s /= view.n_q as f64);
    p.iter_mut().for_each(|s| *s /= view.n_p as f64);
    q.extend(p);
    q
}

fn run(max_per_dim: Option<u32>) {
    let ctx = ctx();
    let mut r = rng(14);
    let mut data: Vec<f64> = vec![];
    let mut tensors = vec![];
    let mut expected = vec![];
    for (shape, (a, b)) in cases() {
        data.extend(randn(&mut r, 3, 1.0)); // an odd gap before each tensor
        let view = AxisView::new(&shape, a, b);
        let x = randn(&mut r, view.numel(), 0.5);
        expected.push(f64_means(&view, &x));
        tensors.push(AxisTensor {
            src: data.len() as u64,
            view,
        });
        data.extend(x);
    }
    let src = ctx
        .device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("axis means test source"),
            contents: bytemuck::cast_slice(&to_f32(&data)),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let means = AxisMeans::new(&ctx, &src, &tensors, EPS as f32, max_per_dim).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    means.record(&mut encoder);
    ctx.queue().submit([encoder.finish()]);
    let out = means.output();
    let bytes = pollster::block_on(coptim::arena::read_buffer(&ctx, out, 0, out.size())).unwrap();
    let got = to_f64(bytemuck::cast_slice(&bytes));
    let offsets = means.offsets();
    for (t, want) in expected.iter().enumerate() {
        let have = &got[offsets[t] as usize..offsets[t + 1] as usize];
        let err = rel_err(have, want);
        assert!(
            err <= MEAN_TOL,
            "tensor {t} {:?}: error {err:e}",
            tensors[t].view
        );
    }
}

#[test]
fn axis_means_match_f64_on_awkward_shapes() {
    run(None);
}

#[test]
fn axis_means_match_f64_on_a_split_grid() {
    // 37 workgroups on a grid of at most 8 per dimension: 8 x 5, the last row partly
    // past the outputs.
    run(Some(8));
}

#[test]
fn tensors_outside_the_source_are_errors() {
    let ctx = ctx();
    let src = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let view = AxisView::new(&[4, 5], 0, 1);
    let err = AxisMeans::new(&ctx, &src, &[AxisTensor { src: 0, view }], 0.0, None).unwrap_err();
    assert!(matches!(err, coptim::Error::InvalidConfig(_)), "{err}");
    let err = AxisMeans::new(&ctx, &src, &[], 0.0, None).unwrap_err();
    assert!(matches!(err, coptim::Error::InvalidConfig(_)), "{err}");
}
