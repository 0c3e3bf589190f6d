/* ctl_request.c - parse a control request line (ctl_request.h). */
#include "ctl_request.h"

#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ctl_request_cmd_names[CTL_CMD_COUNT] = {
	[CTL_CMD_DRAIN] = "drain",
	[CTL_CMD_MAINT] = "maint",
	[CTL_CMD_READY] = "ready",
	[CTL_CMD_STATUS] = "status",
	[CTL_CMD_PROBE] = "probe",
	[CTL_CMD_STOPPING] = "stopping",
};

static int ctl_parse_ramp(const char *value, struct ctl_request *req, char *err,
			  size_t errlen)
{
	long ms;

	if (req->ramp_ms) {
		snprintf(err, errlen, "--ramp given twice");
		return -1;
	}
	if (!value || !*value) {
		snprintf(err, errlen, "--ramp needs a duration (e.g. 60s, 2m)");
		return -1;
	}
	if (options_parse_duration(value, &ms) != 0) {
		snprintf(err, errlen, "--ramp: invalid duration '%s' (expected e.g. 30s, 1.5s, 2m)",
			 value);
		return -1;
	}
	if (ms < CTL_RAMP_MIN_MS || ms > CTL_RAMP_MAX_MS) {
		snprintf(err, errlen, "--ramp: '%s' is out of range (1s-24h)", value);
		return -1;
	}
	req->ramp_ms = (int)ms;
	return 0;
}

int ctl_request_parse(const char *line, size_t len, struct ctl_request *req,
		      char *err, size_t errlen)
{
	char buf[CTL_LINE_MAX], *save = NULL, *tok[8];
	int ntok = 0, cmd;

	memset(req, 0, sizeof(*req));
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	if (len >= sizeof(buf)) {
		snprintf(err, errlen, "request too long (max %d bytes)", CTL_LINE_MAX - 1);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		/* Printable ASCII only: the reply may quote the request back. */
		if ((ch < 0x20 && ch != '\t') || ch >= 0x7f) {
			snprintf(err, errlen, "request contains a byte that is not printable "
				 "ASCII (0x%02x)", ch);
			return -1;
		}
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (ntok == (int)(sizeof(tok) / sizeof(tok[0]))) {
			snprintf(err, errlen, "too many words in the request");
			return -1;
		}
		tok[ntok++] = t;
	}
	if (ntok == 0) {
		snprintf(err, errlen, "empty request (expected drain, maint, ready "
			 "[--ramp DURATION], status, probe or stopping)");
		return -1;
	}
	for (cmd = 0; cmd < CTL_CMD_COUNT; cmd++)
		if (!strcmp(tok[0], ctl_request_cmd_names[cmd]))
			break;
	if (cmd == CTL_CMD_COUNT) {
		snprintf(err, errlen, "unknown command '%.40s' (expected drain, maint, "
			 "ready [--ramp DURATION], status, probe or stopping)", tok[0]);
		return -1;
	}
	req->cmd = (enum ctl_cmd)cmd;
	for (int i = 1; i < ntok; i++) {
		if (req->cmd != CTL_CMD_READY) {
			snprintf(err, errlen, "'%s' takes no arguments (got '%.40s')",
				 ctl_request_cmd_names[cmd], tok[i]);
			return -1;
		}
		if (!strcmp(tok[i], "--ramp")) {
			if (ctl_parse_ramp(i + 1 < ntok ? tok[i + 1] : NULL, req, err,
					   errlen) != 0)
				return -1;
			i++;
		} else if (!strncmp(tok[i], "--ramp=", 7)) {
			if (ctl_parse_ramp(tok[i] + 7, req, err, errlen) != 0)
				return -1;
		} else {
			snprintf(err, errlen, "ready: unknown argument '%.40s' (expected "
				 "--ramp DURATION)", tok[i]);
			return -1;
		}
	}
	return 0;
}
