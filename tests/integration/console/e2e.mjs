// SPDX-License-Identifier: Apache-2.0
// Browser end-to-end test of corral's web console, run by test_console (browser_e2e) with a
// JSON file describing a live, seeded server. Drives Debian's /usr/bin/chromium through
// playwright-core (never a downloaded browser), headless, with a fresh profile directory.
// Checks: login, overview numbers equal the API's, violation filter, device and session
// drill-down, policy diff, promote as admin, viewer sees no mutating control and is refused
// by the API, no CSP violation or page error. Saves a screenshot of each page at 1280x800
// and 390x844 into the artifacts directory. Exit code 0 = pass.
import {chromium} from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const failures = [];
const problems = [];
function check(cond, what) {
	if (!cond) failures.push(what);
	console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
}

for (const f of fs.readdirSync(cfg.artifacts)) fs.rmSync(path.join(cfg.artifacts, f), {force: true});
const userDataDir = fs.mkdtempSync(path.join(cfg.profile_dir, 'chromium-'));
const ctx = await chromium.launchPersistentContext(userDataDir, {
	executablePath: '/usr/bin/chromium',
	headless: true,
	args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
		'--disable-component-update', '--disable-sync', '--no-first-run'],
	ignoreHTTPSErrors: true, // the fleet CA of this throwaway server is not in the profile
	viewport: {width: 1280, height: 800},
	acceptDownloads: true,
});
const page = ctx.pages()[0] || (await ctx.newPage());
page.on('console', (m) => {
	if (m.type() === 'error') problems.push(`console: ${m.text()}`);
});
page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));

// Polls a predicate in the page. (page.waitForFunction may compile its predicate with eval,
// which the console's CSP rightly forbids; page.evaluate goes through the debugger instead.)
async function until(fn, arg, timeout = 15000) {
	const end = Date.now() + timeout;
	for (;;) {
		if (await page.evaluate(fn, arg)) return;
		if (Date.now() > end) {
			const st = await page.evaluate(() => `hidden=${document.hidden} changes=${document.body.dataset.changes} pollError=${document.body.dataset.pollError}`);
			throw new Error(`timed out (${st}) waiting for ${fn.toString().slice(0, 120)}`);
		}
		await page.waitForTimeout(100);
	}
}

async function shot(name, fullPage = true) {
	await page.screenshot({path: path.join(cfg.artifacts, `${name}.png`), fullPage});
}
async function ready(pageName) {
	await page.waitForSelector(`body[data-ready="${pageName}"]`, 15000);
}
async function goto(hash, pageName) {
	await page.evaluate((h) => { location.hash = h; }, hash);
	await ready(pageName);
	await page.waitForSelector(`.view[data-page="${pageName}"]`, 15000);
}
async function apiGet(p, token) {
	return page.evaluate(async ([p, t]) => {
		const r = await fetch('/api/v1/' + p, {headers: {Authorization: 'Bearer ' + t}});
		return {status: r.status, body: await r.json()};
	}, [p, token]);
}
async function login(token) {
	await page.goto(cfg.url + '#/login');
	await ready('login');
	await page.fill('#token', token);
	await page.click('#login-form button[type=submit]');
	await ready('overview');
}

