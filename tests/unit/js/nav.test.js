'use strict';
// Live navigation in vango.js (docs/PROTOCOL.md, DESIGN.md "Live navigation"):
// which clicks become NAVIGATE, how a NAV frame moves history, title, scroll
// and focus, Back/Forward, the 5 s fallback, and prefetch hints. Driven through
// the fake window of harness.js: history entries, location and scroll are
// fakes that record what the client did.
const test = require('node:test');
const assert = require('node:assert/strict');
const fixtures = require('./fixtures.json');

const { P, setup, open, sentOf } = require('./harness.js');

const PAGE = '<nav><a id="to-todos" href="/todos">Todos <b id="bold">now</b></a>' +
  '<a id="to-items" href="/items?q=x">Items</a>' +
  '<a id="to-anchor" href="/todos#list">Todos list</a>' +
  '<a id="here-anchor" href="#count">Count</a>' +
  '<a id="here-anchor-full" href="/counter#count">Count</a>' +
  '<a id="blank" href="/todos" target="_blank">x</a>' +
  '<a id="self" href="/todos" target="_self">x</a>' +
  '<a id="download" href="/todos" download="">x</a>' +
  '<a id="reload" href="/todos" data-vango-reload="">x</a>' +
  '<a id="foreign" href="http://example.com/todos">x</a>' +
  '<a id="other-port" href="http://localhost:9090/todos">x</a>' +
  '<a id="mailto" href="mailto:a@example.com">x</a>' +
  '<a id="double-slash" href="/.//todos">x</a>' +
  '<a id="listening" href="/todos" data-hid="5" data-ve="click">x</a>' +
  '<a id="no-href">x</a>' +
  `<a id="too-long" href="/items?q=${'x'.repeat(8200)}">x</a>` +
  '</nav><p id="count" data-hid="1">Count: 0</p>';

// Todos page as one patch: replace the root's only text... the patches are
// opaque to navigation; a SET_TEXT on #count stands for "the new page".
const TODOS = [[P.SET_TEXT, 1, 0, 'Todos page']];

function page(opts = {}) {
  const t = setup({ inner: PAGE, ...opts });
  const ws = open(t);
  return { ...t, wsock: ws, el: (id) => t.doc.getElementById(id) };
}

const click = (t, id, extra = {}) => t.doc.dispatch('click', t.el(id), { button: 0, ...extra });
const navs = (t) => sentOf(t.wsock, P.NAVIGATE);
const prefetches = (t) => sentOf(t.wsock, P.PREFETCH);

test('protocol constants for navigation mirror protocol.py', () => {
  for (const [name, value] of Object.entries(fixtures.navigation)) assert.equal(P[name], value, name);
});

test('listen(): the browser leaves scroll restoration to the client', () => {
  const t = setup();
  assert.equal(t.g.history.scrollRestoration, 'manual');
});

// ------------------------------------------------------------ interception

test('a plain same-origin link click is prevented and sent as NAVIGATE push', () => {
  const t = page();
  const e = click(t, 'to-todos');
  assert.equal(e.defaultPrevented, true);
  assert.deepEqual(navs(t), [[P.NAVIGATE, '/todos', P.NAV_PUSH]]);
  // Nothing moves until the NAV arrives.
  assert.equal(t.g.location.pathname, '/counter');
  assert.equal(t.g.history.length, 1);
});

test('a click on text or an element inside the link is the link click', () => {
  const t = page();
  assert.equal(click(t, 'bold').defaultPrevented, true);
  const text = t.el('to-todos').childNodes[0];
  assert.equal(text.nodeType, 3);
  assert.equal(t.doc.dispatch('click', text, { button: 0 }).defaultPrevented, true);
  assert.equal(navs(t).length, 2);
});

test('the query string travels, the fragment does not; target=_self is followed', () => {
  const t = page();
  click(t, 'to-items');
  click(t, 'to-anchor');
  click(t, 'self');
  assert.deepEqual(navs(t).map((f) => f[1]), ['/items?q=x', '/todos', '/todos']);
});

