#!/usr/bin/env node
// A local fake of the Stripe API, version 2023-08-16, for apigres's tests and
// for the sandbox `make run` uses when no Stripe key is configured.
//
//   node server.js [--port N] [--host 127.0.0.1] [--seed-customers N] [--seed FILE]
//                  [--no-seed] [--rng-seed N] [--config JSON]
//
// Prints exactly one line, "stripe-fake listening on http://HOST:PORT", when ready.
// Node 20 standard library only. See README.md for what is faithful and the
// /_fake/ control API.
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const SPEC = JSON.parse(fs.readFileSync(path.join(__dirname, 'spec.json'), 'utf8'));
const API_VERSION = SPEC.api_version; // "2023-08-16"

// ---------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const o = { port: 12120, host: '127.0.0.1', seedCustomers: null, seedFile: null, noSeed: false, rngSeed: null, config: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') o.port = Number(next());
    else if (a === '--host') o.host = next();
    else if (a === '--seed-customers') o.seedCustomers = Number(next());
    else if (a === '--seed') o.seedFile = next();
    else if (a === '--no-seed') o.noSeed = true;
    else if (a === '--rng-seed') o.rngSeed = Number(next());
    else if (a === '--config') o.config = next();
    else if (a === '-h' || a === '--help') usage(null);
    else usage(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) usage('--port must be 0..65535');
  if (o.seedCustomers !== null && (!Number.isInteger(o.seedCustomers) || o.seedCustomers < 0)) usage('--seed-customers must be >= 0');
  return o;
}

function usage(err) {
  const text = 'usage: node server.js [--port N] [--host ADDR] [--seed-customers N] [--seed FILE] [--no-seed] [--rng-seed N] [--config JSON]\n';
  if (err) { process.stderr.write(`stripe-fake: ${err}\n${text}`); process.exit(2); }
  process.stdout.write(text);
  process.exit(0);
}

// ---------------------------------------------------------------------------
// Randomness: a small fast PRNG (sfc32) seeded from crypto, or from --rng-seed.

let rngA, rngB, rngC, rngD;
function seedRng(seed) {
  if (seed === null || seed === undefined || Number.isNaN(seed)) {
    const b = crypto.randomBytes(16);
    rngA = b.readUInt32LE(0); rngB = b.readUInt32LE(4); rngC = b.readUInt32LE(8); rngD = b.readUInt32LE(12);
  } else {
    rngA = 0x9e3779b9; rngB = 0x243f6a88; rngC = 0xb7e15162; rngD = seed >>> 0;
  }
  for (let i = 0; i < 16; i++) rand();
}
function rand() {
  rngA >>>= 0; rngB >>>= 0; rngC >>>= 0; rngD >>>= 0;
  let t = (rngA + rngB) | 0;
  rngA = rngB ^ (rngB >>> 9);
  rngB = (rngC + (rngC << 3)) | 0;
  rngC = (rngC << 21) | (rngC >>> 11);
  rngD = (rngD + 1) | 0;
  t = (t + rngD) | 0;
  rngC = (rngC + t) | 0;
  return (t >>> 0) / 4294967296;
}
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPERNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
function randStr(n, alphabet = ALNUM) {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[(rand() * alphabet.length) | 0];
  return s;
}
function pick(arr) { return arr[(rand() * arr.length) | 0]; }

// Stripe's ids: short ones are prefix + 14 alphanumerics (cus_Oaxlz8kB0PJWGa);
// long ones are prefix + "1" + 5 + a 10-character account tag + 8
// (price_1NnlpZGPxmnHQRkJuWjM7eRV).
let ACCOUNT_TAG = 'GPxmnHQRkJ';
const ID_SHORT = { customer: 'cus_', product: 'prod_', subscription_item: 'si_', request: 'req_' };
const ID_LONG = {
  price: 'price_', subscription: 'sub_', invoice: 'in_', line_item: 'il_', payment_intent: 'pi_',
  event: 'evt_', discount: 'di_', charge: 'ch_', payment_method: 'pm_', card: 'card_',
};
function newId(kind) {
  if (ID_SHORT[kind]) return ID_SHORT[kind] + randStr(14);
  if (ID_LONG[kind]) return ID_LONG[kind] + '1' + randStr(5) + ACCOUNT_TAG + randStr(8);
  if (kind === 'coupon') return randStr(8, UPPERNUM);
  throw new Error('no id format for ' + kind);
}

// ---------------------------------------------------------------------------
// Errors

class ApiError extends Error {
  constructor(status, fields, extraHeaders) {
    super(fields.message || fields.type);
    this.status = status;
    this.fields = fields;
    this.extraHeaders = extraHeaders || null;
  }
}
function docUrl(code) { return `https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`; }
function invalid(message, param, code, status = 400) {
  const f = { type: 'invalid_request_error', message };
  if (code) f.code = code;
  if (param !== undefined && param !== null) f.param = param;
  return new ApiError(status, f);
}
function unknownParam(p) { return invalid(`Received unknown parameter: ${p}`, p, 'parameter_unknown'); }
function missingParam(p) { return invalid(`Missing required param: ${p}.`, p, 'parameter_missing'); }
function emptyParam(p) {
  return invalid(`You passed an empty string for '${p}'. We assume empty values are an attempt to unset a parameter; however '${p}' cannot be unset. You should remove '${p}' from your request or supply a non-empty value.`, p, 'parameter_invalid_empty');
}
function noSuch(kind, id, param, status = 404) {
  return invalid(`No such ${kind}: '${id}'`, param, 'resource_missing', status);
}
function oneOfList(vals) {
  const v = vals.filter((x) => x !== '');
  if (v.length <= 1) return v.join('');
  if (v.length === 2) return `${v[0]} or ${v[1]}`;
  return `${v.slice(0, -1).join(', ')}, or ${v[v.length - 1]}`;
}

// ---------------------------------------------------------------------------
// Form decoding: "a[b][0][c]=v&expand[]=x" into nested null-prototype objects
// (hashes), arrays (for "[]") and strings (leaves). Types come later, from the spec.

function isNode(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
function newNode() { return Object.create(null); }

function decodeComponent(s) {
  if (s.indexOf('+') >= 0) s = s.replace(/\+/g, ' ');
  if (s.indexOf('%') < 0) return s;
  try { return decodeURIComponent(s); } catch (e) {
    throw invalid('Invalid request: the request contains malformed percent-encoding.', null);
  }
}

function splitKey(k) {
  const first = k.indexOf('[');
  if (first <= 0 || k[k.length - 1] !== ']') return [k];
  const segs = [k.slice(0, first)];
  let i = first;
  while (i < k.length) {
    if (k[i] !== '[') return [k];
    const close = k.indexOf(']', i);
    if (close < 0) return [k];
    segs.push(k.slice(i + 1, close));
    i = close + 1;
  }
  return segs;
}

function parseForm(str, root) {
  root = root || newNode();
  if (!str) return root;
  const parts = str.split('&');
  for (const part of parts) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = decodeComponent(eq < 0 ? part : part.slice(0, eq));
    const v = decodeComponent(eq < 0 ? '' : part.slice(eq + 1));
    if (!k) continue;
    const segs = splitKey(k);
    let cur = root;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      const last = i === segs.length - 1;
      if (Array.isArray(cur)) {
        if (s === '') {
          if (last) { cur.push(v); break; }
          const n = segs[i + 1] === '' ? [] : newNode();
          cur.push(n); cur = n; continue;
        }
        // "a[]=x&a[1]=y": index into the array as a hash would
        const idx = Number(s);
        if (last) { cur[Number.isInteger(idx) ? idx : cur.length] = v; break; }
        let n = cur[idx];
        if (n === undefined || typeof n === 'string') { n = segs[i + 1] === '' ? [] : newNode(); cur[Number.isInteger(idx) ? idx : cur.length] = n; }
        cur = n; continue;
      }
      if (last) { cur[s] = v; break; }
      let n = cur[s];
      if (n === undefined || typeof n === 'string') { n = segs[i + 1] === '' ? [] : newNode(); cur[s] = n; }
      cur = n;
    }
  }
  return root;
}

// Turn JSON (seed files) into the same tree a form body would give.
function jsonToTree(v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(jsonToTree);
  if (typeof v === 'object') { const n = newNode(); for (const k of Object.keys(v)) n[k] = jsonToTree(v[k]); return n; }
  return String(v);
}

// ---------------------------------------------------------------------------
// Parameter validation against the spec's request schemas.

const UNSET = Symbol('unset'); // the caller posted "" to unset the parameter

