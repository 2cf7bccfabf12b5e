// The drawing pad: the visitor draws a digit with a mouse, pen or finger, and the
// pad turns the drawing into a 28x28 image prepared the way MNIST digits were
// (the ink's bounding box scaled to fit 20x20, then centered by its center of mass).

const SIDE = 28;
const BOX = 20;

export class DrawingPad {
  /**
   * @param {HTMLCanvasElement} canvas the visible pad (white ink on black)
   * @param {() => void} onChange called after each stroke segment (at most once a frame)
   */
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { willReadFrequently: true });
    this.onChange = onChange;
    this.drawing = false;
    this.pending = false;
    this.small = document.createElement('canvas');
    this.small.width = SIDE;
    this.small.height = SIDE;
    this.smallCtx = this.small.getContext('2d', { willReadFrequently: true });
    this.clear();

    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.drawing = true;
      this.last = this.point(e);
      this.stroke(this.last);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (this.drawing) this.stroke(this.point(e));
    });
    for (const type of ['pointerup', 'pointercancel']) {
      canvas.addEventListener(type, () => {
        this.drawing = false;
      });
    }
  }

  /** Erases the pad. */
  clear() {
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.empty = true;
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) / rect.width) * this.canvas.width,
      y: ((event.clientY - rect.top) / rect.height) * this.canvas.height,
    };
  }

  stroke(to) {
    const { ctx } = this;
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = this.canvas.width / 13;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(this.last.x, this.last.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    this.last = to;
    this.empty = false;
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.onChange();
      });
    }
  }

  /**
   * The drawing as MNIST pixels: a Float32Array of 28 * 28 values in [0, 1]
   * (row-major, 1 = ink), or null when the pad is empty.
   */
  pixels() {
    if (this.empty) return null;
    const { width, height } = this.canvas;
    const ink = this.ctx.getImageData(0, 0, width, height).data;
    let [x0, y0, x1, y1] = [width, height, -1, -1];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (ink[(y * width + x) * 4] > 32) {
          x0 = Math.min(x0, x);
          x1 = Math.max(x1, x);
          y0 = Math.min(y0, y);
          y1 = Math.max(y1, y);
        }
      }
    }
    if (x1 < 0) return null;
    const [w, h] = [x1 - x0 + 1, y1 - y0 + 1];
    const scale = BOX / Math.max(w, h);
    const [sw, sh] = [w * scale, h * scale];

    // First pass: box centered; then shift so the center of mass is at the middle.
    const render = (dx, dy) => {
      const c = this.smallCtx;
      c.fillStyle = '#000';
      c.fillRect(0, 0, SIDE, SIDE);
      c.imageSmoothingEnabled = true;
      c.imageSmoothingQuality = 'high';
      c.drawImage(this.canvas, x0, y0, w, h, dx, dy, sw, sh);
      const rgba = c.getImageData(0, 0, SIDE, SIDE).data;
      const out = new Float32Array(SIDE * SIDE);
      for (let i = 0; i < out.length; i++) out[i] = rgba[i * 4] / 255;
      return out;
    };
    const [cx0, cy0] = [(SIDE - sw) / 2, (SIDE - sh) / 2];
    const first = render(cx0, cy0);
    let [mass, mx, my] = [0, 0, 0];
    first.forEach((v, i) => {
      mass += v;
      mx += v * (i % SIDE);
      my += v * Math.floor(i / SIDE);
    });
    if (mass === 0) return first;
    const shiftX = Math.round((SIDE - 1) / 2 - mx / mass);
    const shiftY = Math.round((SIDE - 1) / 2 - my / mass);
    return render(cx0 + shiftX, cy0 + shiftY);
  }
}
