// Drives the wasm module: two runs trained in chunks of steps, periodic evaluation
// on the held-out set, drawing-pad predictions (image models) or side-by-side text
// samples (language models), and the histories the charts show.
// Every GPU call is awaited, so the page's main thread stays free while the GPU works.

/** Wall time one training chunk should take; the chunk size adapts to it. */
const CHUNK_TARGET_MS = 150;
const MAX_CHUNK = 32;
/** Evaluation takes at most about a fifth of the time, and not more often than this. */
const MIN_EVAL_INTERVAL_MS = 2000;
const MIN_EVAL_STEPS = 10;
/** Steps per second are measured over this much recent wall time. */
const SPEED_WINDOW_MS = 3000;
/**
 * A language model's two runs continue this prompt with the same sampling seed (the
 * run's seed) every few seconds, and masked autoencoders reconstruct the shown test
 * digits as often: at most a fifth of the time goes to either.
 */
export const SAMPLE_PROMPT = 'ROMEO:\n';
const SAMPLE = { length: 60, temperature: 0.8, topK: null };
const MIN_SAMPLE_INTERVAL_MS = 4000;
/** A masked autoencoder's reconstructions of this many test digits refresh every few seconds. */
export const SHOWN_DIGITS = 8;

const MNIST_FILES = [
  'train-images-idx3-ubyte.gz',
  'train-labels-idx1-ubyte.gz',
  't10k-images-idx3-ubyte.gz',
  't10k-labels-idx1-ubyte.gz',
];
/** The bundled Shakespeare (data/shakespeare/), fetched when the language model is first chosen. */
const TEXT_FILES = ['train.txt', 'validation.txt'];

/**
 * The learning rate of the optimizer pair `pair` (its plain member: 'adamw', 'lion', 'nadamw', ...) on the
 * model preset called `model`, from the crate's preset table.
 */
export function presetLr(presets, model, pair) {
  const preset = presets.find((p) => p.name === model);
  if (!preset) throw new Error(`unknown model preset ${model}`);
  return preset.optimizers[pair].lr;
}

