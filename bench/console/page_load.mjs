// SPDX-License-Identifier: Apache-2.0
// Times a full load of the console's overview page in headless Debian chromium: navigation,
// HTML, scripts, the API calls, rendering, until the page marks itself ready. Usage:
//   node page_load.mjs URL TOKEN RUNS
// Needs tests/integration/console/setup.sh (chromium + playwright-core).
import {createRequire} from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../tests/integration/console/package.json'));
const {chromium} = require('playwright-core');
const [url, token, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 20);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-bench-chromium-'));
const ctx = await chromium.launchPersistentContext(dir, {
	executablePath: '/usr/bin/chromium', headless: true, ignoreHTTPSErrors: true,
	args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
		'--disable-component-update', '--disable-sync', '--no-first-run'],
	viewport: {width: 1280, height: 800},
});
const page = ctx.pages()[0] || (await ctx.newPage());
await page.goto(url + '#/login');
await page.waitForSelector('body[data-ready="login"]');
await page.fill('#token', token);
await page.click('#login-form button[type=submit]');
await page.waitForSelector('body[data-ready="overview"]', {timeout: 60000});
const times = [], inPage = [];
for (let i = 0; i < runs; i++) {
	const t0 = Date.now();
	await page.reload();
	await page.waitForSelector('body[data-ready="overview"]', {timeout: 60000});
	times.push(Date.now() - t0);
	// Navigation start -> overview rendered, measured by the page itself (no driver overhead).
	inPage.push(Number(await page.getAttribute('body', 'data-ready-ms')));
}
const stats = (a) => {
	a.sort((x, y) => x - y);
	const pct = (p) => a[Math.min(a.length - 1, Math.floor((a.length * p) / 100))];
	return `p50 ${pct(50)} ms, p95 ${pct(95)} ms, max ${a[a.length - 1]} ms`;
};
console.log(`overview page load in chromium (${runs} reloads), navigation start -> rendered: ${stats(inPage)}`);
console.log(`  as seen by the driver (reload() -> ready, includes CDP round trips): ${stats(times)}`);
await ctx.close();
fs.rmSync(dir, {recursive: true, force: true});
