// A TLS server that offers HTTP/2 (and HTTP/1.1) with a given certificate, for testing
// that upstream/http negotiates HTTP/2 and multiplexes requests over one connection.
//   node h2server.js KEY.pem CERT.pem
// Prints "h2server listening on https://127.0.0.1:PORT". Every path answers a small JSON
// list; GET /stats answers {"sessions": TLS connections so far, "requests": N, "h2": N}.
'use strict';
const fs = require('fs');
const http2 = require('http2');

const [keyFile, certFile] = process.argv.slice(2);
let sessions = 0, requests = 0, h2 = 0;
const server = http2.createSecureServer({
  key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), allowHTTP1: true,
});
server.on('secureConnection', () => { sessions++; });
server.on('request', (req, res) => {
  if (req.url === '/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ sessions, requests, h2 }));
    return;
  }
  requests++;
  if (req.httpVersionMajor === 2) h2++;
  // a little latency, so that concurrent requests overlap on the connection
  setTimeout(() => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('request-id', 'req_h2test');
    res.end(JSON.stringify({ object: 'list', data: [], has_more: false, url: req.url }));
  }, 20);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`h2server listening on https://127.0.0.1:${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
