/* What a storage backend implements, and the state every backend shares.
 * Private to storage/: the public API is storage/store.h.
 *
 * A backend fills a `struct store_ops` (as Redis's ConnectionType: a table
 * of functions chosen once, at open) and embeds `struct store` as the first
 * member of its own struct. storage/store.c owns the rest: the store's
 * thread, the job queue, the group commit that runs a batch of jobs in one
 * transaction with a savepoint per job, and the chain-head cache in
 * `struct store_txn`. Every store_txn_* record call of store.h is one
 * indirect call into the backend's table. */
#ifndef HB_STORE_BACKEND_H
#define HB_STORE_BACKEND_H

#include "storage/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define STORE_BATCH_DEFAULT 4096u /* most jobs per transaction */

/* A migration both backends run (SQLite's 13, PostgreSQL's 7): an API
 * key's spending caps become limit counters (core/generate_quota.c),
 * starting from what each capped key spent so far, in total and on its
 * last day. */
#define STORE_SQL_KEY_CAPS_SEED                                                                    \
    "INSERT INTO counters (name, win, used)"                                                       \
    " SELECT 'gen.key:' || id, 0, spend FROM apikeys WHERE cap_total > 0"                          \
    " ON CONFLICT (name, win) DO NOTHING;"                                                         \
    "INSERT INTO counters (name, win, used)"                                                       \
    " SELECT 'gen.key.day:' || id, spend_day, day_spend FROM apikeys WHERE cap_day > 0"            \
    " ON CONFLICT (name, win) DO NOTHING;"

struct store_txn {
    struct store *store;
    bool head_valid;                    /* head_* hold the chain head */
    uint64_t head_seq;                  /* last appended seq */
    uint8_t head_hash[STORE_HASH_SIZE]; /* last appended hash */
    bool head_dirty;                    /* appended since the last commit */
};

struct store_ops {
    /* Transactions. begin(write) takes the write lock at once: the one
     * writer of the database (SQLite), or one advisory lock, which
     * serializes every daemon's write transactions (PostgreSQL). */
    int (*begin)(struct store *s, bool write);
    int (*commit)(struct store *s);
    /* Commit, putting the commit's sync off when the backend can: *owed
     * says whether it did, and then sync_owed makes it. May be NULL (the
     * commit is durable when it returns). */
    int (*commit_early)(struct store *s, bool *owed);
    int (*sync_owed)(struct store *s);
    void (*rollback)(struct store *s);
    int (*savepoint)(struct store *s);
    int (*release)(struct store *s);
    int (*rollback_to)(struct store *s);
    /* True: grouped jobs next to one another share one savepoint
     * (store.h, store_job.grouped). A savepoint costs SQLite a copy of
     * every page a job changes; it costs PostgreSQL a round trip, which a
     * batch's pipeline hides. */
    bool group_jobs;
    /* A batch's transaction began: its jobs (a list through next) are
     * about to run, in order; their keys are store_submit_keyed's hints.
     * May be NULL. */
    int (*batch_begin)(struct store *s, struct store_job *jobs);
    /* After a job's savepoint was released: true when the transaction
     * should take no more jobs (the rest go first into the next batch).
     * May be NULL. */
    bool (*batch_full)(struct store *s);
    /* After a job's run succeeded, before its savepoint is released: 0,
     * or a failure of a write the backend queued for the job without
     * waiting (the job then fails and rolls back). May be NULL. */
    int (*job_end)(struct store *s, struct store_job *job);
    /* Record the chain head (txn->head_*) in its own row, before commit. */
    int (*head_record)(struct store_txn *txn);
    /* On the store's thread after a batch committed, before its jobs hear
     * of it (vacuum). May be NULL. */
    void (*after_batch)(struct store *s);
    /* store_listen's backend: NULL when there are no other writers to
     * hear (SQLite). */
    struct store_listener *(*listen)(struct store *s, uv_loop_t *loop,
                                     void (*on_change)(const char *what, void *data), void *data,
                                     int *rc);
    /* Close the connection and free the backend (store.c frees nothing
     * else). */
    void (*free)(struct store *s);

