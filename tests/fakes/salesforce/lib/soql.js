'use strict';
// A small SOQL engine: tokenizer, parser, schema-aware compiler and executor for the subset
// the apigres sync and its tests use. Unsupported SOQL is rejected with MALFORMED_QUERY and
// a message that says the fake does not support it, so it is never mistaken for real output.

const { getObject } = require('./schema');
const { normalizeId } = require('./ids');

class SoqlError extends Error {
  constructor(errorCode, message, pos) {
    super(message);
    this.errorCode = errorCode;
    this.pos = pos;
  }
}

// ---------------------------------------------------------------- tokenizer
const RE_DATETIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2})/y;
const RE_DATE = /\d{4}-\d{2}-\d{2}(?![\dT])/y;
const RE_NUMBER = /[+-]?\d+(?:\.\d+)?(?![\w])/y;
const RE_IDENT = /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/y;

// Sticky (anchored at pos) match of re in s, or null.
function stickyMatch(re, s, pos) {
  re.lastIndex = pos;
  const m = re.exec(s);
  return m ? m[0] : null;
}

function tokenize(q) {
  const toks = [];
  let i = 0;
  const n = q.length;
  while (i < n) {
    const c = q[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (c === "'") {
      let s = '';
      i++;
      for (;;) {
        if (i >= n) throw new SoqlError('MALFORMED_QUERY', 'unexpected token: <EOF>', n);
        const d = q[i];
        if (d === '\\') {
          const e = q[i + 1];
          const map = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '"': '"', "'": "'", '\\': '\\', _: '\\_', '%': '\\%' };
          if (e === undefined || !(e in map)) {
            throw new SoqlError('MALFORMED_QUERY', `Invalid string literal '${q.slice(start, i + 2)}'. Illegal character sequence '\\${e ?? ''}' in string literal.`, i);
          }
          s += map[e];
          i += 2;
          continue;
        }
        if (d === "'") {
          i++;
          break;
        }
        s += d;
        i++;
      }
      toks.push({ t: 'string', v: s, pos: start, raw: q.slice(start, i) });
      continue;
    }
    if (c >= '0' && c <= '9') {
      let m = stickyMatch(RE_DATETIME, q, i);
      if (m) {
        toks.push({ t: 'datetime', v: m, pos: start, raw: m });
        i += m.length;
        continue;
      }
      m = stickyMatch(RE_DATE, q, i);
      if (m) {
        toks.push({ t: 'date', v: m, pos: start, raw: m });
        i += m.length;
        continue;
      }
    }
    if ((c >= '0' && c <= '9') || ((c === '-' || c === '+') && /[0-9]/.test(q[i + 1] || ''))) {
      const m = stickyMatch(RE_NUMBER, q, i);
      if (m) {
        toks.push({ t: 'number', v: Number(m), pos: start, raw: m });
        i += m.length;
        continue;
      }
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = stickyMatch(RE_IDENT, q, i);
      toks.push({ t: 'ident', v: m, u: m.toUpperCase(), pos: start, raw: m });
      i += m.length;
      continue;
    }
    const two = q.slice(i, i + 2);
    if (two === '!=' || two === '<>' || two === '<=' || two === '>=') {
      toks.push({ t: 'op', v: two === '<>' ? '!=' : two, pos: start, raw: two });
      i += 2;
      continue;
    }
    if (c === '=' || c === '<' || c === '>') {
      toks.push({ t: 'op', v: c, pos: start, raw: c });
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === ',' || c === ':') {
      toks.push({ t: c, v: c, pos: start, raw: c });
      i++;
      continue;
    }
    throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${c}'`, i);
  }
  toks.push({ t: 'eof', v: null, pos: n, raw: '<EOF>' });
  return toks;
}

// ---------------------------------------------------------------- parser
const RESERVED = new Set([
  'SELECT', 'FROM', 'WHERE', 'AND', 'OR', 'NOT', 'IN', 'LIKE', 'ORDER', 'BY', 'ASC', 'DESC',
  'NULLS', 'FIRST', 'LAST', 'LIMIT', 'OFFSET', 'GROUP', 'HAVING', 'WITH', 'FOR', 'USING',
  'INCLUDES', 'EXCLUDES', 'NULL', 'TRUE', 'FALSE', 'TYPEOF',
]);
const AGG_FNS = new Set(['COUNT', 'COUNT_DISTINCT', 'MIN', 'MAX', 'SUM', 'AVG']);

