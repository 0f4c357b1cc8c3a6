// SPDX-License-Identifier: Apache-2.0
// corral console: a small hand-drawn SVG chart module (no library, no inline styles: only SVG
// presentation attributes and CSS classes, so it works under the strict CSP). Exposes
// window.CorralChart with bars() (time series), hbars() (labelled horizontal bars) and
// stacked() (one horizontal stacked bar with a legend).
'use strict';
(function () {
	const NS = 'http://www.w3.org/2000/svg';

	function el(tag, attrs, text) {
		const e = document.createElementNS(NS, tag);
		for (const k in attrs || {}) e.setAttribute(k, String(attrs[k]));
		if (text !== undefined) e.textContent = text;
		return e;
	}

	function niceMax(v) {
		if (v <= 0) return 1;
		const p = Math.pow(10, Math.floor(Math.log10(v)));
		for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
		return 10 * p;
	}

	function fmtNum(n) {
		if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + 'M';
		if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + 'k';
		return String(n);
	}

	// Vertical bars over time. points: [{t (ms), n}], opts: {bucket (ms), since, until,
	// label}. Empty buckets are drawn as gaps so the time axis stays honest.
	function bars(container, points, opts) {
		container.textContent = '';
		const W = 640, H = 200, L = 44, R = 8, T = 10, B = 28;
		const bucket = opts.bucket;
		const start = opts.since, end = opts.until || Date.now();
		const n = Math.max(1, Math.ceil((end - start) / bucket));
		const counts = new Array(n).fill(0);
		for (const p of points) {
			const i = Math.floor((p.t - start) / bucket);
			if (i >= 0 && i < n) counts[i] += p.n;
		}
		const max = niceMax(Math.max(0, ...counts));
		const svg = el('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
			'aria-label': opts.label || 'chart'});
		const pw = W - L - R, ph = H - T - B;
		for (let k = 0; k <= 4; k++) {
			const y = T + ph - (ph * k) / 4;
			svg.appendChild(el('line', {x1: L, x2: W - R, y1: y, y2: y, class: 'grid'}));
			svg.appendChild(el('text', {x: L - 6, y: y + 4, 'text-anchor': 'end', class: 'axis'},
				fmtNum((max * k) / 4)));
		}
		const bw = pw / n;
		counts.forEach((c, i) => {
			if (!c) return;
			const h = (ph * c) / max;
			const r = el('rect', {x: L + i * bw + bw * 0.1, y: T + ph - h,
				width: Math.max(1, bw * 0.8), height: h, class: 'bar'});
			r.appendChild(el('title', {}, `${new Date(start + i * bucket).toLocaleString()}: ${c}`));
			svg.appendChild(r);
		});
		const ticks = Math.min(n, 6);
		for (let k = 0; k <= ticks; k++) {
			const t = start + ((end - start) * k) / ticks;
			const d = new Date(t);
			const label = bucket >= 86400000 ? d.toLocaleDateString() :
				`${d.getMonth() + 1}/${d.getDate()} ${String(d.getHours()).padStart(2, '0')}h`;
			svg.appendChild(el('text', {x: L + (pw * k) / ticks, y: H - 8,
				'text-anchor': k === 0 ? 'start' : k === ticks ? 'end' : 'middle', class: 'axis'}, label));
		}
		container.appendChild(svg);
		return svg;
	}

	// Horizontal bars. items: [{key, n, href?}]
	function hbars(container, items, opts) {
		container.textContent = '';
		if (!items.length) {
			const p = document.createElement('p');
			p.className = 'muted';
			p.textContent = (opts && opts.empty) || 'Nothing yet.';
			container.appendChild(p);
			return null;
		}
		const rowH = 24, W = 400, LBL = 150, H = items.length * rowH + 4;
		const max = Math.max(1, ...items.map((i) => i.n));
		const svg = el('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart hbars', role: 'img',
			'aria-label': (opts && opts.label) || 'breakdown'});
		items.forEach((it, k) => {
			const y = k * rowH + 2;
			const g = el('g', {class: 'hrow'});
			const label = String(it.key === '' ? '(none)' : it.key);
			g.appendChild(el('text', {x: LBL - 6, y: y + 16, 'text-anchor': 'end', class: 'label'},
				label.length > 20 ? label.slice(0, 19) + '…' : label));
			const w = ((W - LBL - 60) * it.n) / max;
			const r = el('rect', {x: LBL, y: y + 4, width: Math.max(1, w), height: rowH - 8, class: 'bar'});
			r.appendChild(el('title', {}, `${label}: ${it.n}`));
			g.appendChild(r);
			g.appendChild(el('text', {x: LBL + w + 6, y: y + 16, class: 'value'}, fmtNum(it.n)));
			if (it.href) {
				const a = el('a', {href: it.href});
				a.appendChild(g);
				svg.appendChild(a);
			} else svg.appendChild(g);
		});
		container.appendChild(svg);
		return svg;
	}

	// One stacked bar. parts: [{key, n, cls}] -> classes seg-<cls> colour the segments.
	function stacked(container, parts, opts) {
		container.textContent = '';
		const W = 400, H = 22;
		const total = parts.reduce((s, p) => s + p.n, 0);
		const svg = el('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart stacked', role: 'img',
			'aria-label': (opts && opts.label) || 'distribution', preserveAspectRatio: 'none'});
		let x = 0;
		if (!total) svg.appendChild(el('rect', {x: 0, y: 0, width: W, height: H, class: 'seg-empty'}));
		for (const p of parts) {
			if (!p.n) continue;
			const w = (W * p.n) / total;
			const r = el('rect', {x, y: 0, width: w, height: H, class: 'seg-' + (p.cls || 'other')});
			r.appendChild(el('title', {}, `${p.key}: ${p.n}`));
			svg.appendChild(r);
			x += w;
		}
		container.appendChild(svg);
		return svg;
	}

	window.CorralChart = {bars, hbars, stacked, fmtNum};
})();
