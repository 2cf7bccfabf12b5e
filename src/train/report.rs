//! Reports of a comparison: the per-step CSV, the summary JSON and the text table.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::train::compare::{RunResult, Spread, Summary};
use crate::train::metrics::History;

/// The header of `metrics.csv`.
pub const CSV_HEADER: &str = "optimizer,seed,step,train_loss,smoothed_train_loss,train_accuracy,lr,kept_fraction,step_ms,test_loss,test_accuracy";

/// `metrics.csv`: one row per step of every run (test columns filled on the steps
/// after which the test set was evaluated).
pub fn metrics_csv(summary: &Summary) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for run in &summary.runs {
        let prefix = format!("{},{},", run.optimizer, run.seed);
        write_history_rows(&mut out, &prefix, &run.history, summary.loss_window);
    }
    out
}

/// Appends one CSV row per step of `history`, each starting with `prefix`: the
/// per-step columns of [`CSV_HEADER`] from `step` on.
fn write_history_rows(out: &mut String, prefix: &str, history: &History, window: usize) {
    let smoothed = history.smoothed_loss(window);
    for (m, s) in history.steps.iter().zip(smoothed) {
        let eval = history.evals.iter().find(|e| e.step == m.step);
        let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{prefix}{},{},{},{},{},{},{},{},{}",
            m.step,
            m.loss,
            s,
            m.accuracy,
            m.lr,
            opt(m.kept_fraction),
            opt(m.step_ms),
            opt(eval.map(|e| e.loss)),
            opt(eval.map(|e| e.accuracy)),
        );
    }
}

/// The summary as pretty JSON.
pub fn summary_json(summary: &Summary) -> String {
    serde_json::to_string_pretty(summary).expect("the summary serializes")
}

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".into(),
    }
}

fn spread(s: &Spread, decimals: usize, unit: &str) -> String {
    match (s.median, s.min, s.max) {
        (Some(m), Some(lo), Some(hi)) => format!(
            "{}{unit} (range {}-{})",
            num(Some(m), decimals),
            num(Some(lo), decimals),
            num(Some(hi), decimals)
        ),
        _ => "-".into(),
    }
}

/// The text table `coptim compare` prints: one row per run, then the speed-up
/// (for a language model or a masked autoencoder, its validation losses).
pub fn table(summary: &Summary) -> String {
    if let Some(bigram) = summary.bigram_val_loss {
        return validation_table(summary, Yardstick::Bigram(bigram));
    }
    if let Some(base) = summary.baseline_val_loss {
        return validation_table(summary, Yardstick::MeanPatch(base));
    }
    let mut out = header(summary);
    let _ = writeln!(
        out,
        "{:<9} {:>4} {:>11} {:>9} {:>13} {:>6} {:>8} {:>9}",
        "optimizer",
        "seed",
        "train loss",
        "test acc",
        "steps to base",
        "kept",
        "wall s",
        "samples/s"
    );
    let row = |out: &mut String, r: &RunResult| {
        let _ = writeln!(
            out,
            "{:<9} {:>4} {:>11} {:>8}% {:>13} {:>6} {:>8} {:>9}",
            r.optimizer.name(),
            r.seed,
            num(Some(r.final_train_loss), 4),
            num(Some(100.0 * r.test_accuracy), 2),
            r.steps_to_base_final_loss
                .map_or("not reached".into(), |s| s.to_string()),
            num(r.mean_kept_fraction, 3),
            num(Some(r.wall_s), 1),
            num(r.samples_per_s, 0),
        );
    };
    for r in &summary.runs {
        row(&mut out, r);
    }
    out.push_str(&speedup_line(summary, "train loss"));
    for o in &summary.optimizers {
        let _ = writeln!(
            out,
            "{:<9} test accuracy {}, final train loss {}",
            o.optimizer.name(),
            spread(
                &Spread {
                    median: o.test_accuracy.median.map(|x| 100.0 * x),
                    min: o.test_accuracy.min.map(|x| 100.0 * x),
                    max: o.test_accuracy.max.map(|x| 100.0 * x),
                },
                2,
                "%"
            ),
            spread(&o.final_train_loss, 4, ""),
        );
    }
    out
}

