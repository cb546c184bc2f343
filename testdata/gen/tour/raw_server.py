"""Tour system 4: a WebSocket server on a raw Python socket, as tutorials write it.

It computes the accept key by hand, answers with `Sec-WebSocket-Protocol: chat` whether or
not the client offered it (RFC 6455 forbids that) plus the pre-RFC `WebSocket-Protocol: chat`,
greets the client, and echoes every message back, encoding lengths in the 7-, 16- and 64-bit
forms. Client frames are read with a fixed-size recv(), so a large message takes many reads.

Usage: python3 raw_server.py PORT     (prints "listening" once ready; one client at a time)
"""

import base64
import hashlib
import socket
import struct
import sys

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BUF = 2048


def handshake(conn):
    data = conn.recv(1024).decode()
    headers = {}
    for line in data.split("\r\n")[1:]:
        if ": " in line:
            k, v = line.split(": ", 1)
            headers[k.lower()] = v
    key = headers["sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    conn.send(
        (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n"
            "Sec-WebSocket-Protocol: chat\r\n"
            "WebSocket-Protocol: chat\r\n"
            "\r\n"
        ).encode()
    )


def send_frame(conn, payload, opcode=0x1):
    header = bytearray([0x80 | opcode])
    n = len(payload)
    if n <= 125:
        header.append(n)
    elif n <= 65535:
        header.append(126)
        header += struct.pack(">H", n)
    else:
        header.append(127)
        header += struct.pack(">Q", n)
    conn.sendall(bytes(header) + payload)


def recv_frame(conn, buf):
    """One frame from `buf` plus fixed-size reads; returns (opcode, payload, rest, reads)."""
    reads = 0

    def need(n):
        nonlocal buf, reads
        while len(buf) < n:
            chunk = conn.recv(BUF)
            reads += 1
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk

    need(2)
    opcode = buf[0] & 0x0F
    length = buf[1] & 0x7F
    pos = 2
    if length == 126:
        need(4)
        length = struct.unpack(">H", buf[2:4])[0]
        pos = 4
    elif length == 127:
        need(10)
        length = struct.unpack(">Q", buf[2:10])[0]
        pos = 10
    need(pos + 4 + length)
    mask = buf[pos : pos + 4]
    data = buf[pos + 4 : pos + 4 + length]
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, payload, buf[pos + 4 + length :], reads


def serve(conn):
    handshake(conn)
    send_frame(conn, b"welcome to the chat")
    buf = b""
    while True:
        opcode, payload, buf, reads = recv_frame(conn, buf)
        print(f"opcode {opcode}, {len(payload)} bytes in {reads} reads", file=sys.stderr)
        if opcode == 0x8:
            send_frame(conn, payload[:2], 0x8)
            break
        if opcode == 0x9:
            send_frame(conn, payload, 0xA)
        elif opcode in (0x1, 0x2):
            send_frame(conn, payload, opcode)
    conn.close()


def main():
    port = int(sys.argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(5)
    print("listening", flush=True)
    while True:
        conn, addr = sock.accept()
        try:
            serve(conn)
        except ConnectionError:
            conn.close()


if __name__ == "__main__":
    main()
