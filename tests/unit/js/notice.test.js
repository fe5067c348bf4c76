'use strict';
// Close 4013 (memory pressure): the server ended the session; the client
// shows why, in a notice, and neither reconnects nor reloads.
const test = require('node:test');
const assert = require('node:assert/strict');
const { FakeDocument } = require('./fakedom.js');
const V = require('../../../vango_mp/static/vango.js');

const P = V.PROTOCOL;

function setup() {
  const doc = new FakeDocument();
  doc.body.innerHTML = '<div id="vango-root" data-hid="0"><p data-hid="1">Count: 0</p></div>';
  const sockets = [], timers = [];
  class FakeSocket {
    constructor(url) { this.url = url; this.readyState = 0; sockets.push(this); }
    send() {}
    close(code) { this.readyState = 3; this.closedWith = code; }
  }
  const g = {
    Date: { now: () => 1_700_000_000_000 },
    setTimeout: (fn, ms) => timers.push({ fn, ms }),
    setInterval: () => 0, clearTimeout() {}, clearInterval() {},
    document: doc,
    location: { protocol: 'http:', host: 'localhost:8080', pathname: '/counter', search: '', reloads: 0,
      reload() { this.reloads++; } },
    WebSocket: FakeSocket,
    console: { debug() {}, error() {} },
  };
  const client = new V.Client(g, { csrf: 'tok', path: '/counter', ws: '/_vango/ws', worker: 0 });
  client.api.connect();
  const ws = sockets[0];
  ws.readyState = 1;
  ws.onopen({});
  ws.onmessage({ data: V.encodeMessage([P.WELCOME, 'sid-1', 0, false, 0]).buffer });
  return { g, doc, client, sockets, timers, ws };
}

test('close 4013 mirrors protocol.py and maps to the notice action', () => {
  assert.equal(P.Close.MEMORY_PRESSURE, 4013);
  assert.equal(V.closeAction(4013), 'notice');
});

test('close 4013: the reason is shown in a role=alert notice; no reconnect, no reload', () => {
  const t = setup();
  assert.equal(t.client.api.state, 'open');
  t.ws.readyState = 3;
  t.ws.onclose({ code: 4013, reason: 'server under memory pressure' });
  const notice = t.doc.getElementById('vango-notice');
  assert.ok(notice, 'notice shown');
  assert.equal(notice.getAttribute('role'), 'alert');
  assert.match(notice.innerHTML, /server under memory pressure/);
  assert.match(notice.innerHTML, /Reload the page/);
  assert.equal(t.client.api.state, 'closed');
  assert.equal(t.timers.length, 0, 'no reconnect scheduled');
  assert.equal(t.g.location.reloads, 0);
  assert.equal(t.sockets.length, 1);
});

test('a second notice replaces the first; a missing reason gets a default text', () => {
  const t = setup();
  V.showNotice(t.doc, 'first');
  t.ws.readyState = 3;
  t.ws.onclose({ code: 4013, reason: '' });
  const notices = [...t.doc.body.descendants()].filter((el) => el.getAttribute('id') === 'vango-notice');
  assert.equal(notices.length, 1);
  assert.doesNotMatch(notices[0].innerHTML, /first/);
  assert.match(notices[0].innerHTML, /memory pressure/);
});

test('1013 (server busy) still reconnects with backoff and shows no notice (yet: see the reconnect toast)', () => {
  const t = setup();
  t.ws.readyState = 3;
  t.ws.onclose({ code: 1013, reason: 'server busy' });
  assert.equal(t.client.api.state, 'connecting');
  assert.ok(t.timers.some((x) => x.ms <= 1000), 'a retry within the 1 s backoff');
  assert.equal(t.doc.getElementById('vango-notice'), null);
});
