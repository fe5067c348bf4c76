/* vango.js: the vango-mp thin client (docs/PROTOCOL.md is the spec).
 *
 * The server owns all state; this file mirrors it: one WebSocket, HELLO,
 * numbered PATCHES/FULL frames applied in order, user events sent back as
 * EVENT frames, and on a drop, reconnect with backoff and resume from the
 * last applied seq. Sections as in the LiveView client: constants, codecs
 * (pure data), patcher (DOM only, never the socket), session and sequence,
 * connection, DOM events. The client reaches every global through `g`, so
 * Node tests (tests/unit/js) drive it with a fake window, socket and clock.
 */
(function () {
'use strict';

// ---------------------------------------------------------------- constants
// Mirrors vango_mp/protocol.py one-to-one (a node test checks it).
const VERSION = 1;
const FLAG_RAW = 0x00, FLAG_LZ4 = 0x01;
// Client -> server frame types.
const HELLO = 1, EVENT = 2, ACK = 3, RESYNC = 4, PING = 5, PONG = 6, NAVIGATE = 7, PREFETCH = 8;
const HOOK = 9, ISLAND = 10; // JS interop: a hook's pushEvent, an island's message
// Server -> client frame types.
const WELCOME = 17, PATCHES = 18, FULL = 19, S_PING = 20, S_PONG = 21, NAV = 22;
const CALLS = 32; // emit, client commands, hook reverts, island messages (unsequenced)
const NAV_PUSH = 0, NAV_REPLACE = 1, NAV_POP = 2, NAV_LOAD = 3; // history modes (LOAD: NAV only)
// Patch op codes.
const SET_TEXT = 1, SET_ATTR = 2, REMOVE_ATTR = 3, INSERT = 4, REMOVE = 5, MOVE = 6, REPLACE = 7;
const EVENT_NAMES = ['click', 'dblclick', 'mousedown', 'mouseup', 'mousemove', 'mouseenter', 'mouseleave',
  'contextmenu', 'keydown', 'keyup', 'input', 'change', 'submit', 'focus', 'blur', 'scroll', 'resize',
  'touchstart', 'touchmove', 'touchend', 'touchcancel'];
// Events that do not bubble: caught on the way down, sent for the listening element itself.
const OWN_EVENTS = ['mouseenter', 'mouseleave', 'focus', 'blur', 'scroll'];
const EVENT_DONE = 30, ERROR = 31; // server -> client, unsequenced: an event's handler finished; an app error
const Close = {
  NORMAL: 1000, GOING_AWAY: 1001, PROTOCOL_ERROR: 1002, MESSAGE_TOO_LARGE: 1009,
  SERVER_BUSY: 1013, SESSION_EXPIRED: 4001, INVALID_CSRF: 4002, NOT_AUTHORIZED: 4003,
  FORBIDDEN_ORIGIN: 4004, HANDSHAKE_TIMEOUT: 4008, SESSION_TAKEN: 4009, APP_ERROR: 4011, MEMORY_PRESSURE: 4013,
  RATE_LIMITED: 4029,
};
const ABNORMAL = 1006; // what the browser reports when the socket just dies

// DOM contract with the server's HTML renderer.
const ROOT_ID = 'vango-root', A_HID = 'data-hid', A_EVENTS = 'data-ve', WS_PATH = '/_vango/ws';
const A_HOOK = 'data-hook', A_ISLAND = 'data-island', A_JS = 'data-js-'; // + event type
const JS_EVENTS = ['click', 'dblclick', 'keydown', 'keyup', 'input', 'change', 'submit', 'focusin', 'focusout'];
const UPLOAD_PATH = '/_vango/upload'; // POST: the files of a use_upload input (vango_mp.uploadhandler)
const CSRF_PATH = '/_vango/csrf'; // GET: {token} of this browser's CSRF cookie (minted if it has none)
const NOTICE_ID = 'vango-notice';
// Listener options (vango_mp/vdom/listeners.py): data-vo = {event: {d, t, p, s, k, l, w}}.
const A_OPTS = 'data-vo', BUSY_CLASS = 'vango-loading', MAX_LIST = 64;
const ERROR_ID = 'vango-error', ERROR_NOTICE_MS = 6000; // --dev overlay; production notice lifetime
const OVERLAY_STYLE = 'position:fixed;left:1em;right:1em;top:1em;max-height:80vh;overflow:auto;z-index:2147483647;' +
  'padding:1em;background:#fff;color:#900;border:2px solid #c00;border-radius:6px;font:13px/1.4 monospace;white-space:pre-wrap';
const NOTICE_STYLE = 'position:fixed;left:0;right:0;bottom:0;z-index:2147483647;padding:.6em 1em;' +
  'background:#333;color:#fff;font:14px/1.4 sans-serif';
const SVG_NS = 'http://www.w3.org/2000/svg';
const ELEMENT_NODE = 1, TEXT_NODE = 3, WS_OPEN = 1;

// Timing. Backoff follows the reference ReconnectConfig defaults.
// An ACK only lets the server drop frames from its history, and reading one costs a worker as much
// as sending a fan-out frame: batch them (bench/scale.py measures the difference).
const ACK_DELAY_MS = 1000, ACK_EVERY_FRAMES = 16;
const PING_INTERVAL_MS = 25000;
const DEAD_AFTER_MS = 65000; // nothing heard for this long: the socket is dead
const RESYNC_RETRY_MS = 3000; // server rate-limits RESYNC; don't repeat faster
const RELOAD_GUARD_MS = 10000, RELOAD_KEY = 'vango:reloaded-at';
const ECHO_MAX = 32; // typed values remembered per field (see pushEvent)
const RETRY_BASE_MS = 1000, RETRY_CAP_MS = 30000, RETRY_MAX = 10, RETRY_JITTER = 0.2;
// Reconnect toast: only when the socket stays down this long (a rolling
// reload resumes well within it); turned off with __vango.toast = false.
const TOAST_DELAY_MS = 2000, TOAST = 'reconnect';
const TOAST_TEXT = 'Connection lost. Reconnecting\u2026';
const TOAST_GAVE_UP = 'Connection lost. Reload the page to continue.';
// No NAV within 5 s: a plain load. Prefetch: 100 ms hover, once per URL per 30 s.
const NAV_TIMEOUT_MS = 5000, HOVER_MS = 100, PREFETCH_TTL_MS = 30000, SCROLL_SAVE_MS = 100, MAX_URL = 8192;

// What the client does on a close code (docs/PROTOCOL.md, "Close codes").
const STOP = 'stop', RELOAD = 'reload', RETRY = 'retry', NOTICE = 'notice';
function closeAction(code) {
  switch (code) {
    case Close.NORMAL: case Close.FORBIDDEN_ORIGIN: case Close.SESSION_TAKEN:
      return STOP;
    case Close.MEMORY_PRESSURE: // the session is gone; an idle tab must not hammer a server short of memory
    case Close.APP_ERROR: // the page cannot start: a reload would fail the same way
      return NOTICE;
    case Close.PROTOCOL_ERROR: case Close.MESSAGE_TOO_LARGE: case Close.SESSION_EXPIRED:
    case Close.INVALID_CSRF: case Close.NOT_AUTHORIZED:
      return RELOAD;
    default: // 1001, 1006, 1013, 4008, 4029 and anything unknown
      return RETRY;
  }
}

// ------------------------------------------------------------------ msgpack
// The subset the protocol uses: nil, bool, int (uint64/int64 become lossy
// Numbers past 2**53), float32/64, str, bin, array, map (-> plain object).
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true }); // keep a leading U+FEFF

