/* The VFS that gathers a commit's WAL writes (storage/sqlite_vfs.c): far
 * fewer writes than frames, every commit visible to another connection as
 * soon as it returns, durable across a kill right after it, and the same
 * database as without it through cache spills, rewritten frames and
 * checkpoints. */
#include "tests/test.h"

#include "base/error.h"
#include "storage/sqlite_internal.h"
#include "storage/store.h"

#include <dlfcn.h>
#include <errno.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define VFS_ROW_BYTES 3000

static sqlite3 *vfs_open(const char *path, const char *vfs)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    assert_int_equal(sqlite3_open_v2(path, &db, flags, vfs), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                  "PRAGMA wal_autocheckpoint=0;"
                                  "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    return db;
}

static void vfs_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sql: %s: %s\n", sql, err != NULL ? err : "?");
    sqlite3_free(err);
    assert_int_equal(rc, SQLITE_OK);
}

static int64_t vfs_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void vfs_integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

/* n rows of VFS_ROW_BYTES random bytes in one transaction, ids from first. */
static void vfs_insert(sqlite3 *db, int first, int n)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
             "INSERT INTO t SELECT i, randomblob(%d) FROM c",
             first, first + n - 1, VFS_ROW_BYTES);
    vfs_exec(db, sql);
}

