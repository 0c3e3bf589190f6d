"""Counting stand-ins for happac's backends, for the probe amplification benchmark.

PatroniStandin answers the Patroni REST health endpoints like a primary's Patroni 4.x
does (OPTIONS/HEAD: a bare status line `HTTP/1.0 200 OK\\r\\n\\r\\n`; GET: JSON) and
counts requests. PgbouncerStandin answers the PostgreSQL startup packet with
AuthenticationOk + ReadyForQuery (declining SSL/GSS first, as a server without TLS
does), answers simple and extended queries with one row (`f` for a query that names
pg_is_in_recovery, `1` otherwise), and counts connections.

Both run a selectors loop on a daemon thread of the caller, so the benchmark driver
reads their counters directly. Loopback addresses only. Run this file alone to start
both and print their counters every second (for trying happac by hand).
"""

import selectors
import socket
import struct
import sys
import threading
import time

_MAX_BUF = 64 * 1024  # per connection; a probe is a few hundred bytes


def _loopback_only(addr):
    if not (addr.startswith("127.") or addr == "::1"):
        raise ValueError(f"stand-in address {addr!r} is not loopback; refusing")


class _Standin:
    """A small non-blocking TCP server on its own thread; subclasses speak a protocol."""

    name = "standin"

    def __init__(self, addr, port=0):
        _loopback_only(addr)
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((addr, port))
        self.lsock.listen(128)
        self.lsock.setblocking(False)
        self.addr = addr
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.counts = {"connections": 0}
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=2)
        for key in list(self.sel.get_map().values()):
            try:
                key.fileobj.close()
            except OSError:
                pass
        self.sel.close()

    def snapshot(self):
        with self.lock:
            return dict(self.counts)

    def _count(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def _loop(self):
        while not self.stopping:
            for key, _ in self.sel.select(timeout=0.1):
                if key.data is None:
                    self._accept()
                else:
                    self._readable(key.fileobj, key.data)

    def _accept(self):
        for _ in range(64):
            try:
                conn, _ = self.lsock.accept()
            except BlockingIOError:
                return
            except OSError:
                return
            conn.setblocking(False)
            self._count("connections")
            self.sel.register(conn, selectors.EVENT_READ, {"buf": b""})

    def _close(self, conn):
        try:
            self.sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _readable(self, conn, state):
        try:
            data = conn.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        state["buf"] += data
        if len(state["buf"]) > _MAX_BUF:
            self._close(conn)
            return
        try:
            keep_open = self._handle(conn, state)
        except OSError:
            keep_open = False
        if not keep_open:
            self._close(conn)

    def _send(self, conn, data):
        # Replies are tiny; a blocking send for them cannot stall the loop for long.
        conn.setblocking(True)
        conn.settimeout(1.0)
        try:
            conn.sendall(data)
        finally:
            conn.setblocking(False)

    def _handle(self, conn, state):
        raise NotImplementedError


class PatroniStandin(_Standin):
    """Patroni REST API of a running primary: counts requests by method and path."""

    name = "patroni-standin"
    OK_PATHS = ("/", "/primary", "/master", "/read-write", "/leader", "/health",
                "/liveness", "/readiness", "/read-only", "/patroni", "/cluster")

    def _handle(self, conn, state):
        head, sep, _ = state["buf"].partition(b"\r\n\r\n")
        if not sep:
            return True  # wait for the whole request head
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        method = parts[0] if parts else "?"
        path = parts[1].split("?", 1)[0] if len(parts) > 1 else "?"
        self._count("requests")
        self._count(f"{method} {path}")
        ok = path in self.OK_PATHS
        status = b"200 OK" if ok else b"503 Service Unavailable"
        if method in ("OPTIONS", "HEAD"):
            self._send(conn, b"HTTP/1.0 " + status + b"\r\n\r\n")
        else:
            body = (b'{"state": "running", "role": "primary", "timeline": 1, '
                    b'"patroni": {"version": "4.0.4", "scope": "bench"}}')
            self._send(conn, b"HTTP/1.0 " + status + b"\r\nContent-Type: application/json"
                       b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        return False  # HTTP/1.0: one request per connection, as Patroni does


def _pg_msg(kind, payload=b""):
    return kind + struct.pack("!i", len(payload) + 4) + payload


def _pg_row_reply(query):
    value = b"f" if b"recovery" in query.lower() else b"1"
    name = b"pg_is_in_recovery" if value == b"f" else b"?column?"
    type_oid = 16 if value == b"f" else 23
    rowdesc = _pg_msg(b"T", struct.pack("!h", 1) + name + b"\0" +
                      struct.pack("!ihihih", 0, 0, type_oid, 1 if type_oid == 16 else 4, -1, 0))
    datarow = _pg_msg(b"D", struct.pack("!hi", 1, len(value)) + value)
    return rowdesc, datarow + _pg_msg(b"C", b"SELECT 1\0")


class PgbouncerStandin(_Standin):
    """PgBouncer (or PostgreSQL) that lets everyone in: counts connections and queries."""

    name = "pgbouncer-standin"
    SSL_REQUEST = 80877103
    GSSENC_REQUEST = 80877104
    CANCEL_REQUEST = 80877102
    PROTO_V3 = 196608

    def _handle(self, conn, state):
        buf = state["buf"]
        for _ in range(64):  # messages per read, bounded
            if not state.get("started"):
                if len(buf) < 8:
                    break
                (length,) = struct.unpack("!i", buf[:4])
                if length < 8 or length > 10000:
                    return False
                if len(buf) < length:
                    break
                (code,) = struct.unpack("!i", buf[4:8])
                buf = buf[length:]
                if code in (self.SSL_REQUEST, self.GSSENC_REQUEST):
                    self._send(conn, b"N")
                    continue
                if code == self.CANCEL_REQUEST:
                    return False
                if code != self.PROTO_V3:
                    return False
                state["started"] = True
                self._count("startups")
                params = b"".join(_pg_msg(b"S", k + b"\0" + v + b"\0") for k, v in (
                    (b"server_version", b"16.4"), (b"client_encoding", b"UTF8"),
                    (b"server_encoding", b"UTF8"), (b"DateStyle", b"ISO, MDY"),
                    (b"integer_datetimes", b"on"), (b"standard_conforming_strings", b"on")))
                self._send(conn, _pg_msg(b"R", struct.pack("!i", 0)) + params +
                           _pg_msg(b"K", struct.pack("!ii", 4242, 4242)) + _pg_msg(b"Z", b"I"))
                continue
            if len(buf) < 5:
                break
            kind = buf[:1]
            (length,) = struct.unpack("!i", buf[1:5])
            if length < 4 or length > _MAX_BUF:
                return False
            if len(buf) < 1 + length:
                break
            body = buf[5:1 + length]
            buf = buf[1 + length:]
            out = self._message(kind, body, state)
            if out is None:
                return False
            if out:
                self._send(conn, out)
        state["buf"] = buf
        return True

    def _message(self, kind, body, state):
        """Returns the reply bytes, b"" for none, or None to close."""
        if kind == b"X":
            return None
        if kind == b"Q":
            self._count("queries")
            rowdesc, rows = _pg_row_reply(body)
            return rowdesc + rows + _pg_msg(b"Z", b"I")
        if kind == b"P":  # Parse: remember the query text for Describe/Execute
            self._count("queries")
            parts = body.split(b"\0")
            state["query"] = parts[1] if len(parts) > 1 else b""
            return _pg_msg(b"1")
        if kind == b"B":
            return _pg_msg(b"2")
        if kind == b"D":
            rowdesc, _ = _pg_row_reply(state.get("query", b""))
            if body[:1] == b"S":
                return _pg_msg(b"t", struct.pack("!h", 0)) + rowdesc
            return rowdesc
        if kind == b"E":
            _, rows = _pg_row_reply(state.get("query", b""))
            return rows
        if kind == b"S":
            return _pg_msg(b"Z", b"I")
        if kind == b"C":
            return _pg_msg(b"3")
        if kind == b"H":
            return b""
        # Anything else (COPY, function call): say so the way a server would.
        return _pg_msg(b"E", b"SERROR\0C0A000\0Mnot supported by the stand-in\0\0") + \
            _pg_msg(b"Z", b"I")


def main(argv):
    addr = argv[1] if len(argv) > 1 else "127.0.0.31"
    patroni = PatroniStandin(addr, int(argv[2]) if len(argv) > 2 else 0).start()
    pgb = PgbouncerStandin(addr, int(argv[3]) if len(argv) > 3 else 0).start()
    print(f"patroni stand-in {addr}:{patroni.port}  pgbouncer stand-in {addr}:{pgb.port}",
          flush=True)
    try:
        for _ in range(86400):
            time.sleep(1)
            print(f"patroni {patroni.snapshot()}  pgbouncer {pgb.snapshot()}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        patroni.stop()
        pgb.stop()


if __name__ == "__main__":
    main(sys.argv)