function msgpackEncode(value) { // client frames are small: a plain byte array will do
  const out = [], f64 = new DataView(new ArrayBuffer(8));
  function be(v, size) { // big-endian; `>>` wraps negatives to two's complement
    for (let s = 8 * size - 8; s >= 0; s -= 8) out.push(v >> s & 0xff);
  }
  function put(type, size, v) {
    out.push(type);
    if (size < 8) return be(v, size);
    const hi = Math.floor(v / 4294967296); // 64-bit: two halves, floor keeps the sign right
    be(hi, 4);
    be(v - hi * 4294967296, 4);
  }
  function head(n, fix, fixLimit, t8, t16, t32) {
    if (n < fixLimit) out.push(fix | n);
    else if (t8 && n < 0x100) put(t8, 1, n);
    else if (n < 0x10000) put(t16, 2, n);
    else put(t32, 4, n);
  }
  function int(v) { // smallest form, as Python's msgpack picks it
    if (v >= -32 && v < 0x80) return out.push(v & 0xff);
    const i = v >= 0 ? (v < 0x100 ? 0 : v < 0x10000 ? 1 : v < 0x100000000 ? 2 : 3)
      : (v >= -0x80 ? 0 : v >= -0x8000 ? 1 : v >= -0x80000000 ? 2 : 3);
    put((v >= 0 ? 0xcc : 0xd0) + i, 1 << i, v); // uint8..64 = cc..cf, int8..64 = d0..d3
  }
  function item(v) {
    if (v === null || v === undefined) out.push(0xc0);
    else if (v === true || v === false) out.push(v ? 0xc3 : 0xc2);
    else if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 64) return int(v);
      f64.setFloat64(0, v);
      out.push(0xcb, ...new Uint8Array(f64.buffer));
    } else if (typeof v === 'string') {
      const b = utf8Encoder.encode(v);
      head(b.length, 0xa0, 32, 0xd9, 0xda, 0xdb);
      for (const x of b) out.push(x);
    } else if (v instanceof Uint8Array || v instanceof ArrayBuffer) {
      const b = new Uint8Array(v);
      head(b.length, 0, 0, 0xc4, 0xc5, 0xc6);
      for (const x of b) out.push(x);
    } else if (Array.isArray(v)) {
      head(v.length, 0x90, 16, 0, 0xdc, 0xdd);
      v.forEach(item);
    } else if (typeof v === 'object') {
      const keys = Object.keys(v);
      head(keys.length, 0x80, 16, 0, 0xde, 0xdf);
      for (const k of keys) { item(k); item(v[k]); }
    } else throw new TypeError('msgpack: cannot encode ' + typeof v);
  }
  item(value);
  return Uint8Array.from(out);
}

function msgpackDecode(input) {
  const u8 = input instanceof Uint8Array ? input : new Uint8Array(input);
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  let pos = 0;
  function take(n) {
    if (pos + n > u8.length) throw new Error('msgpack: truncated');
    pos += n;
    return pos - n;
  }
  function num(n, signed) { // n-byte big-endian integer
    const at = take(n);
    if (n === 1) return signed ? view.getInt8(at) : u8[at];
    if (n === 2) return signed ? view.getInt16(at) : view.getUint16(at);
    if (n === 4) return signed ? view.getInt32(at) : view.getUint32(at);
    return (signed ? view.getInt32(at) : view.getUint32(at)) * 4294967296 + view.getUint32(at + 4);
  }
  function str(n) { const at = take(n); return utf8Decoder.decode(u8.subarray(at, at + n)); }
  function arr(n) { const a = []; while (n--) a.push(item()); return a; }
  function map(n) {
    const o = {};
    while (n--) {
      const k = item(), v = item();
      if (k !== '__proto__') o[k] = v; // an own key, never the prototype
      else Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return o;
  }
  function item() {
    const b = u8[take(1)];
    if (b < 0x80) return b;
    if (b < 0x90) return map(b & 0x0f);
    if (b < 0xa0) return arr(b & 0x0f);
    if (b < 0xc0) return str(b & 0x1f);
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0xc4 && b <= 0xc6) { const n = num(1 << (b - 0xc4)), at = take(n); return u8.slice(at, at + n); }
    if (b >= 0xcc && b <= 0xcf) return num(1 << (b - 0xcc), false);
    if (b >= 0xd0 && b <= 0xd3) return num(1 << (b - 0xd0), true);
    if (b >= 0xd9 && b <= 0xdb) return str(num(1 << (b - 0xd9)));
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xca: return view.getFloat32(take(4));
      case 0xcb: return view.getFloat64(take(8));
      case 0xdc: case 0xdd: return arr(num(b === 0xdc ? 2 : 4));
      case 0xde: case 0xdf: return map(num(b === 0xde ? 2 : 4));
    }
    throw new Error('msgpack: unsupported type 0x' + b.toString(16));
  }
  const value = item();
  if (pos !== u8.length) throw new Error('msgpack: trailing bytes');
  return value;
}

// ---------------------------------------------------------------------- lz4
// LZ4 block format with python-lz4's store_size prefix (4-byte LE size).
// Each sequence: token (literal len << 4 | match len - 4), literals, then a
// 2-byte LE offset back into the output; the last sequence has no match.
function lz4BlockDecode(src) {
  if (src.length < 4) throw new Error('lz4: missing size');
  const size = (src[0] | src[1] << 8 | src[2] << 16 | src[3] << 24) >>> 0;
  const out = new Uint8Array(size), end = src.length;
  let ip = 4, op = 0;
  function more(n) { // 15 in a nibble: add bytes until one is not 255
    let b;
    do {
      if (ip >= end) throw new Error('lz4: truncated length');
      n += b = src[ip++];
    } while (b === 255);
    return n;
  }
  while (ip < end) {
    const token = src[ip++];
    let n = token >>> 4;
    if (n === 15) n = more(n);
    if (ip + n > end || op + n > size) throw new Error('lz4: literals overrun');
    out.set(src.subarray(ip, ip + n), op);
    ip += n;
    op += n;
    if (ip === end) break;
    if (ip + 2 > end) throw new Error('lz4: truncated offset');
    const offset = src[ip] | src[ip + 1] << 8;
    ip += 2;
    if (offset === 0 || offset > op) throw new Error('lz4: bad offset');
    let m = (token & 15) + 4;
    if (m === 19) m = more(m);
    if (op + m > size) throw new Error('lz4: match overrun');
    let from = op - offset;
    if (offset >= m) { out.copyWithin(op, from, from + m); op += m; }
    else while (m--) out[op++] = out[from++]; // overlapping: repeats the pattern
  }
  if (op !== size) throw new Error('lz4: size mismatch');
  return out;
}

// Whole messages: flag byte, then the (maybe compressed) msgpack array.
function decodeMessage(data) {
  if (!(data instanceof ArrayBuffer || data instanceof Uint8Array)) throw new Error('not a binary message');
  const u8 = new Uint8Array(data);
  let body = u8.subarray(1);
  if (u8[0] === FLAG_LZ4) body = lz4BlockDecode(body);
  else if (u8[0] !== FLAG_RAW) throw new Error('bad flag byte ' + u8[0]);
  const frame = msgpackDecode(body);
  if (!Array.isArray(frame) || !frame.length) throw new Error('frame is not a non-empty array');
  return frame;
}

