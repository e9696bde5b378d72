// wsgate admin view: polls /admin/stats, keeps a short history per node,
// turns counters into rates and draws them on canvases. Plain JavaScript,
// no libraries: the page must work on a machine without internet access.
// The browser sends the API key itself (HTTP Basic, asked once).
'use strict';

const params = new URLSearchParams(location.search);
// ?interval=ms polls faster or slower (tests use it); 1 s by default.
const INTERVAL = Math.min(10000, Math.max(100, Number(params.get('interval')) || 1000));
const KEEP = 300; // samples kept per node: 5 minutes at 1 s

const OUTCOMES = [
  ['accepted', '101', '#0b6e4f'], ['bad_request', '400', '#8a8f99'], ['unauthorized', '401', '#d97706'],
  ['forbidden', '403', '#7c3aed'], ['rate_limited', '429', '#dc2626'], ['unavailable', '503', '#7f1d1d'],
];
const NODE_COLORS = ['#1f4e99', '#0b6e4f', '#b45309', '#7c3aed', '#be123c', '#0e7490'];

const history = new Map(); // node → [{t, s}] (s: NodeStats as sent)
const $ = (id) => document.getElementById(id);

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  if (Number.isInteger(v)) return String(v);
  if (v < 1) return String(Number(v.toFixed(2)));
  return v < 10 ? v.toFixed(1) : String(Math.round(v));
}

// rate returns per-second increases of get(s) between consecutive samples.
function rates(samples, get) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    const dv = get(samples[i].s) - get(samples[i - 1].s);
    out.push({ t: samples[i].t, v: dt > 0 && dv >= 0 ? dv / dt : 0 });
  }
  return out;
}

// sumSeries adds series point by point on the time axis of the first.
function sumSeries(list) {
  if (!list.length) return [];
  return list[0].map((p, i) => ({ t: p.t, v: list.reduce((a, s) => a + (s[i] ? s[i].v : 0), 0) }));
}

const refusedOf = (s) => OUTCOMES.slice(1).reduce((a, [k]) => a + (s.handshakes[k] || 0), 0);

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 8, 10]) if (v <= m * p) return m * p; // quarters stay round
  return 10 * p;
}

// draw plots series [{name, color, points:[{t,v}]}] on canvas over the
// window [t0, t1] and records what it drew in data attributes (tests read
// them).
function draw(canvas, legend, series, t0, t1) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 44, right = 8, top = 8, bottom = 18;
  const pw = w - left - right, ph = h - top - bottom;
  let max = 0;
  for (const s of series) for (const p of s.points) max = Math.max(max, p.v);
  max = niceMax(max);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#667';
  ctx.strokeStyle = '#e5e7eb';
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y + 0.5); ctx.lineTo(left + pw, y + 0.5); ctx.stroke();
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    ctx.fillText(fmt((max * i) / 4), left - 6, y);
  }
  ctx.textAlign = 'left'; ctx.textBaseline = 'top';
  ctx.fillText(`${Math.round((t1 - t0) / 1000)} s`, left, top + ph + 4);
  ctx.textAlign = 'right';
  ctx.fillText('now', left + pw, top + ph + 4);
  const span = Math.max(1, t1 - t0);
  let points = 0;
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.points.forEach((p, i) => {
      const x = left + ((p.t - t0) / span) * pw;
      const y = top + ph - (p.v / max) * ph;
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      points++;
    });
    ctx.stroke();
  }
  canvas.dataset.points = String(points);
  canvas.dataset.max = String(max);
  legend.replaceChildren(...series.map((s) => {
    const span = document.createElement('span');
    const swatch = document.createElement('i');
    swatch.style.background = s.color;
    const last = s.points.length ? s.points[s.points.length - 1].v : 0;
    span.append(swatch, `${s.name} ${fmt(last)}`);
    return span;
  }));
}

