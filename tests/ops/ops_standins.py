"""Scripted stand-ins, in threads of the test process, for what these tests
need from the outside world. They are stand-ins, not the real servers: the
real Patroni, PgBouncer and PostgreSQL are exercised by tests/integration and
tests/cluster. Here only happac's own interfaces (notify, `happac check`,
/health for Consul) are under test, and they need a node that is "up" or
"down" on demand.

- PatroniStandin: tests/lib/standin.py (Patroni's 200/503 rule per role;
  role "hang" reads the request and never answers).
- PgBouncerStandin: answers a startup packet with AuthenticationOk
  ('R', int32 8, int32 0) and ReadyForQuery ('Z', int32 5, 'I'); refuses
  SSL/GSS encryption requests with 'N' first.
- SilentServer: accepts connections (the kernel completes the handshake) and
  never sends a byte.
- ScriptedAgent: answers every connection with fixed bytes, then closes.
"""

import socket
import struct

from standin import Listener, PatroniStandin  # noqa: F401 - the suite's Patroni


class PgBouncerStandin(Listener):
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

    def respond(self, sock):
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


class ScriptedAgent(Listener):
    """A scripted stand-in agent: sends self.reply, then closes."""

    def __init__(self, addr, reply=b"up\n"):
        self.reply = reply
        super().__init__(addr)
        self.start()

    def respond(self, sock):
        sock.sendall(self.reply)
