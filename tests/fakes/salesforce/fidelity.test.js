'use strict';
// Fidelity tests: drive the fake with jsforce (a Salesforce client nobody here wrote) and with
// plain HTTP, and check that what comes back is what Salesforce's REST API returns.
//
//   node --test --test-reporter=tap fidelity.test.js

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const http = require('node:http');
const crypto = require('node:crypto');
const path = require('node:path');
const jsforce = require('jsforce');

const STATIC_TOKEN = '00D000000000001!fake';
const VERSION = '59.0';
let child;
let URL_;
let startupMs;

async function ctl(p, body) {
  const res = await fetch(URL_ + p, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function api(method, p, { body, token = STATIC_TOKEN, headers = {} } = {}) {
  const res = await fetch(URL_ + p, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

const conn = () => new jsforce.Connection({ instanceUrl: URL_, accessToken: STATIC_TOKEN, version: VERSION });

async function rejects(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected an error');
}

before(async () => {
  const t0 = Date.now();
  child = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--port', '0', '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => child.kill('SIGTERM')); // even if the run is cut short
  const line = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf);
    });
    child.once('exit', (c) => reject(new Error(`fake exited ${c}`)));
    setTimeout(() => reject(new Error('fake did not start in 10s')), 10000).unref();
  });
  startupMs = Date.now() - t0;
  const m = /^salesforce-fake listening on (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(line);
  assert.ok(m, `unexpected startup line: ${JSON.stringify(line)}`);
  URL_ = m[1];
});

after(() => {
  if (child) child.kill('SIGTERM');
});

test('starts quickly and prints exactly one line', (t) => {
  assert.ok(startupMs < 3000, `startup took ${startupMs} ms`);
  t.diagnostic(`startup ${startupMs} ms (process spawn to listening line)`);
});

test('GET /services/data/ lists versions; unknown version is 404 NOT_FOUND', async () => {
  const r = await api('GET', '/services/data/', { token: null });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.find((x) => x.version === '59.0'), { label: "Winter '24", url: '/services/data/v59.0', version: '59.0' });
  assert.match(r.headers.get('sforce-limit-info'), /^api-usage=\d+\/15000$/);
  const bad = await api('GET', '/services/data/v99.0/sobjects');
  assert.equal(bad.status, 404);
  assert.deepEqual(bad.json, [{ message: 'The requested resource does not exist', errorCode: 'NOT_FOUND' }]);
  const bad2 = await api('GET', '/services/data/v39.0/sobjects');
  assert.equal(bad2.status, 404);
});