function joinParam(base, k) { return base ? `${base}[${k}]` : k; }
function allIndexKeys(node) {
  const ks = Object.keys(node);
  return ks.length > 0 && ks.every((k) => /^\d+$/.test(k));
}
function isEmptyAlt(s) { return s.enum && s.enum.length === 1 && s.enum[0] === ''; }
function showValue(v) {
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function coerce(schema, v, pname, required) {
  if (schema.anyOf) {
    const alts = schema.anyOf.filter((a) => !isEmptyAlt(a));
    if (v === '') {
      if (alts.length !== schema.anyOf.length) return UNSET;
    }
    let chosen = null;
    if (Array.isArray(v) || (isNode(v) && allIndexKeys(v))) chosen = alts.find((a) => a.type === 'array');
    if (!chosen && isNode(v)) chosen = alts.find((a) => a.type === 'object');
    if (!chosen && typeof v === 'string') {
      if (/^-?\d+$/.test(v)) chosen = alts.find((a) => a.type === 'integer');
      if (!chosen) chosen = alts.find((a) => a.type === 'string' && (!a.enum || a.enum.includes(v)));
      if (!chosen) chosen = alts.find((a) => a.type === 'integer' || a.type === 'number' || a.type === 'boolean');
      if (!chosen) chosen = alts.find((a) => a.type === 'string');
    }
    if (!chosen) chosen = alts[0] || {};
    return coerce(chosen, v, pname, required);
  }
  switch (schema.type) {
    case 'object': {
      if (!isNode(v)) {
        if (v === '') throw emptyParam(pname);
        throw invalid(`Invalid hash`, pname);
      }
      const out = newNode();
      const props = schema.properties;
      if (props) {
        for (const k of Object.keys(v)) {
          if (!(k in props) && !schema.additionalProperties) throw unknownParam(joinParam(pname, k));
        }
        const req = schema.required || [];
        for (const k of Object.keys(v)) {
          const sub = props[k] || schema.additionalProperties;
          out[k] = coerce(sub, v[k], joinParam(pname, k), req.includes(k));
        }
        for (const r of req) if (!(r in v)) throw missingParam(joinParam(pname, r));
      } else if (schema.additionalProperties) {
        for (const k of Object.keys(v)) out[k] = coerce(schema.additionalProperties, v[k], joinParam(pname, k), false);
      } else {
        for (const k of Object.keys(v)) out[k] = v[k];
      }
      return out;
    }
    case 'array': {
      let arr;
      if (Array.isArray(v)) arr = v;
      else if (isNode(v) && (allIndexKeys(v) || Object.keys(v).length === 0)) {
        arr = Object.keys(v).sort((a, b) => Number(a) - Number(b)).map((k) => v[k]);
      } else if (v === '') {
        throw emptyParam(pname);
      } else throw invalid(`Invalid array`, pname);
      return arr.map((x, i) => coerce(schema.items || {}, x, `${pname}[${i}]`, false));
    }
    case 'string': {
      if (typeof v !== 'string') throw invalid(`Invalid string: ${showValue(v)}`, pname);
      if (v === '') {
        if (required || (schema.enum && !schema.enum.includes(''))) throw emptyParam(pname);
        return UNSET;
      }
      if (schema.maxLength !== undefined && v.length > schema.maxLength) {
        throw invalid(`Invalid string: ${v.length > 20 ? v.slice(0, 20) + '...' : v}; must be at most ${schema.maxLength} characters`, pname);
      }
      if (schema.enum && !schema.bypass && !schema.enum.includes(v)) {
        throw invalid(`Invalid ${pname}: must be one of ${oneOfList(schema.enum)}`, pname);
      }
      if (schema.format === 'decimal' && !/^-?\d+(\.\d+)?$/.test(v)) throw invalid(`Invalid decimal: ${v}`, pname);
      return v;
    }
    case 'integer': {
      if (typeof v !== 'string') throw invalid(`Invalid integer: ${showValue(v)}`, pname, 'parameter_invalid_integer');
      if (v === '') throw emptyParam(pname);
      if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw invalid(`Invalid integer: ${v}`, pname, 'parameter_invalid_integer');
      return Number(v);
    }
    case 'number': {
      if (typeof v !== 'string') throw invalid(`Invalid float: ${showValue(v)}`, pname);
      if (v === '') throw emptyParam(pname);
      if (!/^-?(\d+\.?\d*|\.\d+)$/.test(v)) throw invalid(`Invalid float: ${v}`, pname);
      return Number(v);
    }
    case 'boolean': {
      if (v === 'true') return true;
      if (v === 'false') return false;
      if (v === '') throw emptyParam(pname);
      throw invalid(`Invalid boolean: ${showValue(v)}`, pname);
    }
    default:
      return v;
  }
}

// Validate a whole request: unknown top-level parameters first (as Stripe
// reports them), then types/enums/lengths, then required parameters.
function validateRequest(schema, tree) {
  if (!schema) {
    const ks = Object.keys(tree);
    if (ks.length) throw unknownParam(ks[0]);
    return newNode();
  }
  const props = schema.properties || {};
  for (const k of Object.keys(tree)) if (!(k in props)) throw unknownParam(k);
  const req = schema.required || [];
  const out = newNode();
  for (const k of Object.keys(tree)) out[k] = coerce(props[k], tree[k], k, req.includes(k));
  for (const r of req) if (!(r in tree)) throw missingParam(r);
  return out;
}

// ---------------------------------------------------------------------------
// Object templates (from Stripe's fixtures: the fields a response carries by
// default, ordered as Stripe orders them: id, object, then alphabetically).

function orderedKeys(fixture) {
  const ks = Object.keys(fixture).filter((k) => k !== 'id' && k !== 'object').sort();
  const head = [];
  if ('id' in fixture) head.push('id');
  if ('object' in fixture) head.push('object');
  return head.concat(ks);
}
const TEMPLATE_KEYS = {};
const fixtureOf = {};
for (const [name, o] of Object.entries(SPEC.objects)) fixtureOf[name] = o.fixture || {};
for (const [name, o] of Object.entries(SPEC.objects)) if (o.fixture) TEMPLATE_KEYS[name] = orderedKeys(o.fixture);

// A new object of `type` with every default field; `values` override.
function blank(type, values) {
  const keys = TEMPLATE_KEYS[type];
  const fields = SPEC.objects[type].fields;
  const o = {};
  for (const k of keys) {
    if (k in values) { o[k] = values[k]; continue; }
    const f = fields[k] || {};
    if (k === 'object') o[k] = type;
    else if (k === 'livemode') o[k] = false;
    else if (k === 'metadata') o[k] = newNode();
    else if (f.type === 'boolean' && typeof fixtureOf[type][k] === 'boolean') o[k] = fixtureOf[type][k];
    else if (f.nullable) o[k] = null;
    else if (f.type === 'array') o[k] = [];
    else if (f.type === 'boolean') o[k] = false;
    else if (f.type === 'integer' || f.type === 'number') o[k] = 0;
    else o[k] = null;
  }
  let extra = false;
  for (const k of Object.keys(values)) if (!(k in o)) { o[k] = values[k]; extra = true; }
  if (!extra) return o;
  // fields the fixture lacks (e.g. a line item's subscription_item) go where
  // Stripe's ordering puts them
  const sorted = {};
  if ('id' in o) sorted.id = o.id;
  if ('object' in o) sorted.object = o.object;
  for (const k of Object.keys(o).filter((x) => x !== 'id' && x !== 'object').sort()) sorted[k] = o[k];
  return sorted;
}

// A nested shape (address, recurring, ...) with all of its fields, sorted.
function shape(name, values) {
  const sh = SPEC.shapes[name];
  const o = {};
  const keys = Object.keys(sh.fields).sort();
  if (keys.includes('id')) { keys.splice(keys.indexOf('id'), 1); keys.unshift('id'); }
  if (keys.includes('object')) { keys.splice(keys.indexOf('object'), 1); keys.splice(keys[0] === 'id' ? 1 : 0, 0, 'object'); }
  for (const k of keys) {
    let v = values && k in values ? values[k] : null;
    if (v === UNSET) v = null;
    o[k] = v;
  }
  return o;
}

function plain(v) { // a validated parameter value as stored JSON (UNSET -> null)
  if (v === UNSET || v === undefined) return null;
  if (Array.isArray(v)) return v.map(plain);
  if (isNode(v)) { const o = newNode(); for (const k of Object.keys(v)) o[k] = plain(v[k]); return o; }
  return v;
}

function snapshot(o) { return JSON.parse(JSON.stringify(o)); }

// ---------------------------------------------------------------------------
// Storage: per type, an insertion-ordered array (creation order) plus an id map.

function nowSec() { return Math.floor(Date.now() / 1000); }

class Collection {
  constructor(type, url) {
    this.type = type;
    this.url = url;
    this.clear();
  }
  clear() {
    this.map = new Map(); // id -> entry {obj, ms, priv}
    this.order = []; // entries (null = removed)
    this.pos = new Map(); // id -> index in order
    this.holes = 0;
  }
  get size() { return this.map.size; }
  add(obj, ms, priv) {
    // gen/rendered: the object's pre-rendered list text (see renderedEntry)
    const e = { obj, ms: ms || Date.now(), priv: priv || {}, gen: -1, rendered: null };
    this.pos.set(obj.id, this.order.length);
    this.order.push(e);
    this.map.set(obj.id, e);
    return e;
  }
  get(id) { return this.map.get(id); }
  remove(id) {
    const i = this.pos.get(id);
    if (i === undefined) return;
    this.order[i] = null;
    this.pos.delete(id);
    this.map.delete(id);
    this.holes++;
    if (this.holes > 256 && this.holes * 2 > this.order.length) this.compact();
  }
  compact() {
    this.order = this.order.filter((e) => e !== null);
    this.pos.clear();
    this.order.forEach((e, i) => this.pos.set(e.obj.id, i));
    this.holes = 0;
  }
  // Newest first. `filter(entry)` selects; cursor ids must exist and pass visibility.
  page(limit, startingAfter, endingBefore, filter) {
    const order = this.order;
    const data = [];
    if (endingBefore !== undefined) {
      const i = this.pos.get(endingBefore);
      for (let j = i + 1; j < order.length; j++) {
        const e = order[j];
        if (e && (!filter || filter(e))) { data.push(e); if (data.length > limit) break; }
      }
      const hasMore = data.length > limit;
      if (hasMore) data.length = limit;
      data.reverse();
      return { data, hasMore };
    }
    let start = order.length - 1;
    if (startingAfter !== undefined) start = this.pos.get(startingAfter) - 1;
    for (let j = start; j >= 0; j--) {
      const e = order[j];
      if (e && (!filter || filter(e))) { data.push(e); if (data.length > limit) break; }
    }
    const hasMore = data.length > limit;
    if (hasMore) data.length = limit;
    return { data, hasMore };
  }
}

const db = {
  customer: new Collection('customer', '/v1/customers'),
  product: new Collection('product', '/v1/products'),
  price: new Collection('price', '/v1/prices'),
  coupon: new Collection('coupon', '/v1/coupons'),
  subscription: new Collection('subscription', '/v1/subscriptions'),
  invoice: new Collection('invoice', '/v1/invoices'),
  payment_intent: new Collection('payment_intent', '/v1/payment_intents'),
  event: new Collection('event', '/v1/events'),
};
const deletedCustomers = new Map(); // id -> deleted stub (retrieve still answers)
const idempotency = new Map(); // key -> {fingerprint, status, body, reqId, ms, inFlight}

// ---------------------------------------------------------------------------
// Pre-rendered list pages. A list answer is JSON.stringify(body, null, 2); each
// collection entry keeps the text its object has inside such a body (indented
// for the "data" array), so that a page is a concatenation, byte for byte what
// JSON.stringify gives. The texts are UTF-8 Buffers: outside the JS heap, and
// a page is one copy into one buffer, written as is.
//
// Objects are changed in place, and embed each other (a subscription's items
// hold its prices, a discount its coupon), so a text is valid only in the
// generation it was rendered in, and the generation is bumped by everything
// that may change an object: every API request other than GET/HEAD (when it
// arrives, and again when it runs, which with latency_ms is later, from a
// timer) and every /_fake/ call other than GET/HEAD (reset, seed, config).
// GET handlers change no object, and no timer does other than by running a
// delayed request.

let generation = 0;
function invalidateRendered() { generation++; }

function renderedEntry(e) {
  if (e.gen !== generation) {
    // Nested two arrays deep, an object is indented as in a list's "data";
    // the slice drops "[\n  [\n" and "\n  ]\n]".
    const t = JSON.stringify([[e.obj]], null, 2);
    e.rendered = Buffer.from(t.slice(6, t.length - 6));
    e.gen = generation;
  }
  return e.rendered;
}

// Seeding is not timed by benchmarks: render everything at once, so that the
// first paging is already served from text.
function prerenderAll() {
  for (const c of Object.values(db)) for (const e of c.order) if (e) renderedEntry(e);
}

const LIST_ENTRIES = Symbol('list entries'); // listOf's body -> the page's entries
const LIST_HEAD = '{\n  "object": "list",\n  "data": [';
const LIST_HEAD_NL = Buffer.from(LIST_HEAD + '\n');
const LIST_SEP = Buffer.from(',\n');

// A page as the pieces of its text (sendJson copies them into a reused buffer).
class Prerendered {
  constructor(parts, length) { this.parts = parts; this.length = length; }
  toBuffer() { return Buffer.concat(this.parts, this.length); }
}

// JSON.stringify(body, null, 2) of a list body from listOf, from the entries'
// texts; null if the body is not (or no longer) exactly what listOf made.
function renderList(body) {
  const entries = body[LIST_ENTRIES];
  const data = body.data;
  if (!entries || !Array.isArray(data) || data.length !== entries.length) return null;
  const rest = `,\n  "has_more": ${JSON.stringify(body.has_more)},\n  "url": ${JSON.stringify(body.url)}\n}`;
  const n = entries.length;
  if (n === 0) { const b = Buffer.from(LIST_HEAD + ']' + rest); return new Prerendered([b], b.length); }
  const parts = new Array(2 * n + 1);
  let k = 0;
  let len = LIST_HEAD_NL.length;
  parts[k++] = LIST_HEAD_NL;
  for (let i = 0; i < n; i++) {
    if (data[i] !== entries[i].obj) return null;
    if (i > 0) { parts[k++] = LIST_SEP; len += LIST_SEP.length; }
    const b = renderedEntry(entries[i]);
    parts[k++] = b;
    len += b.length;
  }
  const tail = Buffer.from('\n  ]' + rest);
  parts[k++] = tail;
  len += tail.length;
  return new Prerendered(parts, len);
}

// Buffers for pages, reused once their answer is written ('finish': the
// socket has taken the bytes). A new 100+ KB buffer per page would be
// external memory that V8 answers with garbage collections, which cost
// milliseconds per page once the heap holds a million objects. A buffer whose
// answer is never finished (a dropped connection) is simply not reused.
const pageBuffers = [];
function pageBuffer(len) {
  const b = pageBuffers.pop();
  return b && b.length >= len ? b : Buffer.allocUnsafe(Math.max(len, 256 * 1024));
}

// ---------------------------------------------------------------------------
// Config knobs, stats

const DEFAULT_CONFIG = Object.freeze({
  latency_ms: 0, // added before every API answer
  latency_jitter_ms: 0, // plus uniformly 0..jitter
  fail_rate: 0, // fraction of API requests answered with fail_status (before execution)
  fail_status: 500,
  fail_next: 0, // the next N API requests fail with fail_status
  fail_max_per_key: 0, // >0: fail_rate fails a request with a given Idempotency-Key at most this often
  fail_nth_create: 0, // the Nth create (counted from when this is set) fails with fail_status
  rate_limit_per_sec: 0, // 0 = unlimited; else a token bucket of this size and rate
  retry_after: null, // seconds: send Retry-After on 429 and injected failures (Stripe sends none); null or 0 = none
  drop_rate: 0, // fraction of API requests whose connection is closed without an answer
  drop_next: 0,
  drop_after_rate: 0, // the request is executed, then the connection closed (answer lost)
  drop_after_next: 0,
  timeout_rate: 0, // fraction of API requests never answered
  timeout_next: 0,
  event_retention_seconds: 30 * 24 * 3600,
  idempotency_retention_seconds: 24 * 3600,
});
let config = Object.assign({}, DEFAULT_CONFIG);
let createAttempts = 0; // for fail_nth_create
let bucket = { tokens: 0, last: 0 };

function newStats() {
  return {
    started_at: nowSec(), requests: 0, api_requests: 0, requests_by_template: {}, statuses: {}, creates: 0, creates_by_path: {},
    objects_created: {}, updates: 0, deletes: 0, idempotent_replays: 0, rate_limited: 0,
    injected_failures: 0, dropped: 0, dropped_after_execution: 0, timed_out: 0, auth_failures: 0,
    lists_prerendered: 0,
  };
}
let stats = newStats();
function bump(map, key) { map[key] = (map[key] || 0) + 1; }

function setConfig(patch) {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) throw new Error('config must be a JSON object');
  for (const [k, v] of Object.entries(patch)) {
    if (!(k in DEFAULT_CONFIG)) throw new Error(`unknown config key: ${k}`);
    if (k === 'retry_after') {
      if (v !== null && !(Number.isInteger(v) && v >= 0)) throw new Error('retry_after must be null or an integer >= 0');
    } else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new Error(`${k} must be a number >= 0`);
    }
    if (/_rate$/.test(k) && k !== 'rate_limit_per_sec' && v > 1) throw new Error(`${k} must be between 0 and 1`);
    if (k === 'fail_status' && !(Number.isInteger(v) && v >= 400 && v <= 599)) throw new Error('fail_status must be 400..599');
  }
  Object.assign(config, patch);
  if ('fail_nth_create' in patch) createAttempts = 0;
  if ('rate_limit_per_sec' in patch) bucket = { tokens: config.rate_limit_per_sec, last: Date.now() };
}

// ---------------------------------------------------------------------------
// Events

function emit(ctx, type, object, previous) {
  const ms = Date.now();
  const data = { object: snapshot(object) };
  if (previous) data.previous_attributes = previous;
  const evt = {
    id: newId('event'), object: 'event', api_version: API_VERSION, created: Math.floor(ms / 1000), data,
    livemode: false, pending_webhooks: 0,
    request: { id: ctx ? ctx.reqId : null, idempotency_key: ctx ? ctx.idemKey || null : null },
    type,
  };
  db.event.add(evt, ms);
}

function eventVisible(e) { return e.ms >= Date.now() - config.event_retention_seconds * 1000; }

function pruneEvents() {
  const cutoff = Date.now() - config.event_retention_seconds * 1000;
  const order = db.event.order;
  let n = 0;
  while (n < order.length && (order[n] === null || order[n].ms < cutoff)) {
    if (order[n]) db.event.map.delete(order[n].obj.id);
    n++;
  }
  if (n > 0) {
    db.event.order = order.slice(n);
    db.event.pos.clear();
    db.event.order.forEach((e, i) => { if (e) db.event.pos.set(e.obj.id, i); });
    db.event.holes = 0;
  }
}

// previous_attributes: old values of the top-level fields that changed;
// hashes like metadata report only the keys that changed.
function diff(before, after) {
  const prev = {};
  let any = false;
  for (const k of Object.keys(after)) {
    const a = JSON.stringify(before[k]);
    const b = JSON.stringify(after[k]);
    if (a === b) continue;
    any = true;
    if (k === 'metadata' && isObjectLike(before[k]) && isObjectLike(after[k])) {
      const m = {};
      const keys = new Set([...Object.keys(before[k]), ...Object.keys(after[k])]);
      for (const mk of keys) if (before[k][mk] !== after[k][mk]) m[mk] = mk in before[k] ? before[k][mk] : null;
      prev[k] = m;
    } else {
      prev[k] = before[k] === undefined ? null : before[k];
    }
  }
  return any ? prev : null;
}
function isObjectLike(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }

