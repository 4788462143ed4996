// How the overview copes with 1,000 projections: the UI files come from a
// real `hume serve` (HUME_URL). By default `/projections` is answered here
// with 1,000 synthetic statuses whose offsets move on every poll; with
// REAL=1 the server's own answer is used (deploy the projections first, and
// keep appending so the rows change). Prints the time to first render
// (navigation → every row shown) and the cost of one update (answer handed
// to the page → rows updated), median of 20 polls.
//
//   HUME_URL=http://127.0.0.1:7171 [REAL=1] node tests/ui/bench.mjs
import { chromium } from 'playwright-core';

const URL = process.env.HUME_URL || 'http://127.0.0.1:7171';
const N = Number(process.env.PROJECTIONS || 1000);
let tick = 0;
let answered = 0;
const status = (i) => ({
  name: `p${String(i).padStart(4, '0')}`, state: i % 50 === 0 ? 'faulted' : 'running',
  offset: 1000 + tick * 10 + i, scanned: 1000 + tick * 10 + i, head: 20000 + tick * 10, lag: 0,
  events_per_sec: (tick * 7 + i) % 100, applied: 0, skipped_unknown: 0, skipped_positions: [],
  last_snapshot: { offset: 1000, taken_at: 0, age_ms: 5000 }, plugin_hash: 'ab'.repeat(32),
  plugin_name: 'kv', plugin_version: '0.1.0', streams: ['kv'], options: {},
  fault: i % 50 === 0 ? { position: 7, kind: 'bogus', error: 'unknown kind', at: tick } : null, last_error: null,
});

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.route('**/projections', async (route) => {
  tick++;
  if (process.env.REAL) {
    const response = await route.fetch();
    const body = await response.text();
    answered = Date.now();
    route.fulfill({ response, body });
    return;
  }
  const body = JSON.stringify({ projections: Array.from({ length: N }, (_, i) => status(i)) });
  answered = Date.now();
  route.fulfill({ contentType: 'application/json', body });
});
const t0 = Date.now();
await page.goto(`${URL}/ui/`);
await page.waitForFunction((n) => document.querySelectorAll('#projections tbody tr').length === n, N, { polling: 10 });
const first = Date.now() - t0;
const costs = [];
for (let i = 0; i < 20; i++) {
  const before = await page.evaluate(() => document.body.dataset.updated);
  await page.waitForFunction((b) => document.body.dataset.updated !== b, before, { polling: 'raf' });
  const updated = Number(await page.evaluate(() => document.body.dataset.updated));
  costs.push(updated - answered);
}
costs.sort((a, b) => a - b);
console.log(`${N} projections: first render ${first} ms; one update (median of 20) ${costs[10]} ms, worst ${costs[19]} ms`);
await browser.close();
