//! CPU-side costs with criterion: building a dispatch plan for a transformer-shaped
//! layout, and one step of the f64 reference optimizer.
//!
//! `cargo bench --bench cpu`

use std::hint::black_box;

use coptim::arena::{ArenaLimits, Layout};
use coptim::bench::ModelLayout;
use coptim::optim::plan::Plan;
use coptim::optim::{Caution, OptimizerConfig, ReferenceOptimizer};
use criterion::{Criterion, criterion_group, criterion_main};

/// lavapipe's limits: 128 MiB bindings, 2 GiB buffers, 256-byte alignment.
fn limits() -> ArenaLimits {
    ArenaLimits {
        align_bytes: 256,
        max_binding_bytes: 128 << 20,
        max_buffer_bytes: 2 << 30,
    }
}

fn plan(c: &mut Criterion) {
    for params in [1u64 << 20, 64 << 20] {
        let shapes = ModelLayout::Transformer.shapes(params).unwrap();
        c.bench_function(&format!("layout+plan transformer {}", params >> 20), |b| {
            b.iter(|| {
                let layout = Layout::new(black_box(&shapes), limits()).unwrap();
                Plan::for_arena(&layout, 65_535).unwrap()
            })
        });
    }
}

fn reference_step(c: &mut Criterion) {
    let n = 1 << 16;
    let names = [("w", n)];
    let grads = vec![
        (0..n)
            .map(|i| ((i % 7) as f64 - 3.0) * 1e-2)
            .collect::<Vec<_>>(),
    ];
    for (name, cfg) in [
        ("adamw", OptimizerConfig::adamw(1e-3)),
        (
            "cadamw",
            OptimizerConfig::adamw(1e-3).with_caution(Caution::hard()),
        ),
    ] {
        let mut reference = ReferenceOptimizer::new(cfg, &names).unwrap();
        let mut params = vec![vec![0.5f64; n]];
        c.bench_function(&format!("f64 reference {name} 64K"), |b| {
            b.iter(|| reference.step(black_box(&mut params), &grads).unwrap())
        });
    }
}

criterion_group!(benches, plan, reference_step);
criterion_main!(benches);