// ---------------------------------------------------------------------------
// Helpers shared by resources

function applyMetadata(obj, v) {
  if (v === undefined) return;
  if (v === UNSET) { obj.metadata = newNode(); return; }
  const m = newNode();
  Object.assign(m, obj.metadata || {});
  for (const [k, val] of Object.entries(v)) {
    if (val === UNSET || val === '' || val === null) delete m[k];
    else m[k] = val;
  }
  checkMetadata(m);
  obj.metadata = m;
}
function checkMetadata(m) {
  const keys = Object.keys(m);
  if (keys.length > 50) throw invalid('Invalid metadata: metadata cannot have more than 50 keys.', 'metadata');
  for (const k of keys) {
    if (k.length > 40) throw invalid(`Invalid metadata: metadata keys must be at most 40 characters (got '${k.slice(0, 20)}...').`, `metadata[${k}]`);
    if (String(m[k]).length > 500) throw invalid('Invalid metadata: metadata values must be at most 500 characters.', `metadata[${k}]`);
  }
}
function setIf(obj, params, key, mapFn) {
  if (!(key in params)) return;
  const v = params[key];
  obj[key] = v === UNSET ? null : (mapFn ? mapFn(v) : plain(v));
}
function addressOf(v) { return v === UNSET || v === undefined ? null : shape('address', plain(v)); }
function shippingOf(v) {
  if (v === UNSET || v === undefined) return null;
  const p = plain(v);
  return shape('shipping', Object.assign({}, p, { address: shape('address', p.address || {}) }));
}
function checkCurrency(v, param) {
  const c = String(v).toLowerCase();
  if (!/^[a-z]{3}$/.test(c)) throw invalid(`Invalid currency: ${v}. Stripe currently supports these currencies: usd, aed, afn, all, amd, ang, aoa, ars, aud, awg, azn, bam, bbd, bdt, bgn, bif, bmd, bnd, bob, brl, bsd, bwp, byn, bzd, cad, cdf, chf, clp, cny, cop, crc, cve, czk, djf, dkk, dop, dzd, egp, etb, eur, fjd, fkp, gbp, gel, gip, gmd, gnf, gtq, gyd, hkd, hnl, htg, huf, idr, ils, inr, isk, jmd, jpy, kes, kgs, khr, kmf, krw, kyd, kzt, lak, lbp, lkr, lrd, lsl, mad, mdl, mga, mkd, mmk, mnt, mop, mur, mvr, mwk, mxn, myr, mzn, nad, ngn, nio, nok, npr, nzd, pab, pen, pgk, php, pkr, pln, pyg, qar, ron, rsd, rub, rwf, sar, sbd, scr, sek, sgd, shp, sle, sos, srd, std, szl, thb, tjs, top, try, ttd, twd, tzs, uah, ugx, uyu, uzs, vnd, vuv, wst, xaf, xcd, xof, xpf, yer, zar, zmw`, param);
  return c;
}
// Roughly Stripe's check: one "@", a non-empty local part, a dotted domain, no spaces.
const EMAIL_RE = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$/;
function checkEmail(v, param = 'email') {
  if (v === UNSET || v === undefined) return null;
  if (!EMAIL_RE.test(v) || v.includes('..')) throw invalid(`Invalid email address: ${v}`, param, 'email_invalid');
  return v;
}
function addInterval(ts, interval, count) {
  if (interval === 'day') return ts + 86400 * count;
  if (interval === 'week') return ts + 7 * 86400 * count;
  const months = interval === 'year' ? 12 * count : count;
  const d = new Date(ts * 1000);
  const day = d.getUTCDate();
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()));
  const lastDay = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 0)).getUTCDate();
  t.setUTCDate(Math.min(day, lastDay));
  return Math.floor(t.getTime() / 1000);
}
function formatMoney(amount, currency) {
  const zeroDecimal = ['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf'];
  const sym = { usd: '$', eur: '€', gbp: '£', jpy: '¥' }[currency] || currency.toUpperCase() + ' ';
  const v = zeroDecimal.includes(currency) ? String(amount) : (amount / 100).toFixed(2);
  return sym + v;
}

function getOr404(type, id, label, param = 'id') {
  const e = db[type].get(id);
  if (!e) throw noSuch(label || type, id, param);
  return e;
}
function countCreate(type) { bump(stats.objects_created, type); }

// ---------------------------------------------------------------------------
// Customers

function customerCreate(p, ctx) {
  const created = ctx.created || nowSec();
  const c = blank('customer', {
    id: newId('customer'), created, currency: null,
    invoice_prefix: randStr(8, UPPERNUM),
    invoice_settings: shape('invoice_setting_customer_setting', {}),
    preferred_locales: [], tax_exempt: 'none',
  });
  customerApply(c, p, ctx, true);
  db.customer.add(c, created * 1000);
  countCreate('customer');
  if (!ctx.quiet) emit(ctx, 'customer.created', c);
  return c;
}

function customerApply(c, p, ctx, creating) {
  if ('email' in p) c.email = checkEmail(p.email);
  setIf(c, p, 'name');
  setIf(c, p, 'description');
  setIf(c, p, 'phone');
  if ('balance' in p) c.balance = p.balance === UNSET ? 0 : p.balance;
  if ('address' in p) c.address = addressOf(p.address);
  if ('shipping' in p) c.shipping = shippingOf(p.shipping);
  if ('preferred_locales' in p) c.preferred_locales = p.preferred_locales === UNSET ? [] : plain(p.preferred_locales);
  if ('tax_exempt' in p) c.tax_exempt = p.tax_exempt === UNSET ? 'none' : p.tax_exempt;
  if ('next_invoice_sequence' in p) c.next_invoice_sequence = p.next_invoice_sequence;
  if ('invoice_prefix' in p && p.invoice_prefix !== UNSET) {
    if (!/^[A-Z0-9]{3,12}$/.test(p.invoice_prefix)) throw invalid('Invalid invoice_prefix: must be 3-12 uppercase letters or numbers.', 'invoice_prefix');
    c.invoice_prefix = p.invoice_prefix;
  }
  if ('invoice_settings' in p) {
    const is = Object.assign({}, c.invoice_settings);
    const v = p.invoice_settings;
    for (const k of Object.keys(v)) is[k] = plain(v[k]);
    c.invoice_settings = shape('invoice_setting_customer_setting', is);
  }
  if ('payment_method' in p && p.payment_method !== UNSET) {
    // Attaches the payment method (test tokens such as pm_card_visa are accepted).
    const pm = p.payment_method.startsWith('pm_card_') ? newId('payment_method') : p.payment_method;
    ctx.attachedPm = pm;
    if (!c.invoice_settings.default_payment_method) {
      // Not what Stripe does (it only attaches), but the fake keeps no
      // PaymentMethods, so the attached one doubles as the default.
      c.invoice_settings = Object.assign({}, c.invoice_settings, { default_payment_method: pm });
    }
  }
  if ('source' in p && p.source !== UNSET) c.default_source = p.source.startsWith('card_') ? p.source : newId('card');
  if ('default_source' in p) c.default_source = p.default_source === UNSET ? null : p.default_source;
  if (p.promotion_code !== undefined && p.promotion_code !== UNSET) {
    throw noSuch('promotion code', p.promotion_code, 'promotion_code', 400); // the fake keeps none
  }
  if (p.test_clock !== undefined && p.test_clock !== UNSET) throw noSuch('test clock', p.test_clock, 'test_clock', 400);
  if ('coupon' in p) {
    if (p.coupon === UNSET) c.discount = null;
    else if (p.coupon !== undefined) c.discount = makeDiscount(p.coupon, 'coupon', { customer: c.id });
  }
  applyMetadata(c, p.metadata);
}

function customerUpdate(id, p, ctx) {
  const e = getOr404('customer', id);
  const c = e.obj;
  const before = snapshot(c);
  customerApply(c, p, ctx, false);
  const prev = diff(before, c);
  if (prev) emit(ctx, 'customer.updated', c, prev);
  return c;
}

function customerDelete(id, ctx) {
  const e = getOr404('customer', id);
  const c = e.obj;
  // "Also immediately cancels any active subscriptions on the customer."
  for (const se of db.subscription.order) {
    if (se && se.obj.customer === id && se.obj.status !== 'canceled') subscriptionCancelObj(se.obj, ctx, {});
  }
  db.customer.remove(id);
  const stub = { id, object: 'customer', deleted: true };
  deletedCustomers.set(id, stub);
  emit(ctx, 'customer.deleted', c);
  return stub;
}

function customerRetrieve(id) {
  const e = db.customer.get(id);
  if (e) return e.obj;
  const d = deletedCustomers.get(id);
  if (d) return d;
  throw noSuch('customer', id, 'id');
}

// ---------------------------------------------------------------------------
// Products

function productCreate(p, ctx) {
  const created = ctx.created || nowSec();
  let id = p.id;
  if (id !== undefined && id !== UNSET) {
    if (db.product.get(id)) throw invalid('Product already exists.', 'id', 'resource_already_exists');
  } else id = newId('product');
  const prod = blank('product', { id, created, updated: created, active: true, features: [], images: [] });
  productApply(prod, p);
  db.product.add(prod, created * 1000);
  countCreate('product');
  if (!ctx.quiet) emit(ctx, 'product.created', prod);
  if (p.default_price_data) {
    const d = p.default_price_data;
    const pp = Object.assign(newNode(), d, { product: id });
    const price = priceCreate(pp, ctx);
    prod.default_price = price.id;
  }
  return prod;
}

function productApply(prod, p) {
  if ('name' in p) {
    if (p.name === UNSET) throw emptyParam('name');
    prod.name = p.name;
  }
  setIf(prod, p, 'active', (v) => v);
  setIf(prod, p, 'description');
  setIf(prod, p, 'statement_descriptor');
  setIf(prod, p, 'unit_label');
  setIf(prod, p, 'url');
  setIf(prod, p, 'tax_code');
  setIf(prod, p, 'shippable', (v) => v);
  if ('images' in p) prod.images = p.images === UNSET ? [] : plain(p.images);
  if ('features' in p) prod.features = p.features === UNSET ? [] : plain(p.features).map((f) => ({ name: f.name }));
  if ('package_dimensions' in p) prod.package_dimensions = p.package_dimensions === UNSET ? null : shape('package_dimensions', plain(p.package_dimensions));
  applyMetadata(prod, p.metadata);
}

function productUpdate(id, p, ctx) {
  const prod = getOr404('product', id, 'product').obj;
  const before = snapshot(prod);
  if ('default_price' in p) {
    if (p.default_price === UNSET) prod.default_price = null;
    else {
      const pe = db.price.get(p.default_price);
      if (!pe || pe.obj.product !== id) throw noSuch('price', p.default_price, 'default_price', 400);
      prod.default_price = p.default_price;
    }
  }
  productApply(prod, p);
  const prev = diff(before, prod);
  if (prev) {
    prod.updated = nowSec();
    emit(ctx, 'product.updated', prod, diff(before, prod));
  }
  return prod;
}

function productDelete(id, ctx) {
  const prod = getOr404('product', id, 'product').obj;
  for (const pe of db.price.order) {
    if (pe && pe.obj.product === id) {
      throw invalid('This product cannot be deleted because it has one or more user-created prices.', null, 'product_has_prices');
    }
  }
  db.product.remove(id);
  emit(ctx, 'product.deleted', prod);
  return { id, object: 'product', deleted: true };
}

// ---------------------------------------------------------------------------
// Prices

function priceCreate(p, ctx) {
  const created = ctx.created || nowSec();
  const currency = checkCurrency(p.currency, 'currency');
  let productId;
  if (p.product !== undefined && p.product !== UNSET) {
    if (!db.product.get(p.product)) throw noSuch('product', p.product, 'product', 400);
    productId = p.product;
  } else if (p.product_data) {
    const pd = Object.assign(newNode(), p.product_data);
    productId = productCreate(pd, ctx).id;
  } else throw missingParam('product');
  const scheme = p.billing_scheme === undefined || p.billing_scheme === UNSET ? 'per_unit' : p.billing_scheme;
  const hasAmount = [p.unit_amount, p.unit_amount_decimal, p.custom_unit_amount].some((v) => v !== undefined && v !== UNSET);
  if (scheme === 'per_unit' && !hasAmount) throw missingParam('unit_amount');
  if (scheme === 'tiered') {
    if (!p.tiers) throw missingParam('tiers');
    if (!p.tiers_mode) throw missingParam('tiers_mode');
  }
  if (p.unit_amount !== undefined && p.unit_amount < 0) throw invalid('This value must be greater than or equal to 0.', 'unit_amount');
  if (p.lookup_key !== undefined && p.lookup_key !== UNSET) claimLookupKey(p.lookup_key, p.transfer_lookup_key === true, ctx);
  let unitAmount = null;
  let unitAmountDecimal = null;
  if (p.unit_amount !== undefined && p.unit_amount !== UNSET) { unitAmount = p.unit_amount; unitAmountDecimal = String(p.unit_amount); } else if (p.unit_amount_decimal !== undefined && p.unit_amount_decimal !== UNSET) {
    unitAmountDecimal = p.unit_amount_decimal;
    unitAmount = /^\d+$/.test(p.unit_amount_decimal) ? Number(p.unit_amount_decimal) : null;
  }
  let recurring = null;
  if (p.recurring && p.recurring !== UNSET) {
    const r = plain(p.recurring);
    recurring = shape('recurring', {
      aggregate_usage: r.usage_type === 'metered' ? (r.aggregate_usage || 'sum') : null,
      interval: r.interval, interval_count: r.interval_count || 1, usage_type: r.usage_type || 'licensed',
    });
    if (recurring.interval_count < 1) throw invalid('Invalid recurring[interval_count]: must be at least 1', 'recurring[interval_count]');
  }
  const price = blank('price', {
    id: newId('price'), created, active: p.active === undefined ? true : p.active, billing_scheme: scheme, currency,
    custom_unit_amount: p.custom_unit_amount && p.custom_unit_amount !== UNSET ? shape('custom_unit_amount', plain(p.custom_unit_amount)) : null,
    lookup_key: p.lookup_key === undefined || p.lookup_key === UNSET ? null : p.lookup_key,
    nickname: p.nickname === undefined || p.nickname === UNSET ? null : p.nickname,
    product: productId, recurring,
    tax_behavior: p.tax_behavior === undefined || p.tax_behavior === UNSET ? 'unspecified' : p.tax_behavior,
    tiers_mode: p.tiers_mode === undefined || p.tiers_mode === UNSET ? null : p.tiers_mode,
    transform_quantity: p.transform_quantity && p.transform_quantity !== UNSET ? shape('transform_quantity', plain(p.transform_quantity)) : null,
    type: recurring ? 'recurring' : 'one_time', unit_amount: unitAmount, unit_amount_decimal: unitAmountDecimal,
  });
  applyMetadata(price, p.metadata);
  db.price.add(price, created * 1000, { tiers: p.tiers ? plain(p.tiers) : null, currency_options: p.currency_options ? plain(p.currency_options) : null });
  countCreate('price');
  if (!ctx.quiet) emit(ctx, 'price.created', price);
  return price;
}

