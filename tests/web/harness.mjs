// Shared by the browser tests: serves the built page and launches Debian's
// Chromium through playwright-core (no browser download), collecting page errors.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from '../../scripts/serve.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Screenshots of the tests land here. */
export const OUT_DIR = join(ROOT, 'target', 'web-e2e');

const BASE_ARGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Both are needed for WebGPU on Chromium's bundled SwiftShader (no GPU here). */
const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader'];

/**
 * Serves web/ and launches Chromium (with or without WebGPU); returns
 * `{ url, browser, close }`. Playwright gives every launch a fresh profile.
 */
export async function startBrowser({ webgpu }) {
  const wasm = join(ROOT, 'web', 'pkg', 'coptim_bg.wasm');
  if (webgpu) assert.ok(existsSync(wasm), `${wasm} is missing: run 'bash scripts/web.sh --build-only' first`);
  await mkdir(OUT_DIR, { recursive: true });
  const { server, url } = await serve(join(ROOT, 'web'), 0);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: webgpu ? [...BASE_ARGS, ...WEBGPU_ARGS] : BASE_ARGS,
  });
  const close = async () => {
    await browser.close();
    await new Promise((ok) => server.close(ok));
  };
  return { url, browser, close };
}

/**
 * Opens `url` in a new page and returns `{ page, errors }`, where `errors` collects
 * uncaught exceptions, console errors and failed requests as they happen.
 */
export async function openPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1180, height: 1000 } });
  const errors = [];
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console error: ${msg.text()}`);
  });
  page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  await page.goto(url);
  return { page, errors };
}

/** The mean of the numbers `xs`. */
export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Serves the page, opens it in a fresh Chromium (with or without WebGPU), runs
 * `body({ page, errors })`, then checks that the page logged no errors; closes the
 * browser and the server whether or not the body passed.
 */
export async function withPage({ webgpu }, body) {
  const { url, browser, close } = await startBrowser({ webgpu });
  try {
    const { page, errors } = await openPage(browser, url);
    await body({ page, errors });
    assert.deepEqual(errors, [], 'the page logged no errors');
  } finally {
    await close();
  }
}

/** Waits (up to a minute) until the demo page's bindings are ready. */
export async function demoReady(page) {
  await page.waitForFunction(() => window.coptimDemo?.status().ready, null, { timeout: 60_000 });
}

/** Starts the demo's runs and waits (up to `timeout` ms) until they reach `steps` steps; they keep running. */
export async function trainUntil(page, steps, timeout) {
  await page.evaluate(() => window.coptimDemo.start());
  await page.waitForFunction((n) => window.coptimDemo.status().step >= n, steps, {
    timeout,
    polling: 250,
  });
}

/**
 * Chooses the model whose selector label contains `label` through the page's
 * controls (which fill in its preset's learning rate and batch size), presses Reset
 * and waits for the new runs; returns the preset's name.
 */
export async function selectModel(page, label) {
  const name = await page.locator('#model option', { hasText: label }).getAttribute('value');
  await page.selectOption('#model', name);
  await page.click('#reset');
  await page.waitForFunction((n) => window.coptimDemo.status().options.model === n, name, { timeout: 60_000 });
  return name;
}

/** Draws a "7" on the drawing pad with the mouse. */
export async function drawSeven(page) {
  await page.locator('#pad').scrollIntoViewIfNeeded();
  const pad = await page.locator('#pad').boundingBox();
  const at = (x, y) => page.mouse.move(pad.x + pad.width * x, pad.y + pad.height * y, { steps: 8 });
  await at(0.28, 0.2);
  await page.mouse.down();
  await at(0.72, 0.2);
  await at(0.45, 0.85);
  await page.mouse.up();
}
