/* What a store keeps of a transaction's accounts (SQLite keeps the rows a
 * batch reads and writes, and writes them once at commit; the groups
 * `store_kept` on SQLite and `store_kept_pg`): a job that fails is undone
 * without touching what the jobs before it changed, also when it wrote a
 * row the store could not keep (more accounts in one batch than it keeps). */
#include "tests/test.h"

#include "base/error.h"
#include "storage/store.h"
#include "tests/storage/store_db.h"

#include <stdio.h>

#define KEPT_FILL 4200 /* accounts one job reads: more than SQLite keeps */

enum kept_step { KEPT_MOVE, KEPT_FILL_READ, KEPT_MOVE_FAIL, KEPT_READ };

struct kept_job {
    struct store_job job;
    enum kept_step step;
    const char *id;
    int64_t amount;
    int64_t seen; /* the account's debits as the job found them */
    int rc;
    bool done;
};

static int kept_run(struct store_txn *txn, struct store_job *job)
{
    struct kept_job *j = (struct kept_job *)job;
    struct store_account a;
    int rc = 0;
    if (j->step == KEPT_FILL_READ) {
        char id[32];
        for (int i = 0; i < KEPT_FILL && rc == 0; i++) {
            snprintf(id, sizeof(id), "f%d", i);
            rc = store_txn_account_get(txn, id, &a);
        }
        return rc;
    }
    rc = store_txn_account_get(txn, j->id, &a);
    if (rc < 0)
        return rc;
    j->seen = a.debits_posted;
    if (j->step == KEPT_READ)
        return 0;
    a.debits_posted += j->amount;
    rc = store_txn_account_update(txn, &a);
    return rc < 0 || j->step == KEPT_MOVE ? rc : HB_EFUNDS;
}

static void kept_done(struct store_job *job, int rc)
{
    struct kept_job *j = (struct kept_job *)job;
    j->rc = rc;
    j->done = true;
}

static void kept_open(struct store *s)
{
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    struct store_account a = {.created_at = 1};
    snprintf(a.id, sizeof(a.id), "x");
    assert_int_equal(store_txn_account_insert(txn, &a), 0);
    snprintf(a.id, sizeof(a.id), "y");
    assert_int_equal(store_txn_account_insert(txn, &a), 0);
    for (int i = 0; i < KEPT_FILL; i++) {
        snprintf(a.id, sizeof(a.id), "f%d", i);
        assert_int_equal(store_txn_account_insert(txn, &a), 0);
    }
    assert_int_equal(store_txn_end(txn, true), 0);
}

/* x moves in the batch's first job; a job then reads past what the store
 * keeps; a third writes y (not kept any more) and fails; the last reads x.
 * x's move stands, y's is gone. */
static void test_failed_job_beside_full_keep(void **state)
{
    struct store_db d;
    store_db_init(&d, *(enum store_backend_kind *)*state);
    struct store *s = store_db_open(&d);
    kept_open(s);
    uv_loop_t loop;
    store_db_start(s, &loop);
    struct kept_job jobs[] = {
        {.step = KEPT_MOVE, .id = "x", .amount = 5},
        {.step = KEPT_FILL_READ},
        {.step = KEPT_MOVE_FAIL, .id = "y", .amount = 7},
        {.step = KEPT_READ, .id = "x"},
        {.step = KEPT_READ, .id = "y"},
    };
    size_t n = sizeof(jobs) / sizeof(jobs[0]);
    struct store_gate gate;
    store_gate_hold(s, &gate);
    for (size_t i = 0; i < n; i++) {
        jobs[i].job.run = kept_run;
        jobs[i].job.done = kept_done;
        assert_int_equal(store_submit(s, &jobs[i].job), 0);
    }
    store_gate_release(&gate, &loop);
    static const int want_rc[] = {0, 0, HB_EFUNDS, 0, 0};
    static const int64_t want_seen[] = {0, 0, 0, 5, 0};
    for (size_t i = 0; i < n; i++) {
        while (!jobs[i].done)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(jobs[i].rc, want_rc[i]);
        assert_int_equal(jobs[i].seen, want_seen[i]);
    }
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'x'"), 5);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'y'"), 0);
    store_db_done(&d);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_failed_job_beside_full_keep),
};

TEST_GROUP_DEFINE(store_kept, tests, store_db_setup_sqlite, NULL)
TEST_GROUP_DEFINE(store_kept_pg, tests, store_db_setup_pg, NULL)
