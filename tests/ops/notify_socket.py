"""The receiving end of systemd's notify protocol, as the service manager
owns it: an AF_UNIX datagram socket with SO_PASSCRED, so that every message
comes with the sender's pid (what systemd checks for NotifyAccess=main)."""

import socket
import struct
import time


class NotifySocket:
    def __init__(self, path=None, abstract=None):
        """Bind at a file path, or at '@abstract' (abstract namespace)."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            self.sock.bind("\0" + abstract)
            self.env_value = "@" + abstract
        else:
            self.sock.bind(path)
            self.env_value = path
        self.messages = []  # (monotonic time, sender pid, {field: value}, raw text)
        self._consumed = set()  # ids of messages a wait_for() returned

    def close(self):
        self.sock.close()

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(
                4096, socket.CMSG_SPACE(struct.calcsize("iII")))
        except socket.timeout:
            return None
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:struct.calcsize("iII")])[0]
        text = data.decode("utf-8", "replace")
        fields = {}
        for line in text.split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        msg = (time.monotonic(), pid, fields, text)
        self.messages.append(msg)
        return msg

    def wait_for(self, pred, timeout, what="a notify message"):
        """Receive until pred(fields) is true; return (time, pid, fields, text).
        Earlier messages already received are searched first."""
        for m in self.messages:
            if pred(m[2]) and id(m) not in self._consumed:
                self._consumed.add(id(m))
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %.1fs; received: %r" % (
                    what, timeout, [m[3] for m in self.messages]))
            m = self._recv(left)
            if m and pred(m[2]):
                self._consumed.add(id(m))
                return m

    def drain(self, seconds):
        """Collect whatever arrives for a fixed time (only to prove absence)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._recv(deadline - time.monotonic())
        return self.messages
