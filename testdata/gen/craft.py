"""Hand-crafted captures for what real peers will not produce: protocol violations, broken
handshakes, hostile TCP (reordering, overlaps, wraparound, gaps), mid-stream starts, deflate
bombs, and the capture formats, link types and tunnels real loopback recordings do not cover.

Usage: python3 testdata/gen/craft.py        (standard library only; rewrites the crafted-*
                                             and file-* cases under testdata/)

Each case gets `capture.*` and a `truth.json` stating what was sent and which problems a
correct dissector must report (format in tests/cases.rs).
"""

import base64
import gzip
import hashlib
import json
import os
import random
import socket
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# --- capture writers ----------------------------------------------------------------------


class Pcap:
    """Classic pcap: microsecond or nanosecond, either byte order."""

    def __init__(self, link=1, nano=False, big=False):
        self.e = ">" if big else "<"
        self.nano = nano
        magic = 0xA1B23C4D if nano else 0xA1B2C3D4
        self.buf = bytearray(struct.pack(self.e + "IHHiIII", magic, 2, 4, 0, 0, 262144, link))

    def add(self, t, data, iface=0, orig=None):
        sec = int(t)
        frac = round((t - sec) * (1e9 if self.nano else 1e6))
        orig = len(data) if orig is None else orig
        self.buf += struct.pack(self.e + "IIII", sec, frac, len(data), orig) + data


class PcapNg:
    """pcapng with several interfaces; each has a link type and an if_tsresol."""

    def __init__(self, interfaces):
        self.buf = bytearray()
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        self.block(0x0A0D0D0A, shb)
        self.resol = []
        for link, tsresol in interfaces:
            opts = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
            self.block(1, struct.pack("<HHI", link, 0, 262144) + opts)
            self.resol.append(10 ** tsresol)

    def block(self, kind, body):
        body = body + b"\0" * (-len(body) % 4)
        n = len(body) + 12
        self.buf += struct.pack("<II", kind, n) + body + struct.pack("<I", n)

    def add(self, t, data, iface=0, orig=None):
        ts = round(t * self.resol[iface])
        orig = len(data) if orig is None else orig
        self.block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), orig) + data)


# --- packet builders ----------------------------------------------------------------------


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def ip6(a):
    import ipaddress

    return ipaddress.IPv6Address(a).packed


def tcp_segment(src, dst, sport, dport, seq, ack, flags, payload, v6):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                      flags, 65535, 0, 0)
    if v6:
        pseudo = src + dst + struct.pack("!I3xB", len(hdr) + len(payload), 6)
    else:
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload


def ip_packet(src, dst, seg, v6, ext=False):
    if v6 and ext:
        # Hop-by-hop options then destination options (PadN each), then TCP.
        opts = bytes([60, 0, 1, 4, 0, 0, 0, 0]) + bytes([6, 0, 1, 4, 0, 0, 0, 0])
        return struct.pack("!IHBB", 6 << 28, len(seg) + 16, 0, 64) + src + dst + opts + seg
    if v6:
        return struct.pack("!IHBB", 6 << 28, len(seg), 6, 64) + src + dst + seg
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0x4000, 64, 6, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + seg


def link_frame(link, pkt, v6, vlans=()):
    if link == 1:  # Ethernet, with 802.1ad/802.1Q tags when given
        tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
        return (b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02" + tags
                + (b"\x86\xdd" if v6 else b"\x08\x00") + pkt)
    if link == 276:  # Linux cooked v2 (SLL2)
        return struct.pack("!HHIHBB8s", 0x86DD if v6 else 0x0800, 0, 1, 1, 0, 6, b"\0" * 8) + pkt
    if link == 108:  # OpenBSD loopback: family in network order
        return struct.pack("!I", 24 if v6 else 2) + pkt
    if link == 113:  # Linux cooked (SLL)
        return struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, 0x86DD if v6 else 0x0800) + pkt
    if link in (101, 228, 229):  # raw IP
        return pkt
    if link == 0:  # BSD loopback
        return struct.pack("<I", 30 if v6 else 2) + pkt
    if link == 258:  # Apple PKTAP (macOS `tcpdump -i any`): little-endian header, then Ethernet
        inner = link_frame(1, pkt, v6)
        head = struct.pack("<III24sIIIIi17s3xIHHi17s3x", 108, 1, 1, b"en0", 0, 30 if v6 else 2,
                           0, 0, 4242, b"node", 0, 6, 0, 4242, b"node")
        assert len(head) == 108
        return head + inner
    if link == 239:  # Linux NFLOG: family, version, resource id, then TLVs in host order
        def tlv(kind, value):
            raw = struct.pack("<HH", 4 + len(value), kind) + value
            return raw + b"\0" * (-len(raw) % 4)
        return (struct.pack("!BBH", 10 if v6 else 2, 0, 7)
                + tlv(1, struct.pack("!HBx", 0x86DD if v6 else 0x0800, 3))
                + tlv(10, b"ws-log\0") + tlv(9, pkt))
    if link == 9:  # PPP with address and control
        return b"\xff\x03" + struct.pack("!H", 0x0057 if v6 else 0x0021) + pkt
    if link == 104:  # Cisco HDLC
        return struct.pack("!BBH", 0x0F, 0, 0x86DD if v6 else 0x0800) + pkt
    raise ValueError(link)


def ip4_fragments(src, dst, seg):
    """The IPv4 datagram for `seg` cut into two fragments, sent last fragment first."""
    cut = 16
    out = []
    for off, part, more in ((0, seg[:cut], 0x2000), (cut, seg[cut:], 0)):
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(part), 7, more | (off // 8), 64, 6, 0,
                        src, dst)
        out.append(h[:10] + struct.pack("!H", csum(h)) + h[12:] + part)
    return out[::-1]


FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16


class Conn:
    """One TCP connection written packet by packet; `seq` values are relative offsets."""

    def __init__(self, cap, client, server, cport, sport, t=1_700_000_000.0, link=1, iface=0,
                 isn=(1000, 5000)):
        self.cap, self.link, self.iface = cap, link, iface
        self.v6 = ":" in client
        conv = ip6 if self.v6 else ip4
        self.addr = {"c": (conv(client), cport), "s": (conv(server), sport)}
        self.isn = {"c": isn[0], "s": isn[1]}
        self.nxt = {"c": 1, "s": 1}
        self.t = t
        self.vlans = ()
        self.v6ext = False
        self.fragment = False

    def packet(self, side, flags, payload=b"", seq=None, dt=0.001, advance=True):
        other = "s" if side == "c" else "c"
        (src, sp), (dst, dp) = self.addr[side], self.addr[other]
        rel = self.nxt[side] if seq is None else seq
        seg = tcp_segment(src, dst, sp, dp, self.isn[side] + rel, self.isn[other] + self.nxt[other],
                          flags, payload, self.v6)
        self.t += dt
        pkts = [ip_packet(src, dst, seg, self.v6, self.v6ext)]
        if self.fragment and not self.v6 and len(seg) > 24:
            pkts = ip4_fragments(src, dst, seg)
        for p in pkts:
            self.cap.add(self.t, link_frame(self.link, p, self.v6, self.vlans), self.iface)
        if advance and seq is None:
            self.nxt[side] += len(payload) + (1 if flags & (SYN | FIN) else 0)
        # Every TCP payload byte written, for truths that check none goes unaccounted.
        self.cap.tcp_payload = getattr(self.cap, "tcp_payload", 0) + len(payload)

    def open(self):
        self.isn_raw = dict(self.isn)
        self.nxt = {"c": 0, "s": 0}
        self.packet("c", SYN)
        self.packet("s", SYN | ACK)
        self.packet("c", ACK)

    def send(self, side, data, mss=1400):
        for i in range(0, len(data), mss):
            self.packet(side, PSH | ACK, data[i:i + mss])

    def close(self, first="c"):
        second = "s" if first == "c" else "c"
        self.packet(first, FIN | ACK)
        self.packet(second, FIN | ACK)
        self.packet(first, ACK)


# --- WebSocket builders -------------------------------------------------------------------


def frame(opcode, payload=b"", fin=True, rsv=0, mask=None, form=None):
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    m = 0x80 if mask is not None else 0
    form = form or (7 if n < 126 else 16 if n < 65536 else 64)
    if form == 7:
        hdr = struct.pack("!BB", b0, m | n)
    elif form == 16:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if mask is not None:
        key = bytes(mask)
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        hdr += key
    return hdr + payload


KEY = b"\x01\x02\x03\x04"


def cf(opcode, payload=b"", **kw):
    """A client frame: masked unless told otherwise."""
    kw.setdefault("mask", KEY)
    return frame(opcode, payload, **kw)


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def request(path="/", key="dGhlIHNhbXBsZSBub25jZQ==", extra="", version="13", host="example"):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: {version}\r\n{extra}\r\n").encode()


def response(key="dGhlIHNhbXBsZSBub25jZQ==", accept=None, extra="", status="101 Switching Protocols"):
    acc = accept_for(key) if accept is None else accept
    acc_line = f"Sec-WebSocket-Accept: {acc}\r\n" if acc else ""
    return (f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"{acc_line}{extra}\r\n").encode()


def deflate(data, z=None):
    """permessage-deflate payload: raw deflate, sync flush, tail removed (RFC 7692 7.2.1)."""
    z = z or zlib.compressobj(9, zlib.DEFLATED, -15)
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\0\0\xff\xff")
    return out[:-4]


def text(frm, s):
    if len(s.encode()) > 512:
        return {"from": frm, "opcode": "text", "len": len(s.encode()),
                "sha1": hashlib.sha1(s.encode()).hexdigest()}
    return {"from": frm, "opcode": "text", "text": s}