function encodeMessage(frame) { // the client never compresses
  const body = msgpackEncode(frame), out = new Uint8Array(body.length + 1);
  out[0] = FLAG_RAW;
  out.set(body, 1);
  return out;
}

// ------------------------------------------------------------------ patcher
// Applies patch lists to the DOM under root and never touches the socket:
// a patch that does not fit throws, the session decides what follows.
// Elements are found by hid through a Map cache that is checked on every hit
// (same hid, still under root) and pruned when a subtree leaves, so removed
// nodes are not kept alive. isEcho(el, value) tells a `value` patch that is
// a late echo of the user's own typing: the attribute is set, the property
// (what the user sees) is left alone.
class Patcher {
  constructor(root, isEcho = () => false) {
    this.root = root;
    this.doc = root.ownerDocument;
    this.cache = new Map();
    this.isEcho = isEcho;
  }

  apply(patches) {
    this.touched = []; // every element an op found: hooks around them get `updated`
    for (const p of patches) {
      const op = OPS[p[0]];
      if (!op) throw new Error('unknown patch op ' + p[0]);
      op(this, p);
    }
  }

  // FULL morphs the root in place (as morphdom does): nodes that still fit
  // are kept, so focus, caret, selection and scroll positions live on.
  full(html) {
    const t = this.doc.createElement('template');
    t.innerHTML = html;
    this.morphKids(this.root, t.content, this.doc.activeElement);
    this.cache.clear();
  }

  // Old children meet new ones in order. Misfit old children before a fitting
  // one go (nodes are never moved: that would blur them), unless they hold
  // the focus; a new child with no fit is inserted.
  morphKids(el, to, focus) {
    const kids = [...to.childNodes], at = el.childNodes;
    kids.forEach((n, i) => {
      let j = i;
      while (at[j] && !fits(at[j], n) && !at[j].contains(focus)) j++;
      if (!at[j] || !fits(at[j], n)) return el.insertBefore(n, at[i] || null);
      while (j-- > i) el.removeChild(at[i]);
      this.morph(at[i], n, focus);
    });
    while (at.length > kids.length) el.removeChild(el.lastChild);
  }

  morph(o, n, focus) {
    if (o.nodeType !== ELEMENT_NODE) { if (o.data !== n.data) o.data = n.data; return; }
    for (const a of o.getAttributeNames()) if (!n.hasAttribute(a)) o.removeAttribute(a);
    for (const a of n.getAttributeNames()) if (o.getAttribute(a) !== n.getAttribute(a)) o.setAttribute(a, n.getAttribute(a));
    if (o.hasAttribute(A_ISLAND)) return; // an island's inside belongs to the page's script
    this.morphKids(o, n, focus);
    if (o === focus) return; // the user is typing here: value and caret stay theirs
    const tag = o.localName; // form state lives in properties: set them from the attributes
    if (tag === 'option') o.selected = n.hasAttribute('selected');
    else if (tag === 'textarea') { if (o.value !== o.textContent) o.value = o.textContent; }
    else if (tag === 'input') {
      o.checked = n.hasAttribute('checked');
      const v = n.getAttribute('value') ?? (o.type === 'checkbox' || o.type === 'radio' ? o.value : '');
      if (o.value !== v) o.value = v;
    }
  }

  find(hid) {
    if (hid === 0) return this.found(this.root);
    let el = this.cache.get(hid);
    if (el && el.getAttribute(A_HID) === String(hid) && this.root.contains(el)) return this.found(el);
    el = this.found(this.root.querySelector('[' + A_HID + '="' + hid + '"]'));
    if (!el) throw new Error('no element with hid ' + hid);
    this.cache.set(hid, el);
    return el;
  }

  found(el) {
    if (this.touched) this.touched.push(el);
    return el;
  }

  forget(node) { // drop a leaving subtree from the cache
    if (node.nodeType !== ELEMENT_NODE) return;
    const drop = (el) => {
      const hid = +el.getAttribute(A_HID);
      if (this.cache.get(hid) === el) this.cache.delete(hid);
    };
    drop(node);
    node.querySelectorAll('[' + A_HID + ']').forEach(drop);
  }

  build(vnode, ns) { // vnode: text, or [tag, hid, attrs, children]
    if (typeof vnode === 'string') return this.doc.createTextNode(vnode);
    const [tag, hid, attrs, kids] = vnode;
    if (tag === 'svg') ns = SVG_NS;
    const el = ns ? this.doc.createElementNS(ns, tag) : this.doc.createElement(tag);
    for (const kid of kids || []) el.appendChild(this.build(kid, tag === 'foreignObject' ? null : ns));
    // Attributes after children: a <select>'s value needs its options.
    for (const name of Object.keys(attrs || {})) this.setAttr(el, name, attrs[name]);
    el.setAttribute(A_HID, String(hid));
    this.cache.set(hid, el);
    return el;
  }

  // Form state lives in properties, not attributes: mirror value, checked
  // and selected into both. Writing only a changed value keeps the caret.
  setAttr(el, name, value) {
    el.setAttribute(name, value);
    if (name === 'value') { if (el.value !== value && !this.isEcho(el, value)) el.value = value; }
    else if (name === 'checked' || name === 'selected') el[name] = true;
  }

  removeAttr(el, name) {
    el.removeAttribute(name);
    if (name === 'value') { if ('value' in el) el.value = ''; }
    else if (name === 'checked' || name === 'selected') el[name] = false;
  }
}

// Same kind of node: text for text; for elements the same tag and id.
function fits(o, n) {
  return o.nodeType === n.nodeType && (o.nodeType !== ELEMENT_NODE ||
    o.localName === n.localName && o.getAttribute('id') === n.getAttribute('id'));
}

function child(parent, i) {
  const n = parent.childNodes[i];
  if (!n) throw new Error('no child ' + i + ' under hid ' + parent.getAttribute(A_HID));
  return n;
}

function before(parent, i) { // the node to insert before so the new one ends up at i
  if (i > parent.childNodes.length) throw new Error('index ' + i + ' out of range');
  return parent.childNodes[i] || null;
}

function nsOf(parent) {
  return parent.namespaceURI === SVG_NS && parent.localName !== 'foreignObject' ? SVG_NS : null;
}

// One function per op; indexes count the child list as it is right now.
const OPS = {
  [SET_TEXT](P, [, hid, i, text]) {
    const node = child(P.find(hid), i);
    if (node.nodeType !== TEXT_NODE) throw new Error('SET_TEXT target is not text');
    node.data = text;
  },
  [SET_ATTR](P, [, hid, name, value]) { P.setAttr(P.find(hid), name, value); },
  [REMOVE_ATTR](P, [, hid, name]) { P.removeAttr(P.find(hid), name); },
  [INSERT](P, [, hid, i, vnode]) {
    const parent = P.find(hid);
    parent.insertBefore(P.build(vnode, nsOf(parent)), before(parent, i));
  },
  [REMOVE](P, [, hid, i]) {
    const parent = P.find(hid), node = child(parent, i);
    P.forget(node);
    parent.removeChild(node);
  },
  [MOVE](P, [, hid, from, to]) {
    const parent = P.find(hid), node = child(parent, from);
    parent.removeChild(node);
    parent.insertBefore(node, before(parent, to));
  },
  [REPLACE](P, [, hid, i, vnode]) {
    const parent = P.find(hid), old = child(parent, i);
    P.forget(old);
    parent.replaceChild(P.build(vnode, nsOf(parent)), old);
  },
};

