'use strict';
// Throughput of the fake: starts it on a free port, drives it over keep-alive HTTP from this
// process for a fixed number of requests per scenario, prints req/s, stops it.
//
//   node bench.js [--conns 16] [--scale 1]

const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const CONNS = opt('--conns', 16);
const SCALE = opt('--scale', 1);
const TOKEN = '00D000000000001!fake';

async function main() {
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--port', '0', '--seed-contacts', '10000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => child.kill('SIGTERM')); // also on errors
  const url = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /listening on (\S+)\n/.exec(buf);
      if (m) resolve(m[1]);
    });
    child.once('exit', (c) => reject(new Error(`fake exited ${c}`)));
  });
  console.log(`startup with 10,040 contacts: ${Date.now() - t0} ms`);
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
  const req = (method, p, body) =>
    new Promise((resolve, reject) => {
      const data = body ? Buffer.from(JSON.stringify(body)) : null;
      const r = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: p,
          method,
          agent,
          headers: {
            authorization: `Bearer ${TOKEN}`,
            ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
          },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode >= 300) reject(new Error(`${method} ${p}: ${res.statusCode}`));
            else resolve(chunks.length ? Buffer.concat(chunks).toString() : '');
          });
        },
      );
      r.on('error', reject);
      r.end(data);
    });
  const q = (s) => `/services/data/v59.0/query?q=${encodeURIComponent(s)}`;
  const ids = JSON.parse(await req('GET', q('SELECT Id FROM Contact LIMIT 1000'))).records.map((r) => r.Id);

  const scenarios = [
    ['GET /services/data/ (versions)', 20000, () => ['GET', '/services/data/']],
    ['GET sobjects/Contact/{id}', 20000, (i) => ['GET', `/services/data/v59.0/sobjects/Contact/${ids[i % ids.length]}`]],
    ['PATCH sobjects/Contact/{id}', 10000, (i) => ['PATCH', `/services/data/v59.0/sobjects/Contact/${ids[i % ids.length]}`, { Title: `T${i}` }]],
    ['POST sobjects/Contact', 10000, (i) => ['POST', '/services/data/v59.0/sobjects/Contact', { LastName: `Bench${i}`, Email: `b${i}@example.com` }]],
    ['GET query WHERE Id = (1 row)', 10000, (i) => ['GET', q(`SELECT Id, Name, Email FROM Contact WHERE Id = '${ids[i % ids.length]}'`)]],
    ['GET query LIMIT 200 (5 fields)', 1000, () => ['GET', q('SELECT Id, Name, Email, AccountId, SystemModstamp FROM Contact ORDER BY Id LIMIT 200')]],
    ['GET query 2000-row page over 20k rows', 200, () => ['GET', q('SELECT Id, Name, Email, SystemModstamp FROM Contact WHERE SystemModstamp > 2000-01-01T00:00:00Z ORDER BY SystemModstamp, Id LIMIT 2000')]],
    ['POST composite/sobjects (200 records)', 100, (i) => ['POST', '/services/data/v59.0/composite/sobjects', {
      allOrNone: false,
      records: Array.from({ length: 200 }, (_, k) => ({ attributes: { type: 'Contact' }, LastName: `C${i}-${k}` })),
    }]],
  ];
  for (const [label, n0, mk] of scenarios) {
    const n = Math.max(1, Math.round(n0 * SCALE));
    let i = 0;
    const s0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: CONNS }, async () => {
      while (i < n) await req(...mk(i++));
    }));
    const secs = Number(process.hrtime.bigint() - s0) / 1e9;
    console.log(`${label.padEnd(42)} ${String(n).padStart(6)} req  ${secs.toFixed(2).padStart(6)} s  ${String(Math.round(n / secs)).padStart(6)} req/s`);
  }
  agent.destroy();
  child.kill('SIGTERM');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
