/* The store: durable records of the credit ledger behind one interface.
 *
 * The store knows records (accounts, transfers, open reservations) and how to
 * keep them durably; it does not know the ledger's rules. Those live in
 * core/ledger_rules.c and run on the store's thread as jobs: a job's run function
 * is called inside a transaction with a `struct store_txn`, reads and writes
 * records through the store_txn_* calls below, and its done function is
 * called later on the loop thread, once the transaction that holds the job
 * is durably committed.
 *
 * Group commit: every job queued while a transaction is in progress goes into
 * the next transaction together. Each job runs inside its own savepoint, so
 * one job failing (a negative return other than HB_EEXISTS) rolls back only
 * its own writes. If the commit itself fails, every job of that transaction
 * completes with HB_ESTORAGE.
 *
 * The calls are an interface: storage/store.c holds what every backend
 * shares (the thread and the group commit) and makes each record call one
 * indirect call into the backend's table (store_backend.h). The SQLite
 * backend (storage/sqlite*.c) is the one built today.
 *
 * Threads: store_new, store_start, store_submit, store_stop and store_free
 * are called on the loop thread. store_txn_* calls are made either on the
 * store's thread from a job's run function, or on the calling thread inside
 * store_txn_begin/store_txn_end while the store is not started (start-up
 * work, command-line tools, tests). */
#ifndef HB_STORE_H
#define HB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define STORE_ID_SIZE 160  /* capacity of an id field, NUL included */
#define STORE_REF_SIZE 256 /* capacity of a transfer's reference, NUL included */
#define STORE_TAG_SIZE 64  /* capacity of a transfer's tag (model name), NUL included */
#define STORE_HASH_SIZE 32 /* SHA-256 */

struct store;
struct store_txn;

/** An account's record. Sums are cached in the record and kept in step with
 *  the transfers by the ledger in the same transaction. */
struct store_account {
    char id[STORE_ID_SIZE];
    uint32_t flags;          /* ledger account flags */
    int64_t debits_posted;   /* credits, sum of posted debits */
    int64_t credits_posted;  /* credits, sum of posted credits */
    int64_t debits_pending;  /* credits, reserved by open pending debits */
    int64_t credits_pending; /* credits, promised by open pending credits */
    int64_t created_at;      /* ms since the epoch */
};

/** One committed transfer: an append-only history entry. */
struct store_transfer {
    uint64_t seq;                  /* position in the history, from 1 */
    char id[STORE_ID_SIZE];        /* caller's id, unique */
    char debit[STORE_ID_SIZE];     /* debited account id */
    char credit[STORE_ID_SIZE];    /* credited account id */
    int64_t amount;                /* credits, > 0 */
    uint32_t kind;                 /* ledger kind code */
    uint32_t flags;                /* ledger transfer flags */
    char link[STORE_ID_SIZE];      /* pending id (post, void), original (reversal), or "" */
    int64_t expires_at;            /* ms since the epoch; pending only, 0 = never */
    int64_t ts;                    /* ms since the epoch */
    char ref[STORE_REF_SIZE];      /* what caused it */
    char tag[STORE_TAG_SIZE];      /* model name for generations, or "" */
    uint8_t hash[STORE_HASH_SIZE]; /* chain hash over the previous hash and this entry */
};

/** One row of usage statistics: amounts and counts only. */
struct store_usage {
    int64_t day;              /* days since the epoch (UTC) */
    char tag[STORE_TAG_SIZE]; /* model */
    int64_t amount;           /* credits */
    int64_t count;            /* transfers */
};

enum store_backend_kind {
    STORE_BACKEND_SQLITE = 0, /* one file, one daemon: the default */
    STORE_BACKEND_POSTGRES,   /* one PostgreSQL database, shared by several daemons */
};

struct store_options {
    enum store_backend_kind backend;
    const char *path;   /* SQLite: database file (borrowed for the call) */
    const char *url;    /* PostgreSQL: libpq connection string; a secret, never logged */
    int schema_version; /* migrate up to this version; 0 = latest (tests only set it) */
    bool read_only;     /* no create, no migration: refuse any other version */
    bool single_commit; /* one transaction per job: the baseline for benchmarks */
    bool relaxed_sync;  /* synchronous=NORMAL: for tests on tmpfs only, never durable */
    unsigned batch_max; /* most jobs per transaction; 0 = 4096 */
    /* Connections beside the writer's that answer store_submit_read's
     * jobs, each on a thread of its own, in read-only transactions
     * (PostgreSQL's pool; SQLite's read the same file beside the writer,
     * which WAL allows); 0 = none: reads queue with the writes. */
    unsigned readers;
    /* Microseconds the loop keeps polling, without sleeping, after a job
     * is submitted while an answer is awaited (store.c, store__spin): a
     * generation waits on two store trips, and waking a sleeping loop
     * costs each tens of microseconds on a virtual machine. 0 = sleep at
     * once; ignored on a machine with one CPU, where polling would take
     * the time the store's thread needs; left off for a while when the
     * answers keep taking longer. The daemon's default is
     * STORE_SPIN_US_DEFAULT ([storage] spin_us). */
    unsigned spin_us;
};

