// The /widgets page's own script (vango_mp/demo/interop.py). It may run before
// vango.js, so its hook goes in window.VangoHooks rather than vango.hook().
'use strict';
window.addEventListener('toast', (e) => {
  const el = document.getElementById('toast-text');
  if (el) el.textContent = e.detail && e.detail.text;
});

window.VangoHooks = window.VangoHooks || {};
window.VangoHooks.Chart = {
  mounted() {
    this.el.addEventListener('click', (e) => {
      const n = this.points().length, r = this.el.getBoundingClientRect();
      if (n) this.pushEvent('pick', { index: Math.floor((e.clientX - r.left) / r.width * n) });
    });
    this.draw();
  },
  updated() { this.draw(); },
  points() { return (this.el.getAttribute('data-points') || '').split(',').filter(Boolean).map(Number); },
  draw() { // bars scaled to the tallest, drawn on the canvas (no library)
    const c = this.el, g = c.getContext('2d'), ps = this.points(), max = Math.max(1, ...ps);
    const w = c.width / Math.max(1, ps.length);
    g.clearRect(0, 0, c.width, c.height);
    g.fillStyle = '#4a7bd0';
    ps.forEach((p, i) => {
      const bar = (p / max) * (c.height - 4);
      g.fillRect(i * w + 2, c.height - bar, w - 4, bar);
    });
    c.setAttribute('data-drawn', String(ps.length)); // what a test (or a curious user) can read
  },
};