const EXCLUDED = [
  ['ctrl-click (new tab)', 'to-todos', { ctrlKey: true }],
  ['meta-click (new tab)', 'to-todos', { metaKey: true }],
  ['shift-click (new window)', 'to-todos', { shiftKey: true }],
  ['alt-click (download)', 'to-todos', { altKey: true }],
  ['middle button', 'to-todos', { button: 1 }],
  ['target=_blank', 'blank', {}],
  ['download', 'download', {}],
  ['data-vango-reload', 'reload', {}],
  ['another origin', 'foreign', {}],
  ['another port', 'other-port', {}],
  ['not http(s)', 'mailto', {}],
  ['a path the server refuses (//)', 'double-slash', {}],
  ['a fragment on this page (#id)', 'here-anchor', {}],
  ['a fragment on this page (/path#id)', 'here-anchor-full', {}],
  ['an <a> without href', 'no-href', {}],
  ['a url longer than the server takes (8 KiB)', 'too-long', {}],
];

for (const [why, id, extra] of EXCLUDED) {
  test(`not intercepted: ${why}`, () => {
    const t = page();
    const e = click(t, id, extra);
    assert.equal(e.defaultPrevented, false, 'the browser must do its default');
    assert.deepEqual(navs(t), []);
  });
}

test('not intercepted: a click already prevented by another handler', () => {
  const t = page();
  const e = t.doc.dispatch('click', t.el('to-todos'), { button: 0, defaultPrevented: true });
  assert.equal(e.defaultPrevented, true);
  assert.deepEqual(navs(t), []);
});

test('a link with a click listener sends its EVENT, not NAVIGATE', () => {
  const t = page();
  const e = click(t, 'listening');
  assert.equal(e.defaultPrevented, true);
  assert.deepEqual(sentOf(t.wsock, P.EVENT), [[P.EVENT, 1, 5, 'click', {}]]);
  assert.deepEqual(navs(t), []);
});

test('socket not open: the browser follows the link (a normal load)', () => {
  const t = setup({ inner: PAGE });
  const el = (id) => t.doc.getElementById(id);
  assert.equal(t.doc.dispatch('click', el('to-todos'), { button: 0 }).defaultPrevented, false);
  t.api.connect(); // connecting, not open yet
  assert.equal(t.doc.dispatch('click', el('to-todos'), { button: 0 }).defaultPrevented, false);
  assert.deepEqual(t.ws().sent, []);
});

// ------------------------------------------------------------ NAV applied

test('NAV push: patches, pushState with the server url, title, scroll to top, focus', () => {
  const t = page();
  t.g.scrollTo(0, 700);
  click(t, 'to-todos');
  t.wsock.push([P.NAV, 1, '/todos', P.NAV_PUSH, 'Todos · vango-mp', TODOS]);
  assert.equal(t.el('count').textContent, 'Todos page');
  assert.equal(t.api.lastSeq, 1);
  assert.equal(t.g.location.pathname, '/todos');
  assert.equal(t.g.history.length, 2);
  assert.equal(t.doc.title, 'Todos · vango-mp');
  assert.deepEqual([t.g.scrollX, t.g.scrollY], [0, 0]);
  // The entry we left remembers where it was scrolled.
  assert.deepEqual(t.g.history.entries[0].state, { vango: { x: 0, y: 700 } });
  // No <h1>, no autofocus: the root takes the focus, outside the tab order.
  assert.equal(t.doc.activeElement, t.root);
  assert.equal(t.root.getAttribute('tabindex'), '-1');
  assert.deepEqual(t.doc.activeElement.focusOptions, { preventScroll: true });
  t.g.advance(1000);
  assert.deepEqual(sentOf(t.wsock, P.ACK), [[P.ACK, 1]]);
});

test('focus goes to [autofocus] first, else the first h1 (made focusable)', () => {
  const t = page();
  click(t, 'to-todos');
  t.wsock.push([P.NAV, 1, '/todos', P.NAV_PUSH, '', [
    [P.INSERT, 0, 0, ['h1', 10, {}, ['Todos']]],
  ]]);
  const h1 = t.root.querySelector('h1');
  assert.equal(t.doc.activeElement, h1);
  assert.equal(h1.getAttribute('tabindex'), '-1');
  assert.equal(t.doc.title, '', 'an empty title leaves document.title alone');

  click(t, 'to-items');
  t.wsock.push([P.NAV, 2, '/items?q=x', P.NAV_PUSH, 'Items', [
    [P.INSERT, 0, 1, ['input', 11, { id: 'filter', autofocus: '' }, []]],
  ]]);
  const input = t.doc.getElementById('filter');
  assert.equal(t.doc.activeElement, input);
  assert.equal(input.hasAttribute('tabindex'), false, 'an input keeps its place in the tab order');
  assert.equal(t.g.location.search, '?q=x');
});

