/* recipe_systemd.c - `happac recipe systemd`: the unit and the env file for
 * happac run with the given options.
 *
 * The options are read by options_load(), exactly as the daemon reads them,
 * so whatever the recipe accepts, happac accepts, and with the same message
 * otherwise. The env file keeps the predecessor's variables, which the
 * unit's ExecStart passes as the predecessor's flags. */
#include "recipe_util.h"

#include "ctl.h"
#include "options.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define RECIPE_ENV_FILE "/etc/haproxy/happac.env"
#define RECIPE_MAX_SETTINGS 128
/* The unit's StateDirectory=happac; the socket is `happac ctl`'s default. */
#define RECIPE_STATE_FILE "/var/lib/happac/state"

/* The predecessor's env file variables, and the options they feed through
 * ExecStart, in ExecStart's order. */
static const struct {
	const char *option;
	const char *var;
	const char *flag;
	const char *comment;
} recipe_classic[] = {
	{ "patroni-host", "PATRONI_HOST", "-h",
	  "Host of the Patroni REST API and of PgBouncer (-h)." },
	{ "port", "AGENT_PORT", "-p",
	  "Port happac answers HAProxy's agent-check on (-p; HAProxy: agent-port)." },
	{ "pg-is-ready-port", "PGISREADY_PORT", "-r", "Port of the local PgBouncer (-r)." },
	{ "pg-is-ready-path", "PGISREADY_PATH", "-x",
	  "Accepted and ignored (-x): happac never runs pg_isready." },
	{ "patroni-port", "PATRONI_API_PORT", "-o", "Port of the Patroni REST API (-o)." },
	{ "patroni-healthcheck", "PATRONI_ENDPOINT", "-k",
	  "Patroni endpoint that must answer 200 (-k): primary, replica, read-only, ..." },
};

#define RECIPE_CLASSIC_COUNT (sizeof(recipe_classic) / sizeof(recipe_classic[0]))

struct recipe_setting {
	char name[48];
	char value[512];
};

struct recipe_settings {
	struct recipe_setting *items;
	int count;
	int overflow;
};

static void recipe_settings_add(void *arg, const char *name, const char *value)
{
	struct recipe_settings *s = arg;

	if (s->count >= RECIPE_MAX_SETTINGS) {
		s->overflow = 1;
		return;
	}
	snprintf(s->items[s->count].name, sizeof(s->items[0].name), "%s", name);
	/* NULL: an empty list, which the env file writes as unset (""). */
	snprintf(s->items[s->count].value, sizeof(s->items[0].value), "%s", value ? value : "");
	s->count++;
}

/* The values of one option; a repeatable option has several, an unset one a
 * single "". Returns how many, with the first in *first. */
static int recipe_settings_values(const struct recipe_settings *s, const char *name,
				  const char **first)
{
	int n = 0;

	*first = "";
	for (int i = 0; i < s->count; i++)
		if (strcmp(s->items[i].name, name) == 0 && n++ == 0)
			*first = s->items[i].value;
	return n;
}

static int recipe_settings_same(const struct recipe_settings *a,
				const struct recipe_settings *b, const char *name)
{
	int ia = 0, ib = 0;

	for (;;) {
		while (ia < a->count && strcmp(a->items[ia].name, name) != 0)
			ia++;
		while (ib < b->count && strcmp(b->items[ib].name, name) != 0)
			ib++;
		if (ia >= a->count || ib >= b->count)
			return ia >= a->count && ib >= b->count;
		if (strcmp(a->items[ia].value, b->items[ib].value) != 0)
			return 0;
		ia++;
		ib++;
	}
}

static int recipe_is_classic(const char *name)
{
	for (size_t i = 0; i < RECIPE_CLASSIC_COUNT; i++)
		if (strcmp(recipe_classic[i].option, name) == 0)
			return 1;
	return 0;
}

/* NAME="value" as systemd's EnvironmentFile= reads it: inside double quotes
 * a backslash escapes '"', '\', '`' and '$' (the shell's set). */
static void recipe_env_line(const char *var, const char *value, FILE *out)
{
	fprintf(out, "%s=\"", var);
	for (; *value; value++) {
		if (*value == '"' || *value == '\\' || *value == '$' || *value == '`')
			fputc('\\', out);
		fputc(*value, out);
	}
	fputs("\"\n", out);
}

