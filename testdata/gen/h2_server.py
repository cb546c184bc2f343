"""An HTTP/2 server over TLS that takes WebSockets over HTTP/2 (RFC 8441): Hypercorn with an
ASGI app. Serves a page that opens two WebSockets, /chat (text, echoed with a prefix) and
/bin (binary, echoed reversed), and prints every message it gets and every close, one JSON
object per line, so the recipe's truth is what the peers really sent.

Usage: python3 h2_server.py PORT CERT KEY   (pip install hypercorn)
"""

import asyncio
import json
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config

PAGE = b"""<!doctype html><title>h2</title><script>
const chat = new WebSocket("wss://" + location.host + "/chat");
let bin = null;
chat.onopen = () => chat.send("hello over h2");
chat.onmessage = () => {
  if (bin) {
    setTimeout(() => { bin.close(4000, "bye"); chat.close(1000, "done"); }, 300);
    return;
  }
  bin = new WebSocket("wss://" + location.host + "/bin");
  bin.binaryType = "arraybuffer";
  bin.onopen = () => bin.send(new Uint8Array([1, 2, 3, 250]));
  bin.onmessage = () => chat.send("second");
};
</script>"""


def log(**fields):
    print(json.dumps(fields), flush=True)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            kind = m["type"].split(".")[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": PAGE})
        return
    path = scope["path"]
    await receive()
    await send({"type": "websocket.accept"})
    log(event="open", path=path, http_version=scope.get("http_version"))
    while True:
        m = await receive()
        if m["type"] != "websocket.receive":
            log(event="close", path=path, code=m.get("code"))
            return
        if m.get("text") is not None:
            log(event="message", path=path, text=m["text"])
            await send({"type": "websocket.send", "text": "echo: " + m["text"]})
        else:
            log(event="message", path=path, hex=m["bytes"].hex())
            await send({"type": "websocket.send", "bytes": m["bytes"][::-1]})


async def main(port, cert, key):
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = cert, key
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = None
    print("listening", flush=True)
    await serve(app, config)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
