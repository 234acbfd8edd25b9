// An HTTP/1.1 tunnel client over TLS that half-closes (test_proxy_tunnel.py): Python's ssl cannot
// end its TLS sending and go on reading, Node's tls can (allowHalfOpen).
//   node halfclose_client.js PORT PATH FIRST CUTS SECOND OUT
// Sends an Upgrade (bytestream) for PATH, waits for the 101, then sends the file FIRST in pieces
// cut at CUTS (comma-separated offsets, or "-"). For a PATH of /after-eof it then ends its side
// (close_notify, FIN) and reads to the end; otherwise it first reads to the other side's end, then
// sends the file SECOND and ends. What came after the 101 goes to the file OUT; exit 0 once the
// connection closed without an error.
'use strict';
const fs = require('fs');
const tls = require('tls');

const [port, path, firstFile, cuts, secondFile, outFile] = process.argv.slice(2);
const first = fs.readFileSync(firstFile);
const second = fs.readFileSync(secondFile);
const points = cuts === '-' ? [] : cuts.split(',').map((x) => parseInt(x, 10));

const sock = tls.connect({ host: '127.0.0.1', port: parseInt(port, 10), rejectUnauthorized: false,
                           ALPNProtocols: ['http/1.1'], allowHalfOpen: true });
let head = Buffer.alloc(0);
let switched = false;
const got = [];

function sendPieces(buf, offsets) {
  let at = 0;
  for (const p of [...offsets, buf.length]) {
    if (p > at) sock.write(buf.subarray(at, p));
    at = Math.max(at, p);
  }
}

sock.on('secureConnect', () => {
  sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: bytestream\r\nConnection: Upgrade\r\n\r\n`);
});
sock.on('data', (d) => {
  if (switched) {
    got.push(d);
    return;
  }
  head = Buffer.concat([head, d]);
  const at = head.indexOf('\r\n\r\n');
  if (at < 0) return;
  if (!head.subarray(0, 13).toString().startsWith('HTTP/1.1 101 ')) {
    process.stderr.write(`no 101: ${head.toString()}\n`);
    process.exit(1);
  }
  switched = true;
  got.push(head.subarray(at + 4));
  sendPieces(first, points);
  if (path.startsWith('/after-eof')) sock.end();
});
sock.on('end', () => {
  if (!path.startsWith('/after-eof')) {
    sock.write(second);
    sock.end();
  }
});
sock.on('error', (e) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(1);
});
sock.on('close', (hadError) => {
  fs.writeFileSync(outFile, Buffer.concat(got));
  process.exit(hadError ? 1 : 0);
});
