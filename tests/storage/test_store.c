/* The store: migrations, refusal of newer schemas, file mode, append-only
 * history, savepoint isolation inside a group commit, one writer per file.
 *
 * The group `store` runs every test on SQLite; `store_pg` runs the ones
 * that are about the store's contract on PostgreSQL (a fresh database
 * each): append-only history and savepoints in a group commit. SQLite only,
 * by nature: test_migrations (user_version, sqlite_master, WAL, a missing
 * file opened read only) and test_one_writer_per_database (the `.lock`
 * file: on PostgreSQL several daemons write one database by design); the
 * file mode check of test_file_mode_and_append_only. */
#include "tests/test.h"

#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"
#include "storage/pg_internal.h"
#include "storage/store.h"
#include "tests/storage/store_db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static FILE *store_log; /* the expected error lines go here, not to the terminal */
static enum store_backend_kind store_backend; /* the running group's backend */

static int store_group_setup(void **state)
{
    (void)state;
    store_backend = STORE_BACKEND_SQLITE;
    store_log = fopen("/dev/null", "w");
    log_configure(LOG_WARN, false, store_log);
    return 0;
}

static int store_group_setup_pg(void **state)
{
    store_group_setup(state);
    store_backend = STORE_BACKEND_POSTGRES;
    return 0;
}

static int store_group_teardown(void **state)
{
    (void)state;
    store_backend = STORE_BACKEND_SQLITE;
    log_configure(LOG_INFO, false, NULL);
    if (store_log != NULL)
        fclose(store_log);
    store_log = NULL;
    return 0;
}

static int sql_int(const char *path, const char *sql)
{
    int64_t v = test_sql_int(path, sql);
    assert_true(v >= 0);
    return (int)v;
}

