/* The store's backend-independent half (storage/store.h): the store's
 * thread, the job queue and the group commit, and the loop's polling for
 * answers. The record calls, each one indirect call into the backend
 * chosen at open (store_backend.h), are in store_records.c.
 *
 * Group commit: the thread takes every queued job (up to batch_max) into
 * one transaction, each job in its own savepoint (or grouped jobs in a
 * shared one, or none at the transaction's start: store__group_undo), and
 * commits once; the jobs' done functions run on the loop thread after the
 * commit. */
#include "storage/store.h"

#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "storage/store_backend.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void store__init(struct store *s, const struct store_ops *ops, const struct store_options *opts)
{
    s->ops = ops;
    s->txn.store = s;
    s->single_commit = opts->single_commit;
    s->batch_max = opts->batch_max != 0 ? opts->batch_max : STORE_BATCH_DEFAULT;
    if (uv_available_parallelism() >= 2)
        s->spin_ns = (uint64_t)opts->spin_us * 1000u;
}

struct store *store_new(const struct store_options *opts, int *rc)
{
    if (opts != NULL && opts->backend == STORE_BACKEND_POSTGRES)
        return store__pg_new(opts, rc);
    return store__sqlite_new(opts, rc);
}

int store__readers_open(struct store *s, const struct store_options *opts)
{
    if (opts->readers == 0)
        return 0;
    s->readers = calloc(opts->readers, sizeof(*s->readers));
    if (s->readers == NULL)
        return HB_ENOMEM;
    struct store_options ro = *opts;
    ro.read_only = true;
    ro.readers = 0;
    for (unsigned i = 0; i < opts->readers; i++) {
        int rc = 0;
        struct store *r = store_new(&ro, &rc);
        if (r == NULL)
            return rc;
        r->reader = true;
        s->readers[s->nreaders++] = r;
    }
    return 0;
}

void store__readers_close(struct store *s)
{
    for (unsigned i = 0; i < s->nreaders; i++)
        store_free(s->readers[i]);
    free(s->readers);
    s->readers = NULL;
    s->nreaders = 0;
}

void store_free(struct store *s)
{
    if (s != NULL)
        s->ops->free(s);
}

const char *store_options_where(const struct store_options *opts)
{
    if (opts->backend == STORE_BACKEND_POSTGRES)
        return "the PostgreSQL database";
    return opts->path != NULL ? opts->path : "(null)";
}

int store_schema_version(const struct store *store)
{
    return store->version;
}

/* ---- Transactions ---------------------------------------------------------- */

int store_txn_begin(struct store *store, bool write, struct store_txn **txn)
{
    int rc = store->ops->begin(store, write);
    store->txn.head_valid = false;
    store->txn.head_dirty = false;
    *txn = rc == 0 ? &store->txn : NULL;
    return rc;
}

/* Write the chain head into its own record, once per transaction. */
static int store__head_record(struct store_txn *txn)
{
    if (!txn->head_dirty || !txn->head_valid)
        return 0;
    return txn->store->ops->head_record(txn);
}

int store_txn_end(struct store_txn *txn, bool commit)
{
    struct store *s = txn->store;
    int rc = 0;
    if (commit) {
        rc = store__head_record(txn);
        if (rc == 0)
            rc = s->ops->commit(s);
        if (rc == 0)
            goto out;
    }
    s->ops->rollback(s);
out:
    txn->head_valid = false;
    txn->head_dirty = false;
    return rc;
}

static bool store__job_failed(const struct store_job *j)
{
    return j->rc < 0 && j->rc != HB_EEXISTS;
}

/* Run j; on the backend's post-run check failing, j fails. */
static void store__job_run(struct store *s, struct store_job *j)
{
    j->rc = j->run(&s->txn, j);
    if (!store__job_failed(j) && s->ops->job_end != NULL) {
        int end = s->ops->job_end(s, j);
        if (end < 0)
            j->rc = end;
    }
}

/* The chain head as a savepoint began, put back when it is rolled back. */
struct store_head_mark {
    bool valid;
    uint64_t seq;
    uint8_t hash[STORE_HASH_SIZE];
};

static void store__head_mark(const struct store_txn *txn, struct store_head_mark *m)
{
    m->valid = txn->head_valid;
    m->seq = txn->head_seq;
    memcpy(m->hash, txn->head_hash, STORE_HASH_SIZE);
}

