/* The SQLite backend of the store (storage/store.h).
 *
 * One connection, used by one thread at a time: the caller's thread until
 * store_start, the store's own thread after it. The database runs in WAL
 * mode with synchronous=FULL, so a COMMIT returns only when the transaction
 * is on disk; every statement is prepared once at open. */
#include "storage/store.h"

#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_BATCH_DEFAULT 4096u
#define STORE_CONTAINER(ptr, type, field) ((type *)(void *)((char *)(ptr) - offsetof(type, field)))
#define STORE_BUSY_TIMEOUT_MS 5000

/* Schema migrations, in order: entry i takes the database from version i to
 * version i + 1. Never edit an entry once released; append a new one. */
static const char *const store_migrations[] = {
    /* 1: accounts, the append-only transfer history, open reservations. */
    "CREATE TABLE accounts ("
    " id TEXT PRIMARY KEY,"
    " flags INTEGER NOT NULL,"
    " debits_posted INTEGER NOT NULL,"
    " credits_posted INTEGER NOT NULL,"
    " debits_pending INTEGER NOT NULL,"
    " credits_pending INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE transfers ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " debit_account TEXT NOT NULL,"
    " credit_account TEXT NOT NULL,"
    " amount INTEGER NOT NULL,"
    " kind INTEGER NOT NULL,"
    " flags INTEGER NOT NULL,"
    " link TEXT,"
    " expires_at INTEGER NOT NULL,"
    " ts INTEGER NOT NULL,"
    " ref TEXT NOT NULL,"
    " tag TEXT NOT NULL,"
    " hash BLOB NOT NULL"
    ");"
    "CREATE INDEX transfers_debit ON transfers(debit_account);"
    "CREATE INDEX transfers_credit ON transfers(credit_account);"
    "CREATE INDEX transfers_link ON transfers(link) WHERE link IS NOT NULL;"
    "CREATE TABLE pending ("
    " id TEXT PRIMARY KEY,"
    " expires_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX pending_expires ON pending(expires_at);"
    /* The chain head as of the last commit: a truncated history shows. */
    "CREATE TABLE head ("
    " one INTEGER PRIMARY KEY CHECK (one = 1),"
    " seq INTEGER NOT NULL,"
    " hash BLOB NOT NULL"
    ");"
    /* History is append-only: the database itself refuses edits. (Someone
     * with the file can drop these; the hash chain is what catches that.) */
    "CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers"
    " BEGIN SELECT RAISE(ABORT, 'transfers are append-only'); END;"
    "CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers"
    " BEGIN SELECT RAISE(ABORT, 'transfers are append-only'); END;",
    /* 2: usage statistics per day and model read transfers by kind and time. */
    "CREATE INDEX transfers_usage ON transfers(kind, ts);",
    /* 3: small durable state outside the ledger (preferences, adapter
     * cursors, per-scope settings), keyed by namespace and key. */
    "CREATE TABLE state ("
    " ns TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (ns, key)"
    ") WITHOUT ROWID;",
};

#define STORE_STATE_VERSION 3 /* the first schema with the state table */

#define STORE_SCHEMA_LATEST ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

#define STORE_TRANSFER_COLS                                                                \
    "seq, id, debit_account, credit_account, amount, kind, flags, link, expires_at, ts, " \
    "ref, tag, hash"

enum store_stmt_id {
    ST_BEGIN_WRITE,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_ACCOUNT_GET,
    ST_ACCOUNT_INSERT,
    ST_ACCOUNT_UPDATE,
    ST_ACCOUNT_EACH,
    ST_TRANSFER_GET,
    ST_TRANSFER_INSERT,
    ST_TRANSFER_EACH,
    ST_HEAD,
    ST_HEAD_RECORD,
    ST_HEAD_RECORDED,
    ST_FIND_LINK,
    ST_LINK_SUM,
    ST_PENDING_ADD,
    ST_PENDING_REMOVE,
    ST_PENDING_EXPIRED,
    ST_PENDING_NEXT,
    ST_PENDING_EACH,
    ST_HISTORY,
    ST_USAGE,
    ST_STATE_GET, /* from here on: statements of STORE_STATE_VERSION */
    ST_STATE_PUT,
    ST_STATE_DELETE,
    ST_STATE_EACH,
    ST_COUNT
};

