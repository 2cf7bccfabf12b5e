// End-to-end: the page's masked autoencoder (the `mae` preset on the bundled digits)
// trains AdamW and C-AdamW side by side on WebGPU (SwiftShader in headless Chromium):
// both reconstruction losses fall, both runs' reconstructions of the same masked test
// digits are drawn and differ from each other and from the masked input, the drawing
// pad gets both reconstructions under a random mask and a new one, and the page logs
// no errors.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { OUT_DIR, demoReady, drawSeven, mean, selectModel, trainUntil, withPage } from './harness.mjs';

/** Training steps the test waits for (SwiftShader is slow: keep it small). */
const STEPS = Number(process.env.COPTIM_E2E_MAE_STEPS ?? 40);
/** The page shows this many test digits of 28x28 pixels, 16 patches of 7x7 each. */
const DIGITS = 8;
const PIXELS = 28 * 28;
/** At least this share of a run's hidden pixels differ from the digit (blank patches may come back blank). */
const CHANGED_SHARE = 0.2;

/** The largest absolute difference between two arrays of pixels. */
const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/**
 * Checks one reconstruction view of `count` digits: its visible pixels are the
 * input's, a share of its hidden ones are not, and the two runs differ.
 */
function checkView(view, count, what) {
  assert.equal(view.count, count);
  assert.equal(view.removed.length, count * 16);
  assert.equal(view.removed.filter(Boolean).length, count * 12, `${what}: 75% of the patches hidden`);
  const hidden = (i) => view.removed[Math.floor(i / PIXELS) * 16 + Math.floor((i % PIXELS) / 28 / 7) * 4 + Math.floor((i % 28) / 7)];
  for (const [r, run] of view.runs.entries()) {
    assert.equal(run.length, count * PIXELS);
    let changed = 0;
    run.forEach((v, i) => {
      if (!hidden(i)) assert.ok(Math.abs(v - view.images[i]) < 1e-5, `${what} run ${r}: visible pixel ${i} as given`);
      else if (Math.abs(v - view.images[i]) > 1e-3) changed += 1;
    });
    const share = changed / (count * 12 * 49);
    assert.ok(share > CHANGED_SHARE, `${what} run ${r}: ${share.toFixed(2)} of the hidden pixels are predicted`);
  }
  assert.ok(maxDiff(view.runs[0], view.runs[1]) > 1e-3, `${what}: the two runs' reconstructions differ`);
}

test('trains two masked autoencoders side by side and shows their reconstructions', { timeout: 600_000 }, async () => {
  await withPage({ webgpu: true }, async ({ page }) => {
    await demoReady(page);

    assert.equal(await selectModel(page, 'masked autoencoder'), 'mae');
    for (const [id, visible] of [['#recon', true], ['#pad-recon', true], ['#predictions', false], ['#figure-acc', false], ['#figure-val', true]]) {
      assert.equal(await page.locator(id).isVisible(), visible, `${id} ${visible ? 'shows' : 'hides'}`);
    }
    const before = await page.evaluate(() => window.coptimDemo.status());
    assert.equal(before.step, 0);
    assert.equal(before.options.lr, 3e-3, "the mae preset's AdamW rate (src/train/presets.rs)");
    // The untrained models' reconstructions come right after the reset.
    await page.waitForFunction(() => window.coptimDemo.reconstructions()?.step === 0, null, { timeout: 60_000 });

    const started = Date.now();
    await trainUntil(page, STEPS, 480_000);
    await page.evaluate(() => window.coptimDemo.pause());
    const seconds = (Date.now() - started) / 1000;
    const status = await page.evaluate(() => window.coptimDemo.status());
    console.log(
      `# ${status.step} steps in ${seconds.toFixed(1)} s (${status.stepsPerSecond?.toFixed(2)} steps/s while training), ` +
        `test reconstruction loss ${status.runs.map((r) => `${r.optimizer} ${r.validationLoss.toFixed(3)}`).join(', ')}`,
    );
    assert.deepEqual(status.runs.map((r) => r.optimizer), ['AdamW', 'C-AdamW']);
    for (const run of status.runs) {
      assert.equal(run.loss.length, status.step, `${run.optimizer}: one loss per step`);
      assert.ok(run.loss.every(Number.isFinite), `${run.optimizer}: finite losses`);
      const [first, last] = [mean(run.loss.slice(0, 5)), mean(run.loss.slice(-5))];
      assert.ok(last < 0.8 * first, `${run.optimizer}: reconstruction loss fell (${first.toFixed(3)} -> ${last.toFixed(3)})`);
      assert.ok(Number.isFinite(run.validationLoss), `${run.optimizer}: a test reconstruction loss`);
    }

    // pause() evaluated: the test digits' reconstructions are the trained models'.
    const shown = await page.evaluate(() => window.coptimDemo.reconstructions());
    assert.equal(shown.step, status.step);
    checkView(shown, DIGITS, 'test digits');
    await page.waitForFunction((step) => document.querySelector('#recon-info').textContent.includes(`step ${step}:`), status.step);
    const painted = await page.evaluate(() =>
      ['recon-masked', 'recon-a', 'recon-b'].map((id) => {
        const c = document.getElementById(id);
        return { width: c.width, height: c.height, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) };
      }),
    );
    for (const p of painted) assert.deepEqual([p.width, p.height], [DIGITS * (28 * 3 + 4) - 4, 28 * 3]);
    const greys = painted[0].data.filter((v, i) => i % 4 === 0 && v === 128).length;
    assert.ok(greys >= DIGITS * 12 * 49 * 9, `the masked row shows the hidden patches grey (${greys} pixels)`);
    assert.ok(maxDiff(painted[1].data, painted[0].data) > 0, 'a reconstruction is painted, not the masked input');
    assert.ok(maxDiff(painted[1].data, painted[2].data) > 0, 'the two reconstructions are painted apart');

    // The drawing pad answers while the stroke goes on (mask seed 1); once it is done,
    // both reconstructions under a new mask, then under another one.
    await drawSeven(page);
    await page.waitForFunction(() => window.coptimDemo.padReconstruction()?.maskSeed === 1, null, { timeout: 60_000 });
    const remask = async (seed) => {
      await page.click('#new-mask');
      await page.waitForFunction((s) => window.coptimDemo.padReconstruction()?.maskSeed === s, seed, { timeout: 60_000 });
      return page.evaluate(() => window.coptimDemo.padReconstruction());
    };
    const drawn = await remask(2);
    checkView(drawn, 1, 'drawing');
    const remasked = await remask(3);
    checkView(remasked, 1, 'drawing, new mask');
    assert.deepEqual(remasked.images, drawn.images, 'the same drawing');
    assert.notDeepEqual(remasked.removed, drawn.removed, 'a different mask');

    await page.screenshot({ path: join(OUT_DIR, 'mae.png'), fullPage: true });
  });
});
