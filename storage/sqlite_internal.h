/* What the SQLite store's own files share: the statement ids and text, the
 * store and transaction structs, and the statement helpers. Private to
 * storage/sqlite*.c; storage/store.h is the public API. */
#ifndef HB_SQLITE_INTERNAL_H
#define HB_SQLITE_INTERNAL_H

#include "storage/store.h"

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
    ST_COUNTER_PRUNE,
    ST_OUTBOX_PUT, /* from here to ST_OUTBOX_COUNT: statements of STORE_OUTBOX_VERSION */
    ST_OUTBOX_REMOVE,
    ST_OUTBOX_FAIL,
    ST_OUTBOX_EACH,
    ST_OUTBOX_MAX,
    ST_OUTBOX_COUNT,
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

struct store_txn {
    struct store *store;
    bool head_valid;                    /* head_* hold the chain head */
    uint64_t head_seq;                  /* last appended seq */
    uint8_t head_hash[STORE_HASH_SIZE]; /* last appended hash */
    uint64_t saved_seq;                 /* head at the current savepoint */
    uint8_t saved_hash[STORE_HASH_SIZE];
    bool saved_valid;
    bool head_dirty; /* appended since the last commit */
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    int version;          /* schema version of the open database */
    int lock_fd;          /* the held `<path>.lock` (one daemon per database), or -1 */
    bool single_commit;   /* one job per transaction */
    unsigned batch_max;   /* most jobs per transaction */
    struct store_txn txn; /* the one transaction context */
    sqlite3_stmt *conv[STORE_CONV_STMTS]; /* conversation statements (sqlite_conv.c) */
    bool vacuum_due;                      /* store's thread: vacuum after this batch */

    /* Threading; all below mu is guarded by mu. */
    uv_loop_t *loop;
    uv_thread_t thread;
    uv_async_t async; /* wakes the loop for completions */
    bool started;     /* the thread runs (until joined) */
    uv_mutex_t mu;
    uv_cond_t cv;
    struct store_job *queue_head; /* waiting to run */
    struct store_job *queue_tail;
    struct store_job *done_head; /* committed, waiting for their done call */
    struct store_job *done_tail;
    bool stopping; /* no new jobs; the thread exits when idle */
    bool exited;   /* the thread has left its loop */
    void (*stop_cb)(struct store *store, void *data);
    void *stop_data;
};

/* Prepare / finalize the conversation statements (sqlite_conv.c). */
int store__conv_prepare(struct store *s);
void store__conv_finalize(struct store *s);
/* Give free pages back and truncate the WAL, outside any transaction
 * (sqlite_conv.c); on the store's thread after a batch that asked for it. */
void store__vacuum(struct store *s);

/* Log SQLite's error for what and return HB_ESTORAGE. */
int store__fail(struct store *s, const char *what);
/* A prepared statement reset and cleared for a fresh use. */
sqlite3_stmt *store__stmt(struct store *s, enum store_stmt_id id);
/* Run a statement that returns no rows. */
int store__step_done(struct store *s, sqlite3_stmt *st, const char *what);
/* Run the statement id, which takes no parameters and returns no rows. */
int store__exec_stmt(struct store *s, enum store_stmt_id id);

#endif
