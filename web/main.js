// The demo page: checks for WebGPU, loads the wasm module and the MNIST files,
// wires the controls, charts, drawing pad (image models), side-by-side text
// samples (the language model) and reconstructions (the masked autoencoder) to a
// Trainer, and exposes
// `window.coptimDemo` for automation (see the README).

import { LineChart } from './chart.js';
import { blank, paintImages } from './masked.js';
import { DrawingPad } from './pad.js';
import { Trainer, isLanguageModel, isReconstructing, presetLr } from './trainer.js';

const $ = (id) => document.getElementById(id);
const COLORS = ['#2f6fdb', '#e0671b'];
const percent = (v) => (v == null ? '–' : `${(100 * v).toFixed(1)}%`);

/** The first non-empty reason why this browser cannot run WebGPU, or null. */
function missingWebGpu() {
  if (!window.isSecureContext) {
    return 'This page was not opened in a secure context (https:// or http://127.0.0.1), so WebGPU is unavailable.';
  }
  if (!('gpu' in navigator)) {
    return 'This browser does not expose WebGPU (navigator.gpu is missing).';
  }
  return null;
}

function showNoWebGpu(reason) {
  $('no-webgpu-reason').textContent = `${reason} The page trains its models on your GPU through WebGPU.`;
  $('no-webgpu').hidden = false;
  $('app').hidden = true;
  $('adapter').textContent = 'No WebGPU adapter';
  $('adapter').dataset.state = 'none';
}

/** The sides of the page, one per run, in the order of the trainer's runs. */
const SIDES = ['a', 'b'];

/**
 * Stamps out one run panel per side from the `run-panel` template, ahead of the
 * progress panel; each field gets the id `<field>-<side>` (e.g. `loss-a`).
 */
function buildRunPanels() {
  const template = $('run-panel');
  const runs = $('runs');
  const panels = SIDES.map((side) => {
    const panel = template.content.firstElementChild.cloneNode(true);
    panel.classList.add(`run-${side}`);
    for (const field of panel.querySelectorAll('[data-field]')) {
      field.id = `${field.dataset.field}-${side}`;
    }
    return panel;
  });
  runs.prepend(...panels);
}

function readOptions() {
  return {
    pair: $('pair').value,
    model: $('model').value,
    lr: Number($('lr').value),
    batchSize: Number($('batch').value),
    seed: Number($('seed').value),
  };
}

function writeOptions(options) {
  $('pair').value = options.pair;
  $('model').value = options.model;
  $('lr').value = String(options.lr);
  $('batch').value = String(options.batchSize);
  $('seed').value = String(options.seed);
}

/** Exponential moving average of a loss curve (one value per step), as [step, value] points. */
function smooth(values, alpha = 0.1) {
  let avg;
  return values.map((v, i) => {
    avg = avg === undefined ? v : avg + alpha * (v - avg);
    return [i + 1, avg];
  });
}

