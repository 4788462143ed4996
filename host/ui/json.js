// JSON views: a collapsible tree (each key knows its JSON pointer), a
// JSON Patch list, and the inline-SVG sparkline.
import { h } from './dom.js';

const esc = (k) => String(k).replace(/~/g, '~0').replace(/\//g, '~1');

function leaf(v) {
  const type = v === null ? 'null' : typeof v;
  return h('span', { class: `j-${type}` }, JSON.stringify(v));
}

/**
 * A collapsible tree of `value`. Objects and arrays are <details>, open to
 * depth `open`. `onKey(pointer)` is called when a key is clicked.
 */
export function tree(value, { open = 2, onKey, pointer = '' } = {}) {
  const node = (v, ptr, depth, label) => {
    const key = label === undefined ? null
      : h('button', { class: 'j-key', 'data-pointer': ptr, onclick: (e) => { e.preventDefault(); onKey && onKey(ptr); } }, label);
    if (v === null || typeof v !== 'object') {
      return h('div', { class: 'j-row' }, key, key && ': ', leaf(v));
    }
    const entries = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
    const [l, r] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
    const d = h('details', { open: depth < open },
      h('summary', {}, key, key && ': ', `${l} ${entries.length} ${Array.isArray(v) ? 'items' : 'keys'} ${r}`));
    for (const [k, x] of entries) d.append(node(x, `${ptr}/${esc(k)}`, depth + 1, String(k)));
    return d;
  };
  return h('div', { class: 'json-tree' }, node(value, pointer, 0));
}

/** A JSON Patch (RFC 6902) as a list; "no change" when empty. */
export function patchList(patch) {
  if (!patch || !patch.length) return h('p', { class: 'muted patch-empty' }, 'no change');
  return h('ul', { class: 'patch' }, patch.map((op) => h('li', { class: `op-${op.op}` },
    h('b', {}, op.op), ' ', h('code', {}, op.path || '/'),
    'value' in op ? [' = ', h('code', {}, JSON.stringify(op.value))] : '',
    op.from !== undefined ? [' from ', h('code', {}, op.from)] : '')));
}

/** A small line chart of `values` (numbers) as inline SVG. */
export function sparkline(values, width = 90, height = 20) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.setAttribute('class', 'spark');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  svg.append(line);
  svg.update = (vals) => {
    const max = Math.max(1e-9, ...vals);
    const step = vals.length > 1 ? width / (vals.length - 1) : 0;
    line.setAttribute('points', vals.map((v, i) =>
      `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`).join(' '));
  };
  svg.update(values);
  return svg;
}

/** Pretty JSON text. */
export const pretty = (v) => JSON.stringify(v, null, 2);
