'use strict';
// FULL frames morph #vango-root in place: nodes that still fit are kept (so a
// focused field keeps its value and caret), the rest is updated, removed or
// inserted. Real focus and layout are checked in tests/browser/test_morph.py.
const test = require('node:test');
const assert = require('node:assert/strict');
const { FakeDocument } = require('./fakedom.js');
const { V, P, setup: clientSetup, open } = require('./harness.js');

function setup(inner) {
  const doc = new FakeDocument();
  doc.body.innerHTML = `<div id="vango-root" data-hid="0">${inner}</div>`;
  const root = doc.getElementById('vango-root');
  return { doc, root, patcher: new V.Patcher(root) };
}

test('nodes that still fit are kept; text, attributes and hids are updated', () => {
  const { root, patcher } = setup(
    '<main data-hid="1"><h1 data-hid="2" class="old" title="t">Todos</h1><p data-hid="3">Count: 1</p></main>');
  const [main] = root.childNodes, [h1, p] = main.childNodes, text = p.childNodes[0];
  patcher.full('<main data-hid="11"><h1 data-hid="12" class="new" data-ve="click">Todos</h1><p data-hid="13">Count: 2</p></main>');
  assert.equal(root.innerHTML,
    '<main data-hid="11"><h1 data-hid="12" class="new" data-ve="click">Todos</h1><p data-hid="13">Count: 2</p></main>');
  assert.equal(root.childNodes[0], main);
  assert.deepEqual(main.childNodes, [h1, p]);
  assert.equal(p.childNodes[0], text);
  assert.equal(h1.hasAttribute('title'), false);
  // The hid cache follows the new numbering.
  patcher.apply([[P.SET_TEXT, 13, 0, 'Count: 3']]);
  assert.equal(p.childNodes[0].data, 'Count: 3');
});

test('extra children are removed, new ones inserted where they belong', () => {
  const { root, patcher } = setup(
    '<ul data-hid="1"><li data-hid="2">a</li><li data-hid="3">b</li><li data-hid="4">c</li></ul><p data-hid="5">end</p>');
  const [ul, p] = root.childNodes, [a, b] = ul.childNodes;
  patcher.full('<h1 data-hid="9">new</h1><ul data-hid="1"><li data-hid="2">a</li><li data-hid="3">b2</li></ul>' +
    '<p data-hid="5">end</p><footer data-hid="6">f</footer>');
  assert.equal(root.innerHTML, '<h1 data-hid="9">new</h1><ul data-hid="1"><li data-hid="2">a</li><li data-hid="3">b2</li></ul>' +
    '<p data-hid="5">end</p><footer data-hid="6">f</footer>');
  assert.equal(root.childNodes[1], ul);
  assert.equal(root.childNodes[2], p);
  assert.deepEqual(ul.childNodes, [a, b]);
});

test('a misfit node is replaced; elements with another id do not fit', () => {
  const { root, patcher } = setup('<div data-hid="1" id="x">x</div><span data-hid="2">s</span>');
  const [x, span] = root.childNodes;
  patcher.full('<div data-hid="1" id="y">y</div><b data-hid="2">s</b>');
  assert.equal(root.innerHTML, '<div data-hid="1" id="y">y</div><b data-hid="2">s</b>');
  assert.notEqual(root.childNodes[0], x);
  assert.notEqual(root.childNodes[1], span);
});

function focusedField(doc, root) {
  const input = root.childNodes[1].childNodes[0];
  input.value = 'abc'; // typed, not yet echoed in the attribute
  input.selectionStart = input.selectionEnd = 1;
  doc.activeElement = input;
  return input;
}

test('the focused input keeps its node, value and selection; its attributes follow', () => {
  const { doc, root, patcher } = setup(
    '<h1 data-hid="1">T</h1><form data-hid="2"><input id="new-todo" data-hid="3" value="ab"><button data-hid="4">Add</button></form>');
  const input = focusedField(doc, root);
  patcher.full('<h1 data-hid="21">T</h1><form data-hid="22"><input id="new-todo" data-hid="23" value="server" class="c">' +
    '<button data-hid="24">Add</button></form>');
  assert.equal(root.childNodes[1].childNodes[0], input);
  assert.equal(input.value, 'abc');
  assert.equal(input.selectionStart, 1);
  assert.equal(input.selectionEnd, 1);
  assert.equal(input.getAttribute('value'), 'server');
  assert.equal(input.getAttribute('data-hid'), '23');
  assert.equal(input.getAttribute('class'), 'c');
});

test('the focused input survives a misfit sibling before it', () => {
  const { doc, root, patcher } = setup(
    '<h1 data-hid="1">T</h1><form data-hid="2"><input id="new-todo" data-hid="3"><p data-hid="4">hint</p></form>');
  const input = focusedField(doc, root);
  patcher.full('<h1 data-hid="1">T</h1><form data-hid="2"><p data-hid="5">new hint</p><input id="new-todo" data-hid="3"></form>');
  const form = root.childNodes[1];
  assert.equal(form.innerHTML, '<p data-hid="5">new hint</p><input id="new-todo" data-hid="3">');
  assert.equal(form.childNodes[1], input);
  assert.equal(input.value, 'abc');
  assert.equal(input.selectionStart, 1);
});

test('fields without focus take value, checked and selected from the new HTML', () => {
  const { root, patcher } = setup('<input data-hid="1" value="old"><input data-hid="2" type="checkbox" checked>' +
    '<textarea data-hid="3">old</textarea><select data-hid="4"><option data-hid="5" selected>a</option><option data-hid="6">b</option></select>');
  const [text, box, area, select] = root.childNodes;
  text.value = 'typed';
  box.checked = true;
  box.value = 'on';
  area.value = 'typed';
  const [a, b] = select.childNodes;
  a.selected = true;
  b.selected = false;
  patcher.full('<input data-hid="1" value="new"><input data-hid="2" type="checkbox">' +
    '<textarea data-hid="3">new</textarea><select data-hid="4"><option data-hid="5">a</option><option data-hid="6" selected>b</option></select>');
  assert.equal(text.value, 'new');
  assert.equal(box.checked, false);
  assert.equal(box.value, 'on');
  assert.equal(area.value, 'new');
  assert.equal(a.selected, false);
  assert.equal(b.selected, true);
  assert.deepEqual(root.childNodes, [text, box, area, select]);
});

test('a FULL frame through the client morphs, keeping the focused field', () => {
  const t = clientSetup({ inner: '<p data-hid="1">Count: 0</p><input id="f" data-hid="2" data-ve="input">' });
  const ws = open(t);
  const [p, input] = t.root.childNodes;
  input.value = 'abc';
  input.selectionStart = 1;
  t.doc.activeElement = input;
  ws.push([P.FULL, 9, '<p data-hid="5">Count: 9</p><input id="f" data-hid="6" data-ve="input" value="a">']);
  assert.deepEqual(t.root.childNodes, [p, input]);
  assert.equal(p.childNodes[0].data, 'Count: 9');
  assert.equal(input.value, 'abc');
  assert.equal(input.selectionStart, 1);
  assert.equal(t.api.lastSeq, 9);
  // Event delegation reads the new hid.
  t.doc.dispatch('input', input);
  assert.deepEqual(ws.sent.at(-1), [P.EVENT, 1, 6, 'input', { value: 'abc' }]);
});