function unexpected(tok) {
  return new SoqlError(
    'MALFORMED_QUERY',
    tok.t === 'eof' ? 'unexpected token: <EOF>' : `unexpected token: '${tok.raw}'`,
    tok.pos,
  );
}

function unsupported(what, pos) {
  return new SoqlError('MALFORMED_QUERY', `${what} is not supported by salesforce-fake`, pos);
}

function parse(q) {
  const toks = tokenize(q);
  let p = 0;
  const peek = () => toks[p];
  const next = () => toks[p++];
  const isKw = (kw, tok = peek()) => tok.t === 'ident' && tok.u === kw;
  const expectKw = (kw) => {
    const tok = next();
    if (!isKw(kw, tok)) throw unexpected(tok);
    return tok;
  };
  const expect = (t) => {
    const tok = next();
    if (tok.t !== t) throw unexpected(tok);
    return tok;
  };

  const ast = { select: [], from: null, where: null, orderBy: [], limit: null, offset: null };
  expectKw('SELECT');
  // select list
  for (;;) {
    const tok = next();
    if (tok.t === '(') throw unsupported('Relationship subqueries', tok.pos);
    if (tok.t !== 'ident' || (RESERVED.has(tok.u) && tok.u !== 'FIELDS')) {
      throw unexpected(tok);
    }
    if (tok.u === 'TYPEOF') throw unsupported('TYPEOF', tok.pos);
    if (peek().t === '(') {
      const fn = tok.u;
      next();
      if (fn === 'FIELDS') throw unsupported('FIELDS()', tok.pos);
      if (!AGG_FNS.has(fn)) throw unsupported(`Function ${tok.raw}()`, tok.pos);
      if (fn === 'COUNT' && peek().t === ')') {
        next();
        ast.select.push({ kind: 'count', pos: tok.pos });
      } else {
        const arg = expect('ident');
        expect(')');
        let alias = null;
        if (peek().t === 'ident' && !RESERVED.has(peek().u)) alias = next().v;
        ast.select.push({ kind: 'agg', fn, path: arg.v, pos: arg.pos, alias, fnPos: tok.pos });
      }
    } else {
      ast.select.push({ kind: 'field', path: tok.v, pos: tok.pos });
    }
    if (peek().t === ',') {
      next();
      continue;
    }
    break;
  }
  expectKw('FROM');
  const from = next();
  if (from.t !== 'ident' || RESERVED.has(from.u)) throw unexpected(from);
  ast.from = { name: from.v, pos: from.pos };
  // optional alias on the object is not supported (rarely used)
  if (peek().t === 'ident' && !RESERVED.has(peek().u)) throw unsupported('Object aliases', peek().pos);

  if (isKw('USING')) throw unsupported('USING SCOPE', peek().pos);
  if (isKw('WHERE')) {
    next();
    ast.where = parseCond();
  }
  if (isKw('WITH')) throw unsupported('WITH', peek().pos);
  if (isKw('GROUP')) throw unsupported('GROUP BY', peek().pos);
  if (isKw('HAVING')) throw unsupported('HAVING', peek().pos);
  if (isKw('ORDER')) {
    next();
    expectKw('BY');
    for (;;) {
      const f = next();
      if (f.t !== 'ident' || RESERVED.has(f.u)) throw unexpected(f);
      if (peek().t === '(') throw unsupported('ORDER BY on a function', f.pos);
      const item = { path: f.v, pos: f.pos, desc: false, nullsLast: null };
      if (isKw('ASC')) next();
      else if (isKw('DESC')) {
        next();
        item.desc = true;
      }
      if (isKw('NULLS')) {
        next();
        const w = next();
        if (isKw('FIRST', w)) item.nullsLast = false;
        else if (isKw('LAST', w)) item.nullsLast = true;
        else throw unexpected(w);
      }
      ast.orderBy.push(item);
      if (peek().t === ',') {
        next();
        continue;
      }
      break;
    }
  }
  if (isKw('LIMIT')) {
    next();
    const n = next();
    if (n.t !== 'number' || !Number.isInteger(n.v) || n.v < 0) throw unexpected(n);
    ast.limit = n.v;
  }
  if (isKw('OFFSET')) {
    next();
    const n = next();
    if (n.t !== 'number' || !Number.isInteger(n.v) || n.v < 0) throw unexpected(n);
    if (n.v > 2000) {
      throw new SoqlError('NUMBER_OUTSIDE_VALID_RANGE', 'Maximum SOQL offset allowed is 2000', n.pos);
    }
    ast.offset = n.v;
  }
  if (isKw('FOR')) throw unsupported('FOR VIEW/REFERENCE/UPDATE', peek().pos);
  if (peek().t !== 'eof') throw unexpected(peek());
  return ast;

  function parseCond() {
    const first = parseNot();
    const items = [first];
    let op = null;
    for (;;) {
      const tok = peek();
      if (isKw('AND', tok) || isKw('OR', tok)) {
        const o = tok.u.toLowerCase();
        if (op && op !== o) throw unexpected(tok); // SOQL requires parentheses to mix AND/OR
        op = o;
        next();
        items.push(parseNot());
        continue;
      }
      break;
    }
    return items.length === 1 ? first : { op, items };
  }

  function parseNot() {
    if (isKw('NOT')) {
      next();
      return { op: 'not', item: parseNot() };
    }
    if (peek().t === '(') {
      next();
      const c = parseCond();
      expect(')');
      return c;
    }
    return parsePredicate();
  }

  function parsePredicate() {
    const f = next();
    if (f.t !== 'ident' || RESERVED.has(f.u)) throw unexpected(f);
    if (peek().t === '(') throw unsupported('Functions in WHERE', f.pos);
    const tok = peek();
    if (tok.t === 'op') {
      next();
      return { op: 'cmp', path: f.v, pos: f.pos, cmp: tok.v, value: parseValue() };
    }
    if (isKw('LIKE')) {
      next();
      const v = next();
      if (v.t !== 'string') throw unexpected(v);
      return { op: 'like', path: f.v, pos: f.pos, value: { kind: 'string', v: v.v, pos: v.pos } };
    }
    let negate = false;
    if (isKw('NOT')) {
      next();
      negate = true;
      if (!isKw('IN')) throw unexpected(peek());
    }
    if (isKw('IN')) {
      next();
      expect('(');
      if (isKw('SELECT')) throw unsupported('Semi-join subqueries', peek().pos);
      const values = [parseValue()];
      while (peek().t === ',') {
        next();
        values.push(parseValue());
      }
      expect(')');
      return { op: 'in', path: f.v, pos: f.pos, not: negate, values };
    }
    if (isKw('INCLUDES') || isKw('EXCLUDES')) throw unsupported('INCLUDES/EXCLUDES', tok.pos);
    throw unexpected(tok);
  }

  function parseValue() {
    const v = next();
    switch (v.t) {
      case 'string':
        return { kind: 'string', v: v.v, pos: v.pos };
      case 'number':
        return { kind: 'number', v: v.v, pos: v.pos };
      case 'datetime':
        return { kind: 'datetime', v: v.v, pos: v.pos };
      case 'date':
        return { kind: 'date', v: v.v, pos: v.pos };
      case 'ident': {
        if (v.u === 'NULL') return { kind: 'null', v: null, pos: v.pos };
        if (v.u === 'TRUE' || v.u === 'FALSE') return { kind: 'boolean', v: v.u === 'TRUE', pos: v.pos };
        let n = null;
        if (peek().t === ':') {
          next();
          const num = next();
          if (num.t !== 'number' || !Number.isInteger(num.v)) throw unexpected(num);
          n = num.v;
        }
        if (!DATE_LITERALS.has(v.u) || (DATE_LITERALS.get(v.u) === 'n') !== (n !== null)) {
          throw unexpected(v);
        }
        return { kind: 'dateliteral', v: v.u, n, pos: v.pos };
      }
      default:
        throw unexpected(v);
    }
  }
}

