/* Limit counters on PostgreSQL, written by several daemons at once (the
 * group `store_counters_pg`): each a store of its own on one database, on
 * its own thread, adding to one counter under a bound as an API key's cap
 * or a member's limit does. The bound holds exactly: no two daemons both
 * take the last room, and every add that fits is taken. (SQLite has one
 * writer per database by design: nothing to race there.) */
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
    int rc = 0;
    struct store *s = store_new(&d.opts, &rc); /* the schema, made once */
    assert_non_null(s);
    store_free(s);
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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_counter_bound_across_daemons),
};

TEST_GROUP_DEFINE(store_counters_pg, tests, NULL, NULL)
