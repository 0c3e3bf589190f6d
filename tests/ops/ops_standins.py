"""Scripted stand-ins, in threads of the test process, for what these tests
need from the outside world. They are stand-ins, not the real servers: the
real Patroni, PgBouncer and PostgreSQL are exercised by tests/integration and
tests/cluster. Here only happac's own interfaces (notify, `happac check`,
/health for Consul) are under test, and they need a node that is "up" or
"down" on demand.

- PatroniStandin: answers like Patroni's REST API for health checks: a bare
  status line (`HTTP/1.0 200 OK`) for OPTIONS/HEAD/GET, 200 when the path
  fits the current role, 503 otherwise (Patroni's rule, also for a typo).
  Role "hang" reads the request and never answers (a hung API).
- PgBouncerStandin: answers a startup packet with AuthenticationOk
  ('R', int32 8, int32 0) and ReadyForQuery ('Z', int32 5, 'I'); refuses
  SSL/GSS encryption requests with 'N' first.
- SilentServer: accepts connections (the kernel completes the handshake) and
  never sends a byte.
- ScriptedAgent: answers every connection with fixed bytes, then closes.
"""

import socket
import socketserver
import struct
import threading

# Paths that answer 200, per role (Patroni's health endpoints).
PATRONI_200 = {
    "primary": {"", "primary", "master", "leader", "read-write", "read-only", "health",
                "liveness", "readiness"},
    "replica": {"replica", "read-only", "async", "health", "liveness", "readiness"},
    "stopped": set(),
}


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False  # a hanging handler must not block stop()


class _Base:
    handler = None

    def __init__(self, addr, port=0):
        self.addr = addr
        self.requests = 0
        self._lock = threading.Lock()
        self._server = None
        self._thread = None
        self.port = port
        self.stopping = threading.Event()
        self.start()

    def start(self):
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with outer._lock:
                    outer.requests += 1
                self.request.settimeout(3.0)
                try:
                    outer.handle(self.request)
                except OSError:
                    pass

        self._server = _Server((self.addr, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self):
        self.stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def handle(self, sock):
        raise NotImplementedError


class PatroniStandin(_Base):
    """A scripted stand-in for Patroni's REST API (health endpoints only)."""

    def __init__(self, addr, role="primary"):
        self.role = role
        super().__init__(addr)

    def handle(self, sock):
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 16384:
            b = sock.recv(4096)
            if not b:
                return
            data += b
        if self.role == "hang":
            self.stopping.wait(30)
            return
        request_line = data.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        path = parts[1] if len(parts) >= 2 else "/"
        name = path.split("?", 1)[0].strip("/")
        code = 200 if name in PATRONI_200.get(self.role, set()) else 503
        reason = "OK" if code == 200 else "Service Unavailable"
        sock.sendall(("HTTP/1.0 %d %s\r\n\r\n" % (code, reason)).encode())


class PgBouncerStandin(_Base):
    """A scripted stand-in for PgBouncer: a login that succeeds at once."""

    SSL_REQUEST = 80877103
    GSS_REQUEST = 80877104
    CANCEL_REQUEST = 80877102

    def _read(self, sock, n):
        buf = b""
        while len(buf) < n:
            b = sock.recv(n - len(buf))
            if not b:
                raise OSError("peer closed")
            buf += b
        return buf

    def handle(self, sock):
        while True:
            length = struct.unpack("!i", self._read(sock, 4))[0]
            if length < 8 or length > 10000:
                return
            payload = self._read(sock, length - 4)
            code = struct.unpack("!i", payload[:4])[0]
            if code in (self.SSL_REQUEST, self.GSS_REQUEST):
                sock.sendall(b"N")
                continue
            if code == self.CANCEL_REQUEST:
                return
            break
        sock.sendall(b"R" + struct.pack("!ii", 8, 0) + b"Z" + struct.pack("!i", 5) + b"I")
        # Wait for Terminate ('X') or the close, as a server would.
        while sock.recv(4096):
            pass


class SilentServer:
    """Listens and never accepts: connects succeed, no byte ever comes."""

    def __init__(self, addr):
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def stop(self):
        self.sock.close()


class ScriptedAgent(_Base):
    """A scripted stand-in agent: sends self.reply, then closes."""

    def __init__(self, addr, reply=b"up\n"):
        self.reply = reply
        super().__init__(addr)

    def handle(self, sock):
        sock.sendall(self.reply)
