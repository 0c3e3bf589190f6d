"""`happac recipe haproxy` output passes `haproxy -c` of the stack under test.

tests/recipe checks every variant against the host's HAProxy; this runs the
same generator for every scenario and option against the HAProxy of the stack
(HAPPAC_STACK): 2.6 on debian12, 3.0 on debian13, so `make test` (both
stacks) proves both versions accept what happac prints. Needs no cluster.

The options come from `happac recipe haproxy --help`: an option the help
lists and this file gives no value for fails the test, so a new recipe option
cannot go unchecked.
"""

import os
import re
import subprocess

import pytest

import happac_cluster as hc

HAPPAC = os.environ.get("HAPPAC_BIN") or str(hc.REPO / "bin" / "happac")

NODE_SETS = {
    "ipv4": ["node1=10.0.0.11", "node2=10.0.0.12", "node3=10.0.0.13"],
    "ipv6": ["node1=fd00::11", "node2=[fd00::12]", "node3=::1"],
    "mixed": ["node1=10.0.0.11", "node2=[fd00::12]", "node3=127.0.0.13"],
}

# A value for each option that takes one ({dir}: the test's directory). Options
# without a value are flags. --scenario and --node are varied by the matrix.
VALUES = {
    "--agent-port": "7555",
    "--pgbouncer-port": "7432",
    "--postgres-port": "7433",
    "--patroni-port": "7008",
    "--bind": "127.0.0.1:7000",
    "--replica-agent-port": "7556",
    "--replica-bind": "[::1]:7100",
    "--name": "pg",
    "--stats-socket": "{dir}/admin.sock",
    "--server-state-file": "{dir}/server-state",
    "--http-port": "7405",
}
# Options that only mean something beside another one.
NEEDS = {"--stats-socket": ["--full"], "--replica-agent-port": ["--replicas"],
         "--replica-bind": ["--replicas"], "--server-state-file": ["--full"],
         "--http-port": ["--via-happac"]}
# Options for one scenario only (the others refuse them).
SCENARIO_ONLY = {"--via-happac": "a", "--http-port": "a"}
MATRIX_OWNED = {"--scenario", "--node", "--help"}


def recipe_options():
    """{option: takes_value} from `happac recipe haproxy --help`."""
    r = subprocess.run([HAPPAC, "recipe", "haproxy", "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    opts = {}
    for m in re.finditer(r"^\s+(--[a-z][a-z-]*)(?: ([A-Z][A-Z:|.]*|[a-z]\|[a-z|]+))?",
                         r.stdout, re.M):
        opts[m.group(1)] = m.group(2) is not None
    assert "--scenario" in opts and "--full" in opts, r.stdout
    return opts


OPTIONS = recipe_options()


def haproxy_c(lab_stack, tmp_path, text, full):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    # The server-state file as HAProxy writes it with no server in it (a missing one
    # is a warning about this machine, not about the config).
    (tmp_path / "server-state").write_text("1\n")
    files = [cfg]
    if not full:
        # Sections for an existing configuration, whose global section names the
        # state file (the recipe's header says so; tests/recipe checks HAProxy's
        # warning when it does not).
        glob = tmp_path / "global.cfg"
        glob.write_text('global\n    server-state-file "%s"\n' % (tmp_path / "server-state"))
        files = [glob, cfg]
    # -V: HAProxy 3.0 says "Configuration file is valid" only when verbose.
    r = lab_stack.run(["haproxy", "-c", "-V"] + [a for f in files for a in ("-f", str(f))],
                      shared=[str(tmp_path)],
                      capture_output=True, text=True, timeout=60,
                      env={**os.environ, "HAPPAC_RUN_DIR": str(tmp_path)})
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"haproxy -c ({lab_stack.name}) failed:\n{out}\n--- config ---\n{text}"
    assert "Configuration file is valid" in out, out
    # A warning is a config that works by luck: none allowed.
    assert "[WARNING]" not in out and "[ALERT]" not in out, out


@pytest.fixture(scope="module")
def lab_stack():
    return hc.Stack()


def recipe(*args):
    r = subprocess.run([HAPPAC, "recipe", "haproxy"] + list(args), capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0 and r.stderr == "", f"recipe {args}: {r.returncode} {r.stderr}"
    return r.stdout


def test_every_option_has_a_value_here():
    unknown = [o for o, takes in OPTIONS.items()
               if o not in MATRIX_OWNED and takes and o not in VALUES]
    assert not unknown, f"recipe options without a test value in {__file__}: {unknown}"


def variants():
    """(id, argv): every scenario with each node set, and with each option alone (and what
    it needs) and all options together."""
    out = []
    for scenario in ("a", "b", "c"):
        for nodes in sorted(NODE_SETS):
            sets = option_sets() if nodes == "ipv4" else [[], known_options()]
            for opts in sets:
                name = "+".join(o[2:] for o in opts) or "plain"
                if len(opts) > 1 and opts == known_options():
                    name = "all"
                opts = [o for o in opts if SCENARIO_ONLY.get(o, scenario) == scenario]
                if not opts and name != "plain":
                    continue
                argv = ["--scenario", scenario] + [a for n in NODE_SETS[nodes]
                                                    for a in ("--node", n)]
                for o in opts:
                    argv += NEEDS.get(o, []) if not set(NEEDS.get(o, [])) & set(opts) else []
                    argv.append(o)
                    if OPTIONS[o]:
                        argv.append(VALUES[o])
                out.append((f"{scenario}-{nodes}-{name}", argv))
    return out


def known_options():
    """The options this file can give (test_every_option_has_a_value_here: all of them)."""
    return [o for o, takes in OPTIONS.items()
            if o not in MATRIX_OWNED and (not takes or o in VALUES)]


def option_sets():
    """Each option alone (with what it needs), then all of them together."""
    others = known_options()
    return [[]] + [[o] for o in others] + [others]


VARIANTS = variants()


@pytest.mark.parametrize("argv", [v for _, v in VARIANTS], ids=[i for i, _ in VARIANTS])
def test_stack_haproxy_accepts_recipe(lab_stack, tmp_path, argv):
    argv = [a.format(dir=tmp_path) for a in argv]
    full = "--full" in argv
    if full and "--server-state-file" not in argv:
        # The default (/var/lib/haproxy/server-state) does not exist in the stack's root.
        argv += ["--server-state-file", str(tmp_path / "server-state")]
    haproxy_c(lab_stack, tmp_path, recipe(*argv), full)
