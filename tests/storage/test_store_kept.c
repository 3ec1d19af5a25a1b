/* What a store keeps of a transaction's accounts and counters (SQLite
 * keeps the rows its writer reads and writes, writes them once at commit,
 * and keeps them for the next transaction; the groups `store_kept` on
 * SQLite and `store_kept_pg`): a job that fails is undone without
 * touching what the jobs before it changed, also when it wrote a row the
 * store could not keep (more accounts in one batch than it keeps) or one
 * kept from an earlier transaction; a row another connection changed
 * between two transactions is read as it now is. */
#include "tests/test.h"

#include "base/error.h"
#include "storage/store.h"
#include "tests/storage/store_db.h"

#include <stdio.h>

#define KEPT_FILL 4200 /* accounts one job reads: more than SQLite keeps */

enum kept_step { KEPT_MOVE, KEPT_FILL_READ, KEPT_MOVE_FAIL, KEPT_READ, KEPT_COUNT };

struct kept_job {
    struct store_job job;
    enum kept_step step;
    const char *id;
    int64_t amount;
    int64_t limit; /* KEPT_COUNT: the bound of its add of amount to counter "c" */
    int64_t seen;  /* the account's debits as the job found them; the counter after */
    int rc;
    bool done;
};

static int kept_run(struct store_txn *txn, struct store_job *job)
{
    struct kept_job *j = (struct kept_job *)job;
    struct store_account a;
    int rc = 0;
    if (j->step == KEPT_COUNT)
        return store_txn_counter_add(txn, "c", 1, j->amount, j->limit, &j->seen);
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

/* jobs[0..n) as one batch (one transaction), each ending with want_rc[i]
 * and having seen want_seen[i]. */
static void kept_batch(struct store *s, uv_loop_t *loop, struct kept_job *jobs, size_t n,
                       const int *want_rc, const int64_t *want_seen)
{
    struct store_gate gate;
    store_gate_hold(s, &gate);
    for (size_t i = 0; i < n; i++) {
        jobs[i].job.run = kept_run;
        jobs[i].job.done = kept_done;
        assert_int_equal(store_submit(s, &jobs[i].job), 0);
    }
    store_gate_release(&gate, loop);
    for (size_t i = 0; i < n; i++) {
        while (!jobs[i].done)
            uv_run(loop, UV_RUN_ONCE);
        assert_int_equal(jobs[i].rc, want_rc[i]);
        assert_int_equal(jobs[i].seen, want_seen[i]);
    }
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
    static const int want_rc[] = {0, 0, HB_EFUNDS, 0, 0};
    static const int64_t want_seen[] = {0, 0, 0, 5, 0};
    kept_batch(s, &loop, jobs, sizeof(jobs) / sizeof(jobs[0]), want_rc, want_seen);
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'x'"), 5);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'y'"), 0);
    store_db_done(&d);
}

/* x and the counter move in one transaction and are kept after it. In the
 * next, a job moves x again and fails, and a counter add is refused by
 * its bound: what the first transaction left stands, as kept and as
 * stored. Then another connection changes both rows between two
 * transactions: the next one reads them as they now are, and its bound
 * is decided on the stored count, not on what was kept. (On PostgreSQL
 * only the counter: there an account's sums change only with a transfer,
 * which moves the chain head the store checks its kept accounts against;
 * sums changed alone are tampering, which ledger verify reports.) */
static void test_kept_across_transactions(void **state)
{
    enum store_backend_kind backend = *(enum store_backend_kind *)*state;
    struct store_db d;
    store_db_init(&d, backend);
    struct store *s = store_db_open(&d);
    kept_open(s);
    uv_loop_t loop;
    store_db_start(s, &loop);
    struct kept_job first[] = {
        {.step = KEPT_MOVE, .id = "x", .amount = 5},
        {.step = KEPT_COUNT, .amount = 3, .limit = 10},
    };
    static const int first_rc[] = {0, 0};
    static const int64_t first_seen[] = {0, 3};
    kept_batch(s, &loop, first, 2, first_rc, first_seen);

    struct kept_job second[] = {
        {.step = KEPT_MOVE_FAIL, .id = "x", .amount = 7},
        {.step = KEPT_COUNT, .amount = 8, .limit = 10},
        {.step = KEPT_READ, .id = "x"},
        {.step = KEPT_COUNT, .amount = 2, .limit = 10},
    };
    static const int second_rc[] = {HB_EFUNDS, HB_ELIMIT, 0, 0};
    static const int64_t second_seen[] = {5, 3, 5, 5};
    kept_batch(s, &loop, second, 4, second_rc, second_seen);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'x'"), 5);
    assert_int_equal(db_int(&d, "SELECT used FROM counters WHERE name = 'c' AND win = 1"), 5);

    int64_t x = 5;
    if (backend == STORE_BACKEND_SQLITE) {
        assert_true(db_exec_ok(&d, "UPDATE accounts SET debits_posted = 40 WHERE id = 'x'"));
        x = 40;
    }
    assert_true(db_exec_ok(&d, "UPDATE counters SET used = 9 WHERE name = 'c' AND win = 1"));
    struct kept_job third[] = {
        {.step = KEPT_READ, .id = "x"},
        {.step = KEPT_COUNT, .amount = 2, .limit = 10},
        {.step = KEPT_MOVE, .id = "x", .amount = 1},
        {.step = KEPT_COUNT, .amount = 1, .limit = 10},
    };
    static const int third_rc[] = {0, HB_ELIMIT, 0, 0};
    const int64_t third_seen[] = {x, 9, x, 10};
    kept_batch(s, &loop, third, 4, third_rc, third_seen);
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'x'"), x + 1);
    assert_int_equal(db_int(&d, "SELECT used FROM counters WHERE name = 'c' AND win = 1"), 10);
    store_db_done(&d);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_failed_job_beside_full_keep),
    cmocka_unit_test(test_kept_across_transactions),
};

TEST_GROUP_DEFINE(store_kept, tests, store_db_setup_sqlite, NULL)
TEST_GROUP_DEFINE(store_kept_pg, tests, store_db_setup_pg, NULL)