static const char *const store_sql[ST_COUNT] = {
    [ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT job",
    [ST_RELEASE] = "RELEASE job",
    [ST_ROLLBACK_TO] = "ROLLBACK TO job",
    [ST_ACCOUNT_GET] = "SELECT id, flags, debits_posted, credits_posted, debits_pending,"
                       " credits_pending, created_at FROM accounts WHERE id = ?1",
    [ST_ACCOUNT_INSERT] = "INSERT INTO accounts (id, flags, debits_posted, credits_posted,"
                          " debits_pending, credits_pending, created_at)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_ACCOUNT_UPDATE] = "UPDATE accounts SET debits_posted = ?2, credits_posted = ?3,"
                          " debits_pending = ?4, credits_pending = ?5 WHERE id = ?1",
    [ST_ACCOUNT_EACH] = "SELECT id, flags, debits_posted, credits_posted, debits_pending,"
                        " credits_pending, created_at FROM accounts ORDER BY id",
    [ST_TRANSFER_GET] = "SELECT " STORE_TRANSFER_COLS " FROM transfers WHERE id = ?1",
    [ST_TRANSFER_INSERT] = "INSERT INTO transfers (" STORE_TRANSFER_COLS ")"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_TRANSFER_EACH] = "SELECT " STORE_TRANSFER_COLS " FROM transfers WHERE seq >= ?1"
                         " ORDER BY seq",
    [ST_HEAD] = "SELECT seq, hash FROM transfers ORDER BY seq DESC LIMIT 1",
    [ST_HEAD_RECORD] = "INSERT OR REPLACE INTO head (one, seq, hash) VALUES (1, ?1, ?2)",
    [ST_HEAD_RECORDED] = "SELECT seq, hash FROM head WHERE one = 1",
    [ST_FIND_LINK] = "SELECT " STORE_TRANSFER_COLS " FROM transfers"
                     " WHERE link = ?1 AND (flags & ?2) != 0 ORDER BY seq LIMIT 1",
    [ST_LINK_SUM] = "SELECT COALESCE(SUM(amount), 0) FROM transfers"
                    " WHERE link = ?1 AND (flags & ?2) != 0",
    [ST_PENDING_ADD] = "INSERT INTO pending (id, expires_at) VALUES (?1, ?2)",
    [ST_PENDING_REMOVE] = "DELETE FROM pending WHERE id = ?1",
    [ST_PENDING_EXPIRED] = "SELECT id FROM pending WHERE expires_at > 0 AND expires_at <= ?1"
                           " ORDER BY expires_at, id LIMIT ?2",
    [ST_PENDING_NEXT] = "SELECT MIN(expires_at) FROM pending WHERE expires_at > 0",
    [ST_PENDING_EACH] = "SELECT id, expires_at FROM pending ORDER BY id",
    [ST_HISTORY] = "SELECT " STORE_TRANSFER_COLS " FROM transfers"
                   " WHERE (debit_account = ?1 OR credit_account = ?1) AND seq < ?2"
                   " ORDER BY seq DESC LIMIT ?3",
    [ST_USAGE] = "SELECT ts / 86400000, tag, SUM(amount), COUNT(*) FROM transfers"
                 " WHERE kind = ?1 AND ts >= ?2 AND ts < ?3 AND (flags & ?4) = 0"
                 " AND (?5 IS NULL OR debit_account = ?5)"
                 " GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?6",
    [ST_STATE_GET] = "SELECT value FROM state WHERE ns = ?1 AND key = ?2",
    [ST_STATE_PUT] = "INSERT INTO state (ns, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)"
                     " ON CONFLICT (ns, key) DO UPDATE SET value = ?3, updated_at = ?4",
    [ST_STATE_DELETE] = "DELETE FROM state WHERE ns = ?1 AND key = ?2",
    [ST_STATE_EACH] = "SELECT key, value FROM state WHERE ns = ?1 AND key >= ?2 ORDER BY key",
};

struct store_txn {
    struct store *store;
    bool head_valid;                       /* head_* hold the chain head */
    uint64_t head_seq;                     /* last appended seq */
    uint8_t head_hash[STORE_HASH_SIZE];    /* last appended hash */
    uint64_t saved_seq;                    /* head at the current savepoint */
    uint8_t saved_hash[STORE_HASH_SIZE];
    bool saved_valid;
    bool head_dirty;                       /* appended since the last commit */
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    int version;                 /* schema version of the open database */
    bool single_commit;          /* one job per transaction */
    unsigned batch_max;          /* most jobs per transaction */
    struct store_txn txn;        /* the one transaction context */