static int sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static void test_migrations(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    int rc = 0;
    snprintf(path, sizeof(path), "%s/s.db", dir);
    struct store_options o = {.path = path, .schema_version = 1};
    struct store *s = store_new(&o, &rc);
    assert_non_null(s);
    assert_int_equal(store_schema_version(s), 1);
    store_free(s);
    assert_int_equal(
        sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name='transfers_usage'"), 0);
    /* Verification refuses a database that needs an upgrade. */
    struct store_options ro = {.path = path, .read_only = true};
    assert_null(store_new(&ro, &rc));
    assert_int_equal(rc, HB_ESCHEMA);
    /* An older database is upgraded at open. */
    o.schema_version = 0;
    s = store_new(&o, &rc);
    assert_non_null(s);
    assert_int_equal(store_schema_version(s), store_schema_latest());
    store_free(s);
    assert_int_equal(sql_int(path, "PRAGMA user_version"), store_schema_latest());
    assert_int_equal(
        sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name='transfers_usage'"), 1);
    assert_int_equal(sql_int(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    /* A newer one is refused, and left alone. */
    assert_int_equal(sql_exec(path, "PRAGMA user_version = 99"), SQLITE_OK);
    assert_null(store_new(&o, &rc));
    assert_int_equal(rc, HB_ESCHEMA);
    assert_int_equal(sql_int(path, "PRAGMA user_version"), 99);
    /* Bad options, and a file that is not there for a read-only open. */
    struct store_options bad = {.path = ""};
    assert_null(store_new(&bad, &rc));
    assert_int_equal(rc, HB_EINVAL);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/missing.db", dir);
    struct store_options ro2 = {.path = missing, .read_only = true};
    assert_null(store_new(&ro2, &rc));
    assert_int_equal(rc, HB_ESTORAGE);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_file_mode_and_append_only(void **state)
{
    (void)state;
    struct store_db d;
    store_db_init(&d, store_backend);
    struct store *s = store_db_open(&d);
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    struct store_transfer t;
    memset(&t, 0, sizeof(t));
    t.seq = 2; /* not head + 1 */
    snprintf(t.id, sizeof(t.id), "t1");
    assert_int_equal(store_txn_transfer_append(txn, &t), HB_EINVAL);
    t.seq = 1;
    assert_int_equal(store_txn_transfer_append(txn, &t), 0);
    uint64_t seq = 0;
    uint8_t hash[STORE_HASH_SIZE];
    assert_int_equal(store_txn_head(txn, &seq, hash), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(store_txn_end(txn, true), 0);
    store_free(s);
    if (d.opts.backend == STORE_BACKEND_SQLITE) {
        struct stat st;
        assert_int_equal(stat(d.path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    assert_false(db_exec_ok(&d, "UPDATE transfers SET amount = 5"));
    assert_false(db_exec_ok(&d, "DELETE FROM transfers"));
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers"), 1);
    assert_int_equal(db_int(&d, "SELECT seq FROM head"), 1);
    store_db_done(&d);
}

/* A job that inserts an account and then fails or succeeds. */
struct insert_job {
    struct store_job job;
    const char *id;
    int result;
    int done_rc;
    bool done;
};

static int insert_run(struct store_txn *txn, struct store_job *job)
{
    struct insert_job *j = (struct insert_job *)job;
    struct store_account a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "%s", j->id);
    int rc = store_txn_account_insert(txn, &a);
    return rc < 0 ? rc : j->result;
}

static void insert_done(struct store_job *job, int rc)
{
    struct insert_job *j = (struct insert_job *)job;
    j->done = true;
    j->done_rc = rc;
}

static void stopped(struct store *s, void *data)
{
    (void)s;
    *(bool *)data = true;
}

static void test_savepoints_in_group_commit(void **state)
{
    (void)state;
    struct store_db d;
    uv_loop_t loop;
    store_db_init(&d, store_backend);
    struct store *s = store_db_open(&d);
    store_db_start(s, &loop);
    struct insert_job jobs[4] = {
        {.id = "a", .result = 0},
        {.id = "b", .result = HB_EFUNDS},  /* rolled back alone */
        {.id = "c", .result = HB_EEXISTS}, /* success: kept */
        {.id = "a", .result = 0},          /* duplicate key: storage error, alone */
    };
    for (int i = 0; i < 4; i++) {
        jobs[i].job.run = insert_run;
        jobs[i].job.done = insert_done;
        assert_int_equal(store_submit(s, &jobs[i].job), 0);
    }
    for (int i = 0; i < 4; i++)
        while (!jobs[i].done)
            uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(jobs[0].done_rc, 0);
    assert_int_equal(jobs[1].done_rc, HB_EFUNDS);
    assert_int_equal(jobs[2].done_rc, HB_EEXISTS);
    assert_int_equal(jobs[3].done_rc, HB_ESTORAGE);
    bool done = false;
    store_stop(s, stopped, &done);
    struct insert_job late = {.id = "z"};
    late.job.run = insert_run;
    late.job.done = insert_done;
    assert_int_equal(store_submit(s, &late.job), HB_ECANCELED);
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
    store_free(s);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM accounts WHERE id IN ('a','c')"), 2);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM accounts WHERE id = 'b'"), 0);
    store_db_done(&d);
}

/* ---- writes put off in a group commit ------------------------------------------ */

enum put_step {
    PUT_MOVE,
    PUT_MOVE_FAIL,
    PUT_MOVE_READ_FAIL,
    PUT_STATE_MOVE,
    PUT_PENDING,
    PUT_MOVE_FLAKY /* a move whose second run runs out of memory */
};

/* A job that moves amount from w to r as a transfer (the ledger's
 * writes: the row, both accounts' sums, perhaps an open reservation),
 * and then fails or not, maybe after a read or a write of its own. */
struct put_job {
    struct store_job job;
    enum put_step step;
    const char *id;
    int64_t amount;
    int64_t w_debits_seen; /* w's debits as the job found them */
    unsigned runs;         /* times its run was called */
    int done_rc;
    bool done;
};

static int put_move(struct store_txn *txn, struct put_job *j)
{
    struct store_account w, r;
    int rc = store_txn_account_get(txn, "w", &w);
    if (rc == 0)
        rc = store_txn_account_get(txn, "r", &r);
    if (rc < 0)
        return rc;
    j->w_debits_seen = w.debits_posted;
    uint64_t seq = 0;
    struct store_transfer t;
    memset(&t, 0, sizeof(t));
    rc = store_txn_head(txn, &seq, t.hash);
    if (rc < 0)
        return rc;
    t.seq = seq + 1;
    snprintf(t.id, sizeof(t.id), "%s", j->id);
    snprintf(t.debit, sizeof(t.debit), "w");
    snprintf(t.credit, sizeof(t.credit), "r");
    snprintf(t.ref, sizeof(t.ref), "ref \"%s\" \\ end", j->id); /* quotes and a backslash */
    t.amount = j->amount;
    t.hash[0] = (uint8_t)t.seq;
    t.hash[31] = 0xff;
    w.debits_posted += j->amount;
    r.credits_posted += j->amount;
    rc = store_txn_transfer_append(txn, &t);
    if (rc == 0)
        rc = store_txn_account_update(txn, &w);
    if (rc == 0)
        rc = store_txn_account_update(txn, &r);
    return rc;
}

static int put_run(struct store_txn *txn, struct store_job *job)
{
    struct put_job *j = (struct put_job *)job;
    char *v = NULL;
    int rc = 0;
    j->runs++;
    switch (j->step) {
    case PUT_MOVE:
        return put_move(txn, j);
    case PUT_MOVE_FAIL:
        rc = put_move(txn, j);
        return rc < 0 ? rc : HB_EFUNDS;
    case PUT_MOVE_READ_FAIL:
        rc = put_move(txn, j);
        if (rc == 0)
            rc = store_txn_state_get(txn, "put", "none", &v);
        free(v);
        return rc < 0 && rc != HB_ENOTFOUND ? rc : HB_EFUNDS;
    case PUT_STATE_MOVE:
        rc = store_txn_state_put(txn, "put", j->id, "x", 1);
        return rc < 0 ? rc : put_move(txn, j);
    case PUT_MOVE_FLAKY:
        return j->runs == 2 ? HB_ENOMEM : put_move(txn, j);
    case PUT_PENDING:
        rc = store_txn_pending_add(txn, j->id, 99);
        if (rc == 0)
            rc = store_txn_pending_add(txn, "closed", 99);
        if (rc == 0)
            rc = store_txn_pending_remove(txn, "closed");
        return rc;
    }
    return HB_EINVAL;
}

static void put_done(struct store_job *job, int rc)
{
    struct put_job *j = (struct put_job *)job;
    j->done = true;
    j->done_rc = rc;
}

static void put_open_accounts(const struct store_db *d)
{
    int rc = 0;
    struct store *s = store_new(&d->opts, &rc);
    assert_non_null(s);
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    struct store_account a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "w");
    assert_int_equal(store_txn_account_insert(txn, &a), 0);
    snprintf(a.id, sizeof(a.id), "r");
    assert_int_equal(store_txn_account_insert(txn, &a), 0);
    assert_int_equal(store_txn_end(txn, true), 0);
    store_free(s);
}

/* A fresh database with the accounts w and r, and its store started,
 * with that many readers (PostgreSQL's pool). */
static struct store *put_start_readers(struct store_db *d, uv_loop_t *loop, unsigned readers)
{
    store_db_init(d, store_backend);
    put_open_accounts(d);
    d->opts.readers = readers;
    struct store *s = store_db_open(d);
    store_db_start(s, loop);
    return s;
}

static struct store *put_start(struct store_db *d, uv_loop_t *loop)
{
    return put_start_readers(d, loop, 0);
}

/* Run jobs as one batch (behind a gate) and wait for them all. */
static void put_batch(struct store *s, uv_loop_t *loop, struct put_job *jobs, size_t n)
{
    struct store_gate gate;
    store_gate_hold(s, &gate); /* the gate's batch holds it alone */
    for (size_t i = 0; i < n; i++) {
        jobs[i].job.run = put_run;
        jobs[i].job.done = put_done;
        assert_int_equal(store_submit_keyed(s, &jobs[i].job, jobs[i].id, NULL), 0);
    }
    store_gate_release(&gate, loop);
    for (size_t i = 0; i < n; i++)
        while (!jobs[i].done)
            uv_run(loop, UV_RUN_ONCE);
}

/* The jobs of test_put_off_writes_in_group_commit, grouped (store.h,
 * store_job.grouped) as marked, in one batch: what each job says and
 * leaves is as if each ran in its own savepoint. Returns how many times
 * each job ran. */
static void put_off_check(const bool *grouped, unsigned *runs)
{
    struct store_db d;
    uv_loop_t loop;
    struct store *s = put_start(&d, &loop);
    struct put_job jobs[] = {
        {.step = PUT_MOVE, .id = "t1", .amount = 5},
        {.step = PUT_MOVE_FAIL, .id = "t2", .amount = 100},
        {.step = PUT_MOVE, .id = "t3", .amount = 7},
        {.step = PUT_MOVE_READ_FAIL, .id = "t4", .amount = 1000},
        {.step = PUT_STATE_MOVE, .id = "t5", .amount = 11},
        {.step = PUT_PENDING, .id = "open"},
        {.step = PUT_MOVE, .id = "t6", .amount = 13},
    };
    size_t n = sizeof(jobs) / sizeof(jobs[0]);
    for (size_t i = 0; i < n; i++)
        jobs[i].job.grouped = grouped[i];
    double batches = metrics_value(metrics_std()->storage_batch, NULL);
    put_batch(s, &loop, jobs, n);
    /* The gate's batch, then one for all the jobs. */
    assert_true(metrics_value(metrics_std()->storage_batch, NULL) == batches + 2);
    static const int want_rc[] = {0, HB_EFUNDS, 0, HB_EFUNDS, 0, 0, 0};
    static const int64_t want_seen[] = {0, 5, 5, 12, 12, 0, 23};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(jobs[i].done_rc, want_rc[i]);
        assert_int_equal(jobs[i].w_debits_seen, want_seen[i]);
        runs[i] = jobs[i].runs;
    }
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers"), 4);
    assert_int_equal(db_int(&d, "SELECT max(seq) FROM transfers"), 4);
    assert_int_equal(db_int(&d, "SELECT seq FROM head"), 4);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers WHERE id IN ('t2','t4')"), 0);
    assert_int_equal(db_int(&d, "SELECT sum(amount) FROM transfers"), 36);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'w'"), 36);
    assert_int_equal(db_int(&d, "SELECT credits_posted FROM accounts WHERE id = 'r'"), 36);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers WHERE ref = 'ref \"t6\" \\ end'"),
                     1);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM state WHERE ns = 'put'"), 1);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM pending WHERE id = 'open'"), 1);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM pending"), 1);
    store_db_done(&d);
}

/* In one group commit, a job that fails after its writes leaves nothing,
 * whether it sent a statement before failing or not; the jobs after it see
 * the earlier jobs' sums, not its; a job's own statement and its put-off
 * writes both count; a reservation opened and closed in one batch is gone.
 * On PostgreSQL the transfers' and accounts' writes wait in memory and go
 * out one statement a table (storage/pg_puts.c). */
static void test_put_off_writes_in_group_commit(void **state)
{
    (void)state;
    static const bool alone[7] = {false};
    unsigned runs[7];
    put_off_check(alone, runs);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(runs[i], 1);
}

/* The same jobs grouped (but t5), where SQLite runs a group in one
 * savepoint, or in none when it begins the transaction: a failure undoes
 * its group (t1 with t2, t3 with t4; the first by rolling the transaction
 * back and beginning it again) and runs the jobs before it again one by
 * one, so the outcome, the chain head, the kept sums and what each job
 * saw are the same as above. PostgreSQL runs each job in its own
 * savepoint still. */
static void test_grouped_jobs_in_group_commit(void **state)
{
    (void)state;
    static const bool grouped[7] = {true, true, true, true, false, true, true};
    unsigned runs[7];
    put_off_check(grouped, runs);
    static const unsigned want_sqlite[7] = {2, 1, 2, 1, 1, 1, 1};
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(runs[i], store_backend == STORE_BACKEND_SQLITE ? want_sqlite[i] : 1);
}

/* Each job's outcome, the debits it saw, and how many times it ran (on
 * SQLite, which groups; PostgreSQL runs each once). */
static void put_expect(const struct put_job *jobs, size_t n, const int *rc, const int64_t *seen,
                       const unsigned *runs)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(jobs[i].done_rc, rc[i]);
        assert_int_equal(jobs[i].w_debits_seen, seen[i]);
        assert_int_equal(jobs[i].runs, store_backend == STORE_BACKEND_SQLITE ? runs[i] : 1);
    }
}