static void store__head_back(struct store_txn *txn, const struct store_head_mark *m)
{
    txn->head_valid = m->valid;
    txn->head_seq = m->seq;
    memcpy(txn->head_hash, m->hash, STORE_HASH_SIZE);
}

/* Run j in a savepoint of its own: a failure undoes what it wrote.
 * Returns 0, or the failure of the savepoint itself (the transaction is
 * then lost). */
static int store__job_alone(struct store *s, struct store_job *j)
{
    int rc = s->ops->savepoint(s);
    if (rc < 0) {
        j->rc = HB_ESTORAGE;
        return rc;
    }
    struct store_head_mark mark;
    store__head_mark(&s->txn, &mark);
    store__job_run(s, j);
    if (store__job_failed(j)) {
        rc = s->ops->rollback_to(s);
        store__head_back(&s->txn, &mark);
    }
    return rc == 0 ? s->ops->release(s) : rc;
}

/* Grouped jobs run one after another in one savepoint (store_job.grouped).
 * A group that begins the transaction needs none: the transaction itself
 * is rolled back and begun again when one of its jobs fails. A savepoint
 * costs SQLite a copy of every page first changed inside it (about 69 a
 * batch of the generation bench); a generation's batch is one group from
 * its first job, and without that copy the store thread's CPU time per
 * job fell by about a twentieth (README). */
struct store_group {
    struct store_job *first; /* NULL: no group open */
    bool whole;              /* it began the transaction: no savepoint */
    struct store_head_mark mark;
};

static int store__group_open(struct store *s, struct store_group *g, struct store_job *first,
                             bool begins)
{
    g->whole = begins;
    if (!begins) {
        int rc = s->ops->savepoint(s);
        if (rc < 0)
            return rc;
    }
    g->first = first;
    store__head_mark(&s->txn, &g->mark);
    return 0;
}

static int store__group_close(struct store *s, struct store_group *g)
{
    if (g->first == NULL)
        return 0;
    g->first = NULL;
    return g->whole ? 0 : s->ops->release(s);
}

/* Back to where the group began: its savepoint, or the transaction's
 * start (rolled back and begun again). */
static int store__group_back(struct store *s, struct store_group *g)
{
    int rc = 0;
    if (g->whole) {
        s->ops->rollback(s);
        rc = s->ops->begin(s, true);
        s->txn.head_dirty = false;
        if (rc == 0 && s->ops->batch_begin != NULL)
            rc = s->ops->batch_begin(s, g->first);
    } else {
        rc = s->ops->rollback_to(s);
        if (rc == 0)
            rc = s->ops->release(s);
    }
    store__head_back(&s->txn, &g->mark);
    return rc;
}

/* failed, the group's last job, failed: undo the group, then run the jobs
 * before it again, each alone, so that the failure undoes only its own
 * writes. failed itself keeps what it reported: its run saw what those
 * jobs left, which their runs leave again (store_job.grouped), unless one
 * of them now ends otherwise (memory ran out): then failed runs again too,
 * on what they left this time. */
static int store__group_undo(struct store *s, struct store_group *g, struct store_job *failed)
{
    int rc = store__group_back(s, g);
    bool same = true;
    for (struct store_job *j = g->first; rc == 0 && j != failed; j = j->next) {
        int before = j->rc;
        rc = store__job_alone(s, j);
        same = same && j->rc == before;
    }
    if (rc == 0 && !same)
        rc = store__job_alone(s, failed);
    g->first = NULL;
    return rc;
}

/* Run the jobs of a batch in one transaction, each in its own savepoint
 * (grouped ones in a shared one: store__group_undo). Returns the jobs it
 * did not take when the backend ended the batch early (batch_full), cut
 * off the list, with *last the last one it took; NULL when it ran them
 * all. */
