/* Limit counters: their rules on each backend (the groups `store_counters`
 * on SQLite and `store_counters_pg`), and on PostgreSQL written by several
 * daemons at once: each a store of its own on one database, on its own
 * thread, adding to one counter under a bound as an API key's cap or a
 * member's limit does. The bound holds exactly: no two daemons both take
 * the last room, and every add that fits is taken. (SQLite has one writer
 * per database by design: nothing to race there.) */
#include "tests/test.h"

#include "base/error.h"
#include "storage/store.h"
#include "tests/storage/store_db.h"

#include <pthread.h>
#include <stdatomic.h>

#define COUNTERS_DAEMONS 3
#define COUNTERS_TRIES 40 /* adds each daemon tries */
#define COUNTERS_LIMIT 100
#define COUNTERS_STEP 3

struct counters_daemon {
    struct store_db *db;
    pthread_t thread;
    int taken, refused, failed;
};

static void *counters_run(void *arg)
{
    struct counters_daemon *c = arg;
    int rc = 0;
    struct store *s = store_new(&c->db->opts, &rc);
    if (s == NULL) {
        c->failed++;
        return NULL;
    }
    for (int i = 0; i < COUNTERS_TRIES; i++) {
        struct store_txn *txn = NULL;
        if (store_txn_begin(s, true, &txn) < 0) {
            c->failed++;
            continue;
        }
        int64_t used = 0;
        rc = store_txn_counter_add(txn, "gen.key:k1", 0, COUNTERS_STEP, COUNTERS_LIMIT, &used);
        if (store_txn_end(txn, rc == 0) < 0)
            c->failed++;
        else if (rc == 0)
            c->taken++;
        else if (rc == HB_ELIMIT && used + COUNTERS_STEP > COUNTERS_LIMIT)
            c->refused++;
        else
            c->failed++;
    }
    store_free(s);
    return NULL;
}

static void test_counter_bound_across_daemons(void **state)
{
    (void)state;
    struct store_db d;
    store_db_init(&d, STORE_BACKEND_POSTGRES);
    store_free(store_db_open(&d)); /* the schema, made once */
    struct counters_daemon daemons[COUNTERS_DAEMONS];
    memset(daemons, 0, sizeof(daemons));
    for (int i = 0; i < COUNTERS_DAEMONS; i++) {
        daemons[i].db = &d;
        assert_int_equal(pthread_create(&daemons[i].thread, NULL, counters_run, &daemons[i]), 0);
    }
    int taken = 0, refused = 0;
    for (int i = 0; i < COUNTERS_DAEMONS; i++) {
        pthread_join(daemons[i].thread, NULL);
        assert_int_equal(daemons[i].failed, 0);
        taken += daemons[i].taken;
        refused += daemons[i].refused;
    }
    assert_int_equal(taken, COUNTERS_LIMIT / COUNTERS_STEP);
    assert_int_equal(refused, COUNTERS_DAEMONS * COUNTERS_TRIES - taken);
    assert_int_equal(db_int(&d, "SELECT used FROM counters WHERE name = 'gen.key:k1' AND win = 0"),
                     COUNTERS_LIMIT / COUNTERS_STEP * COUNTERS_STEP);
    store_db_done(&d);
}

/* One add in a transaction of its own; *used as the store said. */
static int counter_add(struct store *s, const char *name, int64_t win, int64_t delta, int64_t limit,
                       int64_t *used)
{
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    int rc = store_txn_counter_add(txn, name, win, delta, limit, used);
    assert_int_equal(store_txn_end(txn, rc == 0), 0);
    return rc;
}

static int counter_rows(const struct store_db *d, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM counters WHERE name = '%s'", name);
    return db_int(d, sql);
}

/* A window's first add makes its row and drops the name's earlier
 * windows; an add within the bound applies, one past it changes nothing
 * and says the value; a give-back always applies and stops at 0. */
