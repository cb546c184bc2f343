// Tour system 1: a WebSocket server hand-rolled on Node's `net` module, as tutorials write
// it. It takes the first data event for the whole handshake, splits header lines on ": ",
// answers 101 with headers written without a space after the colon and in odd case, and then
// only logs the frames it gets: it never answers one, not even a close.
// Usage: node net_server.js PORT   (prints "listening", then one line per frame)
const net = require('net');
const crypto = require('crypto');

const port = Number(process.argv[2] || 8888);
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function parseFrame(buf) {
  const opcode = buf[0] & 0x0f;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    len = buf.readUInt16BE(2);
    off = 4;
  }
  const mask = buf.subarray(off, off + 4);
  const data = Buffer.from(buf.subarray(off + 4, off + 4 + len));
  for (let i = 0; i < data.length; i++) data[i] ^= mask[i % 4];
  return { opcode, data };
}

const server = net.createServer((socket) => {
  let upgraded = false;
  socket.on('data', (chunk) => {
    if (!upgraded) {
      const headers = {};
      for (const line of chunk.toString().split('\r\n').slice(1)) {
        const [name, value] = line.split(': ');
        if (name && value) headers[name.toLowerCase()] = value;
      }
      const accept = crypto
        .createHash('sha1')
        .update(headers['sec-websocket-key'] + GUID)
        .digest('base64');
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\n' +
          'Upgrade:websocket\r\n' +
          'Connection:Upgrade\r\n' +
          'sec-websocket-Accept:' + accept + '\r\n' +
          '\r\n',
      );
      upgraded = true;
      return;
    }
    const f = parseFrame(chunk);
    if (f.opcode === 0x8) {
      const code = f.data.length >= 2 ? f.data.readUInt16BE(0) : null;
      console.log(`close ${code} ${JSON.stringify(f.data.subarray(2).toString())}`);
    } else {
      console.log(`frame opcode ${f.opcode}: ${JSON.stringify(f.data.toString())}`);
    }
  });
  socket.on('end', () => console.log('client ended'));
  socket.on('error', (e) => console.log('error ' + e.code));
});

server.listen(port, '127.0.0.1', () => console.log('listening'));
