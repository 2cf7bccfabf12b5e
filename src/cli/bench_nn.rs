//! `coptim bench --nn`: every matmul variant at the default models' shapes beside a
//! native CPU sgemm measured in the same run, and the training throughput of each
//! model preset.

use std::time::Instant;

use coptim::bench::AdapterSummary;
use coptim::bench::nn::{self, MatmulShape};
use coptim::model::{Llama, Mlp, Vit};
use coptim::nn::{Kernels, MatmulVariant};
use coptim::optim::Caution;
use coptim::optim::adafactor_reference::{AdafactorRule, BigVisionAdafactor, TimmAdafactor};
use coptim::optim::muon::NsPrecision;
use coptim::train::ModelSpec;
use coptim::{ContextOptions, Error, GpuContext};
use serde::Serialize;

/// Samples per training batch, as `coptim train` uses by default.
const BATCH: usize = 128;

/// One variant at one shape.
#[derive(Debug, Serialize)]
struct MatmulRow {
    variant: &'static str,
    label: String,
    m: usize,
    k: usize,
    n: usize,
    gflops: f64,
    /// `matrixmultiply::sgemm` on one thread.
    native_gflops: f64,
    /// The same, with C's rows split over every core.
    native_threaded_gflops: f64,
}

/// Training throughput of one preset.
#[derive(Debug, Serialize)]
struct ModelRow {
    model: &'static str,
    samples_per_s: f64,
}

/// Muon's step on one model's parameters.
#[derive(Debug, Serialize)]
struct MuonRow {
    model: &'static str,
    optimizer: &'static str,
    #[serde(flatten)]
    timing: nn::MuonTiming,
}

/// An Adafactor-family step on one model's parameters.
#[derive(Debug, Serialize)]
struct AdafactorRow {
    model: &'static str,
    optimizer: &'static str,
    #[serde(flatten)]
    timing: nn::AdafactorTiming,
}

#[derive(Debug, Serialize)]
struct NnReport {
    adapter: AdapterSummary,
    /// The auto-selected matmul variant (what training uses).
    default_variant: &'static str,
    native: String,
    matmul: Vec<MatmulRow>,
    models: Vec<ModelRow>,
    muon: Vec<MuonRow>,
    adafactor: Vec<AdafactorRow>,
}

/// `C = A @ B^T` for row-major `A [m, k]`, `B [n, k]`, `C [m, n]` with
/// `matrixmultiply::sgemm`, C's rows split into `threads` blocks.
fn native_sgemm(a: &[f32], b: &[f32], c: &mut [f32], s: &MatmulShape, threads: usize) {
    let rows_per = s.m.div_ceil(threads.max(1));
    std::thread::scope(|scope| {
        for (i, block) in c.chunks_mut(rows_per * s.n).enumerate() {
            let rows = block.len() / s.n;
            let a = &a[i * rows_per * s.k..];
            let mut run = move || {
                // SAFETY: `a` holds `rows x k`, `b` holds `n x k` (read through its
                // transposed strides) and `block` holds `rows x n`, all row-major and
                // in bounds.
                unsafe {
                    matrixmultiply::sgemm(
                        rows,
                        s.k,
                        s.n,
                        1.0,
                        a.as_ptr(),
                        s.k as isize,
                        1,
                        b.as_ptr(),
                        1,
                        s.k as isize,
                        0.0,
                        block.as_mut_ptr(),
                        s.n as isize,
                        1,
                    )
                }
            };
            if threads > 1 {
                scope.spawn(run);
            } else {
                run();
            }
        }
    });
}

/// GFLOP/s of [`native_sgemm`] at `s`, repeated for at least the GPU timings' span.
fn native_gflops(s: &MatmulShape, threads: usize) -> f64 {
    let a: Vec<f32> = (0..s.m * s.k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..s.n * s.k).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut c = vec![0.0f32; s.m * s.n];
    native_sgemm(&a, &b, &mut c, s, threads);
    let t = Instant::now();
    let mut calls = 0u32;
    while t.elapsed().as_secs_f64() < nn::MIN_TIMED_SECONDS {
        native_sgemm(&a, &b, &mut c, s, threads);
        calls += 1;
    }
    let seconds = t.elapsed().as_secs_f64() / f64::from(calls);
    2.0 * (s.m * s.k * s.n) as f64 / seconds / 1e9
}

fn matmul_rows(ctx: &GpuContext, threads: usize) -> coptim::Result<Vec<MatmulRow>> {
    let mlp = match ModelSpec::default_mlp() {
        ModelSpec::Mlp(m) => m,
        _ => Mlp::default(),
    };
    let shapes = nn::model_matmul_shapes(&mlp, &Vit::default(), BATCH, "vit_p7");
    let variants: Vec<(MatmulVariant, Kernels)> = MatmulVariant::ALL
        .iter()
        .filter_map(|&v| Kernels::with_matmul(ctx, v).ok().map(|k| (v, k)))
        .collect();
    let mut rows = Vec::new();
    for s in &shapes {
        let native = native_gflops(s, 1);
        let threaded = native_gflops(s, threads);
        for (v, kernels) in &variants {
            rows.push(MatmulRow {
                variant: v.name(),
                label: s.label.clone(),
                m: s.m,
                k: s.k,
                n: s.n,
                gflops: nn::time_matmul(ctx, kernels, s)?,
                native_gflops: native,
                native_threaded_gflops: threaded,
            });
        }
    }
    Ok(rows)
}

/// Training throughput of every model preset.
fn model_rows(ctx: &GpuContext) -> coptim::Result<Vec<ModelRow>> {
    nn::model_presets()
        .into_iter()
        .map(|(model, spec)| {
            Ok(ModelRow {
                model,
                samples_per_s: nn::training_samples_per_s(ctx, &spec, BATCH)?,
            })
        })
        .collect()
}

