'use strict';
// The patcher against a fake DOM: every op, sequential index semantics,
// vnode building, form properties and the hid cache.
const test = require('node:test');
const assert = require('node:assert/strict');
const { FakeDocument } = require('./fakedom.js');
const V = require('../../../vango_mp/static/vango.js');

const { SET_TEXT, SET_ATTR, REMOVE_ATTR, INSERT, REMOVE, MOVE, REPLACE } = V.PROTOCOL;
const SVG_NS = 'http://www.w3.org/2000/svg';

function setup(inner) {
  const doc = new FakeDocument();
  doc.body.innerHTML = `<div id="vango-root" data-hid="0">${inner}</div>`;
  const root = doc.getElementById('vango-root');
  return { doc, root, patcher: new V.Patcher(root) };
}

const li = (hid, text) => ['li', hid, {}, [text]];

test('SET_TEXT rewrites a text child in place', () => {
  const { root, patcher } = setup('<p data-hid="1">Count: 0</p>');
  const text = root.childNodes[0].childNodes[0];
  patcher.apply([[SET_TEXT, 1, 0, 'Count: 1']]);
  assert.equal(root.innerHTML, '<p data-hid="1">Count: 1</p>');
  assert.equal(root.childNodes[0].childNodes[0], text);
});

test('SET_TEXT on an element child fails loudly', () => {
  const { patcher } = setup('<p data-hid="1"><b data-hid="2">x</b></p>');
  assert.throws(() => patcher.apply([[SET_TEXT, 1, 0, 'y']]), /not text/);
});

test('SET_ATTR / REMOVE_ATTR, with value and checked mirrored into properties', () => {
  const { root, patcher } = setup('<input data-hid="1" type="checkbox"><input data-hid="2">');
  const [box, input] = root.childNodes;
  patcher.apply([[SET_ATTR, 1, 'checked', ''], [SET_ATTR, 2, 'value', 'hi'], [SET_ATTR, 2, 'class', 'a b']]);
  assert.equal(box.checked, true);
  assert.equal(input.value, 'hi');
  assert.equal(input.getAttribute('class'), 'a b');
  patcher.apply([[REMOVE_ATTR, 1, 'checked'], [REMOVE_ATTR, 2, 'value'], [REMOVE_ATTR, 2, 'class']]);
  assert.equal(box.checked, false);
  assert.equal(box.hasAttribute('checked'), false);
  assert.equal(input.value, '');
  assert.equal(input.hasAttribute('class'), false);
});

test('SET_ATTR value leaves an equal property alone (no caret jump)', () => {
  const { root, patcher } = setup('<input data-hid="1">');
  const input = root.childNodes[0];
  let writes = 0, value = 'abc';
  Object.defineProperty(input, 'value', { get: () => value, set: (v) => { writes++; value = v; } });
  patcher.apply([[SET_ATTR, 1, 'value', 'abc']]);
  assert.equal(writes, 0);
  patcher.apply([[SET_ATTR, 1, 'value', '']]);
  assert.equal(writes, 1);
  assert.equal(value, '');
});

test('INSERT builds elements with data-hid, attrs, nested children and text', () => {
  const { root, patcher } = setup('<ul data-hid="1"><li data-hid="2">a</li></ul>');
  patcher.apply([
    [INSERT, 1, 0, ['li', 7, { class: 'todo', 'data-ve': 'click' }, ['milk', ['button', 8, { class: 'remove' }, ['x']]]]],
    [INSERT, 1, 2, 'tail'],
  ]);
  assert.equal(root.innerHTML,
    '<ul data-hid="1"><li class="todo" data-ve="click" data-hid="7">milk<button class="remove" data-hid="8">x</button></li>' +
    '<li data-hid="2">a</li>tail</ul>');
  // Inserted elements are findable by hid right away.
  patcher.apply([[SET_TEXT, 8, 0, 'remove']]);
  assert.match(root.innerHTML, />remove<\/button>/);
});

test('INSERT past the end of the child list fails', () => {
  const { patcher } = setup('<ul data-hid="1"></ul>');
  assert.throws(() => patcher.apply([[INSERT, 1, 1, 'x']]), /out of range/);
});

test('indexes refer to the child list as it is when each patch applies', () => {
  const { root, patcher } = setup('<ul data-hid="1"><li data-hid="2">a</li><li data-hid="3">b</li><li data-hid="4">c</li></ul>');
  patcher.apply([
    [REMOVE, 1, 0], // b c
    [INSERT, 1, 1, li(5, 'x')], // b x c
    [REMOVE, 1, 2], // b x
    [INSERT, 1, 2, li(6, 'y')], // b x y
  ]);
  assert.deepEqual(root.childNodes[0].childNodes.map((n) => n.childNodes[0].data), ['b', 'x', 'y']);
});

