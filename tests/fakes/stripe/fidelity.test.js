// Fidelity tests: Stripe's official Node library (stripe-node 13.x, pinned to
// API version 2023-08-16) talks to the fake exactly as it would talk to
// api.stripe.com, and every answer must come back as the library expects.
//
//   node --test --test-reporter=tap fidelity.test.js     (or ./run-tests.sh)
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');
const Stripe = require('stripe');

let proc;
let port;
const KEY = 'sk_test_fidelity_4eC39HqLyjWDarjtT1zdp7dc';

function client(opts = {}) {
  return new Stripe(opts.key || KEY, Object.assign({
    host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0, telemetry: false, timeout: 10000,
  }, opts.config || {}));
}

async function control(p, body) {
  const res = await fetch(`http://127.0.0.1:${port}/_fake/${p}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`control ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
const reset = () => control('reset', { config: true });

// A raw request, for what the library has no method for.
function raw(method, p, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data ? JSON.parse(data) : null }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

async function expectStripeError(promise, Cls, check) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
    if (check) check(err);
    return err;
  }
  assert.fail(`expected ${Cls.name}, but the call succeeded`);
}

before(async () => {
  proc = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--port', '0', '--no-seed'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = readline.createInterface({ input: proc.stdout });
  const line = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('fake did not start within 5 s')), 5000);
    rl.once('line', (l) => { clearTimeout(t); resolve(l); });
    proc.once('exit', (code) => reject(new Error(`fake exited with ${code}`)));
  });
  const m = /^stripe-fake listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(line);
  assert.ok(m, `unexpected first line: ${line}`);
  port = Number(m[1]);
});

after(() => {
  if (proc) proc.kill('SIGTERM');
});

test('library pins API version 2023-08-16 and the fake echoes it', async () => {
  const stripe = client();
  assert.equal(stripe.getApiField('version'), '2023-08-16');
  await reset();
  const c = await stripe.customers.create({ name: 'Version Check' });
  assert.equal(c.lastResponse.headers['stripe-version'], '2023-08-16');
  assert.match(c.lastResponse.requestId, /^req_[A-Za-z0-9]{14}$/);
});

test('customer create / retrieve / update / delete with nested metadata and address', async () => {
  await reset();
  const stripe = client();
  const c = await stripe.customers.create({
    email: 'ada@example.com', name: 'Ada Lovelace', description: 'first customer',
    metadata: { order_id: '6735', tier: 'gold' },
    address: { line1: '12 St James Sq', city: 'London', postal_code: 'SW1Y 4JH', country: 'GB' },
    preferred_locales: ['en', 'fr'],
  });
  assert.match(c.id, /^cus_[A-Za-z0-9]{14,}$/);
  assert.equal(c.object, 'customer');
  assert.equal(c.livemode, false);
  assert.ok(Math.abs(c.created - Date.now() / 1000) < 5, 'created is unix seconds, now');
  assert.deepEqual(c.metadata, { order_id: '6735', tier: 'gold' });
  assert.deepEqual(c.address, { city: 'London', country: 'GB', line1: '12 St James Sq', line2: null, postal_code: 'SW1Y 4JH', state: null });
  assert.deepEqual(c.preferred_locales, ['en', 'fr']);
  assert.equal(c.balance, 0);
  assert.equal(c.delinquent, false);
  assert.equal(c.tax_exempt, 'none');
  assert.deepEqual(c.invoice_settings, { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null });
  // Fields that are only present when expanded are absent, as with API 2023-08-16.
  assert.equal(c.subscriptions, undefined);
  assert.equal(c.sources, undefined);

  const got = await stripe.customers.retrieve(c.id);
  assert.deepEqual(JSON.parse(JSON.stringify(got)), JSON.parse(JSON.stringify(c)));

  const up = await stripe.customers.update(c.id, { metadata: { tier: '', note: 'vip' }, name: 'Ada King', address: { line1: '1 Main St', city: 'Paris', country: 'FR' } });
  assert.equal(up.id, c.id);
  assert.equal(up.name, 'Ada King');
  assert.equal(up.email, 'ada@example.com', 'update returns the full object');
  assert.deepEqual(up.metadata, { order_id: '6735', note: 'vip' });
  assert.equal(up.address.city, 'Paris');

  const withSubs = await stripe.customers.retrieve(c.id, { expand: ['subscriptions'] });
  assert.equal(withSubs.subscriptions.object, 'list');
  assert.deepEqual(withSubs.subscriptions.data, []);

  const del = await stripe.customers.del(c.id);
  assert.deepEqual(JSON.parse(JSON.stringify(del)), { id: c.id, object: 'customer', deleted: true });
  const after = await stripe.customers.retrieve(c.id);
  assert.equal(after.deleted, true, 'a deleted customer retrieves as a deleted stub');

  await expectStripeError(stripe.customers.retrieve('cus_doesnotexist1'), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.statusCode, 404);
    assert.equal(e.code, 'resource_missing');
    assert.equal(e.param, 'id');
    assert.equal(e.message, "No such customer: 'cus_doesnotexist1'");
    assert.equal(e.type, 'StripeInvalidRequestError');
    assert.equal(e.doc_url, 'https://stripe.com/docs/error-codes/resource-missing');
    assert.match(e.raw.request_log_url, /^https:\/\/dashboard\.stripe\.com\/test\/logs\/req_/);
    assert.match(e.requestId, /^req_/);
  });
  await expectStripeError(stripe.customers.update('cus_doesnotexist1', { name: 'x' }), Stripe.errors.StripeInvalidRequestError, (e) => assert.equal(e.statusCode, 404));
});