static struct store_job *store__batch_run(struct store *s, struct store_job *jobs,
                                          struct store_job **last)
{
    struct store_job *rest = NULL;
    struct store_txn *txn = &s->txn;
    struct store_group group = {.first = NULL};
    uint64_t started_ns = uv_hrtime();
    size_t njobs = 0;
    bool early = false, ran = false; /* ran: a job ran in this transaction */
    if (s->sync_failed) {
        /* What the disk holds is not known: nothing more is claimed. */
        for (struct store_job *j = jobs; j != NULL; j = j->next)
            j->rc = HB_ESTORAGE;
        return NULL;
    }
    int rc = s->ops->begin(s, true);
    txn->head_valid = false;
    txn->head_dirty = false;
    if (rc == 0 && s->ops->batch_begin != NULL)
        rc = s->ops->batch_begin(s, jobs);
    for (struct store_job *j = jobs; j != NULL; j = j->next) {
        njobs++;
        if (rc < 0) {
            j->rc = HB_ESTORAGE;
            continue;
        }
        if (j->grouped && s->ops->group_jobs) {
            if (group.first == NULL)
                rc = store__group_open(s, &group, j, !ran);
            if (rc < 0) {
                j->rc = HB_ESTORAGE;
                continue;
            }
            store__job_run(s, j);
            if (store__job_failed(j))
                rc = store__group_undo(s, &group, j);
        } else {
            rc = store__group_close(s, &group);
            if (rc == 0)
                rc = store__job_alone(s, j);
            else
                j->rc = HB_ESTORAGE;
        }
        ran = true;
        early = early || j->early;
        if (rc == 0 && j->next != NULL && s->ops->batch_full != NULL && s->ops->batch_full(s)) {
            rest = j->next;
            j->next = NULL;
            *last = j;
        }
    }
    if (rc == 0)
        rc = store__group_close(s, &group);
    if (rc == 0)
        rc = store__head_record(txn);
    if (rc == 0 && early && s->ops->commit_early != NULL)
        rc = s->ops->commit_early(s, &s->sync_owed);
    else if (rc == 0)
        rc = s->ops->commit(s);
    /* Measured around the whole transaction: the fsync of COMMIT dominates.
     * A reader's transactions are not commits of the ledger's. */
    if (!s->reader) {
        metrics_observe(metrics_std()->storage_commit, NULL,
                        (double)(uv_hrtime() - started_ns) / 1e9);
        metrics_observe(metrics_std()->storage_batch, NULL, (double)njobs);
    }
    if (rc < 0) {
        /* Nothing of this transaction is durable: every job failed. */
        metrics_counter_add(metrics_std()->storage_errors, NULL, 1);
        s->ops->rollback(s);
        for (struct store_job *j = jobs; j != NULL; j = j->next)
            j->rc = HB_ESTORAGE;
    }
    txn->head_valid = false;
    return rest;
}

/* Hand a list of done jobs (first .. last) to the loop. */
static void store__deliver(struct store *s, struct store_job *first, struct store_job *last)
{
    if (first == NULL)
        return;
    last->next = NULL;
    uv_mutex_lock(&s->mu);
    if (s->done_tail != NULL)
        s->done_tail->next = first;
    else
        s->done_head = first;
    s->done_tail = last;
    uv_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
}

/* The batch committed with its sync put off: its early jobs are told now,
 * the others once the sync is made. A failed sync fails them, and every
 * job after them: what the disk holds is no longer known. */
static void store__deliver_owed(struct store *s, struct store_job *jobs)
{
    struct store_job *early = NULL, *early_tail = NULL, *rest = NULL, *rest_tail = NULL;
    for (struct store_job *j = jobs, *next; j != NULL; j = next) {
        next = j->next;
        j->next = NULL;
        struct store_job **head = j->early ? &early : &rest;
        struct store_job **tail = j->early ? &early_tail : &rest_tail;
        if (*tail != NULL)
            (*tail)->next = j;
        else
            *head = j;
        *tail = j;
    }
    store__deliver(s, early, early_tail);
    s->sync_owed = false;
    if (s->ops->sync_owed(s) < 0) {
        s->sync_failed = true;
        log_error("store.sync_failed",
                  "hint=the disk refused to make a commit durable; every store operation now fails "
                  "until the daemon is restarted");
        for (struct store_job *j = rest; j != NULL; j = j->next)
            j->rc = HB_ESTORAGE;
    }
    store__deliver(s, rest, rest_tail);
}