// ---------------------------------------------------------------- dates
const DATE_LITERALS = new Map(
  [
    'TODAY', 'YESTERDAY', 'TOMORROW', 'THIS_WEEK', 'LAST_WEEK', 'NEXT_WEEK', 'THIS_MONTH',
    'LAST_MONTH', 'NEXT_MONTH', 'LAST_90_DAYS', 'NEXT_90_DAYS', 'THIS_YEAR', 'LAST_YEAR', 'NEXT_YEAR',
  ]
    .map((k) => [k, '0'])
    .concat(
      ['LAST_N_DAYS', 'NEXT_N_DAYS', 'N_DAYS_AGO', 'LAST_N_WEEKS', 'NEXT_N_WEEKS', 'LAST_N_MONTHS', 'NEXT_N_MONTHS'].map((k) => [k, 'n']),
    ),
);

const DAY = 86400000;

// Canonical Salesforce datetime text: 2026-11-25T03:30:00.000+0000 (UTC). Fixed width, so
// string order is time order.
function fmtDateTime(ms) {
  return new Date(ms).toISOString().replace('Z', '+0000');
}
function fmtDate(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function parseDateTimeLiteral(s) {
  let t = s;
  // +0000 -> +00:00 for Date.parse
  const m = /([+-])(\d{2})(\d{2})$/.exec(t);
  if (m) t = t.slice(0, -5) + `${m[1]}${m[2]}:${m[3]}`;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}

// Range [lo, hi) in ms for a date literal, relative to now (UTC).
function dateLiteralRange(name, n, now) {
  const d = new Date(now);
  const today = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const dow = d.getUTCDay(); // Sunday starts the week (en_US)
  const weekStart = today - dow * DAY;
  const month = (k) => Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + k, 1);
  const year = (k) => Date.UTC(d.getUTCFullYear() + k, 0, 1);
  switch (name) {
    case 'TODAY': return [today, today + DAY];
    case 'YESTERDAY': return [today - DAY, today];
    case 'TOMORROW': return [today + DAY, today + 2 * DAY];
    case 'THIS_WEEK': return [weekStart, weekStart + 7 * DAY];
    case 'LAST_WEEK': return [weekStart - 7 * DAY, weekStart];
    case 'NEXT_WEEK': return [weekStart + 7 * DAY, weekStart + 14 * DAY];
    case 'THIS_MONTH': return [month(0), month(1)];
    case 'LAST_MONTH': return [month(-1), month(0)];
    case 'NEXT_MONTH': return [month(1), month(2)];
    case 'LAST_90_DAYS': return [today - 90 * DAY, today + DAY];
    case 'NEXT_90_DAYS': return [today + DAY, today + 91 * DAY];
    case 'THIS_YEAR': return [year(0), year(1)];
    case 'LAST_YEAR': return [year(-1), year(0)];
    case 'NEXT_YEAR': return [year(1), year(2)];
    case 'LAST_N_DAYS': return [today - n * DAY, today + DAY];
    case 'NEXT_N_DAYS': return [today + DAY, today + (n + 1) * DAY];
    case 'N_DAYS_AGO': return [today - n * DAY, today - (n - 1) * DAY];
    case 'LAST_N_WEEKS': return [weekStart - n * 7 * DAY, weekStart];
    case 'NEXT_N_WEEKS': return [weekStart + 7 * DAY, weekStart + (n + 1) * 7 * DAY];
    case 'LAST_N_MONTHS': return [month(-n), month(0)];
    case 'NEXT_N_MONTHS': return [month(1), month(n + 1)];
    default: return null;
  }
}