test('list + autoPagingEach over 250 seeded customers: count, order, no duplicates', async () => {
  await reset();
  const seeded = await control('seed', { customers: 250 });
  assert.equal(seeded.totals.customer, 250);
  assert.ok(seeded.took_ms < 1000);
  const stripe = client();

  const first = await stripe.customers.list({ limit: 100 });
  assert.equal(first.object, 'list');
  assert.equal(first.url, '/v1/customers');
  assert.equal(first.has_more, true);
  assert.equal(first.data.length, 100);
  const def = await stripe.customers.list();
  assert.equal(def.data.length, 10, 'default limit is 10');

  const seen = new Set();
  let prevCreated = Infinity;
  let count = 0;
  await stripe.customers.list({ limit: 100 }).autoPagingEach((cust) => {
    assert.ok(!seen.has(cust.id), `duplicate ${cust.id}`);
    seen.add(cust.id);
    assert.ok(cust.created <= prevCreated, 'newest first');
    prevCreated = cust.created;
    assert.match(cust.email, /^[^@\s]+@[^@\s]+\.[a-z]+$/);
    count++;
  });
  assert.equal(count, 250);

  // starting_after / ending_before walk the same order in both directions.
  const all = await stripe.customers.list({ limit: 100 }).autoPagingToArray({ limit: 1000 });
  assert.equal(all.length, 250);
  const page = await stripe.customers.list({ limit: 3, starting_after: all[10].id });
  assert.deepEqual(page.data.map((c) => c.id), [all[11].id, all[12].id, all[13].id]);
  const back = await stripe.customers.list({ limit: 3, ending_before: all[10].id });
  assert.deepEqual(back.data.map((c) => c.id), [all[7].id, all[8].id, all[9].id]);
  assert.equal(back.has_more, true);
  const newest = await stripe.customers.list({ limit: 5, ending_before: all[3].id });
  assert.deepEqual(newest.data.map((c) => c.id), [all[0].id, all[1].id, all[2].id]);
  assert.equal(newest.has_more, false);
  // reverse auto-pagination from the oldest
  let rev = 0;
  await stripe.customers.list({ limit: 40, ending_before: all[249].id }).autoPagingEach(() => { rev++; });
  assert.equal(rev, 249);

  const byEmail = await stripe.customers.list({ email: all[5].email, limit: 100 });
  assert.ok(byEmail.data.some((c) => c.id === all[5].id));
  assert.ok(byEmail.data.every((c) => c.email === all[5].email));

  const created = await stripe.customers.list({ created: { gte: all[20].created }, limit: 100 });
  assert.ok(created.data.every((c) => c.created >= all[20].created));

  for (const limit of [0, 101]) {
    await expectStripeError(stripe.customers.list({ limit }), Stripe.errors.StripeInvalidRequestError, (e) => {
      assert.equal(e.statusCode, 400);
      assert.equal(e.param, 'limit');
    });
  }
  await expectStripeError(stripe.customers.list({ starting_after: 'cus_nope', ending_before: 'cus_nope' }), Stripe.errors.StripeInvalidRequestError);
});