/* After the batch: the chain head at seq, w's debits and r's credits at
 * sum, and the one state row the ungrouped job wrote. */
static void put_expect_sums(const struct store_db *d, int seq, int sum)
{
    assert_int_equal(db_int(d, "SELECT seq FROM head"), seq);
    assert_int_equal(db_int(d, "SELECT debits_posted FROM accounts WHERE id = 'w'"), sum);
    assert_int_equal(db_int(d, "SELECT credits_posted FROM accounts WHERE id = 'r'"), sum);
    assert_int_equal(db_int(d, "SELECT count(*) FROM state WHERE ns = 'put'"), 1);
}

/* Groups of other shapes: two jobs before a failure (both run again), a
 * failure first in its group (nothing runs again), a group closed by an
 * ungrouped job, one left open at the end of the batch. */
static void test_grouped_jobs_shapes(void **state)
{
    (void)state;
    struct store_db d;
    uv_loop_t loop;
    struct store *s = put_start(&d, &loop);
    struct put_job jobs[] = {
        {.step = PUT_MOVE, .id = "t0", .amount = 5, .job.grouped = true},
        {.step = PUT_MOVE, .id = "t1", .amount = 7, .job.grouped = true},
        {.step = PUT_MOVE_FAIL, .id = "t2", .amount = 100, .job.grouped = true},
        {.step = PUT_MOVE_FAIL, .id = "t3", .amount = 100, .job.grouped = true},
        {.step = PUT_MOVE, .id = "t4", .amount = 11, .job.grouped = true},
        {.step = PUT_STATE_MOVE, .id = "t5", .amount = 13},
        {.step = PUT_MOVE, .id = "t6", .amount = 17, .job.grouped = true},
    };
    put_batch(s, &loop, jobs, 7);
    static const int want_rc[] = {0, 0, HB_EFUNDS, HB_EFUNDS, 0, 0, 0};
    static const int64_t want_seen[] = {0, 5, 12, 12, 12, 23, 36};
    static const unsigned want_runs[] = {2, 2, 1, 1, 1, 1, 1};
    put_expect(jobs, 7, want_rc, want_seen, want_runs);
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers"), 5);
    assert_int_equal(db_int(&d, "SELECT sum(amount) FROM transfers"), 53);
    put_expect_sums(&d, 5, 53);
    store_db_done(&d);
}

