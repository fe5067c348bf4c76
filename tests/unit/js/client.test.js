'use strict';
// The client (session/sequence, connection, DOM events) driven through a
// fake window: fake DOM, fake WebSocket, manual clock. Each test asserts
// one behaviour from docs/PROTOCOL.md or DESIGN.md's "thin client".
const test = require('node:test');
const assert = require('node:assert/strict');
const fixtures = require('./fixtures.json');
const V = require('../../../vango_mp/static/vango.js');

const { P, COUNTER, setup, open, welcomeBack, sentOf } = require('./harness.js');

test('connect: ws URL, arraybuffer, HELLO first, then open on WELCOME', () => {
  const t = setup();
  assert.equal(t.api.state, 'closed');
  t.api.connect();
  const ws = t.ws();
  assert.equal(ws.url, 'ws://localhost:8080/_vango/ws');
  assert.equal(ws.binaryType, 'arraybuffer');
  assert.equal(t.api.state, 'connecting');
  ws.open();
  assert.deepEqual(ws.sent, [[P.HELLO, 1, 'tok', '/counter', null, 0, null]]);
  ws.push([P.WELCOME, 'sid-1', 0, false, 3]);
  assert.equal(t.api.state, 'open');
  assert.equal(t.api.sessionId, 'sid-1');
  assert.equal(t.api.lastSeq, 0);
  assert.equal(t.api.worker, 3);
});

test('HELLO path carries the query string; wss on https', () => {
  const t = setup();
  t.g.location.protocol = 'https:';
  t.g.location.search = '?page=2';
  t.api.connect();
  t.ws().open();
  assert.equal(t.ws().url, 'wss://localhost:8080/_vango/ws');
  assert.equal(t.ws().sent[0][3], '/counter?page=2');
});

test('PATCHES in order are applied, lastSeq follows, ACK is throttled to 1 s', () => {
  const t = setup();
  const ws = open(t);
  ws.push([P.PATCHES, 1, [[P.SET_TEXT, 1, 0, 'Count: 1']]]);
  ws.push([P.PATCHES, 2, [[P.SET_TEXT, 1, 0, 'Count: 2']]]);
  assert.equal(t.root.childNodes[0].childNodes[0].data, 'Count: 2');
  assert.equal(t.api.lastSeq, 2);
  assert.deepEqual(sentOf(ws, P.ACK), []);
  t.g.advance(999);
  assert.deepEqual(sentOf(ws, P.ACK), []);
  t.g.advance(1);
  assert.deepEqual(sentOf(ws, P.ACK), [[P.ACK, 2]]);
  t.g.advance(5000);
  assert.equal(sentOf(ws, P.ACK).length, 1);
});

test('ACK goes out at once every 16 frames', () => {
  const t = setup();
  const ws = open(t);
  for (let seq = 1; seq <= 16; seq++) ws.push([P.PATCHES, seq, []]);
  assert.deepEqual(sentOf(ws, P.ACK), [[P.ACK, 16]]);
});

test('a gap sends RESYNC once, skips frames until the replay, then goes on', () => {
  const t = setup();
  const ws = open(t);
  ws.push([P.PATCHES, 1, [[P.SET_TEXT, 1, 0, 'Count: 1']]]);
  ws.push([P.PATCHES, 3, [[P.SET_TEXT, 1, 0, 'Count: 3']]]);
  ws.push([P.PATCHES, 4, [[P.SET_TEXT, 1, 0, 'Count: 4']]]);
  assert.deepEqual(sentOf(ws, P.RESYNC), [[P.RESYNC, 1]]);
  assert.equal(t.api.lastSeq, 1);
  assert.equal(t.root.childNodes[0].childNodes[0].data, 'Count: 1');
  for (const seq of [2, 3, 4]) ws.push([P.PATCHES, seq, [[P.SET_TEXT, 1, 0, `Count: ${seq}`]]]);
  ws.push([P.PATCHES, 3, [[P.SET_TEXT, 1, 0, 'stale duplicate']]]);
  assert.equal(t.api.lastSeq, 4);
  assert.equal(t.root.childNodes[0].childNodes[0].data, 'Count: 4');
});

test('an unanswered RESYNC is repeated, but not faster than every 3 s', () => {
  const t = setup();
  const ws = open(t);
  ws.push([P.PATCHES, 5, []]);
  ws.push([P.PATCHES, 6, []]);
  assert.equal(sentOf(ws, P.RESYNC).length, 1);
  t.g.advance(3000);
  ws.push([P.PATCHES, 7, []]);
  assert.deepEqual(sentOf(ws, P.RESYNC), [[P.RESYNC, 0], [P.RESYNC, 0]]);
});