static void recipe_env_name(const char *option, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "HAPPAC_");

	for (; *option && n + 1 < len; option++)
		buf[n++] = *option == '-' ? '_' : (char)toupper((unsigned char)*option);
	buf[n] = '\0';
}

/* Replay the env file the way happac will read it, on top of the defaults
 * and the -c file, and compare with the options asked for: whatever the
 * variables cannot say (several --listen addresses, an emptied list) is
 * reported instead of silently lost. */
static int recipe_systemd_replay(const struct options *o, const struct recipe_settings *eff,
				 const struct recipe_setting *const *vars, int nvars,
				 char *err, size_t errlen)
{
	struct options sim;
	struct recipe_settings got = { 0 };
	char msg[512];
	int rc = -1;

	options_init(&sim);
	got.items = calloc(RECIPE_MAX_SETTINGS, sizeof(*got.items));
	if (!got.items) {
		recipe_util_errf(err, errlen, "out of memory");
		goto out;
	}
	if (o->config_path && *o->config_path &&
	    options_load_file(&sim, o->config_path, err, errlen) != 0)
		goto out;
	for (int i = 0; i < nvars; i++)
		if (options_set(&sim, vars[i]->name, vars[i]->value, msg, sizeof(msg)) != 0) {
			recipe_util_errf(err, errlen,
					 "--%s: cannot be written as an environment variable (%s): put it "
					 "in a config file and pass -c FILE", vars[i]->name, msg);
			goto out;
		}
	options_print_each(&sim, recipe_settings_add, &got);
	for (int i = 0; i < eff->count; i++)
		if (!recipe_settings_same(eff, &got, eff->items[i].name)) {
			recipe_util_errf(err, errlen,
					 "--%s: these values cannot be one environment variable: put them in "
					 "a config file (one '%s = ...' line each) and pass -c FILE",
					 eff->items[i].name, eff->items[i].name);
			goto out;
		}
	rc = 0;
out:
	options_free(&sim);
	free(got.items);
	return rc;
}

/* The env file: the classic variables always (ExecStart needs them), every
 * other setting only where the given options differ from what happac would
 * get anyway (defaults, or the -c file, which stays the place to change
 * them: a variable here would shadow the file on every reload). */
static int recipe_systemd_env(const struct options *o, const struct options *base_opts,
			      const struct recipe_settings *eff,
			      const struct recipe_settings *base, FILE *out, char *err,
			      size_t errlen)
{
	const struct recipe_setting *vars[RECIPE_MAX_SETTINGS];
	int nvars = 0, extra = 0;

	/* Checked on the raw value: the rendered one leaves the password out,
	 * so a conninfo that differs only by it would look unchanged. A
	 * password that comes from the -c file stays there. */
	if (o->pg_conninfo_has_password &&
	    (!base_opts->pg_conninfo || strcmp(o->pg_conninfo, base_opts->pg_conninfo) != 0)) {
		recipe_util_errf(err, errlen,
				 "--pg-conninfo holds a password: the env file is no place for it; "
				 "put it in a passfile (passfile=...) instead");
		return -1;
	}

	fputs("# " RECIPE_ENV_FILE " - settings for happac.service (EnvironmentFile=),\n"
	      "# written by `happac recipe systemd`. The same variables as the\n"
	      "# predecessor's file, so an existing one keeps working. An empty value must\n"
	      "# stay \"\" (see -x).\n\n", out);
	for (size_t i = 0; i < RECIPE_CLASSIC_COUNT; i++) {
		const char *v;

		recipe_settings_values(eff, recipe_classic[i].option, &v);
		fprintf(out, "# %s\n", recipe_classic[i].comment);
		recipe_env_line(recipe_classic[i].var, v, out);
	}
	for (int i = 0; i < eff->count; i++) {
		const struct recipe_setting *s = &eff->items[i];
		char var[64];

		if (i > 0 && !strcmp(s->name, eff->items[i - 1].name))
			continue; /* a list's further values: the replay reports them */
		if (recipe_is_classic(s->name)) {
			vars[nvars++] = s;
			continue;
		}
		if (recipe_settings_same(eff, base, s->name))
			continue;
		/* A derived bound stays derived: pinning today's value would
		 * stop it following --interval and --timeout. */
		if (!strcmp(s->name, "stale-after") && o->stale_after_ms == 0)
			continue;
		if (!extra++)
			fputs("\n# Further settings (HAPPAC_<OPTION>: the long option name in "
			      "upper\n# case, '-' as '_'). Options on ExecStart's command line "
			      "win over them.\n",
			      out);
		recipe_env_name(s->name, var, sizeof(var));
		recipe_env_line(var, s->value, out);
		vars[nvars++] = s;
	}
	if (!extra)
		fputs("\n# Options without a variable above can be set as HAPPAC_<OPTION> "
		      "(the long\n"
		      "# option name in upper case, '-' as '_'), e.g.:\n"
		      "#HAPPAC_INTERVAL=\"1s\"\n"
		      "#HAPPAC_HTTP_LISTEN=\"127.0.0.1:8405\"\n"
		      "# or put them in a config file and reload it with `systemctl reload happac`:\n"
		      "#HAPPAC_CONFIG=\"/etc/haproxy/happac.conf\"\n",
		      out);
	fputs("\n"
	      "# Operator overrides (`happac ctl drain|maint|ready`): the unit turns them on\n"
	      "# with the control socket /run/happac/happac.sock (root and group happac may\n"
	      "# use it) and the state file /var/lib/happac/state. Another path here, or \"\"\n"
	      "# to turn one off:\n"
	      "#HAPPAC_CONTROL_SOCKET=\"/run/happac/happac.sock\"\n"
	      "#HAPPAC_STATE_FILE=\"/var/lib/happac/state\"\n", out);
	return recipe_systemd_replay(o, eff, vars, nvars, err, errlen);
}

