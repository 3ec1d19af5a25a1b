/* The one test runner: runs every group in tests/test_list.h (or the groups
 * named on the command line) and ends with "N passed, N failed". */
#include "tests/test.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* A name on the command line that is no group: say which are. */
static bool test_names_known(int argc, char **argv)
{
    bool ok = true;
    for (int i = 1; i < argc; i++) {
        bool found = false;
        for (size_t g = 0; g < TEST_ARRAY_SIZE(test_groups) && !found; g++)
            found = strcmp(argv[i], test_groups[g].name) == 0;
        if (!found) {
            printf("no test group named '%s'\n", argv[i]);
            ok = false;
        }
    }
    if (!ok) {
        printf("the groups (tests/test_list.h), for make test TESTS=\"name ...\":\n");
        size_t col = 0;
        for (size_t g = 0; g < TEST_ARRAY_SIZE(test_groups); g++) {
            size_t len = strlen(test_groups[g].name);
            if (col > 0 && col + 1 + len > 78) {
                printf("\n");
                col = 0;
            }
            printf("%s%s", col > 0 ? " " : "  ", test_groups[g].name);
            col += len + (col > 0 ? 1 : 2);
        }
        printf("\n");
    }
    return ok;
}

static double test_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t passed = 0;
    size_t failed = 0;
    size_t ran = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!test_names_known(argc, argv)) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    for (size_t i = 0; i < TEST_ARRAY_SIZE(test_groups); i++) {
        if (!test_selected(test_groups[i].name, argc, argv))
            continue;
        size_t n = 0;
        double t0 = test_seconds();
        int bad = test_groups[i].run(&n);
        if (bad < 0 || (size_t)bad > n)
            bad = (int)n;
        failed += (size_t)bad;
        passed += n - (size_t)bad;
        ran++;
        /* One line per group; tools/test-tail.sh shows these, and a failed
         * test's lines in full. */
        printf("[ GROUP  ] %-4s %-26s %4zu passed %3d failed %7.1f s\n", bad == 0 ? "ok" : "FAIL",
               test_groups[i].name, n - (size_t)bad, bad, test_seconds() - t0);
    }
    if (ran == 0) {
        fprintf(stderr, "no test group matched\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
