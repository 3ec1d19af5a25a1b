/* The one test runner: runs every group in tests/test_list.h (or the groups
 * named on the command line) and ends with "N passed, N failed". */
#include "tests/test.h"

#include <stdio.h>
#include <string.h>

#define TEST_GROUP(name) int test_group_##name(size_t *ntests);
#include "tests/test_list.h"
#undef TEST_GROUP

struct test_group {
    const char *name;
    int (*run)(size_t *ntests);
};

static const struct test_group test_groups[] = {
#define TEST_GROUP(name) {#name, test_group_##name},
#include "tests/test_list.h"
#undef TEST_GROUP
};

static bool test_selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    size_t passed = 0;
    size_t failed = 0;
    size_t ran = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < TEST_ARRAY_SIZE(test_groups); i++) {
        if (!test_selected(test_groups[i].name, argc, argv))
            continue;
        size_t n = 0;
        int bad = test_groups[i].run(&n);
        if (bad < 0 || (size_t)bad > n)
            bad = (int)n;
        failed += (size_t)bad;
        passed += n - (size_t)bad;
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test group matched\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
