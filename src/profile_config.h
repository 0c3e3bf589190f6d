/* profile_config.h - profiles as the settings define them: the
 * [profile NAME] sections of the config file, --profile NAME[:PORT], and the
 * effective list they combine into (options_validate() calls it).
 *
 * Messages are written with snprintf into err (no newline); the options
 * module adds where the setting came from. */
#ifndef HAPPAC_PROFILE_CONFIG_H
#define HAPPAC_PROFILE_CONFIG_H

#include "profile.h"

#include <stddef.h>

/* The one rule for a profile name, wherever it comes from (--profile, a
 * [profile NAME] section): 1 to PROFILE_NAME_MAX-1 bytes of [A-Za-z0-9_-].
 * The name ends up in log lines, /status JSON and Prometheus labels. True
 * when the n bytes at name qualify. */
int profile_config_name_valid(const char *name, size_t n);

/* One "key = value" line of a [profile NAME] section. 0, or -1 + err. */
int profile_config_key(struct profile *p, const char *key, const char *value,
		       char *err, size_t errlen);

/* "[profile NAME]": the index in defs[0..*count-1] of NAME's definition,
 * added (from the built-in of that name, if any) when new; -1 + err on a
 * bad name or when PROFILE_MAX are defined already. */
int profile_config_section(struct profile *defs, int *count, const char *name,
			   char *err, size_t errlen);

/* What the effective profiles are made of. */
struct profile_config_sources {
	const char *endpoint;          /* -k: profile [0] */
	char *const *uses;             /* --profile NAME[:PORT], checked */
	int nuses;
	const struct profile *defs;    /* [profile NAME] sections */
	int ndefs;
	int agent_port, http_port;     /* happac's own ports (http 0 = off) */
};

/* The effective profiles into out[PROFILE_MAX]: [0] from -k, then each
 * --profile, then each section, each name once; ports and lag bounds
 * checked. Returns the count, or -1 + err. */
int profile_config_assemble(const struct profile_config_sources *src,
			    struct profile *out, char *err, size_t errlen);

#endif
