// Client for tour system 3 (upgrade_server.js): Node `ws`. One connection echoes messages
// of each length form, pings, then sends a message over the server's limit (close 1009);
// a second writes a frame with the unknown opcode 3 straight onto its socket (close 1002).
// Prints what each side sent as JSON (truth.json's "connections").
const WebSocket = require('ws');
const crypto = require('crypto');
const port = Number(process.argv[2]);

const describe = (from, data, opcode) => {
  const m = { from, opcode };
  if (data.length > 512) {
    m.len = data.length;
    m.sha1 = crypto.createHash('sha1').update(data).digest('hex');
  } else if (opcode === 'text') m.text = data.toString();
  else m.bytes_hex = Buffer.from(data).toString('hex');
  return m;
};

function open(path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
const next = (ws, ev) => new Promise((resolve) => ws.once(ev, (...a) => resolve(a)));

async function first() {
  const ws = await open('/echo');
  const clientPort = ws._socket.localPort;
  const sent = [];
  const text = 'hello';
  const medium = 'x'.repeat(300);
  const big = Buffer.alloc(70000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
  for (const [data, opcode] of [[text, 'text'], [medium, 'text'], [big, 'binary']]) {
    ws.send(data);
    sent.push(describe('client', Buffer.from(data), opcode));
    await next(ws, 'message');
    sent.push(describe('server', Buffer.from(data), opcode));
  }
  ws.ping('are you there');
  sent.push(describe('client', Buffer.from('are you there'), 'ping'));
  await next(ws, 'ping');
  sent.push(describe('server', Buffer.from('are you there'), 'ping'));
  // ws answers the server's ping with a pong by itself.
  sent.push(describe('client', Buffer.from('are you there'), 'pong'));
  await new Promise((r) => setTimeout(r, 100));
  const huge = 'y'.repeat(150000);
  ws.send(huge);
  sent.push(describe('client', Buffer.from(huge), 'text'));
  const [code, reason] = await next(ws, 'close');
  return {
    server_port: port,
    client_port: clientPort,
    messages: sent,
    close: { initiator: 'server', code, reason: reason.toString(), echoed: true },
    tcp_end: 'fin',
  };
}

async function second() {
  const ws = await open('/raw');
  const clientPort = ws._socket.localPort;
  ws.send('hi');
  await next(ws, 'message');
  // A masked frame with the reserved opcode 3, as no library will send it.
  const mask = crypto.randomBytes(4);
  const payload = Buffer.from('what is this');
  for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
  ws._socket.write(Buffer.concat([Buffer.from([0x83, 0x80 | payload.length]), mask, payload]));
  const [code, reason] = await next(ws, 'close');
  return {
    server_port: port,
    client_port: clientPort,
    messages: [describe('client', Buffer.from('hi'), 'text'), describe('server', Buffer.from('hi'), 'text')],
    close: { initiator: 'server', code, reason: reason.toString(), echoed: true },
    tcp_end: 'fin',
  };
}

(async () => {
  const a = await first();
  const b = await second();
  process.stdout.write(JSON.stringify([a, b]));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
