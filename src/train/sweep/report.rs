//! Reports of a sweep: the text table, `grid.csv` (one row per run), `metrics.csv`
//! (every step of the runs at the tuned rates and of the drop-in runs) and
//! `sweep.json`.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::file_io::write_atomic;
use crate::train::compare::Spread;
use crate::train::metrics::History;
use crate::train::report::{CSV_HEADER, create_dir, num, write_history_rows};
use crate::train::sweep::{SpeedupReport, SweepSummary};

/// The header of `grid.csv`.
pub const GRID_CSV_HEADER: &str = "optimizer,lr,seed,val_loss,final_train_loss,test_loss,test_accuracy,diverged,mean_kept_fraction,wall_s";

/// `grid.csv`: one row per run.
pub fn grid_csv(summary: &SweepSummary) -> String {
    let mut out = format!("{GRID_CSV_HEADER}\n");
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in &summary.runs {
        let m = &r.measured;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            m.optimizer,
            r.lr,
            m.seed,
            opt(m.val_loss),
            opt(m.final_train_loss),
            opt(m.test_loss),
            opt(m.test_accuracy),
            r.diverged.is_some(),
            opt(m.mean_kept_fraction),
            m.wall_s
        );
    }
    out
}

/// `metrics.csv`: `optimizer,lr,` then compare's per-step columns, for every run
/// at a tuned rate and every drop-in run (the test columns hold the validation
/// evaluations).
pub fn metrics_csv(summary: &SweepSummary) -> String {
    let mut out = format!("optimizer,lr,{CSV_HEADER}\n");
    let window = History::smoothing_window(summary.setup.steps);
    for (o, lr, seed, history) in &summary.curves {
        write_history_rows(&mut out, &format!("{o},{lr},{seed},"), history, window);
    }
    out
}

/// The summary as pretty JSON.
pub fn summary_json(summary: &SweepSummary) -> String {
    serde_json::to_string_pretty(summary).expect("the summary serializes")
}

/// Writes `grid.csv`, `metrics.csv` and `sweep.json` into `dir`, atomically.
pub fn write_reports(summary: &SweepSummary, dir: &Path) -> Result<()> {
    create_dir(dir)?;
    write_atomic(&dir.join("grid.csv"), grid_csv(summary).as_bytes())?;
    write_atomic(&dir.join("metrics.csv"), metrics_csv(summary).as_bytes())?;
    write_atomic(&dir.join("sweep.json"), summary_json(summary).as_bytes())
}

fn spread(s: &Spread, scale: f64, decimals: usize) -> String {
    match (s.median, s.min, s.max) {
        (Some(m), Some(lo), Some(hi)) => format!(
            "{} ({}-{})",
            num(Some(m * scale), decimals),
            num(Some(lo * scale), decimals),
            num(Some(hi * scale), decimals)
        ),
        _ => "-".into(),
    }
}

/// The text `coptim sweep` prints: the grid (mean validation loss per rate), the
/// tuned runs and both speed-ups.
pub fn table(summary: &SweepSummary) -> String {
    let [base, other] = summary.setup.pair;
    let mut out = format!(
        "{} on {}, {} steps of {}, seeds {:?}, {base} vs {other}\n{}\n",
        summary.setup.model,
        summary.setup.dataset,
        summary.setup.steps,
        summary.setup.batch_size,
        summary.setup.seeds,
        summary.split
    );
    let _ = writeln!(
        out,
        "mean validation loss per learning rate (median and range over seeds; * tuned):"
    );
    for o in summary.setup.pair {
        let grid = &summary.grid[o.name()];
        let tuned = summary.tuned_lr[o.name()];
        for p in grid {
            let mark = if p.lr == tuned { "*" } else { " " };
            let diverged = match p.diverged {
                0 => String::new(),
                n => format!(", {n} diverged"),
            };
            let _ = writeln!(
                out,
                "{:<9} lr {:<9.3e}{mark} {:>8}  {}{diverged}",
                o.name(),
                p.lr,
                num(p.mean_val_loss, 4),
                spread(&p.val_loss, 1.0, 4)
            );
        }
    }
    let accuracy = summary.test_metric == "accuracy";
    for t in &summary.tuned {
        let test = match accuracy {
            true => format!("test accuracy {}%", spread(&t.test_accuracy, 100.0, 2)),
            false => format!(
                "test loss {} ({})",
                spread(&t.test_loss, 1.0, 4),
                summary.test_loss_unit
            ),
        };
        let steps: Vec<String> = (t.steps_to_base_final_val_loss.iter())
            .map(|s| s.map_or("not reached".into(), |s| s.to_string()))
            .collect();
        let _ = writeln!(
            out,
            "{:<9} at lr {:.3e}: val loss {}, {test}, steps to {base}'s final val loss {}",
            t.optimizer.name(),
            t.lr,
            spread(&t.val_loss, 1.0, 4),
            steps.join(", ")
        );
    }
    out.push_str(&speedup_line(
        summary,
        "at the tuned rates",
        &summary.speedup,
    ));
    out.push_str(&speedup_line(
        summary,
        "drop-in, both at the base's tuned rate",
        &summary.speedup_at_base_lr,
    ));
    let _ = writeln!(out, "({})", summary.bootstrap);
    out
}

fn speedup_line(summary: &SweepSummary, what: &str, s: &SpeedupReport) -> String {
    let ci = s
        .interval
        .ci95
        .map_or("-".into(), |[lo, hi]| format!("[{lo:.2}, {hi:.2}]"));
    let never = match s.not_reached {
        0 => String::new(),
        n => format!("; not reached in {n} (counted at the budget, an upper bound)"),
    };
    format!(
        "speed-up of {} ({what}: {:.3e} vs {:.3e}): {}x, 95% CI {ci} over {} seeds{never}\n",
        summary.setup.pair[1],
        s.base_lr,
        s.lr,
        num(s.interval.median, 2),
        s.per_seed.len()
    )
}
