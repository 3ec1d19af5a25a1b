/* The VFS that gathers a commit's WAL writes (storage/sqlite_vfs.c): far
 * fewer writes than frames, every commit visible to another connection as
 * soon as it returns, durable across a kill right after it, and the same
 * database as without it through cache spills, rewritten frames and
 * checkpoints. */
#include "tests/test.h"

#include "storage/sqlite_internal.h"

#include <sqlite3.h>
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

/* The child commits, opens a large transaction and dies without closing
 * anything: every commit made is there, nothing of the open one. */
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
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_commit_is_a_few_writes),
    cmocka_unit_test(test_commit_seen_by_another_connection),
    cmocka_unit_test(test_kill_after_commit),
    cmocka_unit_test(test_spill_and_rewrite),
};

TEST_GROUP_DEFINE(sqlite_vfs, tests, NULL, NULL)