    /* Threading; all below mu is guarded by mu. */
    uv_loop_t *loop;
    uv_thread_t thread;
    uv_async_t async;            /* wakes the loop for completions */
    bool started;                /* the thread runs (until joined) */
    uv_mutex_t mu;
    uv_cond_t cv;
    struct store_job *queue_head; /* waiting to run */
    struct store_job *queue_tail;
    struct store_job *done_head;  /* committed, waiting for their done call */
    struct store_job *done_tail;
    bool stopping;               /* no new jobs; the thread exits when idle */
    bool exited;                 /* the thread has left its loop */
    void (*stop_cb)(struct store *store, void *data);
    void *stop_data;
};

int store_schema_latest(void)
{
    return STORE_SCHEMA_LATEST;
}

int store_schema_version(const struct store *store)
{
    return store->version;
}

static int store__fail(struct store *s, const char *what)
{
    log_error("store.error", "op=%s err=%s", what, sqlite3_errmsg(s->db));
    return HB_ESTORAGE;
}

/* Reset a prepared statement for a fresh use. */
static sqlite3_stmt *store__stmt(struct store *s, enum store_stmt_id id)
{
    sqlite3_stmt *st = s->stmt[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Run a statement that returns no rows. */
static int store__step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
    int r = sqlite3_step(st);
    int rc = r == SQLITE_DONE ? 0 : store__fail(s, what);
    sqlite3_reset(st);
    return rc;
}

static int store__exec_stmt(struct store *s, enum store_stmt_id id)
{
    return store__step_done(s, store__stmt(s, id), store_sql[id]);
}

static void store__copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    if (v == NULL) {
        dst[0] = '\0';
        return;
    }
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void store__row_account(sqlite3_stmt *st, struct store_account *a)
{
    store__copy_text(a->id, sizeof(a->id), st, 0);
    a->flags = (uint32_t)sqlite3_column_int64(st, 1);
    a->debits_posted = sqlite3_column_int64(st, 2);
    a->credits_posted = sqlite3_column_int64(st, 3);
    a->debits_pending = sqlite3_column_int64(st, 4);
    a->credits_pending = sqlite3_column_int64(st, 5);
    a->created_at = sqlite3_column_int64(st, 6);
}

static void store__row_transfer(sqlite3_stmt *st, struct store_transfer *t)
{
    t->seq = (uint64_t)sqlite3_column_int64(st, 0);
    store__copy_text(t->id, sizeof(t->id), st, 1);
    store__copy_text(t->debit, sizeof(t->debit), st, 2);
    store__copy_text(t->credit, sizeof(t->credit), st, 3);
    t->amount = sqlite3_column_int64(st, 4);
    t->kind = (uint32_t)sqlite3_column_int64(st, 5);
    t->flags = (uint32_t)sqlite3_column_int64(st, 6);
    store__copy_text(t->link, sizeof(t->link), st, 7);
    t->expires_at = sqlite3_column_int64(st, 8);
    t->ts = sqlite3_column_int64(st, 9);
    store__copy_text(t->ref, sizeof(t->ref), st, 10);
    store__copy_text(t->tag, sizeof(t->tag), st, 11);
    memset(t->hash, 0, sizeof(t->hash));
    const void *h = sqlite3_column_blob(st, 12);
    int hn = sqlite3_column_bytes(st, 12);
    if (h != NULL)
        memcpy(t->hash, h, hn < STORE_HASH_SIZE ? (size_t)hn : STORE_HASH_SIZE);
}

/* ---- Opening and migrations ---------------------------------------------- */

static int store__pragma_int(struct store *s, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = store__fail(s, sql);
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = store__fail(s, sql);
        goto out;
    }
    *out = sqlite3_column_int(st, 0);
out:
    sqlite3_finalize(st);
    return rc;
}

static int store__exec(struct store *s, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("store.error", "op=exec err=%s", err != NULL ? err : "unknown");
        sqlite3_free(err);
        return HB_ESTORAGE;
    }
    return 0;
}

static int store__migrate(struct store *s, int target)
{
    int rc = 0;
    while (s->version < target) {
        char sql[64];
        int next = s->version + 1;
        rc = store__exec(s, "BEGIN IMMEDIATE");
        if (rc < 0)
            goto out;
        rc = store__exec(s, store_migrations[s->version]);
        if (rc == 0) {
            snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", next);
            rc = store__exec(s, sql);
        }
        if (rc == 0)
            rc = store__exec(s, "COMMIT");
        if (rc < 0) {
            store__exec(s, "ROLLBACK");
            goto out;
        }
        log_info("store.migrated", "version=%d", next);
        s->version = next;
    }
out:
    return rc;
}