/// Muon and C-Muon steps on the ViT's and the language model's parameters.
fn muon_rows(ctx: &GpuContext) -> coptim::Result<Vec<MuonRow>> {
    let models = [
        ("vit", ModelSpec::default_vit()),
        ("llama", ModelSpec::Llama(Llama::default())),
    ];
    let mut rows = Vec::new();
    for (model, spec) in &models {
        for (optimizer, caution) in [("muon", Caution::Off), ("cmuon", Caution::hard())] {
            rows.push(MuonRow {
                model,
                optimizer,
                timing: nn::time_muon_step(ctx, spec, caution, NsPrecision::Auto)?,
            });
        }
    }
    Ok(rows)
}

/// Adafactor, C-Adafactor (timm, beta1 0.9) and big_vision's C-Adafactor steps on the
/// ViT's and the language model's parameters.
fn adafactor_rows(ctx: &GpuContext) -> coptim::Result<Vec<AdafactorRow>> {
    let timm = TimmAdafactor::timm();
    let members = [
        ("adafactor", AdafactorRule::Timm(timm), Caution::Off),
        (
            "cadafactor",
            AdafactorRule::Timm(TimmAdafactor {
                beta1: Some(0.9),
                ..timm
            }),
            Caution::hard(),
        ),
        (
            "cadafactorbv",
            AdafactorRule::BigVision(BigVisionAdafactor::default()),
            Caution::hard(),
        ),
    ];
    let mut rows = Vec::new();
    for (model, spec) in [
        ("vit", ModelSpec::default_vit()),
        ("llama", ModelSpec::Llama(Llama::default())),
    ] {
        for (optimizer, rule, caution) in members {
            rows.push(AdafactorRow {
                model,
                optimizer,
                timing: nn::time_adafactor_step(ctx, &spec, rule, caution)?,
            });
        }
    }
    Ok(rows)
}

/// Which sections a run of the nn benchmark measures.
#[derive(Debug, Clone, Copy)]
pub struct Sections {
    /// Only the Muon rows.
    pub muon_only: bool,
    /// Only the Adafactor rows.
    pub adafactor_only: bool,
}

/// Runs the nn benchmark (only its Muon rows when `muon_only`) and prints a table or
/// JSON.
pub fn run(json: bool, sections: Sections) -> coptim::Result<()> {
    let ctx = GpuContext::new_blocking(&ContextOptions::default())?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all = !(sections.muon_only || sections.adafactor_only);
    let (matmul, models) = if all {
        (matmul_rows(&ctx, threads)?, model_rows(&ctx)?)
    } else {
        (Vec::new(), Vec::new())
    };
    let muon = if sections.adafactor_only {
        Vec::new()
    } else {
        muon_rows(&ctx)?
    };
    let adafactor = if sections.muon_only {
        Vec::new()
    } else {
        adafactor_rows(&ctx)?
    };
    let report = NnReport {
        adapter: AdapterSummary::of(&ctx),
        default_variant: Kernels::new(&ctx).matmul_variant().name(),
        native: format!(
            "matrixmultiply 0.3 sgemm: 1 thread, and {threads} threads (rows of C split)"
        ),
        matmul,
        models,
        muon,
        adafactor,
    };
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::InvalidConfig(format!("report does not serialize: {e}")))?;
        println!("{text}");
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &NnReport) {
    println!(
        "adapter {} ({}, {}); default matmul variant: {}; native: {}",
        r.adapter.name, r.adapter.backend, r.adapter.device_type, r.default_variant, r.native
    );
    if !r.matmul.is_empty() {
        print_matmul(r);
    }
    if !r.models.is_empty() {
        println!("training step (forward, backward, C-AdamW step), batch {BATCH}:");
        for m in &r.models {
            println!("  {:<8} {:>10.0} samples/s", m.model, m.samples_per_s);
        }
        println!();
    }
    if !r.muon.is_empty() {
        print_muon(r);
    }
    if !r.adafactor.is_empty() {
        println!("Adafactor step (state bytes per parameter; AdamW keeps 8):");
    }
    for a in &r.adafactor {
        let t = &a.timing;
        println!(
            "  {:<6} {:<12} {:>3} factored {:>9.3} ms/step {:>6.3} bytes/param",
            a.model, a.optimizer, t.factored, t.step_ms, t.state_bytes_per_param
        );
    }
}

fn print_muon(r: &NnReport) {
    println!("Muon step (Newton-Schulz products vs the same products as plain matmuls):");
    for m in &r.muon {
        let t = &m.timing;
        println!(
            "  {:<6} {:<6} {:>3} matrices {:>3} fallback {:>9.3} ms/step {:>8.4} GFLOP NS \
             {:>9.3} ms plain",
            m.model, m.optimizer, t.matrices, t.fallback, t.step_ms, t.ns_gflop, t.plain_matmul_ms
        );
    }
}

fn print_matmul(r: &NnReport) {
    println!(
        "{:<20} {:>5} {:>4} {:>4} {:<13} {:>8} {:>8} {:>8} {:>8}",
        "product", "m", "k", "n", "variant", "GFLOP/s", "native1", "nativeN", "of nat1"
    );
    for x in &r.matmul {
        println!(
            "{:<20} {:>5} {:>4} {:>4} {:<13} {:>8.2} {:>8.2} {:>8.2} {:>7.1}%",
            x.label,
            x.m,
            x.k,
            x.n,
            x.variant,
            x.gflops,
            x.native_gflops,
            x.native_threaded_gflops,
            100.0 * x.gflops / x.native_gflops
        );
    }
    println!();
}
