//! The reconstruction picture of a masked-autoencoder comparison
//! (`reconstructions.png`): the same test images, masked, and both optimizers'
//! reconstructions of them (the first seed's runs), one column per image.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Result;
use crate::train::ModelSpec;
use crate::train::chart::{FAMILY, chart_error, register_font};
use crate::train::compare::Summary;
use crate::train::reconstruction::Reconstructions;

/// Screen pixels per image pixel.
const SCALE: u32 = 4;
/// Space between images, in pixels.
const GAP: u32 = 8;
/// Width of the row labels on the left.
const LABEL_WIDTH: u32 = 130;
/// Height of the title above the images.
const TITLE_HEIGHT: u32 = 44;
/// Height of the caption below the images.
const CAPTION_HEIGHT: u32 = 52;
/// Rows of images: the originals, the masked inputs, and one per run.
const ROWS: u32 = 4;
/// The colour of removed patches.
const REMOVED: RGBColor = RGBColor(128, 128, 128);

/// The picture's size in pixels for `count` images of `height x width`.
pub fn picture_size(count: usize, height: usize, width: usize) -> (u32, u32) {
    let (h, w) = (height as u32 * SCALE, width as u32 * SCALE);
    (
        LABEL_WIDTH + count as u32 * (w + GAP) + GAP,
        TITLE_HEIGHT + ROWS * (h + GAP) + CAPTION_HEIGHT,
    )
}

/// Draws `summary`'s reconstructions into `reconstructions.png` in `dir` and returns
/// its path; `None` (nothing written) for a model that does not reconstruct.
pub fn write_reconstructions(summary: &Summary, dir: &Path) -> Result<Option<PathBuf>> {
    let Some(shown) = &summary.reconstructions else {
        return Ok(None);
    };
    register_font()?;
    let [_, h, w] = shown.shape;
    let png = dir.join("reconstructions.png");
    {
        let size = picture_size(shown.count(), h, w);
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw(summary, shown, &root).map_err(|e| chart_error(&png, e))?;
        root.present().map_err(|e| chart_error(&png, e))?;
    }
    Ok(Some(png))
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(
    summary: &Summary,
    shown: &Reconstructions,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let seed = summary.setup.seeds.first().copied().unwrap_or(0);
    let title = format!(
        "{} on {}: masked test images and both reconstructions (seed {seed}, after {} steps)",
        summary.setup.model, summary.setup.dataset, summary.setup.steps
    );
    root.draw_text(
        &title,
        &(FAMILY, 18).into_font().color(&BLACK),
        (GAP as i32, 12),
    )?;
    let labels = [
        "original".to_string(),
        "masked".to_string(),
        summary.setup.pair[0].label(),
        summary.setup.pair[1].label(),
    ];
    let [_, h, _] = shown.shape;
    let row_height = h as u32 * SCALE + GAP;
    for (row, label) in labels.iter().enumerate() {
        let top = TITLE_HEIGHT + row as u32 * row_height;
        let y = (top + row_height / 2 - 8) as i32;
        root.draw_text(
            label,
            &(FAMILY, 15).into_font().color(&BLACK),
            (GAP as i32, y),
        )?;
        for image in 0..shown.count() {
            draw_image(root, shown, image, row, top)?;
        }
    }
    let bottom = (TITLE_HEIGHT + ROWS * row_height + 6) as i32;
    for (i, line) in caption(summary, shown).iter().enumerate() {
        let style = (FAMILY, 13).into_font().color(&BLACK);
        root.draw_text(line, &style, (GAP as i32, bottom + 20 * i as i32))?;
    }
    Ok(())
}

/// The caption: what grey means and in which units the predictions are shown.
fn caption(summary: &Summary, shown: &Reconstructions) -> [String; 2] {
    let m = shown.masks.masking();
    let norm_pix = matches!(&summary.config.model, ModelSpec::Mae(mae) if mae.norm_pix_loss);
    let units = match norm_pix {
        true => {
            "predictions of normalized patches are shown with each true patch's mean and \
             variance (as the MAE demo notebook does)"
        }
        false => "predictions are shown in pixel units",
    };
    [
        format!(
            "Grey: the {} of {} patches removed from each image (the fixed validation masks).",
            m.patches() - m.kept,
            m.patches()
        ),
        format!(
            "Reconstructions: the visible patches as given, the removed ones predicted; {units}."
        ),
    ]
}

/// Image `image` of picture row `row` (0: original, 1: masked, 2 and 3: the runs)
/// with its top edge at `top`.
fn draw_image<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    shown: &Reconstructions,
    image: usize,
    row: usize,
    top: u32,
) -> DrawResult<DB> {
    let [c, h, w] = shown.shape;
    let per_image = c * h * w;
    let pixels = match row {
        0 | 1 => &shown.images,
        r => &shown.runs[r - 2],
    };
    let pixels = &pixels[image * per_image..(image + 1) * per_image];
    let left = LABEL_WIDTH + image as u32 * (w as u32 * SCALE + GAP);
    for i in 0..h * w {
        let color = match row == 1 && shown.is_removed(image, i) {
            true => REMOVED,
            false => pixel_color(pixels, i, c, h * w),
        };
        let x = (left + (i % w) as u32 * SCALE) as i32;
        let y = (top + (i / w) as u32 * SCALE) as i32;
        let corner = SCALE as i32;
        root.draw(&Rectangle::new(
            [(x, y), (x + corner, y + corner)],
            color.filled(),
        ))?;
    }
    Ok(())
}

/// The colour of pixel `i` of an image with `channels` planes of `plane` values in
/// `[0, 1]`: RGB from the first three planes, else grey from the first.
fn pixel_color(pixels: &[f32], i: usize, channels: usize, plane: usize) -> RGBColor {
    let level = |ch: usize| (pixels[ch * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8;
    match channels {
        3.. => RGBColor(level(0), level(1), level(2)),
        _ => RGBColor(level(0), level(0), level(0)),
    }
}
