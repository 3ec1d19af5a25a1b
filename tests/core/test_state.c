#include "tests/test.h"

#include "base/error.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"

#include <stdlib.h>
#include <string.h>

struct got {
    bool done;
    int rc;
    char value[256];
    size_t n;
    char keys[8][64];
};

static void got_cb(int rc, const char *value, void *data)
{
    struct got *g = data;
    g->done = true;
    g->rc = rc;
    snprintf(g->value, sizeof(g->value), "%s", value != NULL ? value : "(null)");
}

static void got_list_cb(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct got *g = data;
    g->done = true;
    g->rc = rc;
    g->n = n;
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(g->keys[i], sizeof(g->keys[i]), "%s=%s", e[i].key, e[i].value);
}

static void run_until(struct lt *t, struct got *g)
{
    while (!g->done)
        uv_run(&t->loop, UV_RUN_ONCE);
}

static void put(struct lt *t, const char *ns, const char *key, const char *value)
{
    struct got g = {0};
    assert_int_equal(state_put(ledger_store(t->ledger), ns, key, value, got_cb, &g), 0);
    run_until(t, &g);
    assert_int_equal(g.rc, 0);
}

static struct got get(struct lt *t, const char *ns, const char *key)
{
    struct got g = {0};
    assert_int_equal(state_get(ledger_store(t->ledger), ns, key, got_cb, &g), 0);
    run_until(t, &g);
    return g;
}

static void test_state_put_get_delete_persist(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, false, false);
    struct got g = get(&t, "prefs", "discord:1/model");
    assert_int_equal(g.rc, HB_ENOTFOUND);
    put(&t, "prefs", "discord:1/model", "demo-chat");
    put(&t, "prefs", "discord:1/model", "gpt-4o-mini"); /* overwrite */
    put(&t, "prefs", "discord:2/model", "demo-chat");
    put(&t, "other", "discord:1/model", "x");
    g = get(&t, "prefs", "discord:1/model");
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.value, "gpt-4o-mini");

    /* Values survive a restart. */
    lt_ledger_close(&t);
    lt_ledger_open(&t);
    g = get(&t, "prefs", "discord:1/model");
    assert_string_equal(g.value, "gpt-4o-mini");

    struct got l = {0};
    assert_int_equal(state_list(ledger_store(t.ledger), "prefs", "discord:", 10, got_list_cb, &l),
                     0);
    run_until(&t, &l);
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.keys[0], "discord:1/model=gpt-4o-mini");
    assert_string_equal(l.keys[1], "discord:2/model=demo-chat");

    /* Increments queued together all count. */
    struct got inc[5];
    memset(inc, 0, sizeof(inc));
    for (int i = 0; i < 5; i++)
        assert_int_equal(state_incr(ledger_store(t.ledger), "stats", "n", i + 1, got_cb, &inc[i]),
                         0);
    run_until(&t, &inc[4]);
    g = get(&t, "stats", "n");
    assert_string_equal(g.value, "15");

    put(&t, "prefs", "discord:1/model", NULL);
    g = get(&t, "prefs", "discord:1/model");
    assert_int_equal(g.rc, HB_ENOTFOUND);
    lt_done(&t);
}

static void test_state_rejects_bad_input(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, false, false);
    struct store *s = ledger_store(t.ledger);
    assert_int_equal(state_get(s, "", "k", got_cb, NULL), HB_EINVAL);
    assert_int_equal(state_get(s, "ns", NULL, got_cb, NULL), HB_EINVAL);
    char *big = malloc(STATE_VALUE_MAX + 2);
    memset(big, 'x', STATE_VALUE_MAX + 1);
    big[STATE_VALUE_MAX + 1] = '\0';
    assert_int_equal(state_put(s, "ns", "k", big, NULL, NULL), HB_EOVERFLOW);
    free(big);
    assert_int_equal(state_list(s, "ns", "", 0, got_list_cb, NULL), HB_EINVAL);
    lt_done(&t);
}

/* A range starts at its first key and ends before its last; a page
 * continues from the last key read plus "\x01". */
