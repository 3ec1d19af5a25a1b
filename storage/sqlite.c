/* The SQLite backend of the store (storage/store.h).
 *
 * One connection, used by one thread at a time: the caller's thread until
 * store_start, the store's own thread after it. The database runs in WAL
 * mode with synchronous=FULL, so a COMMIT returns only when the transaction
 * is on disk; every statement is prepared once at open.
 *
 * This file holds the statement helpers and the transaction calls that
 * storage/store.c's group commit makes. Opening and migrations are in
 * sqlite_open.c, the records in sqlite_records.c and beside it. */
#include "storage/store.h"

#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"
#include "storage/sqlite_internal.h"
#include "base/util.h"

#include <sqlite3.h>
#include <stddef.h>
#include <string.h>

int store__fail(struct sqlite_store *s, const char *what)
{
    log_error("store.error", "op=%s err=%s", what, sqlite3_errmsg(s->db));
    return HB_ESTORAGE;
}

/* Reset a prepared statement for a fresh use. */
sqlite3_stmt *store__stmt(struct sqlite_store *s, enum store_stmt_id id)
{
    sqlite3_stmt *st = s->stmt[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Run a statement that returns no rows. */
int store__step_done(struct sqlite_store *s, sqlite3_stmt *st, const char *what)
{
    int r = sqlite3_step(st);
    int rc = r == SQLITE_DONE ? 0 : store__fail(s, what);
    sqlite3_reset(st);
    return rc;
}

int store__exec_stmt(struct sqlite_store *s, enum store_stmt_id id)
{
    return store__step_done(s, store__stmt(s, id), store__sql[id]);
}

/* ---- Transactions (store_backend.h) ----------------------------------------- */

static struct sqlite_store *sqlite__store(struct store *s)
{
    return (struct sqlite_store *)s;
}

int sqlite__begin(struct store *s, bool write)
{
    struct sqlite_store *ss = sqlite__store(s);
    /* A reader's batches are read transactions: no write lock, a snapshot
     * of what was committed when their first statement ran. The writer
     * may keep accounts and counters from its last commit
     * (sqlite_kept.c). */
    bool writer = write && !s->reader;
    if (!writer)
        sqlite__kept_drop(ss);
    int rc = store__exec_stmt(ss, writer ? ST_BEGIN_WRITE : ST_BEGIN_READ);
    if (rc == 0 && writer)
        rc = sqlite__kept_txn_begin(ss);
    if (rc < 0)
        sqlite__kept_drop(ss);
    return rc;
}

/* What a commit leaves kept: the writer's accounts and counters, written
 * and so equal to their rows, or nothing after a failure. */
static int sqlite__committed(struct store *s, int rc)
{
    if (rc < 0 || s->reader)
        sqlite__kept_drop(sqlite__store(s));
    return rc;
}

int sqlite__commit(struct store *s)
{
    int rc = sqlite__kept_flush(sqlite__store(s));
    return sqlite__committed(s, rc < 0 ? rc : store__exec_stmt(sqlite__store(s), ST_COMMIT));
}

/* COMMIT with its WAL sync put off (sqlite_vfs.c), through the VFS that
 * gathers the WAL's writes only (a relaxed store has no sync to put off). */
int sqlite__commit_early(struct store *s, bool *owed)
{
    *owed = false;
    int flushed = sqlite__kept_flush(sqlite__store(s));
    if (flushed < 0)
        return sqlite__committed(s, flushed);
    sqlite_walbuf_defer(true);
    int rc = store__exec_stmt(sqlite__store(s), ST_COMMIT);
    sqlite_walbuf_defer(false);
    *owed = sqlite_walbuf_owes();
    if (rc < 0 && *owed) {
        *owed = false; /* nothing to tell early: made now */
        sqlite_walbuf_sync_owed();
    }
    return sqlite__committed(s, rc);
}

int sqlite__sync_owed(struct store *s)
{
    if (sqlite_walbuf_sync_owed() == SQLITE_OK)
        return 0;
    sqlite__kept_drop(sqlite__store(s));
    return store__fail(sqlite__store(s), "sync");
}

void sqlite__rollback(struct store *s)
{
    sqlite__kept_drop(sqlite__store(s));
    store__exec_stmt(sqlite__store(s), ST_ROLLBACK);
}

int sqlite__savepoint(struct store *s)
{
    sqlite__kept_job_begin(sqlite__store(s));
    return store__exec_stmt(sqlite__store(s), ST_SAVEPOINT);
}

int sqlite__release(struct store *s)
{
    sqlite__kept_job_end(sqlite__store(s), false);
    return store__exec_stmt(sqlite__store(s), ST_RELEASE);
}

int sqlite__rollback_to(struct store *s)
{
    sqlite__kept_job_end(sqlite__store(s), true); /* what the job wrote is undone */
    return store__exec_stmt(sqlite__store(s), ST_ROLLBACK_TO);
}

/* Write the chain head into its own record, once per transaction. */
int sqlite__head_record(struct store_txn *txn)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_HEAD_RECORD);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)txn->head_seq);
    sqlite3_bind_blob(st, 2, txn->head_hash, STORE_HASH_SIZE, SQLITE_STATIC);
    return store__step_done(s, st, "head_record");
}

void sqlite__after_batch(struct store *s)
{
    store__vacuum(sqlite__store(s));
}