/* Create the database file with mode 0600 so that no other user can read the
 * ledger; SQLite gives its -wal and -shm files the same mode. */
static int store__file_create(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? 0 : HB_EIO;
    int rc = fchmod(fd, 0600) == 0 ? 0 : HB_EIO;
    close(fd);
    return rc;
}

struct store *store_new(const struct store_options *opts, int *rc_out)
{
    int rc = 0;
    struct store *s = NULL;
    if (opts == NULL || opts->path == NULL || opts->path[0] == '\0' || opts->schema_version < 0 ||
        opts->schema_version > STORE_SCHEMA_LATEST) {
        rc = HB_EINVAL;
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    s->txn.store = s;
    s->single_commit = opts->single_commit;
    s->batch_max = opts->batch_max != 0 ? opts->batch_max : STORE_BATCH_DEFAULT;
    if (!opts->read_only) {
        rc = store__file_create(opts->path);
        if (rc < 0) {
            log_error("store.open", "path=%s err=%s", opts->path, strerror(errno));
            goto out;
        }
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(opts->path, &s->db, flags, NULL) != SQLITE_OK) {
        log_error("store.open", "path=%s err=%s", opts->path,
                  s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        rc = HB_ESTORAGE;
        goto out;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);
    rc = store__pragma_int(s, "PRAGMA user_version", &s->version);
    if (rc < 0)
        goto out;
    if (s->version > STORE_SCHEMA_LATEST) {
        log_error("store.schema_newer",
                  "path=%s version=%d supported=%d hint=\"this database was written by a newer "
                  "haibot; run that version\"",
                  opts->path, s->version, STORE_SCHEMA_LATEST);
        rc = HB_ESCHEMA;
        goto out;
    }
    if (opts->read_only && s->version != STORE_SCHEMA_LATEST) {
        log_error("store.schema_older",
                  "path=%s version=%d expected=%d hint=\"start the daemon once to upgrade it\"",
                  opts->path, s->version, STORE_SCHEMA_LATEST);
        rc = HB_ESCHEMA;
        goto out;
    }
    if (!opts->read_only) {
        /* WAL lets readers (verify) run beside the writer; FULL makes every
         * commit durable before it returns. */
        rc = store__exec(s, "PRAGMA journal_mode = WAL");
        /* A larger page cache keeps the indexes' hot pages in memory under
         * load; checkpoints run less often and move more pages each. */
        if (rc == 0)
            rc = store__exec(s, "PRAGMA cache_size = -65536");
        if (rc == 0)
            rc = store__exec(s, "PRAGMA wal_autocheckpoint = 8192");
        if (rc == 0)
            rc = store__exec(s, opts->relaxed_sync ? "PRAGMA synchronous = NORMAL"
                                                   : "PRAGMA synchronous = FULL");
        if (rc < 0)
            goto out;
        rc = store__migrate(s, opts->schema_version != 0 ? opts->schema_version
                                                         : STORE_SCHEMA_LATEST);
        if (rc < 0)
            goto out;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        /* A database held at an older version (tests of upgrades) lacks the
         * later tables; their statements stay unprepared. */
        if (i >= ST_STATE_GET && s->version < STORE_STATE_VERSION)
            continue;
        if (sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                               NULL) != SQLITE_OK) {
            rc = store__fail(s, store_sql[i]);
            goto out;
        }
    }
out:
    if (rc < 0) {
        store_free(s);
        s = NULL;
    }
    if (rc_out != NULL)
        *rc_out = rc;
    return s;
}

void store_free(struct store *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    if (s->db != NULL)
        sqlite3_close(s->db);
    free(s);
}

/* ---- Transactions ---------------------------------------------------------- */

int store_txn_begin(struct store *store, bool write, struct store_txn **txn)
{
    int rc = store__exec_stmt(store, write ? ST_BEGIN_WRITE : ST_BEGIN_READ);
    store->txn.head_valid = false;
    store->txn.head_dirty = false;
    *txn = rc == 0 ? &store->txn : NULL;
    return rc;
}

/* Write the chain head into its own record, once per transaction. */
static int store__head_record(struct store_txn *txn)
{
    struct store *s = txn->store;
    if (!txn->head_dirty || !txn->head_valid)
        return 0;
    sqlite3_stmt *st = store__stmt(s, ST_HEAD_RECORD);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)txn->head_seq);
    sqlite3_bind_blob(st, 2, txn->head_hash, STORE_HASH_SIZE, SQLITE_STATIC);
    return store__step_done(s, st, "head_record");
}