test('NAV to a #fragment scrolls its element into view instead of to the top', () => {
  const t = page();
  t.g.scrollTo(0, 300);
  click(t, 'to-anchor');
  t.wsock.push([P.NAV, 1, '/todos', P.NAV_PUSH, 'Todos', [[P.INSERT, 0, 0, ['ul', 12, { id: 'list' }, []]]]]);
  assert.equal(t.g.location.href, 'http://localhost:8080/todos#list');
  assert.equal(t.doc.scrolledIntoView, t.doc.getElementById('list'));
  assert.equal(t.g.scrollY, 300, 'no scroll to the top');
});

test('a non-ASCII #fragment finds its element by the decoded id', () => {
  const t = setup({ inner: '<a id="x" href="/doc#Zoë">x</a>' });
  const ws = open(t);
  t.doc.dispatch('click', t.doc.getElementById('x'), { button: 0 });
  ws.push([P.NAV, 1, '/doc', P.NAV_PUSH, '', [[P.INSERT, 0, 0, ['h2', 12, { id: 'Zoë' }, []]]]]);
  assert.equal(t.doc.scrolledIntoView, t.doc.getElementById('Zoë'));
});

test('a redirected NAV uses the server url and drops the asked fragment', () => {
  const t = page();
  click(t, 'to-anchor');
  t.wsock.push([P.NAV, 1, '/login?next=%2Ftodos', P.NAV_PUSH, 'Login', []]);
  assert.equal(t.g.location.href, 'http://localhost:8080/login?next=%2Ftodos');
  assert.equal(t.doc.scrolledIntoView, null);
});

test('a canonicalised query keeps the fragment when the path is the one asked for', () => {
  const t = page();
  click(t, 'to-anchor');
  t.wsock.push([P.NAV, 1, '/todos?page=1', P.NAV_PUSH, '', []]);
  assert.equal(t.g.location.href, 'http://localhost:8080/todos?page=1#list');
});

test('NAV replace: replaceState, no new entry', () => {
  const t = page();
  t.api.navigate('/todos', { replace: true });
  assert.deepEqual(navs(t), [[P.NAVIGATE, '/todos', P.NAV_REPLACE]]);
  t.wsock.push([P.NAV, 1, '/todos', P.NAV_REPLACE, 'Todos', TODOS]);
  assert.equal(t.g.history.length, 1);
  assert.equal(t.g.location.pathname, '/todos');
  assert.equal(t.doc.activeElement, t.root);
});

test('an unasked replace (the page wrote its query) leaves scroll, focus and fragment alone', () => {
  const t = page({ href: 'http://localhost:8080/items#top' });
  const input = t.el('count');
  input.focus();
  t.g.scrollTo(0, 400);
  t.wsock.push([P.NAV, 1, '/items?q=milk', P.NAV_REPLACE, '', []]);
  assert.equal(t.g.location.href, 'http://localhost:8080/items?q=milk#top');
  assert.equal(t.g.history.length, 1);
  assert.equal(t.doc.activeElement, input);
  assert.equal(t.g.scrollY, 400);
});

test('an unasked push (server navigate()) moves history and scrolls to the top', () => {
  const t = page();
  t.g.scrollTo(0, 250);
  t.wsock.push([P.NAV, 1, '/login', P.NAV_PUSH, 'Login', []]);
  assert.equal(t.g.location.pathname, '/login');
  assert.equal(t.g.history.length, 2);
  assert.equal(t.g.scrollY, 0);
  assert.deepEqual(t.g.history.entries[0].state, { vango: { x: 0, y: 250 } });
});

test('NAV load: a full document load of the url', () => {
  const t = page();
  click(t, 'to-todos');
  t.wsock.push([P.NAV, 1, 'https://other.example/x', P.NAV_LOAD, '', []]);
  assert.deepEqual(t.g.location.assigned, ['https://other.example/x']);
  assert.equal(t.g.history.length, 1);
  t.g.advance(10000);
  assert.equal(t.g.location.assigned.length, 1, 'the fallback timer was cancelled');
});