function claimLookupKey(key, transfer, ctx) {
  for (const e of db.price.order) {
    if (e && e.obj.lookup_key === key) {
      if (!transfer) throw invalid(`A price (\`${e.obj.id}\`) already uses that lookup key.`, 'lookup_key');
      const before = snapshot(e.obj);
      e.obj.lookup_key = null;
      emit(ctx, 'price.updated', e.obj, diff(before, e.obj));
    }
  }
}

function priceUpdate(id, p, ctx) {
  const e = getOr404('price', id, 'price');
  const price = e.obj;
  const before = snapshot(price);
  if ('lookup_key' in p) {
    if (p.lookup_key === UNSET) price.lookup_key = null;
    else if (p.lookup_key !== price.lookup_key) { claimLookupKey(p.lookup_key, p.transfer_lookup_key === true, ctx); price.lookup_key = p.lookup_key; }
  }
  setIf(price, p, 'active', (v) => v);
  setIf(price, p, 'nickname');
  if ('tax_behavior' in p && p.tax_behavior !== UNSET) {
    if (price.tax_behavior !== 'unspecified' && price.tax_behavior !== p.tax_behavior) {
      throw invalid('tax_behavior cannot be changed once it has been set to inclusive or exclusive.', 'tax_behavior');
    }
    price.tax_behavior = p.tax_behavior;
  }
  if ('currency_options' in p) e.priv.currency_options = p.currency_options === UNSET ? null : plain(p.currency_options);
  applyMetadata(price, p.metadata);
  const prev = diff(before, price);
  if (prev) emit(ctx, 'price.updated', price, prev);
  return price;
}

// ---------------------------------------------------------------------------
// Coupons

function couponCreate(p, ctx) {
  const created = ctx.created || nowSec();
  let id = p.id;
  if (id !== undefined && id !== UNSET) {
    if (db.coupon.get(id)) throw invalid('Coupon already exists.', 'id', 'resource_already_exists');
  } else id = newId('coupon');
  const hasAmount = p.amount_off !== undefined && p.amount_off !== UNSET;
  const hasPercent = p.percent_off !== undefined && p.percent_off !== UNSET;
  if (!hasAmount && !hasPercent) throw invalid('Coupons require either a amount_off or percent_off.', null);
  if (hasAmount && hasPercent) throw invalid('Coupons cannot have both amount_off and percent_off.', null, 'parameters_exclusive');
  if (hasPercent && (p.percent_off <= 0 || p.percent_off > 100)) throw invalid('Invalid percent_off: must be greater than 0 and less than or equal to 100.', 'percent_off');
  if (hasAmount && (p.currency === undefined || p.currency === UNSET)) throw invalid('You must pass currency when passing amount_off.', 'currency');
  const duration = p.duration === undefined || p.duration === UNSET ? 'once' : p.duration;
  if (duration === 'repeating' && (p.duration_in_months === undefined || p.duration_in_months === UNSET)) throw missingParam('duration_in_months');
  if (duration !== 'repeating' && p.duration_in_months !== undefined && p.duration_in_months !== UNSET) {
    throw invalid('duration_in_months can only be set when duration is repeating.', 'duration_in_months');
  }
  const coupon = blank('coupon', {
    id, created,
    amount_off: hasAmount ? p.amount_off : null,
    currency: hasAmount ? checkCurrency(p.currency, 'currency') : null,
    duration, duration_in_months: duration === 'repeating' ? p.duration_in_months : null,
    max_redemptions: p.max_redemptions === undefined || p.max_redemptions === UNSET ? null : p.max_redemptions,
    name: p.name === undefined || p.name === UNSET ? null : p.name,
    percent_off: hasPercent ? p.percent_off : null,
    redeem_by: p.redeem_by === undefined || p.redeem_by === UNSET ? null : p.redeem_by,
    times_redeemed: 0, valid: true,
  });
  applyMetadata(coupon, p.metadata);
  db.coupon.add(coupon, created * 1000, { applies_to: p.applies_to ? plain(p.applies_to) : null });
  countCreate('coupon');
  if (!ctx.quiet) emit(ctx, 'coupon.created', coupon);
  return coupon;
}

function couponUpdate(id, p, ctx) {
  const coupon = getOr404('coupon', id, 'coupon').obj;
  const before = snapshot(coupon);
  setIf(coupon, p, 'name');
  applyMetadata(coupon, p.metadata);
  const prev = diff(before, coupon);
  if (prev) emit(ctx, 'coupon.updated', coupon, prev);
  return coupon;
}

function couponDelete(id, ctx) {
  const coupon = getOr404('coupon', id, 'coupon').obj;
  db.coupon.remove(id);
  emit(ctx, 'coupon.deleted', coupon);
  return { id, object: 'coupon', deleted: true };
}

function makeDiscount(couponId, param, links) {
  const ce = db.coupon.get(couponId);
  if (!ce) throw noSuch('coupon', couponId, param, 400);
  const coupon = ce.obj;
  const now = nowSec();
  if (!coupon.valid || (coupon.redeem_by && coupon.redeem_by < now) ||
      (coupon.max_redemptions !== null && coupon.times_redeemed >= coupon.max_redemptions)) {
    throw invalid(`Coupon expired: ${couponId}`, param, 'coupon_expired');
  }
  coupon.times_redeemed++;
  if (coupon.max_redemptions !== null && coupon.times_redeemed >= coupon.max_redemptions) coupon.valid = false;
  return shape('discount', {
    id: newId('discount'), object: 'discount', coupon, start: now,
    end: coupon.duration === 'repeating' ? addInterval(now, 'month', coupon.duration_in_months) : null,
    customer: links.customer || null, subscription: links.subscription || null,
  });
}

// ---------------------------------------------------------------------------
// Subscriptions (with their invoices and payment intents)

function resolveItemPrice(it, i, currencyHint, ctx) {
  if (it.price !== undefined && it.price !== UNSET) {
    const pe = db.price.get(it.price);
    if (!pe) throw noSuch('price', it.price, `items[${i}][price]`, 400);
    if (pe.obj.type !== 'recurring') {
      throw invalid(`The price specified is set to \`type=one_time\` but this field only accepts prices with \`type=recurring\`.`, `items[${i}][price]`);
    }
    if (!pe.obj.active) throw invalid(`The price specified is inactive. This field only accepts active prices.`, `items[${i}][price]`);
    return pe.obj;
  }
  if (it.price_data) {
    const pd = it.price_data;
    const pp = newNode();
    pp.currency = pd.currency; pp.product = pd.product; pp.recurring = pd.recurring;
    if (pd.unit_amount !== undefined) pp.unit_amount = pd.unit_amount;
    if (pd.unit_amount_decimal !== undefined) pp.unit_amount_decimal = pd.unit_amount_decimal;
    if (pd.tax_behavior !== undefined) pp.tax_behavior = pd.tax_behavior;
    const price = priceCreate(pp, Object.assign({}, ctx, { quiet: true }));
    price.active = false; // ad-hoc prices are archived, as Stripe does
    return price;
  }
  throw missingParam(`items[${i}][price]`);
}

function itemAmount(price, quantity, priv) {
  let q = quantity;
  if (price.transform_quantity) {
    const t = price.transform_quantity;
    q = t.round === 'up' ? Math.ceil(q / t.divide_by) : Math.floor(q / t.divide_by);
  }
  if (price.billing_scheme === 'tiered' && priv && priv.tiers) {
    const tiers = priv.tiers;
    const upTo = (t) => (t.up_to === 'inf' || t.up_to === null || t.up_to === undefined ? Infinity : Number(t.up_to));
    if (price.tiers_mode === 'volume') {
      const t = tiers.find((x) => q <= upTo(x)) || tiers[tiers.length - 1];
      return (t.unit_amount || 0) * q + (t.flat_amount || 0);
    }
    let total = 0; let prev = 0;
    for (const t of tiers) {
      if (q <= prev) break;
      const n = Math.min(q, upTo(t)) - prev;
      total += (t.unit_amount || 0) * n + (t.flat_amount || 0);
      prev = upTo(t);
    }
    return total;
  }
  return Math.round(Number(price.unit_amount_decimal || price.unit_amount || 0) * q);
}

function hasPaymentMethod(sub, customer) {
  return !!(sub.default_payment_method || sub.default_source ||
    (customer && (customer.invoice_settings.default_payment_method || customer.default_source)));
}

function subscriptionCreate(p, ctx) {
  const now = ctx.created || nowSec();
  const ce = db.customer.get(p.customer);
  if (!ce) throw noSuch('customer', p.customer, 'customer', 400);
  const customer = ce.obj;
  if (!p.items || p.items === UNSET || p.items.length === 0) throw missingParam('items');
  if (p.items.length > 20) throw invalid('You can only have up to 20 items on a subscription.', 'items');
  const collection = p.collection_method === undefined || p.collection_method === UNSET ? 'charge_automatically' : p.collection_method;
  if (collection === 'send_invoice' && (p.days_until_due === undefined || p.days_until_due === UNSET)) throw missingParam('days_until_due');
  if (collection === 'charge_automatically' && p.days_until_due !== undefined && p.days_until_due !== UNSET) {
    throw invalid('Invalid days_until_due: days_until_due can only be set when collection_method is send_invoice.', 'days_until_due');
  }
  const id = newId('subscription');
  const prices = p.items.map((it, i) => resolveItemPrice(it, i, null, ctx));
  const currency = prices[0].currency;
  for (let i = 1; i < prices.length; i++) {
    if (prices[i].currency !== currency) throw invalid('Currency and interval fields must match across all plans on this subscription. Found mismatch in currency field.', `items[${i}][price]`);
    if (prices[i].recurring.interval !== prices[0].recurring.interval || prices[i].recurring.interval_count !== prices[0].recurring.interval_count) {
      throw invalid('Currency and interval fields must match across all plans on this subscription. Found mismatch in interval field.', `items[${i}][price]`);
    }
  }
  if (customer.currency && customer.currency !== currency) {
    throw invalid(`You cannot combine currencies on a single customer. This customer has an active subscription, subscription schedule, discount, quote, or invoice item with currency ${customer.currency}.`, 'currency');
  }
  const seen = new Set();
  prices.forEach((pr, i) => {
    if (seen.has(pr.id)) throw invalid(`Cannot add multiple subscription items with the same price: ${pr.id}`, `items[${i}][price]`);
    seen.add(pr.id);
  });
  const items = p.items.map((it, i) => {
    const q = it.quantity === undefined || it.quantity === UNSET ? 1 : it.quantity;
    if (q < 0) throw invalid('Invalid quantity: must be a non-negative integer.', `items[${i}][quantity]`);
    const si = blank('subscription_item', { id: newId('subscription_item'), created: now, price: prices[i], quantity: q, subscription: id, tax_rates: [] });
    applyMetadata(si, it.metadata);
    return si;
  });

  let trialEnd = null;
  if (p.trial_end !== undefined && p.trial_end !== UNSET && p.trial_end !== 'now') {
    if (p.trial_end <= now) throw invalid('Invalid timestamp: must be an integer Unix timestamp in the future.', 'trial_end');
    trialEnd = p.trial_end;
  } else if (p.trial_period_days !== undefined && p.trial_period_days !== UNSET && p.trial_period_days > 0) {
    trialEnd = now + p.trial_period_days * 86400;
  }
  const r = prices[0].recurring;
  const periodEnd = trialEnd || addInterval(now, r.interval, r.interval_count);
  const sub = blank('subscription', {
    id, created: now, billing_cycle_anchor: trialEnd || now, cancel_at_period_end: false,
    automatic_tax: { enabled: false },
    cancellation_details: shape('cancellation_details', {}),
    collection_method: collection, currency, current_period_end: periodEnd, current_period_start: now,
    customer: customer.id, days_until_due: collection === 'send_invoice' ? p.days_until_due : null,
    default_payment_method: p.default_payment_method && p.default_payment_method !== UNSET ? p.default_payment_method : null,
    default_source: p.default_source && p.default_source !== UNSET ? p.default_source : null,
    default_tax_rates: [], description: p.description && p.description !== UNSET ? p.description : null,
    items: { object: 'list', data: items, has_more: false, total_count: items.length, url: `/v1/subscription_items?subscription=${id}` },
    next_pending_invoice_item_invoice: null,
    payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: 'off' },
    start_date: now, status: 'active', trial_end: trialEnd, trial_start: trialEnd ? now : null,
    trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
  });
  if (p.cancel_at_period_end === true) {
    sub.cancel_at_period_end = true; sub.cancel_at = periodEnd; sub.canceled_at = now;
    sub.cancellation_details = shape('cancellation_details', { reason: 'cancellation_requested' });
  }
  if (p.cancel_at !== undefined && p.cancel_at !== UNSET) sub.cancel_at = p.cancel_at;
  if (p.promotion_code !== undefined && p.promotion_code !== UNSET) throw noSuch('promotion code', p.promotion_code, 'promotion_code', 400);
  applyMetadata(sub, p.metadata);

  // Refuse before anything is changed (coupon redemptions, invoice numbers).
  const behavior = p.payment_behavior === undefined || p.payment_behavior === UNSET ? 'allow_incomplete' : p.payment_behavior;
  const canPay = hasPaymentMethod(sub, customer);
  if (collection === 'charge_automatically' && !canPay && behavior === 'error_if_incomplete' && trialEnd === null &&
      items.some((si) => itemAmount(si.price, si.quantity, db.price.get(si.price.id) && db.price.get(si.price.id).priv) > 0)) {
    throw invalid('This customer has no attached payment source or default payment method. Please consider adding a default payment method. For more information, visit https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority.', null, 'resource_missing');
  }
  if (p.coupon !== undefined && p.coupon !== UNSET) sub.discount = makeDiscount(p.coupon, 'coupon', { customer: customer.id, subscription: id });

  // The first invoice.
  const inv = buildInvoice(sub, customer, items, trialEnd !== null, 'subscription_create', now);
  const payable = inv.amount_due > 0;
  if (!customer.currency) customer.currency = currency;
  sub.latest_invoice = inv.id;
  let pi = null;
  if (!payable) {
    markPaid(inv, null, now);
    sub.status = trialEnd ? 'trialing' : 'active';
  } else if (collection === 'send_invoice') {
    pi = buildPaymentIntent(inv, customer, 'requires_payment_method', now);
    inv.status = 'open';
    inv.due_date = now + sub.days_until_due * 86400;
    sub.status = 'active';
  } else if (canPay && behavior !== 'default_incomplete') {
    pi = buildPaymentIntent(inv, customer, 'succeeded', now, sub.default_payment_method || customer.invoice_settings.default_payment_method);
    markPaid(inv, pi, now);
    sub.status = 'active';
  } else {
    pi = buildPaymentIntent(inv, customer, 'requires_payment_method', now);
    inv.status = 'open';
    inv.attempted = behavior !== 'default_incomplete';
    inv.attempt_count = inv.attempted ? 1 : 0;
    inv.next_payment_attempt = null;
    sub.status = 'incomplete';
  }
  if (inv.status !== 'draft' && !inv.status_transitions.finalized_at) inv.status_transitions.finalized_at = now;
  db.subscription.add(sub, now * 1000);
  db.invoice.add(inv, now * 1000);
  if (pi) db.payment_intent.add(pi, now * 1000);
  countCreate('subscription'); countCreate('invoice'); if (pi) countCreate('payment_intent');
  if (!ctx.quiet) {
    emit(ctx, 'customer.subscription.created', sub);
    emit(ctx, 'invoice.created', inv);
    emit(ctx, 'invoice.finalized', inv);
    if (pi) emit(ctx, 'payment_intent.created', pi);
    if (pi && pi.status === 'succeeded') emit(ctx, 'payment_intent.succeeded', pi);
    if (inv.status === 'paid') { emit(ctx, 'invoice.paid', inv); emit(ctx, 'invoice.payment_succeeded', inv); }
  }
  return sub;
}

