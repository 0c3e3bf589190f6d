/* Unit tests for metrics.c: every label value escaped as the exposition
 * format wants it (names come from the configuration). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static void test_label_escaping(void **state)
{
	char buf[64];

	(void)state;
	metrics_label(buf, sizeof(buf), "primary");
	assert_string_equal(buf, "primary");
	metrics_label(buf, sizeof(buf), "a\"b");
	assert_string_equal(buf, "a\\\"b");
	metrics_label(buf, sizeof(buf), "back\\slash");
	assert_string_equal(buf, "back\\\\slash");
	metrics_label(buf, sizeof(buf), "two\nlines");
	assert_string_equal(buf, "two\\nlines");
	/* Never cut inside an escape: "ab" and then no room for \" . */
	metrics_label(buf, 4, "ab\"c");
	assert_string_equal(buf, "ab");
	metrics_label(buf, 1, "abc");
	assert_string_equal(buf, "");
}

/* A name with a quote in it (refused by the options today, but the
 * renderer does not rely on that) stays inside its label. */
static void test_render_escapes_profile_and_probe_names(void **state)
{
	struct metrics *m = metrics_new();
	struct metrics_view v;
	struct evbuffer *out = evbuffer_new();
	char *text;
	size_t n;

	(void)state;
	assert_non_null(m);
	memset(&v, 0, sizeof(v));
	v.profile_count = 2;
	v.profile_names[0] = "primary";
	v.profile_names[1] = "x\"} 1\nevil{a=\"";
	v.profile_up[1] = 1;
	v.probe_count = 1;
	v.probe_names[0] = "pat\"roni";
	metrics_probe_observe(m, 0, PROBE_OK, 1000);
	metrics_render(m, &v, out);
	n = evbuffer_get_length(out);
	text = calloc(1, n + 1);
	assert_non_null(text);
	evbuffer_copyout(out, text, n);
	assert_non_null(strstr(text, "happac_profile_up{profile=\"primary\"} 0\n"));
	assert_non_null(strstr(text, "happac_profile_up{profile=\"x\\\"} 1\\nevil{a=\\\"\"} 1\n"));
	assert_null(strstr(text, "\nevil{"));
	assert_non_null(strstr(text, "happac_probe_in_flight{probe=\"pat\\\"roni\"} 0\n"));
	assert_non_null(
		strstr(text, "happac_probe_duration_seconds_count{probe=\"pat\\\"roni\"} 1\n"));
	free(text);
	evbuffer_free(out);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_render_escapes_profile_and_probe_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
