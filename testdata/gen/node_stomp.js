// STOMP over WebSocket for record.py: the @stomp/stompjs client (subprotocol v12.stomp)
// against a small STOMP 1.2 broker written on `ws` here: CONNECT → CONNECTED, SUBSCRIBE,
// SEND → MESSAGE to the subscribers, receipts, DISCONNECT. Prints the frames each side sent
// as JSON on stdout: [{from, stomp, destination?, body?}].
// With `split` after the port, the client also publishes a 3000-character body with
// stompjs's `splitLargeFrames` (1 KiB WebSocket messages), which the broker joins again.
const { WebSocketServer, WebSocket } = require('ws');
const { Client } = require('@stomp/stompjs');
const port = Number(process.argv[2]);
const split = process.argv[3] === 'split';
const log = [];

// --- the broker ---
const frame = (command, headers, body = '') =>
  `${command}\n${Object.entries(headers).map(([k, v]) => `${k}:${v}`).join('\n')}\n\n${body}\0`;
const parse = (data) => {
  const text = data.toString();
  if (/^[\r\n]*$/.test(text)) return null; // heart-beat
  const [head, ...rest] = text.split('\n\n');
  const [command, ...lines] = head.replace(/^[\r\n]+/, '').split('\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
  return { command, headers, body: rest.join('\n\n').replace(/\0[\r\n]*$/, '') };
};
const subs = [];
let nextMessage = 0;
const wss = new WebSocketServer({
  port,
  host: '127.0.0.1',
  handleProtocols: (ps) => ['v12.stomp', 'v11.stomp', 'v10.stomp'].find((p) => ps.has(p)) || false,
});
wss.on('connection', (ws) => {
  const send = (command, headers, body) => {
    ws.send(frame(command, headers, body));
    log.push({ from: 'server', stomp: command, ...(headers.destination ? { destination: headers.destination } : {}), ...(body ? { body } : {}) });
  };
  let held = '';
  ws.on('message', (data) => {
    // A frame split over messages ends in the message that holds its NUL.
    held += data.toString();
    if (!/^[\r\n]*$/.test(held) && !/\0[\r\n]*$/.test(held)) return;
    const f = parse(held);
    held = '';
    if (!f) return;
    if (f.command === 'CONNECT' || f.command === 'STOMP') {
      send('CONNECTED', { version: '1.2', 'heart-beat': '0,0', server: 'tiny/1.0' });
    } else if (f.command === 'SUBSCRIBE') {
      subs.push({ ws, id: f.headers.id, destination: f.headers.destination });
    } else if (f.command === 'SEND') {
      for (const s of subs.filter((s) => s.destination === f.headers.destination)) {
        s.ws.send(frame('MESSAGE', { subscription: s.id, 'message-id': String(nextMessage++), destination: s.destination, 'content-type': 'text/plain' }, f.body));
        log.push({ from: 'server', stomp: 'MESSAGE', destination: s.destination, body: f.body });
      }
    }
    if (f.headers.receipt) send('RECEIPT', { 'receipt-id': f.headers.receipt });
  });
});

// --- the client ---
const client = new Client({
  webSocketFactory: () => new WebSocket(`ws://127.0.0.1:${port}/stomp`, ['v12.stomp']),
  heartbeatIncoming: 0,
  heartbeatOutgoing: 0,
  ...(split ? { splitLargeFrames: true, maxWebSocketChunkSize: 1024 } : {}),
  reconnectDelay: 0,
  debug: () => {},
});
client.onConnect = () => {
  log.push({ from: 'client', stomp: 'CONNECT' });
  client.subscribe('/topic/chat', () => {});
  log.push({ from: 'client', stomp: 'SUBSCRIBE', destination: '/topic/chat' });
  const big = Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
  for (const body of split ? ['hello stomp', big] : ['hello stomp', '{"n":1}']) {
    client.publish({ destination: '/topic/chat', body });
    log.push({ from: 'client', stomp: 'SEND', destination: '/topic/chat', body });
  }
  setTimeout(async () => {
    await client.deactivate();
    log.push({ from: 'client', stomp: 'DISCONNECT' });
    setTimeout(() => {
      wss.close();
      process.stdout.write(JSON.stringify(log));
      process.exit(0);
    }, 200);
  }, 300);
};
client.activate();
