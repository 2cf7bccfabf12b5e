//! The chart of a sweep (`sweep.png` and `sweep.svg`): final validation loss against
//! learning rate for both optimizers (mean over seeds, with each seed's point and
//! the range), and the validation loss curves of the runs at the tuned rates.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Result;
use crate::train::chart::{DrawResult, FAMILY, chart_error, color, register_font};
use crate::train::sweep::SweepSummary;

/// Chart size in pixels.
const SIZE: (u32, u32) = (1200, 480);

/// Draws the chart into `sweep.png` and `sweep.svg` in `dir`.
pub fn write_charts(summary: &SweepSummary, dir: &Path) -> Result<()> {
    register_font()?;
    let png = dir.join("sweep.png");
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        draw(summary, &root).map_err(|e| chart_error(&png, e))?;
        root.present().map_err(|e| chart_error(&png, e))?;
    }
    let svg = dir.join("sweep.svg");
    let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
    draw(summary, &root).map_err(|e| chart_error(&svg, e))?;
    root.present().map_err(|e| chart_error(&svg, e))
}

fn draw<DB: DrawingBackend>(
    summary: &SweepSummary,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let title = format!(
        "{} vs {}: {} on {}, {} steps of {}, {} seeds per rate",
        summary.pair[0],
        summary.pair[1],
        summary.model,
        summary.dataset,
        summary.steps,
        summary.batch_size,
        summary.seeds.len()
    );
    let root = root.titled(&title, (FAMILY, 20))?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    draw_sensitivity(summary, &left)?;
    draw_curves(summary, &right)
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

/// Final validation loss against learning rate (both log scales).
fn draw_sensitivity<DB: DrawingBackend>(
    summary: &SweepSummary,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let lrs = log_range(summary.runs.iter().map(|r| r.lr));
    let losses = log_range(summary.runs.iter().filter_map(|r| r.val_loss));
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(
            "final validation loss vs learning rate (dots: seeds)",
            (FAMILY, 16),
        )
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(lrs.log_scale(), losses.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("peak learning rate")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .y_desc("validation loss")
        .y_label_formatter(&loss_label)
        .label_style((FAMILY, 12))
        .draw()?;
    for (which, o) in summary.pair.iter().enumerate() {
        let c = color(which);
        let grid = &summary.grid[o.name()];
        let mean: Vec<(f64, f64)> = grid
            .iter()
            .filter_map(|p| p.mean_val_loss.map(|l| (p.lr, l)))
            .collect();
        chart
            .draw_series(LineSeries::new(mean, c.stroke_width(2)))?
            .label(o.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        let bars = grid
            .iter()
            .filter_map(|p| match (p.val_loss.min, p.val_loss.max) {
                (Some(lo), Some(hi)) => Some(PathElement::new(
                    [(p.lr, lo), (p.lr, hi)],
                    c.stroke_width(1),
                )),
                _ => None,
            });
        chart.draw_series(bars)?;
        let dots = (summary.runs.iter())
            .filter(|r| r.optimizer == *o)
            .filter_map(|r| r.val_loss.map(|l| Circle::new((r.lr, l), 3, c.filled())));
        chart.draw_series(dots)?;
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

/// Validation loss against step of the runs at the tuned rates (drop-in runs at
/// another rate drawn thinner).
fn draw_curves<DB: DrawingBackend>(
    summary: &SweepSummary,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let steps = summary.steps.max(2) as f64;
    let losses = log_range(
        summary
            .curves
            .iter()
            .flat_map(|c| c.3.evals.iter().map(|e| e.loss)),
    );
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(
            "validation loss at the tuned rates (thin: drop-in)",
            (FAMILY, 16),
        )
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..steps, losses.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("validation loss")
        .y_label_formatter(&loss_label)
        .label_style((FAMILY, 12))
        .draw()?;
    for (o, lr, _, history) in &summary.curves {
        let which = usize::from(*o == summary.pair[1]);
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