// ------------------------------------------------------------- DOM helpers
function listensTo(el, name) {
  const ve = el.getAttribute(A_EVENTS);
  return !!ve && ve.split(/\s+/).indexOf(name) >= 0;
}

function closestListener(el, name) {
  for (; el && el.nodeType === ELEMENT_NODE; el = el.parentNode) {
    if (listensTo(el, name)) return el;
  }
  return null;
}

// Tell the user why the session ended, or that it is reconnecting (role=alert:
// screen readers say it too). ``kind`` lets the reconnect toast remove only itself.
function showNotice(doc, text, kind = 'closed') {
  let el = doc.getElementById(NOTICE_ID);
  if (!el) {
    el = doc.createElement('div');
    el.setAttribute('id', NOTICE_ID);
    el.setAttribute('role', 'alert');
    // Through the CSSOM, not a style attribute: a CSP without 'unsafe-inline'
    // for styles (the hardened profile) blocks the attribute, not this.
    el.style.cssText = NOTICE_STYLE;
    doc.body.appendChild(el);
  }
  el.setAttribute('data-kind', kind);
  while (el.childNodes.length) el.removeChild(el.childNodes[0]);
  el.appendChild(doc.createTextNode(text));
  return el;
}

function hideNotice(doc, kind) {
  const el = doc.getElementById(NOTICE_ID);
  if (el && el.getAttribute('data-kind') === kind) el.parentNode.removeChild(el);
}

function isSubmitControl(el) {
  return !!el && (el.tagName === 'BUTTON' || el.tagName === 'INPUT') &&
    (el.type === 'submit' || el.type === 'image');
}

// Every field: a repeated name (checkbox group, multi-select) as a list, a file as its name.
function formFields(form) {
  const out = Object.create(null);
  if (!form || form.tagName !== 'FORM') return out;
  let n = 0;
  new FormData(form).forEach((v, k) => {
    v = typeof v === 'string' ? v : v.name;
    const have = out[k];
    if (have === undefined) { if (n++ < MAX_LIST) out[k] = v; }
    else if (!Array.isArray(have)) out[k] = [have, v];
    else if (have.length < MAX_LIST) have.push(v);
  });
  return out;
}

function fieldPayload(t) { // input, change, focus, blur: the field's own state
  const p = {};
  if (t.value !== undefined) p.value = String(t.value);
  if (t.type === 'checkbox' || t.type === 'radio') p.checked = !!t.checked;
  if (t.multiple && t.selectedOptions) p.values = [...t.selectedOptions].slice(0, MAX_LIST).map((o) => o.value);
  if (t.type === 'file' && t.files) p.files = [...t.files].slice(0, MAX_LIST).map((f) => f.name);
  return p;
}

function points(list) {
  return [...(list || [])].slice(0, MAX_LIST).map((t) => ({ id: t.identifier, x: Math.round(t.clientX), y: Math.round(t.clientY) }));
}

// The typed payload of each event kind (vango_mp/events.py reads it; docs/PROTOCOL.md).
function eventPayload(name, e, target, el) {
  const mods = { ctrl: !!e.ctrlKey, shift: !!e.shiftKey, alt: !!e.altKey, meta: !!e.metaKey };
  if (name === 'keydown' || name === 'keyup') return { key: e.key || '', code: e.code || '', repeat: !!e.repeat, ...mods };
  if (name === 'submit') return { form: formFields(target.tagName === 'FORM' ? target : target.form) };
  if (name === 'scroll') return { top: Math.round(el.scrollTop), left: Math.round(el.scrollLeft) };
  if (name === 'resize') return { width: e.innerWidth, height: e.innerHeight };
  if (name.startsWith('touch')) return { touches: points(e.touches), changed: points(e.changedTouches) };
  if (e.clientX !== undefined) {
    return { x: Math.round(e.clientX), y: Math.round(e.clientY), button: e.button | 0, buttons: e.buttons | 0, ...mods };
  }
  const p = fieldPayload(target); // input, change, focus, blur
  if (el.tagName === 'FORM' && el !== target) { p.form = formFields(el); p.field = target.name || ''; }
  return p;
}

function listenerOptions(el, name) {
  try { return JSON.parse(el.getAttribute(A_OPTS) || '{}')[name] || {}; } catch (err) { return {}; }
}

// --------------------------------------------------- session and sequence
// One page, one Client. g is the window (or a test's fake: DOM, socket,
// timers, clock), cfg the server's bootstrap window.__vango {csrf, path, ws,
// worker}. window.vango is client.api.
class Client {
  constructor(g, cfg) {
    this.g = g;
    this.cfg = cfg;
    this.state = 'closed';
    this.sessionId = null;
    this.lastSeq = 0; // the last applied server seq; the SSR page is seq 0
    this.worker = cfg.worker === undefined ? null : cfg.worker;
    this.debug = !!cfg.debug;
    this.ws = null; // the current socket; handlers of any other one do nothing
    this.attempts = 0; // reconnects since the last WELCOME
    this.cseq = 0;
    this.unacked = 0; // frames applied since the last ACK
    this.ackTimer = this.pingTimer = this.retryTimer = 0;
    this.toast = cfg.toast !== false;
    this.toastTimer = 0; // pending reconnect toast; outlives the retries it waits on
    this.csrfRefreshed = false; // a 4002 since the last WELCOME already fetched a fresh token
    this.lastRecv = 0;
    this.resyncAt = 0; // when RESYNC was sent, 0 when in sequence
    this.patcher = null;
    this.echoEl = null; // the field last typed into, and what was sent from it
    this.echoes = new Set();
    this.nav = null; // the NAVIGATE awaiting its NAV: {path, hash}
    this.navTimer = this.hoverTimer = this.scrollTimer = 0;
    this.here = ''; // path + query shown
    this.prefetched = new Map(); // url -> when sent
    this.paced = new Map(); // element -> {event name: {timer, fire, last}}: debounce/throttle state
    this.busy = new Map(); // cseq -> [element, its text before disable_with]: loading state
    this.interop = new Interop(this);
    this.api = publicApi(this);
  }

  log(...args) { this.g.console.debug('[vango]', ...args); } // only as `this.debug && this.log()`
  now() { return this.g.Date.now(); }

  dom() {
    if (!this.patcher) {
      const root = this.g.document.getElementById(ROOT_ID);
      if (!root) throw new Error('#' + ROOT_ID + ' not found');
      this.patcher = new Patcher(root, (el, v) => this.echoEl === el && this.echoes.has(v));
    }
    return this.patcher;
  }