/* Kept in step with systemd/happac.service (tests/recipe compares them). */
static void recipe_systemd_unit(const struct options *o, const char *bin, FILE *out)
{
	int low_port = o->port < 1024 || (o->http_listen && o->http_port < 1024);

	fputs("# happac - HAProxy agent-check for Patroni + PgBouncer nodes, written by\n"
	      "# `happac recipe systemd`. Settings: " RECIPE_ENV_FILE ", the file the\n"
	      "# predecessor's unit used: its variables work unchanged.\n"
	      "#   systemctl daemon-reload && systemctl enable --now happac\n"
	      "#   systemctl status happac      # STATUS= shows the current verdict\n"
	      "#   systemctl reload happac      # SIGHUP: re-read the -c/--config file\n"
	      "[Unit]\n"
	      "Description=HAProxy agent check for Patroni/PgBouncer (happac)\n"
	      "Documentation=man:happac(8)\n"
	      "After=network-online.target patroni.service pgbouncer.service\n"
	      "Wants=network-online.target\n"
	      "\n"
	      "[Service]\n"
	      "# READY=1 comes after the first probe round, when the agent port answers\n"
	      "# with a real verdict; STATUS= follows every verdict change. happac speaks\n"
	      "# the notify protocol itself (no libsystemd).\n"
	      "Type=notify\n"
	      "NotifyAccess=main\n"
	      "User=haproxy\n"
	      "# `happac ctl` (drain, maint, ready) is for root and the members of this\n"
	      "# group: the runtime directory is 0750 haproxy:happac, the socket in it 0660.\n"
	      "Group=happac\n"
	      "# Operator overrides are on: the control socket and the state file (which\n"
	      "# keeps an override across restarts and reboots). HAPPAC_CONTROL_SOCKET and\n"
	      "# HAPPAC_STATE_FILE in the env file win over these (\"\" turns them off).\n"
	      "Environment=HAPPAC_CONTROL_SOCKET=" CTL_DEFAULT_SOCKET
	      " HAPPAC_STATE_FILE=" RECIPE_STATE_FILE "\n"
	      "RuntimeDirectory=happac\n"
	      "RuntimeDirectoryMode=0750\n"
	      "StateDirectory=happac\n"
	      "StateDirectoryMode=0750\n"
	      "EnvironmentFile=" RECIPE_ENV_FILE "\n"
	      "# \"${VAR}\" (with braces) is always exactly one argument, also when empty:\n"
	      "# -x ${PGISREADY_PATH} with PGISREADY_PATH=\"\" passes -x \"\" (accepted and\n"
	      "# ignored, as before). HAPPAC_<OPTION> variables in the same file reach happac\n"
	      "# too; options given here on the command line take precedence over them.\n",
	      out);
	fprintf(out, "ExecStart=%s", bin);
	for (size_t i = 0; i < RECIPE_CLASSIC_COUNT; i++)
		fprintf(out, " %s ${%s}", recipe_classic[i].flag, recipe_classic[i].var);
	fputs("\nExecReload=/bin/kill -HUP $MAINPID\n"
	      "# The watchdog proves the event loop turns: WATCHDOG=1 comes from a timer\n"
	      "# in that loop every 5s; a wedged loop gets killed (SIGABRT) and restarted.\n"
	      "WatchdogSec=10s\n"
	      "Restart=on-failure\n"
	      "RestartSec=1s\n"
	      "# A bad command line (exit 2) will not get better by retrying.\n"
	      "RestartPreventExitStatus=2\n"
	      "TimeoutStopSec=10s\n"
	      "\n"
	      "# Hardening: happac reads its files, connects to Patroni and PgBouncer over\n"
	      "# TCP, listens on TCP and on its control socket, writes its state file and\n"
	      "# stderr (journald). Nothing else. MemoryDenyWriteExecute=yes stays: libcurl\n"
	      "# and libpq, loaded with dlopen() for HTTPS and --pg-conninfo, need no\n"
	      "# writable+executable memory.\n"
	      "NoNewPrivileges=yes\n", out);
	if (low_port)
		fputs("# A port below 1024 needs this one capability, and only this one.\n"
		      "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
		      "AmbientCapabilities=CAP_NET_BIND_SERVICE\n", out);
	else
		fputs("CapabilityBoundingSet=\n"
		      "AmbientCapabilities=\n", out);
	fputs("ProtectSystem=strict\n"
	      "ProtectHome=yes\n"
	      "PrivateTmp=yes\n"
	      "PrivateDevices=yes\n"
	      "ProtectKernelTunables=yes\n"
	      "ProtectKernelModules=yes\n"
	      "ProtectKernelLogs=yes\n"
	      "ProtectControlGroups=yes\n"
	      "ProtectClock=yes\n"
	      "ProtectHostname=yes\n"
	      "ProtectProc=invisible\n"
	      "PrivateMounts=yes\n"
	      "# AF_UNIX for the notify socket; no netlink, packet or other families.\n"
	      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"
	      "RestrictNamespaces=yes\n"
	      "RestrictRealtime=yes\n"
	      "RestrictSUIDSGID=yes\n"
	      "LockPersonality=yes\n"
	      "MemoryDenyWriteExecute=yes\n"
	      "RemoveIPC=yes\n"
	      "UMask=0077\n"
	      "SystemCallArchitectures=native\n"
	      "SystemCallFilter=@system-service\n"
	      "SystemCallFilter=~@privileged @resources\n"
	      "SystemCallErrorNumber=EPERM\n"
	      "\n"
	      "[Install]\n"
	      "WantedBy=multi-user.target\n", out);
}

