// Node's http2 client opening an RFC 8441 WebSocket (extended CONNECT) to /ws/echo and checking
// the echo of one masked text frame. usage: node ws_node_client.js URL
const http2 = require('http2');
const url = process.argv[2];
const client = http2.connect(url, {rejectUnauthorized: false});
const fail = (why) => { console.log(JSON.stringify({error: why})); process.exit(1); };
client.on('error', (e) => fail(e.message));
setTimeout(() => fail('timeout'), 15000).unref();
client.on('remoteSettings', (s) => {
  const req = client.request({
    ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/ws/echo',
    ':scheme': url.startsWith('https') ? 'https' : 'http', ':authority': new URL(url).host,
    'sec-websocket-version': '13'});
  let status = 0;
  req.on('response', (h) => {
    status = h[':status'];
    const payload = Buffer.from('hello over an HTTP/2 stream'), key = Buffer.from([7, 1, 9, 4]);
    req.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), key,
                             payload.map((b, i) => b ^ key[i % 4])]));
  });
  req.on('data', (d) => {
    console.log(JSON.stringify({enableConnectProtocol: s.enableConnectProtocol, status,
                                opcode: d[0] & 0x0f, text: d.subarray(2, 2 + d[1]).toString()}));
    req.close();
    client.close();
  });
});