test('events after changes: types, data.object, previous_attributes, filters, retention', async () => {
  await reset();
  const stripe = client();
  const t0 = Math.floor(Date.now() / 1000);
  const c = await stripe.customers.create({ name: 'Grace Hopper', email: 'grace@example.com', metadata: { team: 'navy' } });
  await stripe.customers.update(c.id, { name: 'Grace B. Hopper', metadata: { team: '', rank: 'admiral' } });
  await stripe.customers.del(c.id);

  const evts = await stripe.events.list({ type: 'customer.*' });
  assert.deepEqual(evts.data.map((e) => e.type), ['customer.deleted', 'customer.updated', 'customer.created']);
  for (const e of evts.data) {
    assert.match(e.id, /^evt_/);
    assert.equal(e.object, 'event');
    assert.equal(e.api_version, '2023-08-16');
    assert.equal(e.livemode, false);
    assert.ok(e.created >= t0);
    assert.equal(e.data.object.id, c.id);
    assert.match(e.request.id, /^req_/);
  }
  const updated = evts.data[1];
  assert.equal(updated.data.object.name, 'Grace B. Hopper');
  assert.deepEqual(updated.data.previous_attributes, { metadata: { rank: null, team: 'navy' }, name: 'Grace Hopper' });
  assert.equal(evts.data[2].data.object.name, 'Grace Hopper', 'each event holds the object as it was then');

  const one = await stripe.events.retrieve(updated.id);
  assert.equal(one.type, 'customer.updated');
  const onlyCreated = await stripe.events.list({ type: 'customer.created' });
  assert.equal(onlyCreated.data.length, 1);
  const viaTypes = await stripe.events.list({ types: ['customer.created', 'customer.deleted'] });
  assert.equal(viaTypes.data.length, 2);
  const since = await stripe.events.list({ created: { gte: t0 } });
  assert.equal(since.data.length, 3);
  const paged = await stripe.events.list({ limit: 1, starting_after: evts.data[0].id });
  assert.equal(paged.data[0].id, evts.data[1].id);

  // retention: events older than the configured window are no longer listed
  await control('config', { event_retention_seconds: 1 });
  await new Promise((r) => setTimeout(r, 1200));
  const gone = await stripe.events.list();
  assert.equal(gone.data.length, 0);
  await expectStripeError(stripe.events.retrieve(updated.id), Stripe.errors.StripeInvalidRequestError, (e) => assert.equal(e.statusCode, 404));
  const fresh = await stripe.customers.create({ name: 'Fresh' });
  const now = await stripe.events.list();
  assert.deepEqual(now.data.map((e) => e.data.object.id), [fresh.id]);
});

test('products and prices (and a price cannot be deleted)', async () => {
  await reset();
  const stripe = client();
  const prod = await stripe.products.create({ name: 'Gold plan', description: 'All features', default_price_data: { currency: 'usd', unit_amount: 2000, recurring: { interval: 'month' } }, metadata: { sku: 'gold' } });
  assert.match(prod.id, /^prod_/);
  assert.equal(prod.active, true);
  assert.match(prod.default_price, /^price_/);
  assert.equal(prod.updated, prod.created);
  const dp = await stripe.prices.retrieve(prod.default_price, { expand: ['product'] });
  assert.equal(dp.product.id, prod.id, 'expand[]=product gives the product object');
  assert.equal(dp.type, 'recurring');
  assert.deepEqual(dp.recurring, { aggregate_usage: null, interval: 'month', interval_count: 1, usage_type: 'licensed' });
  assert.equal(dp.unit_amount_decimal, '2000');

  const yearly = await stripe.prices.create({ product: prod.id, currency: 'USD', unit_amount: 20000, recurring: { interval: 'year' }, lookup_key: 'gold_yearly', nickname: 'Gold yearly' });
  assert.equal(yearly.currency, 'usd');
  const once = await stripe.prices.create({ product: prod.id, currency: 'usd', unit_amount: 500 });
  assert.equal(once.type, 'one_time');
  assert.equal(once.recurring, null);

  const list = await stripe.prices.list({ product: prod.id });
  assert.deepEqual(list.data.map((p) => p.id), [once.id, yearly.id, prod.default_price]);
  const recurring = await stripe.prices.list({ product: prod.id, type: 'recurring' });
  assert.equal(recurring.data.length, 2);
  const byKey = await stripe.prices.list({ lookup_keys: ['gold_yearly'] });
  assert.deepEqual(byKey.data.map((p) => p.id), [yearly.id]);

  const upd = await stripe.prices.update(yearly.id, { nickname: 'Gold annual', metadata: { promo: 'no' }, active: false });
  assert.equal(upd.nickname, 'Gold annual');
  assert.equal(upd.active, false);
  assert.equal(upd.unit_amount, 20000);
  await expectStripeError(stripe.prices.update(yearly.id, { unit_amount: 1 }), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.code, 'parameter_unknown');
    assert.equal(e.param, 'unit_amount');
  });
  await expectStripeError(stripe.prices.create({ product: prod.id, unit_amount: 100 }), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.code, 'parameter_missing');
    assert.equal(e.param, 'currency');
  });
  await expectStripeError(stripe.prices.create({ product: prod.id, currency: 'usd', unit_amount: 1, recurring: { interval: 'fortnight' } }), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.param, 'recurring[interval]');
  });

  const pu = await stripe.products.update(prod.id, { name: 'Gold', metadata: { sku: '' } });
  assert.equal(pu.name, 'Gold');
  assert.deepEqual(pu.metadata, {});
  const evts = await stripe.events.list({ type: 'product.updated' });
  assert.deepEqual(evts.data[0].data.previous_attributes.metadata, { sku: 'gold' });
  await expectStripeError(stripe.products.del(prod.id), Stripe.errors.StripeInvalidRequestError, (e) => assert.equal(e.statusCode, 400));
  const bare = await stripe.products.create({ name: 'Temporary' });
  const pd = await stripe.products.del(bare.id);
  assert.deepEqual(JSON.parse(JSON.stringify(pd)), { id: bare.id, object: 'product', deleted: true });
  await expectStripeError(stripe.products.retrieve(bare.id), Stripe.errors.StripeInvalidRequestError, (e) => assert.equal(e.statusCode, 404));

  // stripe-node has no prices.del (Stripe has no such endpoint) ...
  assert.equal(typeof stripe.prices.del, 'undefined');
  // ... and asking for it anyway through the library's own extension point
  // gets the same 404 the real API gives for an unrecognized URL.
  const PriceDelete = Stripe.StripeResource.extend({ del: Stripe.StripeResource.method({ method: 'DELETE', fullPath: '/v1/prices/{price}' }) });
  const priceDelete = new PriceDelete(stripe);
  await expectStripeError(priceDelete.del(yearly.id), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.statusCode, 404);
    assert.equal(e.message, `Unrecognized request URL (DELETE: /v1/prices/${yearly.id}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`);
  });
  const stillThere = await stripe.prices.retrieve(yearly.id);
  assert.equal(stillThere.id, yearly.id);
});