/* A group after an ungrouped job runs in a savepoint of its own: its
 * failure undoes the group alone (the transaction's start would undo the
 * ungrouped job too), and the job before the failure runs again. */
static void test_grouped_after_ungrouped(void **state)
{
    (void)state;
    struct store_db d;
    uv_loop_t loop;
    struct store *s = put_start(&d, &loop);
    struct put_job jobs[] = {
        {.step = PUT_STATE_MOVE, .id = "u0", .amount = 3},
        {.step = PUT_MOVE, .id = "g1", .amount = 5, .job.grouped = true},
        {.step = PUT_MOVE_FAIL, .id = "g2", .amount = 100, .job.grouped = true},
        {.step = PUT_MOVE, .id = "g3", .amount = 7, .job.grouped = true},
    };
    put_batch(s, &loop, jobs, 4);
    static const int want_rc[] = {0, 0, HB_EFUNDS, 0};
    static const int64_t want_seen[] = {0, 3, 8, 8};
    static const unsigned want_runs[] = {1, 2, 1, 1};
    put_expect(jobs, 4, want_rc, want_seen, want_runs);
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers"), 3);
    put_expect_sums(&d, 3, 15);
    store_db_done(&d);
}

/* A job before a grouped failure that ends otherwise when run again (out
 * of memory, say): the failed job runs again too, on what is there now,
 * and says what it saw then (on SQLite; PostgreSQL runs each alone). */
