//! Throughput of the matmul kernel and of the model steps on the default adapter.
//! Ignored by default (timing, not correctness); run with
//! `cargo test --release --test nn_speed -- --ignored --nocapture`.

use std::time::Instant;

use coptim::nn::{GraphBuilder, Kernels};
use coptim::{GpuContext, ParamStore};

/// Seconds per call of `record`, submitted `iters` times after one warm-up.
fn time_it(ctx: &GpuContext, iters: usize, record: impl Fn(&mut wgpu::CommandEncoder)) -> f64 {
    let run = |n: usize| {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        for _ in 0..n {
            record(&mut encoder);
        }
        ctx.queue().submit([encoder.finish()]);
        ctx.wait_idle().unwrap();
    };
    run(1);
    let t = Instant::now();
    run(iters);
    t.elapsed().as_secs_f64() / iters as f64
}

#[test]
#[ignore]
fn matmul_gflops() {
    let ctx = GpuContext::new_blocking(&Default::default()).unwrap();
    let kernels = Kernels::new(&ctx);
    println!("adapter: {}", ctx.adapter_info().name);
    for (m, k, n, ta, tb) in [
        (256, 784, 256, false, false),
        (256, 784, 256, false, true),
        (256, 784, 256, true, false),
        (1024, 1024, 1024, false, false),
        (128, 256, 10, false, true),
    ] {
        let a = if ta { vec![k, m] } else { vec![m, k] };
        let b = if tb { vec![n, k] } else { vec![k, n] };
        let store = ParamStore::new(&ctx, &[("a", a), ("b", b)]).unwrap();
        let mut g = GraphBuilder::new(store.layout().clone());
        let (va, vb) = (g.param("a").unwrap(), g.param("b").unwrap());
        let _c = g.matmul(va, vb, ta, tb).unwrap();
        let graph = g.build(&kernels, &store, &[]).unwrap();
        let s = time_it(&ctx, 20, |e| graph.record_forward(e));
        let gflops = 2.0 * (m * k * n) as f64 / s / 1e9;
        println!(
            "matmul {m}x{k} @ {k}x{n} (ta {ta}, tb {tb}): {:.3} ms, {gflops:.1} GFLOP/s",
            s * 1e3
        );
    }
}
