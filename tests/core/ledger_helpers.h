/* Helpers shared by the ledger's test groups: a loop, a ledger on a fresh
 * database, a fake clock, and synchronous wrappers that run the loop until
 * an operation's callback has fired.
 *
 * The backend: SQLite, unless the group's setup is lt_group_setup_pg, which
 * makes every lt_init of the group open the ledger on a fresh PostgreSQL
 * database instead (tests/util.c test_pg_db). The `_pg` groups run the
 * same test bodies that way. */
#ifndef HB_TEST_LEDGER_HELPERS_H
#define HB_TEST_LEDGER_HELPERS_H

#include "core/ledger.h"

#include <stdbool.h>
#include <uv.h>

struct lt {
    uv_loop_t loop;
    struct ledger *ledger;
    char *dir;      /* heap: the test's directory */
    char path[512]; /* the database (SQLite) */
    char url[512];  /* the database's connection string (PostgreSQL), or "" */
    int64_t now;    /* the fake clock, ms */
    struct ledger_options opts;
};

/* One finished operation, copied out of its callback. */
struct lt_res {
    bool done;
    int rc;
    struct ledger_result r; /* pointers inside are cleared */
    char field[32];
    char reason[32];
    struct store_transfer history[100];
    size_t history_count;
    struct store_usage usage[64];
    size_t usage_count;
};

/** The backend lt_init opens: STORE_BACKEND_SQLITE unless the running
 *  group's setup chose PostgreSQL. */
extern enum store_backend_kind lt_backend;

/** Set up a loop and a ledger on a fresh database: a file in a new test
 *  directory (tmpfs=true puts it under /dev/shm when present), or, when
 *  lt_backend is PostgreSQL, a new database on the test server (the
 *  directory is made all the same). The fake clock starts at a fixed time;
 *  the expiry timer is off unless real_clock. */
void lt_init(struct lt *t, bool tmpfs, bool real_clock);
/** Open the ledger again on the same database (after lt_ledger_close). */
void lt_ledger_open(struct lt *t);
void lt_ledger_close(struct lt *t);
/** Close everything, assert uv_loop_close is 0, remove the directory. */
void lt_done(struct lt *t);

/** The callback that fills a struct lt_res (data). */
void lt_cb(int rc, const struct ledger_result *r, void *data);
struct store_txn;
/** Run fn(txn, data) as a job on the ledger's store (as another daemon, or
 *  a check, would) and wait for its commit; returns its result. */
int lt_store_run(struct lt *t, int (*fn)(struct store_txn *txn, void *data), void *data);

/** Run the loop until res->done. */
void lt_wait(struct lt *t, struct lt_res *res);

int lt_open(struct lt *t, const char *account, uint32_t flags, int64_t bonus, struct lt_res *res);
int lt_transfer(struct lt *t, const struct ledger_transfer *tr, struct lt_res *res);
int lt_plain(struct lt *t, const char *id, const char *debit, const char *credit, int64_t amount,
             uint32_t kind, struct lt_res *res);
int lt_reserve(struct lt *t, const char *id, const char *debit, const char *credit, int64_t amount,
               int64_t timeout_ms, struct lt_res *res);
int lt_post(struct lt *t, const char *id, const char *pending, int64_t amount, struct lt_res *res);
int lt_void(struct lt *t, const char *id, const char *pending, struct lt_res *res);
int lt_reverse(struct lt *t, const char *id, const char *orig, int64_t amount, uint32_t kind,
               struct lt_res *res);
int lt_expire(struct lt *t, struct lt_res *res);
/** Balance of an account; asserts the query succeeded. */
struct ledger_balance lt_balance(struct lt *t, const char *account);
/** Run ledger_verify_file; returns its result and, when out is not NULL,
 *  the report (heap). */
int lt_verify(const char *path, char **out);

/** Run verify on t's database, whichever backend it is on (as lt_verify). */
int lt_verify_ledger(const struct lt *t, char **out);

/** Append what is available on fd (a pipe from a child) to *buf, waiting
 *  at most wait_ms for it; *buf stays NUL-terminated. Returns false at end
 *  of file. */
bool lt_pipe_read(int fd, char **buf, size_t *len, int wait_ms);

/** The test of PostgreSQL restarted under load (test_ledger_restart.c),
 *  run in the group `ledger_multi_pg`. */
void lt_test_pg_restart(void **state);
/** A teardown: wait (up to 30 s) until the test server answers again;
 *  -1 when it does not. */
int lt_pg_server_up(void **state);

/** Group setup/teardown: quiet the logger to warnings for the group.
 *  lt_group_setup_pg also puts the group's ledgers on PostgreSQL; the
 *  teardown puts them back on SQLite. */
int lt_group_setup(void **state);
int lt_group_setup_pg(void **state);
int lt_group_teardown(void **state);

#endif
