// The embedding flow in the browser (issue "Embed anywhere"): on the page's WebGPU
// device, coptim steps tensors inside the caller's own buffers (odd offsets, one
// interleaved buffer), several steps with the caller's learning rate recorded into
// one encoder of the caller's, one readback record per step through the async path,
// checked against the f64 reference; bad inputs give a clear status or error. Also:
// the pair selector lists every registered pair, and a LAMB pair trains at its preset
// rate (the trust-ratio family's).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoReady, mean, withPage } from './harness.mjs';

const STEPS = 6;
/** The check's tensors (src/wasm/embed_check.rs): w [7, 5], b [5], 40 splats' position, opacity, color. */
const NUMEL = [35, 5, 120, 40, 120];
/** The tolerance the check must name: tests/embed_views.rs's, never looser. */
const MAX_TOLERANCE = 1e-6;

/** Asserts every record of `report` against the reference; returns the steps it skipped. */
function checkRecords(report, label) {
  assert.equal(report.steps.length, STEPS, `${label}: one record per step`);
  assert.deepEqual(report.numel, NUMEL, `${label}: tensor sizes`);
  const skipped = [];
  report.steps.forEach((s, i) => {
    const at = `${label} step ${i + 1}`;
    assert.equal(s.step, i + 1, `${at}: records in step order`);
    assert.equal(s.skipped[0], s.skipped[1], `${at}: found_inf as the reference decides`);
    assert.equal(s.lr[0], s.lr[1], `${at}: the record carries the caller's learning rate`);
    if (s.skipped[0]) {
      skipped.push(s.step);
    }
    s.kept.forEach((k, t) => {
      const diff = Math.abs(k - s.expectedKept[t]);
      assert.ok(
        Number.isInteger(k) && diff <= s.ambiguous[t],
        `${at} ${report.tensors[t]}: kept ${k} on the GPU, ${s.expectedKept[t]} in the reference (${s.ambiguous[t]} ambiguous)`,
      );
    });
    const [gpu, want] = s.gradNorm;
    assert.ok(Math.abs(gpu - want) <= report.gradNormTolerance * want, `${at}: grad norm ${gpu} vs ${want}`);
  });
  assert.ok(report.tolerance <= MAX_TOLERANCE, `${label}: tolerance ${report.tolerance}`);
  assert.ok(
    report.maxRelError <= report.tolerance,
    `${label}: parameters off the reference by ${report.maxRelError} (per tensor ${report.relError})`,
  );
  assert.equal(report.neighboursWritten, 0, `${label}: headers and gaps untouched`);
  assert.equal(report.completedSteps, STEPS - skipped.length, `${label}: completed steps`);
  const masked = report.steps.some((s) => !s.skipped[0] && s.kept.reduce((a, b) => a + b, 0) < NUMEL.reduce((a, b) => a + b, 0));
  assert.ok(masked, `${label}: caution masked some coordinates`);
  return skipped;
}

test('the embedding flow matches the reference in the browser; bad inputs are reported', { timeout: 240_000 }, async () => {
  await withPage({ webgpu: true }, async ({ page }) => {
    await demoReady(page);
    const check = (options) => page.evaluate((o) => window.coptimDemo.embedCheck(o), options);
    const base = { lr: 1e-2, weightDecay: 0.01, steps: STEPS, seed: 3 };

    for (const optimizer of ['cadamw', 'clamb']) {
      const report = await check({ ...base, optimizer });
      assert.deepEqual(checkRecords(report, optimizer), [], `${optimizer}: no step skipped`);
      console.log(`# ${report.optimizer}: max relative error ${report.maxRelError.toExponential(2)} over ${STEPS} steps`);
    }

    const nonfinite = await check({ ...base, optimizer: 'cadamw', fault: 'nonfinite' });
    assert.deepEqual(checkRecords(nonfinite, 'nonfinite'), [STEPS / 2], 'the NaN step is skipped, and only it');

    const refused = await page.evaluate(
      (o) => window.coptimDemo.embedCheck(o).then(() => 'resolved', (err) => String(err.message ?? err)),
      { ...base, optimizer: 'cadamw', fault: 'out-of-range' },
    );
    assert.match(refused, /view of tensor `b`: parameters: .* run past the buffer/);

    const pairs = await page.evaluate(() => [...document.getElementById('pair').options].map((o) => o.value));
    for (const pair of ['adamw', 'lion', 'sgd', 'nadamw', 'laprop', 'lamb']) {
      assert.ok(pairs.includes(pair), `the pair selector offers ${pair} (it has ${pairs})`);
    }
    await page.evaluate(() => window.coptimDemo.reset({ pair: 'lamb' }));
    await page.evaluate(() => window.coptimDemo.start());
    await page.waitForFunction(() => window.coptimDemo.status().step >= 30, null, { timeout: 120_000, polling: 250 });
    await page.evaluate(() => window.coptimDemo.pause());
    const status = await page.evaluate(() => window.coptimDemo.status());
    assert.deepEqual(status.runs.map((r) => r.optimizer), ['LAMB', 'C-LAMB']);
    const adamwLr = await page.evaluate(() => {
      document.getElementById('pair').value = 'adamw';
      document.getElementById('pair').dispatchEvent(new Event('change'));
      return Number(document.getElementById('lr').value);
    });
    assert.equal(status.options.lr, 10 * adamwLr, "LAMB's preset rate is the trust-ratio family's (10x AdamW's)");
    for (const run of status.runs) {
      const [first, last] = [mean(run.loss.slice(0, 5)), mean(run.loss.slice(-5))];
      assert.ok(last < 0.8 * first, `${run.optimizer}: loss fell (${first.toFixed(3)} -> ${last.toFixed(3)})`);
      console.log(`# ${run.optimizer} at lr ${status.options.lr}: loss ${first.toFixed(3)} -> ${last.toFixed(3)} in ${status.step} steps`);
    }
  });
});