    /* Records: one per store_txn_* call of store.h, same contract.
     * clock_ms may be NULL (store_txn_clock_ms: UV_ENOTSUP). */
    int (*clock_ms)(struct store_txn *txn, int64_t *now_ms);
    int (*account_get)(struct store_txn *txn, const char *id, struct store_account *out);
    int (*account_insert)(struct store_txn *txn, const struct store_account *account);
    int (*account_update)(struct store_txn *txn, const struct store_account *account);
    int (*transfer_get)(struct store_txn *txn, const char *id, struct store_transfer *out);
    int (*head)(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
    int (*head_recorded)(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
    int (*transfer_append)(struct store_txn *txn, const struct store_transfer *t);
    int (*transfer_find_link)(struct store_txn *txn, const char *link, uint32_t flags_any,
                              struct store_transfer *out);
    int (*link_sum)(struct store_txn *txn, const char *link, uint32_t flags_any, int64_t *sum);
    int (*pending_add)(struct store_txn *txn, const char *id, int64_t expires_at);
    int (*pending_remove)(struct store_txn *txn, const char *id);
    int (*pending_expired)(struct store_txn *txn, int64_t now, char (*ids)[STORE_ID_SIZE],
                           size_t max, size_t *n);
    int (*pending_next)(struct store_txn *txn, int64_t *expires_at);
    int (*transfer_each)(struct store_txn *txn, uint64_t from_seq,
                         int (*fn)(const struct store_transfer *t, void *data), void *data);
    int (*account_each)(struct store_txn *txn, int (*fn)(const struct store_account *a, void *data),
                        void *data);
    int (*pending_each)(struct store_txn *txn,
                        int (*fn)(const char *id, int64_t expires_at, void *data), void *data);
    int (*history)(struct store_txn *txn, const char *account, uint64_t before_seq,
                   struct store_transfer *out, size_t max, size_t *n);
    int (*usage)(struct store_txn *txn, uint32_t kind, uint32_t flags_none, const char *account,
                 int64_t from, int64_t to, struct store_usage *out, size_t max, size_t *n);
    int (*state_get)(struct store_txn *txn, const char *ns, const char *key, char **value);
    int (*state_put)(struct store_txn *txn, const char *ns, const char *key, const char *value,
                     int64_t now_ms);
    int (*state_each)(struct store_txn *txn, const char *ns, const char *prefix,
                      int (*fn)(const char *key, const char *value, void *data), void *data);
    int (*state_range)(struct store_txn *txn, const char *ns, const char *from, const char *to,
                       int (*fn)(const char *key, const char *value, void *data), void *data);
    int (*chat_put)(struct store_txn *txn, const char *key, unsigned fields, const char *persona,
                    int plaintalk, int64_t now_ms);
    int (*chat_each)(struct store_txn *txn,
                     int (*fn)(const char *key, const char *persona, int plaintalk, void *data),
                     void *data);
    int (*link_put)(struct store_txn *txn, const char *identity, const char *wallet,
                    int64_t now_ms);
    int (*link_remove)(struct store_txn *txn, const char *identity);
    int (*link_each)(struct store_txn *txn,
                     int (*fn)(const char *identity, const char *wallet, int64_t linked_at,
                               void *data),
                     void *data);
    int (*vote_add)(struct store_txn *txn, const char *scope, const char *period,
                    const struct store_vote *v);
    int (*vote_top)(struct store_txn *txn, const char *scope, const char *period,
                    struct store_vote *out, size_t max, size_t *n);
    /* store_txn_counter_add's add: 1 when it applied (*after the value
     * now), 0 when the bound refused it (store.c reads the value then), or
     * an error. */
    int (*counter_add)(struct store_txn *txn, const char *name, int64_t win, int64_t delta,
                       int64_t limit, int64_t *after);
    int (*counter_get)(struct store_txn *txn, const char *name, int64_t win, int64_t *used);
    int (*conv_get)(struct store_txn *txn, const char *id, struct store_conv *out);
    int (*conv_put)(struct store_txn *txn, const struct store_conv *c);
    int (*conv_turns)(struct store_txn *txn, const char *conv,
                      int (*fn)(int64_t seq, const char *role, const char *text, int64_t at,
                                void *data),
                      void *data);
    int (*conv_turn_put)(struct store_txn *txn, const char *conv, int64_t seq, const char *role,
                         const char *text, int64_t at);
    int (*conv_trim)(struct store_txn *txn, const char *conv, int64_t first);
    int (*conv_place_get)(struct store_txn *txn, const char *place, char *conv, size_t cap);
    int (*conv_message_get)(struct store_txn *txn, const char *message, char *conv, size_t cap);
    int (*conv_places_each)(struct store_txn *txn, int (*fn)(const char *place, void *data),
                            void *data);
    int (*conv_place_put)(struct store_txn *txn, const char *place, const char *conv,
                          const char *owner, int64_t now_ms);
    int (*conv_message_put)(struct store_txn *txn, const char *message, const char *conv,
                            const char *owner, int64_t now_ms);
    int (*conv_forget)(struct store_txn *txn, const char *owner, int64_t *turns);
    int (*conv_expire)(struct store_txn *txn, int64_t before, int64_t *rows);
    void (*vacuum_after)(struct store_txn *txn);
    int (*outbox_put)(struct store_txn *txn, const char *channel, int64_t id, int64_t chat,
                      const char *body, const void *data, size_t data_len, int64_t now_ms);
    int (*outbox_remove)(struct store_txn *txn, const char *channel, int64_t id);
    int (*outbox_fail)(struct store_txn *txn, const char *channel, int64_t id, const char *error,
                       int64_t now_ms);
    int (*outbox_each)(struct store_txn *txn, const char *channel, int64_t after_id, size_t max,
                       int (*fn)(int64_t id, int64_t chat, const char *body, const void *data,
                                 size_t data_len, void *arg),
                       void *arg);
    int (*outbox_max)(struct store_txn *txn, const char *channel, int64_t *id);
    int (*outbox_count)(struct store_txn *txn, const char *channel, bool undeliverable, int64_t *n);
    int (*outbox_channels)(struct store_txn *txn, const char *family,
                           int (*fn)(const char *channel, void *arg), void *arg);
    int (*outbox_move)(struct store_txn *txn, const char *from, const char *to, int64_t upto_id,
                       int64_t now_ms, int64_t *moved);
    int (*audit_head)(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
    int (*audit_head_recorded)(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
    int (*audit_append)(struct store_txn *txn, const struct store_audit *a);
    int (*audit_each)(struct store_txn *txn, uint64_t from_seq,
                      int (*fn)(const struct store_audit *a, void *data), void *data);
    int (*audit_page)(struct store_txn *txn, const char *match, uint64_t before_seq, size_t skip,
                      struct store_audit *out, size_t max, size_t *n);
    int (*apikey_insert)(struct store_txn *txn, const struct store_apikey *k);
    int (*apikey_each)(struct store_txn *txn, int (*fn)(const struct store_apikey *k, void *data),
                       void *data);
    int (*apikey_revoke)(struct store_txn *txn, const char *id, int64_t at);
    int (*apikey_spend)(struct store_txn *txn, const char *id, int64_t amount, int64_t day,
                        int64_t now_ms);
    int (*image_put)(struct store_txn *txn, const struct store_image *img);
    int (*image_get)(struct store_txn *txn, const char *id, enum store_image_bytes bytes,
                     struct store_image *out);
    int (*image_page)(struct store_txn *txn, const char *scope, const char *period, bool top,
                      int64_t since_ms, size_t skip, size_t max, enum store_image_bytes bytes,
                      struct store_image *out, size_t *n);
    int (*image_prune)(struct store_txn *txn, int64_t before_ms, int64_t keep_max,
                       const char *with_ns, int64_t *removed);
    int (*image_forget)(struct store_txn *txn, const char *owner, int64_t *erased);
};

struct store {
    const struct store_ops *ops;
    struct store_txn txn; /* the one transaction context */
    int version;          /* schema version of the open database */
    bool single_commit;   /* one job per transaction */
    unsigned batch_max;   /* most jobs per transaction */
    bool after_batch_due; /* store's thread: call ops->after_batch after this batch */
    bool sync_owed;       /* store's thread: the last commit's sync is still to make */
    bool sync_failed;     /* store's thread: a sync put off failed; every job fails */
    /* The pool's readers (store_submit_read), each a store of the same
     * backend with a connection and a thread of its own, made by the
     * backend's constructor, which frees them with this one; started and
     * stopped with this one (store.c). */
    struct store **readers;
    unsigned nreaders;
    bool reader;         /* this store is a reader of another */
    unsigned in_flight;  /* loop thread: jobs submitted and not yet done */
    unsigned stops_left; /* loop thread: threads still to close (store_stop) */

    /* Threading; all below mu is guarded by mu. */
    uv_loop_t *loop;
    uv_thread_t thread;
    uv_async_t async; /* wakes the loop for completions */
    /* Loop thread: polling while an answer is awaited (store__spin). */
    uv_idle_t spin;
    uint64_t spin_ns;     /* store_options.spin_us; 0: never */
    uint64_t spin_since;  /* uv_hrtime() of the last submit */
    unsigned spin_misses; /* polls in a row that ran out of time unanswered */
    unsigned spin_rest;   /* submits still to come that do not poll */
    bool started;         /* the thread runs (until joined) */
    uv_mutex_t mu;
    uv_cond_t cv;
    struct store_job *queue_head; /* waiting to run */
    struct store_job *queue_tail;
    struct store_job *last_head; /* store_submit_last: queued once stopping */
    struct store_job *last_tail;
    struct store_job *done_head; /* committed, waiting for their done call */
    struct store_job *done_tail;
    bool stopping; /* no new jobs; the thread exits when idle */
    bool exited;   /* the thread has left its loop */
    void (*stop_cb)(struct store *store, void *data);
    void *stop_data;
    void (*user_stop_cb)(struct store *store, void *data); /* store_stop's */
    void *user_stop_data;
};

/* Fill the shared part of a backend's new store from opts. */
void store__init(struct store *s, const struct store_ops *ops, const struct store_options *opts);

/* Open opts->readers read-only stores of s's backend into s->readers (each
 * marked a reader, answering store_submit_read's jobs on a thread of its
 * own once started). Returns 0, or the first failure's code: the readers
 * opened so far stay in s->readers, which the backend's free closes. */
int store__readers_open(struct store *s, const struct store_options *opts);

/* Close s's readers (store_free each), in the backend's free. */
void store__readers_close(struct store *s);

/* The backends' constructors (store_new picks one by opts->backend). */
struct store *store__sqlite_new(const struct store_options *opts, int *rc);
struct store *store__pg_new(const struct store_options *opts, int *rc);

#endif