int store_txn_end(struct store_txn *txn, bool commit)
{
    struct store *s = txn->store;
    int rc = 0;
    if (commit) {
        rc = store__head_record(txn);
        if (rc == 0)
            rc = store__exec_stmt(s, ST_COMMIT);
        if (rc == 0)
            goto out;
    }
    store__exec_stmt(s, ST_ROLLBACK);
out:
    txn->head_valid = false;
    txn->head_dirty = false;
    return rc;
}

/* Run every job of a batch in one transaction, each in its own savepoint. */
static void store__batch_run(struct store *s, struct store_job *jobs)
{
    struct store_txn *txn = &s->txn;
    uint64_t started_ns = uv_hrtime();
    size_t njobs = 0;
    int rc = store__exec_stmt(s, ST_BEGIN_WRITE);
    txn->head_valid = false;
    txn->head_dirty = false;
    for (struct store_job *j = jobs; j != NULL; j = j->next) {
        njobs++;
        if (rc < 0) {
            j->rc = HB_ESTORAGE;
            continue;
        }
        rc = store__exec_stmt(s, ST_SAVEPOINT);
        if (rc < 0) {
            j->rc = HB_ESTORAGE;
            continue;
        }
        txn->saved_valid = txn->head_valid;
        txn->saved_seq = txn->head_seq;
        memcpy(txn->saved_hash, txn->head_hash, STORE_HASH_SIZE);
        j->rc = j->run(txn, j);
        if (j->rc < 0 && j->rc != HB_EEXISTS) {
            rc = store__exec_stmt(s, ST_ROLLBACK_TO);
            txn->head_valid = txn->saved_valid;
            txn->head_seq = txn->saved_seq;
            memcpy(txn->head_hash, txn->saved_hash, STORE_HASH_SIZE);
        }
        if (rc == 0)
            rc = store__exec_stmt(s, ST_RELEASE);
    }
    if (rc == 0)
        rc = store__head_record(txn);
    if (rc == 0)
        rc = store__exec_stmt(s, ST_COMMIT);
    /* Measured around the whole transaction: the fsync of COMMIT dominates. */
    metrics_observe(metrics_std()->storage_commit, NULL,
                    (double)(uv_hrtime() - started_ns) / 1e9);
    metrics_observe(metrics_std()->storage_batch, NULL, (double)njobs);
    if (rc < 0) {
        /* Nothing of this transaction is durable: every job failed. */
        store__exec_stmt(s, ST_ROLLBACK);
        for (struct store_job *j = jobs; j != NULL; j = j->next)
            j->rc = HB_ESTORAGE;
    }
    txn->head_valid = false;
}

static void store__thread(void *arg)
{
    struct store *s = arg;
    uv_mutex_lock(&s->mu);
    for (;;) {
        while (s->queue_head == NULL && !s->stopping)
            uv_cond_wait(&s->cv, &s->mu);
        if (s->queue_head == NULL)
            break;
        /* Take what is queued, up to the batch limit. */
        unsigned limit = s->single_commit ? 1u : s->batch_max;
        struct store_job *first = s->queue_head;
        struct store_job *last = first;
        for (unsigned n = 1; n < limit && last->next != NULL; n++)
            last = last->next;
        s->queue_head = last->next;
        if (s->queue_head == NULL)
            s->queue_tail = NULL;
        last->next = NULL;
        uv_mutex_unlock(&s->mu);

        store__batch_run(s, first);

        uv_mutex_lock(&s->mu);
        if (s->done_tail != NULL)
            s->done_tail->next = first;
        else
            s->done_head = first;
        s->done_tail = last;
        uv_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
        uv_mutex_lock(&s->mu);
    }
    s->exited = true;
    uv_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
}

static void store__closed(uv_handle_t *handle)
{
    struct store *s = STORE_CONTAINER(handle, struct store, async);
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    s->loop = NULL;
    if (s->stop_cb != NULL)
        s->stop_cb(s, s->stop_data);
}

