/* A fresh database for one store test, on either backend, and SQL on it
 * beside the store (the store tests' shared fixture). */
#ifndef HB_TESTS_STORE_DB_H
#define HB_TESTS_STORE_DB_H

#include "tests/test.h"

#include "storage/store.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fresh database for one test on backend: a file in a new
 * directory, or a new PostgreSQL database (the directory is made too). */
struct store_db {
    char *dir;      /* heap */
    char path[512]; /* SQLite */
    char url[512];  /* PostgreSQL */
    struct store_options opts;
};

static inline void store_db_init(struct store_db *d, enum store_backend_kind backend)
{
    memset(d, 0, sizeof(*d));
    if (backend == STORE_BACKEND_POSTGRES)
        assert_int_equal(test_pg_db(d->url, sizeof(d->url)), 0);
    d->dir = test_tmpdir_new();
    snprintf(d->path, sizeof(d->path), "%s/s.db", d->dir);
    d->opts.backend = backend;
    if (backend == STORE_BACKEND_POSTGRES) {
        d->opts.url = d->url;
    } else {
        d->opts.path = d->path;
    }
}

static inline void store_db_done(struct store_db *d)
{
    test_tmpdir_remove(d->dir);
    free(d->dir);
    d->dir = NULL;
}

/* A store on d's database (its schema made or migrated), not started. */
static inline struct store *store_db_open(const struct store_db *d)
{
    int rc = 0;
    struct store *s = store_new(&d->opts, &rc);
    assert_non_null(s);
    return s;
}

/* Start s on a new loop. */
static inline void store_db_start(struct store *s, uv_loop_t *loop)
{
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(store_start(s, loop), 0);
}

/* sql on the database directly, beside the store. */
static inline int db_int(const struct store_db *d, const char *sql)
{
    int64_t v = d->opts.backend == STORE_BACKEND_POSTGRES ? test_pg_int(d->url, sql)
                                                          : test_sql_int(d->path, sql);
    assert_true(v >= 0);
    return (int)v;
}

/* True when the database accepted sql. */
static inline bool db_exec_ok(const struct store_db *d, const char *sql)
{
    if (d->opts.backend == STORE_BACKEND_POSTGRES)
        return test_pg_exec(d->url, sql, true) == 0;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(d->path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK;
}

/* A group's setup naming the backend its tests run on (*state). */
static inline int store_db_setup_sqlite(void **state)
{
    static enum store_backend_kind kind = STORE_BACKEND_SQLITE;
    *state = &kind;
    return 0;
}

static inline int store_db_setup_pg(void **state)
{
    static enum store_backend_kind kind = STORE_BACKEND_POSTGRES;
    *state = &kind;
    return 0;
}

static inline void store_db__stopped(struct store *s, void *data)
{
    (void)s;
    *(bool *)data = true;
}

/* Stop and free a started store, then close its loop. */
static inline void store_db_stop(struct store *s, uv_loop_t *loop)
{
    bool stopped = false;
    store_stop(s, store_db__stopped, &stopped);
    while (!stopped)
        uv_run(loop, UV_RUN_ONCE);
    store_free(s);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* Holds the store's thread until released, so the jobs queued meanwhile
 * share one batch. */
struct store_gate {
    struct store_job job;
    uv_sem_t entered;
    uv_sem_t open;
    bool done;
};

static inline int store_gate__run(struct store_txn *txn, struct store_job *job)
{
    (void)txn;
    struct store_gate *g = (struct store_gate *)job;
    uv_sem_post(&g->entered);
    uv_sem_wait(&g->open);
    return 0;
}

static inline void store_gate__done(struct store_job *job, int rc)
{
    (void)rc;
    ((struct store_gate *)job)->done = true;
}

/* Hold s's thread in a batch of the gate's own. */
static inline void store_gate_hold(struct store *s, struct store_gate *g)
{
    memset(g, 0, sizeof(*g));
    g->job.run = store_gate__run;
    g->job.done = store_gate__done;
    assert_int_equal(uv_sem_init(&g->entered, 0), 0);
    assert_int_equal(uv_sem_init(&g->open, 0), 0);
    assert_int_equal(store_submit(s, &g->job), 0);
    uv_sem_wait(&g->entered);
}

/* Let it go (the jobs queued since run as one batch) and wait for its end. */
static inline void store_gate_release(struct store_gate *g, uv_loop_t *loop)
{
    uv_sem_post(&g->open);
    while (!g->done)
        uv_run(loop, UV_RUN_ONCE);
    uv_sem_destroy(&g->open);
    uv_sem_destroy(&g->entered);
}

#endif
