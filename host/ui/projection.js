// One projection: status and configuration, the state browser (tree,
// JSON pointer, copy), the query box, and time travel over positions
// (state at a position, the diff from the one before, events around it).
import { api, proj } from './api.js';
import { h, fmt, badge, showError } from './dom.js';
import { tree, patchList, pretty } from './json.js';
import { command } from './overview.js';

const AROUND = 10; // positions shown on each side in time travel

export function projection(main, ctx, name) {
  const errEl = h('p', { class: 'error', hidden: true });
  const head = h('div', { class: 'head' });
  const config = h('dl', { class: 'config' });
  const pointer = h('input', { id: 'pointer', placeholder: '/json/pointer, e.g. /accounts/42', 'aria-label': 'JSON pointer' });
  const stateView = h('div', { id: 'state' });
  const stateErr = h('p', { class: 'error', hidden: true });
  const copied = h('span', { class: 'muted' });
  const request = h('textarea', { id: 'query-request', rows: 3, 'aria-label': 'query request' }, '{}');
  const answer = h('pre', { id: 'query-answer' });
  const slider = h('input', { type: 'range', id: 'at-slider', min: 0, max: 0, value: 0, list: 'snap-ticks', 'aria-label': 'position' });
  const atBox = h('input', { type: 'number', id: 'at-box', min: 0, value: 0, 'aria-label': 'position number' });
  const ticks = h('datalist', { id: 'snap-ticks' });
  const travelState = h('div', { id: 'at-state' });
  const travelDiff = h('div', { id: 'at-diff' });
  const travelEvents = h('div', { id: 'at-events' });
  const travelErr = h('p', { class: 'error', hidden: true });
  let current = null; // the state value shown
  let status = null;

  main.replaceChildren(
    h('p', {}, h('a', { href: '#/' }, '← projections')),
    head, errEl,
    h('section', {}, h('h2', {}, 'Configuration'), config),
    h('section', {}, h('h2', {}, 'State'),
      h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); loadState(); } },
        pointer, h('button', {}, 'Show'),
        h('button', { type: 'button', id: 'copy', onclick: copy }, 'Copy as JSON'), copied),
      stateErr, stateView),
    h('section', {}, h('h2', {}, 'Query'),
      h('form', { onsubmit: (e) => { e.preventDefault(); runQuery(); } },
        request, h('div', {}, h('button', {}, 'Query'))), answer),
    h('section', {}, h('h2', {}, 'Time travel'),
      h('p', { class: 'muted' }, 'The state right after a log position (ticks: retained snapshots), what changed at that position, and the events of its streams around it.'),
      h('div', { class: 'row' }, slider, atBox), ticks, travelErr,
      h('div', { class: 'travel' },
        h('div', {}, h('h3', {}, 'State'), travelState),
        h('div', {}, h('h3', {}, 'Change at this position'), travelDiff)),
      h('h3', {}, 'Events around it'), travelEvents));

  async function loadStatus() {
    try {
      status = await api('GET', proj(name), undefined, { signal: ctx.signal });
      showError(errEl, null);
    } catch (err) { if (ctx.alive()) showError(errEl, err); return; }
    const s = status;
    const act = (what) => h('button', { class: `act-${what}`, onclick: () => command(name, what, errEl, refreshAll) }, what);
    head.replaceChildren(h('h1', {}, name, ' ', badge(s.state)),
      s.fault ? h('div', { class: 'fault' }, 'faulted at position ', h('b', {}, s.fault.position), ' on kind ', h('code', {}, s.fault.kind),
        h('pre', {}, s.fault.error)) : '',
      h('div', { class: 'buttons' },
        s.fault ? [act('resume'), act('skip')] : '',
        s.state === 'stopped' ? act('start') : act('stop'), act('reset'), act('take-snapshot')));
    const item = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
    config.replaceChildren(
      ...item('streams', s.streams.join(', ')),
      ...item('offset / head / lag', `${fmt(s.offset)} / ${fmt(s.head)} / ${fmt(s.lag)}`),
      ...item('plugin', `${s.plugin_name} ${s.plugin_version} (${s.plugin_hash})`),
      ...item('last snapshot', s.last_snapshot ? fmt(s.last_snapshot.offset) : '-'),
      ...item('skipped', `${s.skipped_unknown} unknown, positions [${s.skipped_positions.join(', ')}]`),
      ...item('options', h('pre', {}, pretty(s.options))),
      ...(s.pending ? item('next version', `${s.pending.plugin_name} ${s.pending.plugin_version}: building, ${fmt(s.pending.scanned)} of ${fmt(s.pending.head)}`) : []));
    const max = Math.max(s.offset, 0);
    if (Number(slider.max) !== max) {
      const atEnd = Number(slider.value) === Number(slider.max);
      slider.max = max;
      atBox.max = max;
      if (atEnd) { slider.value = max; atBox.value = max; travel(); }
    }
  }

  async function loadState() {
    const p = pointer.value.trim();
    const q = p ? `&pointer=${encodeURIComponent(p)}` : '';
    try {
      let value;
      try {
        value = await api('GET', proj(name, `/state?timeout_ms=2000${q}`));
      } catch (err) {
        if (err.status !== 409) throw err; // faulted or stopped: the current state
        value = await api('GET', proj(name, `/state?dirty=true${q}`));
      }
      current = value;
      stateView.dataset.json = JSON.stringify(value);
      stateView.replaceChildren(tree(value, { pointer: p, onKey: (ptr) => { pointer.value = ptr; loadState(); } }));
      showError(stateErr, null);
    } catch (err) { showError(stateErr, err); }
  }

  async function copy() {
    const text = pretty(current);
    try { await navigator.clipboard.writeText(text); copied.textContent = 'copied'; } catch {
      const t = h('textarea', {}, text); document.body.append(t); t.select();
      copied.textContent = document.execCommand('copy') ? 'copied' : 'copy failed'; t.remove();
    }
  }

  async function runQuery() {
    try {
      answer.textContent = pretty(await api('POST', proj(name, '/query'), request.value));
      answer.classList.remove('error');
    } catch (err) { answer.textContent = err.message; answer.classList.add('error'); }
  }

  async function loadTicks() {
    try {
      const { snapshots } = await api('GET', proj(name, '/snapshots'));
      ticks.replaceChildren(...snapshots.map((s) => h('option', { value: s.offset })));
    } catch { /* ticks are a nicety */ }
  }

  let travelSeq = 0;
  async function travel() {
    const at = Number(slider.value);
    const seq = ++travelSeq;
    travelState.dataset.at = '';
    try {
      const [state, diff, around] = await Promise.all([
        api('GET', proj(name, `/state?at=${at}`)),
        api('GET', proj(name, `/diff?from=${Math.max(0, at - 1)}&to=${at}`)),
        api('GET', proj(name, `/diff?from=${Math.max(0, at - AROUND)}&to=${at + AROUND <= Number(slider.max) ? at + AROUND : slider.max}&events=true`)),
      ]);
      if (seq !== travelSeq || !ctx.alive()) return;
      travelState.replaceChildren(tree(state));
      travelState.dataset.json = JSON.stringify(state);
      travelState.dataset.at = String(at);
      travelDiff.replaceChildren(at === 0 ? h('p', { class: 'muted' }, 'the start') : patchList(diff.patch));
      travelEvents.replaceChildren(around.events.length ? h('ol', { class: 'events' }, around.events.map((e) =>
        h('li', { class: e.position === at ? 'here' : '' }, h('b', {}, e.position), ' ', h('code', {}, e.stream), ' #', e.revision, ' ',
          h('b', {}, e.kind), ' ', h('code', {}, JSON.stringify(e.data))))) : h('p', { class: 'muted' }, 'no events of its streams here'));
      showError(travelErr, null);
    } catch (err) { if (seq === travelSeq) showError(travelErr, err); }
  }

  let timer = 0;
  slider.addEventListener('input', () => {
    atBox.value = slider.value;
    clearTimeout(timer);
    timer = setTimeout(travel, 150);
  });
  atBox.addEventListener('change', () => { slider.value = atBox.value; atBox.value = slider.value; travel(); });

  function refreshAll() { loadStatus(); loadState(); loadTicks(); }
  refreshAll();
  ctx.every(2000, loadStatus);
}
