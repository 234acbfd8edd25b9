// GETs paths over one HTTP/2 connection with Node's http2 client and prints one JSON line per
// response: {path, status, headers, length, sha256, alpn}.
// usage: node node_h2_get.js URL PATH...   (https URLs: the self-signed certificate is accepted)
'use strict';
const http2 = require('node:http2');
const crypto = require('node:crypto');

const [url, ...paths] = process.argv.slice(2);
const client = http2.connect(url, { rejectUnauthorized: false });
client.on('error', (err) => { console.error(`session error: ${err.message}`); process.exit(1); });
setTimeout(() => { console.error('timed out'); process.exit(1); }, 20000).unref();

let pending = paths.length;
for (const path of paths) {
  const req = client.request({ ':path': path });
  const hash = crypto.createHash('sha256');
  let length = 0;
  let headers = {};
  req.on('response', (h) => { headers = h; });
  req.on('data', (chunk) => { hash.update(chunk); length += chunk.length; });
  req.on('error', (err) => { console.error(`${path}: ${err.message}`); process.exit(1); });
  req.on('end', () => {
    console.log(JSON.stringify({
      path, status: headers[':status'], headers, length, sha256: hash.digest('hex'),
      alpn: client.alpnProtocol,
    }));
    if (--pending === 0) client.close();
  });
  req.end();
}