static void store__async(uv_async_t *handle)
{
    struct store *s = STORE_CONTAINER(handle, struct store, async);
    uv_mutex_lock(&s->mu);
    struct store_job *done = s->done_head;
    s->done_head = s->done_tail = NULL;
    bool exited = s->exited;
    uv_mutex_unlock(&s->mu);
    while (done != NULL) {
        struct store_job *next = done->next;
        done->next = NULL;
        done->done(done, done->rc);
        done = next;
    }
    if (exited && s->started) {
        /* The thread left its loop after its last completion was queued, so
         * the list drained above was the last one. */
        uv_thread_join(&s->thread);
        s->started = false;
        uv_close((uv_handle_t *)&s->async, store__closed);
    }
}

int store_start(struct store *s, uv_loop_t *loop)
{
    int rc = 0;
    if (s->started || s->loop != NULL)
        return HB_ESTATE;
    rc = uv_mutex_init(&s->mu);
    if (rc < 0)
        goto out;
    rc = uv_cond_init(&s->cv);
    if (rc < 0) {
        uv_mutex_destroy(&s->mu);
        goto out;
    }
    rc = uv_async_init(loop, &s->async, store__async);
    if (rc < 0) {
        uv_cond_destroy(&s->cv);
        uv_mutex_destroy(&s->mu);
        goto out;
    }
    s->loop = loop;
    s->stopping = s->exited = false;
    s->stop_cb = NULL;
    s->started = true;
    rc = uv_thread_create(&s->thread, store__thread, s);
    if (rc < 0) {
        s->started = false;
        uv_close((uv_handle_t *)&s->async, store__closed);
    }
out:
    return rc;
}

int store_submit(struct store *s, struct store_job *job)
{
    int rc = 0;
    job->next = NULL;
    uv_mutex_lock(&s->mu);
    if (s->stopping) {
        rc = HB_ECANCELED;
    } else {
        if (s->queue_tail != NULL)
            s->queue_tail->next = job;
        else
            s->queue_head = job;
        s->queue_tail = job;
        uv_cond_signal(&s->cv);
    }
    uv_mutex_unlock(&s->mu);
    return rc;
}

void store_stop(struct store *s, void (*cb)(struct store *store, void *data), void *data)
{
    s->stop_cb = cb;
    s->stop_data = data;
    uv_mutex_lock(&s->mu);
    s->stopping = true;
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
}

/* ---- Records ----------------------------------------------------------------- */

int store_txn_account_get(struct store_txn *txn, const char *id, struct store_account *out)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_GET);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW)
        store__row_account(st, out);
    else if (r == SQLITE_DONE)
        rc = HB_ENOTFOUND;
    else
        rc = store__fail(s, "account_get");
    sqlite3_reset(st);
    return rc;
}

int store_txn_account_insert(struct store_txn *txn, const struct store_account *a)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_INSERT);
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->flags);
    sqlite3_bind_int64(st, 3, a->debits_posted);
    sqlite3_bind_int64(st, 4, a->credits_posted);
    sqlite3_bind_int64(st, 5, a->debits_pending);
    sqlite3_bind_int64(st, 6, a->credits_pending);
    sqlite3_bind_int64(st, 7, a->created_at);
    return store__step_done(s, st, "account_insert");
}

int store_txn_account_update(struct store_txn *txn, const struct store_account *a)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_UPDATE);
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->debits_posted);
    sqlite3_bind_int64(st, 3, a->credits_posted);
    sqlite3_bind_int64(st, 4, a->debits_pending);
    sqlite3_bind_int64(st, 5, a->credits_pending);
    return store__step_done(s, st, "account_update");
}

/* Step a statement expected to return at most one transfer row. */
static int store__transfer_one(struct store *s, sqlite3_stmt *st, struct store_transfer *out,
                               const char *what)
{
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW)
        store__row_transfer(st, out);
    else if (r == SQLITE_DONE)
        rc = HB_ENOTFOUND;
    else
        rc = store__fail(s, what);
    sqlite3_reset(st);
    return rc;
}

int store_txn_transfer_get(struct store_txn *txn, const char *id, struct store_transfer *out)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_TRANSFER_GET);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return store__transfer_one(s, st, out, "transfer_get");
}