test('Sforce-Limit-Info on every response; api-usage counts up', async () => {
  const a = await api('GET', '/services/data/v59.0/limits');
  const b = await api('GET', '/services/data/v59.0/sobjects/Nope/describe');
  const c = await api('GET', '/services/data/v59.0/limits', { token: 'bogus' });
  const n = (r) => Number(/api-usage=(\d+)\//.exec(r.headers.get('sforce-limit-info'))[1]);
  assert.equal(b.status, 404);
  assert.equal(c.status, 401);
  assert.ok(n(b) > n(a) && n(c) > n(b));
  assert.equal(a.json.DailyApiRequests.Max, 15000);
});

test('401 INVALID_SESSION_ID for missing or unknown token', async () => {
  for (const token of [null, 'nope']) {
    const r = await api('GET', '/services/data/v59.0/sobjects', { token });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
  }
});

test('jsforce: create / retrieve / update / destroy Contact', async () => {
  const c = conn();
  const acct = await c.sobject('Account').create({ Name: 'Fidelity Test Co' });
  assert.equal(acct.success, true);
  assert.match(acct.id, /^001[A-Za-z0-9]{15}$/);
  const ret = await c.sobject('Contact').create({ FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@example.com', AccountId: acct.id });
  assert.deepEqual(Object.keys(ret).sort(), ['errors', 'id', 'success']);
  assert.equal(ret.success, true);
  assert.deepEqual(ret.errors, []);
  assert.match(ret.id, /^003[A-Za-z0-9]{15}$/);

  const rec = await c.sobject('Contact').retrieve(ret.id);
  assert.deepEqual(rec.attributes, { type: 'Contact', url: `/services/data/v${VERSION}/sobjects/Contact/${ret.id}` });
  assert.equal(rec.Id, ret.id);
  assert.equal(rec.Name, 'Ada Lovelace');
  assert.equal(rec.IsDeleted, false);
  assert.equal(rec.AccountId, acct.id);
  for (const f of ['CreatedDate', 'LastModifiedDate', 'SystemModstamp']) {
    assert.match(rec[f], /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$/);
  }

  // 15-char ids are accepted and normalised
  const rec15 = await c.sobject('Contact').retrieve(ret.id.slice(0, 15));
  assert.equal(rec15.Id, ret.id);

  const upd = await c.sobject('Contact').update({ Id: ret.id, Title: 'Analyst', email: 'ada.l@example.com' });
  assert.deepEqual(upd, { id: ret.id, success: true, errors: [] }); // 204 -> jsforce's noContentResponse
  const rec2 = await c.sobject('Contact').retrieve(ret.id, { fields: ['Title', 'Email'] });
  assert.equal(rec2.Title, 'Analyst');
  assert.equal(rec2.Email, 'ada.l@example.com');

  const raw = await api('PATCH', `/services/data/v59.0/sobjects/Contact/${ret.id}`, { body: { Department: 'R&D' } });
  assert.equal(raw.status, 204);
  assert.equal(raw.json, null);

  const del = await c.sobject('Contact').destroy(ret.id);
  assert.deepEqual(del, { id: ret.id, success: true, errors: [] });
  const gone = await rejects(c.sobject('Contact').retrieve(ret.id));
  assert.equal(gone.errorCode, 'NOT_FOUND');
  assert.equal(gone.message, 'The requested resource does not exist');
  const again = await api('DELETE', `/services/data/v59.0/sobjects/Contact/${ret.id}`);
  assert.equal(again.status, 404);
  assert.equal(again.json[0].errorCode, 'ENTITY_IS_DELETED');
});

test('jsforce: errors surface with Salesforce errorCode and message', async () => {
  const c = conn();
  let e = await rejects(c.sobject('Contact').create({ LastName: 'X', Email: 'x' }));
  assert.equal(e.errorCode, 'INVALID_EMAIL_ADDRESS');
  assert.equal(e.message, 'Email: invalid email address: x');
  assert.deepEqual(e.data.fields, ['Email']);

  e = await rejects(c.sobject('Contact').create({ FirstName: 'NoLast' }));
  assert.equal(e.errorCode, 'REQUIRED_FIELD_MISSING');
  assert.equal(e.message, 'Required fields are missing: [LastName]');
  assert.deepEqual(e.data.fields, ['LastName']);

  e = await rejects(c.sobject('Opportunity').create({ Amount: 5 }));
  assert.equal(e.errorCode, 'REQUIRED_FIELD_MISSING');
  assert.equal(e.message, 'Required fields are missing: [Name, StageName, CloseDate]');

  e = await rejects(c.sobject('Account').create({}));
  assert.equal(e.message, 'Required fields are missing: [Name]');

  e = await rejects(c.sobject('Contact').retrieve('003000000000000AAA'));
  assert.equal(e.errorCode, 'NOT_FOUND');

  e = await rejects(c.query('SELEC Id FROM Contact'));
  assert.equal(e.errorCode, 'MALFORMED_QUERY');
  assert.match(e.message, /ERROR at Row:1:Column:1\nunexpected token: 'SELEC'$/);

  e = await rejects(c.sobject('Contact').create({ LastName: 'X', Foo: 1 }));
  assert.equal(e.errorCode, 'INVALID_FIELD');
  assert.equal(e.message, "No such column 'Foo' on sobject of type Contact");

  e = await rejects(c.query('SELECT Id, Foo FROM Contact'));
  assert.equal(e.errorCode, 'INVALID_FIELD');
  assert.match(e.message, /No such column 'Foo' on entity 'Contact'/);

  e = await rejects(c.query('SELECT Id FROM Nope__c'));
  assert.equal(e.errorCode, 'INVALID_TYPE');

  e = await rejects(c.sobject('Contact').create({ LastName: 'x'.repeat(81) }));
  assert.equal(e.errorCode, 'STRING_TOO_LONG');
  assert.match(e.message, /^Last Name: data value too large: x+ \(max length=80\)$/);

  e = await rejects(c.sobject('Invoice__c').create({ Status__c: 'Bogus' }));
  assert.equal(e.errorCode, 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST');
  assert.equal(e.message, 'Status: bad value for restricted picklist field: Bogus');

  e = await rejects(c.sobject('Contact').create({ LastName: 'X', AccountId: 'not-an-id' }));
  assert.equal(e.errorCode, 'MALFORMED_ID');

  e = await rejects(c.sobject('Contact').create({ LastName: 'X', AccountId: '001000000000000AAA' }));
  assert.equal(e.errorCode, 'INVALID_CROSS_REFERENCE_KEY');

  e = await rejects(c.sobject('Contact').create({ LastName: 'X', Name: 'Full Name' }));
  assert.equal(e.errorCode, 'INVALID_FIELD_FOR_INSERT_UPDATE');
  assert.deepEqual(e.data.fields, ['Name']);

  e = await rejects(c.sobject('User').create({ LastName: 'X' }));
  assert.equal(e.errorCode, 'METHOD_NOT_ALLOWED');

  const r = await api('POST', '/services/data/v59.0/sobjects/Contact', { body: '{"LastName": ' });
  assert.equal(r.status, 400);
  assert.equal(r.json[0].errorCode, 'JSON_PARSER_ERROR');
});

test('jsforce: a unique External ID, validation rules, read-only and locked records', async () => {
  const c = conn();
  const [a, b] = (await c.query('SELECT Id FROM Contact ORDER BY Id LIMIT 2')).records.map((r) => r.Id);
  const ext = (await c.sobject('Contact').describe()).fields.find((f) => f.name === 'External_Id__c');
  assert.ok(ext.externalId && ext.unique && ext.idLookup && !ext.caseSensitive && ext.updateable);
  await c.sobject('Contact').update({ Id: a, External_Id__c: 'EXT-79' });
  let e = await rejects(c.sobject('Contact').update({ Id: b, External_Id__c: 'ext-79' }));
  assert.equal(e.errorCode, 'DUPLICATE_VALUE');
  assert.equal(e.message, `duplicate value found: External_Id__c duplicates value on record with id: ${a}`);
  assert.deepEqual(e.data.fields, []);
  e = await rejects(c.sobject('Contact').create({ LastName: 'Dup', External_Id__c: 'EXT-79' }));
  assert.equal(e.errorCode, 'DUPLICATE_VALUE');
  await c.sobject('Contact').update({ Id: a, External_Id__c: 'EXT-79', Title: 'same value, same record' });

  const bad = await fetch(`${URL_}/_fake/config`, { method: 'POST', body: JSON.stringify({ validation_rules: [{ object: 'Contact', field: 'Nope', pattern: 'x', message: 'm' }] }) });
  assert.equal(bad.status, 400);
  await ctl('/_fake/config', {
    validation_rules: [{ object: 'Contact', field: 'Title', pattern: '^Intern', message: 'Interns are not contacts' }],
    readonly_records: [a],
    locked_records: [b.slice(0, 15)],
  });
  e = await rejects(c.sobject('Contact').create({ LastName: 'Rule', Title: 'Intern (summer)' }));
  assert.equal(e.errorCode, 'FIELD_CUSTOM_VALIDATION_EXCEPTION');
  assert.equal(e.message, 'Interns are not contacts');
  assert.deepEqual(e.data.fields, ['Title']);
  e = await rejects(c.sobject('Contact').update({ Id: a, Title: 'Boss' }));
  assert.equal(e.errorCode, 'INSUFFICIENT_ACCESS_OR_READONLY');
  assert.equal(e.message, 'insufficient access rights on object id');
  assert.equal((await c.sobject('Contact').retrieve(a)).Id, a); // still readable
  e = await rejects(c.sobject('Contact').destroy(b));
  assert.equal(e.errorCode, 'UNABLE_TO_LOCK_ROW');
  assert.equal(e.message, `unable to obtain exclusive access to this record or 1 records: ${b}`);
  const res = await c.sobject('Contact').update([{ Id: a, Title: 'x' }, { Id: b, Title: 'y' }], { allOrNone: false });
  assert.deepEqual(res.map((r) => r.errors[0].statusCode), ['INSUFFICIENT_ACCESS_OR_READONLY', 'UNABLE_TO_LOCK_ROW']);
  await ctl('/_fake/reset', {});
});

test('duplicate rules: DUPLICATES_DETECTED with the matched records; allowSave=true passes', async () => {
  const [a, b] = (await api('GET', `/services/data/v${VERSION}/query?q=${encodeURIComponent('SELECT Id FROM Contact ORDER BY Id LIMIT 2')}`)).json.records.map((r) => r.Id);
  const bad = await fetch(`${URL_}/_fake/config`, { method: 'POST', body: JSON.stringify({ duplicate_rules: [{ object: 'Contact', fields: ['Nope'] }] }) });
  assert.equal(bad.status, 400);
  assert.equal((await api('PATCH', `/services/data/v${VERSION}/sobjects/Contact/${a}`, { body: { Email: 'Twin@Example.com' } })).status, 204);
  await ctl('/_fake/config', { duplicate_rules: [{ object: 'Contact', fields: ['Email'] }] });
  const create = await api('POST', `/services/data/v${VERSION}/sobjects/Contact`, { body: { LastName: 'Twin', Email: 'twin@EXAMPLE.com' } });
  assert.equal(create.status, 400);
  const [e] = create.json;
  assert.equal(e.errorCode, 'DUPLICATES_DETECTED');
  assert.equal(e.message, 'Use one of these records?');
  assert.deepEqual(e.fields, []);
  assert.equal(e.duplicateResult.allowSave, false);
  assert.equal(e.duplicateResult.duplicateRule, 'Standard_Contact_Duplicate_Rule');
  assert.equal(e.duplicateResult.duplicateRuleEntityType, 'Contact');
  const [m] = e.duplicateResult.matchResults;
  assert.equal(m.entityType, 'Contact');
  assert.equal(m.size, 1);
  assert.equal(m.matchRecords[0].record.Id, a);
  assert.equal(m.matchRecords[0].record.attributes.url, `/services/data/v${VERSION}/sobjects/Contact/${a}`);
  const update = await api('PATCH', `/services/data/v${VERSION}/sobjects/Contact/${b}`, { body: { Email: 'twin@example.com' } });
  assert.equal(update.status, 400);
  assert.equal(update.json[0].errorCode, 'DUPLICATES_DETECTED');
  // a save that does not touch the rule's fields, and the record itself, pass
  assert.equal((await api('PATCH', `/services/data/v${VERSION}/sobjects/Contact/${a}`, { body: { Title: 'still a', Email: 'twin@example.com' } })).status, 204);
  const coll = await api('POST', `/services/data/v${VERSION}/composite/sobjects`, { body: { allOrNone: false, records: [{ attributes: { type: 'Contact' }, LastName: 'Twin 2', Email: 'TWIN@example.com' }] } });
  assert.equal(coll.json[0].errors[0].statusCode, 'DUPLICATES_DETECTED');
  assert.equal(coll.json[0].errors[0].duplicateResult.matchResults[0].matchRecords[0].record.Id, a);
  const allowed = await api('POST', `/services/data/v${VERSION}/sobjects/Contact`, {
    body: { LastName: 'Twin', Email: 'twin@example.com' },
    headers: { 'Sforce-Duplicate-Rule-Header': 'allowSave=true' },
  });
  assert.equal(allowed.status, 201);
  await ctl('/_fake/reset', {});
});

test('unshared records and a disabled API: INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY, API_DISABLED_FOR_ORG', async () => {
  const q = (soql) => api('GET', `/services/data/v${VERSION}/query?q=${encodeURIComponent(soql)}`);
  const [contact] = (await q('SELECT Id FROM Contact ORDER BY Id LIMIT 1')).json.records.map((r) => r.Id);
  const [acct] = (await q('SELECT Id FROM Account ORDER BY Id LIMIT 1')).json.records.map((r) => r.Id);
  await ctl('/_fake/config', { unshared_records: [acct] });
  const r = await api('PATCH', `/services/data/v${VERSION}/sobjects/Contact/${contact}`, { body: { AccountId: acct } });
  assert.equal(r.status, 400);
  assert.equal(r.json[0].errorCode, 'INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY');
  assert.equal(r.json[0].message, `insufficient access rights on cross-reference id: ${acct.slice(0, 15)}`);
  assert.deepEqual(r.json[0].fields, []);
  assert.equal((await q(`SELECT Id FROM Account WHERE Id = '${acct}'`)).json.totalSize, 1); // reading is not restricted
  await ctl('/_fake/config', { unshared_records: [], api_disabled: true });
  for (const [m, p] of [['GET', `/services/data/v${VERSION}/sobjects/Contact/${contact}`], ['PATCH', `/services/data/v${VERSION}/sobjects/Contact/${contact}`]]) {
    const d = await api(m, p, { body: m === 'PATCH' ? { Title: 'x' } : undefined });
    assert.equal(d.status, 403);
    assert.deepEqual(d.json, [{ message: 'The REST API is not enabled for this Organization.', errorCode: 'API_DISABLED_FOR_ORG' }]);
  }
  assert.equal((await api('GET', '/services/data/')).status, 200); // the version list needs no session
  await ctl('/_fake/reset', {});
});

test('jsforce: OAuth2 refresh flow refreshes an expired token transparently', async () => {
  const c = new jsforce.Connection({
    oauth2: { loginUrl: URL_, clientId: 'fake-client-id', clientSecret: 'fake-client-secret' },
    instanceUrl: URL_,
    accessToken: 'expired-or-unknown',
    refreshToken: 'fake-refresh-token',
    version: VERSION,
  });
  const refreshed = [];
  c.on('refresh', (token) => refreshed.push(token));
  const res = await c.query('SELECT COUNT() FROM Account');
  assert.ok(res.totalSize >= 10);
  assert.equal(refreshed.length, 1);
  assert.match(c.accessToken, /^00D000000000001!/);
  assert.ok(c.userInfo.organizationId.startsWith('00D000000000001'));

  // Expire every token through the control API: the next call gets 401 and jsforce refreshes.
  const first = c.accessToken;
  const cfg = await ctl('/_fake/config', { expire_tokens: true });
  assert.ok(cfg.tokens_expired >= 1);
  const rec = await c.query('SELECT Id FROM Contact LIMIT 1');
  assert.equal(rec.records.length, 1);
  assert.equal(refreshed.length, 2);
  assert.notEqual(c.accessToken, first);
  const st = await api('GET', '/services/data/v59.0/limits', { token: first });
  assert.equal(st.status, 401);
  await ctl('/_fake/reset', {}); // brings the static token back for the other tests

  // A bad refresh token fails the way Salesforce's token endpoint does.
  const bad = new jsforce.Connection({
    oauth2: { loginUrl: URL_, clientId: 'fake-client-id', clientSecret: 'fake-client-secret' },
    instanceUrl: URL_,
    accessToken: 'stale',
    refreshToken: 'wrong',
    version: VERSION,
  });
  const e = await rejects(bad.query('SELECT Id FROM Account'));
  assert.match(e.message, /expired access\/refresh token/);
});

test('token endpoint: response shape, signature, error bodies', async () => {
  const form = (o) => new URLSearchParams(o).toString();
  let res = await fetch(`${URL_}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'refresh_token', client_id: 'fake-client-id', client_secret: 'fake-client-secret', refresh_token: 'fake-refresh-token' }),
  });
  let j = await res.json();
  assert.equal(res.status, 200);
  for (const k of ['access_token', 'instance_url', 'id', 'token_type', 'issued_at', 'signature']) assert.ok(k in j, k);
  assert.equal(j.token_type, 'Bearer');
  assert.equal(j.instance_url, URL_);
  assert.match(j.id, /\/id\/00D[A-Za-z0-9]{15}\/005[A-Za-z0-9]{15}$/);
  const sig = crypto.createHmac('sha256', 'fake-client-secret').update(j.id + j.issued_at).digest('base64');
  assert.equal(j.signature, sig);
  const who = await api('GET', new URL(j.id).pathname, { token: j.access_token });
  assert.equal(who.status, 200);
  assert.equal(who.json.organization_id, '00D' + j.id.split('/id/00D')[1].slice(0, 15));

  res = await fetch(`${URL_}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'refresh_token', client_id: 'fake-client-id', client_secret: 'fake-client-secret', refresh_token: 'nope' }),
  });
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), { error: 'invalid_grant', error_description: 'expired access/refresh token' });

  res = await fetch(`${URL_}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'refresh_token', client_id: 'other', refresh_token: 'fake-refresh-token' }),
  });
  j = await res.json();
  assert.equal(res.status, 400);
  assert.equal(j.error, 'invalid_client_id');

  // Revoking the refresh token revokes the access tokens issued from it; it grants no more.
  const granted = await (await fetch(`${URL_}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'refresh_token', client_id: 'fake-client-id', refresh_token: 'fake-refresh-token' }),
  })).json();
  res = await fetch(`${URL_}/services/oauth2/revoke`, { method: 'POST', body: form({ token: 'fake-refresh-token' }) });
  assert.equal(res.status, 200);
  assert.equal((await api('GET', '/services/data/v59.0/limits', { token: granted.access_token })).status, 401);
  assert.equal((await api('GET', '/services/data/v59.0/limits')).status, 200); // the static token was not issued from it
  res = await fetch(`${URL_}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'refresh_token', client_id: 'fake-client-id', refresh_token: 'fake-refresh-token' }),
  });
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), { error: 'invalid_grant', error_description: 'expired access/refresh token' });
  await ctl('/_fake/reset', {});
});

test('jsforce: query autoFetch/maxFetch over 5,000 seeded contacts', async () => {
  await ctl('/_fake/reset', {});
  const seeded = await ctl('/_fake/seed', { contacts: 5000 });
  assert.equal(seeded.created.Contact, 5000);
  const c = conn();
  const before_ = await ctl('/_fake/stats');
  const res = await c.query('SELECT Id, Name, Email, SystemModstamp FROM Contact').run({ autoFetch: true, maxFetch: 100000 });
  assert.equal(res.totalSize, 5040);
  assert.equal(res.records.length, 5040);
  assert.equal(new Set(res.records.map((r) => r.Id)).size, 5040);
  assert.equal(res.done, true);
  const after_ = await ctl('/_fake/stats');
  assert.equal(after_.query_more - before_.query_more, 2); // 2000 + 2000 + 1040

  // First page as Salesforce shapes it
  const p1 = await api('GET', `/services/data/v59.0/query?q=${encodeURIComponent('SELECT Id FROM Contact ORDER BY Id')}`);
  assert.equal(p1.json.totalSize, 5040);
  assert.equal(p1.json.done, false);
  assert.equal(p1.json.records.length, 2000);
  assert.match(p1.json.nextRecordsUrl, /^\/services\/data\/v59\.0\/query\/01g[A-Za-z0-9]{15}-2000$/);
  const p2 = await api('GET', p1.json.nextRecordsUrl);
  assert.equal(p2.json.records.length, 2000);
  assert.ok(p2.json.records[0].Id > p1.json.records[1999].Id);

  // batchSize header and maxFetch
  const small = await c.query('SELECT Id FROM Contact', { headers: { 'Sforce-Query-Options': 'batchSize=500' } })
    .run({ autoFetch: true, maxFetch: 1200, headers: { 'Sforce-Query-Options': 'batchSize=500' } });
  assert.equal(small.records.length, 1200);
  assert.equal(small.totalSize, 5040);

  const cnt = await c.query('SELECT COUNT() FROM Contact');
  assert.equal(cnt.totalSize, 5040);
  assert.deepEqual(cnt.records, []);

  // Incremental-sync style query
  const since = await c.query('SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp > 2000-01-01T00:00:00Z ORDER BY SystemModstamp ASC, Id ASC LIMIT 10');
  assert.equal(since.records.length, 10);
  for (let i = 1; i < 10; i++) assert.ok(since.records[i].SystemModstamp >= since.records[i - 1].SystemModstamp);

  const bad = await api('GET', '/services/data/v59.0/query/01g000000000000AAA-2000');
  assert.equal(bad.status, 400);
  assert.equal(bad.json[0].errorCode, 'INVALID_QUERY_LOCATOR');
});

test('jsforce: queryAll includes deleted rows (IsDeleted = true), query does not', async () => {
  const c = conn();
  const some = await c.query('SELECT Id FROM Contact LIMIT 3');
  const ids = some.records.map((r) => r.Id);
  const res = await c.sobject('Contact').destroy(ids);
  assert.equal(res.filter((r) => r.success).length, 3);
  // jsforce 3 spells queryAll as query(..., { scanAll: true }) -> GET .../queryAll?q=
  const all = await c.query('SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true', { scanAll: true });
  assert.deepEqual(all.records.map((r) => r.Id).sort(), [...ids].sort());
  assert.ok(all.records.every((r) => r.IsDeleted === true));
  const live = await c.query('SELECT Id FROM Contact WHERE IsDeleted = true');
  assert.equal(live.totalSize, 0);
  const cntAll = await c.query('SELECT COUNT() FROM Contact', { scanAll: true });
  const cnt = await c.query('SELECT COUNT() FROM Contact');
  assert.equal(cntAll.totalSize - cnt.totalSize, 3);
});

test('jsforce: SOQL builder (find * / select relationships / count), retrieve many, identity', async () => {
  const c = conn();
  const since = jsforce.SfDate.toDateTimeLiteral(new Date(Date.now() - 29 * 86400000));
  const q = c.sobject('Contact').find({ SystemModstamp: { $gt: since }, LastName: { $like: '%a%' } }, '*')
    .sort({ SystemModstamp: 1, Id: 1 }).limit(5);
  const recs = await q;
  assert.equal(recs.length, 5);
  const d = await c.sobject('Contact').describe();
  assert.deepEqual(Object.keys(recs[0]), ['attributes', ...d.fields.map((f) => f.name)]);

  const many = await c.sobject('Contact').retrieve([recs[0].Id, '003000000000000AAA', recs[1].Id]);
  assert.equal(many.length, 3);
  assert.equal(many[0].Id, recs[0].Id);
  assert.equal(many[1], null);

  const rel = await c.sobject('Contact').select('Id, Account.Name, Owner.Email').where({ 'Account.Name': { $ne: null } }).limit(1);
  assert.equal(rel[0].Account.attributes.type, 'Account');
  assert.equal(typeof rel[0].Account.Name, 'string');
  assert.match(rel[0].Owner.Email, /@apigres-fake\.example$/);

  const n = await c.sobject('Lead').count({ Status: 'Closed - Converted' });
  assert.equal(n, 0);
  const who = await c.identity();
  assert.equal(who.username, 'integration@apigres-fake.example');
  assert.match(who.organization_id, /^00D000000000001/);

  const inv = await c.sobject('Invoice__c').create({ Amount__c: 10.555, Account__c: many[0].AccountId });
  const got = await c.sobject('Invoice__c').retrieve(inv.id);
  assert.match(got.Name, /^INV-\d{4}$/);
  assert.equal(got.Status__c, 'Draft');
  assert.equal(got.Amount__c, 10.56);
});

test('jsforce: describe and describeGlobal, incl. the custom object', async () => {
  const c = conn();
  const d = await c.sobject('Contact').describe();
  assert.equal(d.name, 'Contact');
  assert.equal(d.keyPrefix, '003');
  const byName = Object.fromEntries(d.fields.map((f) => [f.name, f]));
  for (const n of ['Id', 'IsDeleted', 'AccountId', 'LastName', 'FirstName', 'Name', 'Email', 'CreatedDate', 'LastModifiedDate', 'SystemModstamp', 'OwnerId']) {
    assert.ok(byName[n], `Contact.${n}`);
  }
  const ln = byName.LastName;
  for (const k of ['name', 'type', 'label', 'length', 'nillable', 'createable', 'updateable', 'custom', 'picklistValues']) assert.ok(k in ln, k);
  assert.equal(ln.type, 'string');
  assert.equal(ln.length, 80);
  assert.equal(ln.nillable, false);
  assert.equal(byName.Email.type, 'email');
  assert.equal(byName.Name.createable, false);
  assert.deepEqual(byName.AccountId.referenceTo, ['Account']);

  const inv = await c.sobject('Invoice__c').describe();
  assert.equal(inv.custom, true);
  assert.equal(inv.keyPrefix, 'a00');
  const f = Object.fromEntries(inv.fields.map((x) => [x.name, x]));
  assert.equal(f.Amount__c.type, 'currency');
  assert.equal(f.Amount__c.custom, true);
  assert.equal(f.Status__c.type, 'picklist');
  assert.equal(f.Status__c.restrictedPicklist, true);
  assert.deepEqual(f.Status__c.picklistValues.map((p) => p.value), ['Draft', 'Sent', 'Paid', 'Void']);
  assert.deepEqual(f.Account__c.referenceTo, ['Account']);
  assert.equal(f.Account__c.relationshipName, 'Account__r');
  assert.equal(f.Name.autoNumber, true);

  const g = await c.describeGlobal();
  const prefixes = Object.fromEntries(g.sobjects.map((s) => [s.name, s.keyPrefix]));
  assert.deepEqual(prefixes, { Account: '001', Contact: '003', Lead: '00Q', Opportunity: '006', User: '005', Product2: '01t', Invoice__c: 'a00' });
  assert.equal(g.sobjects.find((s) => s.name === 'User').createable, false);
});

test('jsforce: sObject collection create of 200 with one bad record (allOrNone=false)', async () => {
  const c = conn();
  const before_ = (await c.query('SELECT COUNT() FROM Contact')).totalSize;
  const recs = Array.from({ length: 200 }, (_, i) => ({ LastName: `Batch${i}`, Email: i === 117 ? 'not-an-email' : `b${i}@example.com` }));
  const res = await c.sobject('Contact').create(recs, { allOrNone: false });
  assert.equal(res.length, 200);
  assert.equal(res.filter((r) => r.success).length, 199);
  const badOne = res[117];
  assert.equal(badOne.success, false);
  assert.equal(badOne.id, undefined);
  assert.deepEqual(badOne.errors, [{ statusCode: 'INVALID_EMAIL_ADDRESS', message: 'Email: invalid email address: not-an-email', fields: ['Email'] }]);
  assert.ok(res.filter((r) => r.success).every((r) => /^003/.test(r.id) && r.errors.length === 0));
  assert.equal((await c.query('SELECT COUNT() FROM Contact')).totalSize, before_ + 199);

  // allOrNone=true: nothing is created, the good records say they were rolled back
  const res2 = await c.sobject('Contact').create(recs, { allOrNone: true });
  assert.equal(res2.filter((r) => r.success).length, 0);
  assert.equal(res2[117].errors[0].statusCode, 'INVALID_EMAIL_ADDRESS');
  assert.equal(res2[0].errors[0].statusCode, 'ALL_OR_NONE_OPERATION_ROLLED_BACK');
  assert.equal((await c.query('SELECT COUNT() FROM Contact')).totalSize, before_ + 199);

  // collection update and delete
  const ids = res.filter((r) => r.success).slice(0, 5).map((r) => r.id);
  const up = await c.sobject('Contact').update(ids.map((Id) => ({ Id, Title: 'Bulk' })).concat([{ Id: '003000000000000AAA', Title: 'x' }]));
  assert.equal(up.filter((r) => r.success).length, 5);
  assert.equal(up[5].success, false);
  const del = await c.sobject('Contact').destroy(ids);
  assert.ok(del.every((r) => r.success));

  const tooMany = await api('POST', '/services/data/v59.0/composite/sobjects', {
    body: { records: Array.from({ length: 201 }, () => ({ attributes: { type: 'Contact' }, LastName: 'x' })) },
  });
  assert.equal(tooMany.status, 400);
  assert.equal(tooMany.json[0].errorCode, 'EXCEEDED_ID_LIMIT');
});

test('jsforce: updated / deleted (getUpdated / getDeleted) after changes', async () => {
  const c = conn();
  const start = new Date(Date.now() - 5 * 60000);
  const end = new Date(Date.now() + 2 * 60000);
  const a = await c.sobject('Lead').create({ LastName: 'Replica', Company: 'Sync Co' });
  const b = await c.sobject('Lead').create({ LastName: 'Gone', Company: 'Sync Co' });
  await c.sobject('Lead').update({ Id: a.id, Status: 'Working - Contacted' });
  await c.sobject('Lead').destroy(b.id);

  const upd = await c.sobject('Lead').updated(start, end);
  assert.ok(Array.isArray(upd.ids));
  assert.ok(upd.ids.includes(a.id));
  assert.ok(!upd.ids.includes(b.id));
  assert.match(upd.latestDateCovered, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\.000\+0000$/);

  const del = await c.sobject('Lead').deleted(start, end);
  const hit = del.deletedRecords.find((r) => r.id === b.id);
  assert.ok(hit);
  assert.match(hit.deletedDate, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$/);
  assert.match(del.earliestDateAvailable, /\+0000$/);
  assert.match(del.latestDateCovered, /\+0000$/);

  const e = await rejects(c.sobject('Lead').updated(new Date(Date.now() - 40 * 86400000), end));
  assert.equal(e.errorCode, 'INVALID_REPLICATION_DATE');
});

test('control API: rate limit, injected failures, drops, latency, stats', async () => {
  const c = conn();
  await ctl('/_fake/config', { rate_limit_per_sec: 3 });
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => c.query('SELECT COUNT() FROM Lead')));
  const limited = results.filter((r) => r.status === 'rejected');
  assert.ok(limited.length >= 1);
  assert.equal(limited[0].reason.errorCode, 'REQUEST_LIMIT_EXCEEDED');
  assert.equal(limited[0].reason.message, 'TotalRequests Limit exceeded.');
  await ctl('/_fake/config', { rate_limit_per_sec: 0 });

  // jsforce retries 5xx with backoff: one injected 503 is invisible to the caller.
  await ctl('/_fake/config', { fail_next: 1, fail_status: 503 });
  const ok = await c.query('SELECT COUNT() FROM Lead');
  assert.ok(ok.totalSize > 0);
  assert.equal((await ctl('/_fake/stats')).faults.failed, 1);
  await ctl('/_fake/config', { fail_next: 1, fail_status: 500 });
  let raw = await api('GET', '/services/data/v59.0/limits');
  assert.equal(raw.status, 500);
  assert.equal(raw.json[0].errorCode, 'UNKNOWN_EXCEPTION');
  assert.match(raw.json[0].message, /^An unexpected error occurred\. Please include this ErrorId if you contact support: /);
  await ctl('/_fake/config', { fail_next: 1, fail_status: 503 });
  raw = await api('GET', '/services/data/v59.0/limits');
  assert.equal(raw.status, 503);
  assert.equal(raw.json[0].errorCode, 'SERVER_UNAVAILABLE');
  // A non-retried failure surfaces as jsforce's error with the errorCode.
  await ctl('/_fake/config', { fail_next: 1, fail_status: 400 });
  const e = await rejects(c.query('SELECT COUNT() FROM Lead'));
  assert.equal(e.errorCode, 'UNKNOWN_EXCEPTION');

  await ctl('/_fake/config', { drop_next: 1 });
  await assert.rejects(fetch(`${URL_}/services/data/v59.0/limits`, { headers: { authorization: `Bearer ${STATIC_TOKEN}` } }));

  await ctl('/_fake/config', { latency_ms: 150, fault_path: '/limits$' });
  const t0 = Date.now();
  await api('GET', '/services/data/v59.0/limits');
  assert.ok(Date.now() - t0 >= 140);
  const t1 = Date.now();
  await api('GET', '/services/data/v59.0/sobjects');
  assert.ok(Date.now() - t1 < 140);
  await ctl('/_fake/config', { latency_ms: 0, fault_path: null });

  const st = await ctl('/_fake/stats');
  assert.ok(st.by_route['GET /services/data/vXX.X/query'] > 0);
  assert.ok(st.faults.rate_limited >= 1 && st.faults.failed >= 4 && st.faults.dropped >= 1);
  assert.ok(st.creates_total > 0);
  const unknown = await fetch(`${URL_}/_fake/config`, { method: 'POST', body: '{"nope":1}' });
  assert.equal(unknown.status, 400);
});