static void test_grouped_run_again_differs(void **state)
{
    (void)state;
    struct store_db d;
    uv_loop_t loop;
    struct store *s = put_start(&d, &loop);
    struct put_job jobs[] = {
        {.step = PUT_MOVE_FLAKY, .id = "f0", .amount = 5, .job.grouped = true},
        {.step = PUT_MOVE_FAIL, .id = "f1", .amount = 100, .job.grouped = true},
    };
    put_batch(s, &loop, jobs, 2);
    bool grouped = store_backend == STORE_BACKEND_SQLITE;
    assert_int_equal(jobs[0].done_rc, grouped ? HB_ENOMEM : 0);
    assert_int_equal(jobs[1].done_rc, HB_EFUNDS);
    assert_int_equal(jobs[1].runs, grouped ? 2 : 1);
    assert_int_equal(jobs[1].w_debits_seen, grouped ? 0 : 5);
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers"), grouped ? 0 : 1);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'w'"),
                     grouped ? 0 : 5);
    store_db_done(&d);
}

/* Jobs that each send statements of their own run in subtransactions: a
 * batch of 150 of them is cut into transactions of at most 60 on
 * PostgreSQL (past 64 its visibility checks slow down), and every job still
 * runs once, in order. */
static void test_batch_cut_at_savepoints(void **state)
{
    (void)state;
    struct store_db d;
    uv_loop_t loop;
    struct store *s = put_start(&d, &loop);
    enum { N = 150 };
    static struct put_job jobs[N];
    static char ids[N][16];
    for (size_t i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "s%zu", i);
        jobs[i] = (struct put_job){.step = PUT_STATE_MOVE, .id = ids[i], .amount = 1};
    }
    double batches = metrics_value(metrics_std()->storage_batch, NULL);
    put_batch(s, &loop, jobs, N);
    double taken = metrics_value(metrics_std()->storage_batch, NULL) - batches;
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(jobs[i].done_rc, 0);
        assert_int_equal(jobs[i].w_debits_seen, (int64_t)i);
    }
    store_db_stop(s, &loop);
    /* The gate's batch, then 60 + 60 + 30 on PostgreSQL, one on SQLite. */
    assert_true(taken == (store_backend == STORE_BACKEND_POSTGRES ? 4 : 2));
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers"), N);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'w'"), N);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM state WHERE ns = 'put'"), N);
    store_db_done(&d);
}

/* A burst's put-off writes (PostgreSQL) leave their buffers behind only
 * while batches stay big now and then: after a run of small batches the
 * store gives them back, and writes on as before. */