#define STORE_SPIN_US_DEFAULT 500

/** A unit of work for the store's thread. The caller owns the job (usually
 *  embedded in its own struct) and must keep it alive until done is called. */
struct store_job {
    /* Run on the store's thread inside a transaction. Returns 0, HB_EEXISTS
     * (success, nothing written), or a negative code (its writes are undone). */
    int (*run)(struct store_txn *txn, struct store_job *job);
    /* Called on the loop thread after the commit, with run's result or
     * HB_ESTORAGE when the transaction failed. */
    void (*done)(struct store_job *job, int rc);
    struct store_job *next; /* private to the store */
    int rc;                 /* private to the store */
    const char *keys[2];    /* private: store_submit_keyed's hints */
    /* Its caller may hear of it once its transaction is committed, before
     * the commit's sync (SQLite: the sync then follows at once, before
     * the next transaction). For what a power cut may take back: a hold
     * (a generation's reservation), which nothing durable can follow
     * before it is durable itself (a later commit's sync covers it). */
    bool early;
    /* Its run may share one savepoint with the grouped jobs beside it in
     * a batch, where the backend groups (SQLite), or none when the group
     * begins the transaction: a job's own savepoint copies every page it
     * changes, most of a generation's store time. When one of a group
     * fails, the group is undone (the transaction rolled back and begun
     * again, for a group that began it) and the jobs before it run again,
     * each in its own savepoint, as ungrouped jobs always do. So only for
     * a run that, run again on the same data, does and reports the same:
     * it sets every result it gives rather than adds to one, and keeps
     * nothing outside the transaction. */
    bool grouped;
};

/** Open (creating with mode 0600 unless read_only) and migrate the database.
 *  Unless read_only, the store holds an exclusive lock on `<path>.lock` until
 *  store_free: one writer per database, across processes. Returns the store,
 *  or NULL with *rc set and the cause logged: HB_EBUSY when another store
 *  holds the lock (the log names its pid), HB_EIO when the file or its
 *  folder cannot be written (or created), HB_ESCHEMA when the schema is
 *  newer than this build (or, read_only, not this build's: older, or no
 *  ledger at all), HB_ESTORAGE, HB_ENOMEM, HB_EINVAL. The store is not
 *  started: the store_txn_begin calls are available. Free with store_free. */
struct store *store_new(const struct store_options *opts, int *rc);

/** What messages name as the database of opts: its file, or "the
 *  PostgreSQL database" (a connection string is a secret). */
const char *store_options_where(const struct store_options *opts);

/** Close the database and free the store. The store must not be started, or
 *  it must be stopped (its stop callback has fired). NULL is ignored. */
void store_free(struct store *store);

/** The schema version of the open database. */
int store_schema_version(const struct store *store);

/** The schema version this build writes (SQLite). */
int store_schema_latest(void);

/** Start the store's thread; job completions come back on `loop` through a
 *  uv_async handle. Returns 0 or a libuv / HB error code. */
int store_start(struct store *store, uv_loop_t *loop);

/** Queue a job (loop thread). Returns 0, or HB_ECANCELED once stopping. */
int store_submit(struct store *store, struct store_job *job);

/** Queue a job to run last: once store_stop was called and every job
 *  queued before it is done, just before the thread exits (the jobs
 *  queued so share a transaction); its done call comes before
 *  store_stop's. For what a run gives up only once nothing of it can run
 *  any more (its heartbeat lease: core/cluster.c). Returns as
 *  store_submit. */
int store_submit_last(struct store *store, struct store_job *job);

/** store_submit, with the ids of the transfers the job reads first (either
 *  may be NULL or ""; borrowed until done is called): a backend may read
 *  a whole batch's ahead, in one round trip (PostgreSQL). A hint only:
 *  the job reads them as it would without. */
int store_submit_keyed(struct store *store, struct store_job *job, const char *key0,
                       const char *key1);

/** Queue a job that only reads (loop thread). With readers
 *  (store_options.readers), it runs on the least busy reader's
 *  connection, in a read-only transaction that takes no write lock: beside
 *  this daemon's write batches and every other daemon's, so a long read
 *  holds up no write and no write holds it up. It sees what was committed
 *  before it ran (PostgreSQL: before each of its statements; SQLite: before
 *  its batch's first), not the writes still queued: submit it
 *  once the writes it must see are done. A job that writes there fails
 *  (HB_ESTORAGE; a put-off write fails its whole batch). Without readers it is
 *  store_submit. Returns as store_submit. */
