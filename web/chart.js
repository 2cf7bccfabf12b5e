// A small line chart drawn on a <canvas>: a few series of (x, y) points, axes with
// round-number ticks, and a legend. No dependencies.

const FONT = '11px system-ui, sans-serif';
const MARGIN = { left: 46, right: 12, top: 22, bottom: 24 };

/** Round-number tick values covering [lo, hi], about `count` of them. */
function ticks(lo, hi, count) {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

export class LineChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} options
   * @param {{label: string, color: string}[]} options.series
   * @param {number} [options.yMin] fixed lower bound (otherwise from the data)
   * @param {number} [options.yMax] fixed upper bound (otherwise from the data)
   * @param {(y: number) => string} [options.format] tick label of a y value
   */
  constructor(canvas, { series, yMin, yMax, format = (y) => String(+y.toFixed(3)) }) {
    this.canvas = canvas;
    this.series = series;
    this.yMin = yMin;
    this.yMax = yMax;
    this.format = format;
    this.width = canvas.width;
    this.height = canvas.height;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(this.width * dpr);
    canvas.height = Math.round(this.height * dpr);
    this.ctx = canvas.getContext('2d');
    this.ctx.scale(dpr, dpr);
    this.data = series.map(() => []);
  }

  /** Replaces the points of every series (`points[i]` is an array of [x, y]) and redraws. */
  update(points) {
    this.data = points;
    this.draw();
  }

  draw() {
    const { ctx, width, height } = this;
    const all = this.data.flat().filter(([, y]) => Number.isFinite(y));
    const xMax = Math.max(1, ...all.map(([x]) => x));
    let lo = this.yMin ?? Math.min(...all.map(([, y]) => y));
    let hi = this.yMax ?? Math.max(...all.map(([, y]) => y));
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
    if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
    const pad = this.yMin === undefined || this.yMax === undefined ? (hi - lo) * 0.05 : 0;
    if (this.yMin === undefined) lo -= pad;
    if (this.yMax === undefined) hi += pad;

    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = height - MARGIN.top - MARGIN.bottom;
    const px = (x) => MARGIN.left + (x / xMax) * plotW;
    const py = (y) => MARGIN.top + (1 - (y - lo) / (hi - lo)) * plotH;

    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;
    ctx.lineWidth = 1;

    // Grid and tick labels.
    ctx.strokeStyle = '#e6e9ed';
    ctx.fillStyle = '#5d6773';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const y of ticks(lo, hi, 4)) {
      ctx.beginPath();
      ctx.moveTo(MARGIN.left, py(y));
      ctx.lineTo(width - MARGIN.right, py(y));
      ctx.stroke();
      ctx.fillText(this.format(y), MARGIN.left - 5, py(y));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const x of ticks(0, xMax, 5)) {
      ctx.fillText(String(Math.round(x)), px(x), height - MARGIN.bottom + 6);
    }
    ctx.strokeStyle = '#9aa3ad';
    ctx.beginPath();
    ctx.moveTo(MARGIN.left, MARGIN.top);
    ctx.lineTo(MARGIN.left, height - MARGIN.bottom);
    ctx.lineTo(width - MARGIN.right, height - MARGIN.bottom);
    ctx.stroke();

    // Series, clipped to the plot area.
    ctx.save();
    ctx.beginPath();
    ctx.rect(MARGIN.left, MARGIN.top, plotW, plotH);
    ctx.clip();
    ctx.lineWidth = 1.75;
    ctx.lineJoin = 'round';
    this.data.forEach((points, i) => {
      ctx.strokeStyle = this.series[i].color;
      ctx.beginPath();
      let pen = false;
      for (const [x, y] of points) {
        if (!Number.isFinite(y)) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(px(x), py(y));
        else ctx.moveTo(px(x), py(y));
        pen = true;
      }
      ctx.stroke();
      if (points.length === 1) {
        const [x, y] = points[0];
        ctx.fillStyle = this.series[i].color;
        ctx.fillRect(px(x) - 2, py(y) - 2, 4, 4);
      }
    });
    ctx.restore();

    // Legend.
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    let lx = MARGIN.left + 4;
    this.series.forEach(({ label, color }, i) => {
      if (this.data[i]?.length === 0 && all.length > 0) return; // nothing to show for this one
      ctx.fillStyle = color;
      ctx.fillRect(lx, 7, 14, 3);
      ctx.fillStyle = '#1d232b';
      ctx.fillText(label, lx + 18, 9);
      lx += 28 + ctx.measureText(label).width;
    });
  }
}