/// The first line of a table: model, data, budget, seeds and pair.
fn header(summary: &Summary) -> String {
    format!(
        "{} on {} ({} parameters), {} steps of {}, seeds {:?}, {} vs {}\n",
        summary.model,
        summary.dataset,
        summary.parameters,
        summary.steps,
        summary.batch_size,
        summary.seeds,
        summary.pair[0],
        summary.pair[1],
    )
}

/// The speed-up line: the median and range over the seeds that reached the target.
fn speedup_line(summary: &Summary, target: &str) -> String {
    let reached = summary.speedup_per_seed.iter().flatten().count();
    format!(
        "speed-up of {} over {} (steps to {}'s final {target}): {} over {reached} of {} seeds\n",
        summary.pair[1],
        summary.pair[0],
        summary.pair[0],
        spread(&summary.speedup, 2, "x"),
        summary.seeds.len(),
    )
}

/// What a validation-judged comparison is measured against.
#[derive(Debug, Clone, Copy)]
enum Yardstick {
    /// A language model's bigram validation loss (nats per token).
    Bigram(f64),
    /// A masked autoencoder's mean-patch validation loss.
    MeanPatch(f64),
}

/// The table of a language-model or masked-autoencoder comparison: per run the
/// validation loss (and bits per character, or the fraction of the mean-patch
/// baseline), the steps to the base run's final validation loss and the throughput
/// (tokens or samples per second); then the yardstick and the speed-up.
fn validation_table(summary: &Summary, yardstick: Yardstick) -> String {
    let (relative, throughput) = match yardstick {
        Yardstick::Bigram(_) => ("val bpc", "tokens/s"),
        Yardstick::MeanPatch(_) => ("x base", "samples/s"),
    };
    let mut out = header(summary);
    let _ = writeln!(
        out,
        "{:<9} {:>4} {:>10} {:>9} {:>9} {:>13} {:>6} {:>8} {:>9}",
        "optimizer",
        "seed",
        "train loss",
        "val loss",
        relative,
        "steps to base",
        "kept",
        "wall s",
        throughput
    );
    for r in &summary.runs {
        let (relative, throughput) = match yardstick {
            Yardstick::Bigram(_) => (r.val_bits_per_char, r.tokens_per_s),
            Yardstick::MeanPatch(base) => (r.val_loss.map(|v| v / base), r.samples_per_s),
        };
        let _ = writeln!(
            out,
            "{:<9} {:>4} {:>10} {:>9} {:>9} {:>13} {:>6} {:>8} {:>9}",
            r.optimizer.name(),
            r.seed,
            num(Some(r.final_train_loss), 4),
            num(r.val_loss, 4),
            num(relative, 4),
            r.steps_to_base_final_loss
                .map_or("not reached".into(), |s| s.to_string()),
            num(r.mean_kept_fraction, 3),
            num(Some(r.wall_s), 1),
            num(throughput, 0),
        );
    }
    let _ = match yardstick {
        Yardstick::Bigram(bigram) => writeln!(
            out,
            "bigram yardstick (fitted on the training split): val loss {} nats/token, {} bits/char",
            num(Some(bigram), 4),
            num(Some(crate::data::text::nats_to_bits(bigram)), 4),
        ),
        Yardstick::MeanPatch(base) => writeln!(
            out,
            "mean-patch baseline (the mean training patch for every removed patch): val loss {}",
            num(Some(base), 4),
        ),
    };
    out.push_str(&speedup_line(summary, "validation loss"));
    out
}

/// Writes `metrics.csv` and `summary.json` into `dir` (created if missing),
/// atomically.
pub fn write_reports(summary: &Summary, dir: &Path) -> Result<()> {
    create_dir(dir)?;
    crate::file_io::write_atomic(&dir.join("metrics.csv"), metrics_csv(summary).as_bytes())?;
    crate::file_io::write_atomic(&dir.join("summary.json"), summary_json(summary).as_bytes())
}

/// Writes one run's history as CSV (the per-step columns of `metrics.csv` without
/// optimizer and seed), for `coptim train`.
pub fn history_csv(history: &History, window: usize) -> String {
    let mut out = String::from(
        "step,train_loss,smoothed_train_loss,train_accuracy,lr,kept_fraction,step_ms,test_loss,test_accuracy\n",
    );
    write_history_rows(&mut out, "", history, window);
    out
}

/// Creates `dir` and its parents.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })
}