int store_submit_read(struct store *store, struct store_job *job);

/** Hear of what other writers of the database change (PostgreSQL: LISTEN
 *  on a connection of its own, driven by `loop`, never blocking it). After
 *  a commit that changed what every daemon keeps in memory,
 *  on_change(what, data) is called with the table's name ("apikeys" but
 *  not for a key's spend, "wallet_links", "chat_settings") or the state
 *  table's namespace ("state:feature", "state:revenue", "state:contest"),
 *  on this daemon's commits as on every other daemon's; with "*" once a
 *  lost connection is made again (what changed meanwhile was not heard). The
 *  connection is made again with backoff, as the store's is. SQLite (one
 *  daemon alone on its file) has nothing to hear: NULL with *rc =
 *  UV_ENOTSUP. Loop thread; store_listener_close before the loop ends. */
struct store_listener;
struct store_listener *store_listen(struct store *store, uv_loop_t *loop,
                                    void (*on_change)(const char *what, void *data), void *data,
                                    int *rc);

/** Stop listening and free (its handles close on the loop). NULL is
 *  ignored. */
void store_listener_close(struct store_listener *l);

/** Finish every queued job, stop the thread and close the handle; cb (may be
 *  NULL) fires on the loop when everything is closed. */
void store_stop(struct store *store, void (*cb)(struct store *store, void *data), void *data);

/** Begin a synchronous transaction on the calling thread (store not started).
 *  write=true takes the write lock at once. */
int store_txn_begin(struct store *store, bool write, struct store_txn **txn);

/** End a synchronous transaction: commit (durably) or roll back. */
int store_txn_end(struct store_txn *txn, bool commit);

/* ---- Records, inside a transaction ---------------------------------------
 * Every call returns 0, HB_ENOTFOUND where it says so, or HB_ESTORAGE. */

/** Read an account into *out. HB_ENOTFOUND when it does not exist. */
int store_txn_account_get(struct store_txn *txn, const char *id, struct store_account *out);

/** Insert a new account record. */
int store_txn_account_insert(struct store_txn *txn, const struct store_account *account);

/** Write an account's four sums (flags and creation time never change). */
int store_txn_account_update(struct store_txn *txn, const struct store_account *account);

/** The database server's clock, in ms since the epoch, read now: one
 *  clock for every daemon of a shared ledger, whatever their hosts'
 *  clocks say (core/cluster.c judges leases by it). UV_ENOTSUP when the
 *  backend has none (SQLite: the daemon's own clock is the only one); on
 *  any failure *now_ms is left as it was. */
int store_txn_clock_ms(struct store_txn *txn, int64_t *now_ms);

/** Read a transfer by id. HB_ENOTFOUND when there is none. */
int store_txn_transfer_get(struct store_txn *txn, const char *id, struct store_transfer *out);

/** The chain head: the last entry's sequence number and hash (0 and zeros
 *  for an empty history). */
int store_txn_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);

/** The head as recorded by the last commit that appended (0 and zeros when
 *  none did). Verification compares it with the chain it walks, so that
 *  removing the newest entries shows. */
int store_txn_head_recorded(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);

/** Append a transfer. Its seq must be the head's plus one and its hash the
 *  caller's chain hash; the head moves to it. */
int store_txn_transfer_append(struct store_txn *txn, const struct store_transfer *t);

/** The first transfer (by seq) whose link is `link` and whose flags share a
 *  bit with `flags_any`. HB_ENOTFOUND when there is none. */
int store_txn_transfer_find_link(struct store_txn *txn, const char *link, uint32_t flags_any,
                                 struct store_transfer *out);

/** Sum of the amounts of transfers linked to `link` with a flag in `flags_any`. */
int store_txn_link_sum(struct store_txn *txn, const char *link, uint32_t flags_any, int64_t *sum);

/** Record an open reservation (expires_at 0 = never) / forget it once resolved. */
int store_txn_pending_add(struct store_txn *txn, const char *id, int64_t expires_at);
int store_txn_pending_remove(struct store_txn *txn, const char *id);

/** Up to `max` ids of open reservations with 0 < expires_at <= now, earliest
 *  first, into ids[]; *n is how many. */
int store_txn_pending_expired(struct store_txn *txn, int64_t now, char (*ids)[STORE_ID_SIZE],
                              size_t max, size_t *n);

/** The earliest expiry among open reservations, or 0 when none expires. */
int store_txn_pending_next(struct store_txn *txn, int64_t *expires_at);

