// End-to-end: the page's language model (the `llama-tiny` preset on the bundled
// Shakespeare) trains AdamW and C-AdamW side by side on WebGPU (SwiftShader in headless
// Chromium): both training losses and validation losses fall, both models continue the
// same prompt with the same sampling seed, and the page logs no errors.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { OUT_DIR, demoReady, mean, selectModel, trainUntil, withPage } from './harness.mjs';

/** Training steps the test waits for (SwiftShader is slow: keep it small). */
const STEPS = Number(process.env.COPTIM_E2E_LM_STEPS ?? 40);
/** ln(73): the loss of a uniform guess over the corpus's 73 characters. */
const UNIFORM_LOSS = Math.log(73);

test('trains two language models side by side and samples both', { timeout: 300_000 }, async () => {
  await withPage({ webgpu: true }, async ({ page }) => {
    await demoReady(page);

    // The selector offers the language model; choosing it through the page's controls
    // fills in the preset's learning rate and batch size, and Reset builds the runs.
    assert.equal(await selectModel(page, 'language model'), 'llama-tiny');
    assert.equal(await page.locator('#samples').isVisible(), true, 'the samples panel shows');
    assert.equal(await page.locator('#pad-section').isVisible(), false, 'the drawing pad hides');
    const before = await page.evaluate(() => window.coptimDemo.status());
    assert.equal(before.step, 0);
    assert.equal(before.options.batchSize, 16);
    assert.equal(before.options.lr, 3e-3);
    assert.equal(await page.evaluate(() => window.coptimDemo.samples()), null);

    const started = Date.now();
    await trainUntil(page, STEPS, 240_000);
    await page.evaluate(() => window.coptimDemo.pause());
    const seconds = (Date.now() - started) / 1000;
    const status = await page.evaluate(() => window.coptimDemo.status());
    const samples = await page.evaluate(() => window.coptimDemo.samples());

    assert.deepEqual(
      status.runs.map((r) => r.optimizer),
      ['AdamW', 'C-AdamW'],
    );
    for (const run of status.runs) {
      assert.equal(run.loss.length, status.step, `${run.optimizer}: one loss per step`);
      assert.ok(run.loss.every(Number.isFinite), `${run.optimizer}: finite losses`);
      const first = mean(run.loss.slice(0, 5));
      const last = mean(run.loss.slice(-5));
      assert.ok(Math.abs(run.loss[0] - UNIFORM_LOSS) < 0.2, `${run.optimizer}: starts near ln 73 (${run.loss[0]})`);
      assert.ok(last < 0.85 * first, `${run.optimizer}: training loss fell (${first.toFixed(3)} -> ${last.toFixed(3)})`);
      assert.ok(
        run.validationLoss < UNIFORM_LOSS - 0.5,
        `${run.optimizer}: validation loss ${run.validationLoss} nats/token is well below ln 73`,
      );
    }
    assert.equal(samples.step, status.step, 'pause() refreshed the samples');
    assert.equal(samples.runs.length, 2);
    for (const run of samples.runs) {
      assert.equal(run.text.length, 60, `${run.optimizer}: a 60-character sample`);
    }
    assert.equal(await page.locator('#sample-a').textContent(), samples.prompt + samples.runs[0].text);

    await page.screenshot({ path: join(OUT_DIR, 'llama.png'), fullPage: true });
    console.log(
      `# ${status.step} steps in ${seconds.toFixed(1)} s (${status.stepsPerSecond?.toFixed(2)} steps/s), ` +
        `validation loss ${status.runs.map((r) => `${r.optimizer} ${r.validationLoss.toFixed(3)}`).join(', ')}; ` +
        `samples ${samples.runs.map((r) => JSON.stringify(r.text)).join(' / ')}`,
    );
  });
});