static void store__thread(void *arg)
{
    struct store *s = arg;
    /* Named, so that top -H and perf tell it from the loop. */
    pthread_setname_np(pthread_self(), s->reader ? "haibot-reader" : "haibot-store");
    uv_mutex_lock(&s->mu);
    for (;;) {
        while (s->queue_head == NULL && !s->stopping)
            uv_cond_wait(&s->cv, &s->mu);
        if (s->queue_head == NULL && s->last_head != NULL) {
            /* Stopping, and every other job done: the last ones run. */
            s->queue_head = s->last_head;
            s->queue_tail = s->last_tail;
            s->last_head = s->last_tail = NULL;
        }
        if (s->queue_head == NULL)
            break;
        /* Take what is queued, up to the batch limit. Two ways to gather
         * more into one commit were measured on the generation bench and
         * not kept: jobs queued while a batch ran joining it before its
         * COMMIT (four rounds, taking turns: 6,581 to 8,497 jobs/s
         * against 8,539 to 10,614, and a longer added p99), and a thread
         * of its own syncing each commit while the next batch ran (9,770
         * against 9,678 jobs/s, with a quarter more syncs). With 64 jobs
         * in flight the rate is their number over a job's time in the
         * pipeline, and both made a job's two trips through the store
         * longer. Fewer jobs a batch did not help either: a batch_max of 8
         * or 32 gave 7,017 to 8,542 and 12,529 to 14,127 jobs/s, against
         * 13,407 to 14,954 with the default (three rounds). */
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

        struct store_job *taken = last;
        struct store_job *rest = store__batch_run(s, first, &taken);
        if (rest != NULL) {
            /* Not taken: first in line for the next batch. */
            uv_mutex_lock(&s->mu);
            last->next = s->queue_head;
            s->queue_head = rest;
            if (s->queue_tail == NULL)
                s->queue_tail = last;
            uv_mutex_unlock(&s->mu);
            last = taken;
        }
        if (s->after_batch_due) {
            /* Outside the transaction, before the jobs hear they are done. */
            s->after_batch_due = false;
            if (s->ops->after_batch != NULL)
                s->ops->after_batch(s);
        }

        if (s->sync_owed)
            store__deliver_owed(s, first);
        else
            store__deliver(s, first, last);
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

/* Polling for an answer (store_options.spin_us). While the idle handle
 * is active, the loop polls for I/O without a timeout, so the store's
 * uv_async_send is seen at once instead of after the loop's thread is
 * woken. It stops when every job submitted is done, or when spin_ns has
 * passed since the last submit (a long transaction, a remote server): the
 * loop then sleeps as before. It does not poll while more than
 * STORE_SPIN_WAITING_MAX answers are awaited: under load the answers come
 * in batches and the loop has work between them, and on the generation
 * bench polling then only took the loop's CPU time per job from about 45
 * to 62 us, at the same rate.
 *
 * A poll that ran out of time before its answer came spent its CPU for
 * nothing (a database slower than spin_us: PostgreSQL over a network, a
 * slow disk). After STORE_SPIN_MISSES such in a row, the loop sleeps at
 * once for the next STORE_SPIN_REST submits, then tries again. */
#define STORE_SPIN_WAITING_MAX 4u
#define STORE_SPIN_MISSES 8u
#define STORE_SPIN_REST 256u

static void store__spin_check(uv_idle_t *idle)
{
    struct store *s = container_of(idle, struct store, spin);
    if (s->in_flight == 0 || s->in_flight > STORE_SPIN_WAITING_MAX) {
        uv_idle_stop(idle);
    } else if (uv_hrtime() - s->spin_since > s->spin_ns) {
        uv_idle_stop(idle);
        if (++s->spin_misses >= STORE_SPIN_MISSES) {
            s->spin_misses = 0;
            s->spin_rest = STORE_SPIN_REST;
        }
    }
}

static void store__spin(struct store *s)
{
    s->spin_since = uv_hrtime();
    if (s->spin_rest > 0) {
        s->spin_rest--;
        return;
    }
    if (!uv_is_active((uv_handle_t *)&s->spin) && s->in_flight <= STORE_SPIN_WAITING_MAX)
        uv_idle_start(&s->spin, store__spin_check);
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
        s->in_flight--;
        if (uv_is_active((uv_handle_t *)&s->spin))
            s->spin_misses = 0; /* answered while polling */
        done->done(done, done->rc);
        done = next;
    }
    if (exited && s->started) {
        /* The thread left its loop after its last completion was queued, so
         * the list drained above was the last one. */
        uv_thread_join(&s->thread);
        s->started = false;
        uv_close((uv_handle_t *)&s->spin, NULL);
        uv_close((uv_handle_t *)&s->async, store__closed);
    }
}

static int store__start_one(struct store *s, uv_loop_t *loop)
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
    /* Never keeps the loop alive: the async handle does while it runs. */
    uv_idle_init(loop, &s->spin);
    uv_unref((uv_handle_t *)&s->spin);
    s->in_flight = s->spin_misses = s->spin_rest = 0;
    s->loop = loop;
    s->stopping = s->exited = false;
    s->stop_cb = NULL;
    s->started = true;
    rc = uv_thread_create(&s->thread, store__thread, s);
    if (rc < 0) {
        s->started = false;
        uv_close((uv_handle_t *)&s->spin, NULL);
        uv_close((uv_handle_t *)&s->async, store__closed);
    }
out:
    return rc;
}