/** Call fn for every transfer with seq >= from_seq, in seq order, stopping
 *  at the first non-zero return (which is returned). */
int store_txn_transfer_each(struct store_txn *txn, uint64_t from_seq,
                            int (*fn)(const struct store_transfer *t, void *data), void *data);

/** Call fn for every account, ordered by id; stops as store_txn_transfer_each. */
int store_txn_account_each(struct store_txn *txn,
                           int (*fn)(const struct store_account *a, void *data), void *data);

/** Call fn for every open reservation; stops as store_txn_transfer_each. */
int store_txn_pending_each(struct store_txn *txn,
                           int (*fn)(const char *id, int64_t expires_at, void *data), void *data);

/** Transfers that debit or credit `account` with seq < before_seq (0 = no
 *  bound), newest first, at most max of them into out[]; *n is how many. */
int store_txn_history(struct store_txn *txn, const char *account, uint64_t before_seq,
                      struct store_transfer *out, size_t max, size_t *n);

/** Usage per day and tag over transfers of `kind` with from <= ts < to, no
 *  flag in flags_none, debiting `account` (NULL = any). Rows ordered by day
 *  then tag; at most max of them into out[]; *n is how many. */
int store_txn_usage(struct store_txn *txn, uint32_t kind, uint32_t flags_none, const char *account,
                    int64_t from, int64_t to, struct store_usage *out, size_t max, size_t *n);

/* ---- State: small durable values outside the ledger ---------------------
 * Namespaced keys ("prefs", "telegram", ...) with text values: member
 * preferences, adapter cursors, per-scope settings. Never credits: those are
 * transfers. */

/** Read a value into *value (heap, the caller frees). HB_ENOTFOUND when the
 *  key has none; HB_ESCHEMA on a database older than the state table. */
int store_txn_state_get(struct store_txn *txn, const char *ns, const char *key, char **value);

/** Set a value (NULL deletes it). now_ms is recorded with it. */
int store_txn_state_put(struct store_txn *txn, const char *ns, const char *key, const char *value,
                        int64_t now_ms);

/** Call fn for each key in ns that starts with prefix, in key order, until
 *  fn returns non-zero (which is returned). */
int store_txn_state_each(struct store_txn *txn, const char *ns, const char *prefix,
                         int (*fn)(const char *key, const char *value, void *data), void *data);

/** Call fn for each key in ns with from <= key < to (to NULL: no upper
 *  bound), in key order, until fn returns non-zero (which is returned). */
int store_txn_state_range(struct store_txn *txn, const char *ns, const char *from, const char *to,
                          int (*fn)(const char *key, const char *value, void *data), void *data);

/* ---- Chat settings: personas and plain talk chosen in the chats ----------
 * One row per key (core/persona.h names them): a persona (NULL: none set
 * here) and a plain-talk switch (-1: not set). Rare writes (an admin's or a
 * member's choice) and one full read at start, so the statements are
 * prepared when used. */

#define STORE_CHAT_PERSONA 0x1u   /* store_txn_chat_put: set the persona */
#define STORE_CHAT_PLAINTALK 0x2u /* store_txn_chat_put: set plain talk */

/** Set the fields named by `fields` of key's row (persona NULL and
 *  plaintalk -1 clear them); a row left with nothing set is removed.
 *  HB_ESCHEMA on a database older than the table. */
int store_txn_chat_put(struct store_txn *txn, const char *key, unsigned fields, const char *persona,
                       int plaintalk, int64_t now_ms);

/** Call fn for every row in key order until it returns non-zero (which is
 *  returned). persona is NULL and plaintalk -1 when unset. */
int store_txn_chat_each(struct store_txn *txn,
                        int (*fn)(const char *key, const char *persona, int plaintalk, void *data),
                        void *data);

/* ---- Wallet links: one member's identities sharing one wallet ----------
 * A row per identity ("telegram:42") that spends another identity's wallet
 * account ("discord:7"). Rare writes and one full read at start (the
 * statements are prepared when used). Every call returns HB_ESCHEMA on a
 * database older than the table. */

/** Link identity to wallet (replacing a link it had). */
int store_txn_link_put(struct store_txn *txn, const char *identity, const char *wallet,
                       int64_t now_ms);

/** Remove identity's link. An identity without one is not an error. */
int store_txn_link_remove(struct store_txn *txn, const char *identity);

/** Call fn for every link in identity order until it returns non-zero
 *  (which is returned). Strings are borrowed for the call. */
int store_txn_link_each(struct store_txn *txn,
                        int (*fn)(const char *identity, const char *wallet, int64_t linked_at,
                                  void *data),
                        void *data);

