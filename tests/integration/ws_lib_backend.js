// A WebSocket backend on Node's `ws` (Debian's node-ws, found through NODE_PATH=/usr/share/nodejs):
// HTTP/1.1 Upgrade only, permessage-deflate with server_max_window_bits=10 (a choice of its own,
// so a client can tell whose answer it got), the LAST offered sub-protocol chosen. Each text or
// binary message comes back prefixed with "ws:"; the text "head?" is answered with the request
// head it got (JSON: method, url, headers) and "close" with a close frame (code 4001).
// Prints its port on the first line.
const http = require('http');
const {WebSocketServer} = require('ws');
const server = http.createServer((req, res) => {
  res.writeHead(404, {'content-type': 'text/plain'});
  res.end('websocket only\n');
});
const wss = new WebSocketServer({
  server,
  perMessageDeflate: {serverMaxWindowBits: 10, threshold: 0},
  handleProtocols: (protocols) => { const all = [...protocols]; return all.length ? all[all.length - 1] : false; },
  maxPayload: 1 << 24,
});
wss.on('connection', (ws, req) => {
  ws.on('message', (m, isBinary) => {
    if (!isBinary && m.toString() === 'head?') {
      ws.send(JSON.stringify({method: req.method, url: req.url, headers: req.headers, raw: req.rawHeaders}));
      return;
    }
    if (!isBinary && m.toString() === 'close') {
      ws.close(4001, 'asked');
      return;
    }
    ws.send(Buffer.concat([Buffer.from('ws:'), Buffer.from(m)]), {binary: isBinary});
  });
  ws.on('error', () => {});
});
server.listen({port: 0, host: '127.0.0.1', backlog: 4096}, () => console.log(server.address().port));
