/* What the SQLite store's own files share: the statement ids and text, the
 * store and transaction structs, and the statement helpers. Private to
 * storage/sqlite*.c; storage/store.h is the public API. */
#ifndef HB_SQLITE_INTERNAL_H
#define HB_SQLITE_INTERNAL_H

#include "storage/store.h"
#include "storage/store_backend.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

enum store_stmt_id {
    ST_BEGIN_WRITE,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_DATA_VERSION,
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
    ST_VOTE_ADD, /* from here to ST_VOTE_TOP: statements of STORE_VOTES_VERSION */
    ST_VOTE_TOP,
    ST_COUNTER_ENSURE, /* from here to ST_COUNTER_PRUNE: STORE_COUNTER_VERSION */
    ST_COUNTER_ADD,
    ST_COUNTER_GET,
    ST_COUNTER_SET,
    ST_COUNTER_PRUNE,
    ST_OUTBOX_PUT, /* from here to ST_OUTBOX_MOVE: statements of STORE_OUTBOX_VERSION */
    ST_OUTBOX_REMOVE,
    ST_OUTBOX_FAIL,
    ST_OUTBOX_PURGE,
    ST_OUTBOX_EACH,
    ST_OUTBOX_MAX,
    ST_OUTBOX_COUNT,
    ST_OUTBOX_CHANNELS,
    ST_OUTBOX_MOVE,
    ST_AUDIT_HEAD, /* from here on: statements of STORE_AUDIT_VERSION */
    ST_AUDIT_HEAD_RECORD,
    ST_AUDIT_HEAD_RECORDED,
    ST_AUDIT_INSERT,
    ST_AUDIT_EACH,
    ST_AUDIT_PAGE,
    ST_COUNT
};

/* The first schema with the chat_settings table (sqlite_chat.c). */
#define STORE_CHAT_VERSION 8

/* The first schema with the apikeys table (sqlite_apikey.c). */
#define STORE_APIKEY_VERSION 11

/* The text of each statement, prepared once at open (sqlite_open.c). */
extern const char *const store__sql[ST_COUNT];

#define STORE_CONV_STMTS 24 /* statements of sqlite_conv.c, with room */

struct sqlite_store {
    struct store base; /* first: store.c's part */
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    int lock_fd; /* the held `<path>.lock` (one daemon per database), or -1 */
    sqlite3_stmt *conv[STORE_CONV_STMTS]; /* conversation statements (sqlite_conv.c) */
    /* Accounts and limit counters read or written (sqlite_kept.c): by
     * this transaction, and by the writer's earlier ones that committed. */
    struct map *accounts;     /* id -> struct sqlite_kept, or NULL */
    struct map *counters;     /* "<win> <name>" -> struct sqlite_kept, or NULL */
    struct sqlite_undo *undo; /* what the running job changed in them, first value each */
    size_t nundo, undo_cap;
    uint64_t job_gen;     /* the running job's number */
    bool in_job;          /* a job runs in its savepoint */
    int64_t data_version; /* PRAGMA data_version when the last write transaction began */
};

/* The SQLite store a transaction belongs to. */
static inline struct sqlite_store *sqlite__of(struct store_txn *txn)
{
    return (struct sqlite_store *)txn->store;
}

/* The transaction calls (sqlite.c) and the ops table (sqlite_open.c). */
int sqlite__begin(struct store *s, bool write);
int sqlite__commit(struct store *s);
int sqlite__commit_early(struct store *s, bool *owed);
int sqlite__sync_owed(struct store *s);
void sqlite__rollback(struct store *s);
int sqlite__savepoint(struct store *s);
int sqlite__release(struct store *s);
int sqlite__rollback_to(struct store *s);
int sqlite__head_record(struct store_txn *txn);
/* The accounts and counters kept by the writer (sqlite_kept.c): the job
 * and transaction boundaries they follow. */
void sqlite__kept_drop(struct sqlite_store *s);
/** At a write transaction's start: drop what is kept unless it is still
 *  the database's. Returns 0, or an error (nothing is kept then). */
int sqlite__kept_txn_begin(struct sqlite_store *s);
void sqlite__kept_job_begin(struct sqlite_store *s);
void sqlite__kept_job_end(struct sqlite_store *s, bool undo);
/** Write every kept account and counter changed since the last flush.
 *  Returns 0 or an error. */
int sqlite__kept_flush(struct sqlite_store *s);
void store__row_account(sqlite3_stmt *st, struct store_account *a);
/** The bounded add of a counter's row as SQL runs it (sqlite_records.c):
 *  1 when it applied (*after the value now), 2 when it applied to the row
 *  it made (the window had none; the name's earlier windows were dropped),
 *  0 when the row there refused it, or HB_ESTORAGE. */
int store__counter_add_sql(struct sqlite_store *s, const char *name, int64_t win, int64_t delta,
                           int64_t limit, int64_t *after);
void sqlite__after_batch(struct store *s);

