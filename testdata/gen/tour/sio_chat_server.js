// Tour system 2: the Socket.IO chat server of the tutorials. It keeps a list of the
// connected sockets and re-emits each `msg` event to every other one.
// Usage: node sio_chat_server.js PORT   (prints "listening", then what happens)
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 8080);
const server = http.createServer();
const io = new Server(server, { pingInterval: 2000, pingTimeout: 5000 });
const sockets = [];

io.engine.on('connection_error', (err) => console.log('engine error ' + err.message));
io.on('connection', (socket) => {
  sockets.push(socket);
  console.log('connected ' + socket.id);
  socket.conn.on('upgrade', () => console.log('upgraded ' + socket.id));
  socket.conn.on('close', (reason) => console.log('transport closed ' + reason));
  socket.on('msg', (data) => {
    console.log('msg ' + JSON.stringify(data));
    for (const other of sockets) {
      if (other !== socket) other.emit('msg', data);
    }
  });
  socket.on('disconnect', (reason) => {
    sockets.splice(sockets.indexOf(socket), 1);
    console.log('disconnected ' + reason);
  });
});

server.listen(port, '127.0.0.1', () => console.log('listening'));
