// The event log: streams with their revisions (filter, pages), one
// stream's events (pages), and the global log tail following live.
import { api } from './api.js';
import { h, fmt, showError } from './dom.js';
import { pretty } from './json.js';

const PAGE = 50;
const TAIL_KEEP = 500;

function eventItem(e) {
  return h('li', { class: 'event', 'data-position': e.position },
    h('div', {}, h('b', {}, `#${e.position}`), ' ',
      h('a', { href: `#/streams/${encodeURIComponent(e.stream)}` }, e.stream), ` rev ${e.revision} `,
      h('b', { class: 'kind' }, e.kind), ' ', h('span', { class: 'muted' }, new Date(e.timestamp).toISOString())),
    h('pre', {}, pretty(e.data)),
    e.metadata !== null ? h('pre', { class: 'muted' }, 'metadata ', pretty(e.metadata)) : '');
}

export function streams(main, ctx) {
  const filter = h('input', { id: 'stream-filter', placeholder: 'filter streams', 'aria-label': 'filter' });
  const list = h('tbody');
  const pager = h('div', { class: 'row pager' });
  const errEl = h('p', { class: 'error', hidden: true });
  main.replaceChildren(h('h1', {}, 'Streams'), filter, errEl,
    h('table', { class: 'grid', id: 'streams' }, h('thead', {}, h('tr', {}, h('th', {}, 'stream'), h('th', {}, 'revision'))), list), pager);
  let all = [];
  let page = 0;
  const render = () => {
    const f = filter.value.trim();
    const shown = f ? all.filter((s) => s.stream.includes(f)) : all;
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(page, pages - 1);
    list.replaceChildren(...shown.slice(page * PAGE, (page + 1) * PAGE).map((s) => h('tr', {},
      h('td', { 'data-label': 'stream' }, h('a', { href: `#/streams/${encodeURIComponent(s.stream)}` }, s.stream)),
      h('td', { 'data-label': 'revision', class: 'c-revision' }, fmt(s.revision)))));
    pager.replaceChildren(
      h('button', { disabled: page === 0, onclick: () => { page--; render(); } }, '← prev'),
      h('span', {}, `page ${page + 1} of ${pages} (${fmt(shown.length)} streams)`),
      h('button', { disabled: page + 1 >= pages, onclick: () => { page++; render(); } }, 'next →'));
  };
  filter.addEventListener('input', () => { page = 0; render(); });
  api('GET', '/streams', undefined, { signal: ctx.signal })
    .then((r) => { all = r.streams; render(); })
    .catch((err) => ctx.alive() && showError(errEl, err));
}

export function stream(main, ctx, name, from = 0) {
  from = Number(from) || 0;
  const list = h('ol', { class: 'events', id: 'stream-events' });
  const errEl = h('p', { class: 'error', hidden: true });
  const pager = h('div', { class: 'row pager' });
  main.replaceChildren(h('p', {}, h('a', { href: '#/streams' }, '← streams')), h('h1', {}, name), errEl, list, pager);
  const link = (r) => `#/streams/${encodeURIComponent(name)}/${r}`;
  api('GET', `/streams/${encodeURIComponent(name)}?from_revision=${from}&limit=${PAGE}`, undefined, { signal: ctx.signal })
    .then((page) => {
      list.replaceChildren(...page.events.map(eventItem));
      if (!page.events.length) list.append(h('li', { class: 'muted' }, 'no events here'));
      const last = from + Math.max(0, page.events.length - 1);
      pager.replaceChildren(
        from > 0 ? h('a', { href: link(Math.max(0, from - PAGE)) }, '← prev') : '',
        h('span', {}, `revisions ${from}–${last}`),
        page.next !== null ? h('a', { href: link(page.next), id: 'next-page' }, 'next →') : '');
    })
    .catch((err) => ctx.alive() && showError(errEl, err));
}

export function tail(main, ctx) {
  const list = h('ol', { class: 'events', id: 'tail' });
  const errEl = h('p', { class: 'error', hidden: true });
  const info = h('p', { class: 'muted' }, 'Following the log: new events appear at the top.');
  main.replaceChildren(h('h1', {}, 'Log tail'), info, errEl, list);
  (async () => {
    let from;
    try {
      const { head } = await api('GET', '/health', undefined, { signal: ctx.signal });
      from = Math.max(0, head - PAGE) + 1;
    } catch (err) { if (ctx.alive()) showError(errEl, err); return; }
    while (ctx.alive()) {
      try {
        const page = await api('GET', `/all?from_position=${from}&limit=200&wait_ms=20000`, undefined, { signal: ctx.signal });
        for (const e of page.events) list.prepend(eventItem(e));
        while (list.children.length > TAIL_KEEP) list.lastChild.remove();
        from = page.next ?? page.last_scanned + 1;
        showError(errEl, null);
      } catch (err) {
        if (!ctx.alive()) return;
        showError(errEl, err);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  })();
}