static void test_state_list_range(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct store *s = ledger_store(t.ledger);
    const char *keys[] = {"20000/a", "20001/a", "20001/b", "20001/b/c", "20002/a", "x"};
    for (size_t i = 0; i < TEST_ARRAY_SIZE(keys); i++)
        put(&t, "r", keys[i], "1");
    put(&t, "rr", "20001/z", "1"); /* another namespace, never listed */
    struct got l = {0};
    assert_int_equal(state_list_range(s, "r", "20001/", "20002/", 10, got_list_cb, &l), 0);
    run_until(&t, &l);
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.keys[0], "20001/a=1");
    assert_string_equal(l.keys[2], "20001/b/c=1");
    memset(&l, 0, sizeof(l));
    assert_int_equal(state_list_range(s, "r", "20001/", NULL, 2, got_list_cb, &l), 0);
    run_until(&t, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.keys[1], "20001/b=1");
    memset(&l, 0, sizeof(l));
    assert_int_equal(state_list_range(s, "r", "20001/b\x01", NULL, 10, got_list_cb, &l), 0);
    run_until(&t, &l);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.keys[0], "20001/b/c=1");
    assert_string_equal(l.keys[2], "x=1");
    assert_int_equal(state_list_range(s, "r", "", NULL, 0, got_list_cb, &l), HB_EINVAL);
    /* Paging on: after a full page, the one from just past its last key;
     * a page that was not full ends the listing. */
    const struct state_entry page[2] = {{.key = "20001/a", .value = "1"},
                                        {.key = "20001/b", .value = "1"}};
    memset(&l, 0, sizeof(l));
    assert_int_equal(state_list_after(s, "r", page, 2, 2, got_list_cb, &l), 0);
    run_until(&t, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.keys[0], "20001/b/c=1");
    assert_string_equal(l.keys[1], "20002/a=1");
    assert_int_equal(state_list_after(s, "r", page, 1, 2, got_list_cb, &l), HB_ENOTFOUND);
    assert_int_equal(state_list_after(s, "r", page, 0, 2, got_list_cb, &l), HB_ENOTFOUND);
    lt_done(&t);
}

static void count_cb(int rc, const char *value, void *data)
{
    (void)value;
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

struct all {
    int rows;
    bool in_order;
    char last[64];
    int stop_at; /* a row that answers HB_EIO; 0: none */
    int done;
    int rc;
};

static int all_row(const char *key, const char *value, void *data)
{
    struct all *a = data;
    if (strcmp(key, a->last) <= 0 || strcmp(value, "v") != 0)
        a->in_order = false;
    snprintf(a->last, sizeof(a->last), "%s", key);
    return ++a->rows == a->stop_at ? HB_EIO : 0;
}

static void all_done(int rc, void *data)
{
    struct all *a = data;
    a->done++;
    a->rc = rc;
}

/* A namespace read whole: every row once, in key order, over several
 * pages; a row that fails stops the read with its code; done comes once. */
static void test_state_read_all(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct store *s = ledger_store(t.ledger);
    enum { ROWS = 2345 };
    int put_done = 0;
    for (int i = 0; i < ROWS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%05d", i);
        assert_int_equal(state_put(s, "all", key, "v", count_cb, &put_done), 0);
    }
    assert_int_equal(state_put(s, "all2", "k", "other", count_cb, &put_done), 0);
    while (put_done < ROWS + 1)
        uv_run(&t.loop, UV_RUN_ONCE);
    struct all a = {.in_order = true};
    assert_int_equal(state_read_all(s, "all", all_row, all_done, &a), 0);
    while (a.done == 0)
        uv_run(&t.loop, UV_RUN_ONCE);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.rows, ROWS);
    assert_true(a.in_order);
    assert_string_equal(a.last, "k02344");
    struct all stop = {.in_order = true, .stop_at = 1500};
    assert_int_equal(state_read_all(s, "all", all_row, all_done, &stop), 0);
    while (stop.done == 0)
        uv_run(&t.loop, UV_RUN_ONCE);
    assert_int_equal(stop.rc, HB_EIO);
    assert_int_equal(stop.rows, 1500);
    struct all none = {.in_order = true};
    assert_int_equal(state_read_all(s, "none", all_row, all_done, &none), 0);
    while (none.done == 0)
        uv_run(&t.loop, UV_RUN_ONCE);
    assert_int_equal(none.rc, 0);
    assert_int_equal(none.rows, 0);
    assert_int_equal(state_read_all(s, "all", NULL, all_done, &none), HB_EINVAL);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    assert_int_equal(a.done + stop.done + none.done, 3);
    lt_done(&t);
}

static int remove_if(struct lt *t, const char *key, const char *value)
{
    struct got g = {0};
    assert_int_equal(state_remove_if(ledger_store(t->ledger), "asked", key, value, got_cb, &g), 0);
    run_until(t, &g);
    return g.rc;
}

/* A delete of a value as it was read: a value written over it since stays. */
static void test_state_remove_if(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, false, false);
    put(&t, "asked", "k", "new");
    assert_int_equal(remove_if(&t, "k", "old"), HB_ECONFLICT);
    assert_string_equal(get(&t, "asked", "k").value, "new");
    assert_int_equal(remove_if(&t, "k", "new"), 0);
    assert_int_equal(get(&t, "asked", "k").rc, HB_ENOTFOUND);
    assert_int_equal(remove_if(&t, "k", "new"), HB_ECONFLICT);
    assert_int_equal(state_remove_if(ledger_store(t.ledger), "asked", "k", NULL, NULL, NULL),
                     HB_EINVAL);
    lt_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_state_put_get_delete_persist),
    cmocka_unit_test(test_state_rejects_bad_input),
    cmocka_unit_test(test_state_list_range),
    cmocka_unit_test(test_state_read_all),
    cmocka_unit_test(test_state_remove_if),
};

TEST_GROUP_DEFINE(state, tests, lt_group_setup, lt_group_teardown)
