// Socket.IO v4 peers for record.py: a server and a client with the default transports
// (HTTP long-polling first, then the upgrade to WebSocket), exchanging events, an event with
// an acknowledgement, binary events and a second namespace. Prints what each side sent as
// JSON on stdout: {sid, packets: [{from, namespace, event, args, ack_id?}]} (an
// acknowledgement has event null; sid is the Engine.IO session id).
// With `v2` as second argument, Socket.IO 2 (Engine.IO protocol 3, Socket.IO protocol 4)
// is used on both sides instead of Socket.IO 4 (Engine.IO 4, Socket.IO 5).
const port = Number(process.argv[2]);
const v2 = process.argv[3] === 'v2';
const Server = v2 ? require('socket.io-v2') : require('socket.io').Server;
const io = v2 ? require('socket.io-client-v2') : require('socket.io-client').io;
const sent = [];
// The ack id a client used, by event, so the server's answer can name it.
const ackIds = {};
// Binary arguments are logged as {"bytes_hex": "..."}.
const show = (args) =>
  args.map((a) => (Buffer.isBuffer(a) ? { bytes_hex: a.toString('hex') } : a));
const log = (from, namespace, event, args, extra) =>
  sent.push({ from, namespace, event, args: show(args), ...extra });


const server = v2 ? Server(port, { serveClient: false }) : new Server(port, { serveClient: false });
server.on('connection', (socket) => {
  socket.on('early', (data, cb) => {
    cb(data.length);
    log('server', '/', null, [data.length], { ack_id: ackIds.early });
    socket.emit('early-reply', 2);
    log('server', '/', 'early-reply', [2]);
  });
  socket.on('hello', () => {
    socket.emit('msg', 'hello');
    log('server', '/', 'msg', ['hello']);
  });
  socket.on('greet', (who, cb) => {
    cb('hi ' + who.name);
    log('server', '/', null, ['hi ' + who.name], { ack_id: ackIds.greet });
  });
  socket.on('upload', (data, meta) => {
    const reply = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    socket.emit('file', reply, meta.toUpperCase());
    log('server', '/', 'file', [reply, meta.toUpperCase()]);
  });
});
server.of('/admin').on('connection', (socket) => {
  socket.on('stats', (cb) => {
    cb({ clients: 1 });
    log('server', '/admin', null, [{ clients: 1 }], { ack_id: ackIds.stats });
  });
});

const client = io(`http://127.0.0.1:${port}`);
const step = (fn, ms = 100) => setTimeout(fn, ms);
// A second session that never upgrades: everything goes over long-polling, binary
// attachments as base64 packets.
const poller = io(`http://127.0.0.1:${port}`, { upgrade: false, forceNew: true });
poller.on('connect', () => {
  const b = Buffer.from([9, 8, 7]);
  const id = (ackIds.early = poller.ids);
  poller.emit('early', b, () => {});
  log('client', '/', 'early', [b], { ack_id: id });
});
let sid = null;
let pollSid = null;
client.io.engine.on('upgrade', () => {
  sid = client.io.engine.id;
  pollSid = poller.io.engine.id;
  step(() => {
    client.emit('hello', 'world');
    log('client', '/', 'hello', ['world']);
  });
  step(() => {
    const id = (ackIds.greet = client.ids);
    client.emit('greet', { name: 'alice' }, () => {});
    log('client', '/', 'greet', [{ name: 'alice' }], { ack_id: id });
  }, 200);
  step(() => {
    const b = Buffer.from([1, 2, 3]);
    client.emit('upload', b, 'meta');
    log('client', '/', 'upload', [b, 'meta']);
  }, 300);
  step(() => {
    const admin = io(`http://127.0.0.1:${port}/admin`);
    admin.on('connect', () => {
      const id = (ackIds.stats = admin.ids);
      admin.emit('stats', () => {
        step(() => {
          client.disconnect();
          poller.disconnect();
          admin.disconnect();
          step(() => {
            server.close();
            process.stdout.write(JSON.stringify({ sid, polling_sid: pollSid, packets: sent }));
            process.exit(0);
          }, 300);
        });
      });
      log('client', '/admin', 'stats', [], { ack_id: id });
    });
  }, 400);
});
