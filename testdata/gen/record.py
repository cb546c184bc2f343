"""Records a real WebSocket exchange on loopback with tcpdump.

Usage (as root, from the repository root):
    python3 testdata/gen/record.py CASE

CASE is one of the scenarios in `SCENARIOS` below. Each starts a real server and a real
client (Python `websockets`, or Node `ws` through `node_ws.js`), records the loopback traffic
on the scenario's port into `testdata/CASE/capture.pcap`, and writes `testdata/CASE/truth.json`
from what the peers really sent (the format is described in tests/cases.rs).

Requirements: tcpdump, python3 with `websockets` (pip install websockets), and for the Node
scenarios `npm ci` in this folder; `py-websockets-socks` needs `python-socks` (pip), the `haproxy-*` scenarios `haproxy` (apt); `node-mqtt` also needs `mosquitto` (apt-get install
mosquitto), the tour scenarios `websocket-client` (pip) and `chromium` (apt),
`chromium-h2-websockets` `hypercorn` (pip).
"""

import asyncio
import gzip
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)


def start_tcpdump(path, port):
    p = subprocess.Popen(
        ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-Z", "root", "-w", path, f"tcp port {port}"],
        stderr=subprocess.PIPE,
    )
    # tcpdump says "listening on" once the capture is running.
    line = p.stderr.readline().decode()
    if "listening" not in line:
        raise SystemExit(f"tcpdump did not start: {line}")
    # The filter is attached a moment after the message; packets before it are lost.
    time.sleep(1.0)
    return p


def stop_tcpdump(p):
    # Let the last packets reach the file, then stop as Ctrl-C would.
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    p.wait()


def record(case, port, scenario):
    out = os.path.join(TESTDATA, case)
    os.makedirs(out, exist_ok=True)
    pcap = os.path.join(out, "capture.pcap")
    dump = start_tcpdump(pcap, port)
    try:
        truth = scenario(port)
    finally:
        stop_tcpdump(dump)
    if truth.pop("gzip", False):
        # Long messages of repeated bytes: the capture shrinks from hundreds of KB to a few.
        with open(pcap, "rb") as f, gzip.GzipFile(pcap + ".gz", "wb", mtime=0) as g:
            g.write(f.read())
        os.remove(pcap)
        pcap += ".gz"
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(f"{case}: {os.path.getsize(pcap)} bytes")


def msg(frm, data, opcode=None):
    """A message as truth.json states it; long payloads by length and SHA-1."""
    raw = data.encode() if isinstance(data, str) else data
    out = {"from": frm, "opcode": opcode or ("text" if isinstance(data, str) else "binary")}
    if len(raw) > 512:
        out.update({"len": len(raw), "sha1": hashlib.sha1(raw).hexdigest()})
    elif isinstance(data, str):
        out["text"] = data
    else:
        out["bytes_hex"] = raw.hex()
    return out


# --- Python websockets -------------------------------------------------------------------


async def echo(ws):
    """A websockets server handler that sends every message back."""
    async for m in ws:
        await ws.send(m)


async def echoed(ws, messages):
    """Sends each message and waits for its echo: what both sides sent, as truths state it."""
    sent = []
    for m in messages:
        await ws.send(m)
        sent.append(msg("client", m))
        await ws.recv()
        sent.append(msg("server", m))
    return sent


def py_basic(port):
    """Echo server with permessage-deflate (the library's default), text, binary, a
    64-bit-length message, a fragmented compressed message, a ping, and a clean close."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    long_text = "".join(f"line {i}: the quick brown fox\n" for i in range(2500))
    sent = []

    async def main():
        async with serve(echo, "127.0.0.1", port, ping_interval=None):
            async with connect(f"ws://127.0.0.1:{port}/chat", ping_interval=None) as ws:
                sent.extend(await echoed(ws, ["hello", b"\x00\x01\x02\xff", long_text, "héllo wörld ✓"]))
                await ws.send(["frag-one ", "frag-two ", "frag-three"])
                whole = "frag-one frag-two frag-three"
                sent.append(msg("client", whole))
                await ws.recv()
                sent.append(msg("server", whole))
                pong = await ws.ping(b"are you there")
                await pong
                sent.append(msg("client", b"are you there", "ping"))
                sent.append(msg("server", b"are you there", "pong"))
                await ws.close(1000, "bye")

    asyncio.run(main())
    return {
        "description": "Python websockets 17 client and server on loopback, permessage-deflate",
        "connections": [
            {
                "server_port": port,
                "messages": sent,
                "close": {"initiator": "client", "code": 1000, "reason": "bye", "echoed": True},
                "tcp_end": "fin",
            }
        ],
        "expect_problems": [],
    }


def py_keepalive_rst(port):
    """An idle connection with kernel TCP keepalives every second, then the client aborts
    with an RST (SO_LINGER 0) without a close frame."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def handler(ws):
        async for m in ws:
            await ws.send(m.upper())

    async def main():
        async with serve(handler, "127.0.0.1", port, ping_interval=None, compression=None):
            async with connect(
                f"ws://127.0.0.1:{port}/idle", ping_interval=None, compression=None
            ) as ws:
                sock = ws.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
                await ws.send("ping me")
                await ws.recv()
                await asyncio.sleep(3.5)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ws.transport.abort()
            await asyncio.sleep(0.3)

    asyncio.run(main())
    return {
        "description": "Python websockets: TCP keepalives on an idle connection, then an RST",
        "connections": [
            {
                "server_port": port,
                "messages": [msg("client", "ping me"), msg("server", "PING ME")],
                "tcp_end": "rst",
            }
        ],
        "expect_problems": ["no-close-frame"],
        "expect_tcp": {"keepalive_min": 2, "rst_from": "client"},
    }