test('NAV frames are sequenced with PATCHES: duplicates dropped, a gap asks RESYNC', () => {
  const t = page();
  t.wsock.push([P.PATCHES, 1, [[P.SET_TEXT, 1, 0, 'Count: 1']]]);
  t.wsock.push([P.NAV, 3, '/todos', P.NAV_PUSH, 'Todos', TODOS]);
  assert.deepEqual(sentOf(t.wsock, P.RESYNC), [[P.RESYNC, 1]]);
  assert.equal(t.g.location.pathname, '/counter', 'a NAV after a gap waits for the replay');
  assert.equal(t.doc.title, '');
  t.wsock.push([P.PATCHES, 2, []]);
  t.wsock.push([P.NAV, 3, '/todos', P.NAV_PUSH, 'Todos', TODOS]);
  t.wsock.push([P.NAV, 3, '/todos', P.NAV_PUSH, 'Todos', TODOS]); // replay overlap
  assert.equal(t.api.lastSeq, 3);
  assert.equal(t.g.history.length, 2, 'a replayed NAV is applied once');
});

test('sessionId survives navigation; a reconnect says HELLO with the new url', () => {
  const t = page();
  click(t, 'to-items');
  t.wsock.push([P.NAV, 1, '/items?q=x', P.NAV_PUSH, '', []]);
  assert.equal(t.api.sessionId, 'sid-1');
  assert.equal(t.sockets.length, 1);
  t.wsock.drop(1006);
  t.g.advance(1000);
  t.ws().open();
  assert.deepEqual(t.ws().sent[0], [P.HELLO, 1, 'tok', '/items?q=x', 'sid-1', 1, null]);
});

// ------------------------------------------------------------ Back / Forward

function atTodos() { // /counter, then a live navigation to /todos
  const t = page();
  click(t, 'to-todos');
  t.wsock.push([P.NAV, 1, '/todos', P.NAV_PUSH, '', []]);
  return t;
}


test('Back sends NAVIGATE pop; its NAV leaves history alone and restores the scroll', () => {
  const t = page();
  t.g.scrollTo(0, 800);
  click(t, 'to-todos');
  t.wsock.push([P.NAV, 1, '/todos', P.NAV_PUSH, 'Todos', []]);
  t.g.scrollTo(0, 120);
  t.g.fire('scroll');
  t.g.advance(100); // the rested scroll position is saved into the entry
  t.g.history.back();
  assert.deepEqual(navs(t).at(-1), [P.NAVIGATE, '/counter', P.NAV_POP]);
  t.wsock.push([P.NAV, 2, '/counter', P.NAV_POP, 'Counter', []]);
  assert.equal(t.g.history.length, 2);
  assert.equal(t.g.history.index, 0);
  assert.equal(t.doc.title, 'Counter');
  assert.equal(t.g.scrollY, 800);
  t.g.history.forward();
  assert.deepEqual(navs(t).at(-1), [P.NAVIGATE, '/todos', P.NAV_POP]);
  t.wsock.push([P.NAV, 3, '/todos', P.NAV_POP, 'Todos', []]);
  assert.equal(t.g.scrollY, 120);
});

test('a pop NAV never rewrites the entry the browser moved to', () => {
  const t = atTodos();
  t.g.history.back();
  t.wsock.push([P.NAV, 2, '/counter/', P.NAV_POP, '', []]); // the server's canonical form
  assert.deepEqual(t.g.history.entries.map((e) => new URL(e.url).pathname), ['/counter', '/todos']);
  assert.equal(t.g.location.pathname, '/counter');
});

test('a popstate that only changes the #fragment sends nothing', () => {
  const t = page();
  t.g.history.pushState(null, '', '#count'); // what a fragment link click does
  t.g.history.back();
  assert.deepEqual(navs(t), []);
});

test('popstate with the socket down reloads the page', () => {
  const t = atTodos();
  t.api.disconnect();
  t.g.history.back();
  assert.equal(t.g.location.reloads, 1);
});

// ------------------------------------------------------------ fallbacks

test('no NAV within 5 s: location.assign(href) (with the fragment)', () => {
  const t = page();
  click(t, 'to-anchor');
  t.g.advance(4999);
  assert.deepEqual(t.g.location.assigned, []);
  t.g.advance(1);
  assert.deepEqual(t.g.location.assigned, ['http://localhost:8080/todos#list']);
});

test('a NAV in time cancels the fallback', () => {
  const t = page();
  click(t, 'to-todos');
  t.g.advance(4000);
  t.wsock.push([P.NAV, 1, '/todos', P.NAV_PUSH, '', []]);
  t.g.advance(5000);
  assert.deepEqual(t.g.location.assigned, []);
});

test('no NAV after Back within 5 s: reload the url the browser shows', () => {
  const t = atTodos();
  t.g.history.back();
  t.g.advance(4999);
  assert.equal(t.g.location.reloads, 0);
  t.g.advance(1);
  assert.equal(t.g.location.reloads, 1);
  assert.deepEqual(t.g.location.assigned, []);
});