static void test_put_off_buffers_given_back(void **state)
{
    (void)state;
    struct store_db d;
    uv_loop_t loop;
    struct store *s = put_start(&d, &loop);
    const struct pg_store *pg = (const struct pg_store *)s;
    enum { N = 300 };
    static struct put_job jobs[N];
    static char ids[N][16];
    for (size_t i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "b%zu", i);
        jobs[i] = (struct put_job){.step = PUT_MOVE, .id = ids[i], .amount = 1};
    }
    put_batch(s, &loop, jobs, N);
    assert_true(pg->puts_cap > PG_PUTS_KEEP);
    static char small_ids[PG_PUTS_SMALL_BATCHES][16];
    for (unsigned k = 0; k < PG_PUTS_SMALL_BATCHES; k++) {
        if (k == 1)
            assert_true(pg->puts_cap > PG_PUTS_KEEP); /* a small batch or two: kept */
        snprintf(small_ids[k], sizeof(small_ids[k]), "s%u", k);
        struct put_job one = {.step = PUT_MOVE, .id = small_ids[k], .amount = 1};
        put_batch(s, &loop, &one, 1); /* two small batches: the gate's, then this */
        assert_int_equal(one.done_rc, 0);
    }
    assert_true(pg->puts_cap <= PG_PUTS_KEEP / 4);
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers"), N + PG_PUTS_SMALL_BATCHES);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'w'"),
                     N + PG_PUTS_SMALL_BATCHES);
    store_db_done(&d);
}

/* One writer per database: a second writing store is refused while the
 * first is open (in this process too), readers are not, and the lock goes
 * with the store. */
static void test_one_writer_per_database(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    int rc = 0;
    snprintf(path, sizeof(path), "%s/s.db", dir);
    struct store_options o = {.path = path};
    struct store *first = store_new(&o, &rc);
    assert_non_null(first);
    assert_null(store_new(&o, &rc));
    assert_int_equal(rc, HB_EBUSY);
    struct store_options ro = {.path = path, .read_only = true};
    struct store *reader = store_new(&ro, &rc);
    assert_non_null(reader);
    store_free(reader);
    store_free(first);
    struct store *again = store_new(&o, &rc);
    assert_non_null(again);
    store_free(again);
    test_tmpdir_remove(dir);
    free(dir);
}

/* ---- readers: PostgreSQL's pool, SQLite's connections beside the writer
 * -------------------------------------------- */

/* A job for store_submit_read: reads w's debits, or writes (which a
 * reader must refuse); may hold its thread until released. */
struct read_job {
    struct store_job job;
    bool write;
    uv_sem_t *held, *release; /* NULL: no wait */
    int64_t debits;
    int rc;
    bool done;
};

static int read_run(struct store_txn *txn, struct store_job *job)
{
    struct read_job *j = (struct read_job *)job;
    if (j->held != NULL) {
        uv_sem_post(j->held);
        uv_sem_wait(j->release);
    }
    if (j->write)
        return store_txn_state_put(txn, "read", "k", "v", 1);
    struct store_account a;
    int rc = store_txn_account_get(txn, "w", &a);
    if (rc == 0)
        j->debits = a.debits_posted;
    return rc;
}

static void read_done(struct store_job *job, int rc)
{
    struct read_job *j = (struct read_job *)job;
    j->rc = rc;
    j->done = true;
}

static void read_wait(uv_loop_t *loop, struct read_job *j)
{
    while (!j->done)
        uv_run(loop, UV_RUN_ONCE);
}

