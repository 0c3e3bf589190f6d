#!/usr/bin/python3
"""Backend stand-ins for happac's stress tests, in one asyncio process.

PatroniStandin: a tiny HTTP server. In mode `ok` it answers OPTIONS (what
happac sends with one profile) with `HTTP/1.0 200 OK\\r\\n\\r\\n`, as Patroni
does, and GET (with several profiles) with 200 and a primary's status JSON;
the other modes misbehave on purpose:

  ok         200, bare status line (GET: + JSON, role master)
  503        503, bare status line (GET: + JSON, role replica)
  garbage    binary junk instead of HTTP, then close
  bigbody    200 + a 100 MB body streamed without Content-Length
  bigbody_cl 200 + Content-Length: 104857600 and the body streamed
  drip       the 200 status line, one byte per second
  redirect   302 with a Location header
  hang       read the request, never answer

PgBouncerStandin: a TCP server speaking just enough of the PostgreSQL
protocol. In mode `ok` it reads the startup packet and answers
AuthenticationOk ('R', int32 8, int32 0) then ReadyForQuery ('Z', int32 5,
'I'); mode `hang` accepts and never answers.

Control: one line per TCP connection on the control port:
  patroni MODE | pg MODE   -> "ok"
  stats                    -> JSON: per server, accept times (monotonic
                              clock, comparable with the test's) and modes
  reset                    -> forget the stats
The process prints "ready" on stdout once all three ports listen.

Usage: standins.py ADDR PATRONI_PORT PG_PORT CONTROL_PORT
"""

import asyncio
import json
import os
import struct
import sys
import time

PATRONI_MODES = ("ok", "503", "garbage", "bigbody", "bigbody_cl", "drip",
                 "redirect", "hang")
PG_MODES = ("ok", "hang")
BIG = 100 * 1024 * 1024
CHUNK = 64 * 1024
# Keep only the most recent accepts: a soak makes many.
MAX_EVENTS = 20000


class State:
    def __init__(self):
        self.mode = {"patroni": "ok", "pg": "ok"}
        self.events = {"patroni": [], "pg": []}  # (monotonic, mode)
        self.sent = {"patroni": 0}  # body bytes written in bigbody modes

    def record(self, server):
        ev = self.events[server]
        ev.append((time.monotonic(), self.mode[server]))
        if len(ev) > MAX_EVENTS:
            del ev[: len(ev) - MAX_EVENTS]


ST = State()


async def read_request(reader):
    """Read an HTTP request head (bounded); b'' if the peer went away."""
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            asyncio.TimeoutError, ConnectionError):
        return b""


async def patroni(reader, writer):
    ST.record("patroni")
    mode = ST.mode["patroni"]
    try:
        head = await read_request(reader)
        if not head:
            return
        is_get = head.startswith(b"GET ")
        if mode in ("ok", "503"):
            status = b"200 OK" if mode == "ok" else b"503 Service Unavailable"
            if is_get:
                body = json.dumps({"state": "running", "role": "master" if mode == "ok"
                                   else "replica", "timeline": 1,
                                   "xlog": {"location": 1}}).encode()
                writer.write(b"HTTP/1.0 " + status + b"\r\nContent-Type: application/json"
                             b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            else:
                writer.write(b"HTTP/1.0 " + status + b"\r\n\r\n")
        elif mode == "garbage":
            writer.write(b"\x00\xff\xfeGARBAGE \x01\x02 not http at all\r\n\r\n"
                         + os.urandom(512))
        elif mode == "redirect":
            writer.write(b"HTTP/1.0 302 Found\r\nLocation: http://127.0.0.1:1/primary\r\n"
                         b"Content-Length: 0\r\n\r\n")
        elif mode in ("bigbody", "bigbody_cl"):
            head = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
            if mode == "bigbody_cl":
                head += b"Content-Length: %d\r\n" % BIG
            writer.write(head + b"\r\n")
            chunk = b"x" * CHUNK
            for _ in range(BIG // CHUNK):
                writer.write(chunk)
                await writer.drain()
                ST.sent["patroni"] += CHUNK
        elif mode == "drip":
            for b in b"HTTP/1.0 200 OK\r\n\r\n":
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(1)
        elif mode == "hang":
            await reader.read()  # until the prober gives up and closes
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def pgbouncer(reader, writer):
    ST.record("pg")
    mode = ST.mode["pg"]
    try:
        if mode == "hang":
            await reader.read()
            return
        head = await asyncio.wait_for(reader.readexactly(4), 10)
        (length,) = struct.unpack("!I", head)
        if not 8 <= length <= 10000:
            return
        await asyncio.wait_for(reader.readexactly(length - 4), 10)
        # AuthenticationOk, then ReadyForQuery (idle)
        writer.write(b"R" + struct.pack("!II", 8, 0) + b"Z" + struct.pack("!I", 5) + b"I")
        await writer.drain()
        await asyncio.wait_for(reader.read(), 10)  # Terminate ('X') and EOF
    except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        pass
    finally:
        writer.close()


async def control(reader, writer):
    try:
        line = (await asyncio.wait_for(reader.readline(), 5)).decode().split()
        if len(line) == 2 and line[0] == "patroni" and line[1] in PATRONI_MODES:
            ST.mode["patroni"] = line[1]
            out = "ok"
        elif len(line) == 2 and line[0] == "pg" and line[1] in PG_MODES:
            ST.mode["pg"] = line[1]
            out = "ok"
        elif line == ["stats"]:
            out = json.dumps({"events": ST.events, "mode": ST.mode, "sent": ST.sent})
        elif line == ["reset"]:
            ST.events = {"patroni": [], "pg": []}
            ST.sent = {"patroni": 0}
            out = "ok"
        else:
            out = "error: unknown command %r" % (line,)
        writer.write(out.encode() + b"\n")
        await writer.drain()
    finally:
        writer.close()


async def main(addr, patroni_port, pg_port, control_port):
    servers = [
        await asyncio.start_server(patroni, addr, patroni_port, reuse_address=True),
        await asyncio.start_server(pgbouncer, addr, pg_port, reuse_address=True),
        await asyncio.start_server(control, addr, control_port, reuse_address=True),
    ]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
    except KeyboardInterrupt:
        pass
