// ASP.NET Core SignalR's JSON hub protocol for record.py: the @microsoft/signalr 8 client
// (WebSocket transport, no negotiation) against a small hub written on `ws` here: the
// handshake ({"protocol":"json","version":1} → {}), invocations both ways, a completion with
// a result and one with an error, pings, and the close message. Every message each side
// sent is logged as JSON on stdout: [{from, signalr (type name), target?, invocation_id?}].
const { WebSocketServer } = require('ws');
const signalR = require('@microsoft/signalr');
const port = Number(process.argv[2]);
const RS = '\x1e';
const log = [];
const TYPES = { 1: 'invocation', 2: 'stream-item', 3: 'completion', 4: 'stream-invocation', 5: 'cancel-invocation', 6: 'ping', 7: 'close' };
process.on('uncaughtException', (e) => { console.error('uncaught', e); process.exit(3); });
const record = (from, data) => {
  for (const part of data.toString().split(RS).filter((p) => p.length > 0)) {
    const o = JSON.parse(part);
    const entry = { from, signalr: o.type === undefined ? (o.protocol ? 'handshake' : 'handshake-response') : TYPES[o.type] };
    if (o.target) entry.target = o.target;
    if (o.invocationId) entry.invocation_id = o.invocationId;
    log.push(entry);
  }
};

const wss = new WebSocketServer({ port, host: '127.0.0.1' });
wss.on('connection', (ws) => {
  const send = (objs) => {
    const data = objs.map((o) => JSON.stringify(o) + RS).join('');
    record('server', data);
    ws.send(data);
  };
  ws.on('message', (data) => {
    record('client', data);
    for (const part of data.toString().split(RS).filter((p) => p.length > 0)) {
      const m = JSON.parse(part);
      if (m.protocol) send([{}]);
      else if (m.type === 1 && m.target === 'Add') send([{ type: 3, invocationId: m.invocationId, result: m.arguments[0] + m.arguments[1] }]);
      else if (m.type === 1 && m.target === 'Fail') send([{ type: 3, invocationId: m.invocationId, error: 'An unexpected error occurred invoking \'Fail\' on the server.' }]);
      else if (m.type === 1 && m.target === 'SendMessage') send([{ type: 1, target: 'ReceiveMessage', arguments: m.arguments }, { type: 6 }]);
      else if (m.type === 7) ws.close();
    }
  });
});
wss.on('listening', async () => {
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`http://127.0.0.1:${port}/chathub`, { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.None)
    .build();
  let received = 0;
  conn.on('ReceiveMessage', () => { received += 1; });
  await conn.start();
  await conn.invoke('Add', 2, 3);
  await conn.invoke('Fail').catch(() => {});
  await conn.send('SendMessage', 'alice', 'héllo hub');
  setTimeout(async () => {
    await conn.stop();
    setTimeout(() => { wss.close(); process.stdout.write(JSON.stringify(log)); process.exit(received === 1 ? 0 : 4); }, 300);
  }, 300);
});