function buildInvoice(sub, customer, items, trial, reason, now) {
  const id = newId('invoice');
  const lines = items.map((si) => {
    const amount = trial ? 0 : itemAmount(si.price, si.quantity, db.price.get(si.price.id) && db.price.get(si.price.id).priv);
    const prod = db.product.get(si.price.product);
    const pname = prod ? prod.obj.name : si.price.product;
    const r = si.price.recurring;
    const per = r.interval_count > 1 ? `every ${r.interval_count} ${r.interval}s` : r.interval;
    const desc = trial ? `Trial period for ${pname}` : `${si.quantity} × ${pname} (at ${formatMoney(si.price.unit_amount || 0, si.price.currency)} / ${per})`;
    return blank('line_item', {
      id: newId('line_item'), amount, amount_excluding_tax: amount, currency: sub.currency, description: desc,
      discount_amounts: [], discountable: true, discounts: [], invoice_item: null,
      period: shape('invoice_line_item_period', { start: sub.current_period_start, end: sub.current_period_end }),
      price: si.price, proration: false, proration_details: { credited_items: null }, quantity: si.quantity,
      subscription: sub.id, subscription_item: si.id, tax_amounts: [], tax_rates: [], type: 'subscription',
      unit_amount_excluding_tax: String(si.quantity ? Math.round(amount / si.quantity) : 0),
    });
  });
  const subtotal = lines.reduce((s, l) => s + l.amount, 0);
  let discountAmount = 0;
  const disc = sub.discount || customer.discount;
  if (disc && subtotal > 0) {
    const c = disc.coupon;
    if (c.percent_off) discountAmount = Math.round(subtotal * c.percent_off / 100);
    else if (c.amount_off && c.currency === sub.currency) discountAmount = Math.min(subtotal, c.amount_off);
  }
  const total = subtotal - discountAmount;
  const seq = customer.next_invoice_sequence || 1;
  customer.next_invoice_sequence = seq + 1;
  return blank('invoice', {
    id, created: now, account_country: 'US', account_name: 'Apigres Sandbox', account_tax_ids: null,
    amount_due: total, amount_paid: 0, amount_remaining: total, amount_shipping: 0, attempt_count: 0, attempted: false,
    auto_advance: sub.collection_method === 'charge_automatically', automatic_tax: { enabled: false, status: null },
    billing_reason: reason, collection_method: sub.collection_method, currency: sub.currency,
    customer: customer.id, customer_address: customer.address, customer_email: customer.email, customer_name: customer.name,
    customer_phone: customer.phone, customer_shipping: customer.shipping, customer_tax_exempt: customer.tax_exempt,
    customer_tax_ids: [], default_tax_rates: [], discount: disc || null, discounts: disc ? [disc.id] : [],
    effective_at: now, ending_balance: 0,
    hosted_invoice_url: `https://invoice.stripe.com/i/acct_fake${ACCOUNT_TAG}/test_${randStr(40)}?s=ap`,
    invoice_pdf: `https://pay.stripe.com/invoice/acct_fake${ACCOUNT_TAG}/test_${randStr(40)}/pdf?s=ap`,
    lines: { object: 'list', data: lines, has_more: false, total_count: lines.length, url: `/v1/invoices/${id}/lines` },
    metadata: newNode(), number: `${customer.invoice_prefix}-${String(seq).padStart(4, '0')}`,
    paid: false, paid_out_of_band: false,
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    period_end: now, period_start: now, starting_balance: 0, status: 'open',
    status_transitions: shape('invoices_status_transitions', { finalized_at: now }),
    subscription: sub.id, subscription_details: { metadata: Object.assign(newNode(), sub.metadata) },
    subtotal, subtotal_excluding_tax: subtotal, tax: null, total,
    total_discount_amounts: disc && discountAmount ? [{ amount: discountAmount, discount: disc.id }] : [],
    total_excluding_tax: total, total_tax_amounts: [], webhooks_delivered_at: now,
    next_payment_attempt: null,
  });
}

function markPaid(inv, pi, now) {
  inv.status = 'paid';
  inv.paid = true;
  inv.amount_paid = inv.amount_due;
  inv.amount_remaining = 0;
  inv.attempted = true;
  inv.attempt_count = inv.amount_due > 0 ? 1 : 0;
  inv.status_transitions = Object.assign({}, inv.status_transitions, { paid_at: now });
  if (pi) { inv.payment_intent = pi.id; inv.charge = pi.latest_charge; }
}

function buildPaymentIntent(inv, customer, status, now, pm) {
  const id = newId('payment_intent');
  const pi = blank('payment_intent', {
    id, created: now, amount: inv.amount_due, amount_capturable: 0, amount_details: { tip: {} },
    amount_received: status === 'succeeded' ? inv.amount_due : 0, capture_method: 'automatic',
    client_secret: `${id}_secret_${randStr(25)}`, confirmation_method: 'automatic', currency: inv.currency,
    customer: customer.id, description: inv.billing_reason === 'subscription_create' ? 'Subscription creation' : 'Subscription update',
    invoice: inv.id, latest_charge: status === 'succeeded' ? newId('charge') : null,
    payment_method: status === 'succeeded' ? (pm && pm.startsWith('pm_') ? pm : newId('payment_method')) : null,
    payment_method_options: { card: { installments: null, mandate_options: null, network: null, request_three_d_secure: 'automatic' } },
    payment_method_types: ['card'], setup_future_usage: 'off_session', status,
  });
  inv.payment_intent = id;
  return pi;
}

function subscriptionUpdate(id, p, ctx) {
  const e = getOr404('subscription', id, 'subscription');
  const sub = e.obj;
  if (sub.status === 'canceled') {
    const allowed = ['cancellation_details', 'metadata', 'expand'];
    const bad = Object.keys(p).find((k) => !allowed.includes(k));
    if (bad) throw invalid('A canceled subscription can only update its cancellation_details and metadata.', bad);
  }
  const before = snapshot(sub);
  const now = nowSec();
  if (p.items && p.items !== UNSET) {
    const items = sub.items.data.slice();
    p.items.forEach((it, i) => {
      if (it.id !== undefined && it.id !== UNSET) {
        const idx = items.findIndex((x) => x.id === it.id);
        if (idx < 0) throw noSuch('subscription_item', it.id, `items[${i}][id]`, 400);
        if (it.deleted === true) { items.splice(idx, 1); return; }
        const si = Object.assign({}, items[idx]);
        if (it.price !== undefined || it.price_data) si.price = resolveItemPrice(it, i, sub.currency, ctx);
        if (it.quantity !== undefined && it.quantity !== UNSET) si.quantity = it.quantity;
        applyMetadata(si, it.metadata);
        items[idx] = si;
      } else {
        const price = resolveItemPrice(it, i, sub.currency, ctx);
        if (price.currency !== sub.currency) throw invalid('Currency and interval fields must match across all plans on this subscription. Found mismatch in currency field.', `items[${i}][price]`);
        if (items.some((x) => x.price.id === price.id)) throw invalid(`Cannot add multiple subscription items with the same price: ${price.id}`, `items[${i}][price]`);
        const si = blank('subscription_item', { id: newId('subscription_item'), created: now, price, quantity: it.quantity === undefined ? 1 : it.quantity, subscription: id, tax_rates: [] });
        applyMetadata(si, it.metadata);
        items.push(si);
      }
    });
    if (items.length === 0) throw invalid('A subscription must have at least one active plan. To cancel a subscription, please use the cancel API endpoint on /v1/subscriptions.', 'items');
    sub.items = Object.assign({}, sub.items, { data: items, total_count: items.length });
  }
  if ('cancel_at_period_end' in p) {
    if (p.cancel_at_period_end === true) {
      sub.cancel_at_period_end = true; sub.cancel_at = sub.current_period_end; sub.canceled_at = now;
      sub.cancellation_details = shape('cancellation_details', Object.assign({}, sub.cancellation_details, { reason: 'cancellation_requested' }));
    } else {
      sub.cancel_at_period_end = false; sub.cancel_at = null; sub.canceled_at = null;
      sub.cancellation_details = shape('cancellation_details', {});
    }
  }
  if ('cancel_at' in p) {
    sub.cancel_at = p.cancel_at === UNSET ? null : p.cancel_at;
    sub.cancel_at_period_end = false;
    sub.canceled_at = sub.cancel_at ? now : null;
  }
  if ('cancellation_details' in p) {
    sub.cancellation_details = shape('cancellation_details', Object.assign({}, sub.cancellation_details, plain(p.cancellation_details) || {}));
  }
  if ('collection_method' in p) {
    sub.collection_method = p.collection_method;
    if (p.collection_method === 'send_invoice' && !('days_until_due' in p) && sub.days_until_due === null) throw missingParam('days_until_due');
    if (p.collection_method === 'charge_automatically') sub.days_until_due = null;
  }
  if ('days_until_due' in p) sub.days_until_due = p.days_until_due === UNSET ? null : p.days_until_due;
  setIf(sub, p, 'description');
  setIf(sub, p, 'default_payment_method');
  setIf(sub, p, 'default_source');
  if ('pause_collection' in p) sub.pause_collection = p.pause_collection === UNSET ? null : shape('subscriptions_resource_pause_collection', plain(p.pause_collection));
  if ('coupon' in p) sub.discount = p.coupon === UNSET ? null : makeDiscount(p.coupon, 'coupon', { customer: sub.customer, subscription: id });
  if ('trial_end' in p && p.trial_end !== UNSET) {
    if (p.trial_end === 'now') {
      if (sub.status === 'trialing') { sub.status = 'active'; sub.trial_end = now; sub.current_period_start = now; const r = sub.items.data[0].price.recurring; sub.current_period_end = addInterval(now, r.interval, r.interval_count); sub.billing_cycle_anchor = now; }
    } else {
      if (p.trial_end <= now) throw invalid('Invalid timestamp: must be an integer Unix timestamp in the future.', 'trial_end');
      sub.trial_end = p.trial_end; sub.current_period_end = p.trial_end;
      if (!sub.trial_start) sub.trial_start = now;
      if (sub.status === 'active') sub.status = 'trialing';
    }
  }
  applyMetadata(sub, p.metadata);
  const prev = diff(before, sub);
  if (prev) emit(ctx, 'customer.subscription.updated', sub, prev);
  return sub;
}

function subscriptionCancelObj(sub, ctx, p) {
  const now = nowSec();
  sub.status = 'canceled';
  sub.canceled_at = now;
  sub.ended_at = now;
  sub.cancel_at_period_end = false;
  const details = Object.assign({}, sub.cancellation_details, p.cancellation_details ? plain(p.cancellation_details) : {});
  details.reason = 'cancellation_requested';
  sub.cancellation_details = shape('cancellation_details', details);
  for (const ie of db.invoice.order) {
    if (ie && ie.obj.subscription === sub.id && ie.obj.status === 'open' && sub.latest_invoice === ie.obj.id && ie.obj.amount_paid === 0 && ie.obj.billing_reason === 'subscription_create') {
      // an incomplete subscription's first invoice is voided with it
      const inv = ie.obj; const b = snapshot(inv);
      inv.status = 'void';
      inv.status_transitions = Object.assign({}, inv.status_transitions, { voided_at: now });
      emit(ctx, 'invoice.voided', inv, diff(b, inv));
    }
  }
  emit(ctx, 'customer.subscription.deleted', sub);
}

