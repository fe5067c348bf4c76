'use strict';
// A use_upload input (data-vango-upload): its change sends the files by one
// POST, not as a change event; a new choice aborts the transfer in flight.
const test = require('node:test');
const assert = require('node:assert/strict');

const { P, setup, open, sentOf } = require('./harness.js');

const INPUT = '<input type="file" id="avatar" data-hid="4" data-ve="change" data-vango-upload="1">';

function withXhr(t) {
  const made = [];
  t.g.XMLHttpRequest = class {
    constructor() { this.headers = {}; this.aborted = false; made.push(this); }
    open(method, url) { this.method = method; this.url = url; }
    setRequestHeader(k, v) { this.headers[k] = v; }
    send(body) { this.body = body; }
    abort() { this.aborted = true; }
  };
  t.g.Blob = class { constructor(parts) { this.parts = parts; } };
  return made;
}

test('picking files POSTs them with the token, the session and their names, sizes and types', () => {
  const t = setup({ inner: INPUT });
  const xhrs = withXhr(t);
  const ws = open(t, { sid: 'sid-9' });
  const input = t.doc.getElementById('avatar');
  const files = [{ name: 'cat é.png', type: 'image/png', size: 3 }, { name: 'b.txt', type: '', size: 0 }];
  input.files = files;
  t.doc.dispatch('change', input);
  assert.equal(sentOf(ws, P.EVENT).length, 0); // no change event: the files go by HTTP
  assert.equal(xhrs.length, 1);
  const x = xhrs[0];
  assert.equal(x.method, 'POST');
  assert.equal(x.url, '/_vango/upload?hid=4');
  assert.equal(x.headers['X-CSRF-Token'], 'tok');
  assert.equal(x.headers['X-Vango-Session'], 'sid-9');
  assert.deepEqual(JSON.parse(decodeURIComponent(x.headers['X-Vango-Files'])),
    [['cat é.png', 'image/png', 3], ['b.txt', '', 0]]);
  assert.deepEqual(x.body.parts, files);
  input.files = [files[1]];
  t.doc.dispatch('change', input); // a new choice replaces the first transfer
  assert.equal(x.aborted, true);
  assert.equal(xhrs.length, 2);
});

test('nothing is sent before the session is open, or without files', () => {
  const t = setup({ inner: INPUT });
  const xhrs = withXhr(t);
  const input = t.doc.getElementById('avatar');
  input.files = [{ name: 'a.png', type: 'image/png', size: 1 }];
  t.doc.dispatch('change', input);
  open(t);
  input.files = [];
  t.doc.dispatch('change', input);
  assert.equal(xhrs.length, 0);
});
