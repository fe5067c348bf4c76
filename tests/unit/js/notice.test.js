'use strict';
// The notice (#vango-notice): close 4013 (memory pressure) says why the
// server ended the session, and neither reconnects nor reloads; the
// reconnect toast says the socket is down and goes once it is back.
const test = require('node:test');
const assert = require('node:assert/strict');
const V = require('../../../vango_mp/static/vango.js');

const { P, setup: harnessSetup, open, welcomeBack } = require('./harness.js');

// An open session on the counter page (the 4013 tests start from there).
function setup() {
  const t = harnessSetup();
  t.ws = open(t, { sid: 'sid-1', worker: 0 });
  return t;
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
  assert.equal(t.g.pending(), 0, 'no reconnect scheduled');
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
  t.g.advance(1000);
  assert.equal(t.sockets.length, 2, 'retried within the 1 s backoff');
  assert.equal(t.doc.getElementById('vango-notice'), null);
});

const notice = (t) => t.doc.getElementById('vango-notice');
const noticeText = (t) => notice(t) && notice(t).childNodes[0].data;

test('reconnect toast: shown only once the socket stays down 2 s, gone on WELCOME', () => {
  const t = harnessSetup();
  open(t).drop(1006);
  t.g.advance(1000); // the first retry fails fast
  t.ws().drop(1006);
  assert.equal(notice(t), null);
  t.g.advance(1000);
  assert.equal(noticeText(t), 'Connection lost. Reconnecting\u2026');
  assert.equal(notice(t).getAttribute('role'), 'alert');
  t.g.advance(2000);
  welcomeBack(t);
  assert.equal(notice(t), null);
});

test('reconnect toast: a quick resume shows nothing; giving up says to reload', () => {
  const t = harnessSetup();
  open(t).drop(1001);
  t.g.advance(1000);
  welcomeBack(t);
  t.g.advance(5000);
  assert.equal(notice(t), null);
  t.ws().drop(1006);
  for (let i = 0; i < 10; i++) {
    const before = t.sockets.length;
    while (t.sockets.length === before) t.g.advance(100);
    t.ws().drop(1006);
  }
  assert.equal(t.api.state, 'closed');
  assert.equal(noticeText(t), 'Connection lost. Reload the page to continue.');
});

test('reconnect toast: off with __vango.toast = false; never hides a 4013 notice', () => {
  const quiet = harnessSetup({ cfg: { toast: false } });
  open(quiet).drop(1006);
  quiet.g.advance(10000);
  assert.equal(notice(quiet), null);
  const t = harnessSetup();
  open(t).drop(1006);
  V.showNotice(t.doc, 'Session closed: memory', 'closed');
  t.g.advance(1000);
  welcomeBack(t);
  assert.equal(noticeText(t), 'Session closed: memory');
});