/* ---- Votes: upvotes counted per scope, period and image ------------------
 * One count per (scope, period, image). A period names a calendar span in
 * UTC as short text: "d2026-12-05" (a day), "w2026-W49" (an ISO week),
 * "m2026-12" (a month), "all". A vote adds to the count of every period it
 * falls in, so a leaderboard is one indexed top-N read, however many votes
 * the scope holds. */

/** One image's count in a period. */
struct store_vote {
    char image[STORE_TAG_SIZE];  /* the image's id */
    char creator[STORE_ID_SIZE]; /* who made it */
    char model[STORE_TAG_SIZE];  /* which model made it */
    int64_t count;               /* upvotes */
};

/** Add v->count to the image's count in scope and period (a new image
 *  starts at 0 and keeps v's creator and model). HB_ESCHEMA on a database
 *  older than the votes table. */
int store_txn_vote_add(struct store_txn *txn, const char *scope, const char *period,
                       const struct store_vote *v);

/** The images of scope with the highest counts in period, highest first
 *  (ties by image id), at most max of them into out[]; *n is how many. */
int store_txn_vote_top(struct store_txn *txn, const char *scope, const char *period,
                       struct store_vote *out, size_t max, size_t *n);

/* ---- Counters: limits that must hold across restarts and daemons --------
 * A counter is a name ("gen.user:<wallet>", ...) and a window (an hour or a
 * day number); its value starts at 0. Every change is one conditional
 * update in the store, so concurrent changes (another job, another daemon
 * on the same database) never lose each other and never pass a bound. */

/** Add delta to the counter name/win when the result stays within limit
 *  (limit <= 0: no bound); a delta <= 0 always applies and the value never
 *  goes below 0. The add that makes a window's row deletes the rows of
 *  name in earlier windows (they can no longer matter); once the row is
 *  there, an add is one statement. *used (may be NULL) receives the value after, or the
 *  current value when refused. Returns 0, HB_ELIMIT when limit would be
 *  passed (nothing changed), HB_ESCHEMA on a database older than the
 *  counters table, or HB_ESTORAGE. */
int store_txn_counter_add(struct store_txn *txn, const char *name, int64_t win, int64_t delta,
                          int64_t limit, int64_t *used);

/** Read the counter name/win into *used (0 when it has no row). */
int store_txn_counter_get(struct store_txn *txn, const char *name, int64_t win, int64_t *used);

/* ---- Conversations: what /chat remembers, the member's to erase --------
 * A conversation (an id, its owner's wallet account, when it last moved)
 * holds numbered turns (role, text, time). A place ("where plain messages
 * continue it") and a message key (a bot message whose replies continue
 * it) point at one. Outside the ledger: rows are deleted for real, their
 * bytes overwritten (secure_delete), and store_txn_vacuum_after gives the
 * space back and empties the WAL. Every call returns HB_ESCHEMA on a
 * database older than these tables. */

struct store_conv {
    char id[STORE_ID_SIZE];
    char owner[STORE_ID_SIZE]; /* wallet account of the member ("telegram:42") */
    int64_t updated_at;        /* ms since the epoch of its last turn */
};

/** Read conversation id into *out. HB_ENOTFOUND when there is none. */
int store_txn_conv_get(struct store_txn *txn, const char *id, struct store_conv *out);

/** Create a conversation, or move its updated_at forward. */
int store_txn_conv_put(struct store_txn *txn, const struct store_conv *c);

/** Call fn for every turn of conv in seq order, until fn returns non-zero
 *  (returned). role and text are borrowed for the call. */
int store_txn_conv_turns(struct store_txn *txn, const char *conv,
                         int (*fn)(int64_t seq, const char *role, const char *text, int64_t at,
                                   void *data),
                         void *data);

/** Write turn seq of conv. */
int store_txn_conv_turn_put(struct store_txn *txn, const char *conv, int64_t seq, const char *role,
                            const char *text, int64_t at);

/** Delete the turns of conv numbered below first (out of the budget). */
int store_txn_conv_trim(struct store_txn *txn, const char *conv, int64_t first);

/** The conversation a place or a message key points at, into conv (cap
 *  bytes). HB_ENOTFOUND when none. */
int store_txn_conv_place_get(struct store_txn *txn, const char *place, char *conv, size_t cap);
int store_txn_conv_message_get(struct store_txn *txn, const char *message, char *conv, size_t cap);

/** Call fn for every place that points at a conversation, until fn
 *  returns non-zero (returned). place is borrowed for the call. */
int store_txn_conv_places_each(struct store_txn *txn, int (*fn)(const char *place, void *data),
                               void *data);