test('FULL replaces the root content and sets lastSeq, even across a gap', () => {
  const t = setup();
  const ws = open(t);
  ws.push([P.FULL, 40, '<p data-hid="1">Count: 40</p>']);
  assert.equal(t.root.innerHTML, '<p data-hid="1">Count: 40</p>');
  assert.equal(t.api.lastSeq, 40);
  ws.push([P.PATCHES, 41, [[P.SET_TEXT, 1, 0, 'Count: 41']]]);
  assert.equal(t.root.innerHTML, '<p data-hid="1">Count: 41</p>');
  t.g.advance(1000);
  assert.deepEqual(sentOf(ws, P.ACK), [[P.ACK, 41]]);
});

test('lz4-compressed frames from the server are applied', () => {
  const t = setup();
  const ws = open(t, { seq: 8 });
  const msg = fixtures.messages.find((m) => m.frame[0] === P.FULL);
  assert.equal(msg.flag, P.FLAG_LZ4);
  const bytes = Buffer.from(msg.wire, 'hex');
  ws.onmessage({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) });
  assert.equal(t.api.lastSeq, msg.frame[1]);
  assert.equal(t.root.innerHTML, msg.frame[2]);
});

test('server PING gets PONG with the same t; client PINGs every 25 s', () => {
  const t = setup();
  const ws = open(t);
  ws.push([P.S_PING, 777]);
  assert.deepEqual(sentOf(ws, P.PONG), [[P.PONG, 777]]);
  t.g.advance(25000);
  assert.deepEqual(sentOf(ws, P.PING), [[P.PING, t.g.Date.now()]]);
});

test('a socket silent for over 65 s is dropped and reconnected', () => {
  const t = setup();
  const ws = open(t);
  t.g.advance(75000);
  assert.equal(ws.readyState, 3);
  assert.equal(t.api.state, 'connecting');
  t.g.advance(1000);
  assert.equal(t.sockets.length, 2);
});

test('garbage from the server is ignored', () => {
  const t = setup();
  const ws = open(t);
  ws.onmessage({ data: 'text frame' });
  ws.onmessage({ data: new Uint8Array([9, 9]).buffer });
  assert.equal(t.api.state, 'open');
});

test('unexpected close: reconnect after ~1 s and resume with sessionId and lastSeq', () => {
  const t = setup();
  const ws = open(t);
  ws.push([P.PATCHES, 1, []]);
  ws.push([P.PATCHES, 2, []]);
  ws.drop(1006);
  assert.equal(t.api.state, 'connecting');
  t.g.advance(799);
  assert.equal(t.sockets.length, 1);
  t.g.advance(201);
  assert.equal(t.sockets.length, 2);
  t.ws().open();
  assert.deepEqual(t.ws().sent[0], [P.HELLO, 1, 'tok', '/counter', 'sid-1', 2, null]);
  t.ws().push([P.WELCOME, 'sid-1', 3, true, 1]);
  t.ws().push([P.PATCHES, 3, [[P.SET_TEXT, 1, 0, 'replayed']]]);
  assert.equal(t.api.lastSeq, 3);
  assert.equal(t.api.worker, 1);
  assert.equal(t.root.childNodes[0].childNodes[0].data, 'replayed');
});

test('backoff doubles from 1 s to a 30 s cap and gives up after 10 tries', () => {
  const t = setup();
  open(t).drop(1001);
  const delays = [];
  for (let i = 0; i < 10; i++) {
    const before = t.sockets.length;
    let waited = 0;
    while (t.sockets.length === before) { t.g.advance(100); waited += 100; }
    delays.push(waited);
    t.ws().drop(1006); // fails before WELCOME
  }
  const nominal = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30].map((s) => s * 1000);
  delays.forEach((d, i) => assert.ok(d <= nominal[i] && d >= nominal[i] * 0.8 - 100, `try ${i}: ${d}`));
  assert.equal(t.api.state, 'closed');
  t.g.advance(600000);
  assert.equal(t.sockets.length, 11);
});

test('backoff restarts after a successful WELCOME', () => {
  const t = setup();
  open(t).drop(1006);
  t.g.advance(1000);
  t.ws().drop(1006);
  t.g.advance(2000);
  welcomeBack(t, { worker: 0 });
  t.ws().drop(1013);
  t.g.advance(1000);
  assert.equal(t.sockets.length, 4);
});

for (const code of [4001, 4002, 4003, 1002, 1009]) {
  test(`close ${code}: reload once, no reconnect loop`, () => {
    const t = setup();
    open(t).drop(code);
    assert.equal(t.g.location.reloads, 1);
    assert.equal(t.api.state, 'closed');
    t.g.advance(600000);
    assert.equal(t.sockets.length, 1);
    assert.equal(t.g.location.reloads, 1);
  });
}