def py_rejected(port):
    """The server refuses the upgrade with 403; the client gives up."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve
    from websockets.http11 import Response
    from websockets.datastructures import Headers

    def refuse(conn, request):
        return conn.respond(403, "no entry\n")

    async def handler(ws):
        await ws.send("never")

    async def main():
        async with serve(handler, "127.0.0.1", port, process_request=refuse):
            try:
                async with connect(f"ws://127.0.0.1:{port}/private"):
                    pass
            except Exception:
                pass
            await asyncio.sleep(0.2)

    asyncio.run(main())
    return {
        "description": "Python websockets: the server rejects the upgrade with 403",
        "connections": [],
        "expect_problems": ["upgrade-rejected"],
        "expect_handshake": {"status": 403},
    }


async def pipe(reader, writer):
    """Copies one direction of a proxied connection (the recipes' proxies)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def tls_contexts():
    """TLS contexts of the Python peers (testdata/gen/tls's certificate for wsdissect.test);
    the client's writes the key log into the current case's keylog.txt."""
    import ssl

    tls_dir = os.path.join(HERE, "tls")
    keylog = os.path.join(TESTDATA, CURRENT_CASE[0], "keylog.txt")
    if os.path.exists(keylog):
        os.remove(keylog)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem"))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(os.path.join(tls_dir, "cert.pem"))
    client_ctx.keylog_filename = keylog
    return server_ctx, client_ctx


def py_wss(port):
    """Python websockets over TLS (wss://): the client's SSLContext writes the key log
    (`keylog_filename`) into the case's keylog.txt; deflate on (the library's default), text,
    binary, a 70000-byte message that deflate cannot shrink (its TLS records span TCP
    segments), a ping, and a clean close by the client."""
    import random
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    server_ctx, client_ctx = tls_contexts()
    sent = []

    async def echo_or_size(ws):
        async for m in ws:
            await ws.send(f"got {len(m)} bytes" if len(m) > 10000 else m)

    async def main():
        async with serve(echo_or_size, "127.0.0.1", port, ssl=server_ctx, ping_interval=None):
            async with connect(f"wss://127.0.0.1:{port}/py", ssl=client_ctx,
                               server_hostname="wsdissect.test", ping_interval=None) as ws:
                sent.extend(await echoed(ws, ["hello over tls", b"\x00\xffbinary", "ünïcödé ✓" * 40]))
                # Loopback segments are up to 64 KiB (its MSS, and GSO): a message longer
                # than that, which deflate cannot shrink, makes TLS records span segments.
                noise = random.Random(8449).randbytes(70000)
                await ws.send(noise)
                sent.append(msg("client", noise))
                await ws.recv()
                sent.append(msg("server", "got 70000 bytes"))
                pong = await ws.ping(b"tls ping")
                await pong
                sent.append(msg("client", b"tls ping", "ping"))
                sent.append(msg("server", b"tls ping", "pong"))
                await ws.close(1000, "tls bye")

    asyncio.run(main())
    return {
        "description": "Python websockets 17 over TLS 1.3, key log from SSLContext.keylog_filename",
        "keylog": "keylog.txt",
        "connections": [
            {
                "server_port": port,
                "messages": sent,
                "close": {"initiator": "client", "code": 1000, "reason": "tls bye",
                          "echoed": True},
                "tcp_end": "fin",
            }
        ],
        "expect_tls": {"version": "TLS 1.3", "sni": "wsdissect.test"},
        "expect_problems": [],
    }


def py_wss_proxy(port):
    """wss:// through an HTTP proxy, as corporate networks carry it: Python websockets
    connects through a small CONNECT proxy listening on `port` (the leg recorded: CONNECT,
    200, then TLS end to end), to the server on `port + 1`. The client's SSLContext writes
    the key log; text both ways and a clean close."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    server_ctx, client_ctx = tls_contexts()
    sent = []

    async def proxy(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ")[1].decode()
        host, _, tport = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(tport))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def main():
        proxy_server = await asyncio.start_server(proxy, "127.0.0.1", port)
        async with proxy_server, serve(echo, "127.0.0.1", port + 1, ssl=server_ctx,
                                       ping_interval=None):
            async with connect(f"wss://127.0.0.1:{port + 1}/behind-proxy", ssl=client_ctx,
                               server_hostname="wsdissect.test", ping_interval=None,
                               proxy=f"http://127.0.0.1:{port}") as ws:
                sent.extend(await echoed(ws, ["hello through the proxy", "ünïcödé ✓ again"]))
                await ws.close(1000, "proxy bye")

    asyncio.run(main())
    return proxied_truth("Python websockets 17 over TLS 1.3 through an HTTP CONNECT proxy", [{
        "server_port": port,
        "note": f"through a proxy: HTTP CONNECT to 127.0.0.1:{port + 1}",
        "messages": sent,
        "close": {"initiator": "client", "code": 1000, "reason": "proxy bye", "echoed": True},
    }])


# --- headless Chromium -------------------------------------------------------------------

CHROMIUM_PAGE = """<!doctype html><title>wsdissect</title><script>
const ws = new WebSocket("ws://127.0.0.1:%d/browser");
ws.onopen = () => ws.send("hello from chromium");
ws.onmessage = (e) => { if (e.data === "HELLO FROM CHROMIUM") ws.close(1000, "done"); };
</script>"""


def chromium(port):
    """A page in headless Chromium talks to a Python websockets server (deflate on both
    sides, as browsers offer it), then closes with 1000 "done"."""
    import tempfile
    from websockets.asyncio.server import serve

    closed = None

    async def handler(ws):
        async for m in ws:
            await ws.send(m.upper())
        closed.set()

    async def main():
        nonlocal closed
        closed = asyncio.Event()
        with tempfile.TemporaryDirectory() as d:
            page = os.path.join(d, "page.html")
            with open(page, "w") as f:
                f.write(CHROMIUM_PAGE % port)
            async with serve(handler, "127.0.0.1", port, ping_interval=None):
                browser = await asyncio.create_subprocess_exec(
                    "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", f"--user-data-dir={d}/u",
                    "--remote-debugging-port=0", "file://" + page,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    await asyncio.wait_for(closed.wait(), 30)
                    await asyncio.sleep(0.5)
                finally:
                    browser.kill()
                    await browser.wait()

    asyncio.run(main())
    return {
        "description": "headless Chromium page against a Python websockets server",
        "connections": [{
            "server_port": port,
            "messages": [msg("client", "hello from chromium"),
                         msg("server", "HELLO FROM CHROMIUM")],
            "close": {"initiator": "client", "code": 1000, "reason": "done", "echoed": True},
        }],
        "expect_problems": [],
    }


# --- Node ws ------------------------------------------------------------------------------


def node_ws(port, mode="deflate"):
    """Node `ws` server and client with permessage-deflate (or without, mode "plain"), a
    200 kB binary message, and a close started by the server with code 4000."""
    out = subprocess.run(
        ["node", os.path.join(HERE, "node_ws.js"), str(port), mode],
        check=True,
        capture_output=True,
        timeout=30,
    )
    sent = json.loads(out.stdout)
    return {
        "description": f"Node ws 8 client and server on loopback, {mode}",
        "connections": [
            {
                "server_port": port,
                "messages": sent,
                "close": {"initiator": "server", "code": 4000, "reason": "server done",
                          "echoed": True},
            }
        ],
        "expect_problems": [],
    }


def node_wss(port, mode, extra=()):
    """Node `ws` over https (wss://): the server logs the TLS secrets (its 'keylog' events)
    into the case's keylog.txt; text, a short binary, a 20000-byte binary that spans TLS
    records and segments, and a close started by the server with 4000."""
    case_dir = os.path.join(TESTDATA, CURRENT_CASE[0])
    keylog = os.path.join(case_dir, "keylog.txt")
    out = subprocess.run(
        ["node", os.path.join(HERE, "node_wss.js"), str(port), mode, keylog, *extra],
        check=True,
        capture_output=True,
        timeout=30,
    )
    sent = json.loads(out.stdout)
    return {
        "description": f"Node ws 8 client and server over TLS ({mode}) on loopback",
        "keylog": "keylog.txt",
        "connections": [
            {
                "server_port": port,
                "messages": sent,
                "close": {"initiator": "server", "code": 4000, "reason": "server done",
                          "echoed": True},
            }
        ],
        "expect_tls": {"sni": "wsdissect.test", "alpn": "http/1.1", **NODE_WSS_SUITES[mode]},
        "expect_problems": [],
    }


def node_sio_ws(port):
    """Socket.IO 4 with the WebSocket transport only: the session id comes in the WebSocket's
    Engine.IO `open` packet, not in the path."""
    out = subprocess.run(["node", os.path.join(HERE, "node_sio_ws.js"), str(port)],
                         check=True, capture_output=True, timeout=30)
    logged = json.loads(out.stdout)
    return {
        "description": "Socket.IO 4 client and server, WebSocket transport only",
        "connections": [{"server_port": port, "messages": None}],
        "engine_io_sid": logged["sid"],
        "socket_io": logged["packets"],
        "expect_problems": [],
    }


def node_sio(port, version="v4"):
    """Socket.IO 4 server and client (Node), default transports: the session starts with HTTP
    long-polling and upgrades to WebSocket; events, acknowledgements, binary events and a
    second namespace. The truth lists every Socket.IO packet the peers sent."""
    out = subprocess.run(
        ["node", os.path.join(HERE, "node_sio.js"), str(port), version],
        check=True,
        capture_output=True,
        timeout=30,
    )
    logged = json.loads(out.stdout)
    return {
        "description": f"Socket.IO {version[1:]} client and server (Node), polling then WebSocket",
        "connections": [{"server_port": port, "messages": None}],
        "engine_io_sid": logged["sid"],
        "polling_only_sid": logged["polling_sid"],
        "socket_io": logged["packets"],
        "expect_problems": [],
    }


def node_app(script, description, args=()):
    """A subprotocol exchange between Node peers (`node_mqtt.js`, `node_stomp.js`,
    `node_graphql.js`); the truth lists what each side sent, as the script logged it."""

    def scenario(port):
        out = subprocess.run(
            ["node", os.path.join(HERE, script), str(port), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return {
            "description": description,
            "connections": [{"server_port": port, "messages": None}],
            "app": json.loads(out.stdout),
            "expect_problems": [],
        }

    return scenario


# --- Tour: five classic WebSocket systems (programs in tour/) ---------------------------


class Peer:
    """A program of tour/ run as a subprocess; waits until it prints `ready_word`."""

    def __init__(self, args, ready_word="listening", env=None):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, cwd=HERE)
        deadline = time.time() + 15
        while time.time() < deadline:
            line = self.p.stdout.readline().decode()
            if ready_word in line:
                return
            if not line and self.p.poll() is not None:
                break
        self.stop()
        raise SystemExit(f"{args} did not start: {self.p.stderr.read().decode()}")

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def node_json(script, *args, timeout=60):
    out = subprocess.run(["node", os.path.join(HERE, "tour", script), *map(str, args)],
                         check=True, capture_output=True, timeout=timeout)
    return json.loads(out.stdout)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--remote-debugging-port=0"]


def start_chromium(workdir, html, extra=()):
    """Headless Chromium showing `html` (written to a file in workdir)."""
    page = os.path.join(workdir, "page.html")
    with open(page, "w") as f:
        f.write(html)
    return subprocess.Popen(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={workdir}/u", *extra, "file://" + page],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_chromium(browser):
    """Ends the browser as closing its window would: the kernel closes its sockets."""
    browser.terminate()
    try:
        browser.wait(10)
    except subprocess.TimeoutExpired:
        browser.kill()
        browser.wait()


def read_until(peer, word, timeout=30):
    """Lines the peer prints, up to and including the first holding `word`."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(peer.p.stdout, selectors.EVENT_READ)
    lines = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not sel.select(deadline - time.time()):
            break
        line = peer.p.stdout.readline().decode()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if word in line:
            return lines
    raise SystemExit(f"no {word!r} within {timeout}s: {lines}")


NET_PAGE = """<!doctype html><title>tour 1</title><script>
const ws = new WebSocket("ws://127.0.0.1:%d/");
ws.onopen = () => { ws.send("Hello"); setTimeout(() => ws.close(1000, "bye"), 500); };
</script>"""


def tour_net_browser(port):
    """System 1: a server hand-rolled on Node `net` (tour/net_server.js) that never answers
    a frame, with a page in headless Chromium that sends "Hello" and later closes. The close
    goes unanswered; the browser is then shut down and the kernel ends the connection."""
    import tempfile

    server = Peer(["node", os.path.join(HERE, "tour", "net_server.js"), str(port)])
    try:
        with tempfile.TemporaryDirectory() as d:
            browser = start_chromium(d, NET_PAGE % port)
            try:
                log = read_until(server, "close ")
                time.sleep(1.0)
            finally:
                stop_chromium(browser)
            log += read_until(server, "client ended", 10)
            time.sleep(0.3)
    finally:
        server.stop()
    print("\n".join(log), file=sys.stderr)
    return {
        "description": "tour 1: hand-rolled Node net server, headless Chromium page",
        "connections": [{
            "server_port": port,
            "messages": [msg("client", "Hello")],
            "close": {"initiator": "client", "code": 1000, "reason": "bye", "echoed": False},
            "tcp_end": "fin",
        }],
        "expect_problems": ["close-not-echoed"],
    }


def tour_ws_echo(port, mode, tls=False):
    """System 5: the `ws` echo server behind an HTTP server (tour/ws_echo_server.js) with a
    headless Chromium page it serves: a push, two echoes, an idle while with TCP keepalives,
    then (mode "rst") the server hangs and is killed while a message sits unread in its
    socket, so its kernel answers with an RST, or (mode "close") the page closes normally.
    With tls, the same over https/wss with a self-signed certificate and a key log."""
    import tempfile

    out = os.path.join(TESTDATA, f"tour-ws-echo-{'wss' if tls else mode}")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        args = ["node", os.path.join(HERE, "tour", "ws_echo_server.js"), str(port)]
        extra = []
        if tls:
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                            "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                           check=True, capture_output=True)
            keylog = os.path.join(out, "keylog.txt")
            if os.path.exists(keylog):
                os.remove(keylog)
            args = ["node", f"--tls-keylog={keylog}", *args[1:], cert, key]
            extra = ["--ignore-certificate-errors"]
        server = Peer(args)
        scheme = "https" if tls else "http"
        try:
            # The page comes from the server itself, as in the tutorial.
            browser = subprocess.Popen(
                ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={d}/u", *extra,
                 f"{scheme}://127.0.0.1:{port}/?{mode}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                log = read_until(server, "echo hello 2")
                if mode == "rst":
                    # Idle: the keepalive probes. Then the server hangs (SIGSTOP) while the
                    # page sends once more, and is killed with that message unread.
                    time.sleep(3.6)
                    server.p.send_signal(signal.SIGSTOP)
                    time.sleep(2.0)
                    server.p.send_signal(signal.SIGKILL)
                    server.p.wait()
                    time.sleep(0.5)
                else:
                    log += read_until(server, "closed 1000", 15)
                    time.sleep(0.5)
            finally:
                stop_chromium(browser)
        finally:
            server.stop()
    print("\n".join(log), file=sys.stderr)
    sent = [msg("server", "get it"), msg("client", "hello 1"), msg("server", "hello 1"),
            msg("client", "hello 2"), msg("server", "hello 2")]
    conn = {"server_port": port, "tcp_end": "rst" if mode == "rst" else "fin"}
    truth = {"description": f"tour 5: Node ws echo server behind {scheme}, Chromium page, {mode}",
             "connections": [conn]}
    if mode == "rst":
        conn["messages"] = sent + [msg("client", "still there?")]
        truth["expect_problems"] = ["no-close-frame"]
        truth["expect_tcp"] = {"keepalive_min": 2, "rst_from": "server"}
    else:
        conn["messages"] = sent
        conn["close"] = {"initiator": "client", "code": 1000, "reason": "bye", "echoed": True}
        truth["expect_problems"] = []
        truth["expect_tcp"] = {"keepalive_min": 2}
    if tls:
        truth["keylog"] = "keylog.txt"
        truth["expect_tls"] = {"version": "TLS 1.3", "keys_found": True}
    return truth


def chromium_h2(port, proxied=False):
    """WebSockets over HTTP/2 (RFC 8441): headless Chromium loads a page from Hypercorn over
    https (h2) and opens two WebSockets on that same HTTP/2 connection, /chat (text, deflate)
    and /bin (binary), each an extended CONNECT on a stream of its own; both are closed by
    the page. Chromium writes the key log (SSLKEYLOGFILE). With `proxied`, Chromium goes
    through an HTTP proxy on `port` (CONNECT, then TLS and HTTP/2 inside the tunnel, as behind
    a corporate proxy) to Hypercorn on `port + 1`; the leg recorded is the proxy's."""
    import tempfile
    import threading

    case = "chromium-h2-websockets" + ("-proxy" if proxied else "")
    out = os.path.join(TESTDATA, case)
    os.makedirs(out, exist_ok=True)
    keylog = os.path.join(out, "keylog.txt")
    if os.path.exists(keylog):
        os.remove(keylog)
    server_port = port + 1 if proxied else port
    flags = ["--ignore-certificate-errors"]
    if proxied:
        async def proxy(reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            host, _, tport = head.split(b" ")[1].decode().rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host, int(tport))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        loop = asyncio.new_event_loop()
        loop.run_until_complete(asyncio.start_server(proxy, "127.0.0.1", port))
        threading.Thread(target=loop.run_forever, daemon=True).start()
        # Chromium sends loopback traffic past proxies unless told not to.
        flags += [f"--proxy-server=http://127.0.0.1:{port}", "--proxy-bypass-list=<-loopback>"]
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        server = Peer([sys.executable, os.path.join(HERE, "h2_server.py"), str(server_port),
                       cert, key])
        try:
            browser = subprocess.Popen(
                ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={d}/u", *flags,
                 f"https://127.0.0.1:{server_port}/"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "SSLKEYLOGFILE": keylog})
            try:
                log = read_until(server, '"path": "/chat", "text": "second"', 30)
                # The page closes both WebSockets 300 ms after the echo of "second".
                time.sleep(2.0)
            finally:
                stop_chromium(browser)
            time.sleep(0.3)
        finally:
            server.stop()
    print("\n".join(log), file=sys.stderr)
    events = [json.loads(line) for line in log if line.startswith("{")]
    if any(e.get("http_version") != "2" for e in events if e["event"] == "open"):
        raise SystemExit(f"a WebSocket did not go over HTTP/2: {events}")
    connections = []
    for path in ("/chat", "/bin"):
        messages = []
        for e in events:
            if e["path"] != path or e["event"] != "message":
                continue
            if "text" in e:
                messages += [msg("client", e["text"]), msg("server", "echo: " + e["text"])]
            else:
                data = bytes.fromhex(e["hex"])
                messages += [msg("client", data), msg("server", data[::-1])]
        code, reason = (1000, "done") if path == "/chat" else (4000, "bye")
        conn = {"server_port": port, "path": path, "messages": messages,
                "close": {"initiator": "client", "code": code, "reason": reason, "echoed": True}}
        if proxied:
            conn["note"] = f"through a proxy: HTTP CONNECT to 127.0.0.1:{server_port}"
        connections.append(conn)
    how = " through an HTTP CONNECT proxy" if proxied else ""
    return {
        "description": f"WebSockets over HTTP/2 (RFC 8441): headless Chromium and Hypercorn{how}, "
                       "two WebSockets on one TLS connection, key log from SSLKEYLOGFILE",
        "keylog": "keylog.txt",
        "connections": connections,
        "expect_websocket_connections": 2,
        "expect_problems": [],
        "tshark_differs": "tshark 4.0 decodes the HTTP/2 streams but not the WebSocket frames "
                          "inside them (RFC 8441)",
    }


RAW_SIO_PAGE = """<!doctype html><title>tour 2</title><script>
const ws = new WebSocket("ws://127.0.0.1:%d/socket.io/?EIO=4&transport=websocket");
ws.onopen = () => ws.send(JSON.stringify({name: "msg", data: [12, 5]}));
</script>"""


def tour_socketio_chat(port):
    """System 2: the Socket.IO chat server (tour/sio_chat_server.js) with three
    socket.io-client users (tour/sio_chat_clients.js) who chat once on WebSocket, and a
    page in headless Chromium that opens a raw WebSocket to the server and sends plain JSON,
    which is no Engine.IO packet."""
    import tempfile

    server = Peer(["node", os.path.join(HERE, "tour", "sio_chat_server.js"), str(port)])
    try:
        clients = Peer(["node", os.path.join(HERE, "tour", "sio_chat_clients.js"), str(port),
                        "4000"], ready_word="chatted")
        with tempfile.TemporaryDirectory() as d:
            browser = start_chromium(d, RAW_SIO_PAGE % port)
            try:
                log = read_until(server, "transport closed", 15)
                time.sleep(0.5)
            finally:
                stop_chromium(browser)
        out, _ = clients.p.communicate(timeout=20)
        users = json.loads(out.decode().strip().splitlines()[-1])
        time.sleep(0.3)
    finally:
        server.stop()
    print("\n".join(log), file=sys.stderr)
    return {
        "description": "tour 2: Socket.IO chat, three socket.io-client users, a raw Chromium "
                       "WebSocket sending plain JSON",
        "connections": [{"server_port": port, "client_port": u["client_port"], "user": u["name"],
                         "received": u["got"]} for u in users],
        # The raw page's plain JSON is no Engine.IO packet.
        "expect_problems": ["app-decode-error"],
    }


def tour_upgrade_event(port):
    """System 3: a server written on Node's `upgrade` event (tour/upgrade_server.js) and a
    Node `ws` client (tour/upgrade_client.js): 7-, 16- and 64-bit lengths, a ping answered
    with a ping, close 1009 for a message over the limit, close 1002 for opcode 3."""
    server = Peer(["node", os.path.join(HERE, "tour", "upgrade_server.js"), str(port)])
    try:
        conns = node_json("upgrade_client.js", port)
    finally:
        server.stop()
    return {
        "description": "tour 3: hand-written server on Node's upgrade event, Node ws client",
        "connections": conns,
        "expect_problems": ["ping-answered-with-ping", "reserved-opcode"],
        "gzip": True,
    }


def tour_python_raw(port):
    """System 4: a raw-socket Python server (tour/raw_server.py) that selects the subprotocol
    `chat` nobody offered, with a `websocket-client` client (which does not object)."""
    import websocket

    server = Peer([sys.executable, os.path.join(HERE, "tour", "raw_server.py"), str(port)])
    sent = []
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/chat", timeout=10)
        client_port = ws.sock.getsockname()[1]
        greeting = ws.recv()
        sent.append(msg("server", greeting))
        medium = "".join(f"{i:04d} " for i in range(300))
        big = bytes((i * 31) & 0xFF for i in range(100000))
        for m in ["hello", medium, big]:
            if isinstance(m, str):
                ws.send(m)
            else:
                ws.send_binary(m)
            sent.append(msg("client", m))
            echo = ws.recv()
            assert echo == m
            sent.append(msg("server", m))
        ws.close(websocket.STATUS_NORMAL, b"")
        time.sleep(0.3)
    finally:
        server.stop()
    return {
        "description": "tour 4: raw-socket Python server, websocket-client client",
        "connections": [{
            "server_port": port,
            "client_port": client_port,
            "messages": sent,
            "close": {"initiator": "client", "code": 1000, "echoed": True},
            "tcp_end": "fin",
        }],
        "expect_problems": ["protocol-not-offered"],
        "expect_handshake": {"protocol": "chat", "protocols_offered": []},
        "gzip": True,
    }


def py_socks(port, tls=False):
    """WebSocket through SOCKS proxies, as `ssh -D`, Tor or proxychains carry it: Python
    websockets (its SOCKS support comes from `python-socks`: pip install python-socks)
    connects through a small SOCKS server listening on `port` (the leg recorded) to an echo
    server on `port + 1` (not recorded). Plain: ws:// by SOCKS5 with a login and the host
    name resolved by the proxy, then by SOCKS4a. With `tls`: wss:// by SOCKS5 to an IPv4
    address, the client's SSLContext writing the key log."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    server_ctx, client_ctx = tls_contexts() if tls else (None, None)
    connections = []

    async def socks(reader, writer):
        version = (await reader.readexactly(1))[0]
        if version == 5:
            methods = await reader.readexactly((await reader.readexactly(1))[0])
            if 2 in methods:
                writer.write(b"\x05\x02")
                await reader.readexactly(1)
                user = await reader.readexactly((await reader.readexactly(1))[0])
                password = await reader.readexactly((await reader.readexactly(1))[0])
                writer.write(b"\x01\x00" if (user, password) == (b"alice", b"s3cret") else b"\x01\x01")
            else:
                writer.write(b"\x05\x00")
            _, _cmd, _, atyp = await reader.readexactly(4)
            if atyp == 1:
                host = socket.inet_ntoa(await reader.readexactly(4))
            elif atyp == 4:
                host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
            else:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            (tport,) = struct.unpack("!H", await reader.readexactly(2))
            up_reader, up_writer = await asyncio.open_connection(host, tport)
            bound_ip, bound_port = up_writer.get_extra_info("sockname")[:2]
            writer.write(b"\x05\x00\x00\x01" + socket.inet_aton(bound_ip) + struct.pack("!H", bound_port))
        else:
            _cmd, tport, ip = struct.unpack("!BH4s", await reader.readexactly(7))
            await reader.readuntil(b"\0")
            if ip[:3] == b"\0\0\0" and ip[3]:
                host = (await reader.readuntil(b"\0"))[:-1].decode()
            else:
                host = socket.inet_ntoa(ip)
            up_reader, up_writer = await asyncio.open_connection(host, tport)
            writer.write(b"\x00\x5a" + struct.pack("!H", tport) + ip)
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def talk(uri, proxy, note, texts, **kw):
        async with connect(uri, proxy=proxy, ping_interval=None, **kw) as ws:
            client_port = ws.local_address[1]
            sent = await echoed(ws, texts)
            await ws.close(1000, "socks bye")
        connections.append({
            "server_port": port,
            "client_port": client_port,
            "note": note,
            "messages": sent,
            "close": {"initiator": "client", "code": 1000, "reason": "socks bye", "echoed": True},
        })

    async def main():
        proxy_server = await asyncio.start_server(socks, "127.0.0.1", port)
        async with proxy_server, serve(echo, "127.0.0.1", port + 1, ssl=server_ctx,
                                       ping_interval=None):
            if tls:
                await talk(f"wss://127.0.0.1:{port + 1}/socks5-tls",
                           f"socks5://127.0.0.1:{port}",
                           f"through a proxy: SOCKS5 to 127.0.0.1:{port + 1}",
                           ["wss through SOCKS5", "ünïcödé ✓ encrypted"], ssl=client_ctx,
                           server_hostname="wsdissect.test")
                return
            await talk(f"ws://localhost:{port + 1}/socks5-login",
                       f"socks5h://alice:s3cret@127.0.0.1:{port}",
                       f"through a proxy: SOCKS5 to localhost:{port + 1}",
                       ["hello through SOCKS5", "ünïcödé ✓ by name"])
            await talk(f"ws://localhost:{port + 1}/socks4a",
                       f"socks4a://127.0.0.1:{port}",
                       f"through a proxy: SOCKS4a to localhost:{port + 1}",
                       ["hello through SOCKS4a"])

    asyncio.run(main())
    if tls:
        return proxied_truth("Python websockets 17 over TLS 1.3 through a SOCKS5 server", connections)
    return proxied_truth("Python websockets 17 through a SOCKS server: SOCKS5 with a login and the name resolved by the proxy, then SOCKS4a", connections, tls=False)


def proxied_truth(description, connections, tls=True):
    """The truth of a recording through a proxy: TLS ones name the client's key log."""
    if tls:
        return {
            "description": description + ", key log from SSLContext.keylog_filename",
            "keylog": "keylog.txt",
            "connections": connections,
            "expect_tls": {"version": "TLS 1.3", "sni": "wsdissect.test"},
            "expect_problems": [],
        }
    return {
        "description": description,
        "connections": connections,
        "expect_websocket_connections": len(connections),
        "expect_problems": [],
    }


def py_haproxy(port, tls=False):
    """A WebSocket server behind HAProxy 2.6 (Debian's `haproxy`) in TCP mode, which puts a
    PROXY protocol header in front of each connection: the leg recorded is HAProxy's to the
    backend on `port`, a small relay that reads the header off and forwards to Python
    websockets on `port + 1`. Plain: one connection through `send-proxy` (version 1), one
    through `send-proxy-v2`. With `tls`: wss:// passed through HAProxy with `send-proxy-v2`
    (the PROXY header, then the ClientHello), the client's SSLContext writing the key log.
    HAProxy listens on `port + 10` and `port + 11`."""
    import tempfile
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    server_ctx, client_ctx = tls_contexts() if tls else (None, None)
    connections = []
    # HAProxy's ports on the recorded leg, in the order of the connections.
    backend_ports = []

    async def relay(reader, writer):
        backend_ports.append(writer.get_extra_info("peername")[1])
        start = await reader.readexactly(6)
        if start == b"PROXY ":
            await reader.readuntil(b"\r\n")
        else:
            rest = await reader.readexactly(10)
            (length,) = struct.unpack("!H", rest[-2:])
            await reader.readexactly(length)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port + 1)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def talk(uri, version, texts, **kw):
        async with connect(uri, ping_interval=None, **kw) as ws:
            client_port = ws.local_address[1]
            sent = await echoed(ws, texts)
            await ws.close(1000, "lb bye")
        front = int(uri.split(":")[2].split("/")[0])
        connections.append({
            "server_port": port,
            "client_port": backend_ports[len(connections)],
            "note": f"through a proxy: PROXY protocol v{version} from 127.0.0.1:{client_port} to 127.0.0.1:{front}",
            "messages": sent,
            "close": {"initiator": "client", "code": 1000, "reason": "lb bye", "echoed": True},
        })

    cfg = tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False)
    cfg.write(f"""defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend v1
    bind 127.0.0.1:{port + 10}
    default_backend v1
backend v1
    server relay 127.0.0.1:{port} send-proxy
frontend v2
    bind 127.0.0.1:{port + 11}
    default_backend v2
backend v2
    server relay 127.0.0.1:{port} send-proxy-v2
""")
    cfg.close()
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", cfg.name], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(1.0)

    async def main():
        relay_server = await asyncio.start_server(relay, "127.0.0.1", port)
        async with relay_server, serve(echo, "127.0.0.1", port + 1, ssl=server_ctx,
                                       ping_interval=None):
            if tls:
                await talk(f"wss://127.0.0.1:{port + 11}/behind-haproxy-tls", 2,
                           ["wss behind a load balancer", "ünïcödé ✓ v2"], ssl=client_ctx,
                           server_hostname="wsdissect.test")
                return
            await talk(f"ws://127.0.0.1:{port + 10}/behind-haproxy-v1", 1,
                       ["hello behind HAProxy", "PROXY protocol v1"])
            await talk(f"ws://127.0.0.1:{port + 11}/behind-haproxy-v2", 2,
                       ["hello again", "PROXY protocol v2"])

    try:
        asyncio.run(main())
    finally:
        haproxy.terminate()
        haproxy.wait()
        os.remove(cfg.name)
    if tls:
        return proxied_truth("Python websockets 17 over TLS 1.3 behind HAProxy 2.6 with send-proxy-v2 (PROXY protocol header, then the ClientHello)", connections)
    return proxied_truth("Python websockets 17 behind HAProxy 2.6: PROXY protocol version 1 (send-proxy) and version 2 (send-proxy-v2) headers before the upgrade", connections, tls=False)


