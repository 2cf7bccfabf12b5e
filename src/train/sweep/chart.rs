//! The chart of a sweep (`sweep.png` and `sweep.svg`): final validation loss against
//! learning rate for both optimizers (mean over seeds, with each seed's point and
//! the range), and the validation loss curves of the runs at the tuned rates.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::Result;
use crate::train::chart::{Chart, DrawResult, FAMILY, color, draw_legend, write_png_and_svg};
use crate::train::sweep::SweepSummary;

/// Draws the chart into `sweep.png` and `sweep.svg` in `dir`.
pub fn write_charts(summary: &SweepSummary, dir: &Path) -> Result<()> {
    write_png_and_svg(summary, dir, "sweep")
}

impl Chart for SweepSummary {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let title = format!(
            "{}, {} seeds per rate",
            self.setup.headline(),
            self.setup.seeds.len()
        );
        let root = root.titled(&title, (FAMILY, 20))?;
        let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
        draw_sensitivity(self, &left)?;
        draw_curves(self, &right)
    }
}

/// The range of `values` (positive, finite), widened a little, for a log axis.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() && hi > 0.0 {
        lo * 0.85..hi * 1.15
    } else {
        0.01..10.0
    }
}

fn loss_label(y: &f64) -> String {
    match *y {
        y if y >= 1.0 => format!("{y:.1}"),
        y if y >= 0.1 => format!("{y:.2}"),
        y => format!("{y:.3}"),
    }
}

/// The chart of one panel: the validation loss (log scale over `y`) against `x`.
type Panel<'a, DB, X> = ChartContext<'a, DB, Cartesian2d<X, LogCoord<f64>>>;

/// A horizontal axis: its range, its description and its label formatter.
type XAxis<'f, X> = (X, &'f str, &'f dyn Fn(&f64) -> String);

/// A panel with a log-scale validation-loss axis over `y` and `x` across.
fn panel<'a, DB, X>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    (x, x_desc, x_label): XAxis<'_, X>,
    y: std::ops::Range<f64>,
) -> std::result::Result<Panel<'a, DB, X>, DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(caption, (FAMILY, 16))
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y.log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(x_label)
        .y_desc("validation loss")
        .y_label_formatter(&loss_label)
        .label_style((FAMILY, 12))
        .draw()?;
    Ok(chart)
}

/// Final validation loss against learning rate (both log scales).
fn draw_sensitivity<DB: DrawingBackend>(
    summary: &SweepSummary,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let lrs: LogCoord<f64> = log_range(summary.runs.iter().map(|r| r.lr))
        .log_scale()
        .into();
    let losses = log_range(summary.runs.iter().filter_map(|r| r.measured.val_loss));
    // Log-axis ticks fall on 1..9 x 10^k: label 1, 2 and 5 only, so they stay apart.
    let x_label = |x: &f64| {
        let label = format!("{x:.0e}");
        let keep = ["1e", "2e", "5e"].iter().any(|p| label.starts_with(p));
        if keep { label } else { String::new() }
    };
    let caption = "final validation loss vs learning rate (dots: seeds)";
    let mut chart = panel(area, caption, (lrs, "peak learning rate", &x_label), losses)?;
    for (which, o) in summary.setup.pair.iter().enumerate() {
        let c = color(which);
        let grid = &summary.grid[o.name()];
        let mean: Vec<(f64, f64)> = (grid.iter())
            .filter_map(|p| p.mean_val_loss.map(|l| (p.lr, l)))
            .collect();
        chart
            .draw_series(LineSeries::new(mean, c.stroke_width(2)))?
            .label(o.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        let ranges = grid
            .iter()
            .filter_map(|p| Some((p.lr, p.val_loss.min?, p.val_loss.max?)))
            .map(|(lr, lo, hi)| PathElement::new([(lr, lo), (lr, hi)], c.stroke_width(1)));
        chart.draw_series(ranges)?;
        let dots = (summary.runs.iter())
            .filter(|r| r.measured.optimizer == *o)
            .filter_map(|r| {
                r.measured
                    .val_loss
                    .map(|l| Circle::new((r.lr, l), 3, c.filled()))
            });
        chart.draw_series(dots)?;
    }
    draw_legend(&mut chart)
}

/// Validation loss against step of the runs at the tuned rates (drop-in runs at
/// another rate drawn thinner).
fn draw_curves<DB: DrawingBackend>(
    summary: &SweepSummary,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let steps: RangedCoordf64 = (0.0..summary.setup.steps.max(2) as f64).into();
    let evals = summary.curves.iter().flat_map(|c| c.3.evals.iter());
    let losses = log_range(evals.map(|e| e.loss));
    let x_label = |x: &f64| format!("{x:.0}");
    let caption = "validation loss at the tuned rates (thin: drop-in)";
    let mut chart = panel(area, caption, (steps, "step", &x_label), losses)?;
    for (o, lr, _, history) in &summary.curves {
        let which = usize::from(*o == summary.setup.pair[1]);
        let tuned = summary.tuned_lr[o.name()] == *lr;
        let style = color(which).stroke_width(if tuned { 2 } else { 1 });
        let pts: Vec<(f64, f64)> = (history.evals.iter())
            .filter(|e| e.loss.is_finite() && e.loss > 0.0)
            .map(|e| (e.step as f64, e.loss))
            .collect();
        chart.draw_series(LineSeries::new(pts, style))?;
    }
    Ok(())
}