test('vango.navigate: another origin or a closed socket loads the page the old way', () => {
  const t = page();
  t.api.navigate('https://example.com/');
  assert.deepEqual(t.g.location.assigned, ['https://example.com/']);
  t.api.disconnect();
  t.api.navigate('/todos');
  assert.deepEqual(t.g.location.assigned, ['https://example.com/', 'http://localhost:8080/todos']);
  assert.deepEqual(navs(t), []);
});

// ------------------------------------------------------------ prefetch

const LINKS = '<a id="p" href="/todos" data-prefetch=""><span id="p-kid">Todos</span></a>' +
  '<a id="plain" href="/items">Items</a>' +
  '<a id="off" href="/global" data-prefetch="false">Global</a>' +
  '<a id="here" href="/counter" data-prefetch="">Here</a>' +
  '<a id="away" href="http://example.com/" data-prefetch="">Away</a>';

function hint(t, type, id) { t.doc.dispatch(type, t.el(id)); }

test('prefetch: 100 ms of hover on a data-prefetch link sends PREFETCH', () => {
  const t = page({ inner: LINKS });
  hint(t, 'mouseenter', 'p');
  t.g.advance(99);
  assert.deepEqual(prefetches(t), []);
  t.g.advance(1);
  assert.deepEqual(prefetches(t), [[P.PREFETCH, '/todos']]);
});

test('prefetch: leaving before 100 ms cancels; moving over a child does not', () => {
  const t = page({ inner: LINKS });
  hint(t, 'mouseenter', 'p');
  t.g.advance(50);
  hint(t, 'mouseleave', 'p');
  t.g.advance(500);
  assert.deepEqual(prefetches(t), []);
  hint(t, 'mouseenter', 'p');
  hint(t, 'mouseenter', 'p-kid');
  t.g.advance(60);
  hint(t, 'mouseleave', 'p-kid');
  t.g.advance(40);
  assert.deepEqual(prefetches(t), [[P.PREFETCH, '/todos']]);
});

test('prefetch: focus and touchstart send at once; once per url per 30 s', () => {
  const t = page({ inner: LINKS });
  hint(t, 'focusin', 'p');
  hint(t, 'touchstart', 'p-kid');
  hint(t, 'mouseenter', 'p');
  t.g.advance(29000);
  assert.deepEqual(prefetches(t), [[P.PREFETCH, '/todos']]);
  t.g.advance(1000);
  hint(t, 'touchstart', 'p');
  assert.equal(prefetches(t).length, 2);
});

test('prefetch: only marked links, unless the app opts every link in', () => {
  const t = page({ inner: LINKS });
  for (const id of ['plain', 'off', 'here', 'away']) hint(t, 'focusin', id);
  assert.deepEqual(prefetches(t), [], 'unmarked, opted out, this page, another origin');

  const all = page({ inner: LINKS, cfg: { prefetch: true } });
  for (const id of ['plain', 'off', 'here', 'away', 'p']) hint(all, 'focusin', id);
  assert.deepEqual(prefetches(all), [[P.PREFETCH, '/items'], [P.PREFETCH, '/todos']]);
});

test('prefetch: nothing before WELCOME (the server wants HELLO first)', () => {
  const t = setup({ inner: LINKS });
  t.doc.dispatch('focusin', t.doc.getElementById('p'));
  t.api.connect();
  t.ws().open();
  t.doc.dispatch('focusin', t.doc.getElementById('p'));
  assert.deepEqual(t.ws().sent.map((f) => f[0]), [P.HELLO]);
  t.ws().push([P.WELCOME, 'sid-1', 0, false, 0]);
  t.doc.dispatch('focusin', t.doc.getElementById('p'));
  assert.deepEqual(sentOf(t.ws(), P.PREFETCH), [[P.PREFETCH, '/todos']], 'the early hints were not counted');
});

test('prefetch: following the link forgets it, so a later hover asks again', () => {
  const t = page({ inner: LINKS });
  hint(t, 'focusin', 'p');
  t.doc.dispatch('click', t.el('p'), { button: 0 });
  t.wsock.push([P.NAV, 1, '/todos', P.NAV_PUSH, '', []]);
  t.g.history.back();
  t.wsock.push([P.NAV, 2, '/counter', P.NAV_POP, '', []]);
  hint(t, 'focusin', 'p');
  assert.equal(prefetches(t).length, 2);
});
