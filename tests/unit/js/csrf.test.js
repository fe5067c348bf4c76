'use strict';
// Close 4002 (invalid CSRF): another tab may have replaced the browser's
// CSRF cookie after this page was served. The client fetches the current
// token once and says HELLO again; only a second 4002 reloads.
const test = require('node:test');
const assert = require('node:assert/strict');

const { P, setup, sentOf } = require('./harness.js');

function withFetch(t, answer) {
  const calls = [];
  t.g.fetch = (url, opts) => {
    calls.push({ url, opts });
    return Promise.resolve(answer());
  };
  return calls;
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

test('4002 at HELLO: fetch the current token, HELLO again with it, no reload', async () => {
  const t = setup();
  const calls = withFetch(t, () => ({ ok: true, json: () => ({ token: 'fresh' }) }));
  t.api.connect();
  t.ws().open();
  assert.equal(sentOf(t.ws(), P.HELLO)[0][2], 'tok');
  t.ws().drop(4002);
  await flush();
  assert.deepEqual(calls.map((c) => c.url), ['/_vango/csrf']);
  assert.equal(calls[0].opts.credentials, 'same-origin');
  assert.equal(t.sockets.length, 2);
  t.ws().open();
  assert.equal(sentOf(t.ws(), P.HELLO)[0][2], 'fresh');
  t.ws().push([P.WELCOME, 'sid-1', 0, false, 0]);
  assert.equal(t.api.state, 'open');
  assert.equal(t.g.location.reloads, 0);
});

test('a second 4002 reloads (once), without another fetch', async () => {
  const t = setup();
  const calls = withFetch(t, () => ({ ok: true, json: () => ({ token: 'fresh' }) }));
  t.api.connect();
  t.ws().open();
  t.ws().drop(4002);
  await flush();
  t.ws().open();
  t.ws().drop(4002);
  await flush();
  assert.equal(calls.length, 1);
  assert.equal(t.g.location.reloads, 1);
});

test('a failed token fetch reloads', async () => {
  const t = setup();
  withFetch(t, () => ({ ok: false, json: () => ({}) }));
  t.api.connect();
  t.ws().open();
  t.ws().drop(4002);
  await flush();
  await flush();
  assert.equal(t.g.location.reloads, 1);
  assert.equal(t.sockets.length, 1);
});

test('after a WELCOME, a later 4002 may fetch again', async () => {
  const t = setup();
  const calls = withFetch(t, () => ({ ok: true, json: () => ({ token: 'fresh' }) }));
  t.api.connect();
  t.ws().open();
  t.ws().drop(4002);
  await flush();
  t.ws().open();
  t.ws().push([P.WELCOME, 'sid-1', 0, false, 0]);
  t.ws().drop(4002);
  await flush();
  assert.equal(calls.length, 2);
  assert.equal(t.g.location.reloads, 0);
});
