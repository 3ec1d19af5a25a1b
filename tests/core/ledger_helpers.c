#include "tests/core/ledger_helpers.h"

#include "tests/test.h"

#include "base/error.h"
#include "base/util.h"
#include "storage/store.h"
#include "base/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LT_EPOCH 1767225600000LL /* 2026-01-01T00:00:00Z */

enum store_backend_kind lt_backend = STORE_BACKEND_SQLITE;

static int64_t lt__clock(void *data)
{
    return ((struct lt *)data)->now;
}

void lt_init(struct lt *t, bool tmpfs, bool real_clock)
{
    memset(t, 0, sizeof(*t));
    /* First: a test that cannot have its database fails with nothing to
     * undo. */
    if (lt_backend == STORE_BACKEND_POSTGRES)
        assert_int_equal(test_pg_db(t->url, sizeof(t->url)), 0);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    if (tmpfs && access("/dev/shm", W_OK) == 0) {
        char tmpl[] = "/dev/shm/haibot-test-XXXXXX";
        char *d = mkdtemp(tmpl);
        assert_non_null(d);
        t->dir = strdup(d);
        assert_non_null(t->dir);
    } else {
        t->dir = test_tmpdir_new();
    }
    snprintf(t->path, sizeof(t->path), "%s/ledger.db", t->dir);
    t->now = LT_EPOCH;
    t->opts.backend = lt_backend;
    if (lt_backend == STORE_BACKEND_POSTGRES) {
        t->opts.url = t->url;
    } else {
        t->opts.path = t->path;
    }
    if (!real_clock) {
        t->opts.clock = (struct clock){.now_ms = lt__clock, .data = t};
        t->opts.no_expire_timer = true;
    }
    lt_ledger_open(t);
}