test('MOVE takes the child out, then inserts it so it ends up at to_index', () => {
  const ul = '<ul data-hid="1"><li data-hid="2">a</li><li data-hid="3">b</li><li data-hid="4">c</li><li data-hid="5">d</li></ul>';
  const order = (root) => root.childNodes[0].childNodes.map((n) => n.childNodes[0].data).join('');
  const cases = [[0, 3, 'bcda'], [3, 0, 'dabc'], [1, 2, 'acbd'], [2, 1, 'acbd'], [1, 1, 'abcd'], [0, 1, 'bacd']];
  for (const [from, to, want] of cases) {
    const { root, patcher } = setup(ul);
    patcher.apply([[MOVE, 1, from, to]]);
    assert.equal(order(root), want, `${from}->${to}`);
  }
  // Keyed reorder as a diff would send it: reverse abcd.
  const { root, patcher } = setup(ul);
  patcher.apply([[MOVE, 1, 3, 0], [MOVE, 1, 3, 1], [MOVE, 1, 3, 2]]);
  assert.equal(order(root), 'dcba');
});

test('REPLACE swaps a node for a vnode (text <-> element), even under the same hid', () => {
  const { root, patcher } = setup('<div data-hid="1">hi<span data-hid="2">x</span></div>');
  patcher.apply([[REPLACE, 1, 0, ['b', 3, {}, ['bold']]], [REPLACE, 1, 1, 'plain']]);
  assert.equal(root.innerHTML, '<div data-hid="1"><b data-hid="3">bold</b>plain</div>');
  patcher.apply([[REPLACE, 1, 0, ['i', 3, {}, ['again']]], [SET_TEXT, 3, 0, 'changed']]);
  assert.equal(root.innerHTML, '<div data-hid="1"><i data-hid="3">changed</i>plain</div>');
});

test('hid 0 is the root container', () => {
  const { root, patcher } = setup('');
  patcher.apply([[INSERT, 0, 0, ['p', 1, {}, ['one']]], [SET_ATTR, 0, 'class', 'live']]);
  assert.equal(root.outerHTML, '<div id="vango-root" data-hid="0" class="live"><p data-hid="1">one</p></div>');
});

test('hid cache: removed subtrees are dropped, stale entries are not trusted', () => {
  const { root, patcher } = setup('<ul data-hid="1"><li data-hid="2"><b data-hid="3">a</b></li></ul>');
  assert.equal(patcher.find(3), root.childNodes[0].childNodes[0].childNodes[0]);
  patcher.apply([[REMOVE, 1, 0]]);
  assert.throws(() => patcher.find(3), /no element with hid 3/);
  assert.throws(() => patcher.find(2), /no element with hid 2/);
  // FULL replaces everything; a hid reused by the new HTML finds the new node.
  patcher.find(1);
  patcher.full('<ul data-hid="1"><li data-hid="9">n</li></ul>');
  assert.equal(patcher.find(1), root.childNodes[0]);
  patcher.apply([[SET_TEXT, 9, 0, 'm']]);
  assert.equal(root.innerHTML, '<ul data-hid="1"><li data-hid="9">m</li></ul>');
});

test('unknown hid, missing child and unknown op throw', () => {
  const { patcher } = setup('<p data-hid="1"></p>');
  assert.throws(() => patcher.apply([[SET_ATTR, 42, 'a', 'b']]), /hid 42/);
  assert.throws(() => patcher.apply([[REMOVE, 1, 0]]), /no child 0/);
  assert.throws(() => patcher.apply([[99, 1]]), /unknown patch op/);
});

test('SVG subtrees are built in the SVG namespace, foreignObject content in HTML', () => {
  const { root, patcher } = setup('');
  patcher.apply([[INSERT, 0, 0, ['svg', 1, { viewBox: '0 0 1 1' }, [
    ['circle', 2, { r: '1' }, []],
    ['foreignObject', 3, {}, [['div', 4, {}, ['html']]]],
  ]]]]);
  const svg = root.childNodes[0];
  assert.equal(svg.namespaceURI, SVG_NS);
  assert.equal(svg.childNodes[0].namespaceURI, SVG_NS);
  assert.equal(svg.childNodes[1].namespaceURI, SVG_NS);
  assert.notEqual(svg.childNodes[1].childNodes[0].namespaceURI, SVG_NS);
  // Inserting into an existing svg element keeps the namespace.
  patcher.apply([[INSERT, 1, 0, ['rect', 5, {}, []]]]);
  assert.equal(svg.childNodes[0].namespaceURI, SVG_NS);
});
