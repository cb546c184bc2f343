#!/usr/bin/env python3
"""Rebuilds the hand-made regression inputs in this directory (standard library only):

    python3 fuzz/regressions/make.py

Each input is the smallest of its kind that still shows the bug at fuzzing time limits; see
README.md here for what each one caught.
"""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def pcap(packets):
    out = struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
    for p in packets:
        out += struct.pack('<IIII', 1, 0, len(p), len(p)) + p
    return out


ETHER = b'\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00'


def tcp(seq, payload):
    """Client 10.0.0.1:40000 to 10.0.0.2:80, PSH|ACK, no checksums (not verified)."""
    th = struct.pack('!HHIIBBHHH', 40000, 80, seq, 1, 5 << 4, 0x18, 65535, 0, 0)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40 + len(payload), 1, 0, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return ETHER + ip + th + payload


def fragment(off, more, payload):
    flags = (0x2000 if more else 0) | (off // 8)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 7, flags, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return ETHER + ip + payload


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), 'wb') as f:
        f.write(data)


# A connection without its SYN carrying 16384 one-byte segments of 0x83 (a reserved opcode,
# so never a frame): the session looked for frames from every offset of its held bytes again
# at each segment.
write('dissector', 'resync-one-byte-segments.pcap.gz',
      gzip.compress(pcap([tcp(1000 + i, b'\x83') for i in range(16384)]), 9, mtime=0))

# One IPv4 datagram in 8191 eight-byte fragments, the last one first: every fragment walked
# all the pieces held so far to look for a hole.
n = 8190
write('dissector', 'ipv4-8191-fragments.pcap.gz',
      gzip.compress(pcap([fragment(n * 8, False, b'L' * 8)] +
                         [fragment(i * 8, True, b'x' * 8) for i in range(n)]), 9, mtime=0))

# Session target (fuzz/src/lib.rs format): a handshake, a gap in the server's stream, then
# 16000 one-byte chunks of 0x83 while the server direction looks for a frame boundary.
s = bytearray([0x03])


def data(from_b, payload):
    s.append(1 if from_b else 0)
    s.extend(struct.pack('!H', len(payload)))
    s.extend(payload)


data(False, b'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
            b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
data(True, b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
           b'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n')
s.append(2 | 8)  # a gap in the server's stream
s.extend(struct.pack('!H', 100))
for _ in range(16000):
    data(True, b'\x83')
write('session', 'resync-one-byte-chunks-after-gap', bytes(s))


# A capture twin of each input of a structured target, in <target>/capture/: the same path
# driven through the whole binary, so that `cargo test` (tests/regressions.rs) runs it too.
CLIENT, SERVER = (bytes([10, 0, 0, 1]), 40001), (bytes([10, 0, 0, 2]), 80)


def segment(src, dst, seq, ack, payload, flags=0x18):
    th = struct.pack('!HHIIBBHHH', src[1], dst[1], seq, ack, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40 + len(payload), 1, 0, 64, 6, 0, src[0], dst[0])
    return ETHER + ip + th + payload


request = (b'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
           b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
response = (b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
            b'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n')
cseq, sseq = 1000, 5000
packets = [segment(CLIENT, SERVER, cseq, sseq, request),
           segment(SERVER, CLIENT, sseq, cseq + len(request), response)]
cseq += len(request)
sseq += len(response) + 100  # 100 server bytes the capture missed
for i in range(16000):
    packets.append(segment(SERVER, CLIENT, sseq + i, cseq, b'\x83'))
    if i == 0:
        # The client acknowledges past the hole: it is a gap, and what follows is in order.
        packets.append(segment(CLIENT, SERVER, cseq, sseq + 1, b'', flags=0x10))
write('session/capture', 'resync-one-byte-chunks-after-gap.pcap.gz',
      gzip.compress(pcap(packets), 9, mtime=0))
