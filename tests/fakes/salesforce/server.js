#!/usr/bin/env node
'use strict';
// salesforce-fake: a local fake of the Salesforce REST API (OAuth 2.0 refresh-token flow,
// sObject CRUD, describe, SOQL query/queryAll with query locators, sObject Collections,
// getUpdated/getDeleted) plus a control API under /_fake/ for tests. Node 20, stdlib only.
//
//   node server.js [--port N] [--host 127.0.0.1] [--seed-contacts N] [--empty] [--seed N]
//                  [--client-id X] [--client-secret X] [--refresh-token X] [--log]
//
// Prints exactly one line "salesforce-fake listening on http://HOST:PORT" when ready.
// See README.md for the API surface, the control API and what is not faithful.

const http = require('http');
const zlib = require('zlib');
const crypto = require('crypto');
const { SCHEMA, getObject, describe, globalEntry } = require('./lib/schema');
const { normalizeId, looksLikeId, makeId } = require('./lib/ids');
const { compile, formatError, SoqlError, fmtDateTime, parseDateTimeLiteral } = require('./lib/soql');
const { Store } = require('./lib/store');

const MIN_VERSION = 40;
const MAX_VERSION = 62;
const ORG_ID15 = '00D000000000001';
const ORG_ID = normalizeId(ORG_ID15);
const STATIC_TOKEN = `${ORG_ID15}!fake`;
const JSON_CT = 'application/json;charset=UTF-8';

const DEFAULT_CONFIG = () => ({
  latency_ms: 0,
  fail_rate: 0,
  fail_status: 500,
  fail_next: 0,
  drop_rate: 0,
  drop_next: 0,
  timeout_rate: 0,
  timeout_next: 0,
  timeout_hold_ms: 120000,
  fault_path: null,
  rate_limit_per_sec: 0,
  api_daily_limit: 15000,
  enforce_daily_limit: false,
  token_ttl_sec: 0,
  max_query_cursors: 10,
  query_cursor_ttl_sec: 900,
  clock_offset_ms: 0,
  gzip: true,
  validation_rules: [],
  readonly_records: [],
  duplicate_rules: [],
  unshared_records: [],
  api_disabled: false,
  locked_records: [],
  client_id: process.env.SF_FAKE_CLIENT_ID || 'fake-client-id',
  client_secret: process.env.SF_FAKE_CLIENT_SECRET || 'fake-client-secret',
  refresh_token: process.env.SF_FAKE_REFRESH_TOKEN || 'fake-refresh-token',
  username: process.env.SF_FAKE_USERNAME || 'integration@apigres-fake.example',
  password: process.env.SF_FAKE_PASSWORD || 'fake-password',
});

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const o = { port: 0, host: '127.0.0.1', seedContacts: 0, empty: false, seed: 42, log: false, cfg: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) {
        process.stderr.write(`salesforce-fake: ${a} needs a value\n`);
        process.exit(2);
      }
      return v;
    };
    switch (a) {
      case '--port': o.port = Number(val()); break;
      case '--host': o.host = val(); break;
      case '--seed-contacts': o.seedContacts = Number(val()); break;
      case '--seed': o.seed = Number(val()); break;
      case '--empty': o.empty = true; break;
      case '--log': o.log = true; break;
      case '--client-id': o.cfg.client_id = val(); break;
      case '--client-secret': o.cfg.client_secret = val(); break;
      case '--refresh-token': o.cfg.refresh_token = val(); break;
      case '--username': o.cfg.username = val(); break;
      case '--password': o.cfg.password = val(); break;
      case '-h':
      case '--help':
        process.stdout.write('usage: node server.js [--port N] [--host H] [--seed-contacts N] [--empty] [--seed N] [--client-id X] [--client-secret X] [--refresh-token X] [--username X] [--password X] [--log]\n');
        process.exit(0);
        break;
      default:
        process.stderr.write(`salesforce-fake: unknown argument ${a}\n`);
        process.exit(2);
    }
  }
  return o;
}

