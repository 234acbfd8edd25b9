// The peer for the WebSocket benchmark: Node's `ws` (npm) echo server, compression off.
const {WebSocketServer} = require('ws');
const wss = new WebSocketServer({host: '127.0.0.1', port: 0, perMessageDeflate: false,
                                 maxPayload: 1 << 24});
wss.on('listening', () => console.log(wss.address().port));
wss.on('connection', (ws) => ws.on('message', (m, isBinary) => ws.send(m, {binary: isBinary})));
