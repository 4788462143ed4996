// The shell: hash routes → pages. Each page gets a context whose polling
// and requests stop when the user navigates away.
import { overview } from './overview.js';
import { projection } from './projection.js';
import { streams, stream, tail } from './log.js';
import { deploy } from './deploy.js';

const routes = [
  [/^#?\/?$/, overview],
  [/^#\/p\/([^/]+)$/, projection],
  [/^#\/streams$/, streams],
  [/^#\/streams\/([^/]+)(?:\/(\d+))?$/, stream],
  [/^#\/all$/, tail],
  [/^#\/deploy$/, deploy],
];

let current = null;

function context() {
  const abort = new AbortController();
  const timers = [];
  let alive = true;
  return {
    signal: abort.signal,
    alive: () => alive,
    every(ms, fn) {
      let busy = false;
      timers.push(setInterval(async () => {
        if (busy || document.hidden) return;
        busy = true;
        try { await fn(); } finally { busy = false; }
      }, ms));
    },
    close() { alive = false; timers.forEach(clearInterval); abort.abort(); },
  };
}

function route() {
  if (current) current.close();
  current = context();
  const main = document.getElementById('main');
  const hash = location.hash || '#/';
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('here', a.getAttribute('href') === hash || (hash.startsWith('#/p/') && a.getAttribute('href') === '#/'));
  }
  for (const [re, page] of routes) {
    const m = hash.match(re);
    if (m) {
      page(main, current, ...m.slice(1).filter((x) => x !== undefined).map(decodeURIComponent));
      return;
    }
  }
  main.textContent = `No page at ${hash}.`;
}

window.addEventListener('hashchange', route);
route();