def binary(frm, b):
    if len(b) > 512:
        return {"from": frm, "opcode": "binary", "len": len(b), "sha1": hashlib.sha1(b).hexdigest()}
    return {"from": frm, "opcode": "binary", "bytes_hex": b.hex()}


def save(case, cap, truth, name="capture.pcap", gz=False):
    d = os.path.join(TESTDATA, case)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("capture"):
            os.remove(os.path.join(d, f))
    data = bytes(cap.buf)
    if gz:
        data = gzip.compress(data, mtime=0)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    with open(os.path.join(d, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(f"{case}: {len(data)} bytes")


def close_normally(c, closer="s"):
    """The client sends close 1000, the server echoes it, then TCP closes (`closer` first)."""
    c.send("c", cf(8, struct.pack("!H", 1000)))
    c.send("s", frame(8, struct.pack("!H", 1000)))
    c.close(closer)


# --- cases --------------------------------------------------------------------------------


def violations():
    """Every frame-level rule of RFC 6455 broken once, on a connection with a valid
    handshake on a port nobody associates with WebSocket."""
    cap = Pcap()
    c = Conn(cap, "10.0.0.1", "10.0.0.2", 40000, 5555)
    c.open()
    c.send("c", request("/v"))
    c.send("s", response())
    c.send("c", cf(1, "fine"))
    c.send("s", frame(1, "fine too"))
    c.send("c", frame(1, "unmasked"))                        # unmasked-client-frame
    c.send("s", frame(1, "masked", mask=b"\x09\x08\x07\x06"))  # masked-server-frame
    c.send("c", cf(1, b"bad \xff\xfe utf8"))                  # invalid-utf8
    c.send("c", cf(3, "reserved"))                            # reserved-opcode
    c.send("c", cf(1, "rsv2", rsv=2))                         # rsv-without-extension
    c.send("c", cf(9, "frag ping", fin=False))                # fragmented-control-frame
    c.send("c", cf(9, b"x" * 126))                            # control-frame-too-long
    c.send("c", cf(1, "short", form=16))                      # non-minimal-length
    c.send("c", cf(0, "orphan"))                              # unexpected-continuation
    c.send("c", cf(1, "start", fin=False))
    c.send("c", cf(1, "again"))                               # data-frame-inside-fragmented-message
    c.send("s", frame(9, "hb"))
    c.send("c", cf(9, "hb"))                                  # ping-answered-with-ping
    c.send("s", frame(8, struct.pack("!H", 1005)))            # invalid-close-code
    c.send("s", frame(1, "after close"))                      # data-after-close
    c.send("c", cf(8, struct.pack("!H", 1000)))
    c.close("s")
    # A 64-bit length with its top bit set: nothing after it can be framed.
    c = Conn(cap, "10.0.0.1", "10.0.0.2", 40001, 5556, t=1_700_000_010.0)
    c.open()
    c.send("c", request("/msb"))
    c.send("s", response())
    c.send("s", frame(1, "before"))
    c.send("s", bytes([0x82, 127]) + struct.pack("!Q", (1 << 63) | 5) + b"hello")
    c.close("s")
    save("crafted-frame-violations", cap, {
        "description": "one violation of each RFC 6455 framing rule",
        "connections": [{"server_port": 5555, "tcp_end": "fin"}],
        "expect_problems": [
            "unmasked-client-frame", "masked-server-frame", "invalid-utf8", "reserved-opcode",
            "rsv-without-extension", "fragmented-control-frame", "control-frame-too-long",
            "non-minimal-length", "unexpected-continuation",
            "data-frame-inside-fragmented-message", "ping-answered-with-ping",
            "invalid-close-code", "data-after-close", "length-msb-set",
        ],
    })


def handshakes():
    """Broken handshakes, one per connection, then one that is odd but valid."""
    cap = Pcap(nano=True, big=True)
    t = 1_700_000_100.0
    k = "x3JJHMbDL1EzLkh9GBhXDw=="
    bad = [
        (request(key=k), response(key=k, accept="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")),  # accept-mismatch
        (request(key=k), response(key=k, accept="")),                             # accept-missing
        (request(key="c2hvcnQ="), response(key="c2hvcnQ=")),                       # bad-key
        (request(key=k, version="8"), response(key=k)),                           # bad-version
        (request(key=k, extra="Sec-WebSocket-Protocol: chat\r\n"),
         response(key=k, extra="Sec-WebSocket-Protocol: superchat\r\n")),         # protocol-not-offered
        (request(key=k), response(key=k, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")),
        (b"GET /plain HTTP/1.1\r\nHost: example\r\n\r\n", response(key=k)),       # response-without-request
        (request(key=k).replace(b"Connection: Upgrade", b"Connection: keep-alive"),
         response(key=k)),                                                        # bad-upgrade-headers
    ]
    for i, (req, resp) in enumerate(bad):
        c = Conn(cap, "192.0.2.1", "192.0.2.2", 41000 + i, 6000 + i, t=t + i)
        c.open()
        c.send("c", req)
        c.send("s", resp)
        c.close()
    # Valid, with everything a tolerant parser must take: odd case, no space after colons,
    # token lists, an old reason phrase, the request split over three segments, and the
    # response sharing its segment with the first frame.
    c = Conn(cap, "192.0.2.1", "192.0.2.2", 42000, 6100, t=t + 20)
    c.open()
    req = (f"GET /odd?q=1 HTTP/1.1\r\nhost:example\r\nUPGRADE:WebSocket\r\n"
           f"connection:keep-alive, Upgrade\r\nsec-websocket-key:{k}\r\n"
           f"Sec-WebSocket-Version:13\r\nX-Whatever: yes\r\n\r\n").encode()
    c.send("c", req, mss=20)
    resp = (f"HTTP/1.1 101 Web Socket Protocol Handshake\r\nupgrade:websocket\r\n"
            f"CONNECTION:upgrade\r\nsec-websocket-accept:{accept_for(k)}\r\n\r\n").encode()
    c.send("s", resp + frame(1, "first frame in the 101 segment"))
    c.send("c", cf(1, "and back"))
    c.send("c", cf(8, struct.pack("!H", 1001) + b"going"))
    c.send("s", frame(8, struct.pack("!H", 1001)))
    c.close("s")
    save("crafted-handshakes", cap, {
        "description": "one broken handshake per connection, and a quirky valid one; nanosecond big-endian pcap",
        "connections": [{
            "server_port": 6100,
            "messages": [text("server", "first frame in the 101 segment"), text("client", "and back")],
            "close": {"initiator": "client", "code": 1001, "reason": "going", "echoed": True},
            "tcp_end": "fin",
        }],
        "expect_problems": ["accept-mismatch", "accept-missing", "bad-key", "bad-version",
                            "protocol-not-offered", "extension-not-offered",
                            "response-without-request", "bad-upgrade-headers"],
    })


def upgrade_retry():
    """Upgrades refused, then asked again on the same connection, as clients do after an
    authentication challenge: a 401 with a Content-Length body, then the request with
    credentials and a 101; a 407 with a chunked body and the retry already sent behind the
    first request's answer (pipelined in one segment with nothing between); a 401 that says
    `Connection: close` on a connection that carries on; a 403 whose body runs to the end of
    the connection, after which nothing is decoded; and a 401 whose client had already sent
    frames behind its request (not a request: the connection stays refused). Last, an upgrade
    to HTTP/2 (h2c), whose 101 does not make the connection WebSocket, a client frame sent
    behind the request before the 101, and an upgrade inside an HTTP CONNECT tunnel opened
    after a 407."""
    cap = Pcap()
    t = 1_700_000_900.0
    keys = [base64.b64encode(bytes([0x70 + i]) * 16).decode() for i in range(8)]
    conns = []

    # 1. 401 with a body, then the retry with credentials.
    c = Conn(cap, "192.0.2.31", "192.0.2.32", 43000, 6200, t=t)
    c.open()
    c.send("c", request("/auth", key=keys[0]))
    c.send("s", b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ws\"\r\n"
                b"Content-Length: 12\r\n\r\nlog in first")
    c.send("c", request("/auth", key=keys[1], extra="Authorization: Basic dXNlcjpwdw==\r\n"))
    c.send("s", response(key=keys[1]))
    c.send("c", cf(1, "hello after 401"))
    c.send("s", frame(1, "welcome back"))
    close_normally(c)
    conns.append({"server_port": 6200,
                  "messages": [text("client", "hello after 401"), text("server", "welcome back")],
                  "close": {"initiator": "client", "code": 1000, "echoed": True}, "tcp_end": "fin"})

    # 2. 407 with a chunked body; the 101 for the retry follows in the same segment.
    c = Conn(cap, "192.0.2.33", "192.0.2.34", 43001, 6201, t=t + 1)
    c.open()
    c.send("c", request("/proxy", key=keys[2]))
    c.send("c", request("/proxy", key=keys[3], extra="Proxy-Authorization: Basic dTpw\r\n"))
    c.send("s", b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\nproxy\r\n0\r\n\r\n" + response(key=keys[3])
                + frame(1, "through the proxy"))
    c.send("c", cf(2, b"\x00\x01\x02"))
    c.close("s")
    conns.append({"server_port": 6201,
                  "messages": [text("server", "through the proxy"), binary("client", b"\x00\x01\x02")],
                  "tcp_end": "fin"})

    # 3. A 401 that says it closes the connection, which then carries on: what is on the wire
    # is decoded.
    c = Conn(cap, "192.0.2.35", "192.0.2.36", 43002, 6202, t=t + 2)
    c.open()
    c.send("c", request("/closing", key=keys[4]))
    c.send("s", b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    c.send("c", request("/closing", key=keys[5]))
    c.send("s", response(key=keys[5]) + frame(1, "it did not close"))
    c.close("s")
    conns.append({"server_port": 6202, "messages": [text("server", "it did not close")],
                  "tcp_end": "fin"})

    # 3b. A 403 whose body runs to the end of the connection: nothing after it is decoded.
    c = Conn(cap, "192.0.2.39", "192.0.2.40", 43004, 6204, t=t + 2.5)
    c.open()
    c.send("c", request("/forbidden", key=keys[7]))
    c.send("s", b"HTTP/1.1 403 Forbidden\r\n\r\n" + response(key=keys[7]) + frame(1, "body"))
    c.close("s")

    # 4. Frames sent behind the request, then a 401: no retry, nothing decoded.
    c = Conn(cap, "192.0.2.37", "192.0.2.38", 43003, 6203, t=t + 3)
    c.open()
    c.send("c", request("/eager", key=keys[6]) + cf(1, "too early"))
    c.send("s", b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
    c.close("c")
    # 5. An upgrade to HTTP/2 (h2c): a 101, but not to WebSocket; its bytes are not frames.
    c = Conn(cap, "192.0.2.41", "192.0.2.42", 43005, 6205, t=t + 4)
    c.open()
    c.send("c", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
    c.send("s", b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    c.send("c", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    c.close("s")
    # 6. A client that sends its first frame right behind its request, before the 101: the
    # frame is decoded once the 101 arrives, at the packet and time it was sent.
    c = Conn(cap, "192.0.2.43", "192.0.2.44", 43006, 6206, t=t + 5)
    c.open()
    c.send("c", request("/eager-ok", key=keys[0]) + cf(1, "sent before the 101"))
    c.send("s", response(key=keys[0]))
    c.send("s", frame(1, "answer"))
    c.close("s")
    conns.append({"server_port": 6206,
                  "messages": [text("client", "sent before the 101"), text("server", "answer")],
                  "tcp_end": "fin"})
    # 7. Through an HTTP proxy: CONNECT refused with a 407, asked again with credentials,
    # then a 200 whose Content-Length must be ignored (RFC 9110 9.3.6: the tunnel starts
    # right after the head), and the upgrade inside the tunnel.
    c = Conn(cap, "192.0.2.45", "192.0.2.46", 43007, 6207, t=t + 6)
    c.open()
    c.send("c", b"CONNECT chat.example:80 HTTP/1.1\r\nHost: chat.example:80\r\n\r\n")
    c.send("s", b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
                b"Content-Length: 4\r\n\r\nauth")
    c.send("c", b"CONNECT chat.example:80 HTTP/1.1\r\nHost: chat.example:80\r\n"
                b"Proxy-Authorization: Basic dTpw\r\n\r\n")
    c.send("s", b"HTTP/1.1 200 Connection established\r\nContent-Length: 999\r\n\r\n")
    c.send("c", request("/tunnelled", key=keys[1]))
    c.send("s", response(key=keys[1]))
    c.send("c", cf(1, "through the tunnel"))
    close_normally(c)
    conns.append({"server_port": 6207, "messages": [text("client", "through the tunnel")],
                  "note": "through a proxy: HTTP CONNECT to chat.example:80",
                  "close": {"initiator": "client", "code": 1000, "echoed": True}, "tcp_end": "fin"})
    # 8. The upgrade sent right behind the CONNECT, before the proxy answered: held until
    # the 200 opens the tunnel (not taken for the CONNECT's answer's request).
    c = Conn(cap, "192.0.2.47", "192.0.2.48", 43008, 6208, t=t + 7)
    c.open()
    c.send("c", b"CONNECT chat.example:80 HTTP/1.1\r\nHost: chat.example:80\r\n\r\n"
                + request("/eager-tunnel", key=keys[2]))
    c.send("s", b"HTTP/1.1 200 Connection established\r\n\r\n" + response(key=keys[2])
                + frame(1, "tunnel opened late"))
    close_normally(c)
    conns.append({"server_port": 6208, "messages": [text("server", "tunnel opened late")],
                  "note": "through a proxy: HTTP CONNECT to chat.example:80",
                  "close": {"initiator": "client", "code": 1000, "echoed": True}, "tcp_end": "fin"})
    save("crafted-upgrade-retry", cap, {
        "description": "upgrades refused (401, 407) and asked again on the same connection; refusals after which nothing is decoded; an h2c upgrade; an early frame; an upgrade inside a CONNECT tunnel",
        "connections": conns,
        "expect_problems": ["upgrade-rejected"],
    })


def tcp_hostile():
    """Reordering, retransmissions, overlaps, byte-by-byte frames, a 64-bit length frame and
    sequence numbers wrapping past 2^32, in a pcapng with two interfaces of different link
    types and resolutions."""
    cap = PcapNg([(1, 9), (101, 6)])
    c = Conn(cap, "198.51.100.7", "203.0.113.9", 50123, 9001, isn=(0xFFFFFF00, 0xFFFFFFF0))
    c.open()
    c.send("c", request("/tcp"))
    c.send("s", response())
    msgs = []
    # Three frames in one segment.
    c.send("s", frame(1, "one") + frame(1, "two") + frame(2, b"\x03"))
    msgs += [text("server", "one"), text("server", "two"), binary("server", b"\x03")]
    # A frame byte by byte.
    for b in cf(1, "slow"):
        c.packet("c", PSH | ACK, bytes([b]))
    msgs.append(text("client", "slow"))
    # Out of order: the second half first; then a retransmission and an overlapping copy.
    f = frame(1, "reordered frame payload")
    base = c.nxt["s"]
    c.packet("s", PSH | ACK, f[10:], seq=base + 10)
    c.packet("s", PSH | ACK, f[:10], seq=base)
    c.packet("s", PSH | ACK, f[:10], seq=base)          # retransmission
    c.packet("s", PSH | ACK, f[5:15], seq=base + 5)     # overlap, same bytes
    c.nxt["s"] = base + len(f)
    msgs.append(text("server", "reordered frame payload"))
    # 64-bit length, 70000 bytes over many segments; the server side goes on over the other
    # interface (raw IP link type).
    big = bytes((i * 31) & 0xFF for i in range(70000))
    c.link, c.iface = 101, 1
    c.send("s", frame(2, big, form=64))
    msgs.append(binary("server", big))
    c.link, c.iface = 1, 0
    c.send("c", cf(8, struct.pack("!H", 1000)))
    c.send("s", frame(8, struct.pack("!H", 1000)))
    c.close("s")
    save("crafted-tcp-hostile", cap, {
        "description": "reordering, retransmission, overlap, byte-by-byte frame, 64-bit length, seq wraparound; pcapng with two link types",
        "connections": [{
            "server_port": 9001,
            "messages": msgs,
            "close": {"initiator": "client", "code": 1000, "echoed": True},
            "tcp_end": "fin",
        }],
        "expect_problems": [],
    }, name="capture.pcapng")


def midstream():
    """The capture starts after the handshake (no SYN) and loses one segment; IPv6 over
    BSD loopback."""
    cap = Pcap(link=0)
    c = Conn(cap, "2001:db8::1", "2001:db8::2", 51000, 7070, isn=(77777, 99999), link=0)
    msgs = []
    for i in range(3):
        c.send("s", frame(1, f"tick {i}"))
        msgs.append(text("server", f"tick {i}"))
        c.send("c", cf(1, f"ack {i}"))
        msgs.append(text("client", f"ack {i}"))
    # One server segment is never captured.
    c.nxt["s"] += len(frame(1, "lost tick"))
    for i in range(3, 5):
        c.send("s", frame(1, f"tick {i}"))
        msgs.append(text("server", f"tick {i}"))
    c.send("c", cf(8, struct.pack("!H", 1000)))
    c.send("s", frame(8, struct.pack("!H", 1000)))
    c.close("s")
    save("crafted-midstream-gap", cap, {
        "description": "capture starts mid-connection and misses one segment; IPv6 on DLT_NULL",
        "connections": [{
            "server_port": 7070,
            "messages": msgs,
            "close": {"initiator": "client", "code": 1000, "echoed": True},
            "tcp_end": "fin",
        }],
        "expect_problems": ["handshake-not-seen", "tcp-gap"],
    })


def deflate_case():
    """permessage-deflate with context takeover, a fragmented compressed message, and a
    deflate bomb that must stop at the ratio limit; gzip'd pcap on Linux cooked capture."""
    cap = Pcap(link=113)
    c = Conn(cap, "10.1.1.1", "10.1.1.2", 52000, 8443, link=113)
    c.open()
    ext = "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
    c.send("c", request("/z", extra=ext))
    c.send("s", response(extra="Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"))
    msgs = []
    zs = zlib.compressobj(9, zlib.DEFLATED, -15)  # the server keeps its context
    for s in ["repeat repeat repeat", "repeat repeat repeat", "something else"]:
        c.send("s", frame(1, deflate(s.encode(), zs), rsv=4))
        msgs.append(text("server", s))
    for s in ["client one", "client one"]:
        c.send("c", cf(1, deflate(s.encode()), rsv=4))
        msgs.append(text("client", s))
    # Fragmented compressed message: RSV1 on the first frame only.
    body = deflate(("fragmented " * 20).encode(), zs)
    c.send("s", frame(1, body[:5], fin=False, rsv=4) + frame(0, body[5:12], fin=False)
           + frame(0, body[12:]))
    msgs.append(text("server", "fragmented " * 20))
    # A bomb: 8 MiB of zeros in about 8 kB.
    bomb = deflate(b"\0" * (8 << 20), zlib.compressobj(9, zlib.DEFLATED, -15))
    c.send("c", cf(2, bomb, rsv=4))
    c.send("c", cf(8, struct.pack("!H", 1000)))
    c.send("s", frame(8, struct.pack("!H", 1000)))
    c.close("s")
    # RSV1 where RFC 7692 forbids it, then a message that is not deflate data at all; the
    # connection goes on after each.
    c = Conn(cap, "10.1.1.1", "10.1.1.2", 52001, 8444, t=1_700_000_010.0, link=113)
    c.open()
    c.send("c", request("/z2", extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"))
    c.send("s", response(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"))
    c.send("s", frame(9, "rsv ping", rsv=4))
    z2 = zlib.compressobj(9, zlib.DEFLATED, -15)
    c.send("s", frame(1, deflate(b"ab", z2), fin=False, rsv=4) + frame(0, b"\x00", rsv=4))
    c.send("c", cf(1, b"\xff\xff\xff\xff not deflate", rsv=4))
    c.send("c", cf(1, "plain after"))
    c.send("c", cf(8, struct.pack("!H", 1000)))
    c.send("s", frame(8, struct.pack("!H", 1000)))
    c.close("s")
    save("crafted-deflate", cap, {
        "description": "permessage-deflate: context takeover, no_context_takeover, fragments, and a bomb; gzip'd pcap, Linux SLL",
        "connections": [{
            "server_port": 8443,
            "messages": msgs + [{"from": "client", "opcode": "binary", "limited": True}],
            "close": {"initiator": "client", "code": 1000, "echoed": True},
        }, {
            "server_port": 8444,
            "close": {"initiator": "client", "code": 1000, "echoed": True},
            "tcp_end": "fin",
        }],
        "expect_problems": ["inflate-limit", "rsv1-on-control", "rsv1-on-continuation",
                            "decompress-failed"],
    }, name="capture.pcap.gz", gz=True)


def deflate_final_blocks():
    """Compressed messages that end with a final block (BFINAL, RFC 7692 7.2.3.3) instead of
    a sync flush, as one-shot compressors write them: a new stream each, no tail removed; one
    of them in three fragments."""
    cap = Pcap()
    c = Conn(cap, "10.1.1.1", "10.1.1.2", 52002, 8445, t=1_700_000_020.0)
    c.open()
    c.send("c", request("/z3", extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"))
    c.send("s", response(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"))
    finals = []
    for s_ in ["final block " * 8, "another final block", "final block " * 3]:
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        c.send("s", frame(1, z.compress(s_.encode()) + z.flush(zlib.Z_FINISH), rsv=4))
        finals.append(text("server", s_))
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = z.compress(b"in three fragments " * 4) + z.flush(zlib.Z_FINISH)
    c.send("c", cf(1, body[:3], fin=False, rsv=4) + cf(0, body[3:9], fin=False) + cf(0, body[9:]))
    finals.append(text("client", "in three fragments " * 4))
    close_normally(c)
    save("crafted-deflate-final-blocks", cap, {
        "description": "permessage-deflate messages ending with a final block (BFINAL) instead of a sync flush",
        "connections": [{
            "server_port": 8445,
            "messages": finals,
            "close": {"initiator": "client", "code": 1000, "echoed": True},
            "tcp_end": "fin",
        }],
        "expect_problems": [],
    })


def bad_files():
    """Inputs that are not (whole) captures."""
    d = os.path.join(TESTDATA, "file-not-a-capture")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "capture.pcap"), "w") as f:
        f.write("GET / HTTP/1.1\r\nHost: this is text, not a capture\r\n\r\n")
    with open(os.path.join(d, "truth.json"), "w") as f:
        f.write('{"description": "a text file named .pcap", "expect_exit": 2}\n')
    cap = Pcap()
    c = Conn(cap, "10.2.2.1", "10.2.2.2", 53000, 8080)
    c.open()
    c.send("c", request("/cut"))
    c.send("s", response())
    c.send("s", frame(1, "before the cut"))
    c.send("s", frame(1, "this record is cut short"))
    data = bytes(cap.buf)[:-10]
    d = os.path.join(TESTDATA, "file-truncated")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "capture.pcap"), "wb") as f:
        f.write(data)
    with open(os.path.join(d, "truth.json"), "w") as f:
        json.dump({"description": "the last packet record is cut short", "expect_exit": 2,
                   "connections": [{"server_port": 8080,
                                    "messages": [text("server", "before the cut")],
                                    "tcp_end": "open"}]}, f, indent=1)
        f.write("\n")


def link_types():
    """One short WebSocket conversation per link type real loopback recordings do not give:
    SLL2, Ethernet with 802.1ad+802.1Q tags, IPv6 extension headers, OpenBSD loop, raw IPv4
    (DLT 228), IPv4 fragments, Apple PKTAP (macOS `tcpdump -i any`), Linux NFLOG over IPv6,
    PPP and Cisco HDLC (router captures); all in one pcapng with an interface each."""
    cap = PcapNg([(276, 6), (1, 6), (1, 6), (108, 6), (228, 6), (1, 6), (258, 6), (239, 6),
                  (9, 6), (104, 6)])
    conns = []
    setups = [
        ("10.3.0.1", "10.3.0.2", {"link": 276}),
        ("10.3.1.1", "10.3.1.2", {"link": 1, "vlans": ((0x88A8, 100), (0x8100, 42))}),
        ("2001:db8:3::1", "2001:db8:3::2", {"link": 1, "v6ext": True}),
        ("2001:db8:4::1", "2001:db8:4::2", {"link": 108}),
        ("10.3.4.1", "10.3.4.2", {"link": 228}),
        ("10.3.5.1", "10.3.5.2", {"link": 1, "fragment": True}),
        ("10.3.6.1", "10.3.6.2", {"link": 258}),
        ("2001:db8:7::1", "2001:db8:7::2", {"link": 239}),
        ("10.3.8.1", "10.3.8.2", {"link": 9}),
        ("2001:db8:9::1", "2001:db8:9::2", {"link": 104}),
    ]
    for i, (cl, sv, opts) in enumerate(setups):
        port = 7100 + i
        c = Conn(cap, cl, sv, 54000 + i, port, t=1_700_000_500.0 + i, link=opts["link"], iface=i)
        c.vlans = opts.get("vlans", ())
        c.v6ext = opts.get("v6ext", False)
        c.fragment = opts.get("fragment", False)
        c.open()
        k = base64.b64encode(bytes([i]) * 16).decode()
        c.send("c", request(f"/link{i}", key=k))
        c.send("s", response(key=k))
        c.send("c", cf(1, f"hello over link {i}"))
        c.send("s", frame(1, f"reply over link {i}"))
        c.send("c", cf(8, struct.pack("!H", 1000)))
        c.send("s", frame(8, struct.pack("!H", 1000)))
        c.close("s")
        conns.append({
            "server_port": port,
            "messages": [text("client", f"hello over link {i}"),
                         text("server", f"reply over link {i}")],
            "close": {"initiator": "client", "code": 1000, "echoed": True},
            "tcp_end": "fin",
        })
    save("crafted-link-types", cap, {
        "description": "SLL2, 802.1ad/802.1Q, IPv6 extension headers, OpenBSD loop, DLT 228, IPv4 fragments, PKTAP, NFLOG, PPP, Cisco HDLC",
        "connections": conns,
        "expect_problems": [],
    }, name="capture.pcapng")


def ip_datagram(src, dst, proto, payload, v6, ident=1):
    """An IPv4 or IPv6 packet of any protocol (don't-fragment clear, so it may be cut)."""
    if v6:
        return struct.pack("!IHBB", 6 << 28, len(payload), proto, 64) + src + dst + payload
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ip4_datagram_fragments(src, dst, proto, payload, ident, cut=1200):
    """An IPv4 datagram cut into fragments of `cut` bytes (a multiple of 8), in order."""
    out = []
    for off in range(0, len(payload), cut):
        part = payload[off:off + cut]
        more = 0x2000 if off + cut < len(payload) else 0
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(part), ident, more | (off // 8), 64,
                        proto, 0, src, dst)
        out.append(h[:10] + struct.pack("!H", csum(h)) + h[12:] + part)
    return out


ETH_HDR = b"\x02\0\0\0\0\x0a\x02\0\0\0\0\x0b"


def ethernet(pkt, v6=None, tags=b""):
    kind = b"\x86\xdd" if (pkt[0] >> 4 == 6 if v6 is None else v6) else b"\x08\x00"
    return ETH_HDR + tags + kind + pkt


def tunnels():
    """One short WebSocket conversation inside each tunnel that carries mirrored or routed
    traffic: VXLAN (AWS Traffic Mirroring), Geneve with options (AWS Gateway Load Balancer),
    GRE with checksum, key and sequence number, ERSPAN type II over IPv6 with an 802.1Q tag
    inside, ERSPAN type III with its platform subheader, VXLAN whose outer datagrams are
    IPv4 fragments (a 3000-byte message over a 1500-byte path), IP in IP inside VXLAN (two
    tunnels), an MPLS label stack, and a PPPoE session in an 802.1Q tag. Beside them, UDP to the VXLAN port that is not VXLAN, and GRE version 1
    (PPTP), which are left alone."""
    cap = Pcap(link=1)
    outer4 = (ip4("192.0.2.200"), ip4("192.0.2.201"))
    outer6 = (ip6("2001:db8:ff::1"), ip6("2001:db8:ff::2"))
    ident = [100]

    def udp(dport, body):
        return struct.pack("!HHHH", 40000, dport, 8 + len(body), 0) + body

    def vxlan(pkt):
        return [ethernet(ip_datagram(*outer4, 17, udp(4789, b"\x08\0\0\0\0\x00\x2a\0" + ethernet(pkt)),
                                     False))]

    def geneve(pkt):
        opts = struct.pack("!HBB", 0x0108, 0x01, 1) + b"\xab\xcd\xef\x01"  # one 4-byte option
        hdr = struct.pack("!BBH", len(opts) // 4, 0, 0x6558) + b"\0\0\x07\0"
        return [ethernet(ip_datagram(*outer4, 17, udp(6081, hdr + opts + ethernet(pkt)), False))]

    def gre_full(pkt):
        hdr = struct.pack("!BBH", 0xB0, 0, 0x0800) + b"\0\0\0\0" + struct.pack("!II", 77, ident[0])
        ident[0] += 1
        return [ethernet(ip_datagram(*outer4, 47, hdr + pkt, False))]

    def erspan2(pkt):
        gre = struct.pack("!BBHI", 0x10, 0, 0x88BE, ident[0])
        ident[0] += 1
        span = struct.pack("!HHI", 0x1000 | 42, 0x0005, 0)
        inner = ethernet(pkt, tags=struct.pack("!HH", 0x8100, 42))
        return [ethernet(ip_datagram(*outer6, 47, gre + span + inner, True))]

    def erspan3(pkt):
        gre = struct.pack("!BBHI", 0x10, 0, 0x22EB, ident[0])
        ident[0] += 1
        span = struct.pack("!HHIHBB", 0x2000, 0x0007, 123456, 0, 0x00, 0x01) + b"\x5a" * 8
        return [ethernet(ip_datagram(*outer4, 47, gre + span + ethernet(pkt), False))]

    def vxlan_fragmented(pkt):
        ident[0] += 1
        body = udp(4789, b"\x08\0\0\0\0\x00\x2b\0" + ethernet(pkt))
        return [ethernet(f) for f in ip4_datagram_fragments(*outer4, 17, body, ident[0])]

    def ipip_in_vxlan(pkt):
        inner = ip_datagram(ip4("198.51.100.1"), ip4("198.51.100.2"), 4, pkt, False)
        return vxlan(inner)

    def mpls(pkt):
        labels = struct.pack("!II", (1000 << 12) | 64, (2000 << 12) | 0x100 | 64)
        return [ETH_HDR + b"\x88\x47" + labels + pkt]

    def pppoe(pkt):
        session = struct.pack("!BBHHH", 0x11, 0, 0x1234, len(pkt) + 2, 0x0021)
        return [ETH_HDR + b"\x81\x00\x00\x07\x88\x64" + session + pkt]

    setups = [
        ("10.7.0.1", "10.7.0.2", vxlan, 1),
        ("2001:db8:7:1::1", "2001:db8:7:1::2", geneve, 1),
        ("10.7.2.1", "10.7.2.2", gre_full, 1),
        ("10.7.3.1", "10.7.3.2", erspan2, 1),
        ("10.7.4.1", "10.7.4.2", erspan3, 1),
        ("10.7.5.1", "10.7.5.2", vxlan_fragmented, 125),
        ("10.7.6.1", "10.7.6.2", ipip_in_vxlan, 1),
        ("10.7.7.1", "10.7.7.2", mpls, 1),
        ("10.7.8.1", "10.7.8.2", pppoe, 1),
    ]

    class Tunnelled(Conn):
        def packet(self, side, flags, payload=b"", seq=None, dt=0.001, advance=True):
            other = "s" if side == "c" else "c"
            (src, sp), (dst, dp) = self.addr[side], self.addr[other]
            rel = self.nxt[side] if seq is None else seq
            seg = tcp_segment(src, dst, sp, dp, self.isn[side] + rel,
                              self.isn[other] + self.nxt[other], flags, payload, self.v6)
            self.t += dt
            for frame_bytes in self.wrap(ip_packet(src, dst, seg, self.v6)):
                self.cap.add(self.t, frame_bytes)
            if advance and seq is None:
                self.nxt[side] += len(payload) + (1 if flags & (SYN | FIN) else 0)

    conns = []
    for i, (cl, sv, wrap, repeat) in enumerate(setups):
        port = 7200 + i
        c = Tunnelled(cap, cl, sv, 55000 + i, port, t=1_700_000_600.0 + i)
        c.wrap = wrap
        c.open()
        k = base64.b64encode(bytes([0x40 + i]) * 16).decode()
        c.send("c", request(f"/tunnel{i}", key=k))
        c.send("s", response(key=k))
        hello = (f"hello through tunnel {i} " * repeat)[: 24 * repeat]
        c.send("c", cf(1, hello), mss=4000)
        c.send("s", frame(1, f"reply through tunnel {i}"))
        close_normally(c)
        conns.append({
            "server_port": port,
            "messages": [text("client", hello), text("server", f"reply through tunnel {i}")],
            "close": {"initiator": "client", "code": 1000, "echoed": True},
            "tcp_end": "fin",
        })
    # Left alone: UDP to the VXLAN port without the I flag, and PPTP's GRE version 1.
    cap.add(1_700_000_700.0, ethernet(ip_datagram(*outer4, 17, udp(4789, b"\0" * 8 + b"junk"), False)))
    pptp = struct.pack("!BBHHH", 0x30, 0x81, 0x880B, 4, 9) + struct.pack("!I", 1) + b"\xff\x03ppp"
    cap.add(1_700_000_700.1, ethernet(ip_datagram(*outer4, 47, pptp, False)))
    save("crafted-tunnels", cap, {
        "description": "VXLAN, Geneve, GRE with checksum/key/sequence, ERSPAN II over IPv6, ERSPAN III, VXLAN in IPv4 fragments, IP in IP inside VXLAN, MPLS, PPPoE",
        "connections": conns,
        "expect_problems": [],
    })


def big_tcp():
    """Segments over 64 KB as a sender's capture shows them with Linux BIG TCP (GSO): IPv4
    with a total length of 0, and an IPv6 jumbogram (payload length 0 and a hop-by-hop jumbo
    payload option, RFC 2675). TCP checksums are left 0 (offloaded). Gzip'd: the payloads
    are one letter repeated."""
    cap = Pcap(link=1)

    class Big(Conn):
        def packet(self, side, flags, payload=b"", seq=None, dt=0.001, advance=True):
            other = "s" if side == "c" else "c"
            (src, sp), (dst, dp) = self.addr[side], self.addr[other]
            rel = self.nxt[side] if seq is None else seq
            seg = struct.pack("!HHIIBBHHH", sp, dp, (self.isn[side] + rel) & 0xFFFFFFFF,
                              (self.isn[other] + self.nxt[other]) & 0xFFFFFFFF, 5 << 4, flags,
                              65535, 0, 0) + payload
            self.t += dt
            big = len(seg) > 0xFFFF - 40
            if self.v6 and big:
                hbh = struct.pack("!BBBBI", 6, 0, 0xC2, 4, len(seg) + 8)
                pkt = struct.pack("!IHBB", 6 << 28, 0, 0, 64) + src + dst + hbh + seg
            elif self.v6:
                pkt = struct.pack("!IHBB", 6 << 28, len(seg), 6, 64) + src + dst + seg
            else:
                total = 0 if big else 20 + len(seg)
                h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0, src, dst)
                pkt = h[:10] + struct.pack("!H", csum(h)) + h[12:] + seg
            self.cap.add(self.t, link_frame(1, pkt, self.v6))
            if advance and seq is None:
                self.nxt[side] += len(payload) + (1 if flags & (SYN | FIN) else 0)

    conns = []
    for i, (cl, sv) in enumerate([("10.9.0.1", "10.9.0.2"), ("2001:db8:9::1", "2001:db8:9::2")]):
        port = 7300 + i
        c = Big(cap, cl, sv, 56000 + i, port, t=1_700_000_800.0 + i)
        c.open()
        k = base64.b64encode(bytes([0x60 + i]) * 16).decode()
        c.send("c", request(f"/big{i}", key=k))
        c.send("s", response(key=k))
        big = "xy"[i] * 100_000
        c.send("s", frame(1, big), mss=70_000)
        c.send("c", cf(1, "thanks"))
        close_normally(c)
        conns.append({
            "server_port": port,
            "messages": [text("server", big), text("client", "thanks")],
            "close": {"initiator": "client", "code": 1000, "echoed": True},
            "tcp_end": "fin",
        })
    save("crafted-big-tcp", cap, {
        "description": "BIG TCP: IPv4 total length 0 and an IPv6 jumbogram, segments of 70,000 bytes",
        "connections": conns,
        "expect_problems": [],
    }, name="capture.pcap.gz", gz=True)


def hostile_text():
    """Payloads written to attack a terminal (ESC sequences that clear the screen, set the
    window title or hide text; a bidi override; C1 CSI) in text frames, a close reason and
    the request path, next to a JSON message; and a second, plain connection from another
    host, so filters have something to choose between."""
    cap = Pcap()
    c = Conn(cap, "10.9.0.1", "10.9.0.2", 41000, 9100)
    c.open()
    c.send("c", request("/evil\x1b[2J"))
    c.send("s", response())
    nasty = [
        "\x1b[2J\x1b[Hscreen cleared",
        "\x1b]0;pwned title\x07 title set",
        "left \u202eright-to-left override\u202c end",
        "\u009b31m C1 CSI red",
        "bell\x07 and backspace\x08 and NUL\x00 end",
    ]
    for t in nasty:
        c.send("c", cf(1, t))
    c.send("s", frame(1, '{"event":"msg","data":{"id":7,"text":"hi"}}'))
    c.send("c", cf(8, struct.pack("!H", 1000) + "bye \x1b[31mred\u202e".encode()))
    c.send("s", frame(8, struct.pack("!H", 1000)))
    c.close("s")
    d = Conn(cap, "10.9.1.1", "10.9.1.2", 42000, 9200, t=1_700_000_010.0)
    d.open()
    d.send("c", request("/plain"))
    d.send("s", response())
    d.send("c", cf(2, b"\x00\x01\x02"))
    d.send("s", frame(1, "plain reply"))
    d.send("c", cf(8, struct.pack("!H", 1001)))
    d.send("s", frame(8, struct.pack("!H", 1001)))
    d.close("s")
    save("crafted-hostile-text", cap, {
        "description": "terminal escape sequences and bidi overrides in payloads, close reason and path; a second plain connection",
        "connections": [
            {
                "server_port": 9100,
                "messages": [text("client", t) for t in nasty]
                + [text("server", '{"event":"msg","data":{"id":7,"text":"hi"}}')],
                "close": {"initiator": "client", "code": 1000, "echoed": True},
                "tcp_end": "fin",
            },
            {
                "server_port": 9200,
                "messages": [binary("client", b"\x00\x01\x02"), text("server", "plain reply")],
                "close": {"initiator": "client", "code": 1001, "echoed": True},
                "tcp_end": "fin",
            },
        ],
        "expect_problems": ["malformed-http"],
    })


def app_errors():
    """Application payloads that do not decode, next to ones that do, for each decoder: a
    Socket.IO connection (broken JSON, unknown packet types, a binary packet without its
    count, an attachment that never comes), an MQTT one (a remaining length over four
    bytes, a truncated CONNECT, a text message), a STOMP one (unknown command, no NUL) and a
    graphql-transport-ws one (not JSON, no type). Each bad message must carry
    app-decode-error and the run must go on."""
    cap = Pcap()
    t = 1_700_000_100.0
    cases = [
        ("/socket.io/?EIO=4&transport=websocket&sid=abc", "", 9301, [
            ("s", 1, '0{"sid":"abc","upgrades":[]'),
            ("c", 1, '42["ok",1]'),
            ("c", 1, '42[broken'),
            ("c", 1, '9'),
            ("c", 1, '47["x"]'),
            ("c", 1, '45["x"]'),
            ("c", 1, '42{"not":"an array"}'),
            ("c", 1, '451-["up",{"_placeholder":true,"num":0}]'),
            ("s", 1, '3'),
        ]),
        ("/mqtt", "Sec-WebSocket-Protocol: mqtt\r\n", 9302, [
            ("c", 2, b"\xc0\x00"),
            ("c", 2, b"\x30\xff\xff\xff\xff\x01"),
            ("c", 2, b"\x10\x02\x00\x09"),
            ("c", 1, "text is not MQTT"),
            ("s", 2, b"\xd0\x00"),
        ]),
        ("/stomp", "Sec-WebSocket-Protocol: v12.stomp\r\n", 9303, [
            ("c", 1, "HELLO\n\n\x00"),
            ("c", 1, "SEND\ndestination:/q\n\nno terminator"),
            ("c", 1, "SEND\ndestination:/q\n\nfine\x00"),
        ]),
        ("/graphql", "Sec-WebSocket-Protocol: graphql-transport-ws\r\n", 9304, [
            ("c", 1, "not json"),
            ("c", 1, '{"id":"1"}'),
            ("c", 1, '{"type":"connection_init"}'),
        ]),
    ]
    conns = []
    for path, proto, port, msgs in cases:
        c = Conn(cap, "10.9.2.1", "10.9.2.2", port + 30000, port, t=t)
        t += 10
        c.open()
        c.send("c", request(path, extra=proto))
        c.send("s", response(extra=proto))
        for side, op, payload in msgs:
            c.send(side, cf(op, payload) if side == "c" else frame(op, payload))
        c.send("c", cf(8, struct.pack("!H", 1000)))
        c.send("s", frame(8, struct.pack("!H", 1000)))
        c.close("s")
        conns.append({
            "server_port": port,
            "messages": [
                (text if op == 1 else binary)("client" if side == "c" else "server", payload)
                for side, op, payload in msgs
            ],
            "close": {"initiator": "client", "code": 1000, "echoed": True},
        })
    save("crafted-app-errors", cap, {
        "description": "application payloads that do not decode (Socket.IO, MQTT, STOMP, GraphQL) among ones that do",
        "connections": conns,
        "expect_problems": ["app-decode-error"],
    })


def polling_chunked():
    """Engine.IO long-polling as other servers may send it: one keep-alive connection
    carrying three requests in turn, responses with `Transfer-Encoding: chunked` (chunks and
    the CRLFs between them split across TCP segments), then the WebSocket the session
    upgrades to. Real Socket.IO servers send Content-Length; this is the case they do not
    cover."""
    cap = Pcap()
    sid = "CHUNKEDsid01"
    base = "/socket.io/?EIO=4&transport=polling"
    c = Conn(cap, "10.9.3.1", "10.9.3.2", 43000, 9400)
    c.open()

    def http_req(method, path, body=b""):
        head = f"{method} {path} HTTP/1.1\r\nHost: example\r\nConnection: keep-alive\r\n"
        if body:
            head += f"Content-Length: {len(body)}\r\nContent-Type: text/plain\r\n"
        return head.encode() + b"\r\n" + body

    def chunked_resp(parts):
        out = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        for p in parts:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
        return out + b"0\r\n\r\n"

    open_pkt = ('0{"sid":"%s","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}' % sid).encode()
    c.send("c", http_req("GET", base + "&t=a1"))
    c.send("s", chunked_resp([open_pkt[:20], open_pkt[20:]]), mss=37)
    c.send("c", http_req("POST", f"{base}&t=a2&sid={sid}", b'40\x1e42["hi",1]'))
    c.send("s", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c.send("c", http_req("GET", f"{base}&t=a3&sid={sid}"))
    c.send("s", chunked_resp([b'40{"sid":"nsp1"}\x1e42["reply","there"]']), mss=11)
    c.close("c")
    w = Conn(cap, "10.9.3.1", "10.9.3.2", 43001, 9400, t=1_700_000_001.0)
    w.open()
    w.send("c", request(f"/socket.io/?EIO=4&transport=websocket&sid={sid}"))
    w.send("s", response())
    for side, msg in [("c", "2probe"), ("s", "3probe"), ("c", "5"), ("c", '42["bye"]')]:
        w.send(side, cf(1, msg) if side == "c" else frame(1, msg))
    w.send("c", cf(8, struct.pack("!H", 1000)))
    w.send("s", frame(8, struct.pack("!H", 1000)))
    w.close("s")
    save("crafted-polling-chunked", cap, {
        "description": "Engine.IO long-polling on one keep-alive connection with chunked responses, then the WebSocket",
        "connections": [{
            "server_port": 9400,
            "client_port": 43001,
            "messages": [text("client", "2probe"), text("server", "3probe"), text("client", "5"),
                         text("client", '42["bye"]')],
            "close": {"initiator": "client", "code": 1000, "echoed": True},
        }],
        "engine_io_sid": sid,
        "polling": [
            {"from": "server", "method": "GET", "text": open_pkt.decode()},
            {"from": "client", "method": "POST", "text": "40"},
            {"from": "client", "method": "POST", "text": '42["hi",1]'},
            {"from": "server", "method": "GET", "text": '40{"sid":"nsp1"}'},
            {"from": "server", "method": "GET", "text": '42["reply","there"]'},
        ],
        "expect_problems": [],
    })


def socks_case():
    """WebSocket through SOCKS proxies, in the shapes real clients give them: SOCKS5 with
    everything pipelined (greeting, request and the HTTP upgrade in one segment, answers in
    one segment, as Tor's optimistic data does); SOCKS4 to an IPv4 address sent one byte per
    segment; a proxychains-style chain (SOCKS5 to a second SOCKS5 proxy, to an IPv6 target);
    SOCKS5 then an HTTP CONNECT; and a SOCKS5 proxy refusing the connection (nothing after it
    is decoded)."""
    cap = Pcap()
    t = 1_700_001_000.0
    keys = [base64.b64encode(bytes([0x40 + i]) * 16).decode() for i in range(5)]
    conns = []

    def socks5_connect(host, port):
        if ":" in host:
            addr = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
        else:
            addr = b"\x03" + bytes([len(host)]) + host.encode()
        return b"\x05\x01\x00" + addr + struct.pack("!H", port)

    granted5 = b"\x05\x00\x00\x01\x0a\x00\x00\x01\x9c\x40"

    # 1. SOCKS5, everything pipelined.
    c = Conn(cap, "198.51.100.1", "198.51.100.2", 44000, 1080, t=t)
    c.open()
    c.send("c", b"\x05\x01\x00" + socks5_connect("chat.example", 80) + request("/optimistic", key=keys[0]))
    c.send("s", b"\x05\x00" + granted5 + response(key=keys[0]) + frame(1, "pipelined hello"))
    c.send("c", cf(1, "pipelined reply"))
    close_normally(c)
    conns.append({"server_port": 1080, "note": "through a proxy: SOCKS5 to chat.example:80",
                  "messages": [text("server", "pipelined hello"), text("client", "pipelined reply")],
                  "close": {"initiator": "client", "code": 1000, "echoed": True}, "tcp_end": "fin"})

    # 2. SOCKS4 to an IPv4 address, one byte per segment.
    c = Conn(cap, "198.51.100.3", "198.51.100.4", 44001, 1081, t=t + 1)
    c.open()
    c.send("c", b"\x04\x01\x1f\x90\xc0\x00\x02\x07user\0", mss=1)
    c.send("s", b"\x00\x5a\x1f\x90\xc0\x00\x02\x07", mss=1)
    c.send("c", request("/socks4", key=keys[1]))
    c.send("s", response(key=keys[1]))
    c.send("s", frame(2, b"\x04\x05"))
    c.close("s")
    conns.append({"server_port": 1081, "note": "through a proxy: SOCKS4 to 192.0.2.7:8080",
                  "messages": [binary("server", b"\x04\x05")], "tcp_end": "fin"})

    # 3. A chain: SOCKS5 (login) to a second SOCKS5 proxy, then to an IPv6 target.
    c = Conn(cap, "198.51.100.5", "198.51.100.6", 44002, 1082, t=t + 2)
    c.open()
    c.send("c", b"\x05\x02\x00\x02")
    c.send("s", b"\x05\x02")
    c.send("c", b"\x01\x03bob\x02pw")
    c.send("s", b"\x01\x00")
    c.send("c", socks5_connect("proxy2.example", 1080))
    c.send("s", granted5)
    c.send("c", b"\x05\x01\x00")
    c.send("s", b"\x05\x00")
    c.send("c", socks5_connect("2001:db8::7", 8080))
    c.send("s", granted5)
    c.send("c", request("/chained", key=keys[2]))
    c.send("s", response(key=keys[2]))
    c.send("c", cf(1, "two proxies deep"))
    close_normally(c)
    conns.append({"server_port": 1082,
                  "note": "through a proxy: SOCKS5 to proxy2.example:1080, then SOCKS5 to [2001:db8::7]:8080",
                  "messages": [text("client", "two proxies deep")],
                  "close": {"initiator": "client", "code": 1000, "echoed": True}, "tcp_end": "fin"})

    # 4. SOCKS5, then an HTTP CONNECT through it.
    c = Conn(cap, "198.51.100.7", "198.51.100.8", 44003, 1083, t=t + 3)
    c.open()
    c.send("c", b"\x05\x01\x00")
    c.send("s", b"\x05\x00")
    c.send("c", socks5_connect("corp-proxy.example", 3128))
    c.send("s", granted5)
    c.send("c", b"CONNECT chat.example:80 HTTP/1.1\r\nHost: chat.example:80\r\n\r\n")
    c.send("s", b"HTTP/1.1 200 Connection established\r\n\r\n")
    c.send("c", request("/socks-then-connect", key=keys[3]))
    c.send("s", response(key=keys[3]))
    c.send("s", frame(1, "socks, then connect"))
    c.close("c")
    conns.append({"server_port": 1083,
                  "note": "through a proxy: SOCKS5 to corp-proxy.example:3128, then HTTP CONNECT to chat.example:80",
                  "messages": [text("server", "socks, then connect")], "tcp_end": "fin"})

    # 5. Refused by the proxy (connection refused): not WebSocket, nothing decoded.
    c = Conn(cap, "198.51.100.9", "198.51.100.10", 44004, 1084, t=t + 4)
    c.open()
    c.send("c", b"\x05\x01\x00")
    c.send("s", b"\x05\x00")
    c.send("c", socks5_connect("down.example", 80))
    c.send("s", b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
    c.send("c", request("/never", key=keys[4]))
    c.send("s", response(key=keys[4]) + frame(1, "not decoded"))
    c.close("s")
    save("crafted-socks", cap, {
        "expect_stream_bytes": cap.tcp_payload,
        "description": "WebSocket through SOCKS5 (pipelined), SOCKS4 (one byte per segment), a chain of two SOCKS5 proxies, SOCKS5 then HTTP CONNECT, and a refused SOCKS5 connection",
        "connections": conns,
        "expect_websocket_connections": 4,
        "expect_problems": [],
    })


# --- HTTP/2 builders (RFC 9113; HPACK, RFC 7541, as literals without Huffman coding) --------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes(out + [value])


def hpack(headers):
    """A header block of literals "without indexing", new names, no Huffman coding."""
    out = b""
    for name, value in headers:
        out += b"\0" + hpack_int(len(name), 7) + name.encode()
        out += hpack_int(len(value.encode()), 7) + value.encode()
    return out


def h2_frame(kind, flags, stream, payload):
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def h2_settings(pairs=()):
    return h2_frame(4, 0, 0, b"".join(struct.pack("!HI", k, v) for k, v in pairs))


def h2_connect(stream, path, extra=()):
    return hpack([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                  (":path", path), (":authority", "h2.example"), ("sec-websocket-version", "13"),
                  *extra])


def h2_data(stream, payload, end=False, pad=None):
    if pad is None:
        return h2_frame(0, 1 if end else 0, stream, payload)
    return h2_frame(0, 0x8 | (1 if end else 0), stream, bytes([pad]) + payload + b"\0" * pad)


def h2_case():
    """WebSockets over HTTP/2 (RFC 8441) in cleartext (prior knowledge), in the shapes real
    peers produce but a Chromium-Hypercorn recording does not: the server's SETTINGS before the
    client's preface; an ordinary GET beside the WebSockets; an extended CONNECT split over
    HEADERS (padded, with priority) and CONTINUATION; a subprotocol; a frame split over two
    DATA frames, and a DATA frame carrying two frames, with padding; a CONNECT refused with
    403; a WebSocket reset (RST_STREAM) before any close; a CONNECT the client resets before
    any answer; HTTP/2 inside an HTTP proxy's CONNECT tunnel; then on another connection a header
    block HPACK cannot decode (an index past every table), reported while the run goes on."""
    cap = Pcap()
    t = 1_700_002_000.0
    c = Conn(cap, "192.0.2.10", "192.0.2.20", 45000, 8080, t=t)
    c.open()
    c.send("s", h2_settings([(8, 1), (3, 100)]))
    c.send("c", H2_PREFACE + h2_settings([(4, 65535)]) + h2_frame(4, 1, 0, b""))
    c.send("s", h2_frame(4, 1, 0, b""))
    c.send("c", h2_frame(1, 0x5, 1, hpack([(":method", "GET"), (":scheme", "http"),
                                             (":path", "/"), (":authority", "h2.example")])))
    block = h2_connect(3, "/chat", [("sec-websocket-protocol", "chat, superchat"),
                                     ("origin", "http://h2.example")])
    c.send("c", h2_frame(1, 0x8 | 0x20, 3, bytes([3]) + b"\0\0\0\0\x10" + block[:20] + b"\0\0\0"))
    c.send("c", h2_frame(9, 0x4, 3, block[20:]))
    c.send("s", h2_frame(1, 0x4, 1, hpack([(":status", "200"), ("content-type", "text/plain")]))
           + h2_data(1, b"not a websocket", end=True))
    c.send("s", h2_frame(1, 0x4, 3, hpack([(":status", "200"), ("sec-websocket-protocol", "chat")])))
    c.send("c", h2_data(3, cf(1, "hello over h2c"), pad=5))
    whole = frame(1, "a server frame split over two DATA frames")
    c.send("s", h2_data(3, whole[:9]))
    c.send("s", h2_data(3, whole[9:] + frame(2, b"\x00\xff"), pad=2))
    c.send("c", h2_frame(1, 0x4, 5, h2_connect(5, "/forbidden")))
    c.send("s", h2_frame(1, 0x5, 5, hpack([(":status", "403")])))
    c.send("c", h2_frame(1, 0x4, 7, h2_connect(7, "/reset")))
    c.send("s", h2_frame(1, 0x4, 7, hpack([(":status", "200")])))
    c.send("c", h2_data(7, cf(1, "going away")))
    c.send("s", h2_frame(3, 0, 7, struct.pack("!I", 8)))
    c.send("c", h2_frame(1, 0x4, 9, h2_connect(9, "/given-up")))
    c.send("c", h2_frame(3, 0, 9, struct.pack("!I", 8)))
    c.send("c", h2_data(3, cf(8, struct.pack("!H", 1000) + b"done"), end=True))
    c.send("s", h2_data(3, frame(8, struct.pack("!H", 1000) + b"done"), end=True))
    c.send("c", h2_frame(7, 0, 0, struct.pack("!II", 7, 0)))
    c.close("c")
    conns = [
        {"server_port": 8080, "path": "/chat",
         "messages": [text("client", "hello over h2c"),
                      text("server", "a server frame split over two DATA frames"),
                      binary("server", b"\x00\xff")],
         "close": {"initiator": "client", "code": 1000, "reason": "done", "echoed": True},
         "tcp_end": "fin"},
        {"server_port": 8080, "path": "/reset",
         "messages": [text("client", "going away")], "tcp_end": "rst"},
    ]

    # Through an HTTP proxy: CONNECT, then HTTP/2 with prior knowledge inside the tunnel.
    c = Conn(cap, "192.0.2.12", "192.0.2.30", 45002, 3128, t=t + 0.5)
    c.open()
    c.send("c", b"CONNECT h2.example:8080 HTTP/1.1\r\nHost: h2.example:8080\r\n\r\n")
    c.send("s", b"HTTP/1.1 200 Connection established\r\n\r\n")
    c.send("c", H2_PREFACE + h2_settings() + h2_frame(1, 0x4, 1, h2_connect(1, "/tunnelled")))
    c.send("s", h2_settings([(8, 1)]) + h2_frame(1, 0x4, 1, hpack([(":status", "200")])))
    c.send("s", h2_data(1, frame(1, "through the proxy, over h2")))
    c.close("c")
    conns.append({"server_port": 3128, "path": "/tunnelled",
                  "note": "through a proxy: HTTP CONNECT to h2.example:8080",
                  "messages": [text("server", "through the proxy, over h2")], "tcp_end": "open"})

    c = Conn(cap, "192.0.2.11", "192.0.2.20", 45001, 8080, t=t + 1)
    c.open()
    c.send("c", H2_PREFACE + h2_settings())
    c.send("s", h2_settings([(8, 1)]))
    c.send("c", h2_frame(1, 0x4, 1, b"\xff\x80\x80\x80\x01"))
    c.send("c", h2_frame(1, 0x4, 3, h2_connect(3, "/after-the-bad-block")))
    c.send("s", h2_frame(1, 0x4, 3, hpack([(":status", "200")])))
    c.close("c")
    save("crafted-h2", cap, {
        "expect_stream_bytes": cap.tcp_payload,
        "description": "WebSockets over HTTP/2 in cleartext (RFC 8441): server SETTINGS first, a GET beside them, CONNECT over HEADERS and CONTINUATION with padding and priority, split and padded DATA, a refused CONNECT, a reset WebSocket, a CONNECT reset before its answer, HTTP/2 inside an HTTP CONNECT tunnel, and an undecodable header block on another connection",
        "connections": conns,
        "expect_websocket_connections": 3,
        "expect_problems": ["malformed-http", "upgrade-rejected"],
    })


def proxy_protocol_case():
    """Connections from a load balancer that puts a PROXY protocol header first, in the
    shapes HAProxy (tests recorded with it) does not give: a version 1 header in the same
    segment as the upgrade (nginx, ELB); a version 2 header with an AWS VPC endpoint TLV sent
    one byte per segment; version 2 for IPv6; and a version 2 LOCAL health check followed by
    plain HTTP (not WebSocket)."""
    cap = Pcap()
    t = 1_700_002_000.0
    keys = [base64.b64encode(bytes([0x50 + i]) * 16).decode() for i in range(3)]
    sig = b"\r\n\r\n\0\r\nQUIT\n"

    def v2(cmd, family, addrs, tlvs=b""):
        return sig + bytes([0x20 | cmd, family]) + struct.pack("!H", len(addrs) + len(tlvs)) + addrs + tlvs

    conns = []
    c = Conn(cap, "10.1.0.10", "10.1.0.20", 45000, 8080, t=t)
    c.open()
    c.send("c", b"PROXY TCP4 203.0.113.7 10.1.0.5 51234 443\r\n" + request("/lb-v1", key=keys[0]))
    c.send("s", response(key=keys[0]) + frame(1, "real client 203.0.113.7"))
    close_normally(c)
    conns.append({"server_port": 8080, "client_port": 45000,
                  "note": "through a proxy: PROXY protocol v1 from 203.0.113.7:51234 to 10.1.0.5:443",
                  "messages": [text("server", "real client 203.0.113.7")],
                  "close": {"initiator": "client", "code": 1000, "echoed": True}, "tcp_end": "fin"})

    c = Conn(cap, "10.1.0.11", "10.1.0.20", 45001, 8080, t=t + 1)
    c.open()
    vpce = b"vpce-0123456789abcdef0"
    tlv = bytes([0xEA]) + struct.pack("!H", len(vpce) + 1) + b"\x01" + vpce
    addrs = socket.inet_aton("198.51.100.77") + socket.inet_aton("10.1.0.5") + struct.pack("!HH", 40000, 80)
    c.send("c", v2(1, 0x11, addrs, tlv), mss=1)
    c.send("c", request("/lb-v2", key=keys[1]))
    c.send("s", response(key=keys[1]))
    c.send("c", cf(1, "through an NLB"))
    close_normally(c)
    conns.append({"server_port": 8080, "client_port": 45001,
                  "note": "through a proxy: PROXY protocol v2 from 198.51.100.77:40000 to 10.1.0.5:80",
                  "messages": [text("client", "through an NLB")],
                  "close": {"initiator": "client", "code": 1000, "echoed": True}, "tcp_end": "fin"})

    c = Conn(cap, "fd00::10", "fd00::20", 45002, 8080, t=t + 2)
    c.open()
    addrs = (socket.inet_pton(socket.AF_INET6, "2001:db8::77") + socket.inet_pton(socket.AF_INET6, "2001:db8::5")
             + struct.pack("!HH", 40001, 443))
    c.send("c", v2(1, 0x21, addrs) + request("/lb-v6", key=keys[2]))
    c.send("s", response(key=keys[2]))
    c.send("s", frame(2, b"\x06"))
    c.close("s")
    conns.append({"server_port": 8080, "client_port": 45002,
                  "note": "through a proxy: PROXY protocol v2 from [2001:db8::77]:40001 to [2001:db8::5]:443",
                  "messages": [binary("server", b"\x06")], "tcp_end": "fin"})

    c = Conn(cap, "10.1.0.12", "10.1.0.20", 45003, 8080, t=t + 3)
    c.open()
    c.send("c", v2(0, 0, b"") + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    c.send("s", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c.close("s")

    # A header cut short by the end of the connection: its bytes are still accounted for.
    c = Conn(cap, "10.1.0.13", "10.1.0.20", 45004, 8080, t=t + 4)
    c.open()
    c.send("c", b"PROXY TCP4 192.0.2", mss=6)
    c.close("c")
    save("crafted-proxy-protocol", cap, {
        "expect_stream_bytes": cap.tcp_payload,
        "description": "PROXY protocol headers from load balancers: v1 with the upgrade in one segment, v2 with an AWS TLV one byte per segment, v2 over IPv6, a v2 LOCAL health check",
        "connections": conns,
        "expect_websocket_connections": 3,
        "expect_problems": [],
    })


def capture_loss():
    """What a capture that dropped packets (tcpdump under load) or began late holds: in the
    middle of permessage-deflate with context takeover and of fragmented messages, and in the
    handshake (a lost answer, a lost request). A message
    that refers back to bytes the capture lacks is reported as such, not inflated from the
    wrong history (tshark shows that garbage as the text); the rest of a message whose start
    was lost, and a new message after one whose end was lost, are not the peers' errors."""
    cap = Pcap()
    c = Conn(cap, "10.3.0.1", "10.3.0.2", 53000, 8460)
    c.open()
    ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    c.send("c", request("/loss", extra=ext))
    c.send("s", response(extra=ext))
    zs = zlib.compressobj(9, zlib.DEFLATED, -15)

    def lose(side, data):
        c.nxt[side] += len(data)

    c.send("s", frame(1, deflate(b"alpha beta gamma delta " * 3, zs), rsv=4))
    lose("s", frame(1, deflate(b"zeta eta theta iota kappa lambda mu nu", zs), rsv=4))
    # Refers back across the lost message, into the first one.
    c.send("s", frame(1, deflate(b"alpha beta gamma delta", zs), rsv=4))
    # Digits: nothing to refer back to; then a message that refers to them only.
    c.send("s", frame(1, deflate(b"0123456789", zs), rsv=4))
    c.send("s", frame(1, deflate(b"0123456789 0123456789 9876543210", zs), rsv=4))
    # A fragmented message whose first frame was lost, then a message after it.
    lose("s", frame(2, b"\x01\x02\x03", fin=False))
    c.send("s", frame(0, b"\x04\x05", fin=False) + frame(0, b"\x06"))
    c.send("s", frame(1, "after the orphans"))
    # A fragmented message whose last frame was lost, then the next message.
    c.send("c", cf(1, "first part ", fin=False))
    lose("c", cf(0, "lost end"))
    c.send("c", cf(1, "next message"))
    close_normally(c)
    # A capture that began after the handshake, inside a fragmented message and after
    # compressed messages the next ones refer back to.
    c = Conn(cap, "10.3.0.1", "10.3.0.2", 53001, 8461, t=1_700_000_010.0)
    zs = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflate(b"hello world hello world", zs)
    c.send("s", frame(0, "tail of a message begun before the capture"))
    c.send("s", frame(1, deflate(b"hello world again", zs), rsv=4))
    c.send("s", frame(1, deflate(b"fresh 42", zs), rsv=4))
    c.send("s", frame(1, deflate(b"fresh 42 fresh 42", zs), rsv=4))
    close_normally(c)
    # The server's answer to the upgrade request is lost (frames follow, deflate on), and
    # another connection's request is lost: neither is the peers' doing.
    c = Conn(cap, "10.3.0.1", "10.3.0.2", 53002, 8462, t=1_700_000_020.0)
    c.open()
    c.send("c", request("/answer-lost", extra=ext))
    c.nxt["s"] += len(response(extra=ext))
    c.send("s", frame(1, deflate(b"hello after a lost answer", zlib.compressobj(9, zlib.DEFLATED, -15)), rsv=4))
    c.send("c", cf(1, "client after a lost answer"))
    close_normally(c)
    c = Conn(cap, "10.3.0.1", "10.3.0.2", 53003, 8463, t=1_700_000_030.0)
    c.open()
    c.nxt["c"] += len(request("/request-lost"))
    c.send("s", response())
    c.send("s", frame(1, "server after a lost request"))
    c.send("c", cf(1, "client after a lost request"))
    close_normally(c)
    save("crafted-capture-loss", cap, {
        "description": "segments lost in permessage-deflate with context takeover and in "
                       "fragmented messages; a capture begun mid-stream",
        "connections": [
            {"server_port": 8460, "messages": None, "close": {"initiator": "client", "code": 1000, "echoed": True}},
            {"server_port": 8461, "messages": None, "close": {"initiator": "client", "code": 1000, "echoed": True}},
            {"server_port": 8462, "messages": [text("server", "hello after a lost answer"),
                                              text("client", "client after a lost answer")],
             "close": {"initiator": "client", "code": 1000, "echoed": True}},
            {"server_port": 8463, "messages": [text("server", "server after a lost request"),
                                              text("client", "client after a lost request")],
             "close": {"initiator": "client", "code": 1000, "echoed": True}},
        ],
        "expect_problems": ["tcp-gap", "deflate-history-lost", "incomplete-message", "handshake-not-seen"],
    })


if __name__ == "__main__":
    random.seed(1)
    violations()
    handshakes()
    tcp_hostile()
    midstream()
    deflate_case()
    link_types()
    hostile_text()
    app_errors()
    polling_chunked()
    bad_files()
    tunnels()
    big_tcp()
    upgrade_retry()
    deflate_final_blocks()
    socks_case()
    proxy_protocol_case()
    h2_case()
    capture_loss()
