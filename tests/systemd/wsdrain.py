#!/usr/bin/python3
"""A WebSocket that must outlive a `systemctl restart` (tests/systemd/run).

wsdrain.py serve PORT
    echoes every message on 127.0.0.1:PORT (python3-websockets), forever.
wsdrain.py client PROXYPORT HOST MARK STOP
    opens ws://HOST/ws-drain through haloyd on 127.0.0.1:PROXYPORT, prints
    "open" once it is, then sends a message every 100 ms and checks its echo
    until the file STOP exists; echoes received after the file MARK appeared
    are counted apart. Prints one line at the end:
    "echoes N after_mark M errors E close CODE" and exits 0 when nothing
    failed. Every wait is bounded (10 s per echo, 10 s to open and close).
"""
import asyncio
import os
import socket
import sys

import websockets


async def echo(ws, path=None):
    async for msg in ws:
        await ws.send(msg)


async def serve(port):
    async with websockets.serve(echo, "127.0.0.1", port):
        await asyncio.Future()


async def client(port, host, mark, stop):
    echoes = after = errors = 0
    code = None
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(None)
    async with websockets.connect("ws://%s/ws-drain" % host, sock=s, open_timeout=10,
                                  close_timeout=10, ping_interval=None) as ws:
        print("open", flush=True)
        i = 0
        while not os.path.exists(stop):
            i += 1
            msg = "message %d" % i
            try:
                await ws.send(msg)
                back = await asyncio.wait_for(ws.recv(), 10)
            except Exception as e:
                print("error: %r" % e, flush=True)
                errors += 1
                break
            if back != msg:
                errors += 1
            else:
                echoes += 1
                if os.path.exists(mark):
                    after += 1
            await asyncio.sleep(0.1)
        await ws.close()
        code = ws.close_code
    print("echoes %d after_mark %d errors %d close %s" % (echoes, after, errors, code), flush=True)
    return 0 if errors == 0 and after > 0 else 1


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2])))
        return 0
    if len(sys.argv) == 6 and sys.argv[1] == "client":
        return asyncio.run(client(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
