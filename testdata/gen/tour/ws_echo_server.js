// Tour system 5: the `ws` echo server behind an HTTP server that also serves the page, as
// in the tutorial that then looks at the traffic in Wireshark. The server pushes "get it"
// on connect and echoes every message; TCP keepalive is on with a short idle time so the
// idle connection shows probes.
// Usage: node ws_echo_server.js PORT [CERT KEY]   (with CERT and KEY: https and wss)
const fs = require('fs');
const http = require('http');
const https = require('https');
const WebSocket = require('ws');

const port = Number(process.argv[2] || 11111);
const tls = process.argv.length > 4;

// The page: waits for the push, sends two messages, and after an idle while either sends
// one more (?rst) or closes (?close).
const PAGE = `<!doctype html><title>echo</title><pre id=log></pre><script>
const mode = location.search.slice(1);
const log = (s) => { document.getElementById('log').textContent += s + '\\n'; };
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo');
ws.onmessage = (e) => {
  log('got ' + e.data);
  if (e.data === 'get it') ws.send('hello 1');
  else if (e.data === 'hello 1') ws.send('hello 2');
  else if (e.data === 'hello 2')
    setTimeout(() => (mode === 'close' ? ws.close(1000, 'bye') : ws.send('still there?')), 4500);
};
ws.onclose = (e) => log('closed ' + e.code);
</script>`;

function handler(req, res) {
  if (req.url.split('?')[0] === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(PAGE);
  } else {
    res.writeHead(404);
    res.end();
  }
}

const server = tls
  ? https.createServer({ cert: fs.readFileSync(process.argv[3]), key: fs.readFileSync(process.argv[4]) }, handler)
  : http.createServer(handler);
const wss = new WebSocket.Server({ server });

wss.on('connection', (ws, req) => {
  req.socket.setKeepAlive(true, 1000);
  console.log('connected');
  ws.send('get it');
  ws.on('message', (data) => {
    console.log('echo ' + data);
    ws.send(data.toString());
  });
  ws.on('close', (code) => console.log('closed ' + code));
});

server.listen(port, '127.0.0.1', () => console.log('listening'));
