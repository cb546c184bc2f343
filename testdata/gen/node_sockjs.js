// STOMP over SockJS for record.py, as Spring applications serve it: the @stomp/stompjs
// client over sockjs-client (its websocket transport: /stomp/<server>/<session>/websocket)
// against a `sockjs` server carrying a small STOMP 1.2 broker (CONNECT → CONNECTED, SUBSCRIBE,
// SEND → MESSAGE, DISCONNECT). Prints what each side sent as JSON on stdout:
// [{from, sockjs, stomp?, destination?, body?}] (sockjs: open, array).
const http = require('http');
const sockjs = require('sockjs');
const SockJS = require('sockjs-client');
const { Client } = require('@stomp/stompjs');
const port = Number(process.argv[2]);
const log = [];
process.on('uncaughtException', (e) => { console.error('uncaught', e); process.exit(3); });

const frame = (command, headers, body = '') =>
  `${command}\n${Object.entries(headers).map(([k, v]) => `${k}:${v}`).join('\n')}\n\n${body}\0`;
const parse = (text) => {
  if (/^[\r\n]*$/.test(text)) return null;
  const [head, ...rest] = text.split('\n\n');
  const [command, ...lines] = head.replace(/^[\r\n]+/, '').split('\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
  return { command, headers, body: rest.join('\n\n').replace(/\0[\r\n]*$/, '') };
};

const service = sockjs.createServer({ log: () => {}, heartbeat_delay: 60000 });
const subs = [];
let next = 0;
service.on('connection', (conn) => {
  log.push({ from: 'server', sockjs: 'open' });
  const send = (command, headers, body) => {
    conn.write(frame(command, headers, body));
    log.push({ from: 'server', sockjs: 'array', stomp: command, ...(headers.destination ? { destination: headers.destination } : {}), ...(body ? { body } : {}) });
  };
  conn.on('data', (text) => {
    const f = parse(text);
    if (!f) return;
    if (f.command === 'CONNECT' || f.command === 'STOMP') {
      send('CONNECTED', { version: '1.2', 'heart-beat': '0,0' });
    } else if (f.command === 'SUBSCRIBE') {
      subs.push({ conn, id: f.headers.id, destination: f.headers.destination });
    } else if (f.command === 'SEND') {
      for (const s of subs.filter((s) => s.destination === f.headers.destination)) {
        send('MESSAGE', { subscription: s.id, 'message-id': String(next++), destination: s.destination }, f.body);
      }
    }
    if (f.headers.receipt) send('RECEIPT', { 'receipt-id': f.headers.receipt });
  });
});
const server = http.createServer();
service.installHandlers(server, { prefix: '/stomp' });
server.listen(port, '127.0.0.1', () => {
  const client = new Client({
    webSocketFactory: () => new SockJS(`http://127.0.0.1:${port}/stomp`, null, { transports: ['websocket'] }),
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    reconnectDelay: 0,
    debug: () => {},
  });
  client.onConnect = () => {
    log.push({ from: 'client', sockjs: 'array', stomp: 'CONNECT' });
    client.subscribe('/topic/news', () => {});
    log.push({ from: 'client', sockjs: 'array', stomp: 'SUBSCRIBE', destination: '/topic/news' });
    for (const body of ['hello over sockjs', 'ünïcödé "quoted" ✓']) {
      client.publish({ destination: '/topic/news', body });
      log.push({ from: 'client', sockjs: 'array', stomp: 'SEND', destination: '/topic/news', body });
    }
    setTimeout(async () => {
      await client.deactivate();
      log.push({ from: 'client', sockjs: 'array', stomp: 'DISCONNECT' });
      setTimeout(() => {
        server.close();
        process.stdout.write(JSON.stringify(log));
        process.exit(0);
      }, 300);
    }, 300);
  };
  client.activate();
});
