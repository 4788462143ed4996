// The projections overview: one row per projection, polled every second;
// events/s drawn as a sparkline of the last five minutes; faulted ones
// listed on top with their fault and resume / skip / reset.
import { api, proj } from './api.js';
import { h, fmt, age, badge, confirmBox, showError } from './dom.js';
import { sparkline } from './json.js';

const POLL_MS = 1000;
const SAMPLES = 300; // five minutes at one per second
const rates = new Map(); // name → recent events/s, survives page changes

/** Ask, then run a lifecycle command (`resume`, `skip`, `reset`, ...). */
export async function command(name, what, errEl, done) {
  const why = {
    resume: `Retry the event ${name} faulted on?`,
    skip: `Step over the event ${name} faulted on? It is recorded and never applied.`,
    reset: `Drop the state and snapshots of ${name} and rebuild it from its start?`,
    stop: `Stop ${name}? It stays stopped across restarts until started.`,
  }[what];
  if (why && !(await confirmBox(why))) return;
  try {
    await api('POST', proj(name, `/${what}`));
    showError(errEl, null);
  } catch (err) {
    showError(errEl, err);
  }
  done && done();
}

function faultCard(p, errEl, refresh) {
  const f = p.fault;
  const btn = (what) => h('button', { class: `act-${what}`, onclick: () => command(p.name, what, errEl, refresh) }, what);
  return h('div', { class: 'fault', 'data-name': p.name },
    h('div', {}, h('a', { href: `#/p/${encodeURIComponent(p.name)}` }, h('b', {}, p.name)),
      ' faulted at position ', h('b', { class: 'f-pos' }, f.position), ' on kind ', h('code', { class: 'f-kind' }, f.kind),
      f.limit ? [' (limit: ', f.limit, ')'] : ''),
    h('pre', { class: 'f-error' }, f.error),
    h('div', { class: 'buttons' }, btn('resume'), btn('skip'), btn('reset')));
}

const COLS = ['name', 'state', 'offset', 'head', 'lag', 'rate', 'snapshot', 'plugin'];

function newRow(name) {
  const cells = {};
  const tr = h('tr', { 'data-name': name });
  for (const c of COLS) tr.append(cells[c] = h('td', { class: `c-${c}`, 'data-label': c }));
  cells.name.append(h('a', { href: `#/p/${encodeURIComponent(name)}` }, name));
  cells.rateText = h('span', { class: 'rate' });
  cells.spark = sparkline([]);
  cells.rate.append(cells.rateText, ' ', cells.spark);
  cells.pending = h('div', { class: 'pending muted' });
  return { tr, cells };
}

function set(el, text) { if (el.textContent !== text) el.textContent = text; }

function updateRow(row, p) {
  const { tr, cells } = row;
  tr.className = `st-${p.state}`;
  if (cells.state.dataset.state !== p.state) {
    cells.state.dataset.state = p.state;
    cells.state.replaceChildren(badge(p.state));
  }
  set(cells.offset, fmt(p.offset));
  set(cells.head, fmt(p.head));
  set(cells.lag, fmt(p.lag));
  set(cells.rateText, p.events_per_sec.toFixed(1));
  cells.spark.update(rates.get(p.name) || []);
  set(cells.snapshot, p.last_snapshot ? `${fmt(p.last_snapshot.offset)} (${age(p.last_snapshot.age_ms)} ago)` : '-');
  set(cells.plugin, `${p.plugin_name} ${p.plugin_version} · ${p.plugin_hash.slice(0, 12)}`);
  if (p.pending) {
    const q = p.pending;
    const pct = q.head ? Math.floor((100 * q.scanned) / q.head) : 100;
    set(cells.pending, `next: ${q.plugin_name} ${q.plugin_version} building ${pct}% (${fmt(q.scanned)}/${fmt(q.head)})`);
    if (!cells.pending.isConnected) cells.plugin.append(cells.pending);
  } else if (cells.pending.isConnected) cells.pending.remove();
}

export function overview(main, ctx) {
  const errEl = h('p', { class: 'error', hidden: true });
  const faults = h('section', { id: 'faults' });
  const tbody = h('tbody');
  const empty = h('p', { class: 'muted', hidden: true }, 'No projections deployed. ', h('a', { href: '#/deploy' }, 'Deploy one'), '.');
  main.replaceChildren(h('h1', {}, 'Projections'), errEl, faults,
    h('table', { class: 'grid', id: 'projections' },
      h('thead', {}, h('tr', {}, COLS.map((c) => h('th', {}, c === 'rate' ? 'events/s' : c)))), tbody),
    empty);
  const rows = new Map();
  let faultKey = '';

  const refresh = async () => {
    let list;
    try {
      ({ projections: list } = await api('GET', '/projections', undefined, { signal: ctx.signal }));
      showError(errEl, null);
    } catch (err) {
      if (ctx.alive()) showError(errEl, err);
      return;
    }
    if (!ctx.alive()) return;
    const seen = new Set();
    for (const p of list) {
      seen.add(p.name);
      const r = rates.get(p.name) || [];
      r.push(p.events_per_sec);
      if (r.length > SAMPLES) r.shift();
      rates.set(p.name, r);
      let row = rows.get(p.name);
      if (!row) { row = newRow(p.name); rows.set(p.name, row); }
      updateRow(row, p);
      if (row.tr.parentNode !== tbody) tbody.append(row.tr);
    }
    for (const [name, row] of rows) if (!seen.has(name)) { row.tr.remove(); rows.delete(name); }
    empty.hidden = list.length > 0;
    const faulted = list.filter((p) => p.fault);
    const key = JSON.stringify(faulted.map((p) => [p.name, p.fault]));
    if (key !== faultKey) {
      faultKey = key;
      faults.replaceChildren(...faulted.map((p) => faultCard(p, errEl, refresh)));
    }
    document.body.dataset.updated = String(Date.now());
  };
  refresh();
  ctx.every(POLL_MS, refresh);
}
