/* What the PostgreSQL store's files share: the store struct, the prepared
 * statements, and the helpers that run them. Private to storage/pg*.c;
 * storage/store.h is the public API. */
#ifndef HB_PG_INTERNAL_H
#define HB_PG_INTERNAL_H

#include "storage/store.h"
#include "storage/store_backend.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_PARAMS_MAX 17    /* most parameters of one statement */
#define PG_PREPARED_MAX 256 /* room for every statement's text (a hash set) */

/* Parameters of one statement: text, or binary for bytea. */
struct pg_params {
    int n;
    const char *value[PG_PARAMS_MAX];
    int length[PG_PARAMS_MAX];
    int format[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][24]; /* integers, written as text */
};

/* A PostgreSQL array literal being built ({"a","b"}): rows of a multi-row
 * statement, one array a column (pg_puts.c). */
struct pg_arr {
    char *buf;
    size_t len;
    size_t cap;
    unsigned items;
    bool oom; /* memory ran out: the literal is unusable */
};

#define PG_ARRS 13 /* a transfer's columns */

#define PG_TRANSFER_COLS                                                                           \
    "seq, id, debit_account, credit_account, amount, kind, flags, link, expires_at, ts, "          \
    "ref, tag, hash"

struct pg_put;

/* Put-off writes a store keeps room for between batches, unless this many
 * batches in a row were small (pg_puts.c). */
#define PG_PUTS_KEEP 256
#define PG_PUTS_SMALL_BATCHES 16

/* One prepared statement: its name is "hb" and its index in a table. */
struct pg_stmt {
    const char *sql;
    int nparams;
};

struct pg_store {
    struct store base; /* first: store.c's part */
    PGconn *conn;
    char *url;       /* the connection string (a secret; never logged) */
    bool read_only;  /* tools: no migration, no writes */
    bool pipeline;   /* in libpq's pipeline mode (once open) */
    unsigned queued; /* commands sent whose results are not read yet */
    bool deferred;   /* some of them are writes of a job that already ended */
    bool broken;     /* a command of this transaction failed: it only rolls back */
    /* Accounts read or written by this daemon's write transactions, by id.
     * While one holds the write lock no other daemon changes them, so a
     * second read needs no round trip. Kept from one batch to the next
     * while the chain head shows no other daemon appended in between
     * (accounts change only with transfers); emptied on any rollback. */
    struct map *accounts;
    bool accounts_valid;   /* accounts hold as of the head accounts_seq */
    uint64_t accounts_seq; /* the head when the last commit kept them */
    bool accounts_checked; /* this transaction decided whether they still hold */
    /* Transfers of this write transaction by id: read ahead for its batch
     * (pg__batch_begin), or appended by it. A value is the transfer, or
     * pg__absent when the id was looked up and has none. */
    struct map *transfers;
    bool cache_on;        /* in a write transaction */
    uint64_t retry_at_ns; /* no reconnect before this (uv_hrtime), after a failure */
    uint64_t backoff_ns;  /* the next wait between reconnects */
    const char *prepared[PG_PREPARED_MAX]; /* statements prepared on this connection */
    /* Writes of this write transaction put off (pg_puts.c), in order:
     * puts[0, flushed) were sent, the rest wait. */
    struct pg_put *puts;
    size_t nputs;
    size_t puts_cap;
    unsigned small_batches; /* batches in a row with few put-off writes */
    size_t flushed;
    size_t job_mark;     /* where the running job's writes start */
    bool in_job;         /* a job runs (between savepoint and release) */
    bool job_sp;         /* it sent a statement: its SAVEPOINT was sent first */
    unsigned savepoints; /* SAVEPOINTs sent in this transaction */
    struct pg_arr arrs[PG_ARRS];
    struct pg_arr keys; /* the ids a batch reads ahead */
};

/* The PostgreSQL store a transaction belongs to. */
static inline struct pg_store *pg__of(struct store_txn *txn)
{
    return (struct pg_store *)txn->store;
}

void pg__params_init(struct pg_params *p);
void pg__text(struct pg_params *p, const char *v); /* NULL or "" stays NULL only for pg__opt */
void pg__opt(struct pg_params *p, const char *v);  /* NULL or "" binds SQL NULL */
void pg__int(struct pg_params *p, int64_t v);
void pg__bin(struct pg_params *p, const void *v, size_t len);

/* PostgreSQL's message as one log value: its first line, quotes made
 * single. Returns buf. */
