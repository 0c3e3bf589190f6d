/* Unit tests for ctl.c: request parsing, the state file (round trip, every
 * kind of corruption naming file and line), the ramp's weight math, the
 * status JSON, and one request through a real socket on a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctl.h"
#include "ctl_writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/happac-test-ctl-XXXXXX";

static void tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

/* ---- requests */

static struct ctl_request parse_ok(const char *line)
{
	struct ctl_request req;
	char err[200] = "";

	if (ctl_request_parse(line, strlen(line), &req, err, sizeof(err)) != 0)
		fail_msg("'%s' refused: %s", line, err);
	return req;
}

static void parse_bad(const char *line, size_t len, const char *needle)
{
	struct ctl_request req;
	char err[200] = "";

	assert_int_equal(ctl_request_parse(line, len, &req, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error '%s' for '%s' does not say '%s'", err, line, needle);
	assert_null(strchr(err, '\n'));
}

static void test_parse_commands(void **state)
{
	struct ctl_request r;

	(void)state;
	r = parse_ok("drain");
	assert_int_equal(r.cmd, CTL_CMD_DRAIN);
	assert_int_equal(r.ramp_ms, 0);
	assert_int_equal(parse_ok("maint\n").cmd, CTL_CMD_MAINT);
	assert_int_equal(parse_ok("status\r\n").cmd, CTL_CMD_STATUS);
	r = parse_ok("  ready \t");
	assert_int_equal(r.cmd, CTL_CMD_READY);
	assert_int_equal(r.ramp_ms, 0);
	assert_int_equal(parse_ok("ready --ramp 60s\n").ramp_ms, 60000);
	assert_int_equal(parse_ok("ready --ramp=1.5s").ramp_ms, 1500);
	assert_int_equal(parse_ok("ready --ramp 2m").ramp_ms, 120000);
	assert_int_equal(parse_ok("ready --ramp 2000").ramp_ms, 2000); /* bare = ms */
	assert_int_equal(parse_ok("ready\t--ramp\t1s").ramp_ms, 1000);
	assert_int_equal(parse_ok("ready --ramp 1440m").ramp_ms, 86400000);
	for (int i = 0; i < CTL_CMD_COUNT; i++)
		assert_int_equal(parse_ok(ctl_request_cmd_names[i]).cmd, i);
}

static void test_parse_errors(void **state)
{
	char big[400];

	(void)state;
	parse_bad("", 0, "empty request");
	parse_bad(" \t\r\n", 4, "empty request");
	parse_bad("up", 2, "unknown command 'up'");
	parse_bad("DRAIN", 5, "unknown command");
	parse_bad("drain now", 9, "'drain' takes no arguments");
	parse_bad("status --ramp 1s", 16, "'status' takes no arguments");
	parse_bad("ready --ramp", 12, "--ramp needs a duration");
	parse_bad("ready --ramp=", 13, "--ramp needs a duration");
	parse_bad("ready --ramp 5x", 15, "invalid duration '5x'");
	parse_bad("ready --ramp -1s", 16, "invalid duration");
	parse_bad("ready --ramp 0", 14, "out of range");
	parse_bad("ready --ramp 999ms", 18, "out of range");
	parse_bad("ready --ramp 1441m", 18, "out of range");
	parse_bad("ready --ramp 1s --ramp 2s", 25, "twice");
	parse_bad("ready now", 9, "unknown argument 'now'");
	parse_bad("drain\0x", 7, "not printable ASCII (0x00)");
	parse_bad("dr\x1b[0main", 9, "not printable ASCII (0x1b)");
	parse_bad("dr\xc3\xa4in", 7, "not printable ASCII (0xc3)");
	parse_bad("a b c d e f g h i", 17, "too many words");
	memset(big, 'a', sizeof(big));
	parse_bad(big, sizeof(big), "too long");
}

/* ---- the ramp */

static void test_ramp_weight(void **state)
{
	struct ctl_override o = { .admin = CTL_ADMIN_READY, .ramp_ms = 60000,
				  .ramp_start_s = 1000.0 };

	(void)state;
	assert_int_equal(ctl_state_weight(&o, 1000.0), 1);      /* start */
	assert_int_equal(ctl_state_weight(&o, 1000.1), 1);      /* never 0% */
	assert_int_equal(ctl_state_weight(&o, 1015.0), 25);
	assert_int_equal(ctl_state_weight(&o, 1030.0), 50);     /* middle */
	assert_int_equal(ctl_state_weight(&o, 1059.9), 99);
	assert_int_equal(ctl_state_weight(&o, 1060.0), -1);     /* end */
	assert_int_equal(ctl_state_weight(&o, 5000.0), -1);
	/* The wall clock went back past the start: lowest weight, not full. */
	assert_int_equal(ctl_state_weight(&o, 999.0), 1);
	assert_int_equal(ctl_state_weight(&o, -1e9), 1);
	/* Monotone over the whole ramp. */
	for (int i = 0, last = 1; i < 600; i++) {
		int w = ctl_state_weight(&o, 1000.0 + i / 10.0);

		assert_true(w >= last && w >= 1 && w <= 100);
		last = w;
	}
	/* No ramp, or an admin state that is not ready: no weight. */
	o.ramp_ms = 0;
	assert_int_equal(ctl_state_weight(&o, 1030.0), -1);
	o.ramp_ms = 60000;
	o.admin = CTL_ADMIN_DRAIN;
	assert_int_equal(ctl_state_weight(&o, 1030.0), -1);
}

/* ---- the state file */

static void test_state_round_trip(void **state)
{
	char path[256], tmp[300], err[512] = "";
	struct ctl_override in = { .admin = CTL_ADMIN_DRAIN, .uid = 1234,
				   .set_at_s = 1732670000.25,
				   .prev_admin = CTL_ADMIN_MAINT }, out;
	struct stat st;

	(void)state;
	tmp_path(path, sizeof(path), "rt.state");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(path);
	assert_int_equal(ctl_state_load(path, &out, err, sizeof(err)), 1); /* no file */
	assert_int_equal(out.admin, CTL_ADMIN_READY);
	assert_int_equal(out.ramp_ms, 0);

	for (int a = 0; a < CTL_ADMIN_COUNT; a++) {
		in.admin = (enum ctl_admin)a;
		assert_int_equal(ctl_state_save(path, &in, err, sizeof(err)), 0);
		assert_int_equal(stat(tmp, &st), -1); /* no temporary file left */
		memset(&out, 0x55, sizeof(out));
		assert_int_equal(ctl_state_load(path, &out, err, sizeof(err)), 0);
		assert_int_equal(out.admin, a);
		assert_int_equal(out.prev_admin, CTL_ADMIN_MAINT);
		assert_int_equal(out.uid, 1234);
		assert_float_equal(out.set_at_s, in.set_at_s, 0.001);
		assert_int_equal(out.ramp_ms, 0);
		assert_float_equal(out.ramp_start_s, 0, 0);
	}

	/* An unfinished ramp, and the largest uid. */
	in.admin = CTL_ADMIN_READY;
	in.uid = 4294967294u;
	in.ramp_ms = 90000;
	in.ramp_start_s = 1732670001.5;
	assert_int_equal(ctl_state_save(path, &in, err, sizeof(err)), 0);
	assert_int_equal(ctl_state_load(path, &out, err, sizeof(err)), 0);
	assert_int_equal(out.uid, 4294967294u);
	assert_int_equal(out.ramp_ms, 90000);
	assert_float_equal(out.ramp_start_s, 1732670001.5, 0.001);

	/* Hand-written: comments, blank lines, no spaces around '='. */
	write_file(path, "# by hand\n\nadmin=maint\n  uid = 7  \n", 35);
	assert_int_equal(ctl_state_load(path, &out, err, sizeof(err)), 0);
	assert_int_equal(out.admin, CTL_ADMIN_MAINT);
	assert_int_equal(out.uid, 7);
	assert_int_equal(out.prev_admin, CTL_ADMIN_READY);
}

static void load_bad(const char *text, size_t len, const char *needle)
{
	char path[256], err[512] = "";
	struct ctl_override out;

	tmp_path(path, sizeof(path), "bad.state");
	write_file(path, text, len);
	memset(&out, 0x55, sizeof(out));
	assert_int_equal(ctl_state_load(path, &out, err, sizeof(err)), -1);
	if (!strstr(err, path) || !strstr(err, needle))
		fail_msg("error '%s' does not name the file and '%s'", err, needle);
	/* Refused: never a half-read override (the caller refuses to start). */
	assert_int_equal(out.admin, CTL_ADMIN_READY);
	assert_int_equal(out.ramp_ms, 0);
}

/* A file whose admin line is good but some other line is not: the admin
 * state is kept, each bad line named in the warnings. */
static struct ctl_override load_partial(const char *text, size_t len, enum ctl_admin admin,
					const char *needle)
{
	char path[256], err[1024] = "", where[300];
	struct ctl_override out;

	tmp_path(path, sizeof(path), "partial.state");
	write_file(path, text, len);
	memset(&out, 0x55, sizeof(out));
	assert_int_equal(ctl_state_load(path, &out, err, sizeof(err)), 2);
	snprintf(where, sizeof(where), "%s%s", path, needle);
	if (!strstr(err, where))
		fail_msg("warning '%s' does not say '%s'", err, where);
	assert_null(strchr(err, '\n'));
	assert_int_equal(out.admin, admin);
	return out;
}

static void test_state_corrupt(void **state)
{
	static const char garbage[] = "\x7f" "ELF\x02\x01\x01\0\0\0\n";
	char longline[600], path[256], err[512] = "";
	struct ctl_override o;

	(void)state;
	/* The admin state unknown: refused, naming file and line. */
	load_bad("admin = drained\n", 16, ":1: bad admin 'drained'");
	load_bad("uid = 7\nadmin = mant\nset_at = 5\n", 32, ":2: bad admin 'mant'");
	load_bad("# c\nadmin = drain\nadmin = maint\n", 32, ":3: 'admin' given twice");
	load_bad("drain\n", 6, ":1: expected 'key = value'");
	load_bad("drain\n", 6, "no valid 'admin' line");
	load_bad("uid = 0\n", 8, ":1: no 'admin' line");
	load_bad("", 0, ":0: no 'admin' line");
	load_bad(garbage, sizeof(garbage) - 1, ":1:");
	load_bad("admin = dr\0ain\n", 15, ":1: NUL byte");
	memset(longline, '#', sizeof(longline));
	longline[sizeof(longline) - 1] = '\n';
	load_bad(longline, sizeof(longline), ":1: line too long");
	tmp_path(path, sizeof(path), "a-directory.state");
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(ctl_state_load(path, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	rmdir(path);

	/* Issue 11 #13: maintenance with a bad set_at stays maintenance. */
	o = load_partial("admin = maint\nuid = 7\nset_at = soon\n", 35, CTL_ADMIN_MAINT,
			 ":3: bad set_at 'soon' (when it was set is unknown)");
	assert_int_equal(o.uid, 7);
	assert_float_equal(o.set_at_s, 0, 0);
	o = load_partial("admin = drain\nset_at = nan\n", 27, CTL_ADMIN_DRAIN, ":2: bad set_at");
	o = load_partial("admin = drain\nset_at = 1e300\n", 29, CTL_ADMIN_DRAIN,
			 ":2: bad set_at");
	o = load_partial("admin = drain\nuid = 0\nweight = 3\n", 33, CTL_ADMIN_DRAIN,
			 ":3: unknown key 'weight' (line ignored)");
	assert_int_equal(o.uid, 0);
	o = load_partial("admin = drain\nuid = -1\n", 23, CTL_ADMIN_DRAIN,
			 ":2: bad uid '-1' (who set it is unknown)");
	assert_int_equal(o.uid, (uid_t)-1);
	o = load_partial("admin = drain\nuid = 4294967295\n", 31, CTL_ADMIN_DRAIN,
			 ":2: bad uid");
	/* A bad prev owes HAProxy nothing: `ready` would undo a manual state. */
	o = load_partial("admin = ready\nprev = drained\n", 28, CTL_ADMIN_READY,
			 ":2: bad prev 'drained'");
	assert_int_equal(o.prev_admin, CTL_ADMIN_READY);
	o = load_partial("admin = ready\nramp_ms = 500\n", 28, CTL_ADMIN_READY,
			 ":2: bad ramp_ms '500' (no weight ramp)");
	assert_int_equal(o.ramp_ms, 0);
	o = load_partial("admin = drain\nramp_ms = 60000\nramp_start = 5\n", 45,
			 CTL_ADMIN_DRAIN, ":2: ramp_ms needs admin = ready (no weight ramp)");
	assert_int_equal(o.ramp_ms, 0);
	assert_float_equal(o.ramp_start_s, 0, 0);
	/* A ramp whose start is lost starts again: never full weight at once. */
	o = load_partial("admin = ready\nramp_ms = 60000\nramp_start = x\n", 45,
			 CTL_ADMIN_READY, ":3: bad ramp_start 'x'");
	assert_int_equal(o.ramp_ms, 60000);
	assert_true(o.ramp_start_s > 1.7e9);
	assert_true(ctl_state_weight(&o, o.ramp_start_s + 1) < 5);
	o = load_partial("admin = maint\nset_at = 5\nset_at = 6\n", 36, CTL_ADMIN_MAINT,
			 ":3: 'set_at' given twice (first on line 2) (line ignored)");
	assert_float_equal(o.set_at_s, 5, 0);
	/* Every bad line is named, not only the first. */
	o = load_partial("admin = maint\nset_at = x\nuid = y\n", 33, CTL_ADMIN_MAINT,
			 ":2: bad set_at 'x'");
	o = load_partial("admin = maint\nset_at = x\nuid = y\n", 33, CTL_ADMIN_MAINT,
			 ":3: bad uid 'y'");
	memcpy(longline, "admin = maint\n", 14);
	memset(longline + 14, 'x', sizeof(longline) - 15);
	longline[sizeof(longline) - 1] = '\n';
	load_partial(longline, sizeof(longline), CTL_ADMIN_MAINT, ":2: line too long");
}

static void test_state_save_errors(void **state)
{
	char err[512] = "";
	struct ctl_override o = { .admin = CTL_ADMIN_DRAIN };

	(void)state;
	assert_int_equal(ctl_state_save("/nonexistent-happac-dir/state", &o, err,
					sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent-happac-dir/state"));
}

/* ---- status */

static void test_status_json(void **state)
{
	char buf[CTL_REPLY_MAX];
	struct ctl_override o = { .admin = CTL_ADMIN_DRAIN, .uid = 0, .set_at_s = 1000.5,
				  .prev_admin = CTL_ADMIN_READY };
	size_t n;

	(void)state;
	n = ctl_state_status(&o, 1001, "/var/lib/happac/state", 1, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "{\"admin\":\"drain\",\"prev\":\"ready\",\"uid\":0,"
			    "\"since\":1000.500,\"ramp_ms\":0,\"ramp_left_ms\":0,"
			    "\"ramp_weight\":null,\"state_file\":\"/var/lib/happac/state\","
			    "\"saved\":true}");
	o = (struct ctl_override){ .admin = CTL_ADMIN_READY, .uid = 42, .set_at_s = 1000,
				   .ramp_ms = 60000, .ramp_start_s = 1000,
				   .prev_admin = CTL_ADMIN_MAINT };
	ctl_state_status(&o, 1030, "/a\"b\\c\n", 0, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"ramp_ms\":60000,\"ramp_left_ms\":30000,"
				    "\"ramp_weight\":50,"));
	assert_non_null(strstr(buf, "\"state_file\":\"/a\\\"b\\\\c\\u000a\""));
	assert_non_null(strstr(buf, "\"saved\":false}"));
	o = (struct ctl_override){ .admin = CTL_ADMIN_READY };
	ctl_state_status(&o, 1030, NULL, 0, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"since\":null"));
	assert_non_null(strstr(buf, "\"state_file\":null"));
	/* Truncation keeps a terminated string. */
	n = ctl_state_status(&o, 1030, NULL, 0, buf, 10);
	assert_int_equal(n, 9);
	assert_int_equal(strlen(buf), 9);
}

/* ---- the server on a real loop */

static int changes;
static enum ctl_admin admin_seen;
static struct ctl *server;

static void on_change(void *arg)
{
	(void)arg;
	changes++;
	admin_seen = ctl_get(server)->admin;
}

/* Send line, run the loop until the reply has come and the socket closed. */
static void request(struct event_base *base, const char *sock, const char *line,
		    char *reply, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	size_t got = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, line, strlen(line), 0), (ssize_t)strlen(line));
	for (int i = 0; i < 1000; i++) {
		ssize_t n = recv(fd, reply + got, len - 1 - got, 0);

		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
		else
			assert_int_equal(errno, EAGAIN);
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	reply[got] = '\0';
	close(fd);
}

/* A socket file nobody listens on: what a killed daemon leaves behind. */
static void make_stale_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

static void test_server(void **state)
{
	struct event_base *base = event_base_new();
	char sock[256], st_path[256], err[512] = "", reply[CTL_REPLY_MAX];
	struct ctl_override o;
	struct stat st;

	(void)state;
	tmp_path(sock, sizeof(sock), "ctl.sock");
	tmp_path(st_path, sizeof(st_path), "server.state");
	unlink(st_path);
	server = ctl_new(base, sock, st_path, on_change, NULL, err, sizeof(err));
	if (!server)
		fail_msg("ctl_new: %s", err);
	assert_int_equal(stat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);

	request(base, sock, "drain\n", reply, sizeof(reply));
	assert_string_equal(reply, "ok drain\n");
	assert_int_equal(changes, 1);
	assert_int_equal(admin_seen, CTL_ADMIN_DRAIN);
	assert_int_equal(ctl_get(server)->uid, getuid());
	assert_int_equal(ctl_state_load(st_path, &o, err, sizeof(err)), 0);
	assert_int_equal(o.admin, CTL_ADMIN_DRAIN);

	request(base, sock, "drain\n", reply, sizeof(reply)); /* no-op */
	assert_string_equal(reply, "ok drain\n");
	assert_int_equal(changes, 1);
	request(base, sock, "bogus\n", reply, sizeof(reply));
	assert_non_null(strstr(reply, "error unknown command 'bogus'"));
	assert_int_equal(changes, 1);
	request(base, sock, "ready --ramp 10s\n", reply, sizeof(reply));
	assert_string_equal(reply, "ok ready\n");
	assert_int_equal(changes, 2);
	assert_int_equal(ctl_get(server)->prev_admin, CTL_ADMIN_DRAIN);
	assert_int_equal(ctl_ramp_weight(server, ctl_get(server)->ramp_start_s + 5), 50);
	ctl_free(server);
	assert_int_equal(stat(sock, &st), -1); /* unlinked */

	/* A restart restores the unfinished ramp; a stale socket is replaced. */
	make_stale_socket(sock);
	server = ctl_new(base, sock, st_path, on_change, NULL, err, sizeof(err));
	if (!server)
		fail_msg("ctl_new again: %s", err);
	assert_int_equal(ctl_get(server)->ramp_ms, 10000);
	assert_int_equal(ctl_get(server)->prev_admin, CTL_ADMIN_DRAIN);
	ctl_free(server);
	server = NULL;
	event_base_free(base);
}

static void test_new_errors(void **state)
{
	struct event_base *base = event_base_new();
	char err[512] = "", path[300], longpath[200];
	struct ctl *c;

	(void)state;
	c = ctl_new(base, "/nonexistent-happac-dir/happac.sock", NULL, on_change, NULL, err,
		    sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "/nonexistent-happac-dir/happac.sock"));
	assert_non_null(strstr(err, "does not exist"));

	tmp_path(path, sizeof(path), "x.sock");
	c = ctl_new(base, path, "/nonexistent-happac-dir/state", on_change, NULL, err,
		    sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "state file /nonexistent-happac-dir/state"));

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	longpath[0] = '/';
	c = ctl_new(base, longpath, NULL, on_change, NULL, err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "too long"));

	/* Not a socket: left alone. */
	tmp_path(path, sizeof(path), "regular");
	write_file(path, "keep me\n", 8);
	c = ctl_new(base, path, NULL, on_change, NULL, err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(access(path, F_OK), 0);
	event_base_free(base);
}

/* The state file is written off the loop: run the loop until path holds
 * an override with admin state want (2 s at most). */
static void wait_state(struct event_base *base, const char *path, enum ctl_admin want,
		       struct ctl_override *o)
{
	char err[512];

	for (int i = 0; i < 200; i++) {
		if (ctl_state_load(path, o, err, sizeof(err)) == 0 && o->admin == want)
			return;
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(10000);
	}
	fail_msg("%s never held admin state %d", path, (int)want);
}

/* Reloads: the same socket under a new state file stays open (binding it
 * anew would find it live: our own); a moved socket carries the override
 * over, ramp included; a prepared server that is aborted leaves no file. */
static void test_reload_handoff(void **state)
{
	struct event_base *base = event_base_new();
	char sock[256], sock2[256], st1[256], st2[256], err[512] = "", reply[CTL_REPLY_MAX];
	struct ctl_reload *r;
	struct ctl_override o;
	struct ctl *c;
	struct stat st;

	(void)state;
	tmp_path(sock, sizeof(sock), "reload.sock");
	tmp_path(sock2, sizeof(sock2), "reload2.sock");
	tmp_path(st1, sizeof(st1), "reload1.state");
	tmp_path(st2, sizeof(st2), "reload2.state");
	unlink(st1);
	unlink(st2);
	c = ctl_new(base, sock, st1, on_change, NULL, err, sizeof(err));
	if (!c)
		fail_msg("ctl_new: %s", err);
	server = c;
	request(base, sock, "drain\n", reply, sizeof(reply));
	assert_string_equal(reply, "ok drain\n");

	/* Only the state file moves: the same server, the override written
	 * to the new file. */
	r = ctl_reload_prepare(c, base, sock, st2, on_change, NULL, err, sizeof(err));
	if (!r)
		fail_msg("prepare (state file only): %s", err);
	assert_ptr_equal(ctl_reload_commit(c, r), c);
	wait_state(base, st2, CTL_ADMIN_DRAIN, &o);
	request(base, sock, "ready --ramp 10s\n", reply, sizeof(reply));
	assert_string_equal(reply, "ok ready\n");
	assert_int_equal(ctl_state_load(st2, &o, err, sizeof(err)), 0);
	assert_int_equal(o.ramp_ms, 10000);

	/* A prepared move that is aborted: the new socket file is gone, the
	 * old server untouched. */
	r = ctl_reload_prepare(c, base, sock2, NULL, on_change, NULL, err, sizeof(err));
	if (!r)
		fail_msg("prepare (move): %s", err);
	assert_int_equal(stat(sock2, &st), 0);
	ctl_reload_abort(r);
	assert_int_equal(stat(sock2, &st), -1);
	request(base, sock, "status\n", reply, sizeof(reply));
	assert_non_null(strstr(reply, "\"ramp_ms\":10000"));

	/* The move, without a state file: the override and its ramp carry
	 * over, the old socket is gone. */
	r = ctl_reload_prepare(c, base, sock2, NULL, on_change, NULL, err, sizeof(err));
	if (!r)
		fail_msg("prepare (move): %s", err);
	c = ctl_reload_commit(c, r);
	server = c;
	assert_non_null(c);
	assert_int_equal(stat(sock, &st), -1);
	assert_int_equal(ctl_get(c)->admin, CTL_ADMIN_READY);
	assert_int_equal(ctl_get(c)->prev_admin, CTL_ADMIN_DRAIN);
	assert_int_equal(ctl_get(c)->ramp_ms, 10000);
	assert_true(ctl_ramp_weight(c, ctl_get(c)->ramp_start_s + 5) == 50);
	request(base, sock2, "maint\n", reply, sizeof(reply));
	assert_string_equal(reply, "ok maint\n");

	/* Off: the server goes, with its socket. */
	r = ctl_reload_prepare(c, base, NULL, NULL, on_change, NULL, err, sizeof(err));
	assert_non_null(r);
	assert_null(ctl_reload_commit(c, r));
	server = NULL;
	assert_int_equal(stat(sock2, &st), -1);
	event_base_free(base);
}

/* Issue 11 #13: a state file the admin state cannot be read from stops the
 * start; bad auxiliary fields do not drop the override. */
static void test_restore_refuses_or_keeps(void **state)
{
	struct event_base *base = event_base_new();
	char sock[256], st_path[256], err[1024] = "", needle[400];
	struct ctl *c;

	(void)state;
	tmp_path(sock, sizeof(sock), "restore.sock");
	tmp_path(st_path, sizeof(st_path), "restore.state");
	write_file(st_path, "uid = 0\nadmin = mant\n", 21);
	c = ctl_new(base, sock, st_path, on_change, NULL, err, sizeof(err));
	assert_null(c);
	snprintf(needle, sizeof(needle), "%s:2: bad admin 'mant'", st_path);
	if (!strstr(err, needle) || !strstr(err, "refusing to start"))
		fail_msg("'%s' does not say '%s' and refusing to start", err, needle);
	assert_int_equal(access(sock, F_OK), -1); /* nothing left behind */

	write_file(st_path, "admin = maint\nset_at = soon\n", 28);
	c = ctl_new(base, sock, st_path, on_change, NULL, err, sizeof(err));
	if (!c)
		fail_msg("ctl_new: %s", err);
	assert_int_equal(ctl_get(c)->admin, CTL_ADMIN_MAINT);
	ctl_status(c, 1000, err, sizeof(err));
	assert_non_null(strstr(err, "\"saved\":false"));
	ctl_free(c);
	event_base_free(base);
}

/* Issue 11 #3: prev is forgotten (and saved) once `ready` has been said for
 * the whole window, not before. */
static void test_ready_said_once(void **state)
{
	struct event_base *base = event_base_new();
	char sock[256], st_path[256], err[512] = "";
	struct ctl_override o;
	struct ctl *c;

	(void)state;
	tmp_path(sock, sizeof(sock), "said.sock");
	tmp_path(st_path, sizeof(st_path), "said.state");
	write_file(st_path, "admin = ready\nprev = drain\n", 27);
	c = ctl_new(base, sock, st_path, on_change, NULL, err, sizeof(err));
	if (!c)
		fail_msg("ctl_new: %s", err);
	assert_int_equal(ctl_get(c)->prev_admin, CTL_ADMIN_DRAIN);
	ctl_answered(c, 5000000, 1000);          /* first said */
	ctl_answered(c, 5999999, 1000);          /* inside the window */
	assert_int_equal(ctl_get(c)->prev_admin, CTL_ADMIN_DRAIN);
	ctl_free(c);                             /* a stop inside the window */
	assert_int_equal(ctl_state_load(st_path, &o, err, sizeof(err)), 0);
	assert_int_equal(o.prev_admin, CTL_ADMIN_DRAIN);

	c = ctl_new(base, sock, st_path, on_change, NULL, err, sizeof(err));
	if (!c)
		fail_msg("ctl_new again: %s", err);
	ctl_answered(c, 7000000, 1000);          /* a whole window again */
	ctl_answered(c, 7500000, 1000);
	assert_int_equal(ctl_get(c)->prev_admin, CTL_ADMIN_DRAIN);
	ctl_answered(c, 8000000, 1000);
	assert_int_equal(ctl_get(c)->prev_admin, CTL_ADMIN_READY);
	assert_int_equal(ctl_get(c)->admin, CTL_ADMIN_READY);
	ctl_free(c);                             /* the write is finished by now */
	assert_int_equal(ctl_state_load(st_path, &o, err, sizeof(err)), 0);
	assert_int_equal(o.prev_admin, CTL_ADMIN_READY);
	assert_int_equal(o.admin, CTL_ADMIN_READY);

	/* Nothing owed under a drain: the count starts when ready does. */
	write_file(st_path, "admin = drain\n", 14);
	c = ctl_new(base, sock, st_path, on_change, NULL, err, sizeof(err));
	if (!c)
		fail_msg("ctl_new drain: %s", err);
	ctl_answered(c, 1000000, 1000);
	ctl_answered(c, 9000000, 1000);
	assert_int_equal(ctl_get(c)->admin, CTL_ADMIN_DRAIN);
	assert_int_equal(ctl_get(c)->prev_admin, CTL_ADMIN_READY);
	ctl_free(c);
	event_base_free(base);
}

/* ---- the writer thread */

static uint64_t writer_gen;
static int writer_rc, writer_calls;

static void on_written(void *arg, uint64_t gen, int rc, const char *err)
{
	(void)arg;
	(void)err;
	writer_gen = gen;
	writer_rc = rc;
	writer_calls++;
}

static void test_writer_latest_wins(void **state)
{
	struct event_base *base = event_base_new();
	char path[256], err[512] = "";
	struct ctl_override o = { .admin = CTL_ADMIN_DRAIN }, out;
	struct ctl_writer *w;
	uint64_t gen = 0;

	(void)state;
	tmp_path(path, sizeof(path), "writer.state");
	w = ctl_writer_new(base, path, on_written, NULL, err, sizeof(err));
	if (!w)
		fail_msg("ctl_writer_new: %s", err);
	for (int i = 0; i < 50; i++) {
		o.admin = (enum ctl_admin)(i % CTL_ADMIN_COUNT);
		o.uid = (uid_t)i;
		gen = ctl_writer_put(w, &o);
	}
	assert_int_equal(gen, 50);
	ctl_writer_flush(w);
	assert_int_equal(writer_gen, 50);
	assert_int_equal(writer_rc, 0);
	assert_in_range(writer_calls, 1, 50);
	assert_int_equal(ctl_state_load(path, &out, err, sizeof(err)), 0);
	assert_int_equal(out.uid, 49);
	assert_int_equal(out.admin, 49 % CTL_ADMIN_COUNT);
	/* The loop hears of it too (the pipe), without a second report. */
	writer_calls = 0;
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(writer_calls, 0);

	/* Freeing writes what is pending. */
	o.uid = 777;
	ctl_writer_put(w, &o);
	ctl_writer_free(w);
	assert_int_equal(ctl_state_load(path, &out, err, sizeof(err)), 0);
	assert_int_equal(out.uid, 777);

	/* A write that fails says so, naming the path. */
	tmp_path(path, sizeof(path), "no-such-dir/writer.state");
	w = ctl_writer_new(base, path, on_written, NULL, err, sizeof(err));
	assert_non_null(w);
	ctl_writer_put(w, &o);
	ctl_writer_flush(w);
	assert_int_equal(writer_rc, -1);
	ctl_writer_free(w);
	event_base_free(base);
}

int main(void)
{
	assert_non_null(mkdtemp(tmpdir));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_commands),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_ramp_weight),
		cmocka_unit_test(test_state_round_trip),
		cmocka_unit_test(test_state_corrupt),
		cmocka_unit_test(test_state_save_errors),
		cmocka_unit_test(test_status_json),
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_new_errors),
		cmocka_unit_test(test_reload_handoff),
		cmocka_unit_test(test_restore_refuses_or_keeps),
		cmocka_unit_test(test_ready_said_once),
		cmocka_unit_test(test_writer_latest_wins),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	DIR *d = opendir(tmpdir);

	for (struct dirent *e; d && (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(tmpdir);
	return rc;
}