test('coupons: create, update, delete, list', async () => {
  await reset();
  const stripe = client();
  const pct = await stripe.coupons.create({ percent_off: 25.5, duration: 'repeating', duration_in_months: 3, name: '25.5% off' });
  assert.match(pct.id, /^[A-Z0-9]{8}$/);
  assert.equal(pct.object, 'coupon');
  assert.equal(pct.valid, true);
  assert.equal(pct.times_redeemed, 0);
  const fixed = await stripe.coupons.create({ id: 'FIVEOFF', amount_off: 500, currency: 'usd' });
  assert.equal(fixed.id, 'FIVEOFF');
  assert.equal(fixed.duration, 'once');
  await expectStripeError(stripe.coupons.create({ id: 'FIVEOFF', amount_off: 500, currency: 'usd' }), Stripe.errors.StripeInvalidRequestError, (e) => assert.equal(e.code, 'resource_already_exists'));
  await expectStripeError(stripe.coupons.create({ duration: 'once' }), Stripe.errors.StripeInvalidRequestError);
  const up = await stripe.coupons.update(pct.id, { name: 'Quarter off', metadata: { campaign: 'q3' } });
  assert.equal(up.name, 'Quarter off');
  assert.equal(up.percent_off, 25.5);
  const list = await stripe.coupons.list();
  assert.deepEqual(list.data.map((c) => c.id), ['FIVEOFF', pct.id]);
  const del = await stripe.coupons.del(pct.id);
  assert.deepEqual(JSON.parse(JSON.stringify(del)), { id: pct.id, object: 'coupon', deleted: true });
  await expectStripeError(stripe.coupons.retrieve(pct.id), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.statusCode, 404);
    assert.equal(e.message, `No such coupon: '${pct.id}'`);
  });
  const types = (await stripe.events.list({ type: 'coupon.*' })).data.map((e) => e.type);
  assert.deepEqual(types, ['coupon.deleted', 'coupon.updated', 'coupon.created', 'coupon.created']);
});