const char *pg__msg(const char *msg, char *buf, size_t cap);
/** A connection to url (PQconnectdbParams, or PQconnectStartParams when
 *  nonblocking) with keepalives and a connect timeout the string may
 *  override. NULL without memory. */
PGconn *pg__conn_start(const char *url, bool nonblocking);
/** Check url parses (logging only that it does not: libpq's message quotes
 *  it) and register its password as a log secret. 0 or HB_EINVAL. */
int pg__url_check(const char *url);

/* store_listen on PostgreSQL (pg_listen.c). */
struct store_listener *pg__listen(struct store *base, uv_loop_t *loop,
                                  void (*on_change)(const char *what, void *data), void *data,
                                  int *rc);

/* Run the statement `sql` (prepared once per connection, keyed by its
 * address) with p; returns the result when its status is expect, else logs
 * PostgreSQL's message for `what`, clears it and returns NULL (*rc set:
 * HB_EEXISTS for a unique violation, else HB_ESTORAGE). */
int pg__send(struct pg_store *s, const char *sql, const struct pg_params *p, const char *what);
int pg__ctl(struct pg_store *s, const char *sql, bool wait, const char *what);
PGresult *pg__run(struct pg_store *s, const char *sql, const struct pg_params *p,
                  ExecStatusType expect, const char *what, int *rc);
/* Run a statement that returns no rows: 0 or the error of pg__run. When
 * changed is not NULL it gets how many rows the statement touched. */
int pg__do(struct pg_store *s, const char *sql, const struct pg_params *p, const char *what,
           int64_t *changed);
/* Run plain SQL text (no parameters, not prepared): 0 or HB_ESTORAGE. */
int pg__exec(struct pg_store *s, const char *sql, const char *what);
/* The connection (pg.c): a new one, in pipeline mode; the answers of what
 * is queued, up to the sync point it adds (the last kept in *keep); a
 * failure that loses the transaction. */
int pg__connect(struct pg_store *s);
int pg__pipeline_on(struct pg_store *s);
int pg__drain(struct pg_store *s, PGresult **keep, const char *what);
int pg__broke(struct pg_store *s, const PGresult *r, const char *what);
/* COMMIT, and a commit whose answer was lost (pg_commit.c). */
int pg__commit(struct store *base);

int64_t pg__int_at(const PGresult *r, int row, int col);
void pg__text_at(const PGresult *r, int row, int col, char *dst, size_t cap);
/* How many bytes the bytea text v ("\\x" and hex) holds; 0 when it is
 * not one. */
size_t pg__bytea_len(const char *v);
/* A bytea column (hex text) into dst, zero-filled past what it holds. */
void pg__bytes_at(const PGresult *r, int row, int col, uint8_t *dst, size_t cap);

/* Run a query inside txn: the result (rows) or NULL with *rc set. */
/** pg__query for a statement that writes and returns rows (UPDATE ...
 *  RETURNING): its job's SAVEPOINT first, as for any write. */
PGresult *pg__query_write(struct store_txn *txn, const char *sql, const struct pg_params *p,
                          const char *what, int *rc);
PGresult *pg__query(struct store_txn *txn, const char *sql, const struct pg_params *p,
                    const char *what, int *rc);
/* A query returning one integer (0 when it returns no row). */
int pg__one_int(struct store_txn *txn, const char *sql, const struct pg_params *p, int64_t *out,
                const char *what);
/* A (seq, hash) row of sql into seq and hash (0 and zeros with none). */
int pg__head_read(struct store_txn *txn, const char *sql, uint64_t *seq, uint8_t *hash,
                  const char *what);

/* Array literals and the writes put off (pg_puts.c). */
void pg__arr_open(struct pg_arr *a);
void pg__arr_text(struct pg_arr *a, const char *v);
const char *pg__arr_close(struct pg_arr *a);

int pg__put_transfer(struct pg_store *s, const struct store_transfer *t);
int pg__put_account(struct pg_store *s, const struct store_account *now,
                    const struct store_account *prev);
int pg__put_pending(struct pg_store *s, const char *id, int64_t expires_at, bool add);
int pg__puts_before(struct pg_store *s, bool read);
int pg__puts_commit(struct pg_store *s);
void pg__puts_clear(struct pg_store *s);
void pg__puts_job_start(struct pg_store *s);
void pg__puts_job_undo(struct pg_store *s);
void pg__puts_free(struct pg_store *s);
/* One row's statements (pg_records.c), for a write sent alone. */
extern const char pg_sql_transfer_insert[];
extern const char pg_sql_account_sums[];
void pg__transfer_params(struct pg_params *p, const struct store_transfer *t);
void pg__account_sums_params(struct pg_params *p, const struct store_account *a);
void pg__account_kept_set(struct pg_store *s, const struct store_account *a);
void pg__transfer_unkeep(struct pg_store *s, const char *id);