void lt_ledger_open(struct lt *t)
{
    int rc = 0;
    t->ledger = ledger_new(&t->loop, &t->opts, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(t->ledger);
}

static void lt__closed(void *data)
{
    *(bool *)data = true;
}

void lt_ledger_close(struct lt *t)
{
    bool closed = false;
    ledger_close(t->ledger, lt__closed, &closed);
    while (!closed)
        uv_run(&t->loop, UV_RUN_ONCE);
    t->ledger = NULL;
}

void lt_done(struct lt *t)
{
    if (t->ledger != NULL)
        lt_ledger_close(t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    test_tmpdir_remove(t->dir);
    free(t->dir);
    t->dir = NULL;
}

void lt_cb(int rc, const struct ledger_result *r, void *data)
{
    struct lt_res *res = data;
    res->done = true;
    res->rc = rc;
    res->r = *r;
    snprintf(res->field, sizeof(res->field), "%s", r->field != NULL ? r->field : "");
    snprintf(res->reason, sizeof(res->reason), "%s", r->reason != NULL ? r->reason : "");
    res->history_count = 0;
    for (size_t i = 0; i < r->history_count && i < 100; i++)
        res->history[res->history_count++] = r->history[i];
    res->usage_count = 0;
    for (size_t i = 0; i < r->usage_count && i < 64; i++)
        res->usage[res->usage_count++] = r->usage[i];
    res->r.field = res->r.reason = NULL;
    res->r.history = NULL;
    res->r.usage = NULL;
}

void lt_wait(struct lt *t, struct lt_res *res)
{
    while (!res->done)
        uv_run(&t->loop, UV_RUN_ONCE);
}

/* Submit (rc), then wait for the callback and return its rc. */
static int lt__finish(struct lt *t, int rc, struct lt_res *res)
{
    if (rc < 0)
        return rc;
    lt_wait(t, res);
    return res->rc;
}

int lt_open(struct lt *t, const char *account, uint32_t flags, int64_t bonus, struct lt_res *res)
{
    memset(res, 0, sizeof(*res));
    return lt__finish(t, ledger_account_open(t->ledger, account, flags, bonus, lt_cb, res), res);
}

int lt_transfer(struct lt *t, const struct ledger_transfer *tr, struct lt_res *res)
{
    memset(res, 0, sizeof(*res));
    return lt__finish(t, ledger_transfer_create(t->ledger, tr, lt_cb, res), res);
}

int lt_plain(struct lt *t, const char *id, const char *debit, const char *credit, int64_t amount,
             uint32_t kind, struct lt_res *res)
{
    struct ledger_transfer tr = {
        .id = id, .debit = debit, .credit = credit, .amount = amount, .kind = kind};
    return lt_transfer(t, &tr, res);
}

int lt_reserve(struct lt *t, const char *id, const char *debit, const char *credit, int64_t amount,
               int64_t timeout_ms, struct lt_res *res)
{
    struct ledger_transfer tr = {.id = id,
                                 .debit = debit,
                                 .credit = credit,
                                 .amount = amount,
                                 .kind = LEDGER_KIND_GENERATION,
                                 .flags = LEDGER_TRANSFER_PENDING,
                                 .timeout_ms = timeout_ms,
                                 .tag = "model-a"};
    return lt_transfer(t, &tr, res);
}

int lt_post(struct lt *t, const char *id, const char *pending, int64_t amount, struct lt_res *res)
{
    memset(res, 0, sizeof(*res));
    return lt__finish(t, ledger_transfer_post(t->ledger, id, pending, amount, lt_cb, res), res);
}

int lt_void(struct lt *t, const char *id, const char *pending, struct lt_res *res)
{
    memset(res, 0, sizeof(*res));
    return lt__finish(t, ledger_transfer_void(t->ledger, id, pending, lt_cb, res), res);
}

int lt_reverse(struct lt *t, const char *id, const char *orig, int64_t amount, uint32_t kind,
               struct lt_res *res)
{
    memset(res, 0, sizeof(*res));
    return lt__finish(
        t, ledger_transfer_reverse(t->ledger, id, orig, amount, kind, "test", lt_cb, res), res);
}

int lt_expire(struct lt *t, struct lt_res *res)
{
    memset(res, 0, sizeof(*res));
    return lt__finish(t, ledger_expire_run(t->ledger, lt_cb, res), res);
}

struct ledger_balance lt_balance(struct lt *t, const char *account)
{
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt__finish(t, ledger_balance_get(t->ledger, account, lt_cb, &res), &res), 0);
    return res.r.balance;
}

int lt_verify(const char *path, char **out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    int rc = ledger_verify_file(path, f);
    fclose(f);
    if (out != NULL)
        *out = buf;
    else
        free(buf);
    return rc;
}

int lt_verify_ledger(const struct lt *t, char **out)
{
    struct store_options so = {
        .backend = t->opts.backend, .path = t->opts.path, .url = t->opts.url};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    int rc = ledger_verify_store(&so, NULL, f);
    fclose(f);
    if (out != NULL)
        *out = buf;
    else
        free(buf);
    return rc;
}

bool lt_pipe_read(int fd, char **buf, size_t *len, int wait_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0)
        return true;
    char chunk[65536];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0)
        return n < 0 && errno == EINTR;
    char *grown = realloc(*buf, *len + (size_t)n + 1);
    assert_non_null(grown);
    memcpy(grown + *len, chunk, (size_t)n);
    *len += (size_t)n;
    grown[*len] = '\0';
    *buf = grown;
    return true;
}

int lt_group_setup(void **state)
{
    (void)state;
    lt_backend = STORE_BACKEND_SQLITE;
    log_configure(LOG_WARN, false, NULL);
    return 0;
}

int lt_group_setup_pg(void **state)
{
    lt_group_setup(state);
    lt_backend = STORE_BACKEND_POSTGRES;
    return 0;
}

int lt_group_teardown(void **state)
{
    (void)state;
    lt_backend = STORE_BACKEND_SQLITE;
    log_configure(LOG_INFO, false, NULL);
    return 0;
}

struct lt_store_job {
    struct store_job job;
    int (*fn)(struct store_txn *txn, void *data);
    void *data;
    int rc;
    bool done;
};

static int lt__store_run(struct store_txn *txn, struct store_job *job)
{
    struct lt_store_job *j = container_of(job, struct lt_store_job, job);
    return j->fn(txn, j->data);
}

static void lt__store_done(struct store_job *job, int rc)
{
    struct lt_store_job *j = container_of(job, struct lt_store_job, job);
    j->rc = rc;
    j->done = true;
}

int lt_store_run(struct lt *t, int (*fn)(struct store_txn *txn, void *data), void *data)
{
    struct lt_store_job j = {
        .job = {.run = lt__store_run, .done = lt__store_done}, .fn = fn, .data = data};
    assert_int_equal(store_submit(ledger_store(t->ledger), &j.job), 0);
    while (!j.done)
        uv_run(&t->loop, UV_RUN_ONCE);
    return j.rc;
}
