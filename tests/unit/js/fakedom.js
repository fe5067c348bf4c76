'use strict';
// A tiny DOM, just enough for vango.js's patcher and event delegation:
// element/text nodes, attributes, child lists with real insert/move
// semantics, `[attr]` / `[attr="v"]` selectors, a small HTML parser for
// innerHTML, and serialization for assertions. Not a browser: tests that
// need layout, focus or real forms belong in tests/browser.

const XHTML = 'http://www.w3.org/1999/xhtml';
const VOID = new Set(['input', 'br', 'img', 'hr', 'meta', 'link']);

class FakeNode {
  constructor(doc) {
    this.ownerDocument = doc;
    this.parentNode = null;
  }
  contains(node) {
    for (; node; node = node.parentNode) if (node === this) return true;
    return false;
  }
}

class FakeText extends FakeNode {
  constructor(doc, data) {
    super(doc);
    this.nodeType = 3;
    this.data = String(data);
  }
}

class FakeElement extends FakeNode {
  constructor(doc, tag, ns) {
    super(doc);
    this.nodeType = 1;
    this.localName = tag;
    this.namespaceURI = ns || XHTML;
    this.tagName = this.namespaceURI === XHTML ? tag.toUpperCase() : tag;
    this.attributes = new Map();
    this.childNodes = [];
    this.style = { cssText: '' }; // the CSSOM side of style: what CSP lets scripts set
  }
  getAttribute(n) { return this.attributes.has(n) ? this.attributes.get(n) : null; }
  setAttribute(n, v) { this.attributes.set(n, String(v)); }
  removeAttribute(n) { this.attributes.delete(n); }
  hasAttribute(n) { return this.attributes.has(n); }
  getAttributeNames() { return [...this.attributes.keys()]; }
  get lastChild() { return this.childNodes[this.childNodes.length - 1] || null; }
  get textContent() { return this.childNodes.map((c) => (c.nodeType === 3 ? c.data : c.textContent)).join(''); }
  get content() { return this; } // a <template>'s parsed children (no separate fragment here)
  get id() { return this.getAttribute('id') || ''; }
  get type() {
    const t = this.getAttribute('type');
    if (this.localName === 'button') return t || 'submit';
    if (this.localName === 'input') return t || 'text';
    return undefined;
  }
  get form() {
    for (let el = this.parentNode; el && el.nodeType === 1; el = el.parentNode) {
      if (el.localName === 'form') return el;
    }
    return null;
  }
  insertBefore(node, ref) {
    if (ref && ref.parentNode !== this) throw new Error('NotFoundError: ref is not a child');
    if (node.parentNode) node.parentNode.removeChild(node);
    const i = ref ? this.childNodes.indexOf(ref) : this.childNodes.length;
    this.childNodes.splice(i, 0, node);
    node.parentNode = this;
    return node;
  }
  appendChild(node) { return this.insertBefore(node, null); }
  removeChild(node) {
    const i = this.childNodes.indexOf(node);
    if (i < 0) throw new Error('NotFoundError: not a child');
    this.childNodes.splice(i, 1);
    node.parentNode = null;
    return node;
  }
  replaceChild(node, old) {
    this.insertBefore(node, old);
    return this.removeChild(old);
  }
  * descendants() {
    for (const c of this.childNodes) {
      if (c.nodeType === 1) {
        yield c;
        yield* c.descendants();
      }
    }
  }
  // Selectors: comma lists of `tag`, `[attr]`, `[attr="v"]` or `tag[attr...]`.
  matches(sel) {
    return sel.split(',').some((one) => {
      const m = /^([\w-]*)(?:\[([\w-]+)(?:="([^"]*)")?\])?$/.exec(one.trim());
      if (!m || (!m[1] && !m[2])) throw new Error('fakedom: unsupported selector ' + sel);
      return (!m[1] || this.localName === m[1]) &&
        (!m[2] || (this.hasAttribute(m[2]) && (m[3] === undefined || this.getAttribute(m[2]) === m[3])));
    });
  }
  querySelectorAll(sel) { return [...this.descendants()].filter((e) => e.matches(sel)); }
  querySelector(sel) { return this.querySelectorAll(sel)[0] || null; }
  closest(sel) {
    for (let el = this; el && el.nodeType === 1; el = el.parentNode) if (el.matches(sel)) return el;
    return null;
  }
  // Focus and scrolling are only recorded: there is no layout here.
  focus(opts) { this.ownerDocument.activeElement = this; this.focusOptions = opts; }
  scrollIntoView() { this.ownerDocument.scrolledIntoView = this; }
  set innerHTML(html) {
    for (const c of [...this.childNodes]) this.removeChild(c);
    parseInto(this, html);
  }
  get innerHTML() { return this.childNodes.map(serialize).join(''); }
  get outerHTML() { return serialize(this); }
}

class FakeDocument {
  constructor() {
    this.listeners = {};
    this.activeElement = null; // tests set it, or focus() does: there is no real focus here
    this.scrolledIntoView = null;
    this.title = '';
    this.body = new FakeElement(this, 'body');
  }
  createElement(tag) { return new FakeElement(this, tag); }
  createElementNS(ns, tag) { return new FakeElement(this, tag, ns); }
  createTextNode(data) { return new FakeText(this, data); }
  getElementById(id) {
    for (const el of this.body.descendants()) if (el.getAttribute('id') === id) return el;
    return null;
  }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  // Fire an event at target the way delegation sees it (bubbling is the
  // client's own walk up parentNode). Returns the event.
  dispatch(type, target, extra = {}) {
    const event = Object.assign({
      type, target, defaultPrevented: false,
      preventDefault() { this.defaultPrevented = true; },
    }, extra);
    for (const fn of this.listeners[type] || []) fn(event);
    return event;
  }
}

function escapeText(s) { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'); }

function serialize(node) {
  if (node.nodeType === 3) return escapeText(node.data);
  let attrs = '';
  for (const [k, v] of node.attributes) attrs += ` ${k}="${escapeText(v).replace(/"/g, '&quot;')}"`;
  if (VOID.has(node.localName)) return `<${node.localName}${attrs}>`;
  return `<${node.localName}${attrs}>${node.childNodes.map(serialize).join('')}</${node.localName}>`;
}

function unescape(s) {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}

// Well-formed, quoted-attribute HTML only (what the server renders).
function parseInto(parent, html) {
  const doc = parent.ownerDocument;
  const re = /<\/([\w-]+)\s*>|<([\w-]+)((?:\s+[\w:-]+(?:="[^"]*")?)*)\s*\/?>|([^<]+)/g;
  let m, cur = parent;
  while ((m = re.exec(html))) {
    if (m[1]) {
      cur = cur.parentNode;
    } else if (m[2]) {
      const el = doc.createElement(m[2]);
      for (const a of m[3].matchAll(/([\w:-]+)(?:="([^"]*)")?/g)) el.setAttribute(a[1], unescape(a[2] || ''));
      cur.appendChild(el);
      if (!VOID.has(m[2]) && !m[0].endsWith('/>')) cur = el;
    } else {
      cur.appendChild(doc.createTextNode(unescape(m[4])));
    }
  }
}

module.exports = { FakeDocument, FakeElement, FakeText, XHTML };
