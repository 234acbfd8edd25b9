// An HTTP/2 server (Node's http2, settings.enableConnectProtocol) accepting RFC 8441 WebSockets
// and answering each text message with "node:" + message; a minimal frame parser, no library.
const http2 = require('http2');
const server = http2.createServer({settings: {enableConnectProtocol: true}});
const frame = (op, payload) => {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | op, len])
             : Buffer.from([0x80 | op, 126, len >> 8, len & 255]);
  return Buffer.concat([head, payload]);
};
server.on('stream', (stream, headers) => {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({':status': 400});
    stream.end();
    return;
  }
  stream.respond({':status': 200});
  let buf = Buffer.alloc(0);
  stream.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 0x0f, masked = buf[1] & 0x80;
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      const key = masked ? buf.subarray(off, off + 4) : null;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (key) for (let i = 0; i < len; i++) payload[i] ^= key[i % 4];
      buf = buf.subarray(off + len);
      if (op === 8) { stream.end(frame(8, payload)); return; }
      if (op === 1) stream.write(frame(1, Buffer.from('node:' + payload.toString())));
    }
  });
  stream.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
