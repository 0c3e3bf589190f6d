"""scripts/style-check on small C files: each rule finds its bad snippet at
the right line, and house-style code (the tree's idioms) gives no finding.
Run by `make check-style` before the checker runs on the tree."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKER = os.path.join(ROOT, "scripts", "style-check")
CC = os.environ.get("CC", "cc")

# House style, with the idioms a naive checker trips on: banned names in
# comments and strings, snprintf, continuation lines aligned with spaces
# after tabs, a string-only line past the limit, a function pointer variable,
# a struct defined at file scope, static helpers, a typedef of a function type.
GOOD = '''/* good.c - every rule kept. strcpy(a, b) and sprintf() in a comment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOOD_MAX 4
#define GOOD_CALL(x) \\
	do { \\
		(void)(x); \\
	} while (0)

struct good_item {
	int id;
	char name[16];
};

typedef int (*good_cmp_fn)(const void *a, const void *b);

int good_count;
const char *const good_names[] = { "a", "b", NULL };
int (*good_hook)(int);
static int hidden = 0;
struct good_item good_items[GOOD_MAX], good_spare;

static int helper(int a,
		  int b)
{
	return a + b;
}

int good_sum(const struct good_item *items, int n, char *out, size_t outlen)
{
	int total = 0;

	/*
	 * A block comment: its lines start with " *" after the tabs.
	 */
	for (int i = 0; i < n; i++) {
		if (items[i].id > 0)
			total = helper(total,
				       items[i].id);
		else
			total--;
	}
	snprintf(out, outlen, "strcpy(%s) atoi() %d", "x", total);
	if (total > 100) {
		fprintf(stderr,
			"a message that is one string literal and that runs past the one-hundred-column limit\\n");
	} else {
		GOOD_CALL(total);
	}
	total = total > 3 ? total
			  : 3;
	{
		int scoped = hidden;

		total += scoped;
	}
	return total;
}

int good(void)
{
	return good_count;
}
'''


# Declarations the top-level parser must read as the linker does.
EDGE = '''void edge_set(int (*cb)(void));
int (*edge_get(void))(int);
int (*edge_hook)(int);
static void (*hidden_hook)(void);
extern int edge_elsewhere;
struct edge_s {
	int a;
};
enum { EDGE_A = 1 };
struct edge_s edge_one = { 1 }, *edge_ptr = &edge_one;
__attribute__((unused)) static int hidden_fn(void)
{
	return hidden_hook != 0;
}
void edge_set(int (*cb)(void))
{
	(void)cb;
}
int (*edge_get(void))(int)
{
	return 0;
}
'''


def run(*args):
    p = subprocess.run([sys.executable, CHECKER, *args], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


def write(tmp_path, rel, text):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, newline="")
    return str(path)


def findings(out):
    """(line, kind) of each finding line."""
    got = []
    for line in out.splitlines():
        if line.startswith("style-check:") or line.startswith("info:"):
            continue
        _, lineno, rest = line.split(":", 2)
        got.append((int(lineno), rest.rsplit("[", 1)[1].rstrip("]")))
    return got


def test_good_code_has_no_finding(tmp_path):
    path = write(tmp_path, "src/good.c", GOOD)
    rc, out, err = run(path)
    assert (rc, findings(out)) == (0, []), out + err
    assert "1 files clean" in out


# (file name, source, expected [(line, kind)]). Lines are 1-based.
BAD = [
    ("long", "int long_x(void)\n{\n\treturn " + "1 + " * 22 + "1;\n}\n",
     [(3, "line-length")]),
    # 12 tabs (96 columns) + 5 characters = 101 columns: tabs count 8.
    ("tabs8", "int tabs8_x;\n" + "\t" * 12 + "int y\n", [(2, "line-length")]),
    ("trail", "int trail_x; \nint trail_y;\t\n", [(1, "trailing-ws"), (2, "trailing-ws")]),
    ("crlf", "int crlf_x;\r\n", [(1, "trailing-ws")]),
    ("eof", "int eof_x;", [(1, "trailing-ws")]),
    ("spaces", "int spaces_f(void)\n{\n    return 0;\n}\n", [(3, "indent")]),
    ("spacetab", "int spacetab_f(void)\n{\n \treturn 0;\n}\n", [(3, "indent")]),
    ("eight", "int eight_f(int a,\n\t        int b)\n{\n\treturn a;\n}\n", [(2, "indent")]),
    ("banned", "#include <stdlib.h>\n#include <string.h>\n"
     "int banned_f(char *d, const char *s)\n{\n\tstrcpy(d, s);\n"
     "\treturn atoi(s) + (int)atol(s);\n}\n",
     [(5, "banned-call"), (6, "banned-call"), (6, "banned-call")]),
    ("sprintf", "#include <stdio.h>\nvoid sprintf_f(char *d)\n{\n\tsprintf(d, \"%d\", 1);\n}\n",
     [(4, "banned-call")]),
    ("prefix", "int helper(void)\n{\n\treturn 0;\n}\n\nint prefix_ok(void)\n{\n\treturn 1;\n}\n"
     "int prefixed_not_really;\n",
     [(1, "prefix"), (10, "prefix")]),
    ("typedef", "typedef struct typedef_s {\n\tint x;\n} typedef_t;\n"
     "typedef enum { TYPEDEF_A } typedef_e;\n",
     [(1, "typedef"), (4, "typedef")]),
    ("kw", "int kw_f(int a)\n{\n\tif(a)\n\t\treturn 1;\n\twhile(a)\n\t\ta--;\n\treturn 0;\n}\n",
     [(3, "layout"), (5, "layout")]),
    ("els", "int els_f(int a)\n{\n\tif (a) {\n\t\ta++;\n\t}else {\n\t\ta--;\n\t}\n\treturn a;\n}\n",
     [(5, "layout")]),
    ("fbrace", "int fbrace_f(void) {\n\treturn 0;\n}\n", [(1, "layout")]),
    ("bbrace", "int bbrace_f(int a)\n{\n\tif (a)\n\t{\n\t\ta++;\n\t}\n\treturn a;\n}\n",
     [(4, "layout")]),
]


@pytest.mark.parametrize("name,src,want", BAD, ids=[b[0] for b in BAD])
def test_bad_snippet_is_found_at_its_line(tmp_path, name, src, want):
    path = write(tmp_path, f"src/{name}.c", src)
    rc, out, err = run(path)
    assert rc == 1, out + err
    assert sorted(findings(out)) == sorted(want), out
    for line in out.splitlines()[:-1]:
        assert line.startswith(path + ":"), line
    assert out.splitlines()[-1].startswith(f"style-check: {len(want)} finding(s) in 1 of 1")


def test_prefix_rule_is_for_src_only_and_main_may_define_main(tmp_path):
    other = write(tmp_path, "tests/unit/test_x.c", "int helper(void)\n{\n\treturn 0;\n}\n")
    main_c = write(tmp_path, "src/main.c",
                   "int main(void)\n{\n\treturn 0;\n}\n\nint main_helper;\nint stray(void)\n"
                   "{\n\treturn 1;\n}\n")
    rc, out, _ = run(other, main_c)
    assert rc == 1
    assert findings(out) == [(7, "prefix")], out
    assert "stray" in out


def test_file_length_limit_in_src(tmp_path):
    body = "int flen_x;\n" + "\n" * 799
    ok = write(tmp_path, "src/flen.c", body)
    assert run(ok)[0] == 0
    write(tmp_path, "src/flen.c", body + "\n")
    rc, out, _ = run(ok)
    assert findings(out) == [(801, "file-length")], out
    # Outside src/ a long file is a test's business.
    long_test = write(tmp_path, "tests/unit/test_long.c", body + "\n")
    assert run(long_test)[0] == 0


def test_tree_scan_default_and_usage_errors(tmp_path):
    rc, out, _ = run("--bogus")
    assert rc == 2
    rc, _, err = run(str(tmp_path / "missing.c"))
    assert rc == 2 and "missing.c: no such file" in err
    # Without arguments it scans the repository's C: the summary counts them.
    rc, out, _ = run()
    last = out.splitlines()[-1]
    assert last.startswith("style-check:") and rc in (0, 1), out
    assert ("files clean" in last) == (rc == 0)


def test_exports_agree_with_nm(tmp_path):
    """The parser's view of what a file exports is the linker's: compile the
    snippets and compare with nm's defined global symbols."""
    sources = [("good", GOOD), ("edge", EDGE)] + [(n, s) for n, s, _ in BAD if n in ("prefix", "banned", "kw")]
    for name, src in sources:
        path = write(tmp_path, f"src/{name}.c", src)
        obj = str(tmp_path / f"{name}.o")
        subprocess.run([CC, "-std=c11", "-D_GNU_SOURCE", "-c", "-o", obj, path], check=True,
                       timeout=60)
        nm = subprocess.run(["nm", "--defined-only", "-g", obj], capture_output=True,
                            text=True, check=True, timeout=30).stdout
        want = sorted(line.split()[-1] for line in nm.splitlines() if line.strip())
        rc, out, _ = run("--list-exports", path)
        got = sorted(line.split()[-1] for line in out.splitlines())
        assert (rc, got) == (0, want), name
