// Node `ws` peers over TLS (wss://) for record.py: prints what each side sent as JSON on
// stdout and appends the TLS secrets, as Node reports them ('keylog' events, NSS key log
// format), to the key log file given as the third argument.
//
// usage: node node_wss.js PORT MODE KEYLOG [lowport]
//   MODE: tls13 (OpenSSL's default suite, TLS_AES_256_GCM_SHA384), tls13-aes128,
//         tls13-chacha, tls12-aes128gcm, tls12-aes256gcm, tls12-chacha, tls12-cbc,
//         tls12-cbc-mte
const fs = require('fs');
const path = require('path');
const https = require('https');
const crypto = require('crypto');
const WebSocket = require('ws');

const port = Number(process.argv[2]);
const mode = process.argv[3] || 'tls13';
const keylog = process.argv[4];
// "lowport": the client connects from port 8100, below the server's, so that without the
// SYN a dissector guessing "the higher port is the client" gets the roles wrong.
const lowPort = process.argv[5] === 'lowport';
const dir = path.join(__dirname, 'tls');
const tls = {
  tls13: {},
  'tls13-aes128': { ciphers: 'TLS_AES_128_GCM_SHA256' },
  'tls13-chacha': { ciphers: 'TLS_CHACHA20_POLY1305_SHA256' },
  'tls12-aes128gcm': { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
  'tls12-aes256gcm': { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
  'tls12-chacha': { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' },
  // CBC with HMAC: encrypt_then_mac (RFC 7366, OpenSSL's default), and without it.
  'tls12-cbc': { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256' },
  'tls12-cbc-mte': {
    maxVersion: 'TLSv1.2',
    ciphers: 'ECDHE-ECDSA-AES256-SHA',
    secureOptions: crypto.constants.SSL_OP_NO_ENCRYPT_THEN_MAC,
  },
}[mode];
if (!tls) throw new Error(`unknown mode ${mode}`);

const sent = [];
const text = (from, t) => sent.push({ from, opcode: 'text', text: t });
const bin = (from, b) =>
  sent.push(
    b.length > 512
      ? { from, opcode: 'binary', len: b.length, sha1: crypto.createHash('sha1').update(b).digest('hex') }
      : { from, opcode: 'binary', bytes_hex: b.toString('hex') },
  );

fs.writeFileSync(keylog, '');
const server = https.createServer({
  cert: fs.readFileSync(path.join(dir, 'cert.pem')),
  key: fs.readFileSync(path.join(dir, 'key.pem')),
  ALPNProtocols: ['http/1.1'],
  ...tls,
});
// The server sees every secret of the connection (both directions, every epoch).
server.on('keylog', (line) => fs.appendFileSync(keylog, line));

// Longer than one TLS record (16 KiB), so records span segments and a message spans records.
const big = Buffer.alloc(20000);
for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;

const wss = new WebSocket.Server({ server, perMessageDeflate: false });
wss.on('connection', (ws) => {
  let n = 0;
  ws.on('message', (data) => {
    n += 1;
    if (n === 1) {
      const reply = 'welcome ' + data.toString();
      ws.send(reply);
      text('server', reply);
    } else if (n === 2) {
      ws.send(big);
      bin('server', big);
    } else {
      ws.close(4000, 'server done');
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  const client = new WebSocket(`wss://wsdissect.test:${port}/secure`, {
    host: '127.0.0.1',
    // Connect to loopback but name the server, so the ClientHello carries an SNI.
    lookup: (_h, opts, cb) => (opts && opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)),
    servername: 'wsdissect.test',
    ca: fs.readFileSync(path.join(dir, 'cert.pem')),
    ALPNProtocols: ['http/1.1'],
    perMessageDeflate: false,
    ...(lowPort ? { localPort: 8100 } : {}),
    ...tls,
  });
  client.on('open', () => {
    client.send('alice');
    text('client', 'alice');
  });
  let got = 0;
  client.on('message', () => {
    got += 1;
    if (got === 1) {
      const b = Buffer.from([1, 2, 3, 4, 5, 0, 255]);
      client.send(b);
      bin('client', b);
    } else {
      client.send('done');
      text('client', 'done');
    }
  });
  client.on('error', (e) => {
    console.error(e);
    process.exit(1);
  });
  client.on('close', () => {
    setTimeout(() => {
      wss.close();
      server.close();
      process.stdout.write(JSON.stringify(sent));
    }, 200);
  });
});