function render(cluster) {
  const nodes = [...history.keys()].sort();
  const now = Date.now();
  let t0 = now;
  for (const n of nodes) { const h = history.get(n); if (h.length) t0 = Math.min(t0, h[0].t); }
  const t1 = Math.max(t0 + 1000, now);
  const perNode = nodes.map((n, i) => ({ node: n, color: NODE_COLORS[i % NODE_COLORS.length], samples: history.get(n) }));

  draw($('c-conns'), $('l-conns'), perNode.map((p) => ({
    name: p.node, color: p.color, points: p.samples.map((x) => ({ t: x.t, v: x.s.conns })),
  })), t0, t1);
  draw($('c-handshakes'), $('l-handshakes'), OUTCOMES.map(([k, code, color]) => ({
    name: `${code} ${k.replace('_', ' ')}`, color,
    points: sumSeries(perNode.map((p) => rates(p.samples, (s) => s.handshakes[k] || 0))),
  })), t0, t1);
  const pushes = sumSeries(perNode.map((p) => rates(p.samples, (s) => s.pushes)));
  const delivered = sumSeries(perNode.map((p) => rates(p.samples, (s) => s.delivered)));
  draw($('c-pushes'), $('l-pushes'), [
    { name: 'pushes/s', color: '#1f4e99', points: pushes },
    { name: 'delivered/s', color: '#0b6e4f', points: delivered },
  ], t0, t1);
  draw($('c-slow'), $('l-slow'), perNode.map((p) => ({
    name: p.node, color: p.color, points: rates(p.samples, (s) => s.slow_consumers),
  })), t0, t1);

  // Tiles: sums over the nodes, rates over the last interval.
  const lastRate = (series) => (series.length ? series[series.length - 1].v : 0);
  const latest = perNode.map((p) => p.samples[p.samples.length - 1].s);
  const sum = (f) => latest.reduce((a, s) => a + f(s), 0);
  $('v-conns').textContent = fmt(sum((s) => s.conns));
  $('v-users').textContent = fmt(sum((s) => s.users));
  $('v-handshakes').textContent = fmt(lastRate(sumSeries(perNode.map((p) => rates(p.samples, (s) => s.handshakes.accepted || 0)))));
  $('v-pushes').textContent = fmt(lastRate(pushes));
  $('v-delivered').textContent = fmt(lastRate(delivered));
  $('v-slow').textContent = fmt(sum((s) => s.slow_consumers));

  $('nodes').replaceChildren(...perNode.map((p) => {
    const s = p.samples[p.samples.length - 1].s;
    const r = (f) => fmt(lastRate(rates(p.samples, f)));
    const tr = document.createElement('tr');
    for (const v of [p.node, fmt(s.conns), fmt(s.echo_conns), fmt(s.users), fmt(s.topics),
      r((x) => x.handshakes.accepted || 0), r(refusedOf), r((x) => x.requests), r((x) => x.pushes),
      r((x) => x.delivered), fmt(s.slow_consumers)]) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  }));
  $('cluster').textContent = `Showing ${cluster}.`;
}

async function poll() {
  try {
    const resp = await fetch('/admin/stats', { cache: 'no-store', credentials: 'same-origin' });
    if (!resp.ok) throw new Error(`GET /admin/stats: ${resp.status}`);
    const body = await resp.json();
    for (const s of body.nodes) {
      if (!history.has(s.node)) history.set(s.node, []);
      const h = history.get(s.node);
      h.push({ t: body.time, s });
      if (h.length > KEEP) h.shift();
      if (s.self) $('node').textContent = s.node;
    }
    render(body.cluster);
    const st = $('status');
    st.textContent = `updated ${new Date(body.time).toLocaleTimeString()} · every ${INTERVAL / 1000} s`;
    st.className = '';
    document.body.dataset.samples = String((Number(document.body.dataset.samples) || 0) + 1);
  } catch (e) {
    $('status').textContent = `not updating: ${e.message}`;
    $('status').className = 'bad';
  } finally {
    setTimeout(poll, INTERVAL);
  }
}

$('lookup').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const user = $('user').value.trim();
  const out = $('user-result');
  if (!user) return;
  out.className = '';
  out.textContent = 'looking up…';
  try {
    const resp = await fetch(`/admin/user/${encodeURIComponent(user)}`, { cache: 'no-store', credentials: 'same-origin' });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error || resp.status);
    out.className = body.online ? 'online' : '';
    out.textContent = `${body.user}: ${body.online ? 'online' : 'offline'} · connections ${body.connections} · ` +
      `last push seq ${body.seq} · acked ${body.acked}`;
  } catch (e) {
    out.className = 'bad';
    out.textContent = `look-up failed: ${e.message}`;
  }
});

poll();
