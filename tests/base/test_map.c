/* The string-keyed hash map: set, get, replace, remove, take, growth,
 * iteration with removal, and the free function called exactly once per
 * value. */
#include "base/map.h"

#include "base/error.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value that counts how often the map released it. */
struct counted {
    int *released; /* incremented once per release */
    int n;
};

static void counted_free(void *value)
{
    struct counted *c = value;
    (*c->released)++;
    free(c);
}

static struct counted *counted_new(int *released, int n)
{
    struct counted *c = malloc(sizeof(*c));
    assert_non_null(c);
    c->released = released;
    c->n = n;
    return c;
}

static void test_map_basics(void **state)
{
    (void)state;
    int released = 0;
    struct map *m = map_new(counted_free);
    assert_non_null(m);
    assert_int_equal(map_count(m), 0);
    assert_null(map_get(m, "a"));
    assert_int_equal(map_remove(m, "a"), HB_ENOTFOUND);
    assert_null(map_take(m, "a"));

    assert_int_equal(map_set(m, "a", counted_new(&released, 1)), 0);
    assert_int_equal(map_set(m, "b", counted_new(&released, 2)), 0);
    assert_int_equal(map_set(m, "", counted_new(&released, 3)), 0); /* the empty key is a key */
    assert_int_equal(map_count(m), 3);
    assert_int_equal(((struct counted *)map_get(m, "a"))->n, 1);
    assert_int_equal(((struct counted *)map_get(m, "b"))->n, 2);
    assert_int_equal(((struct counted *)map_get(m, ""))->n, 3);

    /* Replacing releases the old value once; setting the same pointer
     * again releases nothing. */
    assert_int_equal(map_set(m, "a", counted_new(&released, 10)), 0);
    assert_int_equal(released, 1);
    assert_int_equal(map_count(m), 3);
    void *same = map_get(m, "a");
    assert_int_equal(map_set(m, "a", same), 0);
    assert_int_equal(released, 1);
    assert_int_equal(((struct counted *)map_get(m, "a"))->n, 10);

    /* Remove releases; take hands the value back unreleased. */
    assert_int_equal(map_remove(m, "b"), 0);
    assert_int_equal(released, 2);
    assert_null(map_get(m, "b"));
    struct counted *t = map_take(m, "");
    assert_non_null(t);
    assert_int_equal(t->n, 3);
    assert_int_equal(released, 2);
    assert_int_equal(map_count(m), 1);
    counted_free(t);
    assert_int_equal(released, 3);

    map_free(m);
    assert_int_equal(released, 4);
    map_free(NULL);
}

/* Many keys: the table grows, every key stays findable, and every value is
 * released exactly once when the map goes. */
static void test_map_growth_many_keys(void **state)
{
    (void)state;
    enum { N = 20000 };
    int released = 0;
    struct map *m = map_new(counted_free);
    assert_non_null(m);
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "member-%d", i);
        assert_int_equal(map_set(m, key, counted_new(&released, i)), 0);
    }
    assert_int_equal(map_count(m), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "member-%d", i);
        struct counted *c = map_get(m, key);
        assert_non_null(c);
        assert_int_equal(c->n, i);
    }
    assert_null(map_get(m, "member-20000"));
    /* Remove every odd key; the even ones remain. */
    for (int i = 1; i < N; i += 2) {
        snprintf(key, sizeof(key), "member-%d", i);
        assert_int_equal(map_remove(m, key), 0);
    }
    assert_int_equal(map_count(m), N / 2);
    assert_int_equal(released, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "member-%d", i);
        assert_true((map_get(m, key) != NULL) == (i % 2 == 0));
    }
    map_free(m);
    assert_int_equal(released, N);
}

/* Iteration visits every entry once; removing the entry just returned
 * (either way) does not disturb the rest. */
static void test_map_iterate_with_removal(void **state)
{
    (void)state;
    enum { N = 1000 };
    int released = 0;
    struct map *m = map_new(counted_free);
    assert_non_null(m);
    static char seen[N];
    memset(seen, 0, sizeof(seen));
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(map_set(m, key, counted_new(&released, i)), 0);
    }
    struct map_iter it;
    map_iter_init(&it, m);
    const char *k;
    void *v;
    size_t visited = 0;
    while (map_iter_next(&it, &k, &v)) {
        struct counted *c = v;
        snprintf(key, sizeof(key), "k%d", c->n);
        assert_string_equal(k, key);
        assert_int_equal(seen[c->n], 0);
        seen[c->n] = 1;
        visited++;
        if (c->n % 3 == 0)
            map_iter_remove(&it);
        else if (c->n % 3 == 1)
            assert_int_equal(map_remove(m, key), 0); /* by key: also safe */
    }
    assert_int_equal(visited, N);
    int kept = 0;
    for (int i = 0; i < N; i++)
        kept += i % 3 == 2;
    assert_int_equal(map_count(m), kept);
    assert_int_equal(released, N - kept);
    /* A second pass sees exactly the survivors. */
    map_iter_init(&it, m);
    visited = 0;
    while (map_iter_next(&it, NULL, &v)) {
        assert_int_equal(((struct counted *)v)->n % 3, 2);
        visited++;
    }
    assert_int_equal(visited, kept);
    /* Removing everything while iterating leaves an empty, usable map. */
    map_iter_init(&it, m);
    while (map_iter_next(&it, NULL, NULL))
        map_iter_remove(&it);
    assert_int_equal(map_count(m), 0);
    assert_int_equal(released, N);
    map_iter_init(&it, m);
    assert_false(map_iter_next(&it, NULL, NULL));
    assert_int_equal(map_set(m, "again", counted_new(&released, 0)), 0);
    assert_int_equal(map_count(m), 1);
    map_free(m);
    assert_int_equal(released, N + 1);
}

/* Without a free function the map never touches the values. */
static void test_map_borrowed_values(void **state)
{
    (void)state;
    int values[3] = {1, 2, 3};
    struct map *m = map_new(NULL);
    assert_non_null(m);
    assert_int_equal(map_set(m, "x", &values[0]), 0);
    assert_int_equal(map_set(m, "x", &values[1]), 0);
    assert_int_equal(map_set(m, "y", &values[2]), 0);
    assert_ptr_equal(map_get(m, "x"), &values[1]);
    assert_int_equal(map_remove(m, "y"), 0);
    map_free(m);
}

static const struct CMUnitTest map_tests[] = {
    cmocka_unit_test(test_map_basics),
    cmocka_unit_test(test_map_growth_many_keys),
    cmocka_unit_test(test_map_iterate_with_removal),
    cmocka_unit_test(test_map_borrowed_values),
};

TEST_GROUP_DEFINE(map, map_tests, NULL, NULL)
