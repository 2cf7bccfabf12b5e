//! Newton-Schulz on the GPU (batched products through every matmul variant the device
//! runs) against the f64 reference iteration.
//!
//! Tolerance (normwise, max |diff| / max |ref| over the batch): the iteration maps
//! each singular value through p(s) = a s + b s^3 + c s^5, and an error in X grows
//! at most by max |p'| per iteration, p'(0) = a (4.08, 3.95, 3.74, 2.88, 2.84 for
//! the quintic set), so rounding made in the first iteration can grow by at most
//! their product, about 490, by the fifth. f32 products of length k round with a
//! relative error of about sqrt(k) * 6e-8 (6e-7 at k = 96), a worst-case bound of
//! 490 * 6e-7 = 3e-4; the amplification is that large only for singular values near
//! 0, which carry little of the matrix, and the measured error on lavapipe is 1.4e-6
//! (quintic) to 7.5e-6 (Polar Express, whose first slope is 8.2): `F32_TOL` = 5e-5,
//! 7x the worst measured and 6x under the bound. f16 staging rounds every input to
//! 2^-11 (4.9e-4) relative with f32 accumulation: the same amplification bounds it
//! by 0.24, measured 2.3e-3 to 7e-3 (the 1x8 batch worst): `F16_TOL` = 2e-2.

mod common;

use coptim::nn::{Kernels, MatmulVariant};
use coptim::optim::muon::reference::newton_schulz;
use coptim::optim::muon::{NewtonSchulz, NsCoefficients, NsPrecision};

use common::{ctx, randn, rel_err, rng, to_f32, to_f64};

const F32_TOL: f64 = 5e-5;
const F16_TOL: f64 = 2e-2;

/// Batches of (rows, cols, batch), rows <= cols: square, wide, odd, tiny, one-row
/// batched.
const SHAPES: [(usize, usize, usize); 5] =
    [(64, 64, 2), (32, 96, 3), (17, 45, 2), (4, 4, 5), (1, 8, 2)];

fn gpu_vs_reference(kernels: &Kernels, coefficients: NsCoefficients, steps: usize) -> f64 {
    let ctx = kernels.context();
    let seq = coefficients.sequence(steps);
    let mut worst: f64 = 0.0;
    for (i, &(r, c, batch)) in SHAPES.iter().enumerate() {
        let ns = NewtonSchulz::new(kernels, r, c, batch, &seq).unwrap();
        let mut g = rng(40 + i as u64);
        let mut input = Vec::new();
        let mut expect = Vec::new();
        for _ in 0..batch {
            let m = randn(&mut g, r * c, 1.0);
            let norm = m.iter().map(|v| v * v).sum::<f64>().sqrt();
            let m: Vec<f64> = m.iter().map(|v| v / norm).collect();
            expect.extend(newton_schulz(&m, r, c, &seq, 1e-7));
            input.extend(m);
        }
        ns.input().write_f32(ctx, &to_f32(&input)).unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        ns.record_alone(&mut encoder);
        ctx.queue().submit([encoder.finish()]);
        let got = to_f64(&ns.output().read_f32_blocking(ctx).unwrap());
        let err = rel_err(&got, &expect);
        eprintln!(
            "{:?} {r}x{c} x{batch} {}: {err:.2e}",
            kernels.matmul_variant(),
            coefficients.name()
        );
        worst = worst.max(err);
    }
    worst
}

#[test]
fn every_matmul_variant_orthogonalizes_like_the_f64_iteration() {
    let ctx = ctx();
    let mut ran = 0;
    for variant in MatmulVariant::ALL {
        let Ok(kernels) = Kernels::with_matmul(&ctx, variant) else {
            continue;
        };
        let tol = if variant == MatmulVariant::TiledF16 {
            F16_TOL
        } else {
            F32_TOL
        };
        let err = gpu_vs_reference(&kernels, NsCoefficients::Quintic, 5);
        assert!(err <= tol, "{variant:?}: {err:.3e} > {tol:.0e}");
        ran += 1;
    }
    assert!(
        ran >= 2,
        "at least the f32 default and one more variant ran"
    );
}

#[test]
fn every_coefficient_set_and_step_count_runs() {
    let ctx = ctx();
    let kernels = Kernels::with_matmul(&ctx, NsPrecision::F32.variant(&ctx).unwrap()).unwrap();
    for (coefficients, steps) in [
        (NsCoefficients::Original, 5),
        (NsCoefficients::Quintic, 6),
        (NsCoefficients::PolarExpress, 8),
        (NsCoefficients::PolarExpressSafer, 4),
    ] {
        let err = gpu_vs_reference(&kernels, coefficients, steps);
        assert!(err <= F32_TOL, "{}: {err:.3e}", coefficients.name());
    }
}

#[test]
fn f16_precision_is_a_typed_error_without_shader_f16_and_auto_picks_by_adapter() {
    let ctx = ctx();
    let f16 = NsPrecision::F16.variant(&ctx);
    if ctx.capabilities().f16 {
        assert_eq!(f16.unwrap(), MatmulVariant::TiledF16);
    } else {
        assert!(matches!(f16, Err(coptim::Error::MissingFeature { .. })));
    }
    let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
    let auto = NsPrecision::Auto.variant(&ctx).unwrap();
    assert_eq!(
        auto == MatmulVariant::TiledF16,
        !cpu && ctx.capabilities().f16
    );
}

#[test]
fn muon_modules_validate() {
    common::validate_wgsl("muon", &coptim::optim::muon::muon_source().unwrap());
    common::validate_wgsl("muon scale", &coptim::optim::muon::scale_source().unwrap());
}