/* The account and transfer caches (pg_records.c): empty them. */
void pg__caches_forget(struct pg_store *s);
/* A write transaction committed: keep the accounts for the next one when
 * its head is known, forget the transfers. */
void pg__cache_committed(struct pg_store *s, const struct store_txn *txn);
/* Read the transfers a batch's jobs named (store_submit_keyed) ahead, in
 * one round trip (pg_records.c). */
int pg__batch_begin(struct store *base, struct store_job *jobs);

/* VACUUM the conversation tables after a batch that erased (pg_conv.c). */
void pg__vacuum(struct store *s);

/* The records (pg_records.c, pg_conv.c, pg_more.c), each the store_txn_*
 * call of store.h of the same name. */
int pg_txn_clock_ms(struct store_txn *txn, int64_t *now_ms);
int pg_txn_account_get(struct store_txn *txn, const char *id, struct store_account *out);
int pg_txn_account_insert(struct store_txn *txn, const struct store_account *account);
int pg_txn_account_update(struct store_txn *txn, const struct store_account *account);
int pg_txn_transfer_get(struct store_txn *txn, const char *id, struct store_transfer *out);
int pg_txn_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
int pg_txn_head_recorded(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
int pg_txn_transfer_append(struct store_txn *txn, const struct store_transfer *t);
int pg_txn_transfer_find_link(struct store_txn *txn, const char *link, uint32_t flags_any,
                              struct store_transfer *out);
int pg_txn_link_sum(struct store_txn *txn, const char *link, uint32_t flags_any, int64_t *sum);
int pg_txn_pending_add(struct store_txn *txn, const char *id, int64_t expires_at);
int pg_txn_pending_remove(struct store_txn *txn, const char *id);
int pg_txn_pending_expired(struct store_txn *txn, int64_t now, char (*ids)[STORE_ID_SIZE],
                           size_t max, size_t *n);
int pg_txn_pending_next(struct store_txn *txn, int64_t *expires_at);
int pg_txn_transfer_each(struct store_txn *txn, uint64_t from_seq,
                         int (*fn)(const struct store_transfer *t, void *data), void *data);
int pg_txn_account_each(struct store_txn *txn, int (*fn)(const struct store_account *a, void *data),
                        void *data);
int pg_txn_pending_each(struct store_txn *txn,
                        int (*fn)(const char *id, int64_t expires_at, void *data), void *data);
int pg_txn_history(struct store_txn *txn, const char *account, uint64_t before_seq,
                   struct store_transfer *out, size_t max, size_t *n);
int pg_txn_usage(struct store_txn *txn, uint32_t kind, uint32_t flags_none, const char *account,
                 int64_t from, int64_t to, struct store_usage *out, size_t max, size_t *n);
int pg_txn_state_get(struct store_txn *txn, const char *ns, const char *key, char **value);
int pg_txn_state_put(struct store_txn *txn, const char *ns, const char *key, const char *value,
                     int64_t now_ms);
int pg_txn_state_each(struct store_txn *txn, const char *ns, const char *prefix,
                      int (*fn)(const char *key, const char *value, void *data), void *data);
int pg_txn_state_range(struct store_txn *txn, const char *ns, const char *from, const char *to,
                       int (*fn)(const char *key, const char *value, void *data), void *data);
int pg_txn_chat_put(struct store_txn *txn, const char *key, unsigned fields, const char *persona,
                    int plaintalk, int64_t now_ms);
int pg_txn_chat_each(struct store_txn *txn,
                     int (*fn)(const char *key, const char *persona, int plaintalk, void *data),
                     void *data);
int pg_txn_link_put(struct store_txn *txn, const char *identity, const char *wallet,
                    int64_t now_ms);
int pg_txn_link_remove(struct store_txn *txn, const char *identity);
int pg_txn_link_each(struct store_txn *txn,
                     int (*fn)(const char *identity, const char *wallet, int64_t linked_at,
                               void *data),
                     void *data);
int pg_txn_vote_add(struct store_txn *txn, const char *scope, const char *period,
                    const struct store_vote *v);
int pg_txn_vote_top(struct store_txn *txn, const char *scope, const char *period,
                    struct store_vote *out, size_t max, size_t *n);
int pg_txn_counter_add(struct store_txn *txn, const char *name, int64_t win, int64_t delta,
                       int64_t limit, int64_t *used);
int pg_txn_counter_get(struct store_txn *txn, const char *name, int64_t win, int64_t *used);
int pg_txn_conv_get(struct store_txn *txn, const char *id, struct store_conv *out);
int pg_txn_conv_put(struct store_txn *txn, const struct store_conv *c);
int pg_txn_conv_turns(struct store_txn *txn, const char *conv,
                      int (*fn)(int64_t seq, const char *role, const char *text, int64_t at,
                                void *data),
                      void *data);
int pg_txn_conv_turn_put(struct store_txn *txn, const char *conv, int64_t seq, const char *role,
                         const char *text, int64_t at);
int pg_txn_conv_trim(struct store_txn *txn, const char *conv, int64_t first);
int pg_txn_conv_place_get(struct store_txn *txn, const char *place, char *conv, size_t cap);
int pg_txn_conv_message_get(struct store_txn *txn, const char *message, char *conv, size_t cap);
int pg_txn_conv_places_each(struct store_txn *txn, int (*fn)(const char *place, void *data),
                            void *data);
int pg_txn_conv_place_put(struct store_txn *txn, const char *place, const char *conv,
                          const char *owner, int64_t now_ms);
int pg_txn_conv_message_put(struct store_txn *txn, const char *message, const char *conv,
                            const char *owner, int64_t now_ms);
int pg_txn_conv_forget(struct store_txn *txn, const char *owner, int64_t *turns);
int pg_txn_conv_expire(struct store_txn *txn, int64_t before, int64_t *rows);
void pg_txn_vacuum_after(struct store_txn *txn);
int pg_txn_outbox_put(struct store_txn *txn, const char *channel, int64_t id, int64_t chat,
                      const char *body, const void *data, size_t data_len, int64_t now_ms);
int pg_txn_outbox_remove(struct store_txn *txn, const char *channel, int64_t id);
int pg_txn_outbox_fail(struct store_txn *txn, const char *channel, int64_t id, const char *error,
                       int64_t now_ms);
int pg_txn_outbox_each(struct store_txn *txn, const char *channel, int64_t after_id, size_t max,
                       int (*fn)(int64_t id, int64_t chat, const char *body, const void *data,
                                 size_t data_len, void *arg),
                       void *arg);
int pg_txn_outbox_max(struct store_txn *txn, const char *channel, int64_t *id);
int pg_txn_outbox_count(struct store_txn *txn, const char *channel, bool undeliverable, int64_t *n);
int pg_txn_outbox_channels(struct store_txn *txn, const char *family,
                           int (*fn)(const char *channel, void *arg), void *arg);
int pg_txn_outbox_move(struct store_txn *txn, const char *from, const char *to, int64_t upto_id,
                       int64_t now_ms, int64_t *moved);
int pg_txn_audit_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
int pg_txn_audit_head_recorded(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE]);
int pg_txn_audit_append(struct store_txn *txn, const struct store_audit *a);
int pg_txn_audit_each(struct store_txn *txn, uint64_t from_seq,
                      int (*fn)(const struct store_audit *a, void *data), void *data);