static void recipe_systemd_usage(FILE *out)
{
	fprintf(out,
		"Usage: happac recipe systemd [--unit|--env] [--bin PATH] -h HOST -r PORT [OPTION]...\n"
		"Print the systemd unit and its env file (" RECIPE_ENV_FILE ") for\n"
		"happac run with these options. The options are read as happac reads them\n"
		"(HAPPAC_* environment and the -c file included; see happac --help).\n\n"
		"  --unit      Print only the unit (e.g. > /etc/systemd/system/happac.service)\n"
		"  --env       Print only the env file (e.g. > " RECIPE_ENV_FILE ")\n"
		"  --bin PATH  happac in ExecStart. Default: %s\n"
		"  --help      Print this help and exit\n\n"
		"Example: happac recipe systemd --env -h 127.0.0.1 -r 6432 > " RECIPE_ENV_FILE "\n",
		RECIPE_DEFAULT_BIN);
}

/* Take the recipe's own flags out of argv; the rest are happac options.
 * Returns -1 to go on, or an exit status. */
static int recipe_systemd_flags(int argc, char **argv, char **rest, int *nrest, int *unit,
				int *env, char *bin, size_t binlen, FILE *out)
{
	*nrest = 0;
	rest[(*nrest)++] = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help")) {
			recipe_systemd_usage(out);
			return 0;
		} else if (!strcmp(a, "--unit")) {
			*unit = 1;
		} else if (!strcmp(a, "--env")) {
			*env = 1;
		} else if (!strcmp(a, "--bin") || !strncmp(a, "--bin=", 6)) {
			const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);

			if (!v) {
				fprintf(stderr,
					"happac recipe systemd: option '--bin' needs a value\n");
				return RECIPE_EXIT_USAGE;
			}
			if (!recipe_util_valid_bin(v)) {
				fprintf(stderr,
					"happac recipe systemd: --bin: '%s' is not an absolute "
					"path without spaces or quotes\n",
					v);
				return RECIPE_EXIT_USAGE;
			}
			snprintf(bin, binlen, "%s", v);
		} else {
			rest[(*nrest)++] = argv[i];
		}
	}
	rest[*nrest] = NULL;
	return -1;
}

