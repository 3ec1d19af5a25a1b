/* The metrics registry: declaration rules, series limits, histogram
 * buckets, reset, and counting from several threads at once. */
#include "base/metrics.h"
#include "tests/test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_metrics_declare(void **state)
{
    (void)state;
    static const char *const l[] = {"a"};
    static const double b[] = {1, 2};
    static const double bad_b[] = {2, 1};
    assert_null(metrics_family_new("9bad", "x", METRICS_COUNTER, NULL, 0, NULL, 0));
    assert_null(metrics_family_new("bad-name", "x", METRICS_COUNTER, NULL, 0, NULL, 0));
    assert_null(metrics_family_new("t_hist", "x", METRICS_HISTOGRAM, NULL, 0, NULL, 0));
    assert_null(metrics_family_new("t_hist", "x", METRICS_HISTOGRAM, NULL, 0, bad_b, 2));
    static const char *const le[] = {"le"};
    assert_null(metrics_family_new("t_le", "x", METRICS_HISTOGRAM, le, 1, b, 2));
    struct metrics_family *f =
        metrics_family_new("t_decl_total", "x", METRICS_COUNTER, l, 1, NULL, 0);
    assert_non_null(f);
    /* Declaring again returns the same family; another type is refused. */
    assert_ptr_equal(metrics_family_new("t_decl_total", "y", METRICS_COUNTER, l, 1, NULL, 0), f);
    assert_null(metrics_family_new("t_decl_total", "y", METRICS_GAUGE, l, 1, NULL, 0));
    /* Counters only go up; NULL families are ignored. */
    metrics_counter_add(f, (const char *[]){"x"}, 2);
    metrics_counter_add(f, (const char *[]){"x"}, -1);
    metrics_counter_add(NULL, NULL, 1);
    assert_true(metrics_value(f, (const char *[]){"x"}) == 2);
    assert_true(metrics_value(f, (const char *[]){"y"}) == 0);
}

static void test_metrics_histogram_and_limits(void **state)
{
    (void)state;
    static const double b[] = {0.1, 1};
    struct metrics_family *h =
        metrics_family_new("t_lat_seconds", "x", METRICS_HISTOGRAM, NULL, 0, b, 2);
    assert_non_null(h);
    metrics_observe(h, NULL, 0.1); /* le="0.1" is inclusive */
    metrics_observe(h, NULL, 0.5);
    metrics_observe(h, NULL, 7);
    size_t len = 0;
    char *text = metrics_render(&len);
    assert_non_null(strstr(text, "t_lat_seconds_bucket{le=\"0.1\"} 1\n"));
    assert_non_null(strstr(text, "t_lat_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(text, "t_lat_seconds_bucket{le=\"+Inf\"} 3\n"));
    const char *sum = strstr(text, "t_lat_seconds_sum ");
    assert_non_null(sum);
    double sumv = strtod(sum + strlen("t_lat_seconds_sum "), NULL);
    assert_true(sumv > 7.599 && sumv < 7.601);
    assert_non_null(strstr(text, "t_lat_seconds_count 3\n"));
    free(text);
    /* Too many label combinations: the rest are dropped and counted. */
    static const char *const l[] = {"id"};
    struct metrics_family *c =
        metrics_family_new("t_many_total", "x", METRICS_COUNTER, l, 1, NULL, 0);
    for (int i = 0; i < METRICS_SERIES_MAX + 10; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        metrics_counter_add(c, (const char *[]){v}, 1);
    }
    assert_true(metrics_value(c, (const char *[]){"0"}) == 1);
    assert_true(metrics_value(c, (const char *[]){"300"}) == 0);
    text = metrics_render(&len);
    assert_null(strstr(text, "haibot_metrics_dropped_total 0\n"));
    free(text);
    metrics_reset();
    assert_true(metrics_value(c, (const char *[]){"0"}) == 0);
    assert_true(metrics_value(h, NULL) == 0);
}

static void *count_thread(void *arg)
{
    struct metrics_family *f = arg;
    for (int i = 0; i < 10000; i++)
        metrics_counter_add(f, (const char *[]){i % 2 ? "a" : "b"}, 1);
    return NULL;
}

static void test_metrics_threads(void **state)
{
    (void)state;
    static const char *const l[] = {"k"};
    struct metrics_family *f =
        metrics_family_new("t_threads_total", "x", METRICS_COUNTER, l, 1, NULL, 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, count_thread, f), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(metrics_value(f, (const char *[]){"a"}) == 20000);
    assert_true(metrics_value(f, (const char *[]){"b"}) == 20000);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_metrics_declare),
    cmocka_unit_test(test_metrics_histogram_and_limits),
    cmocka_unit_test(test_metrics_threads),
};

TEST_GROUP_DEFINE(metrics, tests, NULL, NULL)
