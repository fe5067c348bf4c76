// vango-mp devtools: served and linked only with --dev (vango_mp/observability/devtools.py).
// window.vango.inspect() resolves to the session's InspectState: component tree with signal
// values, the last events it received and the last patch frames it sent. The panel (the
// "vango" button, or Alt+Shift+V) shows the same and refreshes when a new frame arrives.
(function () {
  'use strict';
  const api = window.vango;
  if (!api) return;
  const d = document;
  api.inspect = function () {
    if (!api.sessionId) return Promise.reject(new Error('no session yet'));
    return fetch('/_vango/devtools/inspect?sid=' + encodeURIComponent(api.sessionId), { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error('inspect: HTTP ' + r.status))));
  };
  function el(tag, text, css) {
    const e = d.createElement(tag);
    if (text != null) e.textContent = text;
    if (css) Object.assign(e.style, css); // CSSOM, not a style attribute: fine under a strict CSP
    return e;
  }
  function tree(nodes) {
    const ul = el('ul', null, { margin: '0', paddingLeft: '1em' });
    for (const n of nodes) {
      const li = el('li', n.name + (n.key != null ? ' key=' + n.key : '') + ' (' + n.renders + ' renders)');
      li.className = 'vango-dt-component';
      for (const s of n.signals) li.appendChild(el('div', '• ' + s, { color: '#7dd3fc' }));
      if (n.children.length) li.appendChild(tree(n.children));
      ul.appendChild(li);
    }
    return ul;
  }
  function section(title, rows) {
    const box = el('section');
    box.appendChild(el('h4', title, { margin: '.6em 0 .2em', fontSize: '12px' }));
    if (!rows.length) box.appendChild(el('div', 'none', { opacity: '.6' }));
    for (const r of rows) box.appendChild(r);
    return box;
  }
  const panel = el('div', null, {
    position: 'fixed', right: '8px', bottom: '52px', width: 'min(420px, 92vw)', maxHeight: '60vh', overflow: 'auto',
    background: '#0f172a', color: '#e2e8f0', font: '12px/1.4 ui-monospace, monospace', padding: '8px 10px',
    borderRadius: '8px', boxShadow: '0 6px 24px rgba(0,0,0,.35)', zIndex: '2147483646', display: 'none',
  });
  panel.id = 'vango-devtools';
  const toggle = el('button', 'vango', {
    position: 'fixed', right: '8px', bottom: '8px', zIndex: '2147483647', minHeight: '36px', padding: '0 12px',
    borderRadius: '18px', border: '0', background: '#1e293b', color: '#e2e8f0', font: '12px ui-monospace, monospace',
    cursor: 'pointer',
  });
  toggle.id = 'vango-devtools-toggle';
  toggle.type = 'button';
  let shownSeq = -1;
  function render(st) {
    panel.replaceChildren(
      el('div', 'session ' + st.session + ' · ' + st.state + ' · seq ' + st.seq + ' · ' + st.path, { opacity: '.8' }),
      el('div', Object.entries(st.stats).map(([k, v]) => k + ' ' + v).join(' · '), { opacity: '.8' }),
      section('Components', [tree(st.tree)]),
      section('Last events', st.events.slice().reverse().map((e) => el('div', e.name + ' @' + e.hid + ' ' + e.payload))),
      section('Last patches', st.patches.slice().reverse().map((p) => el('div', '#' + p.seq + ' ' + p.bytes + ' B ' + p.frame))),
    );
  }
  function refresh() {
    shownSeq = api.lastSeq;
    api.inspect().then(render, (err) => panel.replaceChildren(el('div', String(err))));
  }
  function flip() {
    const open = panel.style.display === 'none';
    panel.style.display = open ? 'block' : 'none';
    if (open) refresh();
  }
  toggle.addEventListener('click', flip);
  d.addEventListener('keydown', (e) => { if (e.altKey && e.shiftKey && e.code === 'KeyV') flip(); });
  // Live while open: refetch when the session's sequence moves (a frame arrived).
  setInterval(() => { if (panel.style.display !== 'none' && api.lastSeq !== shownSeq) refresh(); }, 500);
  function mount() { d.body.appendChild(panel); d.body.appendChild(toggle); }
  if (d.body) mount(); else d.addEventListener('DOMContentLoaded', mount);
})();