/* The unit, the env file, or both (the unit first, each under a header).
 * Returns the exit status. */
static int recipe_systemd_write(const struct options *o, const struct options *base,
				const struct recipe_settings *eff,
				const struct recipe_settings *def, int unit, int env,
				const char *bin, FILE *out)
{
	/* Rendered first into memory: an error must not leave half a file. */
	char *text = NULL, err[512];
	size_t len = 0;
	FILE *mem;
	int bad;

	if (!env) {
		recipe_systemd_unit(o, bin, out);
		return 0;
	}
	mem = open_memstream(&text, &len);
	if (!mem) {
		fprintf(stderr, "happac recipe systemd: out of memory\n");
		return 1;
	}
	bad = recipe_systemd_env(o, base, eff, def, mem, err, sizeof(err));
	fclose(mem);
	if (bad) {
		fprintf(stderr, "happac recipe systemd: %s\n", err);
		free(text);
		return RECIPE_EXIT_USAGE;
	}
	if (unit) {
		fputs("# ==> /etc/systemd/system/happac.service <==\n", out);
		recipe_systemd_unit(o, bin, out);
		fputs("\n# ==> " RECIPE_ENV_FILE " <==\n", out);
	}
	fwrite(text, 1, len, out);
	free(text);
	return 0;
}

int recipe_systemd_main(int argc, char **argv, FILE *out)
{
	struct options o, base;
	struct recipe_settings eff = { 0 }, def = { 0 };
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	char bin[RECIPE_PATH_MAX], err[512];
	int nrest, unit = 0, env = 0, rc = RECIPE_EXIT_USAGE, loaded = 0;
	FILE *devnull;
	enum options_result r;

	snprintf(bin, sizeof(bin), "%s", RECIPE_DEFAULT_BIN);
	memset(&base, 0, sizeof(base));
	eff.items = calloc(RECIPE_MAX_SETTINGS, sizeof(*eff.items));
	def.items = calloc(RECIPE_MAX_SETTINGS, sizeof(*def.items));
	if (!rest || !eff.items || !def.items) {
		fprintf(stderr, "happac recipe systemd: out of memory\n");
		rc = 1;
		goto out;
	}
	rc = recipe_systemd_flags(argc, argv, rest, &nrest, &unit, &env, bin, sizeof(bin),
				  out);
	if (rc >= 0)
		goto out;
	rc = RECIPE_EXIT_USAGE;
	devnull = fopen("/dev/null", "w");
	r = options_load(&o, nrest, rest, devnull ? devnull : stderr, err, sizeof(err));
	if (devnull)
		fclose(devnull);
	if (r != OPTIONS_OK) {
		if (r == OPTIONS_ERROR)
			fprintf(stderr, "happac recipe systemd: %s\n", err);
		else
			fprintf(stderr, "happac recipe systemd: --version is not a setting\n");
		goto out;
	}
	loaded = 1;
	if (o.check_config) {
		fprintf(stderr, "happac recipe systemd: -t/--check-config is not a setting\n");
		goto out;
	}
	/* What happac gets without any variable: defaults, then the -c file. */
	options_init(&base);
	if (o.config_path && *o.config_path &&
	    options_load_file(&base, o.config_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "happac recipe systemd: %s\n", err);
		goto out;
	}
	options_print_each(&o, recipe_settings_add, &eff);
	options_print_each(&base, recipe_settings_add, &def);
	if (eff.overflow || def.overflow) {
		fprintf(stderr, "happac recipe systemd: internal error: more than %d settings\n",
			RECIPE_MAX_SETTINGS);
		rc = 1;
		goto out;
	}
	if (!unit && !env)
		unit = env = 1;
	rc = recipe_systemd_write(&o, &base, &eff, &def, unit, env, bin, out);
out:
	if (loaded)
		options_free(&o);
	options_free(&base);
	free(eff.items);
	free(def.items);
	free(rest);
	return rc;
}

