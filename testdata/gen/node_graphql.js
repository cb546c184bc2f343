// GraphQL over WebSocket for record.py: a graphql-ws server (protocol graphql-transport-ws)
// on `ws` and the graphql-ws client: a named query, a named subscription with two results,
// and an anonymous query. Prints what each side sent as JSON on stdout:
// [{from, graphql, id?, operation?, operation_name?}].
const { WebSocketServer, WebSocket } = require('ws');
const { useServer } = require('graphql-ws/use/ws');
const { createClient } = require('graphql-ws');
const { buildSchema } = require('graphql');
const port = Number(process.argv[2]);
const log = [];

const schema = buildSchema(`
  type Query { hello(name: String): String }
  type Subscription { greetings: String }
`);
const roots = {
  query: { hello: ({ name }) => `hello ${name || 'world'}` },
  subscription: {
    greetings: async function* () {
      for (const hi of ['Hi', 'Bonjour']) yield { greetings: hi };
    },
  },
};
const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/graphql' });
useServer(
  {
    schema,
    roots,
    onConnect: () => {
      log.push({ from: 'client', graphql: 'connection_init' });
      log.push({ from: 'server', graphql: 'connection_ack' });
    },
    onNext: (_ctx, id) => {
      log.push({ from: 'server', graphql: 'next', id });
    },
    onComplete: (_ctx, id) => {
      log.push({ from: 'server', graphql: 'complete', id });
    },
  },
  wss,
);

let ids = 0;
const client = createClient({
  url: `ws://127.0.0.1:${port}/graphql`,
  webSocketImpl: WebSocket,
  lazy: false,
  generateID: () => String(++ids),
});
const run = (query, operation, name) =>
  new Promise((ok, fail) => {
    client.subscribe({ query }, { next: () => {}, error: fail, complete: ok });
    log.push({ from: 'client', graphql: 'subscribe', id: String(ids), operation, ...(name ? { operation_name: name } : {}) });
  });
(async () => {
  await new Promise((ok) => client.on('connected', ok));
  await run('query Hello { hello(name: "ws") }', 'query', 'Hello');
  await run('subscription Greetings { greetings }', 'subscription', 'Greetings');
  await run('{ hello }', 'query', null);
  await client.dispose();
  setTimeout(() => {
    wss.close();
    process.stdout.write(JSON.stringify(log));
    process.exit(0);
  }, 200);
})();