try {
	// ---- login ------------------------------------------------------------------------------
	await page.goto(cfg.url);
	await ready('login');
	await shot('desktop-login');
	await page.fill('#token', 'not-a-token');
	await page.click('#login-form button[type=submit]');
	await page.waitForSelector('.login .error', 10000);
	check(true, 'a bad token is refused on the login page');
	await page.fill('#token', cfg.admin);
	await page.click('#login-form button[type=submit]');
	await ready('overview');
	check(await page.evaluate(() => sessionStorage.getItem('corral.token') !== null),
		'token kept in sessionStorage');
	check((await ctx.cookies()).length === 0, 'no cookies are set');

	// ---- overview numbers = API -------------------------------------------------------------
	const ov = (await apiGet('console/overview', cfg.admin)).body;
	const total = await page.textContent('[data-testid="stat-total"] .n');
	check(Number(total) === ov.devices_total && ov.devices_total === cfg.devices.length,
		`overview total ${total} = API ${ov.devices_total}`);
	for (const s of Object.keys(ov.states)) {
		const n = await page.textContent(`[data-testid="stat-${s}"] .n`);
		check(Number(n) === ov.states[s], `overview ${s}: page ${n} = API ${ov.states[s]}`);
	}
	check(await page.locator('svg.chart rect.bar').count() > 0, 'violations chart has bars');
	check(await page.locator('.group-row').count() === ov.groups.length && ov.groups.length >= 3,
		'version distribution for every group');
	await shot('desktop-overview');

	// ---- violations: filter -----------------------------------------------------------------
	await goto('#/violations', 'violations');
	const all = await page.textContent('[data-testid="violations-total"]');
	check(all.startsWith(`${cfg.violations} `), `violations total "${all}"`);
	await page.selectOption('[data-testid="filter-kind"]', 'VIOLATION_KIND_NETWORK');
	await page.fill('[data-testid="filter-user"]', 'alice');
	await page.click('[data-testid="violation-filters"] button[type=submit]');
	await until(() => location.hash.includes('kind=VIOLATION_KIND_NETWORK'));
	await ready('violations');
	await until((n) => document.querySelector('[data-testid="violations-total"]')
		?.textContent.startsWith(`${n} `), cfg.violations / 6, 10000);
	const api = (await apiGet('console/violations?kind=VIOLATION_KIND_NETWORK&user=alice', cfg.admin)).body;
	const rows = await page.locator('table.events tbody tr').count();
	check(api.total === cfg.violations / 6 && rows === api.total,
		`filtered violations: ${rows} rows, API total ${api.total}`);
	await shot('desktop-violations');
	const [dl] = await Promise.all([page.waitForEvent('download'),
		page.click('[data-testid="export-csv"]')]);
	const csvPath = path.join(cfg.artifacts, 'violations-export.csv');
	await dl.saveAs(csvPath);
	const csv = fs.readFileSync(csvPath, 'utf8').trim().split('\r\n');
	check(csv.length === api.total + 1, `CSV export of the filtered table has ${csv.length - 1} rows`);

	// ---- device and session -----------------------------------------------------------------
	await goto('#/devices', 'devices');
	await page.fill('[data-testid="device-search"]', 'canary-2');
	await page.press('[data-testid="device-search"]', 'Enter');
	await until(() => location.hash.includes('q=canary-2'));
	await ready('devices');
	await until(() => document.querySelector('[data-testid="devices-total"]')
		?.textContent.startsWith('1 '));
	await shot('desktop-devices');
	const dev = cfg.devices.find((d) => d.name === 'canary-2');
	await page.click(`a[href="#/device/${dev.id}"]`);
	await ready('device');
	await page.waitForSelector('[data-testid="device-info"]');
	const info = await page.textContent('[data-testid="device-info"]');
	check(info.includes(dev.id) && info.includes('canary'), 'device page shows id and group');
	check(await page.locator('.state-degraded').count() > 0, 'device page shows the degraded layer');
	check(await page.locator('[data-testid="revoke"]').count() === 1, 'admin sees Revoke');
	await shot('desktop-device');
	await page.click(`a[href^="#/session/${dev.id}/"]`);
	await ready('session');
	check(await page.locator('table.events tbody tr').count() === 5, 'session page lists its 5 events');
	await shot('desktop-session');

	// ---- policies: diff and promote (admin) -------------------------------------------------
	await goto('#/policies/canary', 'policies');
	check((await page.textContent('[data-testid="rollout-progress"]')).startsWith('2 of 4'),
		'canary rollout progress 2 of 4');
	await shot('desktop-policies');
	await page.click('[data-testid="diff"]');
	await ready('diff');
	const diff = await page.textContent('[data-testid="diff-table"]');
	check(diff.includes('pypi.org:443') && diff.includes('profiles[ci]') &&
		diff.includes('profiles[build]') && diff.includes('.gnupg'),
		'diff shows the added host, added/removed profiles and the new deny rule');
	await shot('desktop-diff');
	await goto('#/policies/canary', 'policies');
	await page.selectOption('[data-testid="promote-to"]', 'prod');
	await page.click('[data-testid="promote"]');
	await page.click('#modal-ok');
	await until(() => location.hash.startsWith('#/policies/prod'));
	await ready('policies');
	await until(() => document.querySelector('[data-testid="rollout-progress"]'));
	const prod = (await apiGet('console/policy/prod', cfg.admin)).body;
	check(prod.rollout.head_version === 2, 'promote canary -> prod published v2 to prod');
	await shot('desktop-promoted');
	await goto('#/tokens', 'tokens');
	await shot('desktop-tokens');
	await goto('#/audit', 'audit');
	check((await page.textContent('main')).includes('policy.promote'), 'audit log shows the promotion');
	await shot('desktop-audit');

	// ---- mobile ---------------------------------------------------------------------------
	await page.setViewportSize({width: 390, height: 844});
	for (const [hash, name] of [['#/overview', 'overview'], ['#/violations', 'violations'],
		[`#/device/${dev.id}`, 'device'], ['#/policies/canary', 'policies'], ['#/devices', 'devices']]) {
		await goto(hash, name);
		const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
		check(!overflow, `mobile ${name}: no horizontal page overflow`);
		await shot(`mobile-${name}`, false); // what the phone shows first
		await shot(`mobile-${name}-full`);
		if (await page.locator('table').count()) {
			await page.locator('table').last().scrollIntoViewIfNeeded();
			await shot(`mobile-${name}-table`, false);
		}
	}
	await page.setViewportSize({width: 1280, height: 800});

	// ---- viewer: read-only --------------------------------------------------------------------
	await page.click('#logout');
	await ready('login');
	await login(cfg.viewer);
	check((await page.textContent('#role')) === 'viewer', 'signed in as viewer');
	await goto('#/policies/canary', 'policies');
	check(await page.locator('[data-testid="promote"]').count() === 0, 'viewer sees no Promote');
	await goto(`#/device/${dev.id}`, 'device');
	check(await page.locator('[data-testid="revoke"]').count() === 0, 'viewer sees no Revoke');
	await goto('#/tokens', 'tokens');
	check(await page.locator('[data-testid="token-form"]').count() === 0, 'viewer sees no token form');
	await shot('desktop-viewer-tokens');
	const refused = await page.evaluate(async (t) => {
		const r = await fetch('/api/v1/console/promote', {method: 'POST',
			headers: {Authorization: 'Bearer ' + t, 'Content-Type': 'application/json'},
			body: JSON.stringify({from: 'canary', to: 'staging'})});
		return r.status;
	}, cfg.viewer);
	check(refused === 403, `API refuses the viewer's promote (${refused})`);
	problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('403')));

	// ---- auto-refresh: a change on the server shows without a reload ----------------------------
	await goto('#/overview', 'overview');
	const before = await page.textContent('[data-testid="stat-revoked"] .n');
	const target = cfg.devices.find((d) => d.name === 'prod-1');
	const rv = await page.evaluate(async ([id, t]) => (await fetch(`/api/v1/devices/${id}/revoke`,
		{method: 'POST', headers: {Authorization: 'Bearer ' + t}, body: '{}'})).status,
	[target.id, cfg.admin]);
	check(rv === 200, 'revoked one more device through the API');
	await until((b) => document.querySelector('[data-testid="stat-revoked"] .n')
		?.textContent === String(Number(b) + 1), before, 15000);
	check(true, 'overview refreshed itself after the change (no reload)');
} catch (e) {
	failures.push(`exception: ${e.stack || e}`);
	console.log(`FAIL exception: ${e.stack || e}`);
	try { await shot('failure'); } catch (_) { /* ignore */ }
}
for (const p of problems) {
	const csp = /Content Security Policy|Refused to/.test(p);
	check(!csp && !p.startsWith('pageerror'), `browser reported: ${p}`);
}
await ctx.close();
fs.rmSync(userDataDir, {recursive: true, force: true});
console.log(failures.length ? `${failures.length} failure(s)` : 'all browser checks passed');
process.exit(failures.length ? 1 : 0);
