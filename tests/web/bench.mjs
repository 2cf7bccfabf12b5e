// Measures the demo in headless Chromium (not part of `node --test`): trains the
// default pair (or the one given) for a wall-clock budget, printing test accuracy,
// held-out loss (nats per token for a language model) and steps per second as it
// goes, then a language model's last samples. Needs the built page (scripts/web.sh --build-only).
//
//   node tests/web/bench.mjs [SECONDS] ['{"model":"vit-tiny"}']   (or "llama-tiny", "llama")

import { openPage, startBrowser } from './harness.mjs';

const seconds = Number(process.argv[2] ?? 120);
const options = JSON.parse(process.argv[3] ?? '{}');
const { url, browser, close } = await startBrowser({ webgpu: true });
try {
  const { page, errors } = await openPage(browser, url);
  await page.waitForFunction(() => window.coptimDemo?.status().ready, null, { timeout: 60_000 });
  await page.evaluate((o) => window.coptimDemo.reset(o), options);
  const started = Date.now();
  await page.evaluate(() => window.coptimDemo.start());
  const report = (s) =>
    `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s  step ${String(s.step).padStart(5)}  ` +
    `${(s.stepsPerSecond ?? 0).toFixed(2)} steps/s  ` +
    s.runs
      .map(
        (r) =>
          `${r.optimizer} acc ${r.testAccuracy == null ? '-' : (100 * r.testAccuracy).toFixed(1)}% ` +
          `held-out loss ${r.validationLoss?.toFixed(3) ?? '-'} kept ${r.keptFraction?.toFixed(3) ?? '-'}`,
      )
      .join('  ');
  while (Date.now() - started < seconds * 1000) {
    await new Promise((ok) => setTimeout(ok, 10_000));
    console.log(report(await page.evaluate(() => window.coptimDemo.status())));
  }
  await page.evaluate(() => window.coptimDemo.pause());
  const status = await page.evaluate(() => window.coptimDemo.status());
  console.log(`final after pause: ${report(status)}`);
  console.log(`adapter: ${status.adapter}; training seconds ${status.trainingSeconds.toFixed(1)}`);
  const samples = await page.evaluate(() => window.coptimDemo.samples());
  if (samples) samples.runs.forEach((r) => console.log(`${r.optimizer}: ${JSON.stringify(samples.prompt + r.text)}`));
  if (errors.length) console.log('page errors:', errors);
} finally {
  await close();
}
