#!/usr/bin/python3
"""Patroni REST API STAND-IN for happac's integration tests.

This is not Patroni. It exists only for behaviour that a real Patroni cannot be
made to show on demand: answering 200 or 503 at will, hanging (accept, read the
request, never reply), replying slowly, replying with garbage, or closing without
a reply. Everything else in the tests (PostgreSQL, PgBouncer) is the real server.

What it imitates from Patroni (see docs/PROTOCOLS.md section 2): health
endpoints answer only 200 or 503, an unknown path is 503, HEAD and OPTIONS get a
bare status line (`HTTP/1.0 200 OK\\r\\n\\r\\n`), GET gets a small JSON body.

Usage:
    patroni_standin.py --listen 127.0.0.21:8008 --control 127.0.0.21:8099 [--mode primary]

The control port speaks a tiny HTTP dialect (GET only):
    /set?mode=MODE   switch the mode now (applies to requests read from now on)
    /stats           JSON: mode, request counters, hung connections, ...
    /reset           zero the counters
Modes:
    primary        Patroni on a primary: /, /primary, /read-write, /master,
                   /leader, /health, /liveness, /readiness, /read-only -> 200,
                   every other path -> 503
    replica        Patroni on a replica: /replica, /read-only, /health,
                   /liveness, /readiness, /async -> 200, others -> 503
    isolated       Patroni on an old primary that lost the leader lock (cut off
                   from the DCS, or its loop stuck) while PostgreSQL still runs
                   read-write: every path -> 503, yet the JSON says
                   role master, state running (its role comes from
                   pg_is_in_recovery(), not from the lock)
    200 | 503 | status:NNN   that status for every path
    hang           read the request, never answer; keep the socket open until
                   the client closes it (the time it took is recorded)
    slow:MS        wait MS milliseconds, then answer as `primary`
    garbage        send bytes that are not HTTP, then close
    close          close at once without a reply
The process prints `ready` on stdout once both sockets listen.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import urllib.parse

# Patroni's rule (which path answers 200 for which role) is tests/lib/standin.py's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from standin import REASONS, patroni_status  # noqa: E402

MAX_HEAD = 16384


def parse_mode(text):
    """Return the mode string if valid, else raise ValueError."""
    if text in ("primary", "replica", "isolated", "hang", "garbage", "close"):
        return text
    if text in ("200", "503"):
        return "status:" + text
    if text.startswith("status:"):
        code = int(text.split(":", 1)[1])
        if not 100 <= code <= 599:
            raise ValueError(text)
        return text
    if text.startswith("slow:"):
        ms = int(text.split(":", 1)[1])
        if ms < 0:
            raise ValueError(text)
        return text
    raise ValueError(text)


class State:
    def __init__(self, mode):
        self.mode = mode
        self.reset()

    def reset(self):
        self.requests = 0
        self.by_method = {}
        self.by_path = {}
        self.last_request = None
        self.hung_open = 0          # hanging connections still open right now
        self.hung_total = 0         # requests that were left hanging
        self.hung_durations = []    # seconds from request to client close
        self.replies = {}           # status code -> count

    def stats(self):
        return {
            "mode": self.mode,
            "requests": self.requests,
            "by_method": self.by_method,
            "by_path": self.by_path,
            "last_request": self.last_request,
            "hung_open": self.hung_open,
            "hung_total": self.hung_total,
            "hung_durations": self.hung_durations[-200:],
            "replies": {str(k): v for k, v in self.replies.items()},
        }


def status_for(mode, path):
    if mode.startswith("status:"):
        return int(mode.split(":", 1)[1])
    if mode == "isolated":
        return 503
    return patroni_status("replica" if mode == "replica" else "primary", path)


def build_reply(method, code, path, mode="primary"):
    line = "HTTP/1.0 %d %s\r\n" % (code, REASONS.get(code, "Status"))
    if method in ("OPTIONS", "HEAD"):
        return (line + "\r\n").encode()
    # The node's status, as Patroni 3.x's get_postgresql_status shapes it:
    # the role follows the mode, whatever path was asked for.
    if mode == "replica":
        role = "replica"
    elif mode in ("primary", "isolated") or mode.startswith("slow:"):
        role = "master"
    else:
        role = "master" if code == 200 else "replica"
    doc = {"state": "running", "role": role, "timeline": 1, "path": path,
           "patroni": {"version": "3.0.2", "scope": "standin"}}
    if role == "replica":
        doc["xlog"] = {"received_location": 1, "replayed_location": 1, "paused": False}
    body = json.dumps(doc).encode()
    head = line + "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head.encode() + body


async def read_head(reader):
    """Read one HTTP request head; return (method, path) or None on EOF/garbage."""
    try:
        data = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    first = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = first.split()
    if len(parts) < 2:
        return None
    return parts[0], parts[1]


async def close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def head_or_close(reader, writer):
    """The request's (method, target); None (the connection closed) on EOF."""
    head = await read_head(reader)
    if head is None:
        await close(writer)
    return head