/* A read that must not queue behind a held write batch: done within ms. */
static bool read_wait_for(uv_loop_t *loop, struct read_job *j, uint64_t ms)
{
    for (uint64_t end = uv_now(loop) + ms; !j->done && uv_now(loop) < end; uv_update_time(loop)) {
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    return j->done;
}

/* Readers (PostgreSQL's pool; SQLite's connections to the same file,
 * which WAL lets read beside the writer): a read runs on a connection of
 * its own, answered while this daemon's write batch holds the writer (and,
 * on PostgreSQL, while another daemon's write waits for the lock it
 * holds); a long read holds up only its own reader, the next goes to an
 * idle one; a reader refuses to write and reads on after; the readers see
 * what the writers committed; the store stops with all its threads. */
static void test_reads_beside_writes(void **state)
{
    (void)state;
    struct store_db d;
    uv_loop_t loop;
    int rc = 0;
    bool pg = store_backend == STORE_BACKEND_POSTGRES;
    struct store *s = put_start_readers(&d, &loop, 2);
    d.opts.readers = 1;
    struct store *other = pg ? store_new(&d.opts, &rc) : NULL; /* a second daemon */
    if (pg) {
        assert_non_null(other);
        assert_int_equal(store_start(other, &loop), 0);
    }

    /* This daemon's write batch holds the lock every daemon's writes take. */
    struct store_gate gate;
    store_gate_hold(s, &gate);
    struct put_job move = {
        .job = {.run = put_run, .done = put_done}, .step = PUT_MOVE, .id = "m1", .amount = 7};
    assert_int_equal(store_submit(pg ? other : s, &move.job), 0);

    struct read_job r1 = {.job = {.run = read_run, .done = read_done}};
    assert_int_equal(store_submit_read(s, &r1.job), 0);
    assert_true(read_wait_for(&loop, &r1, 10000));
    assert_int_equal(r1.rc, 0);
    assert_int_equal(r1.debits, 0);
    if (pg) {
        struct read_job r2 = {.job = {.run = read_run, .done = read_done}};
        assert_int_equal(store_submit_read(other, &r2.job), 0);
        read_wait(&loop, &r2);
        assert_int_equal(r2.rc, 0);
    }
    assert_false(gate.done);
    assert_false(move.done); /* the write still waits */

    /* A long read holds its reader; the next read takes the idle one, and
     * so does a write, which fails there without harm to what follows. */
    uv_sem_t held, release;
    assert_int_equal(uv_sem_init(&held, 0), 0);
    assert_int_equal(uv_sem_init(&release, 0), 0);
    struct read_job slow = {
        .job = {.run = read_run, .done = read_done}, .held = &held, .release = &release};
    assert_int_equal(store_submit_read(s, &slow.job), 0);
    uv_sem_wait(&held);
    struct read_job quick = {.job = {.run = read_run, .done = read_done}};
    assert_int_equal(store_submit_read(s, &quick.job), 0);
    assert_true(read_wait_for(&loop, &quick, 10000));
    assert_int_equal(quick.rc, 0);
    struct read_job writes = {.job = {.run = read_run, .done = read_done}, .write = true};
    assert_int_equal(store_submit_read(s, &writes.job), 0);
    assert_true(read_wait_for(&loop, &writes, 10000));
    assert_int_equal(writes.rc, HB_ESTORAGE);
    struct read_job after = {.job = {.run = read_run, .done = read_done}};
    assert_int_equal(store_submit_read(s, &after.job), 0);
    assert_true(read_wait_for(&loop, &after, 10000));
    assert_int_equal(after.rc, 0);
    assert_false(slow.done);
    uv_sem_post(&release);
    read_wait(&loop, &slow);
    assert_int_equal(slow.rc, 0);

    /* The gate opens: the write commits, and the readers see it. */
    store_gate_release(&gate, &loop);
    while (!move.done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(move.done_rc, 0);
    struct read_job seen = {.job = {.run = read_run, .done = read_done}};
    assert_int_equal(store_submit_read(s, &seen.job), 0);
    read_wait(&loop, &seen);
    assert_int_equal(seen.rc, 0);
    assert_int_equal(seen.debits, 7);
    struct read_job writes_idle = {.job = {.run = read_run, .done = read_done}, .write = true};
    assert_int_equal(store_submit_read(s, &writes_idle.job), 0); /* no lock to wait for now */
    read_wait(&loop, &writes_idle);
    assert_int_equal(writes_idle.rc, HB_ESTORAGE);

    if (pg) {
        bool done = false;
        store_stop(other, stopped, &done);
        while (!done)
            uv_run(&loop, UV_RUN_ONCE);
        store_free(other);
    }
    store_db_stop(s, &loop); /* the loop closes: every reader's handle is gone */
    assert_int_equal(db_int(&d, "SELECT count(*) FROM state WHERE ns = 'read'"), 0);
    uv_sem_destroy(&held);
    uv_sem_destroy(&release);
    store_db_done(&d);
}

/* The server ended this daemon's sessions while they sat idle (a restart,
 * an administrator): the next read and the next write reconnect first and
 * succeed, instead of failing on the dead connection. */
static void test_idle_connections_dropped(void **state)
{
    (void)state;
    struct store_db d;
    uv_loop_t loop;
    struct store *s = put_start_readers(&d, &loop, 1);
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            /* Every other session of the database ends, and is gone. */
            assert_int_equal(
                db_int(&d, "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()"),
                2);
        }
        struct read_job r = {.job = {.run = read_run, .done = read_done}};
        assert_int_equal(store_submit_read(s, &r.job), 0);
        read_wait(&loop, &r);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.debits, 7 * round);
        struct put_job move = {.job = {.run = put_run, .done = put_done},
                               .step = PUT_MOVE,
                               .id = round == 0 ? "idle1" : "idle2",
                               .amount = 7};
        assert_int_equal(store_submit(s, &move.job), 0);
        while (!move.done)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(move.done_rc, 0);
    }
    store_db_stop(s, &loop);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM transfers"), 2);
    store_db_done(&d);
}

