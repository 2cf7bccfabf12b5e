// The demo page: checks for WebGPU, loads the wasm module and the MNIST files,
// wires the controls, charts, drawing pad (image models) and side-by-side text
// samples (the language model) to a Trainer, and exposes
// `window.coptimDemo` for automation (see the README).

import { LineChart } from './chart.js';
import { DrawingPad } from './pad.js';
import { Trainer, isLanguageModel, presetLr } from './trainer.js';

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
      this.showPrediction();
    });
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

  /** Classifies the drawing with both models; one request in flight at a time. */
  async predict() {
    if (this.predicting) {
      this.predictAgain = true;
      return;
    }
    const pixels = this.pad.pixels();
    if (!pixels) {
      this.prediction = null;
      this.showPrediction();
      return;
    }
    this.predicting = true;
    try {
      this.prediction = await this.trainer.predict(pixels);
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

  /**
   * Shows what fits the model: the drawing pad and test accuracy for an image model,
   * the samples and validation loss for a language model.
   */
  showModelKind() {
    const text = this.trainer.isText();
    $('pad-section').hidden = text;
    $('figure-acc').hidden = text;
    $('samples').hidden = !text;
    $('figure-val').hidden = !text;
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
      $(`acc-${side}`).textContent = percent(run.testAccuracy);
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
    const kind = isLanguageModel(trainer.presets, preset.name) ? 'language model' : preset.name;
    $('model').add(new Option(`${kind}: ${preset.description}`, preset.name));
  }
  writeOptions(trainer.options);
  const page = new Page(trainer);
  await page.reset(readOptions());

  window.coptimDemo = {
    /** Starts (or resumes) training both runs. */
    start: () => trainer.start(),
    /** Pauses training; resolves once the runs are idle and their test accuracy is fresh. */
    pause: () => trainer.pause(),
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
