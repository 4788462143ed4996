// Browser tests of the web UI against a real `hume serve` (started by the
// Rust test tests/tests/projection/ui.rs, which sets the environment):
//
//   HUME_URL        server with projections `kv` (stream kv, events at 1..3:
//                   a=1, b={"x":[1,2]}, a=2), `hostile` (stream h,
//                   faulted by a `reject` event), `bank` (account-*,
//                   offset 7) and `limited` (stream lim, hostile faulted by
//                   its 1 MiB snapshot size limit)
//   TOKEN_URL       server started with --auth-token-file; TOKEN its token
//   UPLOAD_WASM     a plugin file to deploy by upload (counter)
//   HOSTILE_WASM    the plugin `limited` runs, to raise its limit
//   VARIANT_WASM    another build of kv, deployed as a new version of `kv`
//   CHROMIUM        the browser (default /usr/bin/chromium)
//   ARTIFACTS       where screenshots go (not committed)
//
// Every check prints `ok - NAME`; the first failure exits non-zero.
import { chromium } from 'playwright-core';
import { createHash } from 'node:crypto';
import { readFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';

const env = (k, d) => process.env[k] ?? d ?? (() => { throw new Error(`set ${k}`); })();
const URL = env('HUME_URL');
const ARTIFACTS = env('ARTIFACTS', 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

async function call(method, path, body, base = URL, token) {
  const headers = {};
  if (method !== 'GET') headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
  const text = await res.text();
  let value; try { value = JSON.parse(text); } catch { value = text; }
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return value;
}
const get = (p) => call('GET', p);
const append = (stream, kind, data) => call('POST', `/streams/${stream}`, { events: [{ kind, data }] });
const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
function assert(cond, msg) { if (!cond) throw new Error(msg); }
async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const browser = await chromium.launch({ executablePath: env('CHROMIUM', '/usr/bin/chromium'), args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
// Development only: serve the UI files from disk (UI_DEV_DIR), to try
// changes without rebuilding the binary.
async function devFiles(ctx) {
  if (!process.env.UI_DEV_DIR) return;
  await ctx.route('**/ui/*', (route) => {
    const name = new globalThis.URL(route.request().url()).pathname.slice(4) || 'index.html';
    const type = { js: 'text/javascript', css: 'text/css', svg: 'image/svg+xml' }[name.split('.').pop()] || 'text/html';
    route.fulfill({ path: `${process.env.UI_DEV_DIR}/${name}`, contentType: type });
  });
}
await devFiles(context);
const shot = (name) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
let failed = false;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (err) {
    failed = true;
    console.log(`FAILED - ${name}: ${err.stack || err}`);
    await shot(`FAILED-${name.replace(/\W+/g, '-')}`).catch(() => {});
    throw err;
  }
}
const text = (sel) => page.locator(sel).first().innerText();
const confirmDialog = page.locator('dialog#confirm');

try {
  await check('the overview lists the projections with their offsets', async () => {
    await page.goto(`${URL}/ui/`);
    for (const p of (await get('/projections')).projections) {
      const row = page.locator(`#projections tr[data-name="${p.name}"]`);
      await row.waitFor();
      await until(`${p.name} offset ${p.offset}`, async () => (await row.locator('.c-offset').innerText()) === String(p.offset));
    }
    await shot('overview');
  });

  await check('the overview updates live after an append', async () => {
    const { last_position: pos } = await append('kv', 'add', { key: 'c', value: 3 });
    await until('kv offset shows the new event', async () =>
      (await page.locator('#projections tr[data-name="kv"] .c-offset').innerText()) === String(pos));
    assert(await page.locator('#projections tr[data-name="kv"] svg.spark polyline').count() === 1, 'a sparkline');
  });

  await check('the faulted projection stands out with position, kind and error', async () => {
    const s = await get('/projections/hostile');
    assert(s.state === 'faulted', `hostile is ${s.state}`);
    const card = page.locator('#faults .fault[data-name="hostile"]');
    await card.waitFor();
    assert((await card.locator('.f-pos').innerText()) === String(s.fault.position), 'fault position');
    assert((await card.locator('.f-kind').innerText()) === s.fault.kind, 'fault kind');
    assert((await card.locator('.f-error').innerText()).includes('rejected on purpose'), 'fault error');
    assert(await page.locator('#projections tr[data-name="hostile"].st-faulted').count() === 1, 'row marked faulted');
  });

  await check('resume asks first; cancel does nothing, confirm retries', async () => {
    const before = (await get('/projections/hostile')).fault.at;
    await page.locator('#faults .fault[data-name="hostile"] .act-resume').click();
    await confirmDialog.waitFor();
    await confirmDialog.locator('button[value=no]').click();
    await new Promise((r) => setTimeout(r, 500));
    assert((await get('/projections/hostile')).fault.at === before, 'cancel must not resume');
    await page.locator('#faults .fault[data-name="hostile"] .act-resume').click();
    await confirmDialog.locator('button[value=yes]').click();
    await until('a new fault after the retry', async () => {
      const s = await get('/projections/hostile');
      return s.fault && s.fault.at !== before;
    });
  });

  await check('skip asks first and brings the projection back to running', async () => {
    const { position } = (await get('/projections/hostile')).fault;
    await page.locator('#faults .fault[data-name="hostile"] .act-skip').click();
    await confirmDialog.locator('button[value=yes]').click();
    const s = await until('hostile running', async () => {
      const s = await get('/projections/hostile');
      return s.state === 'running' && s;
    });
    assert(same(s.skipped_positions, [position]), `skipped ${JSON.stringify(s.skipped_positions)}`);
    await page.locator('#faults .fault[data-name="hostile"]').waitFor({ state: 'detached' });
    await until('row shows running', async () => (await text('#projections tr[data-name="hostile"] .c-state')) === 'running');
  });

  await check('after its cause is fixed, resume brings a faulted projection back to running', async () => {
    const s = await get('/projections/limited');
    assert(s.state === 'faulted' && s.fault.limit === 'snapshot size limit', `limited: ${JSON.stringify(s)}`);
    const card = page.locator('#faults .fault[data-name="limited"]');
    await card.waitFor();
    assert((await card.locator('.f-error').innerText()).includes('--max-snapshot'), 'the error names the flag');
    // The fix: the same plugin with a higher limit, applied in place.
    const plugin = readFileSync(env('HOSTILE_WASM')).toString('base64');
    const fixed = await call('POST', '/projections', {
      name: 'limited', plugin, streams: s.streams, options: { ...s.options, max_snapshot_bytes: 32 << 20 },
    });
    assert(fixed.status === 'updated', `in place: ${JSON.stringify(fixed)}`);
    await card.locator('.act-resume').click();
    await confirmDialog.locator('button[value=yes]').click();
    await until('limited running with its snapshot written', async () => {
      const now = await get('/projections/limited');
      return now.state === 'running' && now.last_snapshot && now.last_snapshot.offset === s.offset;
    });
    await card.waitFor({ state: 'detached' });
    await until('row shows running', async () => (await text('#projections tr[data-name="limited"] .c-state')) === 'running');
  });

  await check('the state browser shows the state; the pointer box narrows it', async () => {
    await page.goto(`${URL}/ui/#/p/kv`);
    const want = await get('/projections/kv/state');
    await until('state shown', async () => (await page.locator('#state').getAttribute('data-json')) === JSON.stringify(want));
    await page.locator('#state .j-key[data-pointer="/b/x"]').waitFor();
    await page.fill('#pointer', '/b/x');
    await page.press('#pointer', 'Enter');
    await until('pointer narrows', async () => (await page.locator('#state').getAttribute('data-json')) === '[1,2]');
    await page.locator('#state .j-key[data-pointer="/b/x/1"]').waitFor();
    await shot('projection');
  });

  await check('the query box asks the plugin', async () => {
    await page.fill('#query-request', '{"key": "a"}');
    await page.click('#query-request + div button');
    await until('answer', async () => same(JSON.parse((await text('#query-answer')) || 'null'), { value: 2 }));
  });

  await check('time travel shows the state at a position as ?at= does, and the diff', async () => {
    for (const at of [2, 3, 1]) {
      await page.fill('#at-box', String(at));
      await page.dispatchEvent('#at-box', 'change');
      await until(`state at ${at}`, async () => (await page.locator('#at-state').getAttribute('data-at')) === String(at));
      const want = await get(`/projections/kv/state?at=${at}`);
      const shown = await page.locator('#at-state').getAttribute('data-json');
      assert(shown === JSON.stringify(want), `at ${at}: shown ${shown}, API ${JSON.stringify(want)}`);
      const diff = await get(`/projections/kv/diff?from=${at - 1}&to=${at}`);
      const ops = await page.locator('#at-diff li').allInnerTexts();
      assert(ops.length === diff.patch.length, `diff at ${at}: ${ops} vs ${JSON.stringify(diff.patch)}`);
      for (const [i, op] of diff.patch.entries()) assert(ops[i].startsWith(`${op.op} ${op.path}`), `op ${ops[i]}`);
      assert((await text('#at-events li.here')).startsWith(String(at)), 'the event at the position is marked');
    }
    assert((await text('#at-diff')).startsWith('add /a'), 'at 1 a is added');
    await shot('time-travel');
  });

  await check('stream pages: streams with revisions, a filter, a stream\'s events', async () => {
    await page.goto(`${URL}/ui/#/streams`);
    const { streams } = await get('/streams');
    for (const s of streams) {
      await until(`stream ${s.stream}`, async () =>
        (await page.locator(`#streams tr:has(a[href="#/streams/${s.stream}"]) .c-revision`).innerText().catch(() => '')) === String(s.revision));
    }
    await page.fill('#stream-filter', 'k');
    await until('filtered', async () => (await page.locator('#streams tbody tr').count()) === streams.filter((s) => s.stream.includes('k')).length);
    await page.click('a[href="#/streams/kv"]');
    const { events } = await get('/streams/kv');
    await until('events listed', async () => (await page.locator('#stream-events li.event').count()) === events.length);
    const first = await page.locator('#stream-events li.event pre').first().innerText();
    assert(first === JSON.stringify(events[0].data, null, 2), `pretty JSON: ${first}`);
  });

  await check('the log tail follows live', async () => {
    await page.goto(`${URL}/ui/#/all`);
    await page.locator('#tail li').first().waitFor();
    const { last_position: pos } = await append('kv', 'add', { key: 'tail', value: true });
    await page.locator(`#tail li[data-position="${pos}"]`).waitFor({ timeout: 10000 });
    assert((await page.locator('#tail li').first().getAttribute('data-position')) === String(pos), 'newest on top');
  });

  await check('deploy by upload: validate, then deploy', async () => {
    const file = env('UPLOAD_WASM');
    await page.goto(`${URL}/ui/#/deploy`);
    await page.setInputFiles('#wasm', file);
    await until('validated', async () => (await text('#validate .v-hash').catch(() => '')) === sha256(file));
    assert((await text('#validate .v-name')) === 'counter', 'plugin name');
    assert((await text('#validate .v-world')).includes('0.1'), 'world');
    assert((await page.inputValue('#d-name')) === 'counter', 'name defaults to the plugin name');
    await page.fill('#d-streams', 'kv');
    await page.click('#d-submit');
    await page.locator('#d-done').waitFor();
    const s = await get('/projections/counter');
    assert(s.plugin_hash === sha256(file) && same(s.streams, ['kv']), JSON.stringify(s));
    await shot('deploy');
  });

  await check('a new version builds beside the old one and swaps in', async () => {
    const file = env('VARIANT_WASM');
    await page.goto(`${URL}/ui/#/deploy`);
    await page.setInputFiles('#wasm', file);
    await until('validated', async () => (await text('#validate .v-hash').catch(() => '')) === sha256(file));
    await page.fill('#d-name', 'kv');
    await page.fill('#d-streams', 'kv');
    await page.click('#d-submit');
    await until('swapped', async () => (await text('#d-done').catch(() => '')).startsWith('Swapped in'));
    assert((await get('/projections/kv')).plugin_hash === sha256(file), 'kv runs the new version');
  });

  await check('at 390 px nothing overflows horizontally', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const route of ['#/', '#/p/kv', '#/streams', '#/streams/kv', '#/all', '#/deploy']) {
      await page.goto(`${URL}/ui/${route}`);
      await page.waitForLoadState('networkidle').catch(() => {});
      await new Promise((r) => setTimeout(r, 600));
      const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      assert(scroll <= client, `${route}: ${scroll} px wide in a ${client} px window`);
      await shot(`narrow-${route.replace(/\W+/g, '') || 'overview'}`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await check('with a token the UI asks for it once and works', async () => {
    const base = env('TOKEN_URL');
    const token = env('TOKEN');
    const ctx = await browser.newContext();
    await devFiles(ctx);
    const p = await ctx.newPage();
    await p.goto(`${base}/ui/`);
    const dlg = p.locator('dialog#token');
    await dlg.waitFor();
    await p.fill('#token-input', 'wrong-token-wrong-token');
    await p.press('#token-input', 'Enter');
    await until('refused, asked again', async () => (await p.locator('#token-why').innerText()).includes('refused'));
    await p.fill('#token-input', token);
    await p.press('#token-input', 'Enter');
    await p.locator('#projections tr[data-name="kv"]').waitFor();
    assert(await p.evaluate(() => sessionStorage.getItem('hume-token')) === token, 'kept in sessionStorage');
    await p.reload();
    await p.locator('#projections tr[data-name="kv"]').waitFor();
    assert(!(await dlg.isVisible()), 'not asked again');
    // A state change with the token works.
    await p.goto(`${base}/ui/#/p/kv`);
    await p.locator('.act-take-snapshot').click();
    await until('snapshot taken', async () => (await call('GET', '/projections/kv', undefined, base, token)).last_snapshot);
    await ctx.close();
  });

  await check('a cross-site page cannot change state', async () => {
    const before = await get('/projections');
    const head = (await get('/health')).head;
    const attack = `<!doctype html><body><iframe name=sink></iframe>
      <form id=f method=POST target=sink action="${URL}/streams/evil" enctype="text/plain">
      <input name='{"events":[{"kind":"x","data":{},"a":"' value='"}]}'></form>
      <form id=g method=POST target=sink action="${URL}/projections/kv/reset"><input name=a value=1></form>
      <script>
      const u = ${JSON.stringify(URL)};
      const body = JSON.stringify({ events: [{ kind: 'x', data: {} }] });
      const tries = [
        fetch(u + '/streams/evil', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }),
        fetch(u + '/streams/evil', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body }),
        fetch(u + '/projections/kv/reset', { method: 'POST', mode: 'no-cors' }),
        fetch(u + '/projections/hostile/stop', { method: 'POST', mode: 'no-cors', body: '{}' }),
        fetch(u + '/projections', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
          body: JSON.stringify({ name: 'evil', plugin: 'AA==', streams: ['*'] }) }),
      ].map((p) => p.then((r) => 'sent:' + r.type, (e) => 'blocked:' + e.name));
      document.getElementById('f').submit();
      setTimeout(() => document.getElementById('g').submit(), 200);
      Promise.all(tries).then((r) => { document.title = 'done ' + r.join(' '); });
      </script>`;
    const server = createServer((req, res) => { res.setHeader('Content-Type', 'text/html'); res.end(attack); });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const evilOrigin = `http://localhost:${server.address().port}`;
    try {
      const p = await context.newPage();
      await p.goto(`${evilOrigin}/`);
      await p.waitForFunction(() => document.title.startsWith('done'), null, { timeout: 10000 });
      const outcome = await p.title();
      assert(outcome.includes('blocked:TypeError'), `the CORS request must be blocked: ${outcome}`);
      await new Promise((r) => setTimeout(r, 1000)); // let the form posts land
      await p.close();
    } finally { server.close(); }
    assert((await get('/health')).head === head, 'nothing was appended');
    const after = await get('/projections');
    assert(!after.projections.some((p) => p.name === 'evil'), 'nothing was deployed');
    for (const p of before.projections) {
      const now = after.projections.find((q) => q.name === p.name);
      assert(now && now.state === p.state && now.offset >= p.offset && now.applied >= p.applied, `${p.name} untouched: ${JSON.stringify(now)}`);
    }
  });

  await check('no script errors in the console', async () => {
    const real = consoleErrors.filter((e) => !/Failed to load resource|401|409/.test(e));
    assert(real.length === 0, real.join('\n'));
  });
} catch {
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
