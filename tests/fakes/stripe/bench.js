#!/usr/bin/env node
// Throughput of the Stripe fake: N requests per scenario from a keep-alive
// Node client at concurrency C, on loopback. Starts its own fake unless a URL
// is given.
//
//   node bench.js [--requests 20000] [--concurrency 32] [--url http://127.0.0.1:PORT]
'use strict';

const http = require('http');
const path = require('path');
const { spawn } = require('child_process');
const readline = require('readline');

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const N = Number(opt('--requests', 20000));
const C = Number(opt('--concurrency', 32));
let base = opt('--url', null);
const AUTH = 'Bearer sk_test_bench';

function request(agent, method, p, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(p, base);
    const headers = { Authorization: AUTH };
    if (body) { headers['Content-Type'] = 'application/x-www-form-urlencoded'; headers['Content-Length'] = Buffer.byteLength(body); }
    const req = http.request({ agent, method, host: u.hostname, port: u.port, path: u.pathname + u.search, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

async function run(name, make) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: C });
  let next = 0; let bad = 0;
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (next < N) {
      const i = next++;
      const [m, p, b] = make(i);
      const r = await request(agent, m, p, b);
      if (r.status !== 200) bad++;
    }
  }
  await Promise.all(Array.from({ length: C }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  agent.destroy();
  const rate = Math.round(N / secs);
  console.log(`${name.padEnd(34)} ${N} requests in ${secs.toFixed(2)} s = ${rate} req/s${bad ? ` (${bad} not 200)` : ''}`);
  return rate;
}

async function main() {
  let proc = null;
  if (!base) {
    const t0 = Date.now();
    proc = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise((resolve) => readline.createInterface({ input: proc.stdout }).once('line', resolve));
    console.log(`started in ${Date.now() - t0} ms: ${line}`);
    base = line.replace(/^.* on /, '');
  }
  const ctl = async (p, body) => {
    const r = await fetch(`${base}/_fake/${p}`, { method: 'POST', body: JSON.stringify(body) });
    return r.json();
  };
  await ctl('reset', { config: true });
  const s = await ctl('seed', { customers: 10000 });
  console.log(`seeded 10,000 customers in ${s.took_ms} ms`);
  const list = JSON.parse((await request(undefined, 'GET', '/v1/customers?limit=100')).body).data.map((c) => c.id);
  await run('GET /v1/customers/{id}', (i) => ['GET', `/v1/customers/${list[i % list.length]}`]);
  await run('GET /v1/customers?limit=10', () => ['GET', '/v1/customers?limit=10']);
  await run('POST /v1/customers (create)', (i) => ['POST', '/v1/customers', `email=bench${i}%40example.com&name=Bench+${i}&metadata[i]=${i}`]);
  await run('POST /v1/customers/{id} (update)', (i) => ['POST', `/v1/customers/${list[i % list.length]}`, `metadata[n]=${i}`]);
  if (proc) proc.kill('SIGTERM');
}

main().catch((e) => { console.error(e); process.exit(1); });