// ---------------------------------------------------------------- compiler
const NO_SUCH_COLUMN = (col, obj) =>
  `No such column '${col}' on entity '${obj}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`;

// Resolves "Account.Owner.Name" against obj; returns {rels:[refField...], field, objs:[...]}
function resolvePath(obj, path, pos) {
  const parts = path.split('.');
  let cur = obj;
  const rels = [];
  // An optional leading object name qualifier ("Contact.LastName") is allowed in SOQL.
  if (parts.length > 1 && parts[0].toLowerCase() === obj.name.toLowerCase() && !cur.relByLower.has(parts[0].toLowerCase())) {
    parts.shift();
  }
  for (let i = 0; i < parts.length - 1; i++) {
    const ref = cur.relByLower.get(parts[i].toLowerCase());
    if (!ref) {
      throw new SoqlError(
        'INVALID_FIELD',
        `Didn't understand relationship '${parts[i]}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.`,
        pos,
      );
    }
    rels.push({ ref, from: cur });
    cur = getObject(ref.referenceTo[0]);
  }
  const field = cur.fieldByLower.get(parts[parts.length - 1].toLowerCase());
  if (!field) throw new SoqlError('INVALID_FIELD', NO_SUCH_COLUMN(parts[parts.length - 1], cur.name), pos);
  return { rels, field, obj: cur, key: rels.map((r) => r.ref.relationshipName).concat(field.name).join('.') };
}