test('subscriptions: create (with invoice and payment intent), update, cancel, list', async () => {
  await reset();
  const stripe = client();
  const price = await stripe.prices.create({ currency: 'usd', unit_amount: 1500, recurring: { interval: 'month' }, product_data: { name: 'Pro' } });
  const cust = await stripe.customers.create({ email: 'sub@example.com', payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
  const sub = await stripe.subscriptions.create({ customer: cust.id, items: [{ price: price.id, quantity: 2 }], expand: ['latest_invoice.payment_intent'], metadata: { plan: 'pro' } });
  assert.match(sub.id, /^sub_/);
  assert.equal(sub.status, 'active');
  assert.equal(sub.customer, cust.id);
  assert.equal(sub.items.data.length, 1);
  assert.equal(sub.items.data[0].price.id, price.id);
  assert.equal(sub.items.data[0].quantity, 2);
  assert.ok(sub.current_period_end > sub.current_period_start);
  assert.equal(sub.latest_invoice.object, 'invoice');
  assert.equal(sub.latest_invoice.status, 'paid');
  assert.equal(sub.latest_invoice.amount_paid, 3000);
  assert.equal(sub.latest_invoice.payment_intent.object, 'payment_intent');
  assert.equal(sub.latest_invoice.payment_intent.status, 'succeeded');
  assert.equal(sub.latest_invoice.payment_intent.amount, 3000);

  const inv = await stripe.invoices.retrieve(sub.latest_invoice.id);
  assert.equal(inv.subscription, sub.id);
  assert.equal(inv.lines.data[0].price.id, price.id);
  const invs = await stripe.invoices.list({ customer: cust.id });
  assert.equal(invs.data.length, 1);
  const pis = await stripe.paymentIntents.list({ customer: cust.id });
  assert.equal(pis.data.length, 1);
  const pi = await stripe.paymentIntents.retrieve(inv.payment_intent);
  assert.equal(pi.invoice, inv.id);

  const up = await stripe.subscriptions.update(sub.id, { cancel_at_period_end: true, metadata: { plan: 'pro', reason: 'budget' } });
  assert.equal(up.cancel_at_period_end, true);
  assert.equal(up.cancel_at, up.current_period_end);
  const ev = await stripe.events.list({ type: 'customer.subscription.updated', limit: 1 });
  assert.equal(ev.data[0].data.previous_attributes.cancel_at_period_end, false);

  const canceled = await stripe.subscriptions.cancel(sub.id);
  assert.equal(canceled.status, 'canceled');
  assert.ok(canceled.ended_at);
  const active = await stripe.subscriptions.list({ customer: cust.id });
  assert.equal(active.data.length, 0, 'canceled subscriptions are not listed by default');
  const all = await stripe.subscriptions.list({ customer: cust.id, status: 'all' });
  assert.equal(all.data.length, 1);

  // without a payment method, Stripe leaves the subscription incomplete
  const bare = await stripe.customers.create({ email: 'nopm@example.com' });
  const inc = await stripe.subscriptions.create({ customer: bare.id, items: [{ price: price.id }] });
  assert.equal(inc.status, 'incomplete');
  await expectStripeError(stripe.subscriptions.create({ customer: bare.id }), Stripe.errors.StripeInvalidRequestError, (e) => assert.equal(e.param, 'items'));
  await expectStripeError(stripe.subscriptions.create({ customer: 'cus_nope', items: [{ price: price.id }] }), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.code, 'resource_missing');
    assert.equal(e.param, 'customer');
  });
});

test('idempotent create: same key replays the first answer, different params are refused', async () => {
  await reset();
  const stripe = client();
  const key = 'fidelity-key-' + Date.now();
  const a = await stripe.customers.create({ email: 'idem@example.com' }, { idempotencyKey: key });
  const b = await stripe.customers.create({ email: 'idem@example.com' }, { idempotencyKey: key });
  assert.equal(b.id, a.id);
  assert.equal(b.lastResponse.headers['idempotent-replayed'], 'true');
  assert.equal(b.lastResponse.headers['original-request'], a.lastResponse.requestId);
  assert.equal(a.lastResponse.headers['idempotent-replayed'], undefined);
  const stats = await control('stats');
  assert.equal(stats.creates, 1);
  assert.equal(stats.requests_by_template['POST /v1/customers'], 2);
  assert.equal(stats.idempotent_replays, 1);
  await expectStripeError(stripe.customers.create({ email: 'other@example.com' }, { idempotencyKey: key }), Stripe.errors.StripeIdempotencyError, (e) => {
    assert.equal(e.statusCode, 400);
    assert.equal(e.rawType, 'idempotency_error');
    assert.match(e.message, /^Keys for idempotent requests can only be used with the same parameters they were first used with/);
  });
  assert.equal((await control('stats')).creates, 1);
  // A request that fails validation is not saved: the key can be reused.
  const k2 = key + '-2';
  await expectStripeError(stripe.customers.create({ email: 'not-an-email' }, { idempotencyKey: k2 }), Stripe.errors.StripeInvalidRequestError);
  const ok = await stripe.customers.create({ email: 'fixed@example.com' }, { idempotencyKey: k2 });
  assert.match(ok.id, /^cus_/);
});

