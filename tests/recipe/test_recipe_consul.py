"""`happac recipe consul`: a JSON service definition with the fields Consul
needs, whose check really passes and fails: the script variant is run as
Consul would run it (its args, against an agent), the HTTP variant's URL
is happac's /health?profile=NAME route (bare /health is Patroni's path)."""

import ipaddress
import json
import re
import socket
import subprocess
import threading
import urllib.parse

import pytest

from recipe_util import happac_path, recipe, run

DURATION = re.compile(r"^\d+(ms|s|m|h)$")  # Consul's time.ParseDuration subset


def consul(*args):
    text = recipe("consul", *args)
    doc = json.loads(text)
    assert set(doc) == {"service"}
    return doc["service"]


def assert_service(svc, name, profile, port):
    assert svc["name"] == name
    assert svc["id"] == "%s-%s" % (name, profile)
    assert svc["tags"] == [profile]
    assert svc["port"] == port and isinstance(svc["port"], int)
    assert svc["meta"] == {"happac_profile": profile}
    assert len(svc["checks"]) == 1
    check = svc["checks"][0]
    assert check["id"] == svc["id"] + "-happac"
    assert check["name"] and check["notes"]
    assert DURATION.match(check["interval"]) and DURATION.match(check["timeout"])
    # Exactly one check type: Consul rejects a definition with two.
    types = {"http", "args", "tcp", "grpc", "script", "ttl", "docker_container_id"} & set(check)
    assert len(types) == 1, check
    return check


@pytest.mark.parametrize("profile,port", [("primary", 8405), ("replica", 8406)])
def test_http_check_defaults(profile, port):
    svc = consul("--service", profile)
    check = assert_service(svc, "postgres", profile, 6432)
    url = urllib.parse.urlsplit(check["http"])
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", "127.0.0.1", port, "/health")
    # the check names its profile: bare /health is Patroni's path (any role passes)
    assert urllib.parse.parse_qs(url.query) == {"profile": [profile]}
    assert "/health?profile=%s" % profile in check["notes"]
    assert check["method"] == "GET"
    assert "--http-listen 127.0.0.1:%d" % port in check["notes"]
    # the notes say what passes: /health's 200 excludes drain and maint
    assert "not drained or in maintenance" in check["notes"]


def test_http_check_ipv6_and_options():
    svc = consul("--service", "replica", "--http", "[::1]:9406", "--name", "pg-main",
                 "--pgbouncer-port", "7432")
    check = assert_service(svc, "pg-main", "replica", 7432)
    assert check["http"] == "http://[::1]:9406/health?profile=replica"
    url = urllib.parse.urlsplit(check["http"])
    assert ipaddress.ip_address(url.hostname) == ipaddress.ip_address("::1")


@pytest.mark.parametrize("profile,port", [("primary", 5555), ("replica", 5556)])
def test_script_check_defaults(profile, port):
    svc = consul("--service", profile, "--script")
    check = assert_service(svc, "postgres", profile, 6432)
    assert check["args"] == ["/usr/bin/happac", "check", "--host", "127.0.0.1",
                             "--port", str(port), "--timeout", "1s"]
    assert "enable_local_script_checks" in check["notes"]
    assert "'up drain', 'up maint'" in check["notes"]


class Agent:
    """A one-line agent on ::1 or 127.0.0.1, as happac's agent port answers."""

    def __init__(self, addr, line):
        self.line = line
        self.sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
        self.sock.bind((addr, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.line.encode())

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1"])
def test_script_check_runs_as_consul_runs_it(addr):
    """Consul runs args as they are: 0 passing on 'up' without drain or
    maint (HAProxy sends it new traffic), 2 critical otherwise."""
    for line, status in [("up\n", 0), ("down #patroni /primary: 503\n", 2),
                         ("up drain\n", 2), ("up maint #patroni /replica: 503\n", 2),
                         ("up ready 40%\n", 0)]:
        agent = Agent(addr, line)
        try:
            host = "[%s]" % addr if ":" in addr else addr
            svc = consul("--service", "primary", "--script", "--bin", happac_path(),
                         "--agent", "%s:%d" % (host, agent.port))
            args = svc["checks"][0]["args"]
            p = subprocess.run(args, capture_output=True, text=True, timeout=10)
            assert p.returncode == status, (line, p.stdout, p.stderr)
            assert line.strip() in p.stdout
        finally:
            agent.close()


def test_bad_input_prints_nothing():
    p = run(["recipe", "consul", "--service", "leader"])
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == "happac recipe consul: --service: 'leader' is not primary or replica\n"
