// Paints a masked autoencoder's views (the bindings' `reconstructTest` and
// `reconstructDrawing` JSON): images side by side, white ink on black, the removed
// patches of a masked input in grey.

/** Screen pixels per image pixel. */
const SCALE = 3;
/** White space between images. */
const GAP = 4;
/** The grey of removed patches. */
const REMOVED = 128;

/** Whether pixel `i` (row-major) of image `n` of `view` lies in a removed patch. */
export function isRemoved(view, n, i) {
  const grid = view.width / view.patch;
  const [y, x] = [Math.floor(i / view.width), i % view.width];
  return view.removed[n * grid * grid + Math.floor(y / view.patch) * grid + Math.floor(x / view.patch)];
}

/**
 * Paints every image of `view` into `canvas`: the masked inputs for `which` =
 * 'masked', else run `which`'s reconstructions (0: base, 1: cautious).
 */
export function paintImages(canvas, view, which) {
  const { height: h, width: w, count } = view;
  const cell = w * SCALE + GAP;
  canvas.width = count * cell - GAP;
  canvas.height = h * SCALE;
  const ctx = canvas.getContext('2d');
  const out = ctx.createImageData(canvas.width, canvas.height);
  out.data.fill(255);
  const masked = which === 'masked';
  const pixels = masked ? view.images : view.runs[which];
  for (let n = 0; n < count; n++) {
    for (let y = 0; y < h * SCALE; y++) {
      for (let x = 0; x < w * SCALE; x++) {
        const i = Math.floor(y / SCALE) * w + Math.floor(x / SCALE);
        const level = masked && isRemoved(view, n, i) ? REMOVED : Math.round(255 * pixels[n * h * w + i]);
        const o = 4 * (y * canvas.width + n * cell + x);
        out.data.fill(level, o, o + 3);
      }
    }
  }
  ctx.putImageData(out, 0, 0);
}

/** Blanks `canvas` (no view yet). */
export function blank(canvas) {
  canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
}