class Page {
  constructor(trainer) {
    this.trainer = trainer;
    this.charts = {
      loss: new LineChart($('chart-loss'), { series: this.series(), yMin: 0 }),
      acc: new LineChart($('chart-acc'), { series: this.series(), yMax: 1, format: percent }),
      val: new LineChart($('chart-val'), { series: this.series(), yMin: 0 }),
      kept: new LineChart($('chart-kept'), { series: this.series(), yMax: 1, format: percent }),
      speed: new LineChart($('chart-speed'), {
        series: [{ label: 'steps / s', color: '#5d6773' }],
        yMin: 0,
      }),
    };
    this.pad = new DrawingPad($('pad'), () => this.predict());
    this.prediction = null;
    /** A masked autoencoder's reconstructions of the drawing, and the seed of its mask. */
    this.padView = null;
    this.maskSeed = 1;
    /** The step of the test reconstructions on screen. */
    this.paintedStep = null;
    this.predicting = false;
    this.predictAgain = false;
    this.dirty = true;

    $('start').addEventListener('click', () => this.run(() => this.trainer.start()));
    $('pause').addEventListener('click', () => this.run(() => this.trainer.pause()));
    $('reset').addEventListener('click', () => this.run(() => this.reset(readOptions())));
    // The preset's learning rate for the chosen model and pair (and its batch size).
    const fillDefaults = () => {
      $('lr').value = String(presetLr(trainer.presets, $('model').value, $('pair').value));
    };
    $('pair').addEventListener('change', fillDefaults);
    $('model').addEventListener('change', () => {
      fillDefaults();
      $('batch').value = String(trainer.presets.find((p) => p.name === $('model').value).batchSize);
    });
    $('clear').addEventListener('click', () => {
      this.pad.clear();
      this.prediction = null;
      this.padView = null;
      this.showPrediction();
    });
    $('new-mask').addEventListener('click', () => this.newMask());
    trainer.onUpdate = () => {
      this.dirty = true;
    };
    trainer.onError = (err) => this.fail(err);
    const frame = () => {
      if (this.dirty) this.render();
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  series() {
    const names = this.trainer.optimizers();
    return names.map((label, i) => ({ label, color: COLORS[i] }));
  }

  /** Runs a UI action, reporting failures on the page instead of losing them. */
  async run(action) {
    try {
      await action();
    } catch (err) {
      this.fail(err);
    }
  }

  fail(err) {
    console.error(err);
    $('state').textContent = `Error: ${err.message ?? err}`;
    $('state').classList.add('error');
  }

  async reset(options) {
    await this.trainer.reset(options);
    writeOptions(this.trainer.options);
    for (const chart of [this.charts.loss, this.charts.acc, this.charts.val, this.charts.kept]) {
      chart.series = this.series();
    }
    this.showModelKind();
    this.prediction = null;
    this.predict();
    this.dirty = true;
  }

  /** Draws a new random mask for the drawing and reconstructs it again. */
  newMask() {
    this.maskSeed += 1;
    return this.predict();
  }

  /**
   * Classifies the drawing with both models, or has both masked autoencoders
   * reconstruct it under the current mask; one request in flight at a time.
   */
  async predict() {
    if (this.predicting) {
      this.predictAgain = true;
      return;
    }
    const pixels = this.pad.pixels();
    if (!pixels) {
      this.prediction = null;
      this.padView = null;
      this.showPrediction();
      return;
    }
    this.predicting = true;
    try {
      if (this.trainer.isReconstructing()) {
        const maskSeed = this.maskSeed;
        this.padView = { maskSeed, ...(await this.trainer.reconstructDrawing(pixels, maskSeed)) };
      } else {
        this.prediction = await this.trainer.predict(pixels);
      }
      this.showPrediction();
    } catch (err) {
      this.fail(err);
    } finally {
      this.predicting = false;
    }
    if (this.predictAgain) {
      this.predictAgain = false;
      this.predict();
    }
  }

  showPrediction() {
    const names = this.trainer.optimizers();
    if (this.trainer.isReconstructing()) {
      this.showPadReconstruction(names);
      return;
    }
    SIDES.forEach((side, r) => {
      $(`pred-name-${side}`).textContent = names[r];
      const bars = $(`pred-${side}`);
      const run = this.prediction?.runs[r];
      bars.replaceChildren();
      for (let d = 0; d < 10; d++) {
        const p = run ? run.probabilities[d] : 0;
        const label = document.createElement('span');
        label.textContent = String(d);
        const bar = document.createElement('span');
        bar.className = 'bar';
        const fill = document.createElement('span');
        fill.style.width = `${(100 * p).toFixed(1)}%`;
        bar.append(fill);
        const value = document.createElement('span');
        value.className = 'p';
        value.textContent = run ? `${(100 * p).toFixed(0)}%` : '';
        bars.append(label, bar, value);
      }
      $(`guess-${side}`).textContent = run
        ? `It's a ${run.digit} (${(100 * run.probabilities[run.digit]).toFixed(0)}% sure)`
        : '–';
    });
  }

  /** The masked drawing and both reconstructions of it. */
  showPadReconstruction(names) {
    const view = this.padView;
    const canvases = [$('pad-masked'), $('pad-recon-a'), $('pad-recon-b')];
    ['masked', 0, 1].forEach((which, i) => (view ? paintImages(canvases[i], view, which) : blank(canvases[i])));
    SIDES.forEach((side, r) => {
      $(`pad-name-${side}`).textContent = names[r];
    });
  }

  /** The masked test digits and both runs' reconstructions, when newer than those shown. */
  showReconstructions() {
    const view = this.trainer.reconstructions;
    const names = this.trainer.optimizers();
    SIDES.forEach((side, r) => {
      $(`recon-name-${side}`).textContent = names[r];
    });
    if (!view || view.step === this.paintedStep) return;
    this.paintedStep = view.step;
    paintImages($('recon-masked'), view, 'masked');
    SIDES.forEach((side, r) => paintImages($(`recon-${side}`), view, r));
    const hidden = view.removed.filter(Boolean).length / view.count;
    $('recon-info').textContent =
      `After step ${view.step}: ${hidden} of ${view.removed.length / view.count} patches of each test digit ` +
      'hidden (the same fixed masks throughout); the visible patches are shown as given.';
  }

  /**
   * Shows what fits the model: the drawing pad and test accuracy for an image
   * classifier, the samples and validation loss for a language model, the
   * reconstructions and test reconstruction loss for a masked autoencoder.
   */
  showModelKind() {
    const text = this.trainer.isText();
    const masked = this.trainer.isReconstructing();
    $('pad-section').hidden = text;
    $('predictions').hidden = masked;
    $('pad-recon').hidden = !masked;
    $('pad-hint').textContent = masked
      ? 'Draw large and centered; both models fill in the hidden patches as you draw.'
      : 'Draw large and centered; both models answer as you draw.';
    $('figure-acc').hidden = text || masked;
    $('samples').hidden = !text;
    $('recon').hidden = !masked;
    $('figure-val').hidden = !(text || masked);
    $('val-caption').textContent = masked
      ? 'Test reconstruction loss (masked patches, 2,000 held-out digits, fixed masks)'
      : 'Validation loss (nats per token, Julius Caesar and Macbeth)';
    this.paintedStep = null;
    SIDES.forEach((side) => {
      $(`acc-label-${side}`).textContent = text ? 'next-char accuracy' : 'test accuracy';
      $(`val-label-${side}`).textContent = text ? 'validation loss' : 'test loss';
    });
  }

  showSamples() {
    const samples = this.trainer.samples;
    const names = this.trainer.optimizers();
    SIDES.forEach((side, r) => {
      $(`sample-name-${side}`).textContent = names[r];
      $(`sample-${side}`).textContent = samples ? samples.prompt + samples.runs[r].text : '–';
    });
    $('sample-info').textContent = samples
      ? `After step ${samples.step}: ${samples.runs[0].text.length} characters, temperature ${samples.temperature}, sampling seed ${samples.seed}.`
      : 'The samples appear after the first seconds of training.';
  }

  render() {
    this.dirty = false;
    const t = this.trainer;
    const s = t.status();
    const curves = s.runs.map((run) => smooth(run.loss));
    SIDES.forEach((side, r) => {
      const run = s.runs[r];
      $(`name-${side}`).textContent = run.optimizer;
      $(`loss-${side}`).textContent = curves[r].length ? curves[r].at(-1)[1].toFixed(4) : '–';
      $(`acc-${side}`).textContent = t.isReconstructing() ? 'no labels' : percent(run.testAccuracy);
      $(`val-${side}`).textContent = run.validationLoss == null ? '–' : run.validationLoss.toFixed(3);
      $(`kept-${side}`).textContent = run.keptFraction == null ? 'no caution' : percent(run.keptFraction);
    });
    $('step').textContent = String(s.step);
    $('speed').textContent = s.stepsPerSecond ? s.stepsPerSecond.toFixed(1) : '–';
    $('elapsed').textContent = `${s.trainingSeconds.toFixed(1)} s`;
    $('start').disabled = !s.ready || s.running;
    $('pause').disabled = !s.running;
    $('reset').disabled = !s.ready;
    if (!$('state').classList.contains('error')) {
      $('state').textContent = !s.ready
        ? 'Preparing…'
        : s.running
          ? 'Training…'
          : s.step > 0
            ? 'Paused.'
            : 'Ready: press Start.';
    }

    this.charts.loss.update(curves);
    this.charts.acc.update(t.history.map((h) => h.accuracy));
    this.charts.val.update(t.history.map((h) => h.heldOutLoss));
    if (t.isText()) this.showSamples();
    if (t.isReconstructing()) this.showReconstructions();
    this.charts.kept.update(t.history.map((h) => h.kept));
    this.charts.speed.update([t.speedHistory]);
  }
}

async function main() {
  buildRunPanels();
  const reason = missingWebGpu();
  if (reason) {
    showNoWebGpu(reason);
    return;
  }
  let trainer;
  try {
    trainer = await Trainer.load(new URL('./pkg/', import.meta.url));
  } catch (err) {
    if (err.noAdapter) {
      showNoWebGpu(err.message);
      return;
    }
    throw err;
  }
  $('adapter').textContent = `WebGPU adapter: ${trainer.adapter}`;
  $('adapter').dataset.state = 'ok';
  for (const { pair, label } of trainer.pairs) {
    $('pair').add(new Option(label, pair));
  }
  for (const preset of trainer.presets.filter((p) => p.browser)) {
    const kind = isLanguageModel(trainer.presets, preset.name)
      ? 'language model'
      : isReconstructing(trainer.presets, preset.name)
        ? 'masked autoencoder'
        : preset.name;
    $('model').add(new Option(`${kind}: ${preset.description}`, preset.name));
  }
  writeOptions(trainer.options);
  const page = new Page(trainer);
  await page.reset(readOptions());

  window.coptimDemo = {
    /** Starts (or resumes) training both runs. */
    start: () => trainer.start(),
    /**
     * Pauses training; resolves once the runs are idle, their test accuracy is fresh
     * and the page shows it (rendered now, not at the next animation frame).
     */
    pause: async () => {
      await trainer.pause();
      page.render();
    },
    /**
     * Rebuilds both runs from `options` ({ pair, model, lr, batchSize, seed }, each
     * optional: the current value is kept, except that a new pair or model without
     * an `lr` gets the preset's learning rate for them, and a new model without a
     * `batchSize` its preset's batch size, as the page's selectors do).
     */
    reset: (options = {}) => {
      const next = { ...trainer.options, ...options };
      const fresh = (options.pair || options.model) && options.lr === undefined;
      const lr = fresh ? { lr: presetLr(trainer.presets, next.model, next.pair) } : {};
      const batch =
        options.model && options.batchSize === undefined
          ? { batchSize: trainer.presets.find((p) => p.name === next.model).batchSize }
          : {};
      return page.reset({ ...next, ...lr, ...batch });
    },
    /**
     * A snapshot: { step, running, adapter, runs: [{ optimizer, loss, testAccuracy,
     * validationLoss, keptFraction }], ... } (validationLoss: the held-out loss, nats
     * per token for a language model).
     */
    status: () => trainer.status(),
    /**
     * A language model's latest samples: { step, prompt, seed, temperature, runs:
     * [{ optimizer, text }] } (the text after the prompt), or null before the first.
     */
    samples: () => trainer.samples,
    /** The drawing pad's latest classification: { runs: [{ optimizer, digit, probabilities }] } or null. */
    prediction: () => page.prediction,
    /**
     * A masked autoencoder's latest reconstructions of the test digits under their
     * fixed masks: { step, height, width, patch, count, removed, images, runs: [a, b] }
     * (`removed`: per digit and patch; `images` and each run: count * 784 values in
     * [0, 1], a run's the visible patches as given and the hidden ones predicted), or null.
     */
    reconstructions: () => trainer.reconstructions,
    /**
     * A masked autoencoder's reconstructions of the drawing: the same fields for one
     * image plus `maskSeed`, the seed of its random mask; null without a drawing.
     */
    padReconstruction: () => page.padView,
    /** Draws a new random mask for the drawing (the "New mask" button); resolves once asked. */
    newMask: () => page.newMask(),
    /**
     * Runs the embedding check on the page's GPU device (the bindings' `embedCheck`:
     * the caller's own buffers, per-step learning rates, one readback record per step,
     * against the f64 reference): `options` is { optimizer, lr, weightDecay, steps,
     * seed, fault }; resolves to its report, rejects with the error for a bad input.
     */
    embedCheck: async (options) => JSON.parse(await trainer.wasm.embedCheck(trainer.gpu, JSON.stringify(options))),
  };
  document.dispatchEvent(new Event('coptim-ready'));
}

main().catch((err) => {
  console.error(err);
  $('state').textContent = `Error: ${err.message ?? err}`;
  $('state').classList.add('error');
});
