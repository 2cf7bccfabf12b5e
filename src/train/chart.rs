//! The loss-curve chart of a comparison (`curves.png` and `curves.svg`): the
//! smoothed training loss of every run on a log scale, and the kept fraction of the
//! cautious runs.

use std::path::Path;
use std::sync::Once;

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::train::compare::Summary;

/// The bundled font (DejaVu Sans; see `assets/README.md`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family the bundled font is registered under.
pub(crate) const FAMILY: &str = "sans-serif";
/// Chart size in pixels.
const SIZE: (u32, u32) = (1200, 480);
const BASE_COLOR: RGBColor = RGBColor(31, 119, 180);
const CAUTIOUS_COLOR: RGBColor = RGBColor(214, 39, 40);

/// Registers the bundled font under [`FAMILY`] (once).
pub(crate) fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| Error::InvalidConfig("the bundled chart font is invalid".into()));
    });
    result
}

/// A drawing error while writing `path`, as an I/O error on it.
pub(crate) fn chart_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// A chart drawn the same way on every backend.
pub(crate) trait Chart {
    /// Draws the whole chart on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

impl Chart for Summary {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        draw(self, root)
    }
}

/// Draws `chart` into `STEM.png` and `STEM.svg` in `dir`.
pub(crate) fn write_png_and_svg(chart: &impl Chart, dir: &Path, stem: &str) -> Result<()> {
    register_font()?;
    let png = dir.join(format!("{stem}.png"));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        chart.draw(&root).map_err(|e| chart_error(&png, e))?;
        root.present().map_err(|e| chart_error(&png, e))?;
    }
    let svg = dir.join(format!("{stem}.svg"));
    let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
    chart.draw(&root).map_err(|e| chart_error(&svg, e))?;
    root.present().map_err(|e| chart_error(&svg, e))
}

/// Draws the chart into `curves.png` and `curves.svg` in `dir`.
pub fn write_charts(summary: &Summary, dir: &Path) -> Result<()> {
    write_png_and_svg(summary, dir, "curves")
}

/// Draws the legend of `chart`'s labelled series (top right, framed).
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

pub(crate) type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(summary: &Summary, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(&title(summary), (FAMILY, 20))?;
    let (left, right) = root.split_horizontally(SIZE.0 * 3 / 5);
    draw_loss_panel(summary, &left)?;
    draw_kept_panel(summary, &right)
}

fn title(summary: &Summary) -> String {
    let seeds = summary.setup.seeds.len();
    let plural = if seeds == 1 { "" } else { "s" };
    format!("{}, {seeds} seed{plural}", summary.setup.headline())
}

pub(crate) fn color(which: usize) -> RGBColor {
    if which == 0 {
        BASE_COLOR
    } else {
        CAUTIOUS_COLOR
    }
}

/// One run's curve: 0 (base) or 1 (cautious), and its (step, loss) points.
type Curve = (usize, Vec<(f64, f64)>);

/// The smoothed training loss of every run, with the loss range to plot (positive,
/// finite points only).
fn loss_curves(summary: &Summary) -> (Vec<Curve>, (f64, f64)) {
    let curves: Vec<Curve> = summary
        .runs
        .iter()
        .map(|r| {
            let which = usize::from(r.measured.optimizer == summary.setup.pair[1]);
            let smoothed = r.history.smoothed_loss(summary.loss_window);
            let points = r
                .history
                .steps
                .iter()
                .zip(smoothed)
                .filter(|(_, l)| l.is_finite() && *l > 0.0)
                .map(|(m, l)| (m.step as f64, l))
                .collect();
            (which, points)
        })
        .collect();
    let losses = curves.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1));
    let (lo, hi) = losses.fold((f64::INFINITY, 0.0f64), |(lo, hi), l| {
        (lo.min(l), hi.max(l))
    });
    let range = if lo.is_finite() && hi > 0.0 {
        (lo, hi)
    } else {
        (0.01, 10.0)
    };
    (curves, range)
}

/// Smoothed training loss on a log scale, one line per run.
fn draw_loss_panel<DB: DrawingBackend>(
    summary: &Summary,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let steps = summary.setup.steps.max(2) as f64;
    let (curves, (lo, hi)) = loss_curves(summary);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(
            format!(
                "training loss (trailing mean of {} steps)",
                summary.loss_window
            ),
            (FAMILY, 16),
        )
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(1.0..steps, (lo * 0.9..hi * 1.1).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("loss")
        .y_label_formatter(&|y| match *y {
            y if y >= 1.0 => format!("{y:.1}"),
            y if y >= 0.1 => format!("{y:.2}"),
            y => format!("{y:.3}"),
        })
        .label_style((FAMILY, 12))
        .draw()?;
    let mut labelled = [false, false];
    for (which, pts) in curves {
        let series = chart.draw_series(LineSeries::new(pts, color(which).stroke_width(2)))?;
        if !labelled[which] {
            labelled[which] = true;
            let c = color(which);
            series
                .label(summary.setup.pair[which].name())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        }
    }
    draw_legend(&mut chart)
}

/// The kept fraction of the cautious runs.
fn draw_kept_panel<DB: DrawingBackend>(
    summary: &Summary,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let steps = summary.setup.steps.max(2) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(
            format!("{}: fraction of coordinates kept", summary.setup.pair[1]),
            (FAMILY, 16),
        )
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(1.0..steps, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("kept fraction")
        .label_style((FAMILY, 12))
        .draw()?;
    for r in summary.runs_of(summary.setup.pair[1]) {
        let pts: Vec<(f64, f64)> = r
            .history
            .steps
            .iter()
            .filter_map(|m| m.kept_fraction.map(|k| (m.step as f64, k)))
            .collect();
        chart.draw_series(LineSeries::new(pts, CAUTIOUS_COLOR.stroke_width(1)))?;
    }
    Ok(())
}
