// Clients for tour system 2 (sio_chat_server.js): three socket.io-client users with the
// default transports (long-polling, then the upgrade to WebSocket). Once all three are on
// WebSocket, alice and then bob send a `msg`; each must reach the two others. Prints
// "chatted", waits while other clients have their turn, then everyone disconnects; the last
// line is a JSON summary (who sent what, each user's WebSocket client port).
const { io } = require('socket.io-client');
const port = Number(process.argv[2] || 8080);
const linger = Number(process.argv[3] || 3000);

const names = ['alice', 'bob', 'carol'];
const users = names.map((name) => ({ name, socket: io(`http://127.0.0.1:${port}`), got: [] }));

const upgraded = (u) =>
  new Promise((resolve) => {
    const check = () => {
      const engine = u.socket.io.engine;
      if (engine && engine.transport && engine.transport.name === 'websocket' && !engine.upgrading) {
        resolve();
        return true;
      }
      return false;
    };
    u.socket.on('connect', () => {
      if (!check()) u.socket.io.engine.once('upgrade', () => setTimeout(check, 50));
    });
  });

for (const u of users) u.socket.on('msg', (data) => u.got.push(data));
const received = (u, n) =>
  new Promise((resolve) => {
    const poll = () => (u.got.length >= n ? resolve() : setTimeout(poll, 20));
    poll();
  });

(async () => {
  await Promise.all(users.map(upgraded));
  users[0].socket.emit('msg', 'hi all, alice here');
  await Promise.all([received(users[1], 1), received(users[2], 1)]);
  users[1].socket.emit('msg', { from: 'bob', text: 'hello alice', n: [1, 2, 3] });
  await Promise.all([received(users[0], 1), received(users[2], 2)]);
  console.log('chatted');
  await new Promise((r) => setTimeout(r, linger));
  const summary = users.map((u) => ({
    name: u.name,
    client_port: u.socket.io.engine.transport.ws._socket.localPort,
    got: u.got,
  }));
  for (const u of users) u.socket.disconnect();
  await new Promise((r) => setTimeout(r, 300));
  console.log(JSON.stringify(summary));
  process.exit(0);
})();