# What each node_wss.js mode negotiates (Node 18+ with OpenSSL 3).
NODE_WSS_SUITES = {
    "tls13": {"version": "TLS 1.3", "cipher_suite": "TLS_AES_256_GCM_SHA384"},
    "tls13-aes128": {"version": "TLS 1.3", "cipher_suite": "TLS_AES_128_GCM_SHA256"},
    "tls13-chacha": {"version": "TLS 1.3", "cipher_suite": "TLS_CHACHA20_POLY1305_SHA256"},
    "tls12-aes128gcm": {"version": "TLS 1.2",
                        "cipher_suite": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
    "tls12-aes256gcm": {"version": "TLS 1.2",
                        "cipher_suite": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
    "tls12-chacha": {"version": "TLS 1.2",
                     "cipher_suite": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
    "tls12-cbc": {"version": "TLS 1.2",
                  "cipher_suite": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"},
    "tls12-cbc-mte": {"version": "TLS 1.2",
                      "cipher_suite": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
}

# The case being recorded (scenarios that write files next to the capture need it).
CURRENT_CASE = [""]

SCENARIOS = {
    "py-websockets-basic": (8765, py_basic),
    "py-websockets-keepalive-rst": (8767, py_keepalive_rst),
    "py-websockets-rejected": (8768, py_rejected),
    # wss:// through an HTTP CONNECT proxy on 8790 (the server on 8791 is not recorded).
    "py-websockets-tls-proxy": (8790, py_wss_proxy),
    # SOCKS5 and SOCKS4a on 8792, SOCKS5 then TLS on 8794 (the echo servers on the next
    # ports are not recorded).
    "py-websockets-socks": (8792, py_socks),
    "py-websockets-tls-socks": (8794, lambda port: py_socks(port, tls=True)),
    # Behind HAProxy (PROXY protocol): the backend legs on 8796 and 8798 are recorded.
    "haproxy-proxy-protocol": (8796, py_haproxy),
    "haproxy-proxy-protocol-tls": (8798, lambda port: py_haproxy(port, tls=True)),
    "node-ws-deflate": (8766, node_ws),
    "chromium-websockets": (8771, chromium),
    # WebSockets over HTTP/2 (needs hypercorn from pip).
    "chromium-h2-websockets": (8808, chromium_h2),
    # The same through an HTTP CONNECT proxy on 8809 (Hypercorn on 8810 is not recorded).
    "chromium-h2-websockets-proxy": (8809, lambda port: chromium_h2(port, proxied=True)),
    "node-ws-plain": (8770, lambda port: node_ws(port, "plain")),
    # The basic scenario recorded a second time on another port (new client port, new masks,
    # new handshake key): `diff --normalize` must call the two recordings equal.
    "py-websockets-basic-rerun": (8772, py_basic),
    "node-socketio": (8773, node_sio),
    # The Socket.IO scenario recorded a second time: the server draws new session ids, which
    # `diff --normalize` must number instead of comparing.
    "node-socketio-rerun": (8781, node_sio),
    # Socket.IO 2: Engine.IO protocol 3 (length-prefixed polling payloads, binary packets
    # with a type byte) and Socket.IO protocol 4.
    "node-socketio-v2": (8777, lambda port: node_sio(port, "v2")),
    "node-socketio-wsonly": (8778, node_sio_ws),
    "node-mqtt": (8774, node_app("node_mqtt.js", "MQTT 3.1.1 and 5 clients (mqtt.js) through a WebSocket relay to Mosquitto")),
    "node-stomp": (8775, node_app("node_stomp.js", "STOMP 1.2 over WebSocket: @stomp/stompjs against a small ws broker")),
    # stompjs's splitLargeFrames: a 3000-byte SEND in 1 KiB WebSocket messages.
    "node-stomp-split": (8779, node_app("node_stomp.js", "STOMP 1.2 over WebSocket with stompjs splitting a large SEND frame over 1 KiB messages", ["split"])),
    "node-graphql": (8776, node_app("node_graphql.js", "graphql-ws client and server (graphql-transport-ws)")),
    "node-jsonrpc": (8803, node_app("node_jsonrpc.js", "JSON-RPC 2.0 over WebSocket: rpc-websockets 9 client and server (calls, an error, notifications, an event subscription)")),
    "node-signalr": (8804, node_app("node_signalr.js", "ASP.NET Core SignalR JSON hub protocol: the @microsoft/signalr 8 client against a small hub on ws (handshake, invocations, completions with a result and an error, pings, close)")),
    "node-phoenix": (8805, node_app("node_phoenix.js", "Phoenix Channels: the phoenix 1.7 JavaScript client (serializer 2.0.0) against a small channel server on ws (join, push and reply, broadcast, heartbeat, leave)")),
    "node-actioncable": (8806, node_app("node_actioncable.js", "Rails Action Cable: the @rails/actioncable 8 client (actioncable-v1-json) against a small cable server on ws (welcome, subscribe, perform, broadcast, pings, unsubscribe)")),
    "node-pusher": (8807, node_app("node_pusher.js", "The Pusher Channels protocol: the pusher-js 8 client against a small Pusher server on ws (connection_established, subscribe, a channel event, ping/pong, unsubscribe)")),
    # Spring's shape: STOMP over SockJS (sockjs-client's websocket transport, sockjs server).
    "node-sockjs-stomp": (8802, node_app("node_sockjs.js", "STOMP 1.2 over SockJS: @stomp/stompjs over sockjs-client 1.6 against a sockjs 0.3 server with a small broker")),
    "tour-upgrade-event": (8090, tour_upgrade_event),
    "tour-python-raw": (8001, tour_python_raw),
    "tour-net-browser": (8888, tour_net_browser),
    "tour-socketio-chat": (8080, tour_socketio_chat),
    "tour-ws-echo-rst": (11111, lambda port: tour_ws_echo(port, "rst")),
    "tour-ws-echo-close": (11111, lambda port: tour_ws_echo(port, "close")),
    "tour-ws-echo-wss": (11111, lambda port: tour_ws_echo(port, "close", tls=True)),
    # wss:// (TLS), decrypted with the key logs the peers wrote.
    "py-websockets-tls": (8449, py_wss),
    "node-wss-tls13": (8443, lambda port: node_wss(port, "tls13")),
    "node-wss-tls13-aes128": (8447, lambda port: node_wss(port, "tls13-aes128")),
    "node-wss-tls13-chacha": (8444, lambda port: node_wss(port, "tls13-chacha")),
    "node-wss-tls12-aes128gcm": (8445, lambda port: node_wss(port, "tls12-aes128gcm")),
    "node-wss-tls12-aes256gcm": (8448, lambda port: node_wss(port, "tls12-aes256gcm")),
    "node-wss-tls12-chacha": (8446, lambda port: node_wss(port, "tls12-chacha")),
    "node-wss-tls12-cbc": (8450, lambda port: node_wss(port, "tls12-cbc")),
    # Client port 8100, below the server's: the source of node-wss-tls13-no-syn.
    "node-wss-tls13-lowport": (8452, lambda port: node_wss(port, "tls13-aes128", ["lowport"])),
    "node-wss-tls12-cbc-mte": (8451, lambda port: node_wss(port, "tls12-cbc-mte")),
}

def inject_secrets(src, dst):
    """A pcapng of another case's capture with its key log embedded as a Decryption Secrets
    Block (`editcap --inject-secrets`, from the tshark/wireshark packages); the truth is the
    same but names no key log file, so the secrets inside the capture must be used."""
    src_dir = os.path.join(TESTDATA, src)
    out = os.path.join(TESTDATA, dst)
    os.makedirs(out, exist_ok=True)
    pcapng = os.path.join(out, "capture.pcapng")
    subprocess.run(
        ["editcap", "--inject-secrets", "tls," + os.path.join(src_dir, "keylog.txt"),
         os.path.join(src_dir, "capture.pcap"), pcapng],
        check=True,
    )
    with open(os.path.join(src_dir, "truth.json")) as f:
        truth = json.load(f)
    del truth["keylog"]
    truth["description"] = f"{src} with its key log inside the pcapng (Decryption Secrets Block)"
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(f"{dst}: {os.path.getsize(pcapng)} bytes")


def drop_tcp_handshake(src, dst):
    """Another case's capture without its first three packets (SYN, SYN-ACK, ACK), as if
    the capture had started just after the TCP handshake (`editcap … 1-3`): the TCP stage
    must guess the roles, and the ClientHello corrects the guess."""
    src_dir = os.path.join(TESTDATA, src)
    out = os.path.join(TESTDATA, dst)
    os.makedirs(out, exist_ok=True)
    pcap = os.path.join(out, "capture.pcap")
    subprocess.run(["editcap", os.path.join(src_dir, "capture.pcap"), pcap, "1-3"],
                   check=True)
    with open(os.path.join(src_dir, "keylog.txt")) as f, \
            open(os.path.join(out, "keylog.txt"), "w") as g:
        g.write(f.read())
    with open(os.path.join(src_dir, "truth.json")) as f:
        truth = json.load(f)
    truth["description"] = f"{src} without the TCP handshake packets"
    truth["connections"][0]["client_port"] = 8100
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(f"{dst}: {os.path.getsize(pcap)} bytes")


def pipeline_client_hello(src, dst):
    """Another case's capture (a TLS client through a proxy) with the client's ClientHello
    moved in front of the proxy's answer, as a client that does not wait for the tunnel to
    open sends it: the packet goes just before the proxy's last answer, with the ACK the
    client had sent by then. TCP checksums are left as they were (nothing checks them)."""
    src_dir = os.path.join(TESTDATA, src)
    out = os.path.join(TESTDATA, dst)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(src_dir, "capture.pcap"), "rb") as f:
        raw = f.read()
    head, at, packets = raw[:24], 24, []
    while at + 16 <= len(raw):
        ts, us, incl, orig = struct.unpack("<IIII", raw[at:at + 16])
        packets.append([ts, us, bytearray(raw[at + 16:at + 16 + incl]), orig])
        at += 16 + incl

    def tcp(p):  # Ethernet, IPv4: (sport, dport, payload, offset of the ACK field)
        ip = 14
        t = ip + (p[ip] & 0x0F) * 4
        total = struct.unpack("!H", p[ip + 2:ip + 4])[0]
        sport, dport = struct.unpack("!HH", p[t:t + 4])
        return sport, dport, p[t + (p[t + 12] >> 4) * 4:ip + total], t + 8

    hello = next(i for i, p in enumerate(packets) if tcp(p[2])[2][:1] == b"\x16")
    client = tcp(packets[hello][2])[0]
    answers = [i for i in range(hello) if tcp(packets[i][2])[1] == client and tcp(packets[i][2])[2]]
    before = answers[-1]
    last_client = [i for i in range(before) if tcp(packets[i][2])[0] == client][-1]
    ack_at = tcp(packets[hello][2])[3]
    packets[hello][2][ack_at:ack_at + 4] = packets[last_client][2][ack_at:ack_at + 4]
    moved = packets.pop(hello)
    moved[0], moved[1] = packets[before][0], packets[before][1]
    packets.insert(before, moved)
    with open(os.path.join(out, "capture.pcap"), "wb") as f:
        f.write(head)
        for ts, us, data, orig in packets:
            f.write(struct.pack("<IIII", ts, us, len(data), orig) + bytes(data))
    with open(os.path.join(src_dir, "keylog.txt")) as f, \
            open(os.path.join(out, "keylog.txt"), "w") as g:
        g.write(f.read())
    with open(os.path.join(src_dir, "truth.json")) as f:
        truth = json.load(f)
    truth["description"] = f"{src} with the ClientHello sent before the proxy answered"
    if b"CONNECT " in raw:
        truth["tshark_differs"] = ("tshark 4.0 takes the ClientHello for the CONNECT's "
                                   "continuation and decodes nothing (docs/tshark-differences.md)")
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(f"{dst}: ClientHello moved from packet {hello + 1} to {before + 1}")


def socketio_midstream():
    """`node-socketio` joined mid-stream: its capture from the packet after the WebSocket's
    Engine.IO upgrade packet on (editcap, from the tshark suite), so the WebSocket has no
    handshake and Socket.IO must be recognised by content. The truth keeps the WebSocket's
    packets of the original truth (the polling-only session's are cut off)."""
    src = os.path.join(TESTDATA, "node-socketio")
    out = os.path.join(TESTDATA, "node-socketio-midstream")
    os.makedirs(out, exist_ok=True)
    # The packet after the WebSocket's `5` (upgrade) message.
    lines = subprocess.run(
        ["cargo", "run", "-q", "--", "--json", os.path.join(src, "capture.pcap")],
        check=True, capture_output=True, text=True).stdout.splitlines()
    upgrade = next(json.loads(l)["packet"] for l in lines
                   if '"engine_io":"upgrade"' in l and '"type":"message"' in l)
    subprocess.run(["editcap", "-r", os.path.join(src, "capture.pcap"),
                    os.path.join(out, "capture.pcap"), f"{upgrade + 1}-1000000"], check=True)
    truth = json.load(open(os.path.join(src, "truth.json")))
    ws = [p for p in truth["socket_io"] if p["event"] not in ("early", "early-reply")
          and not (p["event"] is None and p["args"] == [3])]
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump({
            "description": "node-socketio from after the transport upgrade: no handshake",
            "connections": [{"server_port": 8773, "messages": None}],
            "socket_io": ws,
            "expect_problems": ["handshake-not-seen"],
        }, f, indent=1)
        f.write("\n")
    print(f"node-socketio-midstream: cut at packet {upgrade + 1}")


# Cases made from other cases' recordings: name -> (function, source case).
DERIVED = {
    "py-websockets-tls-dsb": (inject_secrets, "py-websockets-tls"),
    "node-wss-tls13-no-syn": (drop_tcp_handshake, "node-wss-tls13-lowport"),
    "py-websockets-tls-proxy-pipelined": (pipeline_client_hello, "py-websockets-tls-proxy"),
    "py-websockets-tls-socks-pipelined": (pipeline_client_hello, "py-websockets-tls-socks"),
}

if __name__ == "__main__":
    names = sys.argv[1:] or list(SCENARIOS) + list(DERIVED) + ["node-socketio-midstream"]
    for name in names:
        if name == "node-socketio-midstream":
            socketio_midstream()
            continue
        if name in DERIVED:
            fn, src = DERIVED[name]
            fn(src, name)
            continue
        port, fn = SCENARIOS[name]
        CURRENT_CASE[0] = name
        os.makedirs(os.path.join(TESTDATA, name), exist_ok=True)
        record(name, port, fn)
