// A backend on Node's `ws` (Debian's node-ws, found through NODE_PATH=/usr/share/nodejs) that serves
// a page and a WebSocket, both over HTTP/1.1: GET /app/ is the page; /app/ws is a WebSocket with
// permessage-deflate that echoes each message (text or binary) behind a "ws:" prefix. Each request
// and WebSocket is reported as one JSON line on stdout (what the backend saw: method, url, HTTP
// version, fields, the extensions offered and the answer it sent); the first line is its port.
const http = require('http');
const {WebSocketServer} = require('ws');
const report = (o) => process.stdout.write(JSON.stringify(o) + '\n');
// The icon is inline: the browser asks for nothing else than the page's own requests.
const PAGE = '<!doctype html><meta charset="utf-8"><title>through the proxy</title>' +
             '<link rel="icon" href="data:,">' +
             '<p id="origin">served by the node backend</p>\n';
const server = http.createServer((req, res) => {
  report({kind: 'request', method: req.method, url: req.url, version: req.httpVersion,
          headers: req.headers});
  if (req.method === 'GET' && req.url === '/app/') {
    res.writeHead(200, {'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store'});
    res.end(PAGE);
    return;
  }
  res.writeHead(404, {'content-type': 'text/plain'});
  res.end('not here\n');
});
const wss = new WebSocketServer({noServer: true, perMessageDeflate: {threshold: 0},
                                 maxPayload: 1 << 24});
wss.on('headers', (headers, req) => { req.answer = headers.slice(1); });
server.on('upgrade', (req, socket, head) => {
  if (req.url !== '/app/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    report({kind: 'websocket', method: req.method, url: req.url, version: req.httpVersion,
            headers: req.headers, answer: req.answer, extensions: ws.extensions});
    ws.on('message', (m, isBinary) => {
      report({kind: 'message', binary: isBinary, length: m.length});
      ws.send(Buffer.concat([Buffer.from('ws:'), Buffer.from(m)]), {binary: isBinary});
    });
    ws.on('error', () => {});
  });
});
server.listen({port: 0, host: '127.0.0.1'}, () => console.log(server.address().port));