static int each_w_debits(const struct store_account *a, void *data)
{
    if (strcmp(a->id, "w") == 0)
        *(int64_t *)data = a->debits_posted;
    return 0;
}

/* An account's new sums, inside a transaction without a job (no
 * savepoint): a read of the whole table in it sees them (SQLite writes a
 * kept account's sums once, at commit, or before such a read), and so
 * does the database after the commit. */
static void test_account_sums_before_each(void **state)
{
    (void)state;
    struct store_db d;
    store_db_init(&d, store_backend);
    struct store *s = store_db_open(&d);
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    struct store_account a = {.id = "w", .flags = 0, .created_at = 1};
    assert_int_equal(store_txn_account_insert(txn, &a), 0);
    assert_int_equal(store_txn_account_get(txn, "w", &a), 0);
    a.debits_posted = 42;
    assert_int_equal(store_txn_account_update(txn, &a), 0);
    int64_t seen = -1;
    assert_int_equal(store_txn_account_each(txn, each_w_debits, &seen), 0);
    assert_int_equal(seen, 42);
    a.debits_posted = 43;
    assert_int_equal(store_txn_account_update(txn, &a), 0);
    assert_int_equal(store_txn_end(txn, true), 0);
    store_free(s);
    assert_int_equal(db_int(&d, "SELECT debits_posted FROM accounts WHERE id = 'w'"), 43);
    store_db_done(&d);
}

/* What a failed open logged, from a log written to a temporary file. */
static char *store_open_logged(const char *url)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    log_configure(LOG_WARN, false, f);
    struct store_options o = {.backend = STORE_BACKEND_POSTGRES, .url = url};
    int rc = 0;
    struct store *st = store_new(&o, &rc);
    assert_null(st);
    assert_true(rc < 0);
    log_warn("test.after", "echo=%s", "Qw8rTy5uPass");
    fflush(f);
    long n = ftell(f);
    char *text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    rewind(f);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    log_configure(LOG_WARN, false, store_log);
    fclose(f);
    return text;
}

/* A PostgreSQL connection string never reaches the log, not even in part:
 * one libpq cannot parse is reported as that alone (libpq's own message
 * quotes it: `missing "=" after "<part of the password>"`), and the
 * password of one that parses is redacted from every line. */
static void test_pg_url_never_logged(void **state)
{
    (void)state;
    char *text = store_open_logged("host=127.0.0.1 password=Zq9xK7 Wv3mR8 dbname=x");
    assert_non_null(strstr(text, "does not parse"));
    assert_null(strstr(text, "Wv3mR8"));
    assert_null(strstr(text, "Zq9xK7"));
    free(text);
    text = store_open_logged(
        "host=127.0.0.1 port=1 connect_timeout=1 user=u password=Qw8rTy5uPass dbname=x");
    assert_non_null(strstr(text, "store.unreachable"));
    assert_null(strstr(text, "Qw8rTy5uPass"));
    free(text);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_migrations),
    cmocka_unit_test(test_file_mode_and_append_only),
    cmocka_unit_test(test_savepoints_in_group_commit),
    cmocka_unit_test(test_put_off_writes_in_group_commit),
    cmocka_unit_test(test_grouped_jobs_in_group_commit),
    cmocka_unit_test(test_grouped_jobs_shapes),
    cmocka_unit_test(test_grouped_after_ungrouped),
    cmocka_unit_test(test_grouped_run_again_differs),
    cmocka_unit_test(test_account_sums_before_each),
    cmocka_unit_test(test_batch_cut_at_savepoints),
    cmocka_unit_test(test_one_writer_per_database),
    cmocka_unit_test(test_reads_beside_writes),
    cmocka_unit_test(test_pg_url_never_logged),
};

TEST_GROUP_DEFINE(store, tests, store_group_setup, store_group_teardown)

static const struct CMUnitTest pg_tests[] = {
    cmocka_unit_test(test_file_mode_and_append_only),
    cmocka_unit_test(test_savepoints_in_group_commit),
    cmocka_unit_test(test_put_off_writes_in_group_commit),
    cmocka_unit_test(test_grouped_jobs_in_group_commit),
    cmocka_unit_test(test_grouped_jobs_shapes),
    cmocka_unit_test(test_grouped_run_again_differs),
    cmocka_unit_test(test_account_sums_before_each),
    cmocka_unit_test(test_batch_cut_at_savepoints),
    cmocka_unit_test(test_reads_beside_writes),
    cmocka_unit_test(test_idle_connections_dropped),
    cmocka_unit_test(test_put_off_buffers_given_back),
};

TEST_GROUP_DEFINE(store_pg, pg_tests, store_group_setup_pg, store_group_teardown)