function makeGetter(resolved, ctx) {
  const { rels, field } = resolved;
  const name = field.name;
  if (rels.length === 0) return (rec) => rec[name];
  return (rec) => {
    let cur = rec;
    for (const r of rels) {
      const id = cur[r.ref.name];
      if (id == null) return null;
      cur = ctx.getRecord(r.ref.referenceTo[0], id);
      if (!cur) return null;
    }
    return cur[name];
  };
}

const TYPE_WORD = {
  string: 'string', textarea: 'string', email: 'string', phone: 'string', url: 'string', picklist: 'string',
  boolean: 'boolean', int: 'integer', double: 'double', currency: 'double', percent: 'double',
  date: 'date', datetime: 'dateTime', id: 'id', reference: 'id',
};

function filterTypeError(field, pos) {
  const w = TYPE_WORD[field.type];
  const quoted = w === 'string' || w === 'id';
  return new SoqlError(
    'INVALID_FIELD',
    `value of filter criterion for field '${field.name}' must be of type ${w} and should ${quoted ? '' : 'not '}be enclosed in quotes`,
    pos,
  );
}

// Turns a literal into a comparable for the field type. Returns {kind:'null'} | {kind:'v', v}
// | {kind:'range', lo, hi} (date literals).
function coerceValue(field, val, now) {
  const t = field.type;
  if (val.kind === 'null') return { kind: 'null' };
  switch (t) {
    case 'id':
    case 'reference': {
      if (val.kind !== 'string') throw filterTypeError(field, val.pos);
      const id = normalizeId(val.v);
      if (!id) throw new SoqlError('INVALID_QUERY_FILTER_OPERATOR', `invalid ID field: ${val.v}`, val.pos);
      return { kind: 'v', v: id };
    }
    case 'boolean':
      if (val.kind !== 'boolean') throw filterTypeError(field, val.pos);
      return { kind: 'v', v: val.v };
    case 'int':
    case 'double':
    case 'currency':
    case 'percent':
      if (val.kind !== 'number') throw filterTypeError(field, val.pos);
      return { kind: 'v', v: val.v };
    case 'date':
      if (val.kind === 'date') return { kind: 'v', v: val.v };
      if (val.kind === 'dateliteral') {
        const [lo, hi] = dateLiteralRange(val.v, val.n, now);
        return { kind: 'range', lo: fmtDate(lo), hi: fmtDate(hi) };
      }
      throw filterTypeError(field, val.pos);
    case 'datetime':
      if (val.kind === 'datetime') {
        const ms = parseDateTimeLiteral(val.v);
        if (ms === null) throw new SoqlError('MALFORMED_QUERY', `line 1:${val.pos + 1} no viable alternative at character '${val.v}'`, val.pos);
        return { kind: 'v', v: fmtDateTime(ms) };
      }
      if (val.kind === 'dateliteral') {
        const [lo, hi] = dateLiteralRange(val.v, val.n, now);
        return { kind: 'range', lo: fmtDateTime(lo), hi: fmtDateTime(hi) };
      }
      throw filterTypeError(field, val.pos);
    default:
      if (val.kind !== 'string') throw filterTypeError(field, val.pos);
      return { kind: 'v', v: val.v };
  }
}

const isTextType = (t) => t === 'string' || t === 'textarea' || t === 'email' || t === 'phone' || t === 'url' || t === 'picklist';

