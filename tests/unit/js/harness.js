'use strict';
// The client under test, driven through a fake window: fake DOM, fake
// WebSocket, manual clock. Shared by client.test.js and notice.test.js.
const { FakeDocument } = require('./fakedom.js');
const V = require('../../../vango_mp/static/vango.js');

const P = V.PROTOCOL;
const COUNTER = '<p data-hid="1">Count: 0</p><button id="inc" data-hid="2" data-ve="click">+</button>';

function clock() {
  let time = 1_700_000_000_000, nextId = 1;
  const timers = new Map();
  const add = (fn, ms, every) => { const id = nextId++; timers.set(id, { fn, at: time + ms, every }); return id; };
  return {
    Date: { now: () => time },
    setTimeout: (fn, ms) => add(fn, ms, 0),
    setInterval: (fn, ms) => add(fn, ms, ms),
    clearTimeout: (id) => timers.delete(id),
    clearInterval: (id) => timers.delete(id),
    pending: () => timers.size,
    advance(ms) { // run due timers in time order
      const end = time + ms;
      for (;;) {
        let next = null;
        for (const [id, t] of timers) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
        if (!next) break;
        const [id, t] = next;
        time = t.at;
        if (t.every) t.at += t.every; else timers.delete(id);
        t.fn();
      }
      time = end;
    },
  };
}

// location + history of one tab: pushState/replaceState/back/forward move
// the location (Back/Forward fire popstate, as a browser does); assign()
// and reload() are recorded, never performed. `scrollX/Y` and scrollTo().
function browser(href) {
  const listeners = {};
  const location = {
    protocol: 'http:', host: 'localhost:8080', pathname: '/', search: '', hash: '',
    reloads: 0, assigned: [],
    get origin() { return this.protocol + '//' + this.host; },
    get href() { return this.origin + this.pathname + this.search + this.hash; },
    go(url) {
      const u = new URL(url, this.href);
      Object.assign(this, { protocol: u.protocol, host: u.host, pathname: u.pathname, search: u.search, hash: u.hash });
    },
    assign(url) { this.assigned.push(new URL(url, this.href).href); },
    reload() { this.reloads++; },
  };
  location.go(href);
  const win = {
    location,
    scrollX: 0, scrollY: 0,
    scrollTo(x, y) { this.scrollX = x; this.scrollY = y; },
    addEventListener(type, fn) { (listeners[type] = listeners[type] || []).push(fn); },
    fire(type) { for (const fn of listeners[type] || []) fn({ type }); },
  };
  const history = win.history = {
    entries: [{ state: null, url: location.href }], index: 0, scrollRestoration: 'auto',
    get state() { return this.entries[this.index].state; },
    get length() { return this.entries.length; },
    pushState(state, _, url) {
      this.entries.splice(this.index + 1, Infinity, { state: null, url: location.href });
      this.index++;
      this.replaceState(state, _, url);
    },
    replaceState(state, _, url) {
      const u = url === undefined ? location.href : new URL(url, location.href).href;
      if (new URL(u).origin !== location.origin) throw new Error('SecurityError: ' + u);
      this.entries[this.index] = { state: structuredClone(state), url: u };
      location.go(u);
    },
    go(delta) { // what the Back/Forward buttons do
      this.index += delta;
      location.go(this.entries[this.index].url);
      win.fire('popstate');
    },
    back() { this.go(-1); },
    forward() { this.go(1); },
  };
  return win;
}

function setup({ inner = COUNTER, cfg = {}, href = 'http://localhost:8080/counter' } = {}) {
  const doc = new FakeDocument();
  doc.body.innerHTML = `<div id="vango-root" data-hid="0">${inner}</div>`;
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }
    send(bytes) { this.sent.push(V.decodeMessage(bytes)); }
    close(code) { this.readyState = 3; this.closedWith = code; }
    // Server side of the fake.
    open() { this.readyState = 1; this.onopen({}); }
    push(frame) { this.onmessage({ data: V.encodeMessage(frame).buffer }); }
    drop(code) { this.readyState = 3; this.onclose({ code }); }
  }
  const g = Object.assign(browser(href), {
    ...clock(),
    document: doc,
    WebSocket: FakeSocket,
    console: { debug() {}, error() {} },
  });
  const client = new V.Client(g, { csrf: 'tok', path: '/counter', ws: '/_vango/ws', worker: 0, ...cfg });
  client.listen();
  const root = doc.getElementById('vango-root');
  return { g, doc, root, api: client.api, client, sockets, ws: () => sockets[sockets.length - 1] };
}

// Connect and complete the handshake; returns the socket.
function open(t, { sid = 'sid-1', seq = 0, resumed = false, worker = 3 } = {}) {
  t.api.connect();
  const ws = t.ws();
  ws.open();
  ws.push([P.WELCOME, sid, seq, resumed, worker]);
  return ws;
}

// The pending reconnect's socket opens and the server welcomes it back.
function welcomeBack(t, { sid = 'sid-1', seq = 0, resumed = true, worker = 1 } = {}) {
  t.ws().open();
  t.ws().push([P.WELCOME, sid, seq, resumed, worker]);
}

const sentOf = (ws, type) => ws.sent.filter((f) => f[0] === type);

module.exports = { V, P, COUNTER, clock, browser, setup, open, welcomeBack, sentOf };
