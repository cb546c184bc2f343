// Node `ws` peers for record.py: prints what each side sent as JSON on stdout.
const WebSocket = require('ws');
const port = Number(process.argv[2]);
const deflate = process.argv[3] !== 'plain';
const sent = [];
const crypto = require('crypto');
const text = (from, t) => sent.push({ from, opcode: 'text', text: t });
// Long payloads are stated by length and SHA-1, as record.py does.
const bin = (from, b) =>
  sent.push(
    b.length > 512
      ? { from, opcode: 'binary', len: b.length, sha1: crypto.createHash('sha1').update(b).digest('hex') }
      : { from, opcode: 'binary', bytes_hex: b.toString('hex') },
  );

// Over 65535 bytes, so the frame needs the 64-bit length form.
const big = Buffer.alloc(deflate ? 200000 : 70000);
for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;

const wss = new WebSocket.Server({ port, host: '127.0.0.1', perMessageDeflate: deflate ? { threshold: 0 } : false });
wss.on('connection', (ws) => {
  let n = 0;
  ws.on('message', (data, isBinary) => {
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

const client = new WebSocket(`ws://127.0.0.1:${port}/feed?x=1`, ['chat.v2', 'chat.v1'], {
  perMessageDeflate: deflate,
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
client.on('close', () => {
  setTimeout(() => {
    wss.close();
    process.stdout.write(JSON.stringify(sent));
  }, 200);
});
