// JSON-RPC 2.0 over WebSocket for record.py: the rpc-websockets client and server (as
// Ethereum nodes, language servers and MCP servers speak it): calls answered with results,
// a call of an unknown method answered with an error, a notification from the client (which
// this server answers with an error, id null), and a subscribed event (which rpc-websockets
// sends in its own format, {"notification": …}, not JSON-RPC). Every message each side sent
// is logged as it went on the wire, classified here by JSON-RPC 2.0's rules, as JSON on
// stdout: [{from, jsonrpc (null when not JSON-RPC), method?, id?, error_code?}].
const { Server, Client } = require('rpc-websockets');
const port = Number(process.argv[2]);
const log = [];
const methods = new Map(); // request id → method, to name responses
process.on('uncaughtException', (e) => { console.error('uncaught', e); process.exit(3); });

const classify = (from, text) => {
  const o = JSON.parse(text);
  const entry = { from, jsonrpc: null };
  if (o.jsonrpc === '2.0') {
    if (typeof o.method === 'string') {
      entry.jsonrpc = 'id' in o ? 'request' : 'notification';
      entry.method = o.method;
      if ('id' in o) { entry.id = o.id; methods.set(o.id, o.method); }
    } else {
      entry.jsonrpc = 'error' in o ? 'error' : 'response';
      entry.id = o.id;
      if (methods.has(o.id)) { entry.method = methods.get(o.id); methods.delete(o.id); }
      if (o.error) entry.error_code = o.error.code;
    }
  }
  log.push(entry);
};
const logSends = (socket, from) => {
  const send = socket.send.bind(socket);
  socket.send = (data, ...rest) => { classify(from, data.toString()); return send(data, ...rest); };
};

const server = new Server({ port, host: '127.0.0.1' });
server.register('sum', (params) => params[0] + params[1]);
server.register('greet', (params) => `hello ${params.name}`);
server.event('news');
server.wss.on('connection', (ws) => logSends(ws, 'server'));
server.on('listening', () => {
  const client = new Client(`ws://127.0.0.1:${port}`, { autoconnect: true, reconnect: false });
  client.on('open', async () => {
    logSends(client.socket, 'client');
    await client.call('sum', [5, 3]);
    await client.call('greet', { name: 'ünïcödé' });
    await client.call('no.such.method', []).catch(() => {});
    await client.subscribe('news');
    await client.notify('seen', ['article-7']);
    client.on('news', () => {
      setTimeout(() => {
        client.close();
        setTimeout(() => { server.close(); process.stdout.write(JSON.stringify(log)); process.exit(0); }, 300);
      }, 200);
    });
    setTimeout(() => server.emit('news', { headline: 'JSON-RPC over WebSocket' }), 100);
  });
});
