// Deploy from the browser: pick a .wasm, see what validate says, choose
// streams and options, deploy; a new version under an existing name shows
// its build-beside progress until it swaps in.
import { api, proj } from './api.js';
import { h, fmt, showError } from './dom.js';

function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function deploy(main, ctx) {
  const file = h('input', { type: 'file', id: 'wasm', accept: '.wasm,application/wasm', 'aria-label': 'plugin file' });
  const info = h('dl', { id: 'validate', class: 'config' });
  const errEl = h('p', { class: 'error', hidden: true });
  const name = h('input', { id: 'd-name', required: true, pattern: '[A-Za-z0-9._\\-]+', 'aria-label': 'name' });
  const streams = h('input', { id: 'd-streams', required: true, placeholder: 'kv, account-*, *', 'aria-label': 'streams' });
  const every = h('input', { id: 'd-every', type: 'number', min: 0, value: 100, 'aria-label': 'snapshot every' });
  const strict = h('input', { id: 'd-strict', type: 'checkbox', checked: true });
  const startEnd = h('input', { id: 'd-end', type: 'checkbox' });
  const keep = h('input', { id: 'd-keep', type: 'checkbox' });
  const submit = h('button', { id: 'd-submit', disabled: true }, 'Deploy');
  const progress = h('div', { id: 'd-progress' });
  const known = h('datalist', { id: 'known-streams' });
  streams.setAttribute('list', 'known-streams');
  let plugin = null;

  const field = (label, input, help) => h('label', { class: 'field' }, h('span', {}, label), input, help ? h('small', { class: 'muted' }, help) : '');
  main.replaceChildren(h('h1', {}, 'Deploy a projection'),
    field('Plugin (.wasm component)', file), info, errEl,
    h('form', { id: 'deploy-form', onsubmit: (e) => { e.preventDefault(); go(); } },
      field('Name', name), field('Streams', streams, 'comma-separated; category-* for a category, * for every stream'), known,
      field('Snapshot every N events', every),
      h('label', { class: 'check' }, strict, ' strict (fault on an unknown kind)'),
      h('label', { class: 'check' }, startEnd, ' start from the end of the log (new projection)'),
      h('label', { class: 'check' }, keep, ' keep state (new version: start from the running version\'s snapshot)'),
      h('div', {}, submit)),
    progress);

  api('GET', '/streams', undefined, { signal: ctx.signal })
    .then((r) => known.replaceChildren(...r.streams.slice(0, 500).map((s) => h('option', { value: s.stream }))))
    .catch(() => {});

  file.addEventListener('change', async () => {
    plugin = null; submit.disabled = true; info.replaceChildren(); showError(errEl, null);
    const f = file.files[0];
    if (!f) return;
    try {
      const b64 = base64(new Uint8Array(await f.arrayBuffer()));
      const v = await api('POST', '/plugins/validate', { plugin: b64 });
      const item = (k, val) => [h('dt', {}, k), h('dd', { class: `v-${k}` }, val)];
      info.replaceChildren(...item('name', v.name), ...item('version', v.version),
        ...item('kinds', v.kinds.length ? v.kinds.join(', ') : '(every kind)'),
        ...item('state', v.state_encoding), ...item('world', v.world), ...item('hash', v.hash));
      if (!name.value) name.value = v.name;
      plugin = { b64, hash: v.hash };
      submit.disabled = false;
    } catch (err) { showError(errEl, err); }
  });

  async function go() {
    if (!plugin) return;
    showError(errEl, null);
    const body = {
      name: name.value.trim(),
      plugin: plugin.b64,
      streams: streams.value.split(',').map((s) => s.trim()).filter(Boolean),
      options: { snapshot_every: Number(every.value), strict: strict.checked, start_from: startEnd.checked ? 'end' : 'beginning' },
      keep_state: keep.checked,
    };
    try {
      submit.disabled = true;
      const out = await api('POST', '/projections', body);
      const link = h('a', { href: `#/p/${encodeURIComponent(out.name)}` }, out.name);
      if (out.status !== 'building') {
        progress.replaceChildren(h('p', { class: 'ok', id: 'd-done' }, 'Deployed ', link, `: ${out.plugin_name} ${out.plugin_version}`));
        return;
      }
      const bar = h('progress', { max: 100, value: 0 });
      const text = h('span');
      progress.replaceChildren(h('p', {}, 'Building ', link, ` ${out.plugin_name} ${out.plugin_version} beside the running version: `, bar, ' ', text));
      while (ctx.alive()) {
        const s = await api('GET', proj(out.name));
        if (!s.pending && s.plugin_hash === out.plugin_hash) {
          progress.replaceChildren(h('p', { class: 'ok', id: 'd-done' }, 'Swapped in: ', link, ` now runs ${s.plugin_name} ${s.plugin_version}`));
          return;
        }
        if (!s.pending) { showError(errEl, 'the new version is gone (replaced or undeployed)'); return; }
        const q = s.pending;
        bar.value = q.head ? Math.floor((100 * q.scanned) / q.head) : 0;
        text.textContent = `${fmt(q.scanned)} of ${fmt(q.head)} (${q.state})`;
        await new Promise((r) => setTimeout(r, 500));
      }
    } catch (err) { showError(errEl, err); } finally { submit.disabled = !plugin; }
  }
}
