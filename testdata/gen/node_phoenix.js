// Phoenix Channels (Elixir) for record.py: the `phoenix` 1.7 JavaScript client (serializer
// 2.0.0: [join_ref, ref, topic, event, payload] arrays) against a small channel server on
// `ws` here: phx_join and its phx_reply, a push answered with a reply, a broadcast, the
// heartbeat, phx_leave. Every message each side sent is logged as JSON on stdout:
// [{from, phoenix (event), topic}].
const { WebSocketServer, WebSocket } = require('ws');
const { Socket } = require('phoenix');
const port = Number(process.argv[2]);
const log = [];
process.on('uncaughtException', (e) => { console.error('uncaught', e); process.exit(3); });
const record = (from, text) => {
  const [, , topic, event] = JSON.parse(text);
  log.push({ from, phoenix: event, topic });
};

const wss = new WebSocketServer({ port, host: '127.0.0.1' });
wss.on('connection', (ws) => {
  const send = (msg) => { const t = JSON.stringify(msg); record('server', t); ws.send(t); };
  ws.on('message', (data) => {
    const text = data.toString();
    record('client', text);
    const [joinRef, ref, topic, event, payload] = JSON.parse(text);
    if (event === 'phx_join' || event === 'heartbeat' || event === 'phx_leave') {
      send([joinRef, ref, topic, 'phx_reply', { status: 'ok', response: {} }]);
    } else if (event === 'new_msg') {
      send([joinRef, ref, topic, 'phx_reply', { status: 'ok', response: { id: 7 } }]);
      send([null, null, topic, 'new_msg', payload]);
    }
  });
});
wss.on('listening', () => {
  const socket = new Socket(`ws://127.0.0.1:${port}/socket`, { transport: WebSocket, heartbeatIntervalMs: 200, params: { token: 'abc' } });
  socket.connect();
  const channel = socket.channel('room:lobby', {});
  channel.on('new_msg', () => {
    setTimeout(() => {
      channel.leave().receive('ok', () => {
        socket.disconnect(() => {
          setTimeout(() => { wss.close(); process.stdout.write(JSON.stringify(log)); process.exit(0); }, 200);
        });
      });
    }, 300);
  });
  channel.join().receive('ok', () => {
    channel.push('new_msg', { body: 'héllo phoenix' });
  });
});
