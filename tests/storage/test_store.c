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
#include "storage/store.h"

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

/* A fresh database for one test on the group's backend: a file in a new
 * directory, or a new PostgreSQL database (the directory is made too). */
struct store_db {
    char *dir;      /* heap */
    char path[512]; /* SQLite */
    char url[512];  /* PostgreSQL */
    struct store_options opts;
};

static void store_db_init(struct store_db *d)
{
    memset(d, 0, sizeof(*d));
    if (store_backend == STORE_BACKEND_POSTGRES)
        assert_int_equal(test_pg_db(d->url, sizeof(d->url)), 0);
    d->dir = test_tmpdir_new();
    snprintf(d->path, sizeof(d->path), "%s/s.db", d->dir);
    d->opts.backend = store_backend;
    if (store_backend == STORE_BACKEND_POSTGRES) {
        d->opts.url = d->url;
    } else {
        d->opts.path = d->path;
    }
}

static void store_db_done(struct store_db *d)
{
    test_tmpdir_remove(d->dir);
    free(d->dir);
    d->dir = NULL;
}

/* sql on the database directly, beside the store. */
static int db_int(const struct store_db *d, const char *sql)
{
    int64_t v = d->opts.backend == STORE_BACKEND_POSTGRES ? test_pg_int(d->url, sql)
                                                          : test_sql_int(d->path, sql);
    assert_true(v >= 0);
    return (int)v;
}

/* True when the database accepted sql. */
static bool db_exec_ok(const struct store_db *d, const char *sql)
{
    if (d->opts.backend == STORE_BACKEND_POSTGRES)
        return test_pg_exec(d->url, sql, true) == 0;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(d->path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK;
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
    int rc = 0;
    store_db_init(&d);
    struct store *s = store_new(&d.opts, &rc);
    assert_non_null(s);
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
    int rc = 0;
    uv_loop_t loop;
    store_db_init(&d);
    assert_int_equal(uv_loop_init(&loop), 0);
    struct store *s = store_new(&d.opts, &rc);
    assert_non_null(s);
    assert_int_equal(store_start(s, &loop), 0);
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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_migrations),
    cmocka_unit_test(test_file_mode_and_append_only),
    cmocka_unit_test(test_savepoints_in_group_commit),
    cmocka_unit_test(test_one_writer_per_database),
};

TEST_GROUP_DEFINE(store, tests, store_group_setup, store_group_teardown)

static const struct CMUnitTest pg_tests[] = {
    cmocka_unit_test(test_file_mode_and_append_only),
    cmocka_unit_test(test_savepoints_in_group_commit),
};

TEST_GROUP_DEFINE(store_pg, pg_tests, store_group_setup_pg, store_group_teardown)