  onFrame(f) {
    switch (f[0]) {
      case WELCOME: return this.onWelcome(f[1], f[2], f[3], f[4]);
      case PATCHES: return this.onPatches(f[1], f[2]);
      case FULL: return this.onFull(f[1], f[2]);
      case NAV: return this.onNav(...f.slice(1));
      case S_PING: return this.send([PONG, f[1]]);
      case S_PONG: return this.debug && this.log('rtt ms', this.now() - f[1]);
      case EVENT_DONE: return this.unbusy(f[1]);
      case ERROR: return this.showError(f[1], f[2]);
      case CALLS: return this.interop.run(f[1]);
      default: this.debug && this.log('ignoring frame type', f[0]);
    }
  }

  onWelcome(sid, seq, resumed, worker) {
    // A new session while we had one, or a server behind our DOM: the page
    // we show can't be continued; start over from a fresh SSR.
    if ((!resumed && this.sessionId !== null) || (resumed && seq < this.lastSeq)) return this.reload();
    this.sessionId = sid;
    this.worker = worker;
    this.csrfRefreshed = false;
    this.hideToast();
    if (!resumed) this.lastSeq = seq; // missed frames of a resumed one are replayed
    this.attempts = 0;
    this.resyncAt = 0;
    this.g.clearInterval(this.pingTimer);
    this.pingTimer = this.g.setInterval(() => this.heartbeat(), PING_INTERVAL_MS);
    this.setState('open');
    for (const cseq of [...this.busy.keys()]) this.unbusy(cseq); // their answers went with the old socket
    this.interop.scan(null);
  }

  onPatches(seq, patches) {
    if (seq <= this.lastSeq) return false; // already applied (replay overlap)
    if (seq !== this.lastSeq + 1) return this.resync();
    this.dom().apply(patches);
    this.interop.scan(this.dom().touched);
    return this.applied(seq) || true;
  }

  // PATCHES that move the history to the server's url (+ the asked #fragment
  // if the path is the one asked for). An unasked replace (the page wrote
  // its query) leaves scroll and focus be.
  onNav(seq, url, mode, title, patches, meta, scroll) {
    const g = this.g, h = g.history, asked = this.nav, path = url.split('?')[0];
    const quiet = (!asked && mode === NAV_REPLACE) || scroll === false;
    const hash = asked ? (asked.path === path ? asked.hash : '') : quiet ? g.location.hash : '';
    if (!mode && seq === this.lastSeq + 1) this.saveScroll(); // before the page changes
    if (!this.onPatches(seq, mode === NAV_LOAD ? [] : patches)) return;
    this.nav = null;
    g.clearTimeout(this.navTimer);
    if (mode === NAV_LOAD) return g.location.assign(url);
    this.here = this.cfg.path = url; // a reconnect says HELLO with it
    if (mode < NAV_POP) h[mode ? 'replaceState' : 'pushState'](mode ? h.state : null, '', url + hash);
    if (title) g.document.title = title;
    if (meta) this.setMeta(meta);
    if (mode === NAV_POP) return this.restoreScroll();
    if (quiet) return;
    let id = hash.slice(1), el;
    try { id = decodeURIComponent(id); } catch (err) { /* raw */ }
    if ((el = id && g.document.getElementById(id))) el.scrollIntoView(); else g.scrollTo(0, 0);
    const root = this.dom().root;
    if (!(el = root.querySelector('[autofocus]'))) { // focusable, not in the tab order
      el = root.querySelector('h1') || root;
      if (!el.hasAttribute('tabindex')) el.setAttribute('tabindex', '-1');
    }
    el.focus({ preventScroll: true });
  }

  onFull(seq, html) {
    this.dom().full(html);
    this.interop.scan(true);
    this.applied(seq);
  }

  applied(seq) { // ACK a second after the first unacknowledged frame, or at once every 16 frames
    this.lastSeq = seq;
    this.resyncAt = 0;
    if (++this.unacked >= ACK_EVERY_FRAMES) this.flushAck();
    else if (!this.ackTimer) this.ackTimer = this.g.setTimeout(() => this.flushAck(), ACK_DELAY_MS);
  }

  flushAck() {
    this.g.clearTimeout(this.ackTimer);
    this.ackTimer = 0;
    if (this.unacked) this.send([ACK, this.lastSeq]);
    this.unacked = 0;
  }

  resync() { // frames after a gap are skipped until the server replays it
    const t = this.now();
    if (this.resyncAt && t - this.resyncAt < RESYNC_RETRY_MS) return;
    this.resyncAt = t;
    this.send([RESYNC, this.lastSeq]);
  }

  // ------------------------------------------------------------ connection
  setState(state) {
    this.state = state;
    this.debug && this.log('state', state);
  }

