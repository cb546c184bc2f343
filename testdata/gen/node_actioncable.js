// Rails Action Cable for record.py: the @rails/actioncable 8 client (subprotocol
// actioncable-v1-json) against a small cable server on `ws` here: welcome, subscribe and
// confirm_subscription, a `perform` (command message with an action) broadcast back to the
// channel, pings, unsubscribe. Every message each side sent is logged as JSON on stdout:
// [{from, actioncable (type, command or "broadcast"), channel?}].
// The client is written for browsers: the few globals it reads are stubbed.
global.document = { addEventListener() {}, removeEventListener() {}, visibilityState: 'visible', head: { querySelector: () => null } };
global.window = global;
global.addEventListener = () => {};
global.removeEventListener = () => {};
const { WebSocketServer, WebSocket } = require('ws');
const ActionCable = require('@rails/actioncable');
const port = Number(process.argv[2]);
const log = [];
process.on('uncaughtException', (e) => { console.error('uncaught', e); process.exit(3); });
const record = (from, text) => {
  const o = JSON.parse(text);
  const entry = { from, actioncable: o.type || o.command || 'broadcast' };
  if (o.identifier) entry.channel = JSON.parse(o.identifier).channel;
  log.push(entry);
};

const wss = new WebSocketServer({ port, host: '127.0.0.1', handleProtocols: (ps) => (ps.has('actioncable-v1-json') ? 'actioncable-v1-json' : false) });
wss.on('connection', (ws) => {
  const send = (o) => { const t = JSON.stringify(o); record('server', t); ws.send(t); };
  send({ type: 'welcome' });
  const ping = setInterval(() => send({ type: 'ping', message: 1700000000 }), 150);
  ws.on('close', () => clearInterval(ping));
  ws.on('message', (data) => {
    const text = data.toString();
    record('client', text);
    const m = JSON.parse(text);
    if (m.command === 'subscribe') send({ identifier: m.identifier, type: 'confirm_subscription' });
    if (m.command === 'message') send({ identifier: m.identifier, message: JSON.parse(m.data) });
  });
});
wss.on('listening', () => {
  ActionCable.adapters.WebSocket = WebSocket;
  const consumer = ActionCable.createConsumer(`ws://127.0.0.1:${port}/cable`);
  const sub = consumer.subscriptions.create({ channel: 'ChatChannel', room: 'lobby' }, {
    connected() { this.perform('speak', { body: 'héllo cable' }); },
    received() {
      setTimeout(() => {
        sub.unsubscribe();
        setTimeout(() => {
          consumer.disconnect();
          setTimeout(() => { wss.close(); process.stdout.write(JSON.stringify(log)); process.exit(0); }, 300);
        }, 200);
      }, 200);
    },
  });
});