/* One of a store's threads closed (store_stop): the last one tells the
 * caller. */
static void store__one_stopped(struct store *one, void *data)
{
    (void)one;
    struct store *s = data;
    if (--s->stops_left == 0 && s->user_stop_cb != NULL)
        s->user_stop_cb(s, s->user_stop_data);
}

static void store__stop_one(struct store *one, struct store *s)
{
    one->stop_cb = store__one_stopped;
    one->stop_data = s;
    uv_mutex_lock(&one->mu);
    for (struct store_job *j = one->last_head; j != NULL; j = j->next)
        one->in_flight++;
    one->stopping = true;
    uv_cond_signal(&one->cv);
    uv_mutex_unlock(&one->mu);
}

int store_start(struct store *s, uv_loop_t *loop)
{
    int rc = store__start_one(s, loop);
    unsigned started = 0;
    for (; rc == 0 && started < s->nreaders; started++)
        rc = store__start_one(s->readers[started], loop);
    if (rc < 0 && started > 0) {
        /* The ones started stop again; the loop closes their handles. */
        s->stops_left = started;
        s->user_stop_cb = NULL;
        for (unsigned i = 0; i < started - 1; i++)
            store__stop_one(s->readers[i], s);
        store__stop_one(s, s);
    }
    return rc;
}

int store_submit(struct store *s, struct store_job *job)
{
    return store_submit_keyed(s, job, NULL, NULL);
}

int store_submit_read(struct store *s, struct store_job *job)
{
    if (s->nreaders == 0)
        return store_submit_keyed(s, job, NULL, NULL);
    /* The least busy reader: a long read holds up only its own. */
    struct store *r = s->readers[0];
    for (unsigned i = 1; i < s->nreaders && r->in_flight > 0; i++) {
        if (s->readers[i]->in_flight < r->in_flight)
            r = s->readers[i];
    }
    return store_submit_keyed(r, job, NULL, NULL);
}

struct store_listener *store_listen(struct store *s, uv_loop_t *loop,
                                    void (*on_change)(const char *what, void *data), void *data,
                                    int *rc)
{
    if (s->ops->listen == NULL || on_change == NULL) {
        if (rc != NULL)
            *rc = on_change == NULL ? HB_EINVAL : UV_ENOTSUP;
        return NULL;
    }
    return s->ops->listen(s, loop, on_change, data, rc);
}

/* Queue job on the list head..tail (the queue, or the last jobs) unless
 * the store is stopping. */
static int store__queue(struct store *s, struct store_job **head, struct store_job **tail,
                        struct store_job *job)
{
    int rc = 0;
    job->next = NULL;
    uv_mutex_lock(&s->mu);
    if (s->stopping) {
        rc = HB_ECANCELED;
    } else {
        if (*tail != NULL)
            (*tail)->next = job;
        else
            *head = job;
        *tail = job;
        uv_cond_signal(&s->cv);
    }
    uv_mutex_unlock(&s->mu);
    return rc;
}

int store_submit_last(struct store *s, struct store_job *job)
{
    job->keys[0] = job->keys[1] = NULL;
    /* Awaited (in_flight) from store_stop on. */
    return store__queue(s, &s->last_head, &s->last_tail, job);
}

int store_submit_keyed(struct store *s, struct store_job *job, const char *key0, const char *key1)
{
    job->keys[0] = key0;
    job->keys[1] = key1;
    int rc = store__queue(s, &s->queue_head, &s->queue_tail, job);
    if (rc == 0)
        s->in_flight++;
    if (rc == 0 && s->spin_ns > 0)
        store__spin(s);
    return rc;
}

void store_stop(struct store *s, void (*cb)(struct store *store, void *data), void *data)
{
    s->user_stop_cb = cb;
    s->user_stop_data = data;
    s->stops_left = 1 + s->nreaders;
    for (unsigned i = 0; i < s->nreaders; i++)
        store__stop_one(s->readers[i], s);
    store__stop_one(s, s);
}