  send(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) return;
    this.debug && this.log('send', frame);
    ws.send(encodeMessage(frame));
  }

  connect() { // resumes sessionId/lastSeq, if any
    if (this.ws) return;
    const loc = this.g.location, scheme = loc.protocol === 'https:' ? 'wss://' : 'ws://';
    this.g.clearTimeout(this.retryTimer);
    this.setState('connecting');
    let ws;
    try {
      ws = new this.g.WebSocket(scheme + loc.host + (this.cfg.ws || WS_PATH));
    } catch (err) {
      this.debug && this.log('socket failed', err);
      return this.onClose(ABNORMAL);
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => this.ws === ws && this.hello();
    ws.onmessage = (e) => this.ws === ws && this.receive(e.data);
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClose(e.code, e.reason);
    };
  }

  hello() {
    const loc = this.g.location, path = this.cfg.path || loc.pathname;
    this.lastRecv = this.now();
    this.resyncAt = 0;
    this.send([HELLO, VERSION, this.cfg.csrf || '', path.indexOf('?') < 0 ? path + loc.search : path,
      this.sessionId, this.lastSeq, this.cfg.h || null]);
  }

  receive(data) {
    this.lastRecv = this.now();
    let frame;
    try {
      frame = decodeMessage(data);
    } catch (err) { // a lost PATCHES frame shows up as a gap: RESYNC mends it
      this.debug && this.log('undecodable message', err);
      return;
    }
    this.debug && this.log('recv', frame);
    try {
      this.onFrame(frame);
    } catch (err) {
      // A half-applied patch list leaves the DOM unknown and a replay of
      // the frame would fail again: reload into a fresh session.
      this.g.console.error('[vango] cannot apply frame; reloading', err);
      this.reload();
    }
  }

  heartbeat() {
    if (this.now() - this.lastRecv > DEAD_AFTER_MS) return this.drop();
    this.send([PING, this.now()]);
  }

  stopTimers() {
    this.g.clearInterval(this.pingTimer);
    this.g.clearTimeout(this.ackTimer);
    this.g.clearTimeout(this.retryTimer);
    this.pingTimer = this.ackTimer = this.retryTimer = this.unacked = 0;
  }

  shut() { // let go of the socket (its handlers go quiet) and every timer
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(Close.NORMAL);
    this.stopTimers();
    this.setState('closed');
  }

  drop() { // a silent socket: close it ourselves, then retry
    this.shut();
    this.onClose(ABNORMAL);
  }

  onClose(code, reason) {
    this.stopTimers();
    const action = closeAction(code);
    this.debug && this.log('closed', code, action);
    if (code === Close.INVALID_CSRF && !this.csrfRefreshed) return this.refreshCsrf();
    if (action === RELOAD) return this.reload();
    if (action === NOTICE) {
      const why = reason || 'server under memory pressure';
      showNotice(this.g.document, `Session closed: ${why}. Reload the page to continue.`);
      return this.setState('closed');
    }
    if (action === STOP) return this.setState('closed');
    if (this.attempts >= RETRY_MAX) {
      this.hideToast();
      if (this.toast) showNotice(this.g.document, TOAST_GAVE_UP, TOAST);
      return this.setState('closed');
    }
    if (this.toast && !this.toastTimer) {
      this.toastTimer = this.g.setTimeout(() => showNotice(this.g.document, TOAST_TEXT, TOAST), TOAST_DELAY_MS);
    }
    const delay = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** this.attempts++);
    this.retryTimer = this.g.setTimeout(() => this.connect(), delay * (1 - RETRY_JITTER * Math.random()));
    this.setState('connecting');
  }

  // Another tab may have replaced the browser's CSRF cookie after this page
  // was served (two tabs loading at once in a fresh browser): ask for the
  // token of the cookie we hold now and say HELLO again, once, before the
  // reload a 4002 otherwise means.
  refreshCsrf() {
    this.csrfRefreshed = true;
    this.setState('connecting');
    const retry = (token) => (token ? (this.cfg.csrf = token, this.connect()) : this.reload());
    if (!this.g.fetch) return retry(null);
    this.g.fetch(CSRF_PATH, { credentials: 'same-origin', cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((body) => retry(body && typeof body.token === 'string' && body.token), () => retry(null));
  }

  // Shut first: no reconnect loop while the page unloads. At most one
  // automatic reload per RELOAD_GUARD_MS per tab, so a server that refuses
  // every fresh page (bad CSRF setup, a patch that always fails) is not
  // hammered by a reload loop.
  reload() {
    this.shut();
    let store = null;
    try { store = this.g.sessionStorage || null; } catch (err) { /* storage blocked */ }
    const last = store ? +store.getItem(RELOAD_KEY) || 0 : 0;
    if (this.now() - last < RELOAD_GUARD_MS) return this.g.console.error('[vango] reload loop; stopped');
    if (store) store.setItem(RELOAD_KEY, String(this.now()));
    this.g.location.reload();
  }

  disconnect() {
    this.flushAck();
    this.shut();
    this.hideToast();
  }

  hideToast() {
    this.g.clearTimeout(this.toastTimer);
    this.toastTimer = 0;
    hideNotice(this.g.document, TOAST);
  }

  // ------------------------------------------------------------ navigation
  // As LiveView's liveSocket: links and Back/Forward go out as NAVIGATE.
  navigate(href, mode) {
    const g = this.g, loc = g.location, u = new URL(href, loc.href), path = u.pathname + u.search;
    const load = () => (mode === NAV_POP ? loc.reload() : loc.assign(u.href));
    if (this.state !== 'open' || !this.ours(u)) return load();
    this.nav = { path: u.pathname, hash: u.hash };
    this.prefetched.delete(path);
    this.send([NAVIGATE, path, mode]);
    g.clearTimeout(this.navTimer);
    this.navTimer = g.setTimeout(load, NAV_TIMEOUT_MS);
  }

  ours(u) { // same origin (so http(s)), a path the server takes
    return u.origin === this.g.location.origin && u.pathname[1] !== '/' &&
      u.pathname.length + u.search.length <= MAX_URL;
  }

  link(t) { // the link around t as a URL, if ours to follow
    const a = t && t.closest && t.closest('a[href]'), to = a && a.getAttribute('target');
    if (!a || (to && to !== '_self') || a.hasAttribute('download') || a.hasAttribute('data-vango-reload')) return null;
    try {
      const u = new URL(a.getAttribute('href'), this.g.location.href);
      return this.ours(u) ? u : null;
    } catch (err) { return null; }
  }

  onClick(e) { // socket down: the browser follows; a #fragment on this page: it scrolls
    const loc = this.g.location, t = e.target, u = this.state === 'open' &&
      !(e.defaultPrevented || e.button || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) &&
      this.link(t && t.nodeType === TEXT_NODE ? t.parentNode : t);
    if (!u || (u.hash && u.pathname === loc.pathname && u.search === loc.search)) return;
    e.preventDefault();
    this.navigate(u.href, NAV_PUSH);
  }

  onPop() { // the browser moved already; maybe only the #fragment
    const loc = this.g.location;
    this.g.clearTimeout(this.scrollTimer);
    if (loc.pathname + loc.search !== this.here) this.navigate(loc.href, NAV_POP);
    else this.restoreScroll();
  }

  setMeta(meta) { // the page's <meta name=…> tags (use_head): the server's set replaces ours
    const d = this.g.document;
    for (const m of d.querySelectorAll('meta[data-vango-head]')) m.remove();
    for (const name of Object.keys(meta)) {
      const m = d.createElement('meta');
      m.setAttribute('name', name);
      m.setAttribute('content', String(meta[name]));
      m.setAttribute('data-vango-head', '');
      d.head.appendChild(m);
    }
  }

  saveScroll() { // into history.state, next to what is there
    const g = this.g, h = g.history;
    g.clearTimeout(this.scrollTimer);
    h.replaceState({ ...h.state, vango: { x: g.scrollX, y: g.scrollY } }, '');
  }

  restoreScroll() {
    const s = (this.g.history.state || {}).vango || {};
    this.g.scrollTo(s.x || 0, s.y || 0);
  }

  // PREFETCH on hover, focus or touch of links with data-prefetch (any, if
  // __vango.prefetch; data-prefetch="false" opts out).
  onHint(e) {
    const t = e.target, a = t && t.closest && t.closest('a[href]'), p = a && a.getAttribute('data-prefetch');
    if (!a || (p === null ? this.cfg.prefetch !== true : p === 'false')) return;
    const enter = e.type === 'mouseenter';
    if (!enter && e.type !== 'mouseleave') return this.prefetch(a);
    if (t !== a) return; // a child: still on the link
    this.g.clearTimeout(this.hoverTimer);
    if (enter) this.hoverTimer = this.g.setTimeout(() => this.prefetch(a), HOVER_MS);
  }

  prefetch(a) {
    const u = this.link(a), t = this.now() - PREFETCH_TTL_MS, url = u && u.pathname + u.search;
    if (!u || this.state !== 'open' || url === this.here || this.prefetched.get(url) > t) return;
    for (const [k, at] of this.prefetched) if (at <= t) this.prefetched.delete(k);
    this.prefetched.set(url, this.now());
    this.send([PREFETCH, url]);
  }

  // ------------------------------------------------------------ DOM events
  listen() {
    const g = this.g, d = g.document, opt = { capture: true, passive: true };
    for (const name of EVENT_NAMES) d.addEventListener(name, (e) => this.onDomEvent(e), OWN_EVENTS.includes(name));
    d.addEventListener('focusout', (e) => this.flushAround(e.target)); // a blur sends a pending debounce
    g.addEventListener('resize', (e) => { // every element listening for resize hears the window's
      for (const el of d.querySelectorAll('[' + A_EVENTS + '~="resize"]')) this.onListener(el, 'resize', e, el, g);
    });
    d.addEventListener('click', (e) => this.onClick(e)); // after onDomEvent: a listening <a> is an event
    for (const name of ['mouseenter', 'mouseleave', 'focusin', 'touchstart']) {
      d.addEventListener(name, (e) => this.onHint(e), opt);
    }
    this.interop.listen(d);
    g.addEventListener('popstate', () => this.onPop());
    g.addEventListener('scroll', () => {
      g.clearTimeout(this.scrollTimer);
      this.scrollTimer = g.setTimeout(() => this.saveScroll(), SCROLL_SAVE_MS);
    }, opt);
    g.history.scrollRestoration = 'manual';
    this.here = g.location.pathname + g.location.search;
  }

  onDomEvent(e) {
    const name = e.type;
    let target = e.target;
    if (target && target.nodeType !== ELEMENT_NODE) target = target.parentNode;
    const el = OWN_EVENTS.includes(name) ? (target && target.nodeType === ELEMENT_NODE &&
      listensTo(target, name) ? target : null) : closestListener(target, name);
    if (!el) return;
    if (name === 'click') {
      const control = target.closest('button, input');
      // The form's submit event will carry this click; don't send it twice.
      if (isSubmitControl(control) && control.form && closestListener(control.form, 'submit')) return;
      if (el.tagName === 'A' || (isSubmitControl(el) && el.form)) e.preventDefault();
    } else if (name === 'submit') e.preventDefault();
    else if (name === 'change' && el.hasAttribute('data-vango-upload')) return this.upload(el);
    this.onListener(el, name, e, target, e);
  }

  // Listener options: key filter, preventDefault/stopPropagation, then debounce or
  // throttle (src: what the payload is read from -- the event, or the window for resize).
  onListener(el, name, e, target, src) {
    const o = listenerOptions(el, name);
    if (o.k && o.k.indexOf(e.key) < 0) return;
    if (o.p) e.preventDefault();
    if (o.s) e.stopPropagation();
    if (name === 'submit') this.flushAround(el, true);
    const fire = () => this.send1(el, name, eventPayload(name, src, target, el), target, o);
    if (!o.d && !o.t) { this.flushPaced(el); return fire(); }
    const all = this.paced.get(el) || {}, p = all[name] || (all[name] = { timer: 0, fire: null, last: 0 });
    this.paced.set(el, all);
    const g = this.g, now = this.now(), wait = o.d || Math.max(0, p.last + o.t - now);
    if (o.t && !wait) { p.last = now; return fire(); } // throttle: the first of a burst goes at once
    g.clearTimeout(p.timer);
    p.fire = fire;
    p.timer = g.setTimeout(() => this.flushPaced(el, name), wait);
  }

  flushAround(el, inside) { // pending events of elements around el (inside: within it); forget removed ones
    for (const [x] of this.paced) {
      if (!x.isConnected) this.paced.delete(x);
      else if (inside ? el.contains(x) : x.contains(el)) this.flushPaced(x);
    }
  }

  flushPaced(el, only) { // send what waits on el now (a blur, a submit, its timer)
    const all = el && this.paced.get(el);
    if (!all) return;
    for (const name of Object.keys(all)) {
      const p = all[name];
      if ((only && name !== only) || !p.fire) continue;
      this.g.clearTimeout(p.timer);
      const fire = p.fire;
      p.fire = null;
      p.last = this.now();
      fire();
    }
  }

  send1(el, name, payload, target, o) { // one EVENT; with o.l the element is busy until EVENT_DONE
    const before = this.cseq;
    this.pushEvent(el, name, payload, target);
    if (!o.l || this.cseq === before) return;
    const text = o.w && el.childNodes.length === 1 && el.firstChild.nodeType === TEXT_NODE ? el.firstChild : null;
    this.busy.set(this.cseq, [el, text && text.data, o.w, !!el.disabled]);
    el.setAttribute('aria-busy', 'true');
    el.classList.add(BUSY_CLASS);
    if (text) text.data = o.w;
    if (o.w && 'disabled' in el) el.disabled = true;
  }

  unbusy(cseq) {
    const b = this.busy.get(cseq);
    if (!b) return;
    this.busy.delete(cseq);
    const [el, text, w, was] = b;
    el.removeAttribute('aria-busy');
    el.classList.remove(BUSY_CLASS);
    if (w && 'disabled' in el) el.disabled = was;
    const t = el.firstChild; // a patch changed the text meanwhile: the server's text stays
    if (text != null && t && t.nodeType === TEXT_NODE && t.data === w) t.data = text;
  }

  // An app error (ERROR frame): with --dev the server sends the detail and
  // #vango-error shows it; otherwise a short notice that goes away by itself.
  showError(text, detail) {
    const g = this.g, d = g.document;
    if (detail == null) {
      showNotice(d, text, 'error');
      g.clearTimeout(this.errorTimer);
      this.errorTimer = g.setTimeout(() => hideNotice(d, 'error'), ERROR_NOTICE_MS);
      return;
    }
    let el = d.getElementById(ERROR_ID);
    if (el) el.remove();
    el = d.createElement('div');
    el.id = ERROR_ID;
    el.setAttribute('role', 'alert');
    el.style.cssText = OVERLAY_STYLE;
    const close = d.createElement('button'), head = d.createElement('strong'), body = d.createElement('pre');
    close.textContent = '\u00d7';
    close.setAttribute('aria-label', 'Close');
    close.onclick = () => el.remove();
    head.textContent = text;
    body.textContent = detail;
    el.append(close, head, body);
    d.body.appendChild(el);
  }

  // A use_upload input: its files go in one POST (streamed to disk on the server),
  // progress and refusals come back as patches of the component.
  upload(el) {
    const files = Array.from(el.files || []), g = this.g;
    if (this.xhr) this.xhr.abort(); // a new choice replaces the transfer in flight
    if (!files.length || !this.sessionId || this.state !== 'open') return;
    const x = this.xhr = new g.XMLHttpRequest();
    x.open('POST', UPLOAD_PATH + '?hid=' + el.getAttribute(A_HID));
    x.setRequestHeader('X-CSRF-Token', this.cfg.csrf || '');
    x.setRequestHeader('X-Vango-Session', this.sessionId);
    x.setRequestHeader('X-Vango-Files', encodeURIComponent(JSON.stringify(files.map((f) => [f.name, f.type, f.size]))));
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    x.onloadend = () => { if (this.xhr === x) this.xhr = null; };
    x.send(new g.Blob(files));
  }

  pushHook(el, name, data) { // a hook's this.pushEvent: its element's on_hook handler gets it
    const hid = parseInt(el.getAttribute(A_HID), 10);
    if (this.state === 'open' && !isNaN(hid)) this.send([HOOK, hid, name, data === undefined ? null : data]);
  }

  pushEvent(el, name, payload, target) {
    const hid = parseInt(el.getAttribute(A_HID), 10);
    if (this.state !== 'open' || isNaN(hid)) return;
    this.send([EVENT, ++this.cseq, hid, name, payload]);
    // Remember recent typed values: their echoes may come back after newer
    // keystrokes and must not rewind the field. A submit or click ends the
    // run, so a server-side reset after it does apply.
    if (name !== 'input' && name !== 'change' && name !== 'click' && name !== 'submit') return;
    const typed = payload && payload.value;
    if (typed === undefined || this.echoEl !== target) {
      this.echoEl = typed === undefined ? null : target;
      this.echoes.clear();
    }
    if (typed === undefined) return;
    this.echoes.add(typed);
    if (this.echoes.size > ECHO_MAX) this.echoes.delete(this.echoes.values().next().value);
  }
}

// ------------------------------------------------------------ JS interop
// What page scripts and the server say outside the patches (vango_mp/interop.py):
// hooks (data-hook="Name", registered with vango.hook), CALLS from the
// server (emit, commands, hook reverts, island messages), islands'
// messages (a `vango:island` CustomEvent from inside data-island="id"), and
// data-js-<event> commands that run with no round trip.
class Interop {
  constructor(client) {
    this.c = client;
    this.defs = Object.create(null); // hook name -> definition
    this.live = new Map(); // element -> hook instance
  }

  define(name, def) {
    this.defs[name] = def;
    this.scan(null);
  }

  // After each applied frame: destroy hooks whose element left, mount new
  // ones, `updated` those around an element the frame touched (all: FULL).
  // Only while connected (as LiveView): a hook's first pushEvent must arrive.
  scan(touched) {
    const c = this.c, root = c.g.document.getElementById(ROOT_ID);
    if (c.state !== 'open') return;
    for (const [el, h] of this.live) {
      if (root && root.contains(el) && el.getAttribute(A_HOOK) === h.hook) continue;
      this.live.delete(el);
      this.call(h, 'destroyed');
    }
    if (!root) return;
    for (const el of root.querySelectorAll('[' + A_HOOK + ']')) {
      let h = this.live.get(el);
      if (h) {
        if (touched === true || (touched && touched.some((t) => el.contains(t)))) this.call(h, 'updated');
        continue;
      }
      // window.VangoHooks: for page scripts that run before this one (any order works).
      const name = el.getAttribute(A_HOOK), def = this.defs[name] || (c.g.VangoHooks || {})[name];
      if (!def) continue;
      h = Object.assign(Object.create(def), {
        el, hook: name, handlers: [],
        pushEvent: (event, data) => c.pushHook(el, event, data),
        handleEvent: (event, cb) => h.handlers.push([event, cb]),
      });
      this.live.set(el, h);
      this.call(h, 'mounted');
    }
  }

  call(h, what, arg) { // a page's hook failing must not stop the patches
    if (typeof h[what] !== 'function') return;
    try { h[what](arg); } catch (err) { this.c.g.console.error('[vango] hook ' + h.hook + '.' + what, err); }
  }

  run(calls) { // a CALLS frame: [kind, ...] each
    const g = this.c.g, d = g.document;
    for (const [kind, a, b, x] of calls) {
      try {
        if (kind === 'e') {
          g.dispatchEvent(new g.CustomEvent(a, { detail: b }));
          for (const h of this.live.values()) for (const [n, cb] of h.handlers) if (n === a) cb(b);
        } else if (kind === 'c') runCommand(d, a, b, x);
        else if (kind === 'r') {
          const h = this.live.get(d.querySelector('[' + A_HID + '="' + (a | 0) + '"]')); // gone: nothing to undo
          if (h) this.call(h, 'reverted');
        } else if (kind === 'i') {
          const el = d.querySelector('[' + A_ISLAND + '="' + a + '"]');
          if (el) el.dispatchEvent(new g.CustomEvent('vango:message', { detail: b }));
        }
      } catch (err) { g.console.error('[vango] call failed', kind, a, err); }
    }
  }

  listen(d) {
    d.addEventListener('vango:island', (e) => { // from inside an island: its message to the server
      const el = e.target.closest && e.target.closest('[' + A_ISLAND + ']');
      if (el) this.c.send([ISLAND, el.getAttribute(A_ISLAND), e.detail === undefined ? null : e.detail]);
    });
    for (const type of JS_EVENTS) d.addEventListener(type, (e) => this.onJs(e), true);
    // A page script a navigation inserted runs after the patches: its VangoHooks may be new.
    d.addEventListener('load', (e) => e.target.localName === 'script' && this.scan(null), true);
  }

  onJs(e) { // data-js-<event>: commands that need no server
    let t = e.target;
    if (t && t.nodeType !== ELEMENT_NODE) t = t.parentNode;
    const a = A_JS + e.type, el = t && t.closest && t.closest('[' + a + ']');
    if (!el) return;
    try { for (const op of JSON.parse(el.getAttribute(a))) runCommand(this.c.g.document, ...op); }
    catch (err) { this.c.g.console.error('[vango] ' + a, err); }
  }
}

// One client command (vango_mp.interop.JS) on the elements `sel` matches.
function runCommand(d, op, sel, arg) {
  const all = [...d.querySelectorAll(sel)], el = all[0], cls = { add_class: 'add', remove_class: 'remove',
    toggle_class: 'toggle' }[op];
  if (cls) return all.forEach((e) => arg.split(' ').forEach((n) => e.classList[cls](n)));
  if (op === 'show' || op === 'hide' || op === 'toggle') {
    return all.forEach((e) => e.toggleAttribute('hidden', op === 'toggle' ? undefined : op === 'hide'));
  }
  if (op === 'blur') return all.forEach((e) => e.blur());
  if (!el) return;
  if (op === 'focus') el.focus();
  else if (op === 'select') { el.focus(); if (el.select) el.select(); }
  else if (op === 'scroll') el.scrollIntoView(arg ? { behavior: 'smooth' } : undefined);
  else if (op === 'copy') {
    const text = el.matches('input, textarea, select') ? el.value : el.textContent, clip = navigator.clipboard;
    if (clip) clip.writeText(text).catch(() => {});
  }
}

function publicApi(client) { // window.vango: what tests and devtools may touch
  return {
    get sessionId() { return client.sessionId; },
    get lastSeq() { return client.lastSeq; },
    get state() { return client.state; },
    get worker() { return client.worker; },
    get debug() { return client.debug; },
    set debug(on) { client.debug = !!on; },
    connect() { // also cuts a pending backoff short
      if (client.ws) return;
      client.attempts = 0;
      client.connect();
    },
    disconnect() { client.disconnect(); },
    navigate(url, opts) { client.navigate(url, opts && opts.replace ? NAV_REPLACE : NAV_PUSH); },
    hook(name, def) { client.interop.define(name, def); }, // data-hook="name": {mounted, updated, ...}
  };
}

// ---------------------------------------------------------------- bootstrap
const exported = {
  msgpackEncode, msgpackDecode, lz4BlockDecode, decodeMessage, encodeMessage,
  Patcher, Client, closeAction, showNotice, hideNotice,
  PROTOCOL: {
    VERSION, FLAG_RAW, FLAG_LZ4, HELLO, EVENT, ACK, RESYNC, PING, PONG,
    WELCOME, PATCHES, FULL, S_PING, S_PONG, NAVIGATE, PREFETCH, NAV, EVENT_DONE, ERROR, HOOK, ISLAND, CALLS, NAV_PUSH, NAV_REPLACE, NAV_POP, NAV_LOAD,
    SET_TEXT, SET_ATTR, REMOVE_ATTR, INSERT, REMOVE, MOVE, REPLACE, EVENT_NAMES, Close,
  },
};
if (typeof module !== 'undefined' && module.exports) module.exports = exported;

if (typeof window !== 'undefined' && typeof document !== 'undefined') {
  const client = new Client(window, window.__vango || {});
  window.vango = client.api;
  client.listen();
  // Without the server's bootstrap there is no csrf token: connecting
  // would earn a 4002 and a reload loop.
  if (window.__vango) client.connect();
}
})();
