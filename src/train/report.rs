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
        let prefix = format!("{},{},", run.measured.optimizer, run.measured.seed);
        write_history_rows(&mut out, &prefix, &run.history, summary.loss_window);
    }
    out
}

/// Appends one CSV row per step of `history`, each starting with `prefix`: the
/// per-step columns of [`CSV_HEADER`] from `step` on.
pub(crate) fn write_history_rows(out: &mut String, prefix: &str, history: &History, window: usize) {
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

pub(crate) fn num(v: Option<f64>, decimals: usize) -> String {
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

/// A spread of fractions in percent.
fn percent(s: &Spread) -> Spread {
    let scale = |v: Option<f64>| v.map(|x| 100.0 * x);
    Spread {
        median: scale(s.median),
        min: scale(s.min),
        max: scale(s.max),
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
    // The headings, aligned as the rows' format below aligns its cells.
    out.push_str("optimizer seed  train loss  test acc steps to base   kept   wall s samples/s\n");
    for r in &summary.runs {
        let ([name, seed, loss], [steps, kept, wall]) = run_cells(r);
        let _ = writeln!(
            out,
            "{name:<9} {seed:>4} {loss:>11} {:>8}% {steps:>13} {kept:>6} {wall:>8} {:>9}",
            num(r.measured.test_accuracy.map(|a| 100.0 * a), 2),
            num(r.samples_per_s, 0),
        );
    }
    out.push_str(&speedup_line(summary, "train loss"));
    for o in &summary.optimizers {
        let _ = writeln!(
            out,
            "{:<9} test accuracy {}, final train loss {}",
            o.optimizer.name(),
            spread(&percent(&o.test_accuracy), 2, "%"),
            spread(&o.final_train_loss, 4, ""),
        );
    }
    out
}

/// The cells every run table has, formatted: first optimizer, seed and final train
/// loss; last the steps to the base run's final loss, the mean kept fraction and the
/// wall seconds.
fn run_cells(r: &RunResult) -> ([String; 3], [String; 3]) {
    let steps = r
        .steps_to_base_final_loss
        .map_or("not reached".into(), |s| s.to_string());
    (
        [
            r.measured.optimizer.name().to_string(),
            r.measured.seed.to_string(),
            num(r.measured.final_train_loss, 4),
        ],
        [
            steps,
            num(r.measured.mean_kept_fraction, 3),
            num(Some(r.measured.wall_s), 1),
        ],
    )
}

/// The first line of a table: model, data, budget, seeds and pair.
fn header(summary: &Summary) -> String {
    format!(
        "{} on {} ({} parameters), {} steps of {}, seeds {:?}, {} vs {}\n",
        summary.setup.model,
        summary.setup.dataset,
        summary.parameters,
        summary.setup.steps,
        summary.setup.batch_size,
        summary.setup.seeds,
        summary.setup.pair[0],
        summary.setup.pair[1],
    )
}

/// The speed-up line: the median and range over the seeds that reached the target.
fn speedup_line(summary: &Summary, target: &str) -> String {
    let reached = summary.speedup_per_seed.iter().flatten().count();
    format!(
        "speed-up of {} over {} (steps to {}'s final {target}): {} over {reached} of {} seeds\n",
        summary.setup.pair[1],
        summary.setup.pair[0],
        summary.setup.pair[0],
        spread(&summary.speedup, 2, "x"),
        summary.setup.seeds.len(),
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
    // The headings, aligned as the rows' format below aligns its cells.
    let _ = writeln!(
        out,
        "optimizer seed train loss  val loss {relative:>9} steps to base   kept   wall s {throughput:>8}"
    );
    for r in &summary.runs {
        let ([name, seed, loss], [steps, kept, wall]) = run_cells(r);
        let (relative, throughput) = match yardstick {
            Yardstick::Bigram(_) => (r.val_bits_per_char, r.tokens_per_s),
            Yardstick::MeanPatch(base) => (r.measured.val_loss.map(|v| v / base), r.samples_per_s),
        };
        let _ = writeln!(
            out,
            "{name:<9} {seed:>4} {loss:>10} {:>9} {:>9} {steps:>13} {kept:>6} {wall:>8} {:>8}",
            num(r.measured.val_loss, 4),
            num(relative, 4),
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
    out.push_str(&probe_lines(summary));
    out
}

/// Per optimizer, the linear probe's test accuracy over seeds (nothing without a
/// probe).
fn probe_lines(summary: &Summary) -> String {
    let mut out = String::new();
    for o in summary.optimizers.iter() {
        if o.probe_accuracy.median.is_none() {
            continue;
        }
        let _ = writeln!(
            out,
            "{:<9} linear probe test accuracy (frozen encoder, class token) {}",
            o.optimizer.name(),
            spread(&percent(&o.probe_accuracy), 2, "%"),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::compare::OptimizerSummary;
    use crate::train::{ModelSpec, OptimizerKind, PairSetup, RunMeasures, TrainConfig};

    fn spread(median: f64, min: f64, max: f64) -> Spread {
        Spread {
            median: Some(median),
            min: Some(min),
            max: Some(max),
        }
    }

    fn run(optimizer: OptimizerKind, seed: u64, reached: Option<u64>) -> RunResult {
        let (text, kept) = (
            seed == 1,
            (optimizer == OptimizerKind::C_ADAMW).then_some(0.4567),
        );
        RunResult {
            measured: RunMeasures {
                optimizer,
                seed,
                final_train_loss: Some(0.123456),
                test_accuracy: Some(0.96543),
                test_loss: Some(0.2),
                val_loss: text.then_some(1.98765),
                mean_kept_fraction: kept,
                wall_s: 12.345,
            },
            val_bits_per_char: text.then_some(2.8675),
            steps_to_base_final_loss: reached,
            median_step_ms: Some(3.0),
            samples_per_s: Some(5432.1),
            tokens_per_s: text.then_some(98765.4),
            probe_accuracy: None,
            history: History::default(),
        }
    }

    fn summary(bigram_val_loss: Option<f64>) -> Summary {
        let pair = [OptimizerKind::ADAMW, OptimizerKind::C_ADAMW];
        let optimizers = pair.map(|optimizer| OptimizerSummary {
            optimizer,
            lr: 3e-3,
            weight_decay: 0.01,
            final_train_loss: spread(0.12, 0.11, 0.13),
            test_accuracy: spread(0.965, 0.96, 0.97),
            wall_s: spread(12.0, 11.0, 13.0),
            samples_per_s: spread(5000.0, 4000.0, 6000.0),
            probe_accuracy: Spread::of(&[]),
        });
        Summary {
            setup: PairSetup {
                model: "mlp".into(),
                dataset: "mnist".into(),
                steps: 500,
                batch_size: 128,
                pair,
                seeds: vec![0, 1],
            },
            parameters: 203530,
            loss_window: 10,
            runs: vec![
                run(pair[0], 0, Some(500)),
                run(pair[1], 0, Some(410)),
                run(pair[0], 1, Some(500)),
                run(pair[1], 1, None),
            ],
            speedup: spread(1.22, 1.22, 1.22),
            speedup_per_seed: vec![Some(1.22), None],
            optimizers: optimizers.to_vec(),
            bigram_val_loss,
            baseline_val_loss: None,
            adapter: "llvmpipe".into(),
            config: TrainConfig::for_model(ModelSpec::default_mlp(), pair[0]),
            reconstructions: None,
        }
    }

    /// The image table, to the character.
    #[test]
    fn image_table_to_the_character() {
        let want = concat!(
            "mlp on mnist (203530 parameters), 500 steps of 128, seeds [0, 1], adamw vs c-adamw\n",
            "optimizer seed  train loss  test acc steps to base   kept   wall s samples/s\n",
            "adamw        0      0.1235    96.54%           500      -     12.3      5432\n",
            "c-adamw      0      0.1235    96.54%           410  0.457     12.3      5432\n",
            "adamw        1      0.1235    96.54%           500      -     12.3      5432\n",
            "c-adamw      1      0.1235    96.54%   not reached  0.457     12.3      5432\n",
            "speed-up of c-adamw over adamw (steps to adamw's final train loss): 1.22x (range 1.22-1.22) over 1 of 2 seeds\n",
            "adamw     test accuracy 96.50% (range 96.00-97.00), final train loss 0.1200 (range 0.1100-0.1300)\n",
            "c-adamw   test accuracy 96.50% (range 96.00-97.00), final train loss 0.1200 (range 0.1100-0.1300)\n",
        );
        assert_eq!(table(&summary(None)), want);
    }

    /// The language-model table, to the character.
    #[test]
    fn text_table_to_the_character() {
        let want = concat!(
            "mlp on mnist (203530 parameters), 500 steps of 128, seeds [0, 1], adamw vs c-adamw\n",
            "optimizer seed train loss  val loss   val bpc steps to base   kept   wall s tokens/s\n",
            "adamw        0     0.1235         -         -           500      -     12.3        -\n",
            "c-adamw      0     0.1235         -         -           410  0.457     12.3        -\n",
            "adamw        1     0.1235    1.9876    2.8675           500      -     12.3    98765\n",
            "c-adamw      1     0.1235    1.9876    2.8675   not reached  0.457     12.3    98765\n",
            "bigram yardstick (fitted on the training split): val loss 2.5000 nats/token, 3.6067 bits/char\n",
            "speed-up of c-adamw over adamw (steps to adamw's final validation loss): 1.22x (range 1.22-1.22) over 1 of 2 seeds\n",
        );
        assert_eq!(table(&summary(Some(2.5))), want);
    }
}