/** Point place at conv (NULL: the place starts over). */
int store_txn_conv_place_put(struct store_txn *txn, const char *place, const char *conv,
                             const char *owner, int64_t now_ms);

/** Point a bot message at conv. */
int store_txn_conv_message_put(struct store_txn *txn, const char *message, const char *conv,
                               const char *owner, int64_t now_ms);

/** Delete every conversation of owner with its turns, places and messages;
 *  *turns (may be NULL) gets how many turns went. */
int store_txn_conv_forget(struct store_txn *txn, const char *owner, int64_t *turns);

/** Delete turns, conversations and bot messages last touched before
 *  `before` (ms), and the places of conversations that went; *rows (may
 *  be NULL) gets how many rows went. */
int store_txn_conv_expire(struct store_txn *txn, int64_t before, int64_t *rows);

/** Once this transaction commits, vacuum: free pages go back to the file
 *  system (databases created by this version) and the WAL is truncated, so
 *  no copy of a deleted row stays in either file. */
void store_txn_vacuum_after(struct store_txn *txn);

/** Copy the database at src_path to dst_path, consistent while a daemon
 *  writes to it (SQLite's online backup: one read transaction, WAL
 *  included). The copy is written beside dst_path and renamed into place,
 *  so dst_path is whole or absent. Returns 0, HB_EEXISTS when dst_path
 *  exists (never overwritten), HB_ESTORAGE when src_path cannot be read as
 *  a database, HB_EIO when the copy cannot be written. */
int store_backup_file(const char *src_path, const char *dst_path);

/* ---- Outbox: messages owed to someone, kept until sent ------------------
 * A channel (an adapter: "telegram", "discord") numbers its own rows with
 * ids it allocates, increasing. body is the channel's encoding of the call;
 * data an optional attachment (an image). Rows are removed once sent, or
 * kept and marked undeliverable (never dropped silently; kept 30 days). Every call
 * returns HB_ESCHEMA on a database older than the outbox. */

/** Write (or rewrite) row id of channel. data may be NULL. */
int store_txn_outbox_put(struct store_txn *txn, const char *channel, int64_t id, int64_t chat,
                         const char *body, const void *data, size_t data_len, int64_t now_ms);

/** Remove a row (sent). Absent rows are not an error. */
int store_txn_outbox_remove(struct store_txn *txn, const char *channel, int64_t id);

/** Mark a row undeliverable with a short reason (no secrets, no prompt text). */
int store_txn_outbox_fail(struct store_txn *txn, const char *channel, int64_t id, const char *error,
                          int64_t now_ms);
/* A row marked undeliverable keeps its text and error (its photo goes at
 * once) this long; each new mark removes the older ones of its channel. */
#define STORE_OUTBOX_FAILED_KEEP_MS (30LL * 24 * 3600 * 1000)

/** Call fn for the deliverable rows of channel with id > after_id, in id
 *  order, at most max of them, until fn returns non-zero (returned). body
 *  and data are borrowed for the call; data is NULL when the row has none. */
int store_txn_outbox_each(struct store_txn *txn, const char *channel, int64_t after_id, size_t max,
                          int (*fn)(int64_t id, int64_t chat, const char *body, const void *data,
                                    size_t data_len, void *arg),
                          void *arg);

/** The highest id channel has used among its rows (0 when none). */
int store_txn_outbox_max(struct store_txn *txn, const char *channel, int64_t *id);

/** How many rows of channel are deliverable (undeliverable=false) or marked
 *  undeliverable (true). */
int store_txn_outbox_count(struct store_txn *txn, const char *channel, bool undeliverable,
                           int64_t *n);

/** Call fn with each channel named family or "family/..." that has rows,
 *  in name order, until fn returns non-zero (returned). The name is
 *  borrowed for the call. */
int store_txn_outbox_channels(struct store_txn *txn, const char *family,
                              int (*fn)(const char *channel, void *arg), void *arg);

/** Move the rows of channel from to channel to, keeping their ids: those
 *  with id <= upto_id, or all of them when upto_id is 0. Rows of from
 *  marked undeliverable STORE_OUTBOX_FAILED_KEEP_MS or more before now_ms
 *  are removed instead, as a new mark would. *moved (may be NULL) gets
 *  how many moved. */
int store_txn_outbox_move(struct store_txn *txn, const char *from, const char *to, int64_t upto_id,
                          int64_t now_ms, int64_t *moved);

/* ---- Audit trail: who did what, append-only and hash-chained -----------
 * Its own chain beside the ledger's: entry seq n stores the hash of entry
 * n - 1 (prev) and SHA-256 over prev and its own canonical bytes
 * (core/audit.c computes both). Every call returns HB_ESCHEMA on a database
 * older than the audit table. */

