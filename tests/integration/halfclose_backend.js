// A tunnel backend for half-close tests (test_proxy_tunnel.py), with Node's net, tls and http2.
//   node halfclose_backend.js tcp|tls|h2c [CERT KEY]
// Prints "PORT n" first. tcp and tls take an HTTP/1.1 Upgrade (any token) and answer 101; h2c
// takes an extended CONNECT (RFC 8441, any :protocol) and answers 200. Then, by the path:
//   /after-eof      reads until the client's end (FIN, close_notify or END_STREAM), then answers
//                   "len=N sha=HEX\n" and everything it got, and ends its side.
//   /first/N        sends N bytes (byte i is (i * 31 + (i >> 8) * 7) & 255) and ends its side at
//                   once, reads on until the client's end, then prints a line of JSON
//                   {"path", "len", "sha"} about what it got and closes.
//   /hold           reads, never ends its side (not even after the client's end); once the proxy
//                   closed it, prints {"path", "len", "closed": true} (the 'close' of an HTTP/2
//                   stream: its reset; of a socket: the connection gone).
// Half-open connections are allowed throughout (allowHalfOpen), so each side ends on its own.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http2 = require('http2');
const net = require('net');
const tls = require('tls');

const [mode, certFile, keyFile] = process.argv.slice(2);

function pattern(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8) * 7) & 255;
  return b;
}

// The tunnel's bytes on a duplex (a socket after the 101, or an HTTP/2 stream).
function serveTunnel(path, duplex, first) {
  const got = [];
  if (first.length) got.push(first);
  let ended = false;
  duplex.on('data', (d) => got.push(d));
  duplex.on('error', () => {});
  if (path.startsWith('/hold')) {
    duplex.on('close', () => {
      process.stdout.write(JSON.stringify({ path, len: Buffer.concat(got).length, closed: true }) + '\n');
    });
    duplex.resume();
    return;
  }
  const m = /^\/first\/(\d+)/.exec(path);
  if (m) {
    duplex.end(pattern(parseInt(m[1], 10)));
  }
  duplex.on('end', () => {
    if (ended) return;
    ended = true;
    const all = Buffer.concat(got);
    const sha = crypto.createHash('sha256').update(all).digest('hex');
    if (m) {
      process.stdout.write(JSON.stringify({ path, len: all.length, sha }) + '\n');
      if (duplex.destroy && !duplex.close) duplex.destroy();
      return;
    }
    duplex.end(Buffer.concat([Buffer.from(`len=${all.length} sha=${sha}\n`), all]));
  });
}

function onSocket(sock) {
  let head = Buffer.alloc(0);
  const onHead = (d) => {
    head = Buffer.concat([head, d]);
    const at = head.indexOf('\r\n\r\n');
    if (at < 0) return;
    sock.removeListener('data', onHead);
    const text = head.subarray(0, at).toString('latin1');
    const rest = head.subarray(at + 4);
    const path = text.split('\r\n')[0].split(' ')[1];
    const up = text.split('\r\n').find((l) => l.toLowerCase().startsWith('upgrade:'));
    const token = up ? up.slice(8).trim() : 'bytestream';
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${token}\r\nconnection: Upgrade\r\n\r\n`);
    serveTunnel(path, sock, rest);
  };
  sock.on('data', onHead);
  sock.on('error', () => {});
}

let server;
if (mode === 'tcp') {
  server = net.createServer({ allowHalfOpen: true }, onSocket);
} else if (mode === 'tls') {
  server = tls.createServer({ allowHalfOpen: true, cert: fs.readFileSync(certFile),
                              key: fs.readFileSync(keyFile), ALPNProtocols: ['http/1.1'] }, onSocket);
} else {
  server = http2.createServer({ settings: { enableConnectProtocol: true } });
  server.on('stream', (stream, headers) => {
    if (headers[':method'] !== 'CONNECT') {
      stream.respond({ ':status': 405 }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200 });
    serveTunnel(headers[':path'], stream, Buffer.alloc(0));
  });
  server.on('sessionError', () => {});
}
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