async def serve_probe(state, reader, writer):
    head = await head_or_close(reader, writer)
    if head is None:
        return
    method, target = head
    path = urllib.parse.urlsplit(target).path or "/"
    mode = state.mode
    state.requests += 1
    state.by_method[method] = state.by_method.get(method, 0) + 1
    state.by_path[path] = state.by_path.get(path, 0) + 1
    state.last_request = "%s %s" % (method, target)
    try:
        if mode == "hang":
            state.hung_total += 1
            state.hung_open += 1
            t0 = time.monotonic()
            try:
                # Never answer: wait until the client gives up and closes.
                while await reader.read(4096):
                    pass
            except (ConnectionError, OSError):
                pass
            finally:
                state.hung_open -= 1
                state.hung_durations.append(round(time.monotonic() - t0, 4))
            return
        if mode == "close":
            return
        if mode == "garbage":
            writer.write(b"\x00\xffTHIS IS NOT HTTP\x01\x02\r\n\r\n")
            await writer.drain()
            return
        if mode.startswith("slow:"):
            await asyncio.sleep(int(mode.split(":", 1)[1]) / 1000.0)
            code = status_for("primary", path)
        else:
            code = status_for(mode, path)
        state.replies[code] = state.replies.get(code, 0) + 1
        writer.write(build_reply(method, code, path, mode))
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        await close(writer)


async def serve_control(state, reader, writer):
    head = await head_or_close(reader, writer)
    if head is None:
        return
    _method, target = head
    url = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(url.query)
    code, payload = 200, None
    if url.path == "/set":
        try:
            state.mode = parse_mode(query["mode"][0])
            payload = state.stats()
        except (KeyError, ValueError) as exc:
            code, payload = 400, {"error": "bad mode: %s" % exc}
    elif url.path == "/stats":
        payload = state.stats()
    elif url.path == "/reset":
        state.reset()
        payload = state.stats()
    else:
        code, payload = 404, {"error": "unknown control path"}
    body = json.dumps(payload).encode()
    writer.write(("HTTP/1.0 %d %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %d\r\n\r\n" % (code, REASONS.get(code, "Status"), len(body))).encode()
                 + body)
    try:
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    await close(writer)


def split_addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True, help="HOST:PORT of the fake REST API")
    ap.add_argument("--control", required=True, help="HOST:PORT of the control port")
    ap.add_argument("--mode", default="primary", type=parse_mode)
    args = ap.parse_args()
    state = State(args.mode)
    host, port = split_addr(args.listen)
    chost, cport = split_addr(args.control)
    probe = await asyncio.start_server(lambda r, w: serve_probe(state, r, w),
                                       host, port, limit=MAX_HEAD, backlog=256,
                                       reuse_address=True)
    control = await asyncio.start_server(lambda r, w: serve_control(state, r, w),
                                         chost, cport, limit=MAX_HEAD,
                                         reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    probe.close()
    control.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
