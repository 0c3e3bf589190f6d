/* fuzz_options.c - the option parser.
 *
 * The input is used twice:
 *  1. split on NUL into argv (after "happac") for the command-line parser
 *     (options_load, or options_parse_argv before the config-file work);
 *  2. read as NUL-separated name, value pairs for options_set() on top of
 *     the defaults, then options_validate().
 * Properties: no memory error or leak; an error is one non-empty line (the
 * header's contract: main prints it as one log line); a successful parse
 * yields settings inside the documented bounds, and its options_print_dump()
 * loads back to the same settings. */
#include "fuzz_options_check.h"

#include <unistd.h>

#define FUZZ_MAX_ARGS 64
#define FUZZ_ERR_SIZE 512 /* what main.c passes */

static FILE *fuzz_devnull;

static void fuzz_argv(const uint8_t *data, size_t size)
{
	char *argv[FUZZ_MAX_ARGS + 2];
	int argc = 0;
	struct fuzz_in in = { data, size };
	struct options o;
	char err[FUZZ_ERR_SIZE];
	enum options_result r;

	argv[argc++] = strdup("happac");
	while (in.n && argc <= FUZZ_MAX_ARGS)
		argv[argc++] = fuzz_str(&in, 4096);
	argv[argc] = NULL;
	memset(err, 0x5a, sizeof(err));
	err[sizeof(err) - 1] = '\0';
#ifdef HAPPAC_FUZZ_OPTIONS_LOAD
	r = options_load(&o, argc, argv, fuzz_devnull, err, sizeof(err));
#else
	options_init(&o);
	r = options_parse_argv(&o, argc, argv, fuzz_devnull, err, sizeof(err));
#endif
	switch (r) {
	case OPTIONS_OK:
		fuzz_check_settings(&o);
		break;
	case OPTIONS_ERROR:
		fuzz_check_err(err, sizeof(err));
		break;
	case OPTIONS_EXIT_HELP:
	case OPTIONS_EXIT_VERSION:
		break;
	default:
		FUZZ_CHECK(0, "options result %d", (int)r);
	}
	options_free(&o);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
}

static void fuzz_set(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct options o;
	char err[FUZZ_ERR_SIZE];
	int pairs = 0;

	options_init(&o);
	while (in.n && pairs++ < FUZZ_MAX_ARGS) {
		char *name = fuzz_str(&in, 256);
		char *value = fuzz_str(&in, 4096);

		err[0] = '\0';
		if (options_set(&o, name, value, err, sizeof(err)) != 0)
			fuzz_check_err(err, sizeof(err));
		free(name);
		free(value);
	}
	err[0] = '\0';
	if (options_validate(&o, err, sizeof(err)) == 0)
		fuzz_check_settings(&o);
	else
		fuzz_check_err(err, sizeof(err));
	options_free(&o);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_devnull = fopen("/dev/null", "w");
	if (!fuzz_devnull)
		abort();
	/* The parser also reads HAPPAC_* and HAPPAC_CONFIG: start clean. */
	for (char **e = environ; e && *e;) {
		if (strncmp(*e, "HAPPAC_", 7) == 0) {
			char name[256];
			size_t n = strcspn(*e, "=");

			snprintf(name, sizeof(name), "%.*s", (int)n, *e);
			unsetenv(name);
			continue; /* environ shifted down */
		}
		e++;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_argv(data, size);
	fuzz_set(data, size);
	return 0;
}
