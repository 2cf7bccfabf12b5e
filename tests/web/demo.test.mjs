// End-to-end: the demo page trains both runs on WebGPU (SwiftShader in headless
// Chromium), their losses fall, their test accuracies beat chance, the drawing pad
// gets a prediction, and the page logs no errors.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { OUT_DIR, demoReady, drawSeven, mean, trainUntil, withPage } from './harness.mjs';

/** Training steps the test waits for (SwiftShader is slow: keep it small). */
const STEPS = Number(process.env.COPTIM_E2E_STEPS ?? 60);

test('trains AdamW and C-AdamW side by side and classifies a drawing', { timeout: 240_000 }, async () => {
  await withPage({ webgpu: true }, async ({ page }) => {
    await demoReady(page);
    const before = await page.evaluate(() => window.coptimDemo.status());
    assert.ok(before.adapter.length > 0, 'the adapter is named');
    assert.equal(before.step, 0);
    assert.equal(before.running, false);
    assert.deepEqual(
      before.runs.map((r) => r.optimizer),
      ['AdamW', 'C-AdamW'],
    );

    // Watch the main thread: the longest gap between animation frames while training.
    await page.evaluate(() => {
      window.longestFrameMs = 0;
      let last = performance.now();
      const tick = (now) => {
        window.longestFrameMs = Math.max(window.longestFrameMs, now - last);
        last = now;
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const started = Date.now();
    await trainUntil(page, STEPS, 180_000);
    const longestFrameMs = await page.evaluate(() => window.longestFrameMs);
    await page.evaluate(() => window.coptimDemo.pause());
    const seconds = (Date.now() - started) / 1000;
    const status = await page.evaluate(() => window.coptimDemo.status());
    assert.equal(status.running, false);
    assert.ok(status.step >= STEPS);

    for (const run of status.runs) {
      assert.equal(run.loss.length, status.step, `${run.optimizer}: one loss per step`);
      assert.ok(run.loss.every(Number.isFinite), `${run.optimizer}: finite losses`);
      const first = mean(run.loss.slice(0, 10));
      const last = mean(run.loss.slice(-10));
      assert.ok(last < 0.7 * first, `${run.optimizer}: loss fell (${first.toFixed(3)} -> ${last.toFixed(3)})`);
      assert.ok(run.testAccuracy > 0.3, `${run.optimizer}: test accuracy ${run.testAccuracy} is well above chance`);
    }
    assert.equal(status.runs[0].keptFraction, null, 'AdamW has no caution mask');
    const kept = status.runs[1].keptFraction;
    assert.ok(kept > 0 && kept <= 1, `C-AdamW kept fraction ${kept} in (0, 1]`);

    // Draw a "7" on the pad with the mouse; both models must answer.
    await drawSeven(page);
    await page.waitForFunction(() => window.coptimDemo.prediction() !== null, null, { timeout: 60_000 });
    const prediction = await page.evaluate(() => window.coptimDemo.prediction());
    assert.equal(prediction.runs.length, 2);
    for (const run of prediction.runs) {
      assert.equal(run.probabilities.length, 10);
      assert.ok(Math.abs(mean(run.probabilities) * 10 - 1) < 1e-3, 'probabilities sum to 1');
      assert.ok(run.digit >= 0 && run.digit <= 9);
    }

    await page.screenshot({ path: join(OUT_DIR, 'demo.png'), fullPage: true });
    console.log(
      `# ${status.step} steps in ${seconds.toFixed(1)} s (${status.stepsPerSecond?.toFixed(2)} steps/s), ` +
        `accuracy ${status.runs.map((r) => `${r.optimizer} ${(100 * r.testAccuracy).toFixed(1)}%`).join(', ')}, ` +
        `drawing read as ${prediction.runs.map((r) => r.digit).join(' / ')}, ` +
        `longest frame ${longestFrameMs.toFixed(0)} ms, adapter ${status.adapter}`,
    );
    assert.ok(longestFrameMs < 2000, `the page kept rendering while training (longest frame ${longestFrameMs} ms)`);
  });
});