function subscriptionCancel(id, p, ctx) {
  const sub = getOr404('subscription', id, 'subscription').obj;
  if (sub.status === 'canceled') throw invalid(`No such subscription: '${id}'`, 'id', 'resource_missing', 404);
  subscriptionCancelObj(sub, ctx, p);
  return sub;
}

// ---------------------------------------------------------------------------
// Expansion (expand[]=customer, expand[]=latest_invoice.payment_intent, data.X on lists)

function refTarget(field) {
  if (!field) return null;
  if (field.ref) return field.ref;
  if (field.anyOf) { const r = field.anyOf.find((a) => a.ref); return r ? r.ref : null; }
  return null;
}

function includable(type, obj, field) {
  if (type === 'customer') {
    if (field === 'subscriptions') {
      const data = [];
      for (let j = db.subscription.order.length - 1; j >= 0 && data.length < 10; j--) {
        const se = db.subscription.order[j];
        if (se && se.obj.customer === obj.id && se.obj.status !== 'canceled') data.push(se.obj);
      }
      return { object: 'list', data, has_more: false, total_count: data.length, url: `/v1/customers/${obj.id}/subscriptions` };
    }
    if (field === 'sources') return { object: 'list', data: [], has_more: false, total_count: 0, url: `/v1/customers/${obj.id}/sources` };
    if (field === 'tax_ids') return { object: 'list', data: [], has_more: false, total_count: 0, url: `/v1/customers/${obj.id}/tax_ids` };
    if (field === 'tax') return { automatic_tax: 'unrecognized_location', ip_address: null, location: null };
    if (field === 'cash_balance') return { object: 'cash_balance', available: null, customer: obj.id, livemode: false, settings: { reconciliation_mode: 'automatic', using_merchant_default: true } };
  }
  if (type === 'price') {
    const e = db.price.get(obj.id);
    if (field === 'tiers') return (e && e.priv.tiers) || [];
    if (field === 'currency_options') {
      const o = {};
      o[obj.currency] = { custom_unit_amount: obj.custom_unit_amount, tax_behavior: obj.tax_behavior, unit_amount: obj.unit_amount, unit_amount_decimal: obj.unit_amount_decimal };
      const extra = (e && e.priv.currency_options) || {};
      for (const [cur, v] of Object.entries(extra)) o[cur] = { custom_unit_amount: null, tax_behavior: v.tax_behavior || obj.tax_behavior, unit_amount: v.unit_amount === undefined ? null : v.unit_amount, unit_amount_decimal: v.unit_amount === undefined ? null : String(v.unit_amount) };
      return o;
    }
  }
  if (type === 'coupon') {
    const e = db.coupon.get(obj.id);
    if (field === 'applies_to') return { products: (e && e.priv.applies_to && e.priv.applies_to.products) || [] };
    if (field === 'currency_options') return {};
  }
  return undefined;
}

function lookupRef(type, id) {
  if (type === 'customer' || type === 'deleted_customer') {
    const e = db.customer.get(id);
    return e ? e.obj : deletedCustomers.get(id);
  }
  const coll = db[type];
  const e = coll && coll.get(id);
  return e ? e.obj : undefined;
}

function expandOne(type, obj, parts, full) {
  const od = SPEC.objects[type];
  const head = parts[0];
  if (!od || !od.expandable.includes(head)) {
    throw invalid(`This property cannot be expanded (${head}).`, null);
  }
  let v = obj[head];
  const target = refTarget(od.fields[head]);
  if (typeof v === 'string' && target) {
    const found = lookupRef(target, v);
    if (found !== undefined) v = found;
  } else if (v === undefined) {
    v = includable(type, obj, head);
    if (v === undefined) v = null;
  }
  if (parts.length > 1 && v && typeof v === 'object') {
    if (v.object === 'list' && Array.isArray(v.data)) {
      if (parts[1] !== 'data' || parts.length < 3) throw invalid(`This property cannot be expanded (${parts.slice(1).join('.')}).`, null);
      const itemType = (od.fields[head] && od.fields[head].items) || (v.data[0] && v.data[0].object);
      v = Object.assign({}, v, { data: v.data.map((x) => expandOne(itemType, x, parts.slice(2), full)) });
    } else {
      v = expandOne(v.object || target, v, parts.slice(1), full);
    }
  }
  const out = {};
  let placed = false;
  for (const k of Object.keys(obj)) { out[k] = k === head ? v : obj[k]; if (k === head) placed = true; }
  if (!placed) {
    // an includable field: put it where Stripe's alphabetical order would
    const res = {};
    const keys = Object.keys(obj).concat([head]);
    const sorted = keys.filter((k) => k !== 'id' && k !== 'object').sort();
    if ('id' in obj) res.id = obj.id;
    if ('object' in obj) res.object = obj.object;
    for (const k of sorted) res[k] = k === head ? v : obj[k];
    return res;
  }
  return out;
}

function applyExpand(body, expand, isList) {
  if (!expand || !expand.length || !body || typeof body !== 'object' || body.deleted) return body;
  for (const path of expand) {
    if (path === UNSET) continue;
    const parts = path.split('.');
    if (parts.length > 4 + (isList ? 1 : 0)) throw invalid('You cannot expand more than 4 levels of a property.', null);
    if (isList) {
      if (parts[0] !== 'data' || parts.length < 2) {
        throw invalid(`This property cannot be expanded (${path}). You may want to try expanding 'data.${path}' instead.`, null);
      }
      body = Object.assign({}, body, { data: body.data.map((x) => (x.deleted ? x : expandOne(x.object, x, parts.slice(1), path))) });
    } else {
      body = expandOne(body.object, body, parts, path);
    }
  }
  return body;
}

// ---------------------------------------------------------------------------
// Lists

function createdFilter(q) {
  if (q === undefined || q === UNSET) return null;
  if (typeof q === 'number') return (c) => c === q;
  const { gt, gte, lt, lte } = q;
  return (c) => (gt === undefined || c > gt) && (gte === undefined || c >= gte) && (lt === undefined || c < lt) && (lte === undefined || c <= lte);
}

function listOf(type, q, extraFilter, url, visible) {
  let limit = 10;
  if (q.limit !== undefined && q.limit !== UNSET) {
    limit = q.limit;
    if (limit < 1) throw invalid('This value must be greater than or equal to 1.', 'limit');
    if (limit > 100) throw invalid('This value must be less than or equal to 100.', 'limit');
  }
  const sa = q.starting_after === undefined || q.starting_after === UNSET ? undefined : q.starting_after;
  const eb = q.ending_before === undefined || q.ending_before === UNSET ? undefined : q.ending_before;
  if (sa !== undefined && eb !== undefined) {
    throw invalid('You may only specify one of these parameters: ending_before, starting_after.', null, 'parameters_exclusive');
  }
  const coll = db[type];
  const label = type === 'payment_intent' ? 'payment_intent' : type;
  const cursor = sa !== undefined ? sa : eb;
  if (cursor !== undefined) {
    const ce = coll.get(cursor);
    if (!ce || (visible && !visible(ce))) throw noSuch(label, cursor, sa !== undefined ? 'starting_after' : 'ending_before', 400);
  }
  const cf = createdFilter(q.created);
  const filter = (e) => (!visible || visible(e)) && (!cf || cf(e.obj.created)) && (!extraFilter || extraFilter(e.obj));
  const { data, hasMore } = coll.page(limit, sa, eb, filter);
  const body = { object: 'list', data: data.map((e) => e.obj), has_more: hasMore, url: url || coll.url };
  body[LIST_ENTRIES] = data; // a symbol: JSON.stringify does not see it
  return body;
}