for (const code of [4004, 4009, 1000]) {
  test(`close ${code}: stop, no reload, no reconnect`, () => {
    const t = setup();
    open(t).drop(code);
    assert.equal(t.api.state, 'closed');
    t.g.advance(600000);
    assert.equal(t.sockets.length, 1);
    assert.equal(t.g.location.reloads, 0);
  });
}

for (const code of [1001, 1006, 1013, 4008, 4029, 1011]) {
  test(`close ${code}: reconnect with backoff`, () => {
    const t = setup();
    open(t).drop(code);
    t.g.advance(1000);
    assert.equal(t.sockets.length, 2);
    assert.equal(t.g.location.reloads, 0);
  });
}

test('disconnect(): closes with 1000, state closed, no auto-reconnect; connect() resumes', () => {
  const t = setup();
  const ws = open(t);
  ws.push([P.PATCHES, 1, []]);
  t.api.disconnect();
  assert.equal(ws.closedWith, 1000);
  assert.equal(t.api.state, 'closed');
  assert.deepEqual(sentOf(ws, P.ACK), [[P.ACK, 1]]); // pending ACK flushed first
  ws.drop(1000); // the close event arriving later changes nothing
  t.g.advance(600000);
  assert.equal(t.sockets.length, 1);
  assert.equal(t.g.pending(), 0);
  t.api.connect();
  assert.equal(t.api.state, 'connecting');
  t.ws().open();
  assert.deepEqual(t.ws().sent[0], [P.HELLO, 1, 'tok', '/counter', 'sid-1', 1, null]);
  t.ws().push([P.WELCOME, 'sid-1', 1, true, 2]);
  assert.equal(t.api.state, 'open');
  assert.equal(t.api.sessionId, 'sid-1');
});

test('connect() is a no-op while open or connecting, and cuts a backoff wait short', () => {
  const t = setup();
  open(t);
  t.api.connect();
  assert.equal(t.sockets.length, 1);
  t.ws().drop(1006);
  t.api.connect();
  assert.equal(t.sockets.length, 2);
  t.api.connect();
  assert.equal(t.sockets.length, 2);
  t.g.advance(60000); // the cancelled backoff timer must not open a third
  assert.equal(t.sockets.length, 2);
});

test('WELCOME of a new session while we had one: reload (our DOM is stale)', () => {
  const t = setup();
  open(t).drop(1006);
  t.g.advance(1000);
  welcomeBack(t, { sid: 'sid-2', resumed: false, worker: 0 });
  assert.equal(t.g.location.reloads, 1);
  assert.equal(t.api.state, 'closed');
});

test('a patch that cannot apply reloads instead of looping', () => {
  const t = setup();
  const ws = open(t);
  ws.push([P.PATCHES, 1, [[P.SET_ATTR, 99, 'class', 'x']]]);
  assert.equal(t.g.location.reloads, 1);
  assert.equal(t.api.state, 'closed');
  assert.equal(ws.closedWith, 1000);
});

test('debug logging is off by default and toggles from window.vango', () => {
  const t = setup();
  const lines = [];
  t.g.console.debug = (...a) => lines.push(a);
  open(t);
  assert.equal(lines.length, 0);
  t.api.debug = true;
  t.ws().push([P.PATCHES, 1, []]);
  assert.ok(lines.length > 0);
  assert.equal(t.api.debug, true);
});

// ------------------------------------------------------------------ events

test('click: EVENT for the nearest ancestor-or-self listening, mouse payload, only when open', () => {
  const t = setup({ inner: '<div data-hid="1" data-ve="click"><span data-hid="2">x</span></div><p data-hid="3">y</p>' });
  const span = t.root.childNodes[0].childNodes[0];
  const at = { clientX: 10.4, clientY: 20, button: 0, buttons: 1, ctrlKey: true };
  t.doc.dispatch('click', span, at); // not open yet: dropped
  const ws = open(t);
  t.doc.dispatch('click', span, at);
  t.doc.dispatch('click', span.childNodes[0], at); // a text node target
  t.doc.dispatch('click', t.root.childNodes[1], at); // nobody listens
  const mouse = { x: 10, y: 20, button: 0, buttons: 1, ctrl: true, shift: false, alt: false, meta: false };
  assert.deepEqual(sentOf(ws, P.EVENT), [[P.EVENT, 1, 1, 'click', mouse], [P.EVENT, 2, 1, 'click', mouse]]);
});

test('data-ve lists several events; only listed ones are sent', () => {
  const t = setup({ inner: '<input data-hid="1" data-ve="input keydown">' });
  const ws = open(t);
  const input = t.root.childNodes[0];
  input.value = 'ab';
  t.doc.dispatch('input', input);
  t.doc.dispatch('change', input);
  t.doc.dispatch('keydown', input, { key: 'Enter', shiftKey: true });
  assert.deepEqual(sentOf(ws, P.EVENT), [
    [P.EVENT, 1, 1, 'input', { value: 'ab' }],
    [P.EVENT, 2, 1, 'keydown', { key: 'Enter', code: '', repeat: false, ctrl: false, shift: true, alt: false, meta: false }],
  ]);
});

