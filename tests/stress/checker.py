#!/usr/bin/python3
"""A well-behaved agent checker, run as its own process so that the hostile
load the test generates (and the test's GIL) does not distort its timing.

Does COUNT checks, one every INTERVAL_MS, each like HAProxy: a new TCP
connection, read to EOF, close. Latency = connect() start to EOF, on the
monotonic clock. Prints one JSON object on stdout:
  {"lat_us": [...], "lines": {"up\\n": n, ...}, "errors": {"timeout": n, ...}}

Usage: checker.py ADDR PORT COUNT INTERVAL_MS TIMEOUT_MS SRC [START_FILE]
SRC is the local address to connect from. With CHECK_SEND in the
environment, its bytes are sent right after connecting, like HAProxy's
`agent-send` (e.g. "replica\n").
With START_FILE, waits (at most 30 s) until that file exists before the
first check: the test creates it once the hostile load is in place.
"""

import gc
import json
import os
import socket
import sys
import time


SEND = os.environ.get("CHECK_SEND", "").encode()


def one_check(addr, port, timeout, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    t0 = time.perf_counter_ns()
    try:
        s.connect((addr, port))
        if SEND:
            s.sendall(SEND)
        buf = b""
        while True:
            data = s.recv(256)
            if not data:
                break
            buf += data
            if len(buf) > 4096:
                return None, "too_long", buf
        return (time.perf_counter_ns() - t0) // 1000, None, buf
    except socket.timeout:
        return None, "timeout", b""
    except ConnectionRefusedError:
        return None, "refused", b""
    except ConnectionResetError:
        return None, "reset", b""
    except OSError as e:
        return None, "oserror_%d" % (e.errno or 0), b""
    finally:
        s.close()


def measuring_priority():
    """The checker is the measuring instrument: it stands for HAProxy, which
    runs on another machine, so its own scheduling delays are not happac's
    latency. A collection pause of the garbage collector would land inside
    a measured check: it is off (a run allocates a few MB at most). And when
    run as root (CI), it runs at nice -10, so that a busy core does not
    delay its wake-up on the reply. happac itself gets no such help: it runs
    at the normal priority it would have in production."""
    gc.disable()
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except OSError:
        pass  # not root: measure at the normal priority


def main():
    measuring_priority()
    addr, port, count, interval_ms, timeout_ms, src = sys.argv[1:7]
    port, count = int(port), int(count)
    interval, timeout = float(interval_ms) / 1000.0, float(timeout_ms) / 1000.0
    if len(sys.argv) > 7:
        deadline = time.monotonic() + 30
        while not os.path.exists(sys.argv[7]):
            if time.monotonic() > deadline:
                sys.exit("checker: start file never appeared")
            time.sleep(0.005)
    lat, lines, errors = [], {}, {}
    nxt = time.monotonic()
    for _ in range(count):
        us, err, buf = one_check(addr, port, timeout, src)
        if err:
            errors[err] = errors.get(err, 0) + 1
        else:
            lat.append(us)
            key = buf.decode("latin-1")
            lines[key] = lines.get(key, 0) + 1
        nxt += interval
        pause = nxt - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    json.dump({"lat_us": lat, "lines": lines, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