int store_txn_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    struct store *s = txn->store;
    int rc = 0;
    if (!txn->head_valid) {
        sqlite3_stmt *st = store__stmt(s, ST_HEAD);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            txn->head_seq = (uint64_t)sqlite3_column_int64(st, 0);
            memset(txn->head_hash, 0, STORE_HASH_SIZE);
            const void *h = sqlite3_column_blob(st, 1);
            int hn = sqlite3_column_bytes(st, 1);
            if (h != NULL)
                memcpy(txn->head_hash, h, hn < STORE_HASH_SIZE ? (size_t)hn : STORE_HASH_SIZE);
            txn->head_valid = true;
        } else if (r == SQLITE_DONE) {
            txn->head_seq = 0;
            memset(txn->head_hash, 0, STORE_HASH_SIZE);
            txn->head_valid = true;
        } else {
            rc = store__fail(s, "head");
        }
        sqlite3_reset(st);
        if (rc < 0)
            goto out;
    }
    *seq = txn->head_seq;
    memcpy(hash, txn->head_hash, STORE_HASH_SIZE);
out:
    return rc;
}

static void store__bind_opt_text(sqlite3_stmt *st, int col, const char *text)
{
    if (text == NULL || text[0] == '\0')
        sqlite3_bind_null(st, col);
    else
        sqlite3_bind_text(st, col, text, -1, SQLITE_STATIC);
}

int store_txn_transfer_append(struct store_txn *txn, const struct store_transfer *t)
{
    struct store *s = txn->store;
    uint64_t head;
    uint8_t hash[STORE_HASH_SIZE];
    int rc = store_txn_head(txn, &head, hash);
    if (rc < 0)
        return rc;
    if (t->seq != head + 1)
        return HB_EINVAL;
    sqlite3_stmt *st = store__stmt(s, ST_TRANSFER_INSERT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)t->seq);
    sqlite3_bind_text(st, 2, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->debit, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->credit, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, t->amount);
    sqlite3_bind_int64(st, 6, t->kind);
    sqlite3_bind_int64(st, 7, t->flags);
    store__bind_opt_text(st, 8, t->link);
    sqlite3_bind_int64(st, 9, t->expires_at);
    sqlite3_bind_int64(st, 10, t->ts);
    sqlite3_bind_text(st, 11, t->ref, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, t->tag, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 13, t->hash, STORE_HASH_SIZE, SQLITE_STATIC);
    rc = store__step_done(s, st, "transfer_append");
    if (rc == 0) {
        txn->head_seq = t->seq;
        memcpy(txn->head_hash, t->hash, STORE_HASH_SIZE);
        txn->head_valid = true;
        txn->head_dirty = true;
    }
    return rc;
}

int store_txn_transfer_find_link(struct store_txn *txn, const char *link, uint32_t flags_any,
                                 struct store_transfer *out)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_FIND_LINK);
    sqlite3_bind_text(st, 1, link, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, flags_any);
    return store__transfer_one(s, st, out, "find_link");
}

int store_txn_link_sum(struct store_txn *txn, const char *link, uint32_t flags_any, int64_t *sum)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_LINK_SUM);
    sqlite3_bind_text(st, 1, link, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, flags_any);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *sum = sqlite3_column_int64(st, 0);
    else
        rc = store__fail(s, "link_sum");
    sqlite3_reset(st);
    return rc;
}

int store_txn_pending_add(struct store_txn *txn, const char *id, int64_t expires_at)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_ADD);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, expires_at);
    return store__step_done(s, st, "pending_add");
}

int store_txn_pending_remove(struct store_txn *txn, const char *id)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_REMOVE);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return store__step_done(s, st, "pending_remove");
}

int store_txn_pending_expired(struct store_txn *txn, int64_t now, char (*ids)[STORE_ID_SIZE],
                              size_t max, size_t *n)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_EXPIRED);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    int rc = 0;
    int r;
    *n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max)
        store__copy_text(ids[(*n)++], STORE_ID_SIZE, st, 0);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "pending_expired");
    sqlite3_reset(st);
    return rc;
}

int store_txn_pending_next(struct store_txn *txn, int64_t *expires_at)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_NEXT);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *expires_at = sqlite3_column_int64(st, 0); /* NULL reads as 0 */
    else
        rc = store__fail(s, "pending_next");
    sqlite3_reset(st);
    return rc;
}

int store_txn_transfer_each(struct store_txn *txn, uint64_t from_seq,
                            int (*fn)(const struct store_transfer *t, void *data), void *data)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_TRANSFER_EACH);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)from_seq);
    struct store_transfer t;
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        store__row_transfer(st, &t);
        rc = fn(&t, data);
        if (rc != 0)
            goto out;
    }
    if (r != SQLITE_DONE)
        rc = store__fail(s, "transfer_each");
out:
    sqlite3_reset(st);
    return rc;
}