static void test_counter_rules(void **state)
{
    struct store_db d;
    store_db_init(&d, *(enum store_backend_kind *)*state);
    struct store *s = store_db_open(&d);
    int64_t used = -1;
    assert_int_equal(counter_add(s, "gen.user:a", 7, 2, 5, &used), 0);
    assert_int_equal(used, 2);
    assert_int_equal(counter_add(s, "gen.user:b", 7, 1, 5, &used), 0);
    assert_int_equal(counter_add(s, "gen.user:a", 7, 3, 5, &used), 0);
    assert_int_equal(used, 5);
    assert_int_equal(counter_add(s, "gen.user:a", 7, 1, 5, &used), HB_ELIMIT);
    assert_int_equal(used, 5);
    /* More than the bound at once, in a window without a row yet: refused,
     * and no row is left behind. */
    assert_int_equal(counter_add(s, "gen.user:a", 6, 9, 5, &used), HB_ELIMIT);
    assert_int_equal(used, 0);
    assert_int_equal(counter_rows(&d, "gen.user:a"), 1);
    assert_int_equal(counter_add(s, "gen.user:a", 7, -4, 0, &used), 0);
    assert_int_equal(used, 1);
    assert_int_equal(counter_add(s, "gen.user:a", 7, -4, 0, &used), 0);
    assert_int_equal(used, 0);
    assert_int_equal(counter_add(s, "gen.user:a", 7, 4, 0, &used), 0); /* no bound */
    assert_int_equal(used, 4);
    /* The next window starts at 0 and drops window 7 of this name only. */
    assert_int_equal(counter_add(s, "gen.user:a", 8, 5, 5, &used), 0);
    assert_int_equal(used, 5);
    assert_int_equal(counter_rows(&d, "gen.user:a"), 1);
    assert_int_equal(counter_rows(&d, "gen.user:b"), 1);
    assert_int_equal(db_int(&d, "SELECT used FROM counters WHERE name = 'gen.user:a' AND win = 8"),
                     5);
    store_free(s);
    store_db_done(&d);
}

/* A job of one batch that adds to the counter "c" (window 1, bound 100),
 * and then fails or not. */
struct count_job {
    struct store_job job;
    int64_t delta;
    bool fail;
    int64_t seen; /* the value the add left, or found when refused */
    int rc;
    bool done;
};

static int count_run(struct store_txn *txn, struct store_job *job)
{
    struct count_job *j = (struct count_job *)job;
    int rc = store_txn_counter_add(txn, "c", 1, j->delta, 100, &j->seen);
    return rc < 0 || !j->fail ? rc : HB_EFUNDS;
}

static void count_done(struct store_job *job, int rc)
{
    struct count_job *j = (struct count_job *)job;
    j->rc = rc;
    j->done = true;
}

/* Jobs of one group commit move one counter: a job that counted and then
 * failed takes its count back with its savepoint, so the jobs after it
 * see (and are bounded by) the others' counts only, and the database ends
 * with them. (SQLite keeps such a counter for the transaction and writes
 * it once, at commit.) */
static void test_counter_in_group_commit(void **state)
{
    struct store_db d;
    store_db_init(&d, *(enum store_backend_kind *)*state);
    struct store *s = store_db_open(&d);
    uv_loop_t loop;
    store_db_start(s, &loop);
    /* The first, the window's first add, makes the row and fails. */
    struct count_job jobs[] = {
        {.delta = 50, .fail = true},
        {.delta = 5},
        {.delta = 50, .fail = true},
        {.delta = 7},
        {.delta = 80, .fail = true},
        {.delta = 80},
        {.delta = 9},
        {.delta = -2},
    };
    size_t n = sizeof(jobs) / sizeof(jobs[0]);
    struct store_gate gate;
    store_gate_hold(s, &gate);
    for (size_t i = 0; i < n; i++) {
        jobs[i].job.run = count_run;
        jobs[i].job.done = count_done;
        assert_int_equal(store_submit(s, &jobs[i].job), 0);
    }
    store_gate_release(&gate, &loop);
    static const int want_rc[] = {HB_EFUNDS, 0, HB_EFUNDS, 0, HB_EFUNDS, 0, HB_ELIMIT, 0};
    static const int64_t want_seen[] = {50, 5, 55, 12, 92, 92, 92, 90};
    for (size_t i = 0; i < n; i++) {
        while (!jobs[i].done)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(jobs[i].rc, want_rc[i]);
        assert_int_equal(jobs[i].seen, want_seen[i]);
    }
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT used FROM counters WHERE name = 'c' AND win = 1"), 90);
    store_db_done(&d);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_counter_rules),
    cmocka_unit_test(test_counter_in_group_commit),
};

static const struct CMUnitTest tests_pg[] = {
    cmocka_unit_test(test_counter_rules),
    cmocka_unit_test(test_counter_in_group_commit),
    cmocka_unit_test(test_counter_bound_across_daemons),
};

TEST_GROUP_DEFINE(store_counters, tests, store_db_setup_sqlite, NULL)
TEST_GROUP_DEFINE(store_counters_pg, tests_pg, store_db_setup_pg, NULL)
