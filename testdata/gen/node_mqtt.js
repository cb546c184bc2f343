// MQTT over WebSocket for record.py: a Mosquitto broker (`apt-get install mosquitto`; MQTT
// 3.1.1 and 5) reached through a `ws` server that selects the `mqtt` subprotocol and relays
// each WebSocket to the broker's TCP port (Debian's Mosquitto has no WebSocket listener),
// and two `mqtt` clients, MQTT 3.1.1 then MQTT 5, each subscribing, publishing at QoS 1
// (text) and 0 (binary) and receiving its own messages back. Prints what the clients sent
// and received as JSON on stdout:
// [{from, mqtt, client_id?, subscriptions?, topic?, qos?, payload?|payload_hex?, protocol_level?}] (the
// keys of wsdissect's `app` objects).
const { WebSocketServer, createWebSocketStream } = require('ws');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const mqtt = require('mqtt');
const port = Number(process.argv[2]);
const log = [];

async function session(level, id) {
  const client = mqtt.connect(`ws://127.0.0.1:${port}/mqtt`, {
    protocolVersion: level,
    clientId: id,
    clean: true,
    keepalive: 60,
    reconnectPeriod: 0,
  });
  await new Promise((ok) => client.on('connect', ok));
  log.push({ from: 'client', mqtt: 'CONNECT', client_id: id, protocol_level: level });
  log.push({ from: 'server', mqtt: 'CONNACK' });
  const received = [];
  client.on('message', (topic, payload, packet) => received.push({ topic, payload, qos: packet.qos }));
  await client.subscribeAsync(`chat/${id}/#`, { qos: 1 });
  log.push({ from: 'client', mqtt: 'SUBSCRIBE', subscriptions: [{ topic: `chat/${id}/#`, qos: 1 }] });
  log.push({ from: 'server', mqtt: 'SUBACK' });
  const sends = [
    { topic: `chat/${id}/text`, payload: Buffer.from(`hello from ${id}`), qos: 1 },
    { topic: `chat/${id}/bin`, payload: Buffer.from([0, 1, 2, 0xfe, 0xff]), qos: 0 },
  ];
  for (const s of sends) {
    await client.publishAsync(s.topic, s.payload, { qos: s.qos });
  }
  await new Promise((ok) => setTimeout(ok, 200));
  const show = (from, p) => {
    const text = p.payload.toString('utf8');
    const ok = Buffer.from(text, 'utf8').equals(p.payload);
    return { from, mqtt: 'PUBLISH', topic: p.topic, qos: p.qos, ...(ok ? { payload: text } : { payload_hex: p.payload.toString('hex') }) };
  };
  for (const s of sends) log.push(show('client', s));
  for (const r of received) log.push(show('server', r));
  await client.endAsync();
  log.push({ from: 'client', mqtt: 'DISCONNECT' });
}

(async () => {
  const brokerPort = port + 1000;
  const conf = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mqtt-')), 'mosquitto.conf');
  fs.writeFileSync(conf, `listener ${brokerPort} 127.0.0.1\nallow_anonymous true\n`);
  const broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  await new Promise((ok) => setTimeout(ok, 500));
  const wss = new WebSocketServer({ port, host: '127.0.0.1', handleProtocols: (ps) => (ps.has('mqtt') ? 'mqtt' : false) });
  wss.on('connection', (ws) => {
    const tcp = net.connect(brokerPort, '127.0.0.1');
    const stream = createWebSocketStream(ws);
    stream.pipe(tcp).pipe(stream);
    const stop = () => { tcp.destroy(); ws.close(); };
    tcp.on('close', stop).on('error', stop);
    stream.on('error', stop);
  });
  await session(4, 'alice');
  await session(5, 'bob');
  wss.close();
  broker.kill();
  process.stdout.write(JSON.stringify(log));
  process.exit(0);
})();
