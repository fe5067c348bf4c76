// Page script of tests/apps/interopapp.py: runs before vango.js (no defer), so hooks go in window.VangoHooks.
window.hookLog = [];
window.addEventListener('toast', (e) => { document.getElementById('toast-text').textContent = e.detail.text; });
window.VangoHooks = {
  Probe: {
    mounted() {
      window.hookLog.push('mounted ' + this.el.id);
      this.handleEvent('bump', (d) => window.hookLog.push('bump ' + d.n));
      this.pushEvent('hello', { n: 7 });
      this.el.addEventListener('click', () => this.pushEvent('risky', { n: 1 })); // the server reverts it
    },
    updated() { window.hookLog.push('updated ' + this.el.textContent); },
    destroyed() { window.hookLog.push('destroyed'); },
    reverted() { window.hookLog.push('reverted'); },
  },
};
customElements.define('probe-island', class extends HTMLElement {
  connectedCallback() {
    this.addEventListener('vango:message', (e) => { this.textContent = e.detail.text; });
  }
});