/* The records: each the store_txn_* call of store.h of the same name. */
int sqlite_txn_account_get(struct store_txn *txn, const char *id, struct store_account *out);
int sqlite_txn_account_insert(struct store_txn *txn, const struct store_account *account);
int sqlite_txn_account_update(struct store_txn *txn, const struct store_account *account);
int sqlite_txn_transfer_get(struct store_txn *txn, const char *id, struct store_transfer *out);
int sqlite_txn_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
int sqlite_txn_head_recorded(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
int sqlite_txn_transfer_append(struct store_txn *txn, const struct store_transfer *t);
int sqlite_txn_transfer_find_link(struct store_txn *txn, const char *link, uint32_t flags_any,
                                  struct store_transfer *out);
int sqlite_txn_link_sum(struct store_txn *txn, const char *link, uint32_t flags_any, int64_t *sum);
int sqlite_txn_pending_add(struct store_txn *txn, const char *id, int64_t expires_at);
int sqlite_txn_pending_remove(struct store_txn *txn, const char *id);
int sqlite_txn_pending_expired(struct store_txn *txn, int64_t now, char (*ids)[STORE_ID_SIZE],
                               size_t max, size_t *n);
int sqlite_txn_pending_next(struct store_txn *txn, int64_t *expires_at);
int sqlite_txn_transfer_each(struct store_txn *txn, uint64_t from_seq,
                             int (*fn)(const struct store_transfer *t, void *data), void *data);
int sqlite_txn_account_each(struct store_txn *txn,
                            int (*fn)(const struct store_account *a, void *data), void *data);
int sqlite_txn_pending_each(struct store_txn *txn,
                            int (*fn)(const char *id, int64_t expires_at, void *data), void *data);
int sqlite_txn_history(struct store_txn *txn, const char *account, uint64_t before_seq,
                       struct store_transfer *out, size_t max, size_t *n);
int sqlite_txn_usage(struct store_txn *txn, uint32_t kind, uint32_t flags_none, const char *account,
                     int64_t from, int64_t to, struct store_usage *out, size_t max, size_t *n);
int sqlite_txn_state_get(struct store_txn *txn, const char *ns, const char *key, char **value);
int sqlite_txn_state_put(struct store_txn *txn, const char *ns, const char *key, const char *value,
                         int64_t now_ms);
int sqlite_txn_state_each(struct store_txn *txn, const char *ns, const char *prefix,
                          int (*fn)(const char *key, const char *value, void *data), void *data);
int sqlite_txn_state_range(struct store_txn *txn, const char *ns, const char *from, const char *to,
                           int (*fn)(const char *key, const char *value, void *data), void *data);
int sqlite_txn_chat_put(struct store_txn *txn, const char *key, unsigned fields,
                        const char *persona, int plaintalk, int64_t now_ms);
int sqlite_txn_chat_each(struct store_txn *txn,
                         int (*fn)(const char *key, const char *persona, int plaintalk, void *data),
                         void *data);
int sqlite_txn_link_put(struct store_txn *txn, const char *identity, const char *wallet,
                        int64_t now_ms);
int sqlite_txn_link_remove(struct store_txn *txn, const char *identity);
int sqlite_txn_link_each(struct store_txn *txn,
                         int (*fn)(const char *identity, const char *wallet, int64_t linked_at,
                                   void *data),
                         void *data);
int sqlite_txn_vote_add(struct store_txn *txn, const char *scope, const char *period,
                        const struct store_vote *v);
int sqlite_txn_vote_top(struct store_txn *txn, const char *scope, const char *period,
                        struct store_vote *out, size_t max, size_t *n);
int sqlite_txn_counter_add(struct store_txn *txn, const char *name, int64_t win, int64_t delta,
                           int64_t limit, int64_t *used);
int sqlite_txn_counter_get(struct store_txn *txn, const char *name, int64_t win, int64_t *used);
int sqlite_txn_conv_get(struct store_txn *txn, const char *id, struct store_conv *out);
int sqlite_txn_conv_put(struct store_txn *txn, const struct store_conv *c);
int sqlite_txn_conv_turns(struct store_txn *txn, const char *conv,
                          int (*fn)(int64_t seq, const char *role, const char *text, int64_t at,
                                    void *data),
                          void *data);
int sqlite_txn_conv_turn_put(struct store_txn *txn, const char *conv, int64_t seq, const char *role,
                             const char *text, int64_t at);
int sqlite_txn_conv_trim(struct store_txn *txn, const char *conv, int64_t first);
int sqlite_txn_conv_place_get(struct store_txn *txn, const char *place, char *conv, size_t cap);
int sqlite_txn_conv_message_get(struct store_txn *txn, const char *message, char *conv, size_t cap);
int sqlite_txn_conv_places_each(struct store_txn *txn, int (*fn)(const char *place, void *data),
                                void *data);
int sqlite_txn_conv_place_put(struct store_txn *txn, const char *place, const char *conv,
                              const char *owner, int64_t now_ms);
int sqlite_txn_conv_message_put(struct store_txn *txn, const char *message, const char *conv,
                                const char *owner, int64_t now_ms);
int sqlite_txn_conv_forget(struct store_txn *txn, const char *owner, int64_t *turns);
int sqlite_txn_conv_expire(struct store_txn *txn, int64_t before, int64_t *rows);
void sqlite_txn_vacuum_after(struct store_txn *txn);
int sqlite_txn_outbox_put(struct store_txn *txn, const char *channel, int64_t id, int64_t chat,
                          const char *body, const void *data, size_t data_len, int64_t now_ms);
int sqlite_txn_outbox_remove(struct store_txn *txn, const char *channel, int64_t id);
int sqlite_txn_outbox_fail(struct store_txn *txn, const char *channel, int64_t id,
                           const char *error, int64_t now_ms);
int sqlite_txn_outbox_each(struct store_txn *txn, const char *channel, int64_t after_id, size_t max,
                           int (*fn)(int64_t id, int64_t chat, const char *body, const void *data,
                                     size_t data_len, void *arg),
                           void *arg);
int sqlite_txn_outbox_max(struct store_txn *txn, const char *channel, int64_t *id);
int sqlite_txn_outbox_count(struct store_txn *txn, const char *channel, bool undeliverable,
                            int64_t *n);
int sqlite_txn_outbox_channels(struct store_txn *txn, const char *family,
                               int (*fn)(const char *channel, void *arg), void *arg);
int sqlite_txn_outbox_move(struct store_txn *txn, const char *from, const char *to, int64_t upto_id,
                           int64_t now_ms, int64_t *moved);
int sqlite_txn_audit_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
int sqlite_txn_audit_head_recorded(struct store_txn *txn, uint64_t *seq,
                                   uint8_t hash[STORE_HASH_SIZE]);
int sqlite_txn_audit_append(struct store_txn *txn, const struct store_audit *a);
int sqlite_txn_audit_each(struct store_txn *txn, uint64_t from_seq,
                          int (*fn)(const struct store_audit *a, void *data), void *data);
int sqlite_txn_audit_page(struct store_txn *txn, const char *match, uint64_t before_seq,
                          size_t skip, struct store_audit *out, size_t max, size_t *n);
int sqlite_txn_apikey_insert(struct store_txn *txn, const struct store_apikey *k);
int sqlite_txn_apikey_each(struct store_txn *txn,
                           int (*fn)(const struct store_apikey *k, void *data), void *data);
int sqlite_txn_apikey_revoke(struct store_txn *txn, const char *id, int64_t at);
int sqlite_txn_apikey_spend(struct store_txn *txn, const char *id, int64_t amount, int64_t day,
                            int64_t now_ms);
int sqlite_txn_image_put(struct store_txn *txn, const struct store_image *img);
int sqlite_txn_image_get(struct store_txn *txn, const char *id, enum store_image_bytes bytes,
                         struct store_image *out);
int sqlite_txn_image_page(struct store_txn *txn, const char *scope, const char *period, bool top,
                          int64_t since_ms, size_t skip, size_t max, enum store_image_bytes bytes,
                          struct store_image *out, size_t *n);
int sqlite_txn_image_prune(struct store_txn *txn, int64_t before_ms, int64_t keep_max,
                           const char *with_ns, int64_t *removed);
int sqlite_txn_image_forget(struct store_txn *txn, const char *owner, int64_t *erased);

/* Prepare / finalize the conversation statements (sqlite_conv.c). */
int store__conv_prepare(struct sqlite_store *s);
void store__conv_finalize(struct sqlite_store *s);
/* Give free pages back and truncate the WAL, outside any transaction
 * (sqlite_conv.c); on the store's thread after a batch that asked for it. */
void store__vacuum(struct sqlite_store *s);

/* Log SQLite's error for what and return HB_ESTORAGE. */
int store__fail(struct sqlite_store *s, const char *what);
/* A prepared statement reset and cleared for a fresh use. */
sqlite3_stmt *store__stmt(struct sqlite_store *s, enum store_stmt_id id);
/* Run a statement that returns no rows. */
int store__step_done(struct sqlite_store *s, sqlite3_stmt *st, const char *what);
/* A text column into dst (cap bytes, cut to fit, "" for NULL). */
void store__copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col);
/* Run the statement id, which takes no parameters and returns no rows. */
int store__exec_stmt(struct sqlite_store *s, enum store_stmt_id id);

/* sqlite_vfs.c: the name of the VFS that gathers each commit's WAL writes
 * into one (NULL if it could not be registered), for databases opened with
 * synchronous=FULL only; and how many writes it has passed on, for tests. */
const char *sqlite_walbuf_vfs(void);
unsigned long sqlite_walbuf_writes(void);

/* The calling thread's next COMMITs may put their WAL sync off (on), or
 * not (off); sqlite_walbuf_owes says whether one did, and
 * sqlite_walbuf_sync_owed makes that sync (SQLITE_OK, or its error). */
void sqlite_walbuf_defer(bool on);
bool sqlite_walbuf_owes(void);
int sqlite_walbuf_sync_owed(void);

#endif