function cmpValues(a, b, type) {
  if (isTextType(type)) {
    const x = String(a).toLowerCase();
    const y = String(b).toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (type === 'boolean') return (a === b ? 0 : a ? 1 : -1);
  return a < b ? -1 : a > b ? 1 : 0;
}

function likeToRegex(pattern) {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && i + 1 < pattern.length) {
      re += pattern[++i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else if (c === '%') re += '[\\s\\S]*';
    else if (c === '_') re += '[\\s\\S]';
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(re + '$', 'i');
}

function compileCond(node, obj, ctx, now) {
  switch (node.op) {
    case 'and': {
      const fs = node.items.map((n) => compileCond(n, obj, ctx, now));
      return (r) => fs.every((f) => f(r));
    }
    case 'or': {
      const fs = node.items.map((n) => compileCond(n, obj, ctx, now));
      return (r) => fs.some((f) => f(r));
    }
    case 'not': {
      const f = compileCond(node.item, obj, ctx, now);
      return (r) => !f(r);
    }
    case 'like': {
      const res = resolvePath(obj, node.path, node.pos);
      const get = makeGetter(res, ctx);
      const re = likeToRegex(node.value.v);
      return (r) => {
        const v = get(r);
        return v != null && re.test(String(v));
      };
    }
    case 'in': {
      const res = resolvePath(obj, node.path, node.pos);
      const get = makeGetter(res, ctx);
      const type = res.field.type;
      const vals = node.values.map((v) => coerceValue(res.field, v, now));
      const hasNull = vals.some((v) => v.kind === 'null');
      const plain = vals.filter((v) => v.kind === 'v').map((v) => v.v);
      const set = new Set(isTextType(type) ? plain.map((x) => String(x).toLowerCase()) : plain);
      const test = (r) => {
        const v = get(r);
        if (v == null) return hasNull;
        return set.has(isTextType(type) ? String(v).toLowerCase() : v);
      };
      return node.not ? (r) => get(r) != null && !test(r) : test;
    }
    case 'cmp': {
      const res = resolvePath(obj, node.path, node.pos);
      const get = makeGetter(res, ctx);
      const type = res.field.type;
      const val = coerceValue(res.field, node.value, now);
      const op = node.cmp;
      if (val.kind === 'null') {
        if (op === '=') return (r) => get(r) == null;
        if (op === '!=') return (r) => get(r) != null;
        return () => false;
      }
      if (val.kind === 'range') {
        const { lo, hi } = val;
        const inRange = (v) => v >= lo && v < hi;
        switch (op) {
          case '=': return (r) => { const v = get(r); return v != null && inRange(v); };
          case '!=': return (r) => { const v = get(r); return v == null || !inRange(v); };
          case '<': return (r) => { const v = get(r); return v != null && v < lo; };
          case '<=': return (r) => { const v = get(r); return v != null && v < hi; };
          case '>': return (r) => { const v = get(r); return v != null && v >= hi; };
          case '>=': return (r) => { const v = get(r); return v != null && v >= lo; };
          default: break;
        }
      }
      const target = val.v;
      switch (op) {
        case '=': return (r) => { const v = get(r); return v != null && cmpValues(v, target, type) === 0; };
        case '!=': return (r) => { const v = get(r); return v == null || cmpValues(v, target, type) !== 0; };
        case '<': return (r) => { const v = get(r); return v != null && cmpValues(v, target, type) < 0; };
        case '<=': return (r) => { const v = get(r); return v != null && cmpValues(v, target, type) <= 0; };
        case '>': return (r) => { const v = get(r); return v != null && cmpValues(v, target, type) > 0; };
        case '>=': return (r) => { const v = get(r); return v != null && cmpValues(v, target, type) >= 0; };
        default: throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${op}'`, node.pos);
      }
    }
    default:
      throw new Error('bad node');
  }
}

// Builds the projection tree for the select list.
function buildProjection(obj, items, ctx) {
  const root = { obj, entries: [], byKey: new Map() };
  const seen = new Set();
  for (const it of items) {
    const res = resolvePath(obj, it.path, it.pos);
    const lk = res.key.toLowerCase();
    if (seen.has(lk)) throw new SoqlError('MALFORMED_QUERY', `duplicate field selected: ${it.path}`, it.pos);
    seen.add(lk);
    let node = root;
    for (const r of res.rels) {
      const key = r.ref.relationshipName;
      let child = node.byKey.get(key);
      if (!child) {
        child = { kind: 'r', key, ref: r.ref, obj: getObject(r.ref.referenceTo[0]), entries: [], byKey: new Map() };
        node.byKey.set(key, child);
        node.entries.push(child);
      }
      node = child;
    }
    node.entries.push({ kind: 'f', key: res.field.name });
  }
  return (rec, v) => project(rec, root, v, ctx);
}

function project(rec, node, v, ctx) {
  const out = { attributes: { type: node.obj.name, url: `/services/data/v${v}/sobjects/${node.obj.name}/${rec.Id}` } };
  for (const e of node.entries) {
    if (e.kind === 'f') out[e.key] = rec[e.key] === undefined ? null : rec[e.key];
    else {
      const id = rec[e.ref.name];
      const parent = id == null ? null : ctx.getRecord(e.obj.name, id);
      out[e.key] = parent ? project(parent, e, v, ctx) : null;
    }
  }
  return out;
}

function compileOrder(obj, orderBy, ctx) {
  const keys = orderBy.map((o) => {
    const res = resolvePath(obj, o.path, o.pos);
    if (res.field.type === 'textarea' && res.field.length > 255) {
      throw new SoqlError('INVALID_FIELD', `field '${res.field.name}' can not be sorted in a query call`, o.pos);
    }
    return {
      get: makeGetter(res, ctx),
      type: res.field.type,
      dir: o.desc ? -1 : 1,
      nullsLast: o.nullsLast === null ? o.desc : o.nullsLast,
    };
  });
  return (a, b) => {
    for (const k of keys) {
      const x = k.get(a);
      const y = k.get(b);
      if (x == null || y == null) {
        if (x == null && y == null) continue;
        return (x == null) === k.nullsLast ? 1 : -1;
      }
      const c = cmpValues(x, y, k.type) * k.dir;
      if (c !== 0) return c;
    }
    return 0;
  };
}

// compile(soql, ctx) -> { obj, run(records) -> {kind:'rows', rows, project} | {kind:'count', n}
//   | {kind:'agg', record} }
// ctx: { getRecord(type, id), now }
function compile(soql, ctx) {
  const ast = parse(soql);
  const obj = getObject(ast.from.name);
  if (!obj) {
    throw new SoqlError(
      'INVALID_TYPE',
      `sObject type '${ast.from.name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.`,
      ast.from.pos,
    );
  }
  const now = ctx.now;
  const countOnly = ast.select.some((s) => s.kind === 'count');
  const aggs = ast.select.filter((s) => s.kind === 'agg');
  if (countOnly && ast.select.length > 1) {
    const other = ast.select.find((s) => s.kind !== 'count');
    throw new SoqlError('MALFORMED_QUERY', `unexpected token: ','`, other.pos - 2 > 0 ? other.pos - 2 : other.pos);
  }
  if (aggs.length && ast.select.some((s) => s.kind === 'field')) {
    const fld = ast.select.find((s) => s.kind === 'field');
    throw new SoqlError('MALFORMED_QUERY', `Field must be grouped or aggregated: ${fld.path}`, fld.pos);
  }
  const where = ast.where ? compileCond(ast.where, obj, ctx, now) : null;
  const order = ast.orderBy.length ? compileOrder(obj, ast.orderBy, ctx) : null;
  if ((countOnly || aggs.length) && order) {
    throw new SoqlError('MALFORMED_QUERY', 'Ordered field must be grouped or aggregated', ast.orderBy[0].pos);
  }
  let projector = null;
  let aggDefs = null;
  if (!countOnly && !aggs.length) projector = buildProjection(obj, ast.select, ctx);
  if (aggs.length) {
    let expr = 0;
    aggDefs = aggs.map((a) => {
      const res = resolvePath(obj, a.path, a.pos);
      const t = res.field.type;
      if ((a.fn === 'SUM' || a.fn === 'AVG') && !['int', 'double', 'currency', 'percent'].includes(t)) {
        throw new SoqlError('MALFORMED_QUERY', `field ${res.field.name} does not support aggregate operator ${a.fn}`, a.pos);
      }
      return { fn: a.fn, get: makeGetter(res, ctx), type: t, name: a.alias || `expr${expr++}` };
    });
  }

  // run(records, includeDeleted): records is any iterable of records of obj.
  function run(records, includeDeleted = false) {
    let rows = [];
    for (const r of records) {
      if (!includeDeleted && r.IsDeleted) continue;
      if (where && !where(r)) continue;
      rows.push(r);
    }
    if (countOnly) {
      let n = rows.length;
      if (ast.offset) n = Math.max(0, n - ast.offset);
      if (ast.limit !== null) n = Math.min(n, ast.limit);
      return { kind: 'count', n };
    }
    if (aggDefs) {
      const rec = { attributes: { type: 'AggregateResult' } };
      for (const a of aggDefs) {
        const vals = rows.map(a.get).filter((v) => v != null);
        let out = null;
        switch (a.fn) {
          case 'COUNT': out = vals.length; break;
          case 'COUNT_DISTINCT': out = new Set(vals.map((v) => (isTextType(a.type) ? String(v).toLowerCase() : v))).size; break;
          case 'MIN': out = vals.length ? vals.reduce((m, v) => (cmpValues(v, m, a.type) < 0 ? v : m)) : null; break;
          case 'MAX': out = vals.length ? vals.reduce((m, v) => (cmpValues(v, m, a.type) > 0 ? v : m)) : null; break;
          case 'SUM': out = vals.length ? vals.reduce((s, v) => s + v, 0) : null; break;
          case 'AVG': out = vals.length ? vals.reduce((s, v) => s + v, 0) / vals.length : null; break;
          default: break;
        }
        rec[a.name] = out;
      }
      return { kind: 'agg', record: rec };
    }
    if (order) rows.sort(order);
    if (ast.offset) rows = rows.slice(ast.offset);
    if (ast.limit !== null) rows = rows.slice(0, ast.limit);
    return { kind: 'rows', rows, project: projector };
  }
  return { obj, ast, run, idKeys: idKeysOf(ast.where, obj) };
}

// When the WHERE clause pins Id (Id = '...' or Id IN (...), alone or inside a top-level AND),
// returns those ids so the caller can look records up instead of scanning the table.
function idKeysOf(where, obj) {
  if (!where) return null;
  const isId = (n) => {
    if (n.path.includes('.') && n.path.split('.')[0].toLowerCase() !== obj.name.toLowerCase()) return false;
    return n.path.split('.').pop().toLowerCase() === 'id';
  };
  const keys = (n) => {
    if (n.op === 'cmp' && n.cmp === '=' && n.value.kind === 'string' && isId(n)) return [normalizeId(n.value.v)];
    if (n.op === 'in' && !n.not && isId(n) && n.values.every((v) => v.kind === 'string')) return n.values.map((v) => normalizeId(v.v));
    return null;
  };
  const direct = keys(where);
  if (direct) return [...new Set(direct.filter(Boolean))];
  if (where.op === 'and') {
    for (const item of where.items) {
      const k = keys(item);
      if (k) return [...new Set(k.filter(Boolean))];
    }
  }
  return null;
}

// Formats an error the way the REST API prints SOQL errors: the offending line, a caret,
// "ERROR at Row:R:Column:C" and the reason.
function formatError(soql, err) {
  if (err.pos == null) return err.message;
  const before = soql.slice(0, err.pos);
  const row = before.split('\n').length;
  const lineStart = before.lastIndexOf('\n') + 1;
  let lineEnd = soql.indexOf('\n', err.pos);
  if (lineEnd < 0) lineEnd = soql.length;
  const col = err.pos - lineStart + 1;
  return `\n${soql.slice(lineStart, lineEnd)}\n${' '.repeat(col - 1)}^\nERROR at Row:${row}:Column:${col}\n${err.message}`;
}

module.exports = { compile, formatError, SoqlError, fmtDateTime, fmtDate, parseDateTimeLiteral, tokenize, parse };
