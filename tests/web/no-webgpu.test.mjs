// End-to-end: in a Chromium launched without the WebGPU flags (so without an
// adapter here), the page explains how to enable WebGPU instead of failing.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { OUT_DIR, withPage } from './harness.mjs';

test('shows a friendly how-to-enable-WebGPU message without WebGPU', { timeout: 60_000 }, async () => {
  await withPage({ webgpu: false }, async ({ page }) => {
    const notice = page.locator('#no-webgpu');
    await notice.waitFor({ state: 'visible', timeout: 30_000 });
    const text = await notice.innerText();
    assert.match(text, /no WebGPU/i);
    assert.match(text, /chrome:\/\/flags/);
    assert.match(text, /Firefox/);
    assert.match(text, /Safari/);
    assert.equal(await page.locator('#app').isVisible(), false, 'the training UI is hidden');
    assert.match(await page.locator('#adapter').innerText(), /No WebGPU adapter/);
    await page.screenshot({ path: join(OUT_DIR, 'no-webgpu.png'), fullPage: true });
  });
});
