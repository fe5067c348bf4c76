'use strict';
// JS interop in vango.js without a browser (vango_mp/interop.py; Chromium: tests/browser/test_interop.py):
// a FULL morph leaves an island's inside to the page, hooks follow the frames, CALLS run in order.
const test = require('node:test');
const assert = require('node:assert/strict');
const { FakeDocument } = require('./fakedom.js');
const { V, P } = require('./harness.js');

test("a FULL morph keeps what the page's script put inside an island", () => {
  const doc = new FakeDocument();
  doc.body.innerHTML = '<div id="vango-root" data-hid="0"><map-view data-hid="1" data-island="map"></map-view>' +
    '<p data-hid="2">a</p></div>';
  const root = doc.getElementById('vango-root'), island = root.childNodes[0];
  island.innerHTML = '<canvas></canvas><b>zoom 4</b>';  // drawn by the page
  new V.Patcher(root).full('<map-view data-hid="1" data-island="map" class="x"></map-view><p data-hid="2">b</p>');
  assert.equal(root.childNodes[0], island);
  assert.equal(island.innerHTML, '<canvas></canvas><b>zoom 4</b>');
  assert.equal(island.getAttribute('class'), 'x');
  assert.equal(root.childNodes[1].childNodes[0].data, 'b');
});

test('patches report the elements they touched (hooks around them get `updated`)', () => {
  const doc = new FakeDocument();
  doc.body.innerHTML = '<div id="vango-root" data-hid="0"><div data-hid="1"><p data-hid="2">a</p></div>' +
    '<p data-hid="3">b</p></div>';
  const root = doc.getElementById('vango-root'), patcher = new V.Patcher(root);
  patcher.apply([[P.SET_TEXT, 2, 0, 'a2']]);
  assert.deepEqual(patcher.touched, [root.childNodes[0].childNodes[0]]);
  patcher.apply([[P.SET_ATTR, 3, 'class', 'c']]);
  assert.deepEqual(patcher.touched, [root.childNodes[1]]);
});