// ---------------------------------------------------------------- server state
function createFake(options = {}) {
  const opts = { host: '127.0.0.1', port: 0, seedContacts: 0, empty: false, seed: 42, log: false, cfg: {}, ...options };
  let config = { ...DEFAULT_CONFIG(), ...opts.cfg };
  const clock = () => Date.now() + config.clock_offset_ms;
  const store = new Store({ clock });
  let baseUrl = '';
  let faultRe = null;
  let rng = Math.random;

  const state = {
    tokens: new Map(), // token -> {userId, issuedMs, expired, static}
    cursors: new Map(), // locator id -> cursor (Map keeps LRU order: delete+set on use)
    cursorSeq: 0,
    apiUsage: 0,
    rateWindow: 0,
    rateCount: 0,
    held: new Set(),
    refreshRevoked: false, // the refresh token was revoked (oauth2/revoke) and no new one set
    stats: null,
    recent: [],
  };

  function resetStats() {
    state.stats = {
      started_at: new Date().toISOString(),
      requests_total: 0,
      by_route: {},
      by_status: {},
      faults: { dropped: 0, timed_out: 0, failed: 0, rate_limited: 0, daily_limited: 0, expired_token: 0 },
      queries: 0,
      query_more: 0,
      token_grants: 0,
    };
    state.recent = [];
  }

  function resetAll(spec = {}) {
    config = { ...DEFAULT_CONFIG(), ...opts.cfg };
    faultRe = null;
    store.reset({ empty: spec.empty, seed: spec.seed ?? opts.seed, ...spec.counts });
    store.policy = store.compilePolicy(config);
    state.tokens.clear();
    state.refreshRevoked = false;
    state.tokens.set(STATIC_TOKEN, { userId: store.apiUserId, issuedMs: Date.now(), expired: false, static: true });
    state.cursors.clear();
    state.apiUsage = 0;
    for (const s of state.held) s.destroy();
    state.held.clear();
    resetStats();
  }

  resetAll({ empty: opts.empty });
  if (opts.seedContacts > 0) store.seedPast({ contacts: opts.seedContacts });

  // ---------------------------------------------------------------- responses
  function send(req, res, status, body, headers = {}) {
    if (res.headersSent || res.destroyed) return;
    const h = {
      // the org's clock (clock_offset_ms included), as the replication windows see it
      Date: new Date(clock()).toUTCString(),
      'Sforce-Limit-Info': `api-usage=${state.apiUsage}/${config.api_daily_limit}`,
      ...headers,
    };
    let payload = null;
    if (body !== undefined && body !== null && status !== 204 && status !== 304) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      if (!h['Content-Type']) h['Content-Type'] = JSON_CT;
    }
    res.statusCode = status;
    if (req.fakeRoute) {
      state.recent.push({ method: req.method, path: req.url, route: req.fakeRoute, status, soql: req.fakeSoql || undefined });
      if (state.recent.length > 200) state.recent.shift();
    }
    if (payload === null) {
      for (const k of Object.keys(h)) res.setHeader(k, h[k]);
      res.end();
      return;
    }
    let buf = Buffer.from(payload);
    const ae = req.headers['accept-encoding'];
    if (config.gzip && buf.length > 1024 && ae && /\bgzip\b/.test(ae)) {
      buf = zlib.gzipSync(buf, { level: 1 });
      h['Content-Encoding'] = 'gzip';
      h.Vary = 'Accept-Encoding';
    }
    h['Content-Length'] = buf.length;
    for (const k of Object.keys(h)) res.setHeader(k, h[k]);
    res.end(req.method === 'HEAD' ? undefined : buf);
  }

  const sfError = (code, message, fields, extra) => {
    const e = { message, errorCode: code };
    if (fields) e.fields = fields;
    return [{ ...e, ...extra }];
  };
  const notFound = (req, res) => send(req, res, 404, sfError('NOT_FOUND', 'The requested resource does not exist'));
  const methodNotAllowed = (req, res, allowed) =>
    send(req, res, 405, sfError('METHOD_NOT_ALLOWED', `HTTP Method '${req.method}' not allowed. Allowed are ${allowed.join(',')}`), { Allow: allowed.join(', ') });
  const storeError = (req, res, e) => send(req, res, e.status || 400, sfError(e.code, e.message, e.fields, e.extra));
  const itemError = (e) => ({ statusCode: e.code, message: e.message, fields: e.fields || [], ...e.extra });

  // ---------------------------------------------------------------- auth
  // allowParam: the identity URL also takes the token as ?oauth_token=.
  function authenticate(req, allowParam = false) {
    const h = req.headers.authorization;
    let token = null;
    if (h) {
      const m = /^(?:Bearer|OAuth)\s+(\S+)\s*$/i.exec(h);
      if (m) token = m[1];
    }
    if (!token && allowParam) token = req.params.get('oauth_token');
    if (!token) return null;
    const t = state.tokens.get(token);
    if (!t || t.expired) return null;
    if (!t.static && config.token_ttl_sec > 0 && Date.now() - t.issuedMs > config.token_ttl_sec * 1000) {
      t.expired = true;
      return null;
    }
    return t;
  }

  function issueToken(userId, fromRefresh) {
    const token = `${ORG_ID15}!AQ${crypto.randomBytes(72).toString('base64').replace(/\+/g, '.').replace(/\//g, '_').replace(/=+$/, '')}`;
    state.tokens.set(token, { userId, issuedMs: Date.now(), expired: false, static: false, fromRefresh });
    return token;
  }

  function tokenResponse(user, fromRefresh = false) {
    const issued = String(Date.now());
    const id = `${baseUrl}/id/${ORG_ID}/${user.Id}`;
    const signature = crypto.createHmac('sha256', config.client_secret).update(id + issued).digest('base64');
    const body = {
      access_token: issueToken(user.Id, fromRefresh),
      signature,
      scope: 'api refresh_token',
      instance_url: baseUrl,
      id,
      token_type: 'Bearer',
      issued_at: issued,
    };
    state.stats.token_grants++;
    return body;
  }

  function oauthToken(req, res, bodyText) {
    if (req.method !== 'POST') return methodNotAllowed(req, res, ['POST']);
    const params = new URLSearchParams(req.query);
    for (const [k, v] of new URLSearchParams(bodyText || '')) params.set(k, v);
    let clientId = params.get('client_id');
    let clientSecret = params.get('client_secret');
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization || '');
    if (basic) {
      const dec = Buffer.from(basic[1], 'base64').toString();
      const i = dec.indexOf(':');
      if (i > 0) {
        clientId = decodeURIComponent(dec.slice(0, i));
        clientSecret = decodeURIComponent(dec.slice(i + 1));
      }
    }
    const oauthErr = (error, description) => send(req, res, 400, { error, error_description: description });
    const grant = params.get('grant_type');
    if (grant !== 'refresh_token' && grant !== 'password') return oauthErr('unsupported_grant_type', 'grant type not supported');
    if (clientId !== config.client_id) return oauthErr('invalid_client_id', 'client identifier invalid');
    if (clientSecret != null && clientSecret !== config.client_secret) return oauthErr('invalid_client', 'invalid client credentials');
    const user = store.get('User', store.apiUserId);
    if (grant === 'refresh_token') {
      if (params.get('refresh_token') !== config.refresh_token || state.refreshRevoked) {
        return oauthErr('invalid_grant', 'expired access/refresh token');
      }
      return send(req, res, 200, tokenResponse(user, true));
    }
    if (clientSecret == null) return oauthErr('invalid_client', 'invalid client credentials');
    if (params.get('username') !== config.username || params.get('password') !== config.password) {
      return oauthErr('invalid_grant', 'authentication failure');
    }
    return send(req, res, 200, tokenResponse(user));
  }

  function oauthRevoke(req, res, bodyText) {
    if (req.method !== 'POST' && req.method !== 'GET') return methodNotAllowed(req, res, ['GET', 'POST']);
    const params = new URLSearchParams(req.query);
    for (const [k, v] of new URLSearchParams(bodyText || '')) params.set(k, v);
    const token = params.get('token');
    const t = token && state.tokens.get(token);
    if (!t && token !== config.refresh_token) {
      return send(req, res, 400, { error: 'unsupported_token_type', error_description: 'this token type is not supported' });
    }
    if (t) t.expired = true;
    if (!t) {
      // Revoking a refresh token revokes it and every access token issued from it.
      state.refreshRevoked = true;
      for (const x of state.tokens.values()) if (x.fromRefresh) x.expired = true;
    }
    return send(req, res, 200, '', { 'Content-Type': 'text/plain' });
  }

  function identity(req, res, auth) {
    const u = store.get('User', auth.userId);
    return send(req, res, 200, {
      id: `${baseUrl}/id/${ORG_ID}/${u.Id}`,
      asserted_user: true,
      user_id: u.Id,
      organization_id: ORG_ID,
      username: u.Username,
      nick_name: u.Alias,
      display_name: u.Name,
      email: u.Email,
      email_verified: true,
      first_name: u.FirstName,
      last_name: u.LastName,
      timezone: u.TimeZoneSidKey,
      active: u.IsActive,
      user_type: 'STANDARD',
      language: 'en_US',
      locale: u.LocaleSidKey,
      utcOffset: 0,
      last_modified_date: u.LastModifiedDate,
      is_app_installed: true,
      urls: {
        enterprise: `${baseUrl}/services/Soap/c/{version}/${ORG_ID15}`,
        partner: `${baseUrl}/services/Soap/u/{version}/${ORG_ID15}`,
        rest: `${baseUrl}/services/data/v{version}/`,
        sobjects: `${baseUrl}/services/data/v{version}/sobjects/`,
        search: `${baseUrl}/services/data/v{version}/search/`,
        query: `${baseUrl}/services/data/v{version}/query/`,
        profile: `${baseUrl}/${u.Id}`,
      },
    });
  }

  // ---------------------------------------------------------------- versions
  const SEASONS = ['Winter', 'Spring', 'Summer'];
  function versionLabel(v) {
    const k = v - 20;
    const year = 11 + Math.floor(k / 3);
    return `${SEASONS[k % 3]} '${String(year).padStart(2, '0')}`;
  }
  function versions() {
    const out = [];
    for (let v = MIN_VERSION; v <= MAX_VERSION; v++) {
      out.push({ label: versionLabel(v), url: `/services/data/v${v}.0`, version: `${v}.0` });
    }
    return out;
  }

  // ---------------------------------------------------------------- body helpers
  function parseJsonBody(req, res, text) {
    const ct = (req.headers['content-type'] || '').toLowerCase();
    if (ct && !ct.startsWith('application/json') && !ct.startsWith('text/json')) {
      send(req, res, 415, sfError('UNSUPPORTED_MEDIA_TYPE', `Content-Type header specified in HTTP request is not supported: ${req.headers['content-type']}`));
      return { failed: true };
    }
    if (!text || !text.trim()) {
      return { value: undefined };
    }
    try {
      return { value: JSON.parse(text) };
    } catch (e) {
      const m = /position (\d+)/.exec(e.message);
      const pos = m ? Number(m[1]) : text.length;
      const before = text.slice(0, pos);
      const line = before.split('\n').length;
      const col = pos - before.lastIndexOf('\n');
      const ch = text[pos];
      const what = ch === undefined
        ? 'Unexpected end-of-input'
        : `Unexpected character ('${ch}' (code ${ch.charCodeAt(0)}))`;
      send(req, res, 400, sfError('JSON_PARSER_ERROR', `${what}: was expecting a valid JSON value at [line:${line}, column:${col}]`));
      return { failed: true };
    }
  }

  // ---------------------------------------------------------------- records
  function recordJson(obj, rec, v, fields) {
    const out = { attributes: { type: obj.name, url: `/services/data/v${v}/sobjects/${obj.name}/${rec.Id}` } };
    if (fields) {
      for (const f of fields) out[f.name] = rec[f.name] ?? null;
    } else {
      for (const f of obj.fields) out[f.name] = rec[f.name] ?? null;
    }
    return out;
  }

  function resolveFieldList(obj, list) {
    const fields = [];
    for (const raw of list.split(',')) {
      const name = raw.trim();
      if (!name) continue;
      const f = obj.fieldByLower.get(name.toLowerCase());
      if (!f) {
        return {
          error: `No such column '${name}' on entity '${obj.name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`,
        };
      }
      if (!fields.includes(f)) fields.push(f);
    }
    return { fields };
  }

  // ---------------------------------------------------------------- query
  function batchSizeOf(req) {
    const h = req.headers['sforce-query-options'];
    if (!h) return null;
    const m = /batchSize\s*=\s*(\d+)/i.exec(h);
    if (!m) return null;
    return Math.min(2000, Math.max(200, Number(m[1])));
  }

  function openCursor(auth, cur) {
    const id = makeId('01g', ++state.cursorSeq);
    cur.userId = auth.userId;
    cur.usedMs = Date.now();
    state.cursors.set(id, cur);
    // At most max_query_cursors open per user: the oldest one is released.
    const mine = [...state.cursors].filter(([, c]) => c.userId === auth.userId);
    while (mine.length > config.max_query_cursors) state.cursors.delete(mine.shift()[0]);
    return id;
  }

  function page(cur, id, offset, size, v) {
    const end = Math.min(cur.rows.length, offset + size);
    const records = new Array(end - offset);
    for (let i = offset; i < end; i++) records[i - offset] = cur.project(cur.rows[i], v);
    const body = { totalSize: cur.rows.length, done: end >= cur.rows.length };
    if (!body.done) body.nextRecordsUrl = `/services/data/v${v}/query/${id}-${end}`;
    body.records = records;
    return body;
  }

  function runQuery(req, res, auth, v, all) {
    const q = req.params.get('q');
    if (q == null || q.trim() === '') {
      return send(req, res, 400, sfError('MALFORMED_QUERY', 'A query string has to be specified'));
    }
    req.fakeSoql = q;
    state.stats.queries++;
    let compiled;
    const ctx = { getRecord: (type, id) => store.get(type, id), now: clock() };
    try {
      compiled = compile(q, ctx);
    } catch (e) {
      if (e instanceof SoqlError) return send(req, res, 400, sfError(e.errorCode, formatError(q, e)));
      throw e;
    }
    const name = compiled.obj.name;
    const source = compiled.idKeys
      ? compiled.idKeys.map((id) => store.get(name, id)).filter(Boolean)
      : store.table(name).values();
    const result = compiled.run(source, all);
    if (result.kind === 'count') return send(req, res, 200, { totalSize: result.n, done: true, records: [] });
    if (result.kind === 'agg') return send(req, res, 200, { totalSize: 1, done: true, records: [result.record] });
    const size = batchSizeOf(req) || 2000;
    const cur = { rows: result.rows, project: result.project, size };
    if (result.rows.length <= size) return send(req, res, 200, page(cur, null, 0, size, v));
    const id = openCursor(auth, cur);
    return send(req, res, 200, page(cur, id, 0, size, v));
  }

  function queryMore(req, res, auth, v, locator) {
    state.stats.query_more++;
    const m = /^(01g[A-Za-z0-9]{12,15})-(\d+)$/.exec(locator);
    const id = m && normalizeId(m[1]);
    const cur = id && state.cursors.get(id);
    const expired = cur && Date.now() - cur.usedMs > config.query_cursor_ttl_sec * 1000;
    if (!cur || expired || cur.userId !== auth.userId) {
      if (expired) state.cursors.delete(id);
      return send(req, res, 400, sfError('INVALID_QUERY_LOCATOR', 'invalid query locator'));
    }
    const offset = Number(m[2]);
    if (offset > cur.rows.length) return send(req, res, 400, sfError('INVALID_QUERY_LOCATOR', 'invalid query locator'));
    cur.usedMs = Date.now();
    state.cursors.delete(id);
    state.cursors.set(id, cur);
    return send(req, res, 200, page(cur, id, offset, batchSizeOf(req) || cur.size, v));
  }

  // ---------------------------------------------------------------- replication
  function replicationRange(req, res, deleted) {
    const p = req.params;
    for (const k of ['start', 'end']) {
      if (!p.get(k)) {
        send(req, res, 400, sfError('MISSING_ARGUMENT', `${k} parameter is required`));
        return null;
      }
    }
    const parse = (s) => parseDateTimeLiteral(s.replace(' ', '+'));
    let lo = parse(p.get('start'));
    let hi = parse(p.get('end'));
    if (lo === null || hi === null) {
      send(req, res, 400, sfError('INVALID_REPLICATION_DATE', `invalid date: ${lo === null ? p.get('start') : p.get('end')}`));
      return null;
    }
    // The API ignores the seconds portion of both bounds.
    lo = Math.floor(lo / 60000) * 60000;
    hi = Math.floor(hi / 60000) * 60000;
    const now = store.nowMs();
    if (lo > hi) {
      send(req, res, 400, sfError('INVALID_REPLICATION_DATE', 'startDate must chronologically precede endDate'));
      return null;
    }
    const earliest = Math.floor(Math.max(store.orgCreated, now - (deleted ? 15 : 30) * 86400000) / 60000) * 60000;
    if (lo < earliest) {
      send(req, res, 400, sfError('INVALID_REPLICATION_DATE', deleted ? 'startDate is before earliestDateAvailable' : 'startDate cannot be more than 30 days ago'));
      return null;
    }
    // An end in the current minute or later covers everything up to now.
    const latest = hi >= Math.floor(now / 60000) * 60000 ? now : hi;
    return { lo, hi: latest, earliest, latestCovered: fmtDateTime(Math.floor(latest / 60000) * 60000) };
  }

  // ---------------------------------------------------------------- sObject collections
  function collectionCreate(req, res, auth, body, v) {
    if (!body || typeof body !== 'object' || !Array.isArray(body.records)) {
      return send(req, res, 400, sfError('JSON_PARSER_ERROR', 'Cannot deserialize instance of sObject Collection request: records is required'));
    }
    const recs = body.records;
    if (recs.length > 200) {
      return send(req, res, 400, sfError('EXCEEDED_ID_LIMIT', 'record limit reached. cannot submit more than 200 records into this call'));
    }
    const allOrNone = body.allOrNone === true;
    const preps = [];
    for (const r of recs) {
      const type = r && r.attributes && r.attributes.type;
      if (!type) return send(req, res, 400, sfError('INVALID_TYPE', 'Must send a concrete entity type.'));
      const obj = getObject(type);
      if (!obj) return send(req, res, 400, sfError('INVALID_TYPE', `sObject type '${type}' is not supported.`));
      if (r.Id !== undefined || r.id !== undefined) {
        preps.push({ obj, error: { code: 'INVALID_FIELD_FOR_INSERT_UPDATE', message: 'cannot specify Id in an insert call', fields: ['Id'] } });
        continue;
      }
      preps.push({ obj, prep: allOrNone ? store.prepareCreate(obj, r, writeCtx(req, auth, v)) : null, rec: r });
    }
    if (allOrNone) {
      const failed = preps.some((p) => p.error || p.prep.error);
      if (failed) {
        return send(req, res, 200, preps.map((p) => ({
          success: false,
          errors: [p.error || p.prep.error ? itemError(p.error || p.prep.error) : ROLLED_BACK],
        })));
      }
      return send(req, res, 200, preps.map((p) => ({ id: store.commitCreate(p.obj, p.prep).Id, success: true, errors: [] })));
    }
    return send(req, res, 200, preps.map((p) => {
      if (p.error) return { success: false, errors: [itemError(p.error)] };
      const r = store.create(p.obj, p.rec, writeCtx(req, auth, v));
      if (r.error) return { success: false, errors: [itemError(r.error)] };
      return { id: r.rec.Id, success: true, errors: [] };
    }));
  }

  const ROLLED_BACK = {
    statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK',
    message: 'Record rolled back because not all records were valid and the request was using AllOrNone header',
    fields: [],
  };

  function collectionUpdate(req, res, auth, body, v) {
    if (!body || typeof body !== 'object' || !Array.isArray(body.records)) {
      return send(req, res, 400, sfError('JSON_PARSER_ERROR', 'Cannot deserialize instance of sObject Collection request: records is required'));
    }
    const recs = body.records;
    if (recs.length > 200) {
      return send(req, res, 400, sfError('EXCEEDED_ID_LIMIT', 'record limit reached. cannot submit more than 200 records into this call'));
    }
    const allOrNone = body.allOrNone === true;
    const items = [];
    for (const r of recs) {
      const type = r && r.attributes && r.attributes.type;
      if (!type) return send(req, res, 400, sfError('INVALID_TYPE', 'Must send a concrete entity type.'));
      const obj = getObject(type);
      if (!obj) return send(req, res, 400, sfError('INVALID_TYPE', `sObject type '${type}' is not supported.`));
      const idKey = Object.keys(r).find((k) => k.toLowerCase() === 'id');
      const idText = idKey ? r[idKey] : null;
      if (!idText) {
        items.push({ obj, id: undefined, error: { code: 'MISSING_ARGUMENT', message: 'Id not specified in an update call', fields: [] } });
        continue;
      }
      const fields = { ...r };
      delete fields[idKey];
      items.push({ obj, idText: String(idText), fields });
    }
    const run = (it) => {
      if (it.error) return { error: it.error };
      const prep = store.prepareUpdate(it.obj, it.idText, it.fields, writeCtx(req, auth, v));
      if (prep.error) {
        // Record-level lookups are reported per record, never as HTTP 404.
        const e = prep.error.code === 'NOT_FOUND'
          ? { code: 'INVALID_CROSS_REFERENCE_KEY', message: 'invalid cross reference id', fields: [] }
          : prep.error;
        return { error: e };
      }
      return { prep };
    };
    const idOf = (it) => (it.idText ? normalizeId(it.idText) || it.idText : undefined);
    if (allOrNone) {
      const results = items.map(run);
      if (results.some((r) => r.error)) {
        return send(req, res, 200, items.map((it, i) => ({
          id: idOf(it),
          success: false,
          errors: [results[i].error ? itemError(results[i].error) : ROLLED_BACK],
        })));
      }
      return send(req, res, 200, items.map((it, i) => ({ id: store.commitUpdate(it.obj, results[i].prep).Id, success: true, errors: [] })));
    }
    return send(req, res, 200, items.map((it) => {
      const r = run(it);
      if (r.error) return { id: idOf(it), success: false, errors: [itemError(r.error)] };
      return { id: store.commitUpdate(it.obj, r.prep).Id, success: true, errors: [] };
    }));
  }

  function collectionDelete(req, res, auth) {
    const idsParam = req.params.get('ids');
    if (!idsParam) return send(req, res, 400, sfError('MISSING_ARGUMENT', 'ids parameter is required'));
    const ids = idsParam.split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length > 200) {
      return send(req, res, 400, sfError('EXCEEDED_ID_LIMIT', 'record limit reached. cannot submit more than 200 records into this call'));
    }
    const allOrNone = req.params.get('allOrNone') === 'true';
    const checks = ids.map((idText) => {
      const id = normalizeId(idText);
      if (!id) return { idText, error: { code: 'MALFORMED_ID', message: `malformed id ${idText}`, fields: [] } };
      const obj = SCHEMA.byPrefix.get(id.slice(0, 3));
      const rec = obj && store.get(obj.name, id);
      if (!rec) return { idText: id, error: { code: 'INVALID_CROSS_REFERENCE_KEY', message: 'invalid cross reference id', fields: [] } };
      if (rec.IsDeleted) return { idText: id, error: { code: 'ENTITY_IS_DELETED', message: 'entity is deleted', fields: [] } };
      if (!obj.deletable) return { idText: id, error: { code: 'INVALID_TYPE_FOR_OPERATION', message: `entity type cannot be deleted: ${obj.name}`, fields: [] } };
      const blocked = store.writeBlocked(id);
      if (blocked) return { idText: id, error: blocked };
      return { idText: id, obj };
    });
    if (allOrNone && checks.some((c) => c.error)) {
      return send(req, res, 200, checks.map((c) => ({ id: c.idText, success: false, errors: [c.error ? itemError(c.error) : ROLLED_BACK] })));
    }
    return send(req, res, 200, checks.map((c) => {
      if (c.error) return { id: c.idText, success: false, errors: [itemError(c.error)] };
      const cur = store.get(c.obj.name, c.idText);
      if (!cur || cur.IsDeleted) return { id: c.idText, success: false, errors: [itemError({ code: 'ENTITY_IS_DELETED', message: 'entity is deleted' })] };
      store.commitDelete(c.obj, c.idText, auth.userId);
      return { id: c.idText, success: true, errors: [] };
    }));
  }

  function collectionRetrieve(req, res, obj, v, idsList, fieldList) {
    if (!idsList || !idsList.length) return send(req, res, 400, sfError('MISSING_ARGUMENT', 'ids parameter is required'));
    if (!fieldList) return send(req, res, 400, sfError('MISSING_ARGUMENT', 'fields parameter is required'));
    if (idsList.length > 2000) return send(req, res, 400, sfError('EXCEEDED_ID_LIMIT', 'record limit reached. cannot submit more than 2000 records into this call'));
    const rf = resolveFieldList(obj, fieldList);
    if (rf.error) return send(req, res, 400, sfError('INVALID_FIELD', rf.error));
    const out = idsList.map((idText) => {
      const id = normalizeId(String(idText));
      const rec = id && store.get(obj.name, id);
      if (!rec || rec.IsDeleted) return null;
      return recordJson(obj, rec, v, rf.fields);
    });
    return send(req, res, 200, out);
  }

  // ---------------------------------------------------------------- data API router
  function dataApi(req, res, parts, auth) {
    // parts: path segments after /services/data/ ; parts[0] = vNN.N
    const vm = /^v(\d+)\.0$/.exec(parts[0]);
    const vn = vm ? Number(vm[1]) : 0;
    if (vn < MIN_VERSION || vn > MAX_VERSION) {
      req.fakeRoute = `${req.method} /services/data/{unknown version}`;
      return notFound(req, res);
    }
    const v = `${vn}.0`;
    const rest = parts.slice(1);
    if (rest.length && rest[rest.length - 1] === '') rest.pop(); // trailing slash
    const m = req.method;
    const route = (t) => {
      req.fakeRoute = `${m} /services/data/vXX.X${t}`;
    };
    const allow = (list) => {
      if (list.includes(m) || (m === 'HEAD' && list.includes('GET'))) return true;
      methodNotAllowed(req, res, list.includes('GET') ? ['HEAD', ...list] : list);
      return false;
    };

    if (rest.length === 0) {
      route('/');
      if (!allow(['GET'])) return;
      const b = `/services/data/v${v}`;
      return send(req, res, 200, {
        tooling: `${b}/tooling`, metadata: `${b}/metadata`, eclair: `${b}/eclair`, folders: `${b}/folders`,
        limits: `${b}/limits`, sobjects: `${b}/sobjects`, query: `${b}/query`, queryAll: `${b}/queryAll`,
        composite: `${b}/composite`, search: `${b}/search`, recent: `${b}/recent`, tabs: `${b}/tabs`,
        identity: `${baseUrl}/id/${ORG_ID}/${auth.userId}`,
      });
    }
    const [head, ...tail] = rest;

    if (head === 'limits' && tail.length === 0) {
      route('/limits');
      if (!allow(['GET'])) return;
      return send(req, res, 200, {
        DailyApiRequests: { Max: config.api_daily_limit, Remaining: Math.max(0, config.api_daily_limit - state.apiUsage) },
        ConcurrentAsyncGetReportInstances: { Max: 200, Remaining: 200 },
        DailyBulkApiBatches: { Max: 15000, Remaining: 15000 },
        DataStorageMB: { Max: 5, Remaining: 5 },
        HourlyODataCallout: { Max: 20000, Remaining: 20000 },
      });
    }

    if ((head === 'query' || head === 'queryAll') && tail.length <= 1) {
      if (tail.length === 0) {
        route(`/${head}`);
        if (!allow(['GET'])) return;
        if (req.params.has('explain')) return send(req, res, 400, sfError('MALFORMED_QUERY', 'explain is not supported by salesforce-fake'));
        return runQuery(req, res, auth, v, head === 'queryAll');
      }
      route(`/${head}/{locator}`);
      if (!allow(['GET'])) return;
      return queryMore(req, res, auth, v, tail[0]);
    }

    if (head === 'composite' && tail[0] === 'sobjects') {
      if (tail.length === 1) {
        route('/composite/sobjects');
        if (!allow(['POST', 'PATCH', 'DELETE'])) return;
        if (m === 'DELETE') return collectionDelete(req, res, auth);
        const pb = parseJsonBody(req, res, req.bodyText);
        if (pb.failed) return;
        return m === 'POST' ? collectionCreate(req, res, auth, pb.value, v) : collectionUpdate(req, res, auth, pb.value, v);
      }
      if (tail.length === 2) {
        route('/composite/sobjects/{sobject}');
        const obj = getObject(tail[1]);
        if (!obj) return notFound(req, res);
        if (!allow(['GET', 'POST'])) return;
        if (m === 'POST') {
          const pb = parseJsonBody(req, res, req.bodyText);
          if (pb.failed) return;
          const b = pb.value || {};
          const fl = Array.isArray(b.fields) ? b.fields.join(',') : null;
          return collectionRetrieve(req, res, obj, v, Array.isArray(b.ids) ? b.ids : null, fl);
        }
        const ids = req.params.get('ids');
        return collectionRetrieve(req, res, obj, v, ids ? ids.split(',') : null, req.params.get('fields'));
      }
      route('/composite/sobjects/{...}');
      return notFound(req, res);
    }

    if (head === 'sobjects') {
      if (tail.length === 0) {
        route('/sobjects');
        if (!allow(['GET'])) return;
        return send(req, res, 200, { encoding: 'UTF-8', maxBatchSize: 200, sobjects: SCHEMA.list.map((o) => globalEntry(o, v)) });
      }
      const obj = getObject(tail[0]);
      if (!obj) {
        route('/sobjects/{unknown}');
        return notFound(req, res);
      }
      if (tail.length === 1) {
        route('/sobjects/{sobject}');
        const allowed = obj.createable ? ['GET', 'POST'] : ['GET'];
        if (!allow(allowed)) return;
        if (m === 'POST') return createOne(req, res, auth, obj, v);
        const recent = store.all(obj.name).filter((r) => !r.IsDeleted).slice(-3).reverse();
        return send(req, res, 200, {
          objectDescribe: globalEntry(obj, v),
          recentItems: recent.map((r) => ({ attributes: { type: obj.name, url: `/services/data/v${v}/sobjects/${obj.name}/${r.Id}` }, Id: r.Id, Name: r.Name ?? null })),
        });
      }
      const sub = tail[1];
      if (tail.length === 2 && sub === 'describe') {
        route('/sobjects/{sobject}/describe');
        if (!allow(['GET'])) return;
        return send(req, res, 200, describe(obj, v));
      }
      if (tail.length === 2 && (sub === 'updated' || sub === 'deleted')) {
        route(`/sobjects/{sobject}/${sub}`);
        if (!allow(['GET'])) return;
        const r = replicationRange(req, res, sub === 'deleted');
        if (!r) return;
        if (sub === 'updated') return send(req, res, 200, { ids: store.updatedIds(obj, r.lo, r.hi), latestDateCovered: r.latestCovered });
        return send(req, res, 200, {
          deletedRecords: store.deletedRecords(obj, r.lo, r.hi),
          earliestDateAvailable: fmtDateTime(r.earliest),
          latestDateCovered: r.latestCovered,
        });
      }
      if (tail.length === 2) {
        route('/sobjects/{sobject}/{id}');
        const allowed = ['GET'];
        if (obj.updateable) allowed.push('PATCH');
        if (obj.deletable) allowed.push('DELETE');
        if (!allow(allowed)) return;
        if (!looksLikeId(sub)) {
          return send(req, res, 404, sfError('NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${sub}`));
        }
        if (m === 'GET' || m === 'HEAD') return retrieveOne(req, res, obj, v, sub);
        if (m === 'PATCH') return updateOne(req, res, auth, obj, sub, v);
        return deleteOne(req, res, auth, obj, sub);
      }
      if (tail.length === 3) {
        // /sobjects/{sobject}/{externalIdField}/{value}: no external id fields in this org.
        route('/sobjects/{sobject}/{field}/{value}');
        const f = obj.fieldByLower.get(sub.toLowerCase());
        if (!f || !f.externalId) {
          return send(req, res, 404, sfError('NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${sub}`));
        }
      }
      route('/sobjects/{sobject}/{...}');
      return notFound(req, res);
    }

    route(`/${head}/{...}`);
    return notFound(req, res);
  }

  // What a create or update needs to know of its request: the user, the raw body (for parser
  // error positions), the API version (for record URLs in errors) and whether the
  // Sforce-Duplicate-Rule-Header lets a save go through a duplicate rule (allowSave=true).
  function writeCtx(req, auth, v) {
    const dup = String(req.headers['sforce-duplicate-rule-header'] || '');
    return { userId: auth.userId, raw: req.bodyText, version: v, allowSave: /(^|[;,\s])allowSave\s*=\s*true\b/i.test(dup) };
  }

  function createOne(req, res, auth, obj, v) {
    const pb = parseJsonBody(req, res, req.bodyText);
    if (pb.failed) return;
    const r = store.create(obj, pb.value === undefined ? {} : pb.value, writeCtx(req, auth, v));
    if (r.error) return storeError(req, res, r.error);
    return send(req, res, 201, { id: r.rec.Id, success: true, errors: [] }, {
      Location: `/services/data/v${v}/sobjects/${obj.name}/${r.rec.Id}`,
    });
  }

  function retrieveOne(req, res, obj, v, idText) {
    const id = normalizeId(idText);
    const rec = id && store.get(obj.name, id);
    if (!rec || rec.IsDeleted) return notFound(req, res);
    let fields = null;
    if (req.params.has('fields')) {
      const rf = resolveFieldList(obj, req.params.get('fields'));
      if (rf.error) return send(req, res, 400, sfError('INVALID_FIELD', rf.error));
      fields = rf.fields.length ? rf.fields : null;
    }
    const lm = new Date(rec.LastModifiedDate.replace('+0000', 'Z')).toUTCString();
    return send(req, res, 200, recordJson(obj, rec, v, fields), { 'Last-Modified': lm });
  }

  function updateOne(req, res, auth, obj, idText, v) {
    const pb = parseJsonBody(req, res, req.bodyText);
    if (pb.failed) return;
    const r = store.update(obj, idText, pb.value === undefined ? {} : pb.value, writeCtx(req, auth, v));
    if (r.error) return storeError(req, res, r.error);
    return send(req, res, 204, null);
  }

  function deleteOne(req, res, auth, obj, idText) {
    const r = store.delete(obj, idText, auth.userId);
    if (r.error) return storeError(req, res, r.error);
    return send(req, res, 204, null);
  }

  // ---------------------------------------------------------------- control API
  const CONFIG_TYPES = {
    latency_ms: 'number', fail_rate: 'number', fail_status: 'number', fail_next: 'number',
    drop_rate: 'number', drop_next: 'number', timeout_rate: 'number', timeout_next: 'number',
    timeout_hold_ms: 'number', fault_path: 'string|null', rate_limit_per_sec: 'number',
    api_daily_limit: 'number', enforce_daily_limit: 'boolean', token_ttl_sec: 'number',
    max_query_cursors: 'number', query_cursor_ttl_sec: 'number', clock_offset_ms: 'number',
    gzip: 'boolean', client_id: 'string', client_secret: 'string', refresh_token: 'string',
    username: 'string', password: 'string', expire_tokens: 'boolean', fault_seed: 'number',
    validation_rules: 'array', readonly_records: 'array', locked_records: 'array', duplicate_rules: 'array',
    unshared_records: 'array', api_disabled: 'boolean',
  };

  function control(req, res, path) {
    const json = (status, body) => send(req, res, status, body);
    let body = {};
    if (req.bodyText && req.bodyText.trim()) {
      try {
        body = JSON.parse(req.bodyText);
      } catch (e) {
        return json(400, { error: `invalid JSON: ${e.message}` });
      }
    }
    switch (`${req.method} ${path}`) {
      case 'GET /_fake/health':
        return json(200, { ok: true });
      case 'GET /_fake/config':
        return json(200, config);
      case 'POST /_fake/config': {
        const bad = [];
        for (const [k, val] of Object.entries(body || {})) {
          const t = CONFIG_TYPES[k];
          const ok = t && (t === 'string|null' ? val === null || typeof val === 'string'
            : t === 'array' ? Array.isArray(val) : typeof val === t);
          if (!ok) bad.push(k);
        }
        if (bad.length) return json(400, { error: `unknown or mistyped config keys: ${bad.join(', ')}`, known: CONFIG_TYPES });
        let policy = store.policy;
        if (['validation_rules', 'readonly_records', 'locked_records', 'duplicate_rules', 'unshared_records'].some((k) => k in body)) {
          try {
            policy = store.compilePolicy({ ...config, ...body });
          } catch (e) {
            return json(400, { error: e.message });
          }
        }
        if (body.fault_path !== undefined && body.fault_path !== null) {
          try {
            faultRe = new RegExp(body.fault_path);
          } catch (e) {
            return json(400, { error: `fault_path: ${e.message}` });
          }
        } else if (body.fault_path === null) faultRe = null;
        if (body.fault_seed !== undefined) {
          let a = body.fault_seed >>> 0;
          rng = () => {
            a = (a + 0x6d2b79f5) >>> 0;
            let t = Math.imul(a ^ (a >>> 15), a | 1);
            t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
            return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
          };
        }
        let expired = 0;
        if (body.expire_tokens) {
          for (const t of state.tokens.values()) {
            if (!t.expired) expired++;
            t.expired = true;
          }
        }
        if (body.refresh_token !== undefined) state.refreshRevoked = false; // a new one issued
        const { expire_tokens: _e, fault_seed: _s, ...rest } = body;
        config = { ...config, ...rest };
        store.policy = policy;
        return json(200, { ...config, tokens_expired: expired });
      }
      case 'POST /_fake/expire_tokens': {
        let expired = 0;
        for (const t of state.tokens.values()) {
          if (!t.expired) expired++;
          t.expired = true;
        }
        return json(200, { tokens_expired: expired });
      }
      case 'GET /_fake/stats': {
        const records = {};
        for (const o of SCHEMA.list) records[o.name] = { live: store.count(o.name), deleted: store.count(o.name, true) - store.count(o.name) };
        return json(200, {
          ...state.stats,
          api_usage: state.apiUsage,
          creates: store.dml.creates,
          updates: store.dml.updates,
          deletes: store.dml.deletes,
          creates_total: Object.values(store.dml.creates).reduce((a, b) => a + b, 0),
          records,
          open_query_cursors: state.cursors.size,
          tokens: { issued: state.tokens.size, valid: [...state.tokens.values()].filter((t) => !t.expired).length },
        });
      }
      case 'GET /_fake/requests': {
        const n = Number(req.params.get('limit') || 200);
        return json(200, state.recent.slice(-n));
      }
      case 'POST /_fake/reset': {
        const counts = {};
        for (const k of ['accounts', 'contacts', 'leads', 'opportunities', 'products', 'invoices']) {
          if (body[k] !== undefined) counts[k] = Number(body[k]);
        }
        resetAll({ empty: !!body.empty, seed: body.seed, counts });
        // Without explicit counts the org returns to its startup state, --seed-contacts included.
        if (!body.empty && !Object.keys(counts).length && opts.seedContacts > 0) store.seedPast({ contacts: opts.seedContacts });
        return json(200, { ok: true, records: Object.fromEntries(SCHEMA.list.map((o) => [o.name, store.count(o.name)])) });
      }
      case 'POST /_fake/seed': {
        const counts = {};
        for (const k of ['accounts', 'contacts', 'leads', 'opportunities', 'products', 'invoices']) {
          if (body[k] !== undefined) {
            const n = Number(body[k]);
            if (!Number.isInteger(n) || n < 0 || n > 1000000) return json(400, { error: `${k} must be an integer 0..1000000` });
            counts[k] = n;
          }
        }
        const t0 = Date.now();
        const when = body.when === 'past' ? 'past' : 'now';
        const created = store.seedPast(counts, { when, days: body.days });
        return json(200, { created, ms: Date.now() - t0 });
      }
      default:
        return json(404, { error: `no control endpoint ${req.method} ${path}` });
    }
  }

  // ---------------------------------------------------------------- dispatcher
  function handle(req, res) {
    const url = req.url;
    const qi = url.indexOf('?');
    const path = qi < 0 ? url : url.slice(0, qi);
    req.query = qi < 0 ? '' : url.slice(qi + 1);
    req.params = new URLSearchParams(req.query);
    let decodedPath;
    try {
      decodedPath = decodeURIComponent(path);
    } catch {
      decodedPath = path;
    }

    if (decodedPath.startsWith('/_fake/')) return control(req, res, decodedPath.replace(/\/+$/, ''));

    state.stats.requests_total++;
    const parts = decodedPath.split('/').slice(1); // ['services','data','v59.0',...]
    const isData = parts[0] === 'services' && parts[1] === 'data' && parts.length > 2 && parts[2] !== '';
    if (isData) state.apiUsage++;

    // Fault injection (never for /_fake/).
    const faultable = !faultRe || faultRe.test(`${req.method} ${decodedPath}`);
    if (faultable) {
      if (config.timeout_next > 0 || (config.timeout_rate > 0 && rng() < config.timeout_rate)) {
        if (config.timeout_next > 0) config.timeout_next--;
        state.stats.faults.timed_out++;
        const sock = req.socket;
        state.held.add(sock);
        sock.once('close', () => state.held.delete(sock));
        const t = setTimeout(() => sock.destroy(), config.timeout_hold_ms);
        t.unref();
        return;
      }
      if (config.drop_next > 0 || (config.drop_rate > 0 && rng() < config.drop_rate)) {
        if (config.drop_next > 0) config.drop_next--;
        state.stats.faults.dropped++;
        req.socket.destroy();
        return;
      }
    }
    const go = () => {
      if (isData) {
        if (config.rate_limit_per_sec > 0) {
          const w = Math.floor(Date.now() / 1000);
          if (w !== state.rateWindow) {
            state.rateWindow = w;
            state.rateCount = 0;
          }
          if (++state.rateCount > config.rate_limit_per_sec) {
            state.stats.faults.rate_limited++;
            req.fakeRoute = `${req.method} <rate limited>`;
            return send(req, res, 403, sfError('REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.'));
          }
        }
        if (config.enforce_daily_limit && state.apiUsage > config.api_daily_limit) {
          state.stats.faults.daily_limited++;
          req.fakeRoute = `${req.method} <daily limit>`;
          return send(req, res, 403, sfError('REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.'));
        }
      }
      if (faultable && (config.fail_next > 0 || (config.fail_rate > 0 && rng() < config.fail_rate))) {
        if (config.fail_next > 0) config.fail_next--;
        state.stats.faults.failed++;
        req.fakeRoute = `${req.method} <injected failure>`;
        const st = config.fail_status;
        const body = st === 503
          ? sfError('SERVER_UNAVAILABLE', 'Server temporarily unavailable. Please try again later.')
          : st === 502 || st === 504
            ? `<html><head><title>${st}</title></head><body>Bad gateway</body></html>`
            : sfError('UNKNOWN_EXCEPTION', `An unexpected error occurred. Please include this ErrorId if you contact support: ${crypto.randomInt(1e9)}-${crypto.randomInt(1e5)} (${-crypto.randomInt(1e9)})`);
        return send(req, res, st, body, typeof body === 'string' ? { 'Content-Type': 'text/html' } : {});
      }
      try {
        route(req, res, parts);
      } catch (e) {
        process.stderr.write(`salesforce-fake: internal error on ${req.method} ${req.url}: ${e.stack}\n`);
        send(req, res, 500, sfError('UNKNOWN_EXCEPTION', `salesforce-fake internal error: ${e.message}`));
      }
    };
    if (config.latency_ms > 0 && faultable) setTimeout(go, config.latency_ms);
    else go();
  }

  function route(req, res, parts) {
    if (parts[0] === 'services' && parts[1] === 'oauth2') {
      req.fakeRoute = `${req.method} /services/oauth2/${parts[2] || ''}`;
      if (parts[2] === 'token' && parts.length === 3) return oauthToken(req, res, req.bodyText);
      if (parts[2] === 'revoke' && parts.length === 3) return oauthRevoke(req, res, req.bodyText);
      if (parts[2] === 'userinfo' && parts.length === 3) {
        const auth = authenticate(req);
        if (!auth) return send(req, res, 403, 'Bad_OAuth_Token', { 'Content-Type': 'text/plain' });
        return identity(req, res, auth);
      }
      return notFound(req, res);
    }
    if (parts[0] === 'services' && parts[1] === 'data') {
      if (parts.length === 2 || (parts.length === 3 && parts[2] === '')) {
        req.fakeRoute = `${req.method} /services/data/`;
        if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(req, res, ['HEAD', 'GET']);
        return send(req, res, 200, versions());
      }
      const auth = authenticate(req);
      if (!auth) {
        req.fakeRoute = `${req.method} <invalid session>`;
        state.stats.faults.expired_token++;
        return send(req, res, 401, sfError('INVALID_SESSION_ID', 'Session expired or invalid'), { 'WWW-Authenticate': 'Token' });
      }
      if (config.api_disabled) {
        // an org whose edition or profile lacks "API Enabled": every REST call is refused
        req.fakeRoute = `${req.method} <api disabled>`;
        return send(req, res, 403, sfError('API_DISABLED_FOR_ORG', 'The REST API is not enabled for this Organization.'));
      }
      return dataApi(req, res, parts.slice(2), auth);
    }
    if (parts[0] === 'id' && parts.length === 3) {
      req.fakeRoute = `${req.method} /id/{org}/{user}`;
      const auth = authenticate(req, true);
      if (!auth) return send(req, res, 403, 'Bad_OAuth_Token', { 'Content-Type': 'text/plain' });
      return identity(req, res, auth);
    }
    req.fakeRoute = `${req.method} <unmatched>`;
    return notFound(req, res);
  }

  function countRoute(req, res) {
    const r = req.fakeRoute || `${req.method} <unmatched>`;
    state.stats.by_route[r] = (state.stats.by_route[r] || 0) + 1;
    state.stats.by_status[res.statusCode] = (state.stats.by_status[res.statusCode] || 0) + 1;
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 50 * 1024 * 1024) {
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      req.bodyText = chunks.length ? Buffer.concat(chunks).toString('utf8') : '';
      res.on('finish', () => {
        if (!req.url.startsWith('/_fake/')) countRoute(req, res);
      });
      handle(req, res);
    });
  });
  server.keepAliveTimeout = 60000;
  server.headersTimeout = 65000;

  if (opts.log) {
    server.on('request', (req, res) => {
      const t0 = Date.now();
      res.on('finish', () => process.stderr.write(`${new Date().toISOString()} ${req.method} ${req.url} ${res.statusCode} ${Date.now() - t0}ms\n`));
    });
  }

  return {
    server,
    store,
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          const a = server.address();
          const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          baseUrl = `http://${host}:${a.port}`;
          resolve(baseUrl);
        });
      });
    },
    get url() {
      return baseUrl;
    },
    close() {
      for (const s of state.held) s.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { createFake, STATIC_TOKEN, ORG_ID, DEFAULT_CONFIG };

if (require.main === module) {
  const o = parseArgs(process.argv.slice(2));
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    process.stderr.write('salesforce-fake: --port must be 0..65535\n');
    process.exit(2);
  }
  const fake = createFake(o);
  fake
    .listen()
    .then((url) => {
      process.stdout.write(`salesforce-fake listening on ${url}\n`);
    })
    .catch((e) => {
      process.stderr.write(`salesforce-fake: ${e.message}\n`);
      process.exit(1);
    });
  const stop = () => fake.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