/** The first preset offered on the page, with AdamW's learning rate and the preset's batch size. */
function defaultOptions(presets) {
  const preset = presets.find((p) => p.browser);
  return { pair: 'adamw', model: preset.name, lr: preset.optimizers.adamw.lr, batchSize: preset.batchSize, seed: 0 };
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not fetch ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Whether the preset called `model` is a language model (trains on the bundled text). */
export function isLanguageModel(presets, model) {
  return presets.find((p) => p.name === model)?.model.kind === 'llama';
}

/** Whether the preset called `model` is a masked autoencoder (reconstructs masked digits). */
export function isReconstructing(presets, model) {
  return presets.find((p) => p.name === model)?.model.kind === 'mae';
}

export class Trainer {
  /**
   * Loads the wasm module and the MNIST files from `pkgUrl` and opens the GPU.
   * Rejects with an error whose `noAdapter` is true when WebGPU has no adapter.
   */
  static async load(pkgUrl) {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      const err = new Error('WebGPU is present, but the browser offered no GPU adapter (it may be disabled or blocklisted).');
      err.noAdapter = true;
      throw err;
    }
    const info = adapter.info ?? {};
    const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
    const fallback = info.isFallbackAdapter || adapter.isFallbackAdapter ? ' (software fallback adapter)' : '';
    const wasm = await import(new URL('coptim.js', pkgUrl));
    const [files] = await Promise.all([
      Promise.all(MNIST_FILES.map((name) => fetchBytes(new URL(`mnist/${name}`, pkgUrl)))),
      wasm.default(),
    ]);
    const data = wasm.MnistData.parse(...files);
    const gpu = await wasm.openGpu();
    return new Trainer(wasm, gpu, data, `${name || 'unnamed adapter'}${fallback}`, pkgUrl);
  }

  constructor(wasm, gpu, data, adapter, pkgUrl) {
    this.wasm = wasm;
    this.gpu = gpu;
    this.data = data;
    this.pkgUrl = pkgUrl;
    /** The language model's texts (a `TextData`), once fetched. */
    this.text = null;
    this.adapter = adapter;
    /** The crate's model presets (`src/train/presets.rs`), as the bindings' `presets()` returns them. */
    this.presets = JSON.parse(wasm.presets());
    /** The optimizer pairs (`presets::pairs`): [{ pair: 'adamw', label: 'AdamW vs C-AdamW' }, ...]. */
    this.pairs = JSON.parse(wasm.pairs());
    this.defaults = defaultOptions(this.presets);
    this.options = { ...this.defaults };
    this.comparison = null;
    this.queue = Promise.resolve();
    this.running = false;
    this.loop = null;
    this.onUpdate = () => {};
    this.onError = (err) => console.error(err);
    this.clear();
  }

  clear() {
    this.step = 0;
    this.chunk = 1;
    this.trainingSeconds = 0;
    this.losses = [[], []];
    this.accuracy = [null, null];
    this.heldOutLoss = [null, null];
    this.kept = [null, null];
    this.history = [0, 1].map(() => ({ accuracy: [], heldOutLoss: [], kept: [] }));
    this.samples = null;
    /** A masked autoencoder's latest reconstructions of the test digits (`reconstructions()`). */
    this.reconstructions = null;
    this.lastSample = { step: 0, end: 0, ms: 0 };
    this.speedHistory = [];
    this.recent = [];
    this.lastEval = { step: 0, end: 0, ms: 0 };
  }

  /** Runs `call(comparison)` after every earlier call has settled: one GPU call at a time. */
  exclusive(call) {
    const comparison = this.comparison;
    const result = this.queue.then(() => call(comparison));
    this.queue = result.catch(() => {});
    return result;
  }

  /** Whether the current runs are language models. */
  isText() {
    return isLanguageModel(this.presets, this.options.model);
  }

  /** Whether the current runs are masked autoencoders. */
  isReconstructing() {
    return isReconstructing(this.presets, this.options.model);
  }

  /** The names of the two optimizers, e.g. ['AdamW', 'C-AdamW']. */
  optimizers() {
    return this.comparison ? this.comparison.optimizers() : ['AdamW', 'C-AdamW'];
  }

  /** The language model's texts, fetched from the page's own files on first use. */
  async loadText() {
    if (!this.text) {
      const [train, validation] = await Promise.all(
        TEXT_FILES.map((name) => fetchBytes(new URL(`shakespeare/${name}`, this.pkgUrl))),
      );
      this.text = this.wasm.TextData.parse(train, TEXT_FILES[0], validation, TEXT_FILES[1]);
    }
    return this.text;
  }

  /** Rebuilds both runs (same seed, same initial weights, same batches) from `options`. */
  async reset(options) {
    await this.pause({ evaluate: false });
    const next = { ...this.defaults, ...options };
    const json = JSON.stringify(next);
    const comparison = isLanguageModel(this.presets, next.model)
      ? this.wasm.Comparison.createText(this.gpu, await this.loadText(), json)
      : this.wasm.Comparison.create(this.gpu, this.data, json);
    const old = this.comparison;
    this.queue.then(() => old?.free());
    this.comparison = comparison;
    this.options = next;
    this.clear();
    if (this.isReconstructing()) {
      // The untrained models' reconstructions; this also compiles the inference graph.
      this.evaluateReconstructions().catch((err) => this.onError(err));
    } else if (!this.isText()) {
      // Compile the one-image inference graph now, so the drawing pad answers quickly.
      this.exclusive((c) => c.predict(new Float32Array(784))).catch((err) => this.onError(err));
    }
    this.onUpdate();
  }

  /** Starts or resumes training. */
  start() {
    if (this.running || !this.comparison) return;
    this.running = true;
    this.loop = this.trainLoop().catch((err) => {
      this.running = false;
      this.onError(err);
    });
    this.onUpdate();
  }

  /**
   * Stops training; resolves once idle, after a final evaluation (and, for a language
   * model, fresh samples) unless told not to.
   */
  async pause({ evaluate = true } = {}) {
    this.running = false;
    await this.loop;
    this.loop = null;
    if (evaluate && this.comparison && this.step > this.lastEval.step) await this.evaluate();
    if (evaluate && this.comparison && this.step > this.lastSample.step) await this.showcase();
    this.onUpdate();
  }

  async trainLoop() {
    while (this.running) {
      const begin = performance.now();
      const report = JSON.parse(await this.exclusive((c) => c.train(this.chunk)));
      const end = performance.now();
      this.record(report, begin, end);
      const sinceEval = end - this.lastEval.end;
      if (
        this.step - this.lastEval.step >= MIN_EVAL_STEPS &&
        sinceEval >= Math.max(MIN_EVAL_INTERVAL_MS, 4 * this.lastEval.ms)
      ) {
        await this.evaluate();
        this.trainingSeconds += this.lastEval.ms / 1000;
      }
      const sinceSample = performance.now() - this.lastSample.end;
      if (sinceSample >= Math.max(MIN_SAMPLE_INTERVAL_MS, 4 * this.lastSample.ms) && (await this.showcase())) {
        this.trainingSeconds += this.lastSample.ms / 1000;
      }
      this.onUpdate();
    }
  }

  record(report, begin, end) {
    const ms = end - begin;
    report.loss.forEach((losses, r) => this.losses[r].push(...losses));
    this.step += report.steps;
    this.trainingSeconds += ms / 1000;
    report.kept.forEach((k, r) => {
      this.kept[r] = k;
      if (k != null) this.history[r].kept.push([this.step, k]);
    });
    this.recent.push({ end, ms, steps: report.steps });
    while (this.recent.length > 1 && end - this.recent[0].end > SPEED_WINDOW_MS) this.recent.shift();
    const windowMs = this.recent.reduce((sum, c) => sum + c.ms, 0);
    const windowSteps = this.recent.reduce((sum, c) => sum + c.steps, 0);
    this.speedHistory.push([this.step, (1000 * windowSteps) / windowMs]);
    // Aim for CHUNK_TARGET_MS per chunk: larger chunks read back less often.
    const perStep = ms / report.steps;
    this.chunk = Math.max(1, Math.min(MAX_CHUNK, Math.round(CHUNK_TARGET_MS / perStep)));
  }

  async evaluate() {
    const begin = performance.now();
    const result = JSON.parse(await this.exclusive((c) => c.evaluate()));
    const end = performance.now();
    this.lastEval = { step: this.step, end, ms: end - begin };
    result.accuracy.forEach((acc, r) => {
      this.accuracy[r] = acc;
      this.history[r].accuracy.push([this.step, acc]);
    });
    result.loss.forEach((loss, r) => {
      this.heldOutLoss[r] = loss;
      this.history[r].heldOutLoss.push([this.step, loss]);
    });
  }

  /**
   * What the runs show besides their metrics, timed in `lastSample`: a language
   * model's samples or masked autoencoders' reconstructions; resolves to whether
   * the model has any.
   */
  async showcase() {
    if (this.isText()) await this.sample();
    else if (this.isReconstructing()) await this.evaluateReconstructions();
    else return false;
    return true;
  }

  /** Both masked autoencoders reconstruct the same SHOWN_DIGITS masked test digits. */
  async evaluateReconstructions() {
    const [step, begin] = [this.step, performance.now()];
    const view = JSON.parse(await this.exclusive((c) => c.reconstructTest(SHOWN_DIGITS)));
    const end = performance.now();
    this.lastSample = { step, end, ms: end - begin };
    this.reconstructions = { step, ...view };
    this.onUpdate();
  }

  /**
   * Both masked autoencoders' reconstructions of 28x28 pixels under the random mask
   * drawn from `maskSeed`: the bindings' view (one image).
   */
  async reconstructDrawing(pixels, maskSeed) {
    return JSON.parse(await this.exclusive((c) => c.reconstructDrawing(pixels, maskSeed)));
  }

  /**
   * Both language models continue SAMPLE_PROMPT with the same sampling seed (the
   * library's `generate`, through the bindings' `sample`).
   */
  async sample() {
    const begin = performance.now();
    const options = { ...SAMPLE, prompt: SAMPLE_PROMPT, seed: this.options.seed };
    const result = JSON.parse(await this.exclusive((c) => c.sample(JSON.stringify(options))));
    const end = performance.now();
    this.lastSample = { step: this.step, end, ms: end - begin };
    const names = this.optimizers();
    this.samples = {
      step: this.step,
      prompt: options.prompt,
      seed: options.seed,
      temperature: options.temperature,
      runs: names.map((optimizer, r) => ({ optimizer, text: result.samples[r] })),
    };
  }

  /** Classifies 28x28 pixels with both models: { runs: [{ optimizer, digit, probabilities }] }. */
  async predict(pixels) {
    const names = this.optimizers();
    const probs = await this.exclusive((c) => c.predict(pixels));
    return {
      runs: names.map((optimizer, r) => {
        const probabilities = Array.from(probs.subarray(10 * r, 10 * r + 10));
        const digit = probabilities.indexOf(Math.max(...probabilities));
        return { optimizer, digit, probabilities };
      }),
    };
  }

  /** The snapshot `window.coptimDemo.status()` returns. */
  status() {
    const names = this.optimizers();
    const speed = this.speedHistory.at(-1);
    return {
      ready: this.comparison !== null,
      step: this.step,
      running: this.running,
      adapter: this.adapter,
      options: { ...this.options },
      stepsPerSecond: speed ? speed[1] : null,
      trainingSeconds: this.trainingSeconds,
      runs: names.map((optimizer, r) => ({
        optimizer,
        loss: this.losses[r].slice(),
        testAccuracy: this.accuracy[r],
        validationLoss: this.heldOutLoss[r],
        keptFraction: this.kept[r],
      })),
    };
  }
}
