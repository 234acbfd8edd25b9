// RFC 8441 tunnels with Node's http2 client: `:protocol echo` (bytes come back, END_STREAM is an
// orderly close both ways) and an unregistered protocol (501). usage: node tunnel_node_client.js URL
const http2 = require('http2');
const url = process.argv[2];
const client = http2.connect(url);
client.on('error', (e) => { console.log(JSON.stringify({error: e.message})); process.exit(1); });
const connect = (protocol) => client.request({':method': 'CONNECT', ':protocol': protocol,
  ':path': '/anywhere', ':scheme': 'http', ':authority': new URL(url).host}, {endStream: false});
client.on('remoteSettings', () => {
  const result = {};
  const echo = connect('echo');
  const chunks = [];
  echo.on('response', (h) => {
    result.echoStatus = h[':status'];
    echo.write('abc');
    echo.end('def');
  });
  echo.on('data', (d) => chunks.push(d));
  echo.on('end', () => {
    result.echoed = Buffer.concat(chunks).toString();
    const other = connect('not-registered');
    other.on('response', (h) => {
      result.otherStatus = h[':status'];
      other.close();
      client.close();
      console.log(JSON.stringify(result));
    });
  });
});
