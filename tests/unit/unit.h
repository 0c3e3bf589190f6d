/*
 * unit.h - what every cmocka unit test in tests/unit shares.
 *
 * UNIT_MAIN(cmocka_unit_test(a), cmocka_unit_test(b), ...) is the test
 * program's main(): the list of its tests, run as one group.
 */
#ifndef HAPPAC_TESTS_UNIT_H
#define HAPPAC_TESTS_UNIT_H

#define UNIT_MAIN(...)                                                  \
	int main(void)                                                  \
	{                                                               \
		const struct CMUnitTest unit_tests[] = { __VA_ARGS__ }; \
		return cmocka_run_group_tests(unit_tests, NULL, NULL);  \
	}

#endif