static void test_commit_is_a_few_writes(void **state)
{
    (void)state;
    const char *vfs = sqlite_walbuf_vfs();
    assert_non_null(vfs);
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/v.db", dir);
    sqlite3 *db = vfs_open(path, vfs);
    vfs_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    unsigned long before = sqlite_walbuf_writes();
    vfs_insert(db, 1, 200); /* one commit of about 150 pages */
    unsigned long writes = sqlite_walbuf_writes() - before;
    char wal[520];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    int64_t frames = ((int64_t)st.st_size - 32) / (4096 + 24); /* after its header */
    assert_true(frames > 100);
    /* Without the VFS: two writes a frame. With it: one per 128 KiB. */
    assert_true(writes <= (unsigned long)(frames * (4096 + 24) / 0x1ffff + 2));
    assert_int_equal(vfs_int(db, "SELECT count(*) FROM t"), 200);
    sqlite3_close(db);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_commit_seen_by_another_connection(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/v.db", dir);
    sqlite3 *w = vfs_open(path, sqlite_walbuf_vfs());
    sqlite3 *r = vfs_open(path, NULL);
    for (int i = 0; i < 20; i++) {
        vfs_insert(w, i * 10 + 1, 10);
        assert_int_equal(vfs_int(r, "SELECT count(*) FROM t"), (i + 1) * 10);
        assert_int_equal(vfs_int(r, "SELECT count(*) FROM t WHERE length(v) = 3000"), (i + 1) * 10);
    }
    /* A checkpoint by the reader, then more commits into the restarted WAL. */
    vfs_exec(r, "PRAGMA wal_checkpoint(TRUNCATE)");
    vfs_insert(w, 1001, 50);
    assert_int_equal(vfs_int(r, "SELECT count(*) FROM t"), 250);
    sqlite3_close(r);
    sqlite3_close(w);
    test_tmpdir_remove(dir);
    free(dir);
}

/* The child commits, opens a large transaction and is killed without
 * closing anything: every commit made is there, nothing of the open one.
 * (Killed, not exiting: under valgrind an exit reports the open
 * connection's memory as lost and fails the child.) */
static void test_kill_after_commit(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/v.db", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *db = vfs_open(path, sqlite_walbuf_vfs());
        for (int i = 0; i < 30; i++)
            vfs_insert(db, i * 7 + 1, 7);
        sqlite3_exec(db, "PRAGMA cache_size=10; BEGIN", NULL, NULL, NULL);
        vfs_insert(db, 5001, 300); /* spills frames into the WAL, not committed */
        raise(SIGKILL);
        _exit(1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    sqlite3 *db = vfs_open(path, NULL);
    assert_int_equal(vfs_int(db, "SELECT count(*) FROM t"), 210);
    assert_int_equal(vfs_int(db, "SELECT max(id) FROM t"), 210);
    vfs_integrity_ok(db);
    sqlite3_close(db);
    test_tmpdir_remove(dir);
    free(dir);
}

/* A transaction larger than the page cache writes pages to the WAL before
 * it commits, reads them back, and rewrites their frames in place. */
static void test_spill_and_rewrite(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/v.db", dir);
    sqlite3 *db = vfs_open(path, sqlite_walbuf_vfs());
    vfs_exec(db, "PRAGMA cache_size=8");
    vfs_exec(db, "BEGIN");
    vfs_insert(db, 1, 400);
    vfs_exec(db, "UPDATE t SET v = zeroblob(2000) WHERE id % 3 = 0");
    assert_int_equal(vfs_int(db, "SELECT sum(length(v)) FROM t"), 267 * 3000 + 133 * 2000);
    vfs_exec(db, "UPDATE t SET v = randomblob(2500) WHERE id % 3 = 0");
    vfs_exec(db, "COMMIT");
    vfs_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    vfs_insert(db, 401, 10);
    sqlite3_close(db);
    db = vfs_open(path, NULL);
    assert_int_equal(vfs_int(db, "SELECT count(*) FROM t"), 410);
    assert_int_equal(vfs_int(db, "SELECT sum(length(v)) FROM t"), 277 * 3000 + 133 * 2500);
    vfs_integrity_ok(db);
    sqlite3_close(db);
    test_tmpdir_remove(dir);
    free(dir);
}

/* fdatasync as the test binary sees it (SQLite's calls land here): counted,
 * and held while a test holds it, then passed on to the C library's. */
static atomic_long vfs_fdatasyncs;
static atomic_bool vfs_hold_syncs;
static atomic_bool vfs_held;
static atomic_bool vfs_fail_syncs; /* the next calls fail with EIO */

int fdatasync(int fd)
{
    static int (*real)(int);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
    vfs_fdatasyncs++;
    while (atomic_load(&vfs_hold_syncs)) {
        atomic_store(&vfs_held, true);
        usleep(1000);
    }
    atomic_store(&vfs_held, false);
    if (atomic_load(&vfs_fail_syncs)) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}

/* A COMMIT that may put its sync off does (the commit is published: another
 * connection sees it), and the sync is made when asked; a later sync of
 * the same COMMIT (a checkpoint's, before it writes the database) is made
 * at once and covers it; a WAL header just written is synced first. */
static void test_commit_sync_put_off(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/v.db", dir);
    sqlite3 *w = vfs_open(path, sqlite_walbuf_vfs());
    sqlite3 *r = vfs_open(path, NULL);
    vfs_insert(w, 1, 1); /* the WAL's header, synced */

    long before = vfs_fdatasyncs;
    sqlite_walbuf_defer(true);
    vfs_insert(w, 2, 5);
    sqlite_walbuf_defer(false);
    assert_true(sqlite_walbuf_owes());
    assert_int_equal(vfs_fdatasyncs, before); /* not yet */
    assert_int_equal(vfs_int(r, "SELECT count(*) FROM t"), 6);
    assert_int_equal(sqlite_walbuf_sync_owed(), SQLITE_OK);
    assert_false(sqlite_walbuf_owes());
    assert_int_equal(vfs_fdatasyncs, before + 1);
    assert_int_equal(sqlite_walbuf_sync_owed(), SQLITE_OK); /* nothing owed: nothing done */
    assert_int_equal(vfs_fdatasyncs, before + 1);

    /* A checkpoint in the same window syncs the WAL before it copies. */
    before = vfs_fdatasyncs;
    sqlite_walbuf_defer(true);
    vfs_insert(w, 10, 5);
    assert_true(sqlite_walbuf_owes());
    vfs_exec(w, "PRAGMA wal_checkpoint(PASSIVE)");
    sqlite_walbuf_defer(false);
    assert_false(sqlite_walbuf_owes());
    assert_true(vfs_fdatasyncs >= before + 1);

    /* A restarted WAL: its new header is synced in the COMMIT, the
     * commit's own sync put off. */
    vfs_exec(w, "PRAGMA wal_checkpoint(TRUNCATE)");
    before = vfs_fdatasyncs;
    sqlite_walbuf_defer(true);
    vfs_insert(w, 20, 5);
    sqlite_walbuf_defer(false);
    assert_int_equal(vfs_fdatasyncs, before + 1);
    assert_true(sqlite_walbuf_owes());
    assert_int_equal(sqlite_walbuf_sync_owed(), SQLITE_OK);
    assert_int_equal(vfs_fdatasyncs, before + 2);
    assert_int_equal(vfs_int(r, "SELECT count(*) FROM t"), 16);
    vfs_integrity_ok(r);
    sqlite3_close(r);
    sqlite3_close(w);
    test_tmpdir_remove(dir);
    free(dir);
}

/* A store job that writes one state row, or first waits to be let go. */
struct vfs_job {
    struct store_job job;
    const char *key;
    uv_sem_t *entered, *release; /* NULL: no wait */
    bool done;
    int rc;
};

static int vfs_job_run(struct store_txn *txn, struct store_job *job)
{
    struct vfs_job *j = (struct vfs_job *)job;
    if (j->entered != NULL) {
        uv_sem_post(j->entered);
        uv_sem_wait(j->release);
    }
    return store_txn_state_put(txn, "test", j->key, "v", 1);
}

static void vfs_job_done(struct store_job *job, int rc)
{
    struct vfs_job *j = (struct vfs_job *)job;
    j->done = true;
    j->rc = rc;
}

static void vfs_stopped(struct store *store, void *data)
{
    (void)store;
    *(bool *)data = true;
}

/* In one batch, a job that may be told before the commit's sync (early) is
 * told while that sync is still under way; the other waits for it. */
static void test_early_job_told_before_sync(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/s.db", dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 0;
    struct store_options o = {.backend = STORE_BACKEND_SQLITE, .path = path};
    struct store *s = store_new(&o, &rc);
    assert_non_null(s);
    assert_int_equal(store_start(s, &loop), 0);
    uv_sem_t entered, release;
    uv_sem_init(&entered, 0);
    uv_sem_init(&release, 0);
    struct vfs_job warm = {.job = {.run = vfs_job_run, .done = vfs_job_done}, .key = "w"};
    assert_int_equal(store_submit(s, &warm.job), 0);
    while (!warm.done)
        uv_run(&loop, UV_RUN_ONCE);
    /* One job holds the thread (a batch of its own) while the next batch
     * queues: a second holding job, then the early one and the other. */
    struct vfs_job first = {.job = {.run = vfs_job_run, .done = vfs_job_done},
                            .key = "f",
                            .entered = &entered,
                            .release = &release};
    struct vfs_job gate = {.job = {.run = vfs_job_run, .done = vfs_job_done},
                           .key = "g",
                           .entered = &entered,
                           .release = &release};
    struct vfs_job early = {.job = {.run = vfs_job_run, .done = vfs_job_done, .early = true},
                            .key = "e"};
    struct vfs_job late = {.job = {.run = vfs_job_run, .done = vfs_job_done}, .key = "l"};
    assert_int_equal(store_submit(s, &first.job), 0);
    uv_sem_wait(&entered);
    assert_int_equal(store_submit(s, &gate.job), 0);
    assert_int_equal(store_submit(s, &early.job), 0);
    assert_int_equal(store_submit(s, &late.job), 0);
    uv_sem_post(&release); /* the first batch commits, the second begins */
    uv_sem_wait(&entered); /* and holds in its first job */
    atomic_store(&vfs_hold_syncs, true);
    uv_sem_post(&release);
    uint64_t end = test_now_ms() + 10000;
    while (!early.done && test_now_ms() < end)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(early.done);
    assert_int_equal(early.rc, 0);
    /* The sync is held: the others of the batch wait for it. */
    end = test_now_ms() + 10000;
    while (!atomic_load(&vfs_held) && test_now_ms() < end)
        usleep(1000);
    assert_true(atomic_load(&vfs_held));
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_false(late.done);
    assert_false(gate.done);
    atomic_store(&vfs_hold_syncs, false);
    while (!late.done || !gate.done || !first.done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(late.rc, 0);
    assert_int_equal(gate.rc, 0);
    assert_int_equal(first.rc, 0);

    /* The sync put off fails: the early job was told, the others of its
     * batch fail, and so does every job after (what the disk holds is no
     * longer known). */
    memset(&first, 0, sizeof(first));
    first = (struct vfs_job){.job = {.run = vfs_job_run, .done = vfs_job_done},
                             .key = "f2",
                             .entered = &entered,
                             .release = &release};
    gate = (struct vfs_job){.job = {.run = vfs_job_run, .done = vfs_job_done},
                            .key = "g2",
                            .entered = &entered,
                            .release = &release};
    early = (struct vfs_job){.job = {.run = vfs_job_run, .done = vfs_job_done, .early = true},
                             .key = "e2"};
    late = (struct vfs_job){.job = {.run = vfs_job_run, .done = vfs_job_done}, .key = "l2"};
    struct vfs_job after = {.job = {.run = vfs_job_run, .done = vfs_job_done}, .key = "a2"};
    assert_int_equal(store_submit(s, &first.job), 0);
    uv_sem_wait(&entered);
    assert_int_equal(store_submit(s, &gate.job), 0);
    assert_int_equal(store_submit(s, &early.job), 0);
    assert_int_equal(store_submit(s, &late.job), 0);
    uv_sem_post(&release);
    uv_sem_wait(&entered);
    atomic_store(&vfs_fail_syncs, true);
    uv_sem_post(&release);
    while (!late.done || !gate.done || !first.done || !early.done)
        uv_run(&loop, UV_RUN_ONCE);
    atomic_store(&vfs_fail_syncs, false);
    assert_int_equal(early.rc, 0);
    assert_int_equal(late.rc, HB_ESTORAGE);
    assert_int_equal(gate.rc, HB_ESTORAGE);
    assert_int_equal(store_submit(s, &after.job), 0);
    while (!after.done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(after.rc, HB_ESTORAGE);
    bool stopped = false;
    store_stop(s, vfs_stopped, &stopped);
    while (!stopped)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    store_free(s);
    assert_int_equal(uv_loop_close(&loop), 0);
    uv_sem_destroy(&entered);
    uv_sem_destroy(&release);
    test_tmpdir_remove(dir);
    free(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_commit_is_a_few_writes),
    cmocka_unit_test(test_commit_seen_by_another_connection),
    cmocka_unit_test(test_kill_after_commit),
    cmocka_unit_test(test_spill_and_rewrite),
    cmocka_unit_test(test_commit_sync_put_off),
    cmocka_unit_test(test_early_job_told_before_sync),
};

TEST_GROUP_DEFINE(sqlite_vfs, tests, NULL, NULL)