test('errors surface as the library\'s typed errors', async () => {
  await reset();
  const stripe = client();
  await expectStripeError(stripe.customers.create({ email: 'x' }), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.statusCode, 400);
    assert.equal(e.param, 'email');
    assert.equal(e.code, 'email_invalid');
    assert.equal(e.message, 'Invalid email address: x');
  });
  await expectStripeError(stripe.customers.create({ foo: 'bar' }), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.param, 'foo');
    assert.equal(e.code, 'parameter_unknown');
    assert.equal(e.message, 'Received unknown parameter: foo');
  });
  await expectStripeError(stripe.customers.create({ address: { line1: 'x', planet: 'Mars' } }), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.param, 'address[planet]');
  });
  await expectStripeError(stripe.customers.create({ name: 'n'.repeat(257) }), Stripe.errors.StripeInvalidRequestError, (e) => assert.equal(e.param, 'name'));
  await expectStripeError(stripe.customers.create({ balance: 'lots' }), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.code, 'parameter_invalid_integer');
    assert.equal(e.param, 'balance');
  });
  await expectStripeError(stripe.customers.create({ tax_exempt: 'sometimes' }), Stripe.errors.StripeInvalidRequestError, (e) => assert.equal(e.param, 'tax_exempt'));
  await expectStripeError(stripe.products.create({ name: '' }), Stripe.errors.StripeInvalidRequestError, (e) => {
    assert.equal(e.code, 'parameter_invalid_empty');
    assert.equal(e.param, 'name');
  });

  await expectStripeError(client({ key: 'sk_test_revoked' }).customers.list(), Stripe.errors.StripeAuthenticationError, (e) => {
    assert.equal(e.statusCode, 401);
    assert.match(e.message, /^Invalid API Key provided: sk_test_\**oked$/);
  });
  await expectStripeError(client({ key: 'sk_live_notatestkey1234' }).customers.list(), Stripe.errors.StripeAuthenticationError);

  await control('config', { rate_limit_per_sec: 3 });
  const results = await Promise.allSettled(Array.from({ length: 12 }, () => stripe.customers.list({ limit: 1 })));
  const limited = results.filter((r) => r.status === 'rejected');
  assert.ok(limited.length >= 5, `expected 429s, got ${limited.length}`);
  for (const r of limited) {
    assert.ok(r.reason instanceof Stripe.errors.StripeRateLimitError, String(r.reason));
    assert.equal(r.reason.statusCode, 429);
    assert.equal(r.reason.code, 'rate_limit');
    assert.equal(r.reason.headers['retry-after'], undefined, 'Stripe sends no Retry-After by default');
  }
  await control('config', { rate_limit_per_sec: 0 });

  await control('config', { fail_next: 1 });
  await expectStripeError(stripe.customers.list(), Stripe.errors.StripeAPIError, (e) => assert.equal(e.statusCode, 500));
  await control('config', { fail_next: 1, fail_status: 503, retry_after: 2 });
  await expectStripeError(stripe.customers.list(), Stripe.errors.StripeAPIError, (e) => {
    assert.equal(e.statusCode, 503);
    assert.equal(e.headers['retry-after'], '2');
  });
  await control('config', { fail_status: 500, retry_after: null });

  // A dropped connection: stripe-node retries a closed socket once even with
  // maxNetworkRetries 0, so drop two in a row.
  await control('config', { drop_next: 2 });
  await expectStripeError(stripe.customers.list(), Stripe.errors.StripeConnectionError);
  assert.equal((await control('stats')).dropped, 2);

  await control('config', { timeout_next: 1 });
  await expectStripeError(client({ config: { timeout: 300 } }).customers.list(), Stripe.errors.StripeConnectionError, (e) => {
    assert.match(e.message, /timeout/);
  });
  assert.equal((await control('stats')).timed_out, 1);
});

test('maxNetworkRetries 2: a 500 on create is retried with the same idempotency key, one create performed', async () => {
  await reset();
  const stripe = client({ config: { maxNetworkRetries: 2 } });
  const keys = [];
  stripe.on('request', (ev) => keys.push(ev.idempotency_key));
  await control('config', { fail_nth_create: 1 });
  const c = await stripe.customers.create({ email: 'retry@example.com' });
  assert.match(c.id, /^cus_/);
  assert.equal(keys.length, 2);
  assert.match(keys[0], /^stripe-node-retry-/);
  assert.equal(keys[1], keys[0]);
  const stats = await control('stats');
  assert.equal(stats.requests_by_template['POST /v1/customers'], 2);
  assert.equal(stats.injected_failures, 1);
  assert.equal(stats.creates, 1);
  const list = await stripe.customers.list();
  assert.equal(list.data.length, 1);
  const evt = (await stripe.events.list({ type: 'customer.created' })).data[0];
  assert.equal(evt.request.idempotency_key, keys[0]);

  // An answer lost after the create ran: the retry is replayed, not re-run.
  await control('config', { drop_after_next: 1 });
  const d = await stripe.customers.create({ email: 'lost@example.com' });
  const s2 = await control('stats');
  assert.equal(s2.creates, 2);
  assert.equal(s2.dropped_after_execution, 1);
  assert.equal(s2.idempotent_replays, 1);
  assert.equal((await stripe.customers.list()).data[0].id, d.id);
});

test('fail_rate with fail_max_per_key: every create gets through stripe-node retries, once each', async () => {
  await reset();
  const stripe = client({ config: { maxNetworkRetries: 2 } });
  await control('config', { fail_rate: 1, fail_max_per_key: 2 });
  const made = await Promise.all([0, 1, 2].map((i) => stripe.customers.create({ email: `flaky${i}@example.com` })));
  await control('config', { fail_rate: 0 });
  assert.equal(new Set(made.map((c) => c.id)).size, 3);
  const stats = await control('stats');
  assert.equal(stats.injected_failures, 6);
  assert.equal(stats.creates, 3);
  assert.equal(stats.requests_by_template['POST /v1/customers'], 9);
});

