/* The SQLite backend of the store (storage/store.h).
 *
 * One connection, used by one thread at a time: the caller's thread until
 * store_start, the store's own thread after it. The database runs in WAL
 * mode with synchronous=FULL, so a COMMIT returns only when the transaction
 * is on disk; every statement is prepared once at open.
 *
 * This file holds the store's thread: transactions, the group commit that
 * runs a batch of jobs in one transaction, and the loop side that hands the
 * jobs back. Opening and migrations are in sqlite_open.c, the records in
 * sqlite_records.c. */
#include "storage/store.h"

#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"
#include "storage/sqlite_internal.h"
#include "base/util.h"

#include <sqlite3.h>
#include <stddef.h>
#include <string.h>

int store__fail(struct store *s, const char *what)
{
    log_error("store.error", "op=%s err=%s", what, sqlite3_errmsg(s->db));
    return HB_ESTORAGE;
}

/* Reset a prepared statement for a fresh use. */
sqlite3_stmt *store__stmt(struct store *s, enum store_stmt_id id)
{
    sqlite3_stmt *st = s->stmt[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Run a statement that returns no rows. */
int store__step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
    int r = sqlite3_step(st);
    int rc = r == SQLITE_DONE ? 0 : store__fail(s, what);
    sqlite3_reset(st);
    return rc;
}

int store__exec_stmt(struct store *s, enum store_stmt_id id)
{
    return store__step_done(s, store__stmt(s, id), store__sql[id]);
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
    metrics_observe(metrics_std()->storage_commit, NULL, (double)(uv_hrtime() - started_ns) / 1e9);
    metrics_observe(metrics_std()->storage_batch, NULL, (double)njobs);
    if (rc < 0) {
        /* Nothing of this transaction is durable: every job failed. */
        metrics_counter_add(metrics_std()->storage_errors, NULL, 1);
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
        if (s->vacuum_due) {
            /* Outside the transaction, before the jobs hear they are done. */
            s->vacuum_due = false;
            store__vacuum(s);
        }

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
    struct store *s = container_of(handle, struct store, async);
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    s->loop = NULL;
    if (s->stop_cb != NULL)
        s->stop_cb(s, s->stop_data);
}

static void store__async(uv_async_t *handle)
{
    struct store *s = container_of(handle, struct store, async);
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