#define STORE_AUDIT_ACTION_SIZE 48   /* "grant", "model.disable", NUL included */
#define STORE_AUDIT_DETAIL_SIZE 1024 /* a small JSON object, NUL included */

/** One audit entry. Never a secret or prompt text. */
struct store_audit {
    uint64_t seq;                         /* position in the trail, from 1 */
    int64_t ts;                           /* ms since the epoch */
    char actor[STORE_ID_SIZE];            /* "discord:123", "config", "system" */
    char action[STORE_AUDIT_ACTION_SIZE]; /* what was done */
    char subject[STORE_ID_SIZE];          /* what it was done to ("telegram:5", a pool), or "" */
    char detail[STORE_AUDIT_DETAIL_SIZE]; /* JSON object text, or "" */
    uint8_t prev[STORE_HASH_SIZE];        /* the previous entry's hash (zeros for the first) */
    uint8_t hash[STORE_HASH_SIZE];        /* chain hash over prev and this entry */
};

/** The last entry's seq and hash (0 and zeros for an empty trail). */
int store_txn_audit_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);

/** The head as recorded by the last append (0 and zeros when none), so
 *  that removing the newest entries shows. */
int store_txn_audit_head_recorded(struct store_txn *txn, uint64_t *seq,
                                  uint8_t hash[STORE_HASH_SIZE]);

/** Append an entry (its seq the head's plus one, its hashes the caller's)
 *  and record it as the head, in the same transaction. */
int store_txn_audit_append(struct store_txn *txn, const struct store_audit *a);

/** Call fn for every entry with seq >= from_seq, in seq order, stopping at
 *  the first non-zero return (which is returned). */
int store_txn_audit_each(struct store_txn *txn, uint64_t from_seq,
                         int (*fn)(const struct store_audit *a, void *data), void *data);

/** Entries with seq < before_seq (0 = no bound) whose actor, action or
 *  subject is `match` (NULL = any), newest first, skipping the first `skip`
 *  of them, at most max into out[]; *n is how many. */
int store_txn_audit_page(struct store_txn *txn, const char *match, uint64_t before_seq, size_t skip,
                         struct store_audit *out, size_t max, size_t *n);

/* ---- API keys: bearer keys of the metered API (core/apikey.h) -----------
 * Only a keyed hash of a key is stored, never the key. Rows are never
 * deleted: a revoked key keeps its row (revoked_at), so its spend stays
 * readable. Every call returns HB_ESCHEMA on a database older than the
 * apikeys table. */

#define STORE_APIKEY_ID_SIZE 40     /* "k" and hex, NUL included */
#define STORE_APIKEY_NAME_SIZE 64   /* a name the owner chose, NUL included */
#define STORE_APIKEY_PREFIX_SIZE 16 /* the first characters of the key, NUL included */
#define STORE_APIKEY_MODELS_SIZE 512

/** One API key's record. */
struct store_apikey {
    char id[STORE_APIKEY_ID_SIZE];
    char owner[STORE_ID_SIZE];   /* the account it spends: a wallet or a pool */
    char creator[STORE_ID_SIZE]; /* who created it: "discord:123" */
    char name[STORE_APIKEY_NAME_SIZE];
    char prefix[STORE_APIKEY_PREFIX_SIZE]; /* shown in lists */
    uint8_t hash[STORE_HASH_SIZE];         /* HMAC-SHA256 of the key under the server's secret */
    int64_t created_at;                    /* ms since the epoch */
    int64_t last_used;                     /* ms since the epoch, 0 = never */
    int64_t spend;                         /* credits charged through it in total */
    int64_t spend_day;                     /* the UTC day of day_spend */
    int64_t day_spend;                     /* credits charged through it on spend_day */
    int64_t cap_day;                       /* credits per UTC day, 0 = none */
    int64_t cap_total;                     /* credits in total, 0 = none */
    char models[STORE_APIKEY_MODELS_SIZE]; /* "a,b" models it may use, "" = any */
    int64_t rpm;                           /* requests per minute, 0 = none */
    int64_t expires_at;                    /* ms since the epoch, 0 = never */
    int64_t revoked_at;                    /* ms since the epoch, 0 = in force */
};

/** Insert a new key. HB_EEXISTS when its id or hash is taken. */
int store_txn_apikey_insert(struct store_txn *txn, const struct store_apikey *k);

/** Call fn for every key (revoked ones too) in creation order, until fn
 *  returns non-zero (which is returned). */
int store_txn_apikey_each(struct store_txn *txn,
                          int (*fn)(const struct store_apikey *k, void *data), void *data);

/** Mark key id revoked at `at` (ms). HB_ENOTFOUND when no such key is in
 *  force. */