int store_txn_account_each(struct store_txn *txn,
                           int (*fn)(const struct store_account *a, void *data), void *data)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_EACH);
    struct store_account a;
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        store__row_account(st, &a);
        rc = fn(&a, data);
        if (rc != 0)
            goto out;
    }
    if (r != SQLITE_DONE)
        rc = store__fail(s, "account_each");
out:
    sqlite3_reset(st);
    return rc;
}

int store_txn_pending_each(struct store_txn *txn,
                           int (*fn)(const char *id, int64_t expires_at, void *data), void *data)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_EACH);
    char id[STORE_ID_SIZE];
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        store__copy_text(id, sizeof(id), st, 0);
        rc = fn(id, sqlite3_column_int64(st, 1), data);
        if (rc != 0)
            goto out;
    }
    if (r != SQLITE_DONE)
        rc = store__fail(s, "pending_each");
out:
    sqlite3_reset(st);
    return rc;
}

int store_txn_history(struct store_txn *txn, const char *account, uint64_t before_seq,
                      struct store_transfer *out, size_t max, size_t *n)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_HISTORY);
    sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before_seq != 0 ? (sqlite3_int64)before_seq : INT64_MAX);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
    int rc = 0;
    int r;
    *n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max)
        store__row_transfer(st, &out[(*n)++]);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "history");
    sqlite3_reset(st);
    return rc;
}

int store_txn_usage(struct store_txn *txn, uint32_t kind, uint32_t flags_none, const char *account,
                    int64_t from, int64_t to, struct store_usage *out, size_t max, size_t *n)
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_USAGE);
    sqlite3_bind_int64(st, 1, kind);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    sqlite3_bind_int64(st, 4, flags_none);
    store__bind_opt_text(st, 5, account);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)max);
    int rc = 0;
    int r;
    *n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        struct store_usage *u = &out[(*n)++];
        u->day = sqlite3_column_int64(st, 0);
        store__copy_text(u->tag, sizeof(u->tag), st, 1);
        u->amount = sqlite3_column_int64(st, 2);
        u->count = sqlite3_column_int64(st, 3);
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "usage");
    sqlite3_reset(st);
    return rc;
}

int store_txn_head_recorded(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    struct store *s = txn->store;
    sqlite3_stmt *st = store__stmt(s, ST_HEAD_RECORDED);
    int r = sqlite3_step(st);
    int rc = 0;
    *seq = 0;
    memset(hash, 0, STORE_HASH_SIZE);
    if (r == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
        const void *h = sqlite3_column_blob(st, 1);
        int hn = sqlite3_column_bytes(st, 1);
        if (h != NULL)
            memcpy(hash, h, hn < STORE_HASH_SIZE ? (size_t)hn : STORE_HASH_SIZE);
    } else if (r != SQLITE_DONE) {
        rc = store__fail(s, "head_recorded");
    }
    sqlite3_reset(st);
    return rc;
}

/* ---- State ------------------------------------------------------------- */

int store_txn_state_get(struct store_txn *txn, const char *ns, const char *key, char **value)
{
    struct store *s = txn->store;
    *value = NULL;
    if (s->stmt[ST_STATE_GET] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_STATE_GET);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        *value = strdup(v != NULL ? (const char *)v : "");
        if (*value == NULL)
            rc = HB_ENOMEM;
    } else if (r == SQLITE_DONE) {
        rc = HB_ENOTFOUND;
    } else {
        rc = store__fail(s, "state_get");
    }
    sqlite3_reset(st);
    return rc;
}

int store_txn_state_put(struct store_txn *txn, const char *ns, const char *key, const char *value,
                        int64_t now_ms)
{
    struct store *s = txn->store;
    if (s->stmt[ST_STATE_PUT] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st;
    if (value == NULL) {
        st = store__stmt(s, ST_STATE_DELETE);
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        return store__step_done(s, st, "state_delete");
    }
    st = store__stmt(s, ST_STATE_PUT);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    return store__step_done(s, st, "state_put");
}

int store_txn_state_each(struct store_txn *txn, const char *ns, const char *prefix,
                         int (*fn)(const char *key, const char *value, void *data), void *data)
{
    struct store *s = txn->store;
    if (s->stmt[ST_STATE_EACH] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_STATE_EACH);
    size_t plen = strlen(prefix);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (k == NULL || strncmp(k, prefix, plen) != 0)
            break; /* keys are ordered: past the prefix */
        rc = fn(k, v != NULL ? v : "", data);
        if (rc != 0)
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "state_each");
    sqlite3_reset(st);
    return rc;
}