test('raw HTTP: Basic auth, Request-Id on every answer, form encoding, JSON bodies refused', async () => {
  await reset();
  const basic = 'Basic ' + Buffer.from(KEY + ':').toString('base64');
  const r1 = await raw('POST', '/v1/customers', {
    headers: { Authorization: basic, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'name=Basic+Auth&metadata[k]=v%20w&expand[]=subscriptions&preferred_locales[0]=de',
  });
  assert.equal(r1.status, 200);
  assert.equal(r1.body.name, 'Basic Auth');
  assert.deepEqual(r1.body.metadata, { k: 'v w' });
  assert.equal(r1.body.subscriptions.object, 'list');
  assert.deepEqual(r1.body.preferred_locales, ['de']);
  assert.match(r1.headers['request-id'], /^req_/);
  const r2 = await raw('GET', '/v1/customers');
  assert.equal(r2.status, 401);
  assert.match(r2.headers['request-id'], /^req_/);
  assert.equal(r2.body.error.type, 'invalid_request_error');
  const r3 = await raw('POST', '/v1/customers', { headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' }, body: '{"name":"x"}' });
  assert.equal(r3.status, 400);
  const r4 = await raw('GET', '/v1/nothing_here', { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(r4.status, 404);
  assert.match(r4.body.error.message, /^Unrecognized request URL \(GET: \/v1\/nothing_here\)/);
});

// List pages are served from each object's pre-rendered text (server.js,
// renderList); they must be byte for byte JSON.stringify(body, null, 2), and
// never stale after a change. Each page is compared with (1) JSON.stringify of
// its own parse, (2) the same request through the ordinary path (`expand[]=`,
// an unset expansion, is no expansion but is not served from text) and (3) a
// list body built from the objects as retrieved one by one.
function rawText(p) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path: p, headers: { Authorization: `Bearer ${KEY}` } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

let pagesChecked = 0;
async function checkPage(p) {
  pagesChecked++;
  const fast = await rawText(p);
  assert.equal(fast.status, 200, `${p}: ${fast.text}`);
  assert.equal(Number(fast.headers['content-length']), Buffer.byteLength(fast.text), `${p}: Content-Length`);
  const body = JSON.parse(fast.text);
  assert.equal(body.object, 'list');
  assert.equal(JSON.stringify(body, null, 2), fast.text, `${p}: not what JSON.stringify gives`);
  const slow = await rawText(p + (p.includes('?') ? '&' : '?') + 'expand[]=');
  assert.equal(slow.status, 200);
  assert.equal(fast.text, slow.text, `${p}: differs from the ordinary path`);
  return { body, text: fast.text };
}

const RETRIEVE = {
  customer: '/v1/customers/', product: '/v1/products/', price: '/v1/prices/', coupon: '/v1/coupons/',
  subscription: '/v1/subscriptions/', invoice: '/v1/invoices/', payment_intent: '/v1/payment_intents/', event: '/v1/events/',
};
async function checkAgainstRetrieve(p) {
  const { body, text } = await checkPage(p);
  const data = [];
  for (const o of body.data) {
    const r = await rawText(RETRIEVE[o.object] + encodeURIComponent(o.id));
    assert.equal(r.status, 200);
    data.push(JSON.parse(r.text));
  }
  const expected = JSON.stringify({ object: 'list', data, has_more: body.has_more, url: body.url }, null, 2);
  assert.equal(text, expected, `${p}: differs from the objects retrieved one by one`);
  return body;
}

// Every page of a list, forwards with starting_after and back with ending_before.
async function walk(p, limit) {
  const sep = p.includes('?') ? '&' : '?';
  const ids = [];
  let after = null;
  let pages = 0;
  for (;;) {
    const { body } = await checkPage(`${p}${sep}limit=${limit}${after ? `&starting_after=${after}` : ''}`);
    pages++;
    ids.push(...body.data.map((o) => o.id));
    if (!body.has_more) break;
    assert.equal(body.data.length, limit);
    after = body.data[body.data.length - 1].id;
  }
  if (ids.length) {
    // past the oldest: an empty page
    const { body: empty } = await checkPage(`${p}${sep}limit=${limit}&starting_after=${ids[ids.length - 1]}`);
    assert.deepEqual(empty.data, []);
    assert.equal(empty.has_more, false);
    const back = [];
    let before = ids[ids.length - 1];
    for (;;) {
      const { body } = await checkPage(`${p}${sep}limit=${limit}&ending_before=${before}`);
      back.unshift(...body.data.map((o) => o.id));
      if (!body.has_more) break;
      before = body.data[0].id;
    }
    assert.deepEqual(back, ids.slice(0, -1));
  }
  return { ids, pages };
}

const LISTS = ['/v1/customers', '/v1/products', '/v1/prices', '/v1/coupons', '/v1/subscriptions?status=all',
  '/v1/invoices', '/v1/payment_intents', '/v1/events'];

test('list pages from pre-rendered text: byte-identical to JSON.stringify, never stale', async () => {
  await reset();
  pagesChecked = 0;
  const stripe = client();
  await control('seed', { products: 5, coupons: 3, customers: 60 });
  // warm the customers' texts, then let seeding change them (a subscription sets a customer's currency)
  const warm = await checkPage('/v1/customers?limit=100');
  assert.ok(warm.body.data.every((c) => c.currency === null));
  await control('seed', { subscriptions: 12 });
  const seeded = await checkAgainstRetrieve('/v1/customers?limit=100');
  const subscribed = (await stripe.subscriptions.list({ status: 'all', limit: 100 })).data.map((s) => s.customer);
  assert.ok(subscribed.length > 0);
  assert.deepEqual(seeded.data.filter((c) => c.currency === 'usd').map((c) => c.id).sort(), [...new Set(subscribed)].sort());
  // objects through the API too, so that events exist; a discount embeds its coupon
  const withCoupon = await stripe.customers.create({ name: 'Coupon Holder', email: 'coupon@example.com', coupon: 'WELCOME10', payment_method: 'pm_card_visa' });
  const prices = await stripe.prices.list({ limit: 100, type: 'recurring' });
  const monthly = prices.data.find((x) => x.recurring.interval === 'month');
  await stripe.subscriptions.create({ customer: withCoupon.id, items: [{ price: monthly.id }] });

  for (const p of LISTS) {
    await checkAgainstRetrieve(`${p}${p.includes('?') ? '&' : '?'}limit=100`);
    let total = 0;
    for (const limit of [1, 7, 100]) {
      const { ids } = await walk(p, limit);
      if (limit === 1) total = ids.length; else assert.equal(ids.length, total, `${p} limit ${limit}`);
    }
    assert.ok(total > 0, `${p} is empty`);
    // an empty page from a filter
    const { body } = await checkPage(`${p}${p.includes('?') ? '&' : '?'}created[gt]=4102444800`);
    assert.deepEqual(body.data, []);
  }

  // Changes in place, some to objects other objects embed; every page stays exact.
  const cust = seeded.data[3];
  await stripe.customers.update(cust.id, { metadata: { tier: 'gold' }, name: 'Renamed Customer' });
  await stripe.coupons.update('WELCOME10', { name: 'Welcome, renamed' });
  const subs = (await checkPage('/v1/subscriptions?status=all&limit=100')).body;
  const usedPrice = subs.data[0].items.data[0].price.id;
  await stripe.prices.update(usedPrice, { nickname: 'Renamed price', metadata: { k: 'v' } });
  const gone = seeded.data[10];
  await stripe.customers.del(gone.id);
  const canceled = subs.data[1];
  await stripe.subscriptions.cancel(canceled.id);
  for (const p of LISTS) await checkAgainstRetrieve(`${p}${p.includes('?') ? '&' : '?'}limit=100`);
  const custs = (await checkPage('/v1/customers?limit=100')).body.data;
  const c2 = custs.find((c) => c.id === cust.id);
  assert.equal(c2.name, 'Renamed Customer');
  assert.deepEqual(c2.metadata.tier, 'gold');
  assert.equal(custs.find((c) => c.id === withCoupon.id).discount.coupon.name, 'Welcome, renamed');
  assert.ok(!custs.some((c) => c.id === gone.id), 'a deleted customer is not listed');
  const subs2 = (await checkPage('/v1/subscriptions?status=all&limit=100')).body.data;
  assert.ok(subs2.filter((s) => s.items.data.some((si) => si.price.id === usedPrice)).every((s) => s.items.data.find((si) => si.price.id === usedPrice).price.nickname === 'Renamed price'));
  assert.equal(subs2.find((s) => s.id === canceled.id).status, 'canceled');
  for (const p of LISTS) await walk(p, 7);

  // With latency a request runs later than it arrives (from a timer): a page
  // rendered between an update's arrival and its execution is not served after it.
  await control('config', { latency_ms: 150 });
  const early = rawText('/v1/customers?limit=100'); // arrives first, runs first
  await new Promise((r) => setTimeout(r, 40));
  await stripe.customers.update(cust.id, { metadata: { late: 'yes' } });
  await early;
  const late = (await checkPage('/v1/customers?limit=100')).body.data.find((c) => c.id === cust.id);
  assert.equal(late.metadata.late, 'yes');
  await control('config', { latency_ms: 0 });
  await checkAgainstRetrieve('/v1/customers?limit=100');
  await checkAgainstRetrieve('/v1/events?limit=100');
  // every page checked came from text, and none of the expand[]= ones (the 3
  // more: the two lists through the library and the early page)
  assert.equal((await control('stats')).lists_prerendered, pagesChecked + 3);
});