test('change on a checkbox carries checked', () => {
  const t = setup({ inner: '<input data-hid="1" type="checkbox" data-ve="change">' });
  const ws = open(t);
  const box = t.root.childNodes[0];
  box.value = 'on';
  box.checked = true;
  t.doc.dispatch('change', box);
  assert.deepEqual(sentOf(ws, P.EVENT), [[P.EVENT, 1, 1, 'change', { value: 'on', checked: true }]]);
});

test('submit: preventDefault, form fields as payload; the submit button click is not sent twice', (ctx) => {
  const t = setup({
    inner: '<div data-hid="1" data-ve="click"><form data-hid="2" data-ve="submit">' +
      '<input data-hid="3" name="title"><button data-hid="4" data-ve="click">Add</button></form></div>',
  });
  const saved = globalThis.FormData;
  globalThis.FormData = class {
    constructor(form) { this.form = form; }
    forEach(fn) { for (const el of this.form.descendants()) if (el.getAttribute('name')) fn(el.value, el.getAttribute('name')); }
  };
  ctx.after(() => { globalThis.FormData = saved; });
  const ws = open(t);
  const form = t.root.childNodes[0].childNodes[0];
  const [input, button] = form.childNodes;
  input.value = 'milk';
  const click = t.doc.dispatch('click', button.childNodes[0]);
  assert.equal(click.defaultPrevented, false); // the browser goes on to submit
  const submit = t.doc.dispatch('submit', form);
  assert.equal(submit.defaultPrevented, true);
  assert.deepEqual(sentOf(ws, P.EVENT), [[P.EVENT, 1, 2, 'submit', { form: { title: 'milk' } }]]);
});

test('click on a submit button whose form has no submit listener is sent, and the native submit prevented', () => {
  const t = setup({ inner: '<form data-hid="1"><button data-hid="2" data-ve="click">Go</button></form>' });
  const ws = open(t);
  const click = t.doc.dispatch('click', t.root.childNodes[0].childNodes[0]);
  assert.equal(click.defaultPrevented, true);
  assert.deepEqual(sentOf(ws, P.EVENT), [[P.EVENT, 1, 2, 'click', {}]]); // the fake event has no position
});

test('a late echo of typed text does not rewind the field; a reset after submit applies', (ctx) => {
  const t = setup({ inner: '<form data-hid="1" data-ve="submit"><input data-hid="2" name="t" data-ve="input keydown"></form>' });
  const saved = globalThis.FormData;
  globalThis.FormData = class { forEach() {} };
  ctx.after(() => { globalThis.FormData = saved; });
  const ws = open(t);
  const form = t.root.childNodes[0];
  const input = form.childNodes[0];
  for (const v of ['m', 'mi', 'mil']) { // each keystroke: keydown, then input
    t.doc.dispatch('keydown', input, { key: v.slice(-1) });
    input.value = v;
    t.doc.dispatch('input', input);
  }
  ws.push([P.PATCHES, 1, [[P.SET_ATTR, 2, 'value', 'm']]]); // echo of the first keystroke
  assert.equal(input.value, 'mil');
  assert.equal(input.getAttribute('value'), 'm');
  ws.push([P.PATCHES, 2, [[P.SET_ATTR, 2, 'value', 'MIL']]]); // not something we typed
  assert.equal(input.value, 'MIL');
  t.doc.dispatch('submit', form);
  ws.push([P.PATCHES, 3, [[P.SET_ATTR, 2, 'value', 'm']]]); // after submit: applies
  assert.equal(input.value, 'm');
});

test('reloads are rate-limited per tab: a second one within 10 s stops instead', () => {
  const storage = new Map();
  const sessionStorage = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v) };
  const first = setup();
  first.g.sessionStorage = sessionStorage;
  open(first).drop(4002);
  assert.equal(first.g.location.reloads, 1);
  // The reloaded page shares the tab's sessionStorage and is refused again.
  const second = setup();
  second.g.sessionStorage = sessionStorage;
  second.g.Date.now = () => first.g.Date.now() + 5000;
  second.api.connect();
  second.ws().drop(4002);
  assert.equal(second.g.location.reloads, 0);
  assert.equal(second.api.state, 'closed');
  second.g.advance(600000);
  assert.equal(second.sockets.length, 1);
  // Later on, a reload is allowed again.
  const third = setup();
  third.g.sessionStorage = sessionStorage;
  third.g.Date.now = () => first.g.Date.now() + 11000;
  open(third).drop(4001);
  assert.equal(third.g.location.reloads, 1);
});
