/* fuzz_options_file.c - the config-file reader (options_load_file): the input
 * is the file's content, served from a memfd so nothing touches the disk.
 * Properties: no memory error or leak; an error is one non-empty line that
 * starts with the file name; a file that loads and validates yields
 * settings inside the documented bounds that survive a dump/load round trip. */
#include "fuzz_options_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct options o;
	char err[512];

	if (fd < 0) {
		fd = memfd_create("happac-fuzz.conf", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	options_init(&o);
	err[0] = '\0';
	if (options_load_file(&o, path, err, sizeof(err)) != 0) {
		fuzz_check_err(err, sizeof(err));
		FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0,
			   "file error does not name the file: %s", err);
	} else if (options_validate(&o, err, sizeof(err)) == 0) {
		fuzz_check_settings(&o);
	} else {
		fuzz_check_err(err, sizeof(err));
	}
	options_free(&o);
	return 0;
}
