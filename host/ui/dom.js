// Tiny DOM helpers: build elements, format numbers, confirm dialogs.

/** h('a', {href: '#/'}, 'text', child...) → element. `on*` attrs are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const fmt = (n) => (typeof n === 'number' ? n.toLocaleString('en') : String(n ?? '-'));

export function age(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

/** Ask before doing something: resolves true when the user confirms. */
export function confirmBox(text) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), { once: true });
    dlg.returnValue = '';
    dlg.showModal();
  });
}

/** A status badge for a run state string (whatever the server says). */
export const badge = (state) => h('span', { class: `badge s-${state}` }, state);

/** Show an error (or clear it) in an element. */
export function showError(el, err) {
  el.textContent = err ? String(err.message || err) : '';
  el.hidden = !err;
}