int pg_txn_audit_page(struct store_txn *txn, const char *match, uint64_t before_seq, size_t skip,
                      struct store_audit *out, size_t max, size_t *n);
int pg_txn_apikey_insert(struct store_txn *txn, const struct store_apikey *k);
int pg_txn_apikey_each(struct store_txn *txn, int (*fn)(const struct store_apikey *k, void *data),
                       void *data);
int pg_txn_apikey_revoke(struct store_txn *txn, const char *id, int64_t at);
int pg_txn_apikey_spend(struct store_txn *txn, const char *id, int64_t amount, int64_t day,
                        int64_t now_ms);
int pg_txn_image_put(struct store_txn *txn, const struct store_image *img);
int pg_txn_image_get(struct store_txn *txn, const char *id, enum store_image_bytes bytes,
                     struct store_image *out);
int pg_txn_image_page(struct store_txn *txn, const char *scope, const char *period, bool top,
                      int64_t since_ms, size_t skip, size_t max, enum store_image_bytes bytes,
                      struct store_image *out, size_t *n);
int pg_txn_image_prune(struct store_txn *txn, int64_t before_ms, int64_t keep_max,
                       const char *with_ns, int64_t *removed);
int pg_txn_image_forget(struct store_txn *txn, const char *owner, int64_t *erased);

#endif
