// Socket.IO 4 with `transports: ['websocket']` for record.py: no long-polling, so the
// Engine.IO session id is only in the `open` packet of the WebSocket. The client emits an
// event with an acknowledgement and gets one back. Prints {sid, packets} as node_sio.js.
const { Server } = require('socket.io');
const { io } = require('socket.io-client');
const port = Number(process.argv[2]);
const sent = [];
const server = new Server(port, { serveClient: false });
server.on('connection', (socket) => {
  socket.on('ping-me', (n, cb) => {
    cb(n * 2);
    sent.push({ from: 'server', namespace: '/', event: null, args: [n * 2], ack_id: 0 });
  });
});
const client = io(`http://127.0.0.1:${port}`, { transports: ['websocket'] });
client.on('connect', () => {
  const id = client.ids;
  client.emit('ping-me', 21, () => {
    setTimeout(() => {
      const sid = client.io.engine.id;
      client.disconnect();
      setTimeout(() => {
        server.close();
        process.stdout.write(JSON.stringify({ sid, packets: sent }));
        process.exit(0);
      }, 200);
    }, 100);
  });
  sent.push({ from: 'client', namespace: '/', event: 'ping-me', args: [21], ack_id: id });
});
