// Tour system 3: a WebSocket server written by hand on Node's `upgrade` event, the way
// many tutorials show it, bugs included:
//   - the 101 answer says "Web Socket Protocol Handshake" and "Upgrade: WebSocket";
//   - a 64-bit length is written as two 32-bit words;
//   - a ping is answered with a ping (the same payload) instead of a pong;
//   - a message over MAX bytes is refused with close 1009, an unknown opcode with 1002.
// Usage: node upgrade_server.js PORT   (prints "listening" once ready)
const http = require('http');
const crypto = require('crypto');

const port = Number(process.argv[2]);
const MAX = 100000;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function encode(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    // No 64-bit integer write in the tutorial: high word, then low word.
    head.writeUInt32BE(Math.floor(len / 0x100000000), 2);
    head.writeUInt32BE(len >>> 0, 6);
  }
  return Buffer.concat([head, payload]);
}

function closeFrame(code, reason) {
  const p = Buffer.alloc(2 + Buffer.byteLength(reason));
  p.writeUInt16BE(code, 0);
  p.write(reason, 2);
  return encode(0x8, p);
}

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('WebSocket only\n');
});

server.on('upgrade', (req, socket) => {
  if ((req.headers.upgrade || '').toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  const accept = crypto
    .createHash('sha1')
    .update(req.headers['sec-websocket-key'] + GUID)
    .digest('base64');
  socket.write(
    'HTTP/1.1 101 Web Socket Protocol Handshake\r\n' +
      'Upgrade: WebSocket\r\n' +
      'Connection: Upgrade\r\n' +
      'Sec-WebSocket-Accept: ' + accept + '\r\n' +
      '\r\n',
  );

  let buf = Buffer.alloc(0);
  let skip = 0; // payload bytes of a refused message still to come
  let closing = false;
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length);
        skip -= n;
        buf = buf.subarray(n);
        if (skip > 0) return;
      }
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = buf.readUInt32BE(2) * 0x100000000 + buf.readUInt32BE(6);
        off = 10;
      }
      if (masked) off += 4;
      if (buf.length < off) return;
      if (len > MAX && !closing) {
        console.error(`message of ${len} bytes refused`);
        socket.write(closeFrame(1009, 'message too big'));
        closing = true;
        skip = len;
        buf = buf.subarray(off);
        continue;
      }
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) {
        const mask = buf.subarray(off - 4, off);
        for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
      }
      buf = buf.subarray(off + len);
      if (opcode === 0x1 || opcode === 0x2) {
        if (!closing) socket.write(encode(opcode, payload));
      } else if (opcode === 0x8) {
        if (!closing) socket.write(encode(0x8, payload.subarray(0, 2)));
        socket.end();
        return;
      } else if (opcode === 0x9) {
        // The bug: a ping goes back as a ping.
        socket.write(encode(0x9, payload));
      } else if (opcode === 0xa) {
        // pong: nothing to do
      } else if (!closing) {
        console.error(`unknown opcode ${opcode}`);
        socket.write(closeFrame(1002, 'unknown opcode ' + opcode));
        closing = true;
      }
    }
  });
  socket.on('error', () => {});
});

server.listen(port, '127.0.0.1', () => console.log('listening'));