int store_txn_apikey_revoke(struct store_txn *txn, const char *id, int64_t at);

/** Add amount credits to key id's spend (in total and on UTC day `day`,
 *  which starts over when the key's last day was another) and move
 *  last_used forward to now_ms. HB_ENOTFOUND when there is no such key. */
int store_txn_apikey_spend(struct store_txn *txn, const char *id, int64_t amount, int64_t day,
                           int64_t now_ms);

/* ---- Images: generated images kept for Regenerate, /gallery, contests ----
 * One row per generated image (core/gallery.h): who made it where, with
 * which model and size, its bytes, and the prompt for its owner's
 * Regenerate (erased by /forget: store_txn_image_forget). Rows are deleted
 * by the retention limit (store_txn_image_prune). Every call returns
 * HB_ESCHEMA on a database older than the images table. */

#define STORE_IMAGE_SIZE_SIZE 24 /* "1024x1024", NUL included */
#define STORE_IMAGE_MIME_SIZE 32 /* "image/png", NUL included */
#define STORE_IMAGE_PAGE_MAX 25  /* most rows one store_txn_image_page returns */

/** Which bytes a read returns in store_image.data. */
enum store_image_bytes {
    STORE_IMAGE_NONE = 0,  /* none (data NULL) */
    STORE_IMAGE_FULL = 1,  /* the image */
    STORE_IMAGE_THUMB = 2, /* its thumbnail (a PNG), or the image when it has none */
};

/** One stored image. prompt and data are borrowed by store_txn_image_put;
 *  the reads fill them with heap copies that store_image_clear frees. */
struct store_image {
    char id[STORE_TAG_SIZE];          /* the image's id, as its buttons carry it */
    char scope[STORE_ID_SIZE];        /* "<platform>:<group>" where it was made, "" in a DM */
    char owner[STORE_ID_SIZE];        /* the creator's wallet account "<platform>:<user>" */
    int platform;                     /* the creator's platform (enum command_platform) */
    char user_id[STORE_ID_SIZE];      /* the creator's platform user id */
    char scope_id[STORE_ID_SIZE];     /* the group's id, "" in a DM */
    char model[STORE_TAG_SIZE];       /* the model that made it */
    char size[STORE_IMAGE_SIZE_SIZE]; /* "WIDTHxHEIGHT" */
    char mime[STORE_IMAGE_MIME_SIZE]; /* "image/png" */
    int64_t created_at;               /* ms since the epoch */
    int64_t upvotes;                  /* reads by page: its count in the period asked for */
    char *prompt;                     /* NULL: erased, or not read */
    unsigned char *data;              /* the bytes asked for; NULL when not read */
    size_t len;                       /* bytes in data */
    bool is_thumb;                    /* reads: data is the thumbnail (mime says image/png) */
    const unsigned char *thumb;       /* put: a small PNG of it, or NULL (borrowed) */
    size_t thumb_len;                 /* put: bytes in thumb */
};

/** Free what a read put in img (prompt, data); the rest stays. */
void store_image_clear(struct store_image *img);

/** Insert an image, or replace the row of the same id. */
int store_txn_image_put(struct store_txn *txn, const struct store_image *img);

/** Read image id into *out, with the bytes `bytes` names. HB_ENOTFOUND
 *  when there is none (never stored, or pruned). */
int store_txn_image_get(struct store_txn *txn, const char *id, enum store_image_bytes bytes,
                        struct store_image *out);

/** One page of scope's images, at most max (<= STORE_IMAGE_PAGE_MAX) into
 *  out[] after skipping `skip`; *n is how many. top: the images with the
 *  highest count in the votes period `period`, highest first (ties by
 *  id), as store_txn_vote_top ranks them; else the images made at or after
 *  since_ms, newest first, each with its count in `period`. The bytes
 *  `bytes` names are read too. Clear each row with store_image_clear. */
int store_txn_image_page(struct store_txn *txn, const char *scope, const char *period, bool top,
                         int64_t since_ms, size_t skip, size_t max, enum store_image_bytes bytes,
                         struct store_image *out, size_t *n);

/** Delete the images made before before_ms, then, when keep_max > 0, all
 *  but the keep_max newest; *removed (may be NULL) gets how many went.
 *  with_ns (may be NULL): the state rows of that namespace keyed by a
 *  deleted image's id go with it (what the caller keeps per image). */
int store_txn_image_prune(struct store_txn *txn, int64_t before_ms, int64_t keep_max,
                          const char *with_ns, int64_t *removed);

/** Erase the prompts of owner's images (the images stay); *erased (may be
 *  NULL) gets how many. */
int store_txn_image_forget(struct store_txn *txn, const char *owner, int64_t *erased);

#endif