function eventTypeFilter(q) {
  const pats = [];
  if (q.type !== undefined && q.type !== UNSET) pats.push(q.type);
  if (q.types !== undefined && q.types !== UNSET) {
    if (q.type !== undefined) throw invalid('You may only specify one of these parameters: type, types.', null, 'parameters_exclusive');
    if (q.types.length > 20) throw invalid('You can only pass up to 20 types.', 'types');
    pats.push(...q.types);
  }
  if (!pats.length) return null;
  const res = pats.map((p) => new RegExp('^' + p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$'));
  return (o) => res.some((r) => r.test(o.type));
}

// ---------------------------------------------------------------------------
// Routes: every operation of the supported paths comes from spec.json; these
// are the ones the fake implements.

const HANDLERS = {
  'GET /v1/customers': (a) => listOf('customer', a.params, a.params.email !== undefined && a.params.email !== UNSET ? (o) => o.email === a.params.email : null),
  'POST /v1/customers': (a) => ({ create: true, body: customerCreate(a.params, a.ctx) }),
  'GET /v1/customers/{customer}': (a) => customerRetrieve(a.id),
  'POST /v1/customers/{customer}': (a) => customerUpdate(a.id, a.params, a.ctx),
  'DELETE /v1/customers/{customer}': (a) => customerDelete(a.id, a.ctx),

  'GET /v1/products': (a) => {
    const q = a.params;
    return listOf('product', q, (o) => (q.active === undefined || o.active === q.active) &&
      (q.shippable === undefined || o.shippable === q.shippable) && (q.url === undefined || o.url === q.url) &&
      (q.ids === undefined || q.ids === UNSET || q.ids.includes(o.id)));
  },
  'POST /v1/products': (a) => ({ create: true, body: productCreate(a.params, a.ctx) }),
  'GET /v1/products/{id}': (a) => getOr404('product', a.id, 'product').obj,
  'POST /v1/products/{id}': (a) => productUpdate(a.id, a.params, a.ctx),
  'DELETE /v1/products/{id}': (a) => productDelete(a.id, a.ctx),

  'GET /v1/prices': (a) => {
    const q = a.params;
    const rec = q.recurring && q.recurring !== UNSET ? q.recurring : null;
    return listOf('price', q, (o) => (q.active === undefined || o.active === q.active) &&
      (q.currency === undefined || o.currency === String(q.currency).toLowerCase()) &&
      (q.product === undefined || o.product === q.product) && (q.type === undefined || o.type === q.type) &&
      (q.lookup_keys === undefined || q.lookup_keys === UNSET || q.lookup_keys.includes(o.lookup_key)) &&
      (!rec || (o.recurring && (rec.interval === undefined || o.recurring.interval === rec.interval) &&
        (rec.usage_type === undefined || o.recurring.usage_type === rec.usage_type))));
  },
  'POST /v1/prices': (a) => ({ create: true, body: priceCreate(a.params, a.ctx) }),
  'GET /v1/prices/{price}': (a) => getOr404('price', a.id, 'price').obj,
  'POST /v1/prices/{price}': (a) => priceUpdate(a.id, a.params, a.ctx),

  'GET /v1/coupons': (a) => listOf('coupon', a.params),
  'POST /v1/coupons': (a) => ({ create: true, body: couponCreate(a.params, a.ctx) }),
  'GET /v1/coupons/{coupon}': (a) => getOr404('coupon', a.id, 'coupon').obj,
  'POST /v1/coupons/{coupon}': (a) => couponUpdate(a.id, a.params, a.ctx),
  'DELETE /v1/coupons/{coupon}': (a) => couponDelete(a.id, a.ctx),

  'GET /v1/subscriptions': (a) => {
    const q = a.params;
    const st = q.status === undefined || q.status === UNSET ? null : q.status;
    const statusOk = (s) => (st === null ? s !== 'canceled' && s !== 'incomplete_expired' : st === 'all' ? true :
      st === 'ended' ? s === 'canceled' || s === 'incomplete_expired' : s === st);
    const cpe = createdFilter(q.current_period_end); const cps = createdFilter(q.current_period_start);
    return listOf('subscription', q, (o) => statusOk(o.status) && (q.customer === undefined || o.customer === q.customer) &&
      (q.collection_method === undefined || o.collection_method === q.collection_method) &&
      (q.price === undefined || o.items.data.some((si) => si.price.id === q.price)) &&
      (!cpe || cpe(o.current_period_end)) && (!cps || cps(o.current_period_start)));
  },
  'POST /v1/subscriptions': (a) => ({ create: true, body: subscriptionCreate(a.params, a.ctx) }),
  'GET /v1/subscriptions/{subscription_exposed_id}': (a) => getOr404('subscription', a.id, 'subscription').obj,
  'POST /v1/subscriptions/{subscription_exposed_id}': (a) => subscriptionUpdate(a.id, a.params, a.ctx),
  'DELETE /v1/subscriptions/{subscription_exposed_id}': (a) => subscriptionCancel(a.id, a.params, a.ctx),

  'GET /v1/invoices': (a) => {
    const q = a.params;
    const due = createdFilter(q.due_date);
    return listOf('invoice', q, (o) => (q.customer === undefined || o.customer === q.customer) &&
      (q.status === undefined || o.status === q.status) && (q.subscription === undefined || o.subscription === q.subscription) &&
      (q.collection_method === undefined || o.collection_method === q.collection_method) && (!due || (o.due_date !== null && due(o.due_date))));
  },
  'GET /v1/invoices/{invoice}': (a) => getOr404('invoice', a.id, 'invoice').obj,

  'GET /v1/payment_intents': (a) => listOf('payment_intent', a.params, a.params.customer !== undefined ? (o) => o.customer === a.params.customer : null),
  'GET /v1/payment_intents/{intent}': (a) => getOr404('payment_intent', a.id, 'payment_intent').obj,

  'GET /v1/events': (a) => {
    pruneEvents();
    return listOf('event', a.params, eventTypeFilter(a.params), null, eventVisible);
  },
  'GET /v1/events/{id}': (a) => {
    const e = db.event.get(a.id);
    if (!e || !eventVisible(e)) throw noSuch('event', a.id, 'id');
    return e.obj;
  },
};

// Route table from spec.json: "/v1/customers/{customer}" -> segments.
const ROUTES = [];
{
  const byPath = new Map();
  for (const ep of SPEC.endpoints) {
    if (!byPath.has(ep.path)) {
      const segs = ep.path.split('/').slice(1);
      byPath.set(ep.path, { path: ep.path, segs, methods: {} });
    }
    byPath.get(ep.path).methods[ep.method] = ep;
  }
  for (const r of byPath.values()) ROUTES.push(r);
}
function matchRoute(pathname) {
  const segs = pathname.split('/').slice(1);
  for (const r of ROUTES) {
    if (r.segs.length !== segs.length) continue;
    let ok = true; let id;
    for (let i = 0; i < segs.length; i++) {
      const rs = r.segs[i];
      if (rs[0] === '{') { if (!segs[i]) { ok = false; break; } id = segs[i]; } else if (rs !== segs[i]) { ok = false; break; }
    }
    if (ok) {
      if (id !== undefined) { try { id = decodeURIComponent(id); } catch (e) { /* keep raw */ } }
      return { route: r, id };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------
// HTTP

const JSON_HEADERS = {
  'Content-Type': 'application/json',
  'Cache-Control': 'no-cache, no-store',
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Credentials': 'true',
  'Access-Control-Allow-Methods': 'GET, POST, HEAD, OPTIONS, DELETE',
  'Access-Control-Expose-Headers': 'Request-Id, Stripe-Manage-Version, X-Stripe-External-Auth-Required, X-Stripe-Privileged-Session-Required',
  'Access-Control-Max-Age': '300',
  'Strict-Transport-Security': 'max-age=63072000; includeSubDomains; preload',
  Server: 'nginx',
};

const hanging = new Set(); // sockets of requests we never answer (timeouts)

function sendJson(res, status, body, headers) {
  if (body instanceof Prerendered) {
    const buf = pageBuffer(body.length);
    let off = 0;
    for (const p of body.parts) { buf.set(p, off); off += p.length; }
    bump(stats.statuses, String(status));
    res.writeHead(status, Object.assign({}, JSON_HEADERS, headers, { 'Content-Length': body.length }));
    res.end(buf.subarray(0, body.length), () => { if (pageBuffers.length < 4) pageBuffers.push(buf); });
    return;
  }
  const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body, null, 2);
  const h = Object.assign({}, JSON_HEADERS, headers, { 'Content-Length': Buffer.byteLength(text) });
  bump(stats.statuses, String(status));
  res.writeHead(status, h);
  res.end(text);
}

function errorBody(err, reqId, authed) {
  const f = Object.assign({}, err.fields);
  if (f.code && !f.doc_url) f.doc_url = docUrl(f.code);
  if (authed && f.type !== 'api_error') f.request_log_url = `https://dashboard.stripe.com/test/logs/${reqId}?t=${nowSec()}`;
  const ordered = {};
  for (const k of Object.keys(f).sort()) ordered[k] = f[k];
  return { error: ordered };
}

function maskKey(key) {
  if (key.length <= 12) return key.slice(0, 3) + '*'.repeat(Math.max(0, key.length - 3));
  const m = /^(sk|rk|pk)_(test|live)_/.exec(key);
  const prefix = m ? m[0] : key.slice(0, 3);
  return prefix + '*'.repeat(Math.max(0, key.length - prefix.length - 4)) + key.slice(-4);
}

function authenticate(req) {
  const h = req.headers.authorization;
  if (!h) {
    return new ApiError(401, { type: 'invalid_request_error', message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/." }, { 'WWW-Authenticate': 'Basic realm="Stripe"' });
  }
  let key = null;
  const sp = h.indexOf(' ');
  const scheme = (sp < 0 ? h : h.slice(0, sp)).toLowerCase();
  const cred = sp < 0 ? '' : h.slice(sp + 1).trim();
  if (scheme === 'bearer') key = cred;
  else if (scheme === 'basic') {
    const dec = Buffer.from(cred, 'base64').toString('utf8');
    const c = dec.indexOf(':');
    key = c < 0 ? dec : dec.slice(0, c);
  } else {
    return new ApiError(401, { type: 'invalid_request_error', message: `Invalid API Key provided: ${maskKey(cred || h)}` }, { 'WWW-Authenticate': 'Basic realm="Stripe"' });
  }
  if (!key) {
    return new ApiError(401, { type: 'invalid_request_error', message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/." }, { 'WWW-Authenticate': 'Basic realm="Stripe"' });
  }
  if (!key.startsWith('sk_test_') || key === 'sk_test_revoked' || key.length < 9 || /\s/.test(key)) {
    return new ApiError(401, { type: 'invalid_request_error', message: `Invalid API Key provided: ${maskKey(key)}` }, { 'WWW-Authenticate': 'Basic realm="Stripe"' });
  }
  return null;
}

function takeToken() {
  const rate = config.rate_limit_per_sec;
  if (!rate) return true;
  const now = Date.now();
  bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.last) / 1000) * rate);
  bucket.last = now;
  if (bucket.tokens >= 1) { bucket.tokens -= 1; return true; }
  return false;
}

function retryAfterHeader() {
  return config.retry_after ? { 'Retry-After': String(config.retry_after) } : null;
}

function chance(rate) { return rate > 0 && rand() < rate; }
const failedKeys = new Map(); // Idempotency-Key -> injected failures so far (for fail_max_per_key)
function failByRate(req) {
  if (!chance(config.fail_rate)) return false;
  const key = req.method === 'POST' ? req.headers['idempotency-key'] : undefined;
  if (!config.fail_max_per_key || !key) return true;
  const n = failedKeys.get(key) || 0;
  if (n >= config.fail_max_per_key) return false;
  if (failedKeys.size > 100000) failedKeys.clear();
  failedKeys.set(key, n + 1);
  return true;
}
function takeNext(knob) { if (config[knob] > 0) { config[knob]--; return true; } return false; }

function canonical(v) { // a stable rendering of parsed params for idempotency comparison
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
  if (isNode(v)) return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
  return JSON.stringify(v);
}

function pruneIdempotency() {
  const cutoff = Date.now() - config.idempotency_retention_seconds * 1000;
  for (const [k, v] of idempotency) {
    if (v.ms >= cutoff) break; // insertion ordered
    if (!v.inFlight) idempotency.delete(k);
  }
}

function handleApi(req, res, url, body, reqId) {
  const method = req.method;
  const m = matchRoute(url.pathname);
  const template = m ? `${method} ${m.route.path}` : `${method} (unrecognized)`;
  stats.api_requests++;
  bump(stats.requests_by_template, template);

  const proceed = () => {
    // Infrastructure faults come first: they happen before Stripe runs anything.
    if (takeNext('timeout_next') || chance(config.timeout_rate)) {
      stats.timed_out++;
      hanging.add(req.socket);
      req.socket.once('close', () => hanging.delete(req.socket));
      return;
    }
    if (takeNext('drop_next') || chance(config.drop_rate)) {
      stats.dropped++;
      req.socket.destroy();
      return;
    }
    const baseHeaders = { 'Request-Id': reqId, 'Stripe-Version': API_VERSION };
    const fail = (err, authed, extra) => sendJson(res, err.status, errorBody(err, reqId, authed), Object.assign(baseHeaders, err.extraHeaders || {}, extra || {}));
    if (takeNext('fail_next') || failByRate(req)) {
      stats.injected_failures++;
      return fail(injectedError(), true, retryAfterHeader());
    }
    const authErr = authenticate(req);
    if (authErr) { stats.auth_failures++; return fail(authErr, false); }
    if (!takeToken()) {
      stats.rate_limited++;
      return fail(new ApiError(429, { type: 'invalid_request_error', code: 'rate_limit', message: 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.' }), true, retryAfterHeader());
    }
    const sv = req.headers['stripe-version'];
    if (sv !== undefined) {
      if (!/^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$/.test(sv)) return fail(invalid(`Invalid Stripe API version: ${sv}`, null), true);
      baseHeaders['Stripe-Version'] = sv;
    }
    if (/^\/v1\/(customers|products|prices|subscriptions|invoices|payment_intents)\/search$/.test(url.pathname) && method === 'GET') {
      return fail(new ApiError(501, { type: 'invalid_request_error', message: `The Stripe fake does not implement GET ${url.pathname} (the real API does). See tests/fakes/stripe/README.md.` }), true);
    }
    if (!m || !m.route.methods[method]) {
      return fail(invalid(`Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`, null, undefined, 404), true);
    }
    const ep = m.route.methods[method];
    const hkey = `${method} ${m.route.path}`;
    const handler = HANDLERS[hkey];
    if (!handler) {
      return fail(new ApiError(501, { type: 'invalid_request_error', message: `The Stripe fake does not implement ${method} ${m.route.path} (the real API does). See tests/fakes/stripe/README.md.` }), true);
    }

    let tree;
    try {
      tree = parseForm(url.search.length > 1 ? url.search.slice(1) : '');
      if (method !== 'GET' && body.length) {
        const ct = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
        if (ct && ct !== 'application/x-www-form-urlencoded') {
          throw invalid(`Invalid request: unsupported Content-Type ${ct}. If error persists and you need assistance, please contact support@stripe.com.`, null);
        }
        parseForm(body, tree);
      }
    } catch (err) {
      if (err instanceof ApiError) return fail(err, true);
      throw err;
    }

    // Idempotency (POST only; GET and DELETE are idempotent by definition).
    let idemKey = method === 'POST' ? req.headers['idempotency-key'] : undefined;
    if (idemKey !== undefined && idemKey.length > 255) {
      return fail(invalid('Invalid Idempotency-Key: must be at most 255 characters.', null), true);
    }
    if (idemKey === '') idemKey = undefined;
    const ctx = { reqId, idemKey };
    let params;
    try {
      const schema = method === 'GET' ? ep.query : (ep.body || ep.query);
      if (method === 'DELETE' && ep.query && ep.body) {
        params = validateRequest({ properties: Object.assign({}, ep.query.properties, ep.body.properties) }, tree);
      } else {
        params = validateRequest(schema, tree);
      }
    } catch (err) {
      if (err instanceof ApiError) return fail(err, true);
      throw err;
    }
    const fingerprint = idemKey !== undefined ? `${method} ${url.pathname}\n${canonical(tree)}` : null;
    const echo = idemKey !== undefined ? { 'Idempotency-Key': idemKey } : {};
    if (idemKey !== undefined) {
      pruneIdempotency();
      const saved = idempotency.get(idemKey);
      if (saved) {
        if (saved.inFlight) {
          return fail(new ApiError(409, { type: 'idempotency_error', message: `There is currently another in-progress request using this idempotent key (that probably means you submitted twice, and the other request is still going through): ${idemKey}. Please try again later.` }), true, echo);
        }
        if (saved.fingerprint !== fingerprint) {
          return fail(new ApiError(400, { type: 'idempotency_error', message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idemKey}' if you meant to execute a different request.` }), true, echo);
        }
        stats.idempotent_replays++;
        return sendJson(res, saved.status, saved.body, Object.assign(baseHeaders, echo, { 'Idempotent-Replayed': 'true', 'Original-Request': saved.reqId }));
      }
    }
    const isCreate = method === 'POST' && !m.id;
    if (isCreate && config.fail_nth_create > 0) {
      createAttempts++;
      if (createAttempts === config.fail_nth_create) {
        stats.injected_failures++;
        return fail(injectedError(), true, Object.assign({}, echo, retryAfterHeader()));
      }
    }

    // Execution begins: from here the result is saved under the idempotency key.
    let status = 200;
    let out;
    let errorOut = null;
    // A request that may change objects runs now, perhaps later than it arrived
    // (latency_ms): texts rendered meanwhile must not outlive it.
    if (method !== 'GET' && method !== 'HEAD') invalidateRendered();
    try {
      const r = handler({ id: m.id, params, ctx });
      let resBody = r && r.create ? r.body : r;
      if (r && r.create) { stats.creates++; bump(stats.creates_by_path, hkey); } else if (method === 'POST') stats.updates++; else if (method === 'DELETE') stats.deletes++;
      const isList = resBody && resBody.object === 'list';
      // a plain list page: from the objects' pre-rendered texts
      const pre = isList && (params.expand === undefined || params.expand.length === 0) ? renderList(resBody) : null;
      if (pre) { out = pre; stats.lists_prerendered++; } else {
        resBody = applyExpand(resBody, params.expand, isList);
        out = JSON.stringify(resBody, null, 2);
      }
    } catch (err) {
      if (!(err instanceof ApiError)) {
        process.stderr.write(`stripe-fake: internal error on ${template}: ${err && err.stack}\n`);
        err = new ApiError(500, { type: 'api_error', message: 'An unknown error occurred' });
      }
      errorOut = err;
      status = err.status;
      out = JSON.stringify(errorBody(err, reqId, true), null, 2);
    }
    // A 400 that names a parameter is input validation (an invalid email, an
    // unknown price in items[0][price], ...): Stripe saves no result for it, so
    // the key may be retried with corrected input. Anything else is saved.
    const validationFailure = errorOut && errorOut.status === 400 && errorOut.fields.param !== undefined;
    if (idemKey !== undefined && !validationFailure) {
      idempotency.set(idemKey, { fingerprint, status, body: out instanceof Prerendered ? out.toBuffer() : out, reqId, ms: Date.now(), inFlight: false });
    }
    if (takeNext('drop_after_next') || chance(config.drop_after_rate)) {
      stats.dropped_after_execution++;
      req.socket.destroy();
      return;
    }
    const hdrs = Object.assign(baseHeaders, echo, idemKey !== undefined ? { 'Original-Request': reqId } : {});
    if (errorOut && errorOut.extraHeaders) Object.assign(hdrs, errorOut.extraHeaders);
    return sendJson(res, status, out, hdrs);
  };

  const delay = config.latency_ms + (config.latency_jitter_ms ? rand() * config.latency_jitter_ms : 0);
  if (delay > 0) {
    // While the request waits, a concurrent retry with the same key sees it in flight.
    const key = req.method === 'POST' ? req.headers['idempotency-key'] : undefined;
    let marked = false;
    if (key && !idempotency.has(key)) {
      idempotency.set(key, { fingerprint: null, inFlight: true, ms: Date.now() });
      marked = true;
    } else if (key && idempotency.get(key).inFlight) {
      // fall through: proceed() will answer 409 after the delay unless the first finishes
    }
    setTimeout(() => {
      if (marked) { const s = idempotency.get(key); if (s && s.inFlight) idempotency.delete(key); }
      try { proceed(); } catch (err) { internalError(res, reqId, err); }
    }, delay);
  } else {
    proceed();
  }
}

function injectedError() {
  const st = config.fail_status;
  if (st === 429) return new ApiError(429, { type: 'invalid_request_error', code: 'rate_limit', message: 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.' });
  if (st >= 500) return new ApiError(st, { type: 'api_error', message: 'An unknown error occurred' });
  return new ApiError(st, { type: 'invalid_request_error', message: `Injected failure (HTTP ${st}) from the Stripe fake.` });
}

function internalError(res, reqId, err) {
  process.stderr.write(`stripe-fake: internal error: ${err && err.stack}\n`);
  if (!res.headersSent) sendJson(res, 500, { error: { message: 'An unknown error occurred', type: 'api_error' } }, { 'Request-Id': reqId });
}

// ---------------------------------------------------------------------------
// Seeding

const FIRST = ['Olivia', 'Liam', 'Emma', 'Noah', 'Ava', 'Oliver', 'Sophia', 'Elijah', 'Isabella', 'James', 'Mia', 'William', 'Amelia', 'Benjamin', 'Harper', 'Lucas', 'Evelyn', 'Henry', 'Abigail', 'Theodore', 'Emily', 'Jack', 'Ella', 'Levi', 'Elizabeth', 'Alexander', 'Camila', 'Jackson', 'Luna', 'Mateo', 'Sofia', 'Daniel', 'Avery', 'Michael', 'Mila', 'Mason', 'Aria', 'Sebastian', 'Scarlett', 'Ethan', 'Penelope', 'Logan', 'Layla', 'Owen', 'Chloe', 'Samuel', 'Victoria', 'Jacob', 'Madison', 'Asher', 'Priya', 'Arjun', 'Mei', 'Hiroshi', 'Fatima', 'Omar', 'Ingrid', 'Lars', 'Chiara', 'Mateus'];
const LAST = ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin', 'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson', 'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores', 'Patel', 'Kim', 'Tanaka', 'Müller', 'Rossi', 'Silva', 'Novak', 'Johansson', 'Okafor', 'Haddad'];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.example.com', 'corp.example'];
const CITIES = [['San Francisco', 'CA', 'US', '94107'], ['New York', 'NY', 'US', '10001'], ['Austin', 'TX', 'US', '73301'], ['Seattle', 'WA', 'US', '98101'], ['London', null, 'GB', 'EC1A 1BB'], ['Berlin', null, 'DE', '10115'], ['Paris', null, 'FR', '75001'], ['Toronto', 'ON', 'CA', 'M5H 2N2'], ['Sydney', 'NSW', 'AU', '2000'], ['Tokyo', null, 'JP', '100-0001']];
const STREETS = ['Market St', 'Main St', 'Oak Ave', 'Pine St', 'Maple Dr', 'Cedar Ln', 'Elm St', 'Lake Rd', 'Hill St', 'Park Ave'];
const PLANS = [
  ['Starter', 'For individuals getting started', 900, 9000],
  ['Team', 'Collaboration for small teams', 2900, 29000],
  ['Business', 'Advanced controls and reporting', 9900, 99000],
  ['Enterprise', 'Dedicated support and SSO', 49900, 499000],
  ['Add-on: Extra storage', '100 GB of additional storage', 500, 5000],
];

let seedCounter = 0;
function seedCustomers(n, spreadDays) {
  const quiet = { quiet: true, reqId: null };
  const empty = db.customer.size === 0 && spreadDays;
  const now = nowSec();
  const out = [];
  for (let i = 0; i < n; i++) {
    const first = pick(FIRST); const last = pick(LAST);
    seedCounter++;
    const tag = seedCounter > FIRST.length * LAST.length / 4 ? String(seedCounter) : '';
    const local = `${first}.${last}${tag}`.toLowerCase().normalize('NFD').replace(/[^a-z0-9.]/g, '');
    const p = newNode();
    p.name = `${first} ${last}`;
    p.email = `${local}@${pick(DOMAINS)}`;
    if (rand() < 0.6) {
      const [city, state, country, postal] = pick(CITIES);
      const a = newNode();
      a.line1 = `${1 + ((rand() * 9000) | 0)} ${pick(STREETS)}`; a.city = city; a.country = country; a.postal_code = postal;
      if (state) a.state = state;
      p.address = a;
    }
    if (rand() < 0.5) p.phone = `+1555${String((rand() * 10000000) | 0).padStart(7, '0')}`;
    const md = newNode(); md.seeded = 'true'; if (rand() < 0.3) md.segment = pick(['smb', 'mid-market', 'enterprise']);
    p.metadata = md;
    const pm = newNode(); pm.default_payment_method = newId('payment_method');
    if (rand() < 0.85) p.invoice_settings = pm;
    const c = customerCreate(p, Object.assign({}, quiet, { created: empty ? now - Math.floor(((n - i) / n) * spreadDays * 86400) : now }));
    out.push(c);
  }
  return out;
}

function seedProducts(n, spreadDays) {
  const quiet = { quiet: true, reqId: null };
  const now = nowSec();
  const empty = db.product.size === 0 && spreadDays;
  const out = [];
  for (let i = 0; i < n; i++) {
    const [name, desc, monthly, yearly] = PLANS[i % PLANS.length];
    const created = empty ? now - Math.floor(((n - i) / n) * spreadDays * 86400) - 86400 * 30 : now;
    const p = newNode();
    p.name = i < PLANS.length ? name : `${name} ${Math.floor(i / PLANS.length) + 1}`;
    p.description = desc;
    p.metadata = Object.assign(newNode(), { seeded: 'true' });
    const prod = productCreate(p, Object.assign({}, quiet, { created }));
    const mk = (amount, interval, nick) => {
      const pp = newNode();
      pp.currency = 'usd'; pp.product = prod.id; pp.unit_amount = amount; pp.nickname = nick;
      pp.recurring = Object.assign(newNode(), { interval });
      return priceCreate(pp, Object.assign({}, quiet, { created }));
    };
    const pm = mk(monthly, 'month', `${p.name} monthly`);
    mk(yearly, 'year', `${p.name} yearly`);
    prod.default_price = pm.id;
    out.push(prod);
  }
  return out;
}

function seedSubscriptions(n) {
  const quiet = { quiet: true, reqId: null };
  const customers = db.customer.order.filter((e) => e).map((e) => e.obj);
  const prices = db.price.order.filter((e) => e && e.obj.active && e.obj.type === 'recurring' && e.obj.recurring.interval === 'month').map((e) => e.obj);
  if (!customers.length || !prices.length) return [];
  const out = [];
  for (let i = 0; i < n && i < customers.length; i++) {
    const c = customers[customers.length - 1 - i];
    if (c.currency && c.currency !== 'usd') continue;
    const p = newNode();
    p.customer = c.id;
    const it = newNode(); it.price = prices[i % Math.min(prices.length, 4)].id; it.quantity = String(1 + (i % 3));
    p.items = [it];
    if (i % 5 === 4) p.trial_period_days = 14;
    p.metadata = Object.assign(newNode(), { seeded: 'true' });
    try { out.push(subscriptionCreate(validateRequest(endpointSchema('POST', '/v1/subscriptions'), p), quiet)); } catch (e) { /* skip */ }
  }
  return out;
}

function seedCoupons(n) {
  const quiet = { quiet: true, reqId: null };
  const defs = [['WELCOME10', 10, null], ['SPRING25', 25, null], ['FIVEOFF', null, 500]];
  const out = [];
  for (let i = 0; i < n; i++) {
    const [code, pct, amt] = defs[i % defs.length];
    const p = newNode();
    if (!db.coupon.get(code)) p.id = code;
    if (pct) p.percent_off = String(pct); else { p.amount_off = String(amt); p.currency = 'usd'; }
    p.duration = i % 2 ? 'repeating' : 'once';
    if (p.duration === 'repeating') p.duration_in_months = '3';
    p.name = pct ? `${pct}% off` : `$${(amt / 100).toFixed(0)} off`;
    out.push(couponCreate(validateRequest(endpointSchema('POST', '/v1/coupons'), p), quiet));
  }
  return out;
}

function endpointSchema(method, p) {
  const ep = SPEC.endpoints.find((e) => e.method === method && e.path === p);
  return ep.body || ep.query;
}

function seed(spec, spreadDays) {
  const t0 = Date.now();
  const made = {};
  const num = (v) => (v === undefined ? 0 : Number(v));
  for (const key of ['customers', 'products', 'coupons', 'subscriptions']) {
    const v = spec[key];
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      // explicit objects: the same parameters the create endpoint takes
      const pathFor = { customers: '/v1/customers', products: '/v1/products', coupons: '/v1/coupons', subscriptions: '/v1/subscriptions' }[key];
      const fn = { customers: customerCreate, products: productCreate, coupons: couponCreate, subscriptions: subscriptionCreate }[key];
      for (const o of v) fn(validateRequest(endpointSchema('POST', pathFor), jsonToTree(o)), { quiet: true, reqId: null });
      made[key] = v.length;
    } else if (!Number.isInteger(num(v)) || num(v) < 0 || num(v) > 1000000) {
      throw new Error(`${key} must be a count (0..1000000) or an array of objects`);
    } else {
      const n = num(v);
      if (key === 'customers') seedCustomers(n, spreadDays);
      else if (key === 'products') seedProducts(n, spreadDays);
      else if (key === 'coupons') seedCoupons(n);
      else seedSubscriptions(n);
      made[key] = n;
    }
  }
  prerenderAll();
  return { seeded: made, took_ms: Date.now() - t0, totals: totals() };
}

function totals() {
  const t = {};
  for (const [k, c] of Object.entries(db)) t[k] = c.size;
  return t;
}

function resetAll(resetConfig) {
  for (const c of Object.values(db)) c.clear();
  deletedCustomers.clear();
  idempotency.clear();
  failedKeys.clear();
  stats = newStats();
  createAttempts = 0;
  if (resetConfig) { config = Object.assign({}, DEFAULT_CONFIG); bucket = { tokens: 0, last: Date.now() }; }
}

// ---------------------------------------------------------------------------
// Control API under /_fake/ (not part of Stripe; no auth, no faults)

function handleControl(req, res, url, body) {
  const reply = (status, obj) => {
    const text = JSON.stringify(obj, null, 2);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') invalidateRendered(); // reset, seed, config
  let json = {};
  if (body.length) {
    try { json = JSON.parse(body); } catch (e) { return reply(400, { error: 'body must be JSON' }); }
  }
  const route = `${req.method} ${url.pathname}`;
  try {
    switch (route) {
      case 'GET /_fake/health': return reply(200, { ok: true, api_version: API_VERSION });
      case 'GET /_fake/config': return reply(200, config);
      case 'POST /_fake/config': setConfig(json); return reply(200, config);
      case 'GET /_fake/stats': return reply(200, Object.assign({}, stats, { objects: totals(), idempotency_keys: idempotency.size }));
      case 'POST /_fake/reset': resetAll(json.config === true || url.searchParams.get('config') === '1'); return reply(200, { ok: true, totals: totals() });
      case 'POST /_fake/seed': return reply(200, seed(json, 0));
      default: return reply(404, { error: `unknown control endpoint ${route}`, endpoints: ['GET /_fake/health', 'GET|POST /_fake/config', 'GET /_fake/stats', 'POST /_fake/reset', 'POST /_fake/seed'] });
    }
  } catch (e) {
    return reply(400, { error: e.message });
  }
}

// ---------------------------------------------------------------------------
// Server

const MAX_BODY = 1 << 20;

function onRequest(req, res) {
  stats.requests++;
  const reqId = newId('request');
  const chunks = [];
  let size = 0;
  let tooBig = false;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) { tooBig = true; return; }
    chunks.push(c);
  });
  req.on('end', () => {
    try {
      const url = new URL(req.url, 'http://localhost');
      if (tooBig) return sendJson(res, 413, { error: { message: 'Request entity too large', type: 'invalid_request_error' } }, { 'Request-Id': reqId });
      const body = chunks.length ? Buffer.concat(chunks).toString('utf8') : '';
      if (url.pathname.startsWith('/_fake/')) return handleControl(req, res, url, body);
      if (req.method !== 'GET' && req.method !== 'HEAD') invalidateRendered(); // see renderedEntry
      if (req.method === 'OPTIONS') { res.writeHead(200, Object.assign({}, JSON_HEADERS, { 'Content-Length': 0, 'Request-Id': reqId })); return res.end(); }
      handleApi(req, res, url, body, reqId);
    } catch (err) {
      internalError(res, reqId, err);
    }
  });
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  seedRng(args.rngSeed);
  ACCOUNT_TAG = randStr(10);
  if (args.config) {
    try { setConfig(JSON.parse(args.config)); } catch (e) { usage(`--config: ${e.message}`); }
  }
  if (args.seedFile) {
    let spec;
    try { spec = JSON.parse(fs.readFileSync(args.seedFile, 'utf8')); } catch (e) { usage(`--seed ${args.seedFile}: ${e.message}`); }
    try { seed(spec, 90); } catch (e) { usage(`--seed ${args.seedFile}: ${e.message}`); }
  } else if (args.seedCustomers !== null) {
    seedCustomers(args.seedCustomers, 365);
    prerenderAll();
  } else if (!args.noSeed) {
    // the default sandbox
    seedProducts(5, 365);
    seedCoupons(3);
    seedCustomers(25, 180);
    seedSubscriptions(8);
    prerenderAll();
  }

  const server = http.createServer({ keepAliveTimeout: 65000, headersTimeout: 66000, requestTimeout: 0 }, onRequest);
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.listen(args.port, args.host, () => {
    const a = server.address();
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    process.stdout.write(`stripe-fake listening on http://${host}:${a.port}\n`);
  });
  server.on('error', (err) => {
    process.stderr.write(`stripe-fake: ${err.message}\n`);
    process.exit(1);
  });
  const stop = () => {
    for (const s of hanging) s.destroy();
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();

module.exports = { parseForm, validateRequest, coerce, UNSET };
