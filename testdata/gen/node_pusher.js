// The Pusher Channels protocol (Pusher, Laravel Reverb, Soketi) for record.py: the pusher-js 8
// client against a small Pusher server on `ws` here (`/app/<key>?protocol=7…`):
// connection_established, subscribe and subscription_succeeded, a server event on the
// channel, a ping answered with a pong, unsubscribe. Every message each side sent is logged
// as JSON on stdout: [{from, pusher (the event), channel?}].
const { WebSocketServer } = require('ws');
const Pusher = require('pusher-js');
const port = Number(process.argv[2]);
const log = [];
process.on('uncaughtException', (e) => { console.error('uncaught', e); process.exit(3); });
const record = (from, text) => {
  const o = JSON.parse(text);
  const entry = { from, pusher: o.event };
  const data = typeof o.data === 'string' && o.data.startsWith('{') ? JSON.parse(o.data) : o.data;
  const channel = o.channel || (data && data.channel);
  if (channel) entry.channel = channel;
  log.push(entry);
};

const wss = new WebSocketServer({ port, host: '127.0.0.1' });
wss.on('connection', (ws) => {
  const send = (o) => { const t = JSON.stringify(o); record('server', t); ws.send(t); };
  send({ event: 'pusher:connection_established', data: JSON.stringify({ socket_id: '123.456', activity_timeout: 120 }) });
  ws.on('message', (data) => {
    const text = data.toString();
    record('client', text);
    const m = JSON.parse(text);
    if (m.event === 'pusher:subscribe') {
      send({ event: 'pusher_internal:subscription_succeeded', channel: m.data.channel, data: '{}' });
      setTimeout(() => send({ event: 'order.shipped', channel: m.data.channel, data: JSON.stringify({ id: 42, note: 'héllo pusher' }) }), 50);
    } else if (m.event === 'pusher:ping') {
      send({ event: 'pusher:pong', data: '{}' });
    }
  });
});
wss.on('listening', () => {
  const pusher = new Pusher('app-key', { wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], cluster: 'local', disableStats: true });
  const channel = pusher.subscribe('orders');
  channel.bind('order.shipped', () => {
    pusher.connection.send_event('pusher:ping', {});
    setTimeout(() => {
      pusher.unsubscribe('orders');
      setTimeout(() => {
        pusher.disconnect();
        setTimeout(() => { wss.close(); process.stdout.write(JSON.stringify(log)); process.exit(0); }, 300);
      }, 200);
    }, 200);
  });
});
