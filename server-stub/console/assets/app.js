// SPDX-License-Identifier: Apache-2.0
// corral web console. A hash-routed single page over the admin API: the bearer token is
// entered once and kept in sessionStorage (never a cookie, so cross-site requests carry no
// credential), sent in the Authorization header on every call. Every view builds DOM nodes
// with textContent, never from HTML strings, so device-supplied text cannot inject markup.
// A viewer token sees the same pages without mutating controls; the API refuses anyway.
'use strict';
(function () {
	const TOKEN_KEY = 'corral.token';
	const ROLE_KEY = 'corral.role';
	const PAGE = 50;
	const POLL_MS = 5000;
	const STATES = ['compliant', 'degraded', 'out-of-date', 'stale', 'failing', 'pending',
		'not-seen', 'revoked'];
	const VKINDS = ['VIOLATION_KIND_FILESYSTEM', 'VIOLATION_KIND_SYSCALL',
		'VIOLATION_KIND_NETWORK', 'VIOLATION_KIND_RESOURCE', 'VIOLATION_KIND_UNSPECIFIED'];

	const S = {token: sessionStorage.getItem(TOKEN_KEY), role: null, actor: null,
		counter: null, renderSeq: 0};
	const $ = (id) => document.getElementById(id);

	// ---- DOM helpers ------------------------------------------------------------------------
	function h(tag, attrs, ...kids) {
		const e = document.createElement(tag);
		for (const k in attrs || {}) {
			const v = attrs[k];
			if (v === undefined || v === null || v === false) continue;
			if (k === 'class') e.className = v;
			else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
			else if (k === 'dataset') Object.assign(e.dataset, v);
			else e.setAttribute(k, v === true ? '' : String(v));
		}
		for (const c of kids.flat(Infinity)) {
			if (c === undefined || c === null || c === false) continue;
			e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
		}
		return e;
	}
	const kindShort = (k) => String(k || '').replace(/^VIOLATION_KIND_|^EVENT_KIND_/, '').toLowerCase();
	const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : '—');
	const fmtSec = (s) => (s ? new Date(s * 1000).toLocaleString() : '—');
	function fmtAgo(sec) {
		if (!sec) return 'never';
		const d = Date.now() / 1000 - sec;
		if (d < 90) return `${Math.max(0, Math.round(d))} s ago`;
		if (d < 5400) return `${Math.round(d / 60)} min ago`;
		if (d < 172800) return `${Math.round(d / 3600)} h ago`;
		return `${Math.round(d / 86400)} days ago`;
	}
	function fmtMs(ms) {
		if (ms < 1000) return `${ms} ms`;
		if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
		return `${(ms / 60000).toFixed(1)} min`;
	}
	const stateBadge = (s) => h('span', {class: 'state state-' + s}, s);
	const isAdmin = () => S.role === 'admin';

	function table(cols, rows, opts) {
		const thead = h('thead', {}, h('tr', {}, cols.map((c) => h('th', {scope: 'col'}, c.label))));
		const tbody = h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) =>
			h('td', {class: c.cls, 'data-label': c.label}, c.render ? c.render(r) : r[c.key])))));
		if (!rows.length)
			tbody.appendChild(h('tr', {}, h('td', {colspan: cols.length, class: 'muted'},
				(opts && opts.empty) || 'Nothing to show.')));
		return h('div', {class: 'table-wrap'}, h('table', {class: (opts && opts.cls) || ''}, thead, tbody));
	}

	function pager(total, offset, limit, go) {
		const last = Math.max(0, Math.floor((total - 1) / limit) * limit);
		return h('div', {class: 'pager'},
			h('button', {type: 'button', disabled: offset <= 0, onclick: () => go(0)}, '« First'),
			h('button', {type: 'button', disabled: offset <= 0,
				onclick: () => go(Math.max(0, offset - limit))}, '‹ Prev'),
			h('span', {class: 'muted', 'data-testid': 'pager-info'},
				total ? `${offset + 1}–${Math.min(total, offset + limit)} of ${total}` : '0 results'),
			h('button', {type: 'button', disabled: offset + limit >= total,
				onclick: () => go(offset + limit)}, 'Next ›'),
			h('button', {type: 'button', disabled: offset + limit >= total, onclick: () => go(last)},
				'Last »'));
	}

	function card(title, ...body) {
		return h('section', {class: 'card'}, title ? h('h2', {}, title) : null, body);
	}

	// ---- API ----------------------------------------------------------------------------------
	class ApiError extends Error {
		constructor(status, reason, detail) {
			super(`${reason}: ${detail}`);
			this.status = status;
			this.reason = reason;
		}
	}

	async function api(path, opts) {
		const o = opts || {};
		const headers = {Authorization: 'Bearer ' + S.token};
		if (o.body !== undefined) headers['Content-Type'] = 'application/json';
		const res = await fetch('/api/v1/' + path, {method: o.method || 'GET', headers,
			body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
			credentials: 'omit', cache: 'no-store'});
		if (o.raw && res.ok) return res;
		let j = null;
		try { j = await res.json(); } catch (e) { j = null; }
		if (!res.ok) {
			if (res.status === 401 && !o.login) { logout('Your session ended: sign in again.'); }
			throw new ApiError(res.status, (j && j.error) || 'http-' + res.status,
				(j && j.detail) || res.statusText);
		}
		return j;
	}

	function qs(params) {
		const u = new URLSearchParams();
		for (const k in params) if (params[k] !== undefined && params[k] !== null && params[k] !== '')
			u.set(k, params[k]);
		const s = u.toString();
		return s ? '?' + s : '';
	}

	// Exports go through fetch (the token is a header, not a cookie), then a blob download.
	async function download(path, params, format, name) {
		const res = await api(path + qs(Object.assign({}, params, {format, offset: 0})), {raw: true});
		const blob = await res.blob();
		const a = h('a', {href: URL.createObjectURL(blob), download: `${name}.${format}`});
		document.body.appendChild(a);
		a.click();
		setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
	}

	function exportButtons(path, params, name) {
		return h('span', {class: 'exports'},
			h('button', {type: 'button', 'data-testid': 'export-csv',
				onclick: () => download(path, params, 'csv', name).catch(showError)}, 'Export CSV'),
			h('button', {type: 'button', 'data-testid': 'export-json',
				onclick: () => download(path, params, 'json', name).catch(showError)}, 'Export JSON'));
	}

	// ---- chrome -------------------------------------------------------------------------------
	function showError(e) {
		const m = $('main');
		m.prepend(h('div', {class: 'error', role: 'alert'}, String(e.message || e)));
	}

	function confirmDialog(title, text, okLabel) {
		return new Promise((resolve) => {
			$('modal-title').textContent = title;
			$('modal-body').textContent = '';
			$('modal-body').appendChild(h('p', {}, text));
			$('modal-ok').textContent = okLabel || 'Confirm';
			$('modal').hidden = false;
			$('modal-ok').focus();
			const done = (v) => {
				$('modal').hidden = true;
				$('modal-ok').onclick = $('modal-cancel').onclick = null;
				resolve(v);
			};
			$('modal-ok').onclick = () => done(true);
			$('modal-cancel').onclick = () => done(false);
		});
	}

	function logout(msg) {
		sessionStorage.removeItem(TOKEN_KEY);
		sessionStorage.removeItem(ROLE_KEY);
		S.token = null;
		S.role = null;
		S.counter = null;
		$('nav').hidden = true;
		$('who').hidden = true;
		document.body.classList.remove('role-admin', 'role-viewer');
		// replaceState: no hashchange, so the message below is not re-rendered away.
		history.replaceState(null, '', '#/login');
		renderLogin(msg);
	}

	function setChrome(page) {
		$('nav').hidden = false;
		$('who').hidden = false;
		$('role').textContent = S.role;
		$('role').title = S.actor || '';
		document.body.classList.toggle('role-admin', isAdmin());
		document.body.classList.toggle('role-viewer', !isAdmin());
		for (const a of document.querySelectorAll('#nav a'))
			a.classList.toggle('active', a.dataset.page === page);
	}

	// ---- router -------------------------------------------------------------------------------
	function parseHash() {
		const raw = location.hash.replace(/^#\/?/, '');
		const [path, query] = raw.split('?');
		const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
		return {parts, params: Object.fromEntries(new URLSearchParams(query || ''))};
	}

	function go(page, params) {
		location.hash = '#/' + page + qs(params || {});
	}

	const routes = {overview: pageOverview, violations: pageViolations, devices: pageDevices,
		device: pageDevice, session: pageSession, policies: pagePolicies, diff: pageDiff,
		tokens: pageTokens, audit: pageAudit};

	async function render(quiet) {
		if (!S.token) return renderLogin();
		if (!S.role) {
			// Once per sign-in; a reload reuses the role kept beside the token (the API
			// still checks the token on every call and a 401 signs out).
			const kept = sessionStorage.getItem(ROLE_KEY);
			try {
				const w = kept ? JSON.parse(kept) : await api('whoami', {login: true});
				S.role = w.role;
				S.actor = w.actor;
				sessionStorage.setItem(ROLE_KEY, JSON.stringify({role: w.role, actor: w.actor}));
			} catch (e) {
				return logout(e.status === 401 ? 'That token was not accepted.' : String(e.message));
			}
		}
		const {parts, params} = parseHash();
		const page = routes[parts[0]] ? parts[0] : 'overview';
		setChrome(page === 'device' || page === 'session' ? 'devices' :
			page === 'diff' ? 'policies' : page);
		const seq = ++S.renderSeq;
		const view = h('div', {class: 'view', 'data-page': page});
		try {
			// The change counter is requested first, alongside the data (the server answers
			// in arrival order), so a change after it is seen by the next poll.
			const counter = api('changes');
			await routes[page](view, parts.slice(1), params);
			S.counter = (await counter).counter;
		} catch (e) {
			if (e.status === 401) return;
			view.prepend(h('div', {class: 'error', role: 'alert'}, String(e.message || e)));
		}
		if (seq !== S.renderSeq) return; // a newer navigation won
		const m = $('main');
		const y = window.scrollY;
		m.textContent = '';
		m.appendChild(view);
		document.body.dataset.ready = page;
		// Milliseconds from navigation start to this view on screen (bench/console).
		document.body.dataset.readyMs = String(Math.round(performance.now()));
		// A refresh keeps the reader's place; a navigation starts at the top.
		window.scrollTo(0, quiet ? y : 0);
	}

	// ---- login --------------------------------------------------------------------------------
	function renderLogin(msg) {
		const m = $('main');
		m.textContent = '';
		const input = h('input', {id: 'token', type: 'password', autocomplete: 'off',
			placeholder: 'id.secret', required: true, spellcheck: 'false'});
		const form = h('form', {class: 'login card', id: 'login-form'},
			h('h1', {}, 'Sign in to corral'),
			h('p', {class: 'muted'}, 'Paste an admin or viewer token (corral-admin token create, or ',
				h('code', {}, 'admin.token'), ' in the server data directory). It stays in this tab only.'),
			msg ? h('div', {class: 'error', role: 'alert'}, msg) : null,
			h('label', {for: 'token'}, 'Bearer token'), input,
			h('button', {type: 'submit', class: 'primary'}, 'Sign in'));
		form.addEventListener('submit', (ev) => {
			ev.preventDefault();
			S.token = input.value.trim();
			S.role = null;
			sessionStorage.removeItem(ROLE_KEY);
			sessionStorage.setItem(TOKEN_KEY, S.token);
			if (!location.hash || location.hash.startsWith('#/login')) location.hash = '#/overview';
			else render();
		});
		m.appendChild(form);
		document.body.dataset.ready = 'login';
		input.focus();
	}

	// ---- overview -----------------------------------------------------------------------------
	async function pageOverview(v) {
		const since = Date.now() - 7 * 86400000;
		const [ov, st] = await Promise.all([api('console/overview'),
			api('console/violations/stats' + qs({since, bucket: 3600000 * 6}))]);
		v.appendChild(h('h1', {}, 'Fleet overview'));
		const total = ov.devices_total;
		v.appendChild(h('div', {class: 'stat-grid'},
			h('a', {class: 'stat total', href: '#/devices', 'data-testid': 'stat-total'},
				h('span', {class: 'n'}, total), h('span', {class: 'l'}, 'devices')),
			STATES.map((s) => h('a', {class: 'stat state-' + s, href: '#/devices' + qs({state: s}),
				'data-testid': 'stat-' + s},
			h('span', {class: 'n'}, ov.states[s] || 0), h('span', {class: 'l'}, s)))));
		v.appendChild(h('p', {class: 'muted small'},
			`Compliant = enforcing the newest policy of its group, fresh, with every requested kernel feature. Not seen = no report for ${ov.not_seen_days} days.`));

		const chart = h('div', {class: 'chart-box'});
		const kinds = h('div', {class: 'chart-box'});
		v.appendChild(h('div', {class: 'grid2'},
			card(`Violations, last 7 days (${st.total})`, chart),
			card('By kind', kinds)));
		CorralChart.bars(chart, st.series, {since: st.since_ms, bucket: st.bucket_ms,
			label: 'violations over time'});
		CorralChart.hbars(kinds, st.by_kind.map((k) => ({key: kindShort(k.key), n: k.n,
			href: '#/violations' + qs({kind: k.key})})), {empty: 'No violations in this window.'});

		const groups = ov.groups.map((g) => {
			const bar = h('div', {class: 'dist'});
			const parts = g.versions.map((x) => ({key: 'v' + x.version, n: x.devices,
				cls: x.version === g.head_version ? 'head' : x.version === 0 ? 'none' : 'old'}));
			CorralChart.stacked(bar, parts, {label: `policy versions in ${g.group}`});
			return h('div', {class: 'group-row'},
				h('div', {class: 'group-name'}, h('a', {href: '#/policies/' + encodeURIComponent(g.group)}, g.group),
					h('span', {class: 'muted'}, ` newest v${g.head_version} · ${g.devices} devices`)),
				bar,
				h('div', {class: 'legend'}, g.versions.map((x) =>
					h('span', {class: 'chip ' + (x.version === g.head_version ? 'head' : 'old')},
						`v${x.version}: ${x.devices}`))));
		});
		v.appendChild(card('Policy version per group', groups.length ? groups :
			h('p', {class: 'muted'}, 'No groups yet.')));

		v.appendChild(card(`Devices that degraded a layer (${ov.degraded_total})`,
			table([
				{label: 'Device', render: (d) => h('a', {href: '#/device/' + encodeURIComponent(d.device_id)}, d.device_id)},
				{label: 'Host', key: 'hostname'},
				{label: 'Group', key: 'group'},
				{label: 'Missing', render: (d) => missingFeatures(d).join(', ') || '—'},
				{label: 'State', render: (d) => stateBadge(d.state)},
			], ov.degraded, {empty: 'Every device enforces what it requested.'})));
	}

	function missingFeatures(d) {
		const r = d.features_requested || {}, e = d.features_enforced || {};
		const out = [];
		for (const k in r) {
			const a = JSON.stringify(r[k]), b = JSON.stringify(e[k]);
			if (a !== b) out.push(`${k} (${a} → ${b === undefined ? 'none' : b})`);
		}
		return out;
	}

	// ---- violations -----------------------------------------------------------------------------
	function toMs(dateStr, end) {
		if (!dateStr) return '';
		const t = Date.parse(dateStr + (end ? 'T23:59:59.999' : 'T00:00:00'));
		return isNaN(t) ? '' : String(t + (end ? 1 : 0));
	}

	async function pageViolations(v, _parts, p) {
		const offset = Number(p.offset || 0);
		const filt = {kind: p.kind, profile: p.profile, user: p.user, device: p.device,
			session: p.session, since: toMs(p.from, false), until: toMs(p.to, true)};
		const statsSince = filt.since || String(Date.now() - 7 * 86400000);
		const [page, st] = await Promise.all([
			api('console/violations' + qs(Object.assign({}, filt, {offset, limit: PAGE}))),
			api('console/violations/stats' + qs({since: statsSince, until: filt.until,
				bucket: 3600000 * 6}))]);
		v.appendChild(h('h1', {}, 'Violations'));
		const f = (name, label, input) => h('label', {class: 'field'}, h('span', {}, label), input);
		const kindSel = h('select', {name: 'kind', 'data-testid': 'filter-kind'},
			h('option', {value: ''}, 'any kind'),
			VKINDS.map((k) => h('option', {value: k, selected: p.kind === k}, kindShort(k))));
		const inp = (name, ph) => h('input', {name, value: p[name] || '', placeholder: ph,
			'data-testid': 'filter-' + name});
		const form = h('form', {class: 'filters', 'data-testid': 'violation-filters'},
			f('kind', 'Kind', kindSel), f('profile', 'Profile', inp('profile', 'any')),
			f('user', 'User', inp('user', 'any')), f('device', 'Device', inp('device', 'device id')),
			f('from', 'From', h('input', {type: 'date', name: 'from', value: p.from || ''})),
			f('to', 'To', h('input', {type: 'date', name: 'to', value: p.to || ''})),
			p.session ? h('input', {type: 'hidden', name: 'session', value: p.session}) : null,
			h('div', {class: 'filter-actions'},
				h('button', {type: 'submit', class: 'primary'}, 'Apply'),
				h('button', {type: 'button', onclick: () => go('violations')}, 'Clear')));
		form.addEventListener('submit', (ev) => {
			ev.preventDefault();
			const d = Object.fromEntries(new FormData(form));
			go('violations', d);
		});
		v.appendChild(card(null, form));

		const chart = h('div', {class: 'chart-box'});
		const b = (title, items, key) => {
			const box = h('div', {class: 'chart-box'});
			CorralChart.hbars(box, items.slice(0, 8).map((x) => ({key: key === 'kind' ? kindShort(x.key) :
				key === 'device' ? (x.hostname || x.key.slice(0, 14)) : x.key,
				n: x.n, href: '#/violations' + qs(Object.assign({}, p, {[key]: x.key, offset: 0}))})),
			{empty: 'None.'});
			return card(title, box);
		};
		v.appendChild(h('div', {class: 'grid2'},
			card(`Over time (${st.total} in the window, every kind; hourly rollup)`, chart),
			b('By kind', st.by_kind, 'kind')));
		CorralChart.bars(chart, st.series, {since: st.since_ms, until: st.until_ms || 0,
			bucket: st.bucket_ms, label: 'violations over time'});
		v.appendChild(h('div', {class: 'grid3'},
			b('By profile', st.by_profile, 'profile'), b('By user', st.by_user, 'user'),
			b('Top devices (all time)', st.by_device, 'device')));

		const rows = page.items;
		const tbl = table([
			{label: 'Time', render: (e) => fmtTime(e.time_ms)},
			{label: 'Kind', render: (e) => h('span', {class: 'kind'}, kindShort(e.violation && e.violation.kind))},
			{label: 'Device', render: (e) => h('a', {href: '#/device/' + encodeURIComponent(e.device_id)}, e.hostname || e.device_id)},
			{label: 'User', key: 'user'},
			{label: 'Profile', key: 'profile'},
			{label: 'Target', cls: 'mono wrap', render: (e) => e.violation && e.violation.target},
			{label: 'Process', render: (e) => e.violation ? `${e.violation.comm} (${e.violation.pid})` : ''},
			{label: 'Session', render: (e) => e.session_id ? h('a', {href: '#/session/' +
				encodeURIComponent(e.device_id) + '/' + encodeURIComponent(e.session_id)}, e.session_id.slice(0, 12)) : '—'},
			{label: 'Policy', render: (e) => 'v' + e.policy_version},
			{label: '', render: (e) => h('details', {}, h('summary', {}, 'all fields'), fieldList(e))},
		], rows, {cls: 'events', empty: 'No violation matches these filters.'});
		const goPage = (o) => go('violations', Object.assign({}, p, {offset: o}));
		v.appendChild(card(null,
			h('div', {class: 'table-head'}, h('h2', {'data-testid': 'violations-total'},
				`${page.total} violations`), exportButtons('console/violations', filt, 'violations')),
			tbl, pager(page.total, offset, PAGE, goPage)));
	}

	// Every field of an event, flattened, as a definition list.
	function fieldList(obj) {
		const dl = h('dl', {class: 'fields'});
		const walk = (o, prefix) => {
			for (const k of Object.keys(o)) {
				const val = o[k], key = prefix ? `${prefix}.${k}` : k;
				if (val && typeof val === 'object' && !Array.isArray(val)) walk(val, key);
				else {
					dl.appendChild(h('dt', {}, key));
					dl.appendChild(h('dd', {class: 'mono'}, Array.isArray(val) ? JSON.stringify(val) : String(val)));
				}
			}
		};
		walk(obj, '');
		return dl;
	}

	// ---- devices ----------------------------------------------------------------------------------
	async function pageDevices(v, _parts, p) {
		const offset = Number(p.offset || 0);
		const filt = {q: p.q, group: p.group, state: p.state};
		const [page, groups] = await Promise.all([
			api('console/devices' + qs(Object.assign({}, filt, {offset, limit: PAGE}))),
			api('groups')]);
		v.appendChild(h('h1', {}, 'Devices'));
		const form = h('form', {class: 'filters'},
			h('label', {class: 'field grow'}, h('span', {}, 'Search'),
				h('input', {name: 'q', type: 'search', value: p.q || '', placeholder: 'device id or hostname',
					'data-testid': 'device-search'})),
			h('label', {class: 'field'}, h('span', {}, 'Group'),
				h('select', {name: 'group'}, h('option', {value: ''}, 'all groups'),
					groups.map((g) => h('option', {value: g.name, selected: p.group === g.name}, g.name)))),
			h('label', {class: 'field'}, h('span', {}, 'State'),
				h('select', {name: 'state', 'data-testid': 'device-state'}, h('option', {value: ''}, 'any state'),
					STATES.map((s) => h('option', {value: s, selected: p.state === s}, s)))),
			h('div', {class: 'filter-actions'}, h('button', {type: 'submit', class: 'primary'}, 'Apply'),
				h('button', {type: 'button', onclick: () => go('devices')}, 'Clear')));
		form.addEventListener('submit', (ev) => {
			ev.preventDefault();
			go('devices', Object.fromEntries(new FormData(form)));
		});
		v.appendChild(card(null, form));
		v.appendChild(card(null,
			h('div', {class: 'table-head'}, h('h2', {'data-testid': 'devices-total'}, `${page.total} devices`),
				exportButtons('console/devices', filt, 'devices')),
			table([
				{label: 'Device', render: (d) => h('a', {href: '#/device/' + encodeURIComponent(d.device_id),
					class: 'mono'}, d.device_id)},
				{label: 'Host', key: 'hostname'},
				{label: 'Group', key: 'group'},
				{label: 'State', render: (d) => stateBadge(d.state)},
				{label: 'Policy', render: (d) => `v${d.policy_version}` + (d.policy_version !== d.head_version ? ` / v${d.head_version}` : '')},
				{label: 'Last seen', render: (d) => fmtAgo(d.last_seen)},
				{label: 'Violations', key: 'violations'},
				{label: 'Agent', key: 'agent_version'},
			], page.items, {empty: 'No device matches.'}),
			pager(page.total, offset, PAGE, (o) => go('devices', Object.assign({}, p, {offset: o})))));
	}

	function featureTable(d) {
		const r = d.features_requested || {}, e = d.features_enforced || {};
		const keys = Array.from(new Set([...Object.keys(r), ...Object.keys(e)]));
		return table([
			{label: 'Feature', key: 'k'},
			{label: 'Requested', cls: 'mono', render: (x) => JSON.stringify(r[x.k])},
			{label: 'Enforced', cls: 'mono', render: (x) => JSON.stringify(e[x.k])},
			{label: '', render: (x) => JSON.stringify(r[x.k]) === JSON.stringify(e[x.k]) ? '✓' :
				h('span', {class: 'state state-degraded'}, 'degraded')},
		], keys.map((k) => ({k})), {empty: 'No heartbeat with kernel features yet.'});
	}

	async function pageDevice(v, parts) {
		const id = parts[0];
		const d = await api('console/devices/' + encodeURIComponent(id));
		v.appendChild(h('p', {class: 'crumbs'}, h('a', {href: '#/devices'}, 'Devices'), ' / ', id));
		v.appendChild(h('h1', {}, d.hostname || d.device_id, ' ', stateBadge(d.state)));
		const kv = (k, val) => [h('dt', {}, k), h('dd', {}, val)];
		const certDays = Math.round((d.cert_expires_at - Date.now() / 1000) / 86400);
		const info = h('dl', {class: 'kv', 'data-testid': 'device-info'},
			kv('Device id', h('span', {class: 'mono'}, d.device_id)),
			kv('Group', h('a', {href: '#/policies/' + encodeURIComponent(d.group)}, d.group)),
			kv('Policy in force', `v${d.policy_version}` + (d.head_version ? ` (group newest v${d.head_version})` : '')),
			kv('Freshness', d.freshness),
			kv('Trust root', 'v' + d.trust_root_version),
			kv('Last heartbeat', `${fmtSec(d.heartbeat_at)} (${fmtAgo(d.heartbeat_at)})`),
			kv('Last seen', `${fmtSec(d.last_seen)} (${fmtAgo(d.last_seen)})`),
			kv('Certificate', `serial ${d.cert_serial}, expires ${fmtSec(d.cert_expires_at)} (${certDays} days)`),
			kv('Kernel', d.kernel_release || '—'),
			kv('Agent', d.agent_version || '—'),
			kv('Enrolled', fmtSec(d.enrolled_at)),
			d.reject ? kv('Last rejection', `v${d.reject.version}: ${d.reject.reason} at ${fmtTime(d.reject.time_ms)}`) : null,
			d.revoked ? kv('Revoked', fmtSec(d.revoked_at)) : null);
		const actions = h('div', {class: 'actions admin-only'});
		if (isAdmin() && !d.revoked)
			actions.appendChild(h('button', {type: 'button', class: 'danger', 'data-testid': 'revoke',
				onclick: async () => {
					const ok = await confirmDialog('Revoke device',
						`Revoke ${d.hostname || ''} (${d.device_id})? It will be refused on its next request and must enroll again.`,
						'Revoke');
					if (!ok) return;
					try {
						await api(`devices/${encodeURIComponent(d.device_id)}/revoke`, {method: 'POST', body: {}});
						render();
					} catch (e) { showError(e); }
				}}, 'Revoke device'));
		v.appendChild(h('div', {class: 'grid2'}, card('Device', info, actions),
			card('Kernel features (requested vs enforced)', featureTable(d))));
		const events = d.events || [];
		const sessions = new Map();
		for (const e of events) {
			if (!e.session_id) continue;
			const s = sessions.get(e.session_id) || {id: e.session_id, user: e.user, profile: e.profile,
				start: 0, end: 0, violations: 0, exit: null};
			if (e.kind === 'EVENT_KIND_SESSION_START') s.start = e.time_ms;
			if (e.kind === 'EVENT_KIND_SESSION_EXIT') { s.end = e.time_ms; s.exit = e.session_exit; }
			if (e.kind === 'EVENT_KIND_VIOLATION') s.violations++;
			if (!s.start || e.time_ms < s.start) s.start = s.start || e.time_ms;
			sessions.set(e.session_id, s);
		}
		v.appendChild(card('Recent sessions', table([
			{label: 'Session', render: (s) => h('a', {href: `#/session/${encodeURIComponent(d.device_id)}/${encodeURIComponent(s.id)}`,
				class: 'mono'}, s.id)},
			{label: 'User', key: 'user'}, {label: 'Profile', key: 'profile'},
			{label: 'Started', render: (s) => fmtTime(s.start)},
			{label: 'Exit', render: (s) => s.exit ? `status ${s.exit.exit_status}${s.exit.term_signal ? ', signal ' + s.exit.term_signal : ''}` : (s.end ? 'ended' : 'running')},
			{label: 'Violations', key: 'violations'},
		], Array.from(sessions.values()), {empty: 'No sessions reported recently.'})));
		const viol = events.filter((e) => e.kind === 'EVENT_KIND_VIOLATION').slice(0, 50);
		v.appendChild(card('Recent violations', h('p', {}, h('a', {href: '#/violations' + qs({device: d.device_id})},
			'All violations of this device →')), table([
			{label: 'Time', render: (e) => fmtTime(e.time_ms)},
			{label: 'Kind', render: (e) => kindShort(e.violation && e.violation.kind)},
			{label: 'Target', cls: 'mono wrap', render: (e) => e.violation && e.violation.target},
			{label: 'User', key: 'user'}, {label: 'Profile', key: 'profile'},
			{label: '', render: (e) => h('details', {}, h('summary', {}, 'all fields'), fieldList(e))},
		], viol, {cls: 'events', empty: 'No recent violations.'})));
	}

	async function pageSession(v, parts) {
		const [dev, sid] = parts;
		const s = await api(`console/devices/${encodeURIComponent(dev)}/sessions/${encodeURIComponent(sid)}`);
		v.appendChild(h('p', {class: 'crumbs'}, h('a', {href: '#/devices'}, 'Devices'), ' / ',
			h('a', {href: '#/device/' + encodeURIComponent(dev)}, dev), ' / session'));
		v.appendChild(h('h1', {}, 'Session ', h('span', {class: 'mono'}, sid)));
		v.appendChild(card(`${s.events.length} events`, table([
			{label: 'Time', render: (e) => fmtTime(e.time_ms)},
			{label: 'Event', render: (e) => kindShort(e.kind)},
			{label: 'What', cls: 'mono wrap', render: (e) => e.violation ? `${kindShort(e.violation.kind)} ${e.violation.target}` :
				e.session_start ? (e.session_start.argv || []).join(' ') :
					e.session_exit ? `exit ${e.session_exit.exit_status} after ${fmtMs(e.session_exit.duration_ms)}` : ''},
			{label: 'User', key: 'user'}, {label: 'Profile', key: 'profile'},
			{label: '', render: (e) => h('details', {}, h('summary', {}, 'all fields'), fieldList(e))},
		], s.events.slice().reverse(), {cls: 'events', empty: 'No events for this session.'})));
	}

	// ---- policies ---------------------------------------------------------------------------------
	async function pagePolicies(v, parts) {
		const groups = await api('groups');
		v.appendChild(h('h1', {}, 'Policies'));
		const sel = parts[0] || (groups[0] && groups[0].name);
		v.appendChild(h('div', {class: 'tabs'}, groups.map((g) =>
			h('a', {href: '#/policies/' + encodeURIComponent(g.name), class: g.name === sel ? 'active' : ''}, g.name))));
		if (!sel) { v.appendChild(card(null, h('p', {class: 'muted'}, 'No groups yet.'))); return; }
		const pol = await api('console/policy/' + encodeURIComponent(sel));
		const ro = pol.rollout;
		const pct = ro.devices ? Math.round((100 * ro.devices_on_head) / ro.devices) : 0;
		const bar = h('div', {class: 'dist'});
		CorralChart.stacked(bar, [{key: 'on newest', n: ro.devices_on_head, cls: 'head'},
			{key: 'other versions', n: ro.devices - ro.devices_on_head, cls: 'old'}], {label: 'rollout'});
		const lat = ro.apply_latency_ms;
		const promote = h('div', {class: 'promote admin-only'});
		if (isAdmin() && ro.head_version) {
			const others = groups.filter((g) => g.name !== sel);
			const to = h('select', {'data-testid': 'promote-to'}, others.map((g) => h('option', {value: g.name}, g.name)));
			promote.appendChild(h('label', {class: 'field'}, h('span', {}, `Promote v${ro.head_version} to`), to));
			promote.appendChild(h('button', {type: 'button', class: 'primary', 'data-testid': 'promote',
				disabled: !others.length, onclick: async () => {
					const ok = await confirmDialog('Promote rollout',
						`Publish v${ro.head_version} (the same signed bundle) from ${sel} to ${to.value}?`, 'Promote');
					if (!ok) return;
					try {
						await api('console/promote', {method: 'POST', body: {from: sel, to: to.value}});
						go('policies/' + encodeURIComponent(to.value));
					} catch (e) { showError(e); }
				}}, 'Promote'));
		}
		v.appendChild(card(`Rollout of v${ro.head_version} in ${sel}`,
			h('p', {'data-testid': 'rollout-progress'}, `${ro.devices_on_head} of ${ro.devices} devices on the newest version (${pct}%)`),
			bar,
			h('p', {class: 'muted'}, `Publish → applied: p50 ${fmtMs(lat.p50)}, p95 ${fmtMs(lat.p95)}, p99 ${fmtMs(lat.p99)} (${lat.n} devices)`),
			h('div', {class: 'legend'}, ro.by_version.map((x) => h('span', {class: 'chip ' + (x.version === ro.head_version ? 'head' : 'old')}, `v${x.version}: ${x.devices}`))),
			promote));
		const hist = pol.history.slice().reverse();
		const pick = {a: hist[1] ? hist[1].version : null, b: hist[0] ? hist[0].version : null};
		const radio = (side, ver) => h('input', {type: 'radio', name: 'diff-' + side, value: ver,
			checked: pick[side] === ver, 'aria-label': `compare ${side} v${ver}`,
			onchange: () => { pick[side] = ver; }});
		v.appendChild(card('History', table([
			{label: 'Version', render: (r) => 'v' + r.version},
			{label: 'Published', render: (r) => fmtTime(r.published_ms)},
			{label: 'By', key: 'published_by'},
			{label: 'Signer keys', cls: 'mono', render: (r) => (r.signers || []).map((k) =>
				h('span', {class: 'keyid', title: k}, k.slice(0, 16) + '…'))},
			{label: 'Expires', render: (r) => fmtSec(r.expires_at)},
			{label: 'SHA-256', cls: 'mono', render: (r) => r.sha256.slice(0, 16) + '…'},
			{label: 'Old', render: (r) => radio('a', r.version)},
			{label: 'New', render: (r) => radio('b', r.version)},
		], hist, {empty: 'Nothing published to this group yet.'}),
		h('button', {type: 'button', 'data-testid': 'diff', disabled: hist.length < 2,
			onclick: () => go(`diff/${pick.a}/${pick.b}`)}, 'Compare selected versions')));
	}

	// Structural diff of two JSON documents: profiles (arrays of objects with a name) are
	// matched by name, arrays of scalars as sets (rules added/removed), the rest by key.
	function diffJson(a, b, path, out) {
		const isObj = (x) => x && typeof x === 'object' && !Array.isArray(x);
		if (Array.isArray(a) && Array.isArray(b)) {
			const named = (arr) => arr.length && arr.every((x) => isObj(x) && typeof x.name === 'string');
			if (named(a) || named(b)) {
				const ma = new Map(a.map((x) => [x.name, x])), mb = new Map(b.map((x) => [x.name, x]));
				for (const [k, x] of ma) if (!mb.has(k)) out.push({path: `${path}[${k}]`, op: 'removed', old: x});
				for (const [k, x] of mb) if (!ma.has(k)) out.push({path: `${path}[${k}]`, op: 'added', new: x});
				for (const [k, x] of ma) if (mb.has(k)) diffJson(x, mb.get(k), `${path}[${k}]`, out);
				return out;
			}
			const sa = a.map((x) => JSON.stringify(x)), sb = b.map((x) => JSON.stringify(x));
			for (const x of sa) if (!sb.includes(x)) out.push({path, op: 'removed', old: JSON.parse(x)});
			for (const x of sb) if (!sa.includes(x)) out.push({path, op: 'added', new: JSON.parse(x)});
			return out;
		}
		if (isObj(a) && isObj(b)) {
			for (const k of Object.keys(a)) {
				const p = path ? `${path}.${k}` : k;
				if (!(k in b)) out.push({path: p, op: 'removed', old: a[k]});
				else diffJson(a[k], b[k], p, out);
			}
			for (const k of Object.keys(b)) if (!(k in a)) out.push({path: path ? `${path}.${k}` : k, op: 'added', new: b[k]});
			return out;
		}
		if (JSON.stringify(a) !== JSON.stringify(b)) out.push({path, op: 'changed', old: a, new: b});
		return out;
	}

	async function pageDiff(v, parts) {
		const [va, vb] = parts;
		const [a, b] = await Promise.all([api('console/bundles/' + va), api('console/bundles/' + vb)]);
		v.appendChild(h('p', {class: 'crumbs'}, h('a', {href: '#/policies'}, 'Policies'), ` / diff v${va} → v${vb}`));
		v.appendChild(h('h1', {}, `Policy v${va} → v${vb}`));
		const useSource = a.source && b.source;
		const meta = diffJson({targets: a.targets, signers: a.signers, expires_at: fmtSec(a.expires_at)},
			{targets: b.targets, signers: b.signers, expires_at: fmtSec(b.expires_at)}, '', []);
		const changes = diffJson(useSource ? a.source : a.policy, useSource ? b.source : b.policy, '', []);
		const show = (x) => (x === undefined ? '' : typeof x === 'string' ? x : JSON.stringify(x, null, 1));
		const rows = (list) => table([
			{label: '', render: (c) => h('span', {class: 'op op-' + c.op}, c.op === 'added' ? '+' : c.op === 'removed' ? '−' : '~')},
			{label: 'Where', cls: 'mono', key: 'path'},
			{label: 'Old', cls: 'mono wrap old', render: (c) => show(c.old)},
			{label: 'New', cls: 'mono wrap new', render: (c) => show(c.new)},
		], list, {cls: 'diff', empty: 'No differences.'});
		v.appendChild(card(`${changes.length} change(s) in the ${useSource ? 'policy source (source_json)' : 'compiled policy'}`,
			h('div', {'data-testid': 'diff-table'}, rows(changes))));
		v.appendChild(card('Bundle metadata', rows(meta)));
	}

	// ---- enrollment tokens and audit ----------------------------------------------------------
	async function pageTokens(v) {
		const [toks, groups] = await Promise.all([api('console/enroll-tokens'), api('groups')]);
		v.appendChild(h('h1', {}, 'Enrollment tokens'));
		if (isAdmin()) {
			const out = h('div', {'aria-live': 'polite'});
			const form = h('form', {class: 'filters admin-only', 'data-testid': 'token-form'},
				h('label', {class: 'field'}, h('span', {}, 'Group'), h('select', {name: 'group'},
					groups.map((g) => h('option', {value: g.name}, g.name)))),
				h('label', {class: 'field'}, h('span', {}, 'Uses'), h('input', {name: 'uses', type: 'number', min: 1, max: 1000000, value: 1})),
				h('label', {class: 'field'}, h('span', {}, 'Valid for (days)'), h('input', {name: 'days', type: 'number', min: 1, max: 365, value: 7})),
				h('div', {class: 'filter-actions'}, h('button', {type: 'submit', class: 'primary'}, 'Create token')));
			form.addEventListener('submit', async (ev) => {
				ev.preventDefault();
				const d = Object.fromEntries(new FormData(form));
				try {
					const t = await api('enroll-tokens', {method: 'POST', body: {group: d.group,
						uses: Number(d.uses), expires_at: Math.floor(Date.now() / 1000) + Number(d.days) * 86400}});
					out.textContent = '';
					out.appendChild(h('div', {class: 'notice'}, 'New token (shown once): ', h('code', {class: 'mono'}, t.token)));
				} catch (e) { showError(e); }
			});
			v.appendChild(card('New enrollment token', form, out));
		}
		const now = Date.now() / 1000;
		v.appendChild(card(null, table([
			{label: 'Id', cls: 'mono', key: 'id'}, {label: 'Group', key: 'group'},
			{label: 'Used', render: (t) => `${t.uses} / ${t.max_uses}`},
			{label: 'Expires', render: (t) => h('span', {class: t.expires_at < now ? 'muted' : ''}, fmtSec(t.expires_at) + (t.expires_at < now ? ' (expired)' : ''))},
			{label: 'Created', render: (t) => fmtSec(t.created_at)}, {label: 'By', key: 'created_by'},
		], toks, {empty: 'No enrollment tokens.'})));
	}

	async function pageAudit(v) {
		const rows = await api('audit?limit=500');
		v.appendChild(h('h1', {}, 'Admin audit log'));
		v.appendChild(card(null, table([
			{label: 'Time', render: (r) => fmtTime(r.at_ms)}, {label: 'Actor', key: 'actor'},
			{label: 'Action', key: 'action'}, {label: 'Target', cls: 'mono', key: 'target'},
			{label: 'Detail', cls: 'wrap', key: 'detail'},
		], rows.slice().reverse(), {empty: 'Empty.'})));
	}

	// ---- auto-refresh: poll a cheap counter, re-render only when something changed ------------
	async function poll() {
		if (!S.token || !S.role || document.hidden || !$('modal').hidden) return;
		const active = document.activeElement;
		if (active && ['INPUT', 'SELECT', 'TEXTAREA'].includes(active.tagName)) return;
		if (document.querySelector('details[open]')) return;
		try {
			const c = await api('changes' + qs({since: S.counter === null ? '' : S.counter}));
			document.body.dataset.changes = String(c.counter);
			if (S.counter !== null && c.counter !== S.counter) {
				$('refresh').textContent = 'Updated ' + new Date().toLocaleTimeString();
				await render(true);
			} else S.counter = c.counter;
		} catch (e) {
			document.body.dataset.pollError = String(e.message || e); // next tick retries
		}
	}

	document.addEventListener('DOMContentLoaded', () => {
		$('logout').addEventListener('click', () => logout('Signed out.'));
		window.addEventListener('hashchange', () => render());
		document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !$('modal').hidden) $('modal-cancel').click(); });
		setInterval(poll, POLL_MS);
		render();
	});
})();
