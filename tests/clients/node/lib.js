// What the three Node clients of the matrix share: the checks' output ("ok - ..." / "not ok - ..."
// and "# " details, as tests/lib/testlib.sh prints them), the upstream view of a record at the
// Stripe fake, versions read from the installed packages, and a watchdog so that a hang through
// the proxy fails the client instead of stalling the whole matrix.
// Environment: see tests/integration/78_clients.py. Never print DATABASE_URL, PGPASSWORD or
// STRIPE_TEST_KEY: they hold secrets.
'use strict';

const fs = require('fs');
const path = require('path');

const env = process.env;
let failed = false;

function detail(text) {
  for (const line of String(text).split('\n')) console.log('#   ' + line);
}

function check(desc, cond, info) {
  console.log((cond ? 'ok - ' : 'not ok - ') + desc);
  if (!cond) {
    failed = true;
    if (info !== undefined) detail(typeof info === 'string' ? info : JSON.stringify(info));
  }
  return cond;
}

// step runs one group of checks; an exception it did not expect fails the group but lets the
// next groups run, so one broken statement does not hide what else works.
async function step(desc, fn) {
  try {
    await fn();
  } catch (e) {
    check(desc, false, `unexpected ${e && e.constructor && e.constructor.name}: ${e && e.code ? e.code + ' ' : ''}` +
      `${e && e.message}`);
  }
}

// The record as upstream has it (a deleted customer answers {"id": ..., "deleted": true}).
async function stripeGet(what) {
  const auth = Buffer.from(env.STRIPE_TEST_KEY + ':').toString('base64');
  const r = await fetch(`${env.FAKE_URL}/v1/${what}`, { headers: { Authorization: 'Basic ' + auth } });
  return r.json();
}

// apigres re-applies the mirror after a rollback asynchronously (within milliseconds): poll.
async function eventually(fn, seconds = 10) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// package.json of an installed package, read from disk: postgres.js's "exports" hides it from require.
function version(pkg) {
  return JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules', pkg, 'package.json'), 'utf8')).version;
}

function matrix(row, library) {
  console.log(`# matrix: ${row} | ${library} | Node ${process.versions.node} | npm registry (package-lock.json)`);
}

function watchdog(seconds) {
  setTimeout(() => {
    check(`finished within ${seconds} s (a statement hangs?)`, false);
    process.exit(1);
  }, seconds * 1000).unref();
}

function done() {
  process.exitCode = failed ? 1 : 0;
}

// The refusal's text as apigres maps the fake's 400 for an invalid email.
function refusalText() {
  return `Error updating customer ${env.CUSTOMER_ID}: Invalid email address`;
}

module.exports = { env, check, detail, step, stripeGet, eventually, version, matrix, watchdog, done, refusalText };
