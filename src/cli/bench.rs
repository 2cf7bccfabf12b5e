//! `coptim bench`: optimizer step times against the bandwidth of a copy kernel.

use clap::Args;
use coptim::bench::{self, BenchOptions, BenchReport, CopyResult, ModelLayout, StepProtocol};
use coptim::optim::Algorithm;
use coptim::stream::StreamShape;
use coptim::{ContextOptions, ElementType, Error, GpuContext};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `coptim bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model sizes in parameters, comma-separated (K = 2^10, M = 2^20, G = 2^30).
    #[arg(long, default_value = "1M,16M,64M")]
    pub params: String,
    /// Parameter layouts, comma-separated: transformer, single, many-small.
    #[arg(long, default_value = "transformer")]
    pub layout: String,
    /// Optimizers, comma-separated: any of coptim's algorithms (adamw, lion, sgd,
    /// nadamw, laprop, lamb, ...), each with timm's defaults; `all` for every one.
    #[arg(long, default_value = "adamw,lion,sgd")]
    pub optimizers: String,
    /// State storage types, comma-separated: f32, bf16, f16. Default: f32 and bf16,
    /// plus f16 when the adapter has shader-f16.
    #[arg(long)]
    pub state_dtype: Option<String>,
    /// Caution settings: both, off or on.
    #[arg(long, default_value = "both")]
    pub caution: String,
    /// Timed steps per configuration (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: u32,
    /// Untimed warm-up steps per configuration.
    #[arg(long, default_value_t = 3)]
    pub warmup: u32,
    /// Turn off the non-finite gradient check of plain optimizers (saves one read of
    /// the gradients: 4 B per parameter).
    #[arg(long)]
    pub no_nonfinite_check: bool,
    /// Stream shapes to run every step with side by side, comma-separated: gpu
    /// (256x4), cpu (8x128) or WGxVPT. Default: the adapter's own.
    #[arg(long)]
    pub stream_shape: Option<String>,
    /// Skip timing the copy kernel variants side by side (access pattern, workgroup
    /// size, vec4s per invocation) at each size.
    #[arg(long)]
    pub no_copy_sweep: bool,
    /// Time with submit-and-wait wall clock even when timestamp queries exist.
    #[arg(long)]
    pub wall_clock: bool,
    /// Smoke run: 64K parameters, 1 warm-up and 3 timed steps (overrides --params,
    /// --steps and --warmup).
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Benchmark the nn stack instead of the optimizers: every matmul variant at the
    /// default models' shapes beside a native CPU sgemm, and the training throughput
    /// of each model preset (the optimizer options are ignored).
    #[arg(long)]
    pub nn: bool,
    /// Benchmark only Muon and C-Muon steps on the ViT's and the language model's
    /// parameters (the Muon rows of `--nn`).
    #[arg(long)]
    pub muon: bool,
    /// Benchmark only Adafactor, C-Adafactor and big_vision's C-Adafactor steps on the
    /// ViT's and the language model's parameters, with their state bytes per
    /// parameter (the Adafactor rows of `--nn`).
    #[arg(long)]
    pub adafactor: bool,
}

fn list<T>(s: &str, parse: impl Fn(&str) -> coptim::Result<T>) -> coptim::Result<Vec<T>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(parse)
        .collect()
}

fn parse_algorithm(s: &str) -> coptim::Result<Algorithm> {
    Algorithm::by_name(s)
}

fn parse_dtype(s: &str) -> coptim::Result<ElementType> {
    match s {
        "f32" => Ok(ElementType::F32),
        "bf16" => Ok(ElementType::Bf16),
        "f16" => Ok(ElementType::F16),
        _ => Err(Error::InvalidConfig(format!(
            "unknown state dtype `{s}` (f32, bf16, f16)"
        ))),
    }
}

impl BenchArgs {
    fn options(&self, ctx: &GpuContext) -> coptim::Result<BenchOptions> {
        let state_dtypes = match &self.state_dtype {
            Some(s) => list(s, parse_dtype)?,
            None if ctx.capabilities().f16 => {
                vec![ElementType::F32, ElementType::Bf16, ElementType::F16]
            }
            None => vec![ElementType::F32, ElementType::Bf16],
        };
        let cautions = match self.caution.as_str() {
            "both" => vec![false, true],
            "off" => vec![false],
            "on" => vec![true],
            c => {
                return Err(Error::InvalidConfig(format!(
                    "--caution {c}: expected both, off or on"
                )));
            }
        };
        let options = BenchOptions {
            params: list(&self.params, bench::parse_count)?,
            layouts: list(&self.layout, |s| s.parse::<ModelLayout>())?,
            algorithms: match self.optimizers.as_str() {
                "all" => Algorithm::members(),
                names => list(names, parse_algorithm)?,
            },
            cautions,
            state_dtypes,
            protocol: StepProtocol {
                warmup: self.warmup,
                steps: self.steps,
                nonfinite_check: !self.no_nonfinite_check,
            },
            timestamps: !self.wall_clock,
            stream_shapes: match &self.stream_shape {
                Some(s) => list(s, StreamShape::parse)?,
                None => Vec::new(),
            },
            copy_variants: if self.no_copy_sweep {
                Vec::new()
            } else {
                bench::CopyVariant::sweep()
            },
        };
        Ok(if self.quick { options.quick() } else { options })
    }
}

/// Runs the benchmark and prints a table or JSON.
pub fn run(args: &BenchArgs) -> coptim::Result<()> {
    if args.nn || args.muon || args.adafactor {
        let sections = super::bench_nn::Sections {
            muon_only: args.muon,
            adafactor_only: args.adafactor,
        };
        return super::bench_nn::run(args.json, sections);
    }
    let ctx = GpuContext::new_blocking(&ContextOptions::default())?;
    let options = args.options(&ctx)?;
    let bar = ProgressBar::new(options.groups());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
            .expect("valid progress template"),
    );
    let mut started = false;
    let report = bench::run(&ctx, &options, &mut |p| {
        if started {
            bar.inc(1);
        }
        started = true;
        bar.set_message(format!(
            "{} {} {} {}",
            p.layout,
            bench::format_count(p.params),
            p.optimizer,
            p.state_dtype.name()
        ));
    });
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Prints the whole report as human-readable text.
fn print_table(r: &BenchReport) {
    print_baselines(r);
    print_results(r);
    print_caution_ratios(r);
}

/// Prints the adapter line and the native memcpy and copy-kernel baselines.
fn print_baselines(r: &BenchReport) {
    println!(
        "adapter {} ({}, {}); timing: {:?}; {} warm-up + {} timed steps, median",
        r.adapter.name,
        r.adapter.backend,
        r.adapter.device_type,
        r.timing,
        r.protocol.warmup,
        r.protocol.steps
    );
    for n in &r.natives {
        println!(
            "native memcpy at {}, {} thread(s): {} MB in {:.3} ms (min {:.3}) = {:.2} GB/s",
            bench::format_count(n.params),
            n.threads,
            n.bytes / 1_000_000,
            n.ms,
            n.min_ms,
            n.gbps
        );
    }
    let copy_line = |label: &str, c: &CopyResult| {
        println!(
            "{label} {:<20} at {}: {} MB in {:.3} ms (min {:.3}) = {:.2} GB/s ({:.1}% of native)",
            c.variant,
            bench::format_count(c.params),
            c.bytes / 1_000_000,
            c.ms,
            c.min_ms,
            c.gbps,
            100.0 * c.fraction_of_native
        );
    };
    for c in &r.copy_variants {
        copy_line("copy variant", c);
    }
    for c in &r.copies {
        copy_line("copy kernel ", c);
    }
}

/// Prints the per-configuration optimizer step results as a table.
fn print_results(r: &BenchReport) {
    println!();
    println!(
        "{:<12} {:>6} {:>5} {:<8} {:<6} {:<5} {:>10} {:>9} {:>7} {:>8} {:>9} {:>6}",
        "layout",
        "params",
        "tens",
        "optim",
        "shape",
        "state",
        "step ms",
        "MB/step",
        "GB/s",
        "of copy",
        "of native",
        "disp"
    );
    for x in &r.results {
        let name = format!("{}{}", if x.caution { "c-" } else { "" }, x.optimizer);
        println!(
            "{:<12} {:>6} {:>5} {:<8} {:<6} {:<5} {:>10.3} {:>9.1} {:>7.2} {:>7.1}% {:>8.1}% {:>6}",
            x.layout,
            bench::format_count(x.params),
            x.tensors,
            name,
            x.stream_shape,
            x.state_dtype,
            x.step_ms,
            x.bytes_per_step as f64 / 1e6,
            x.gbps,
            100.0 * x.fraction_of_copy,
            100.0 * x.fraction_of_native,
            x.dispatches
        );
    }
}

/// Prints cautious / plain step-time ratios, if any pairs were measured.
fn print_caution_ratios(r: &BenchReport) {
    let ratios = r.caution_ratios();
    if !ratios.is_empty() {
        println!();
        println!("cautious / plain step time (byte floor ratio in parentheses)");
        for c in ratios {
            println!(
                "  {:<12} {:>6} {:<6} {:<5} c-{}/{}: {:.3}x ({:.3}x)",
                c.layout,
                bench::format_count(c.params),
                c.stream_shape,
                c.state_dtype,
                c.optimizer,
                c.optimizer,
                c.time_ratio,
                c.bytes_ratio
            );
        }
    }
}
