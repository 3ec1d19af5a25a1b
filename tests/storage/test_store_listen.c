/* store_listen (storage/store.h): a change to the API keys, the wallet
 * links, the chats' personas or the feature, revenue and contest rows of
 * the state table, committed by any writer of a PostgreSQL ledger, is
 * heard at its commit on a connection of the listener's own; a lease's
 * renewal is not announced; a key's spend is not
 * announced; a listener whose connection the server ended connects again
 * and says "*". SQLite, one daemon alone on its file, has nothing to hear. */
#include "tests/test.h"

#include "base/error.h"
#include "base/log.h"
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define HEARD_MAX 16

static FILE *listen_log; /* the expected warnings go here, not to the terminal */

static int listen_group_setup(void **state)
{
    (void)state;
    listen_log = fopen("/dev/null", "w");
    log_configure(LOG_WARN, false, listen_log);
    return 0;
}

static int listen_group_teardown(void **state)
{
    (void)state;
    log_configure(LOG_INFO, false, NULL);
    if (listen_log != NULL)
        fclose(listen_log);
    listen_log = NULL;
    return 0;
}

struct heard {
    char what[HEARD_MAX][32];
    int n;
};

static void heard_cb(const char *what, void *data)
{
    struct heard *h = data;
    if (h->n < HEARD_MAX)
        snprintf(h->what[h->n], sizeof(h->what[0]), "%s", what);
    h->n++;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until done() holds or 5 s passed (the listener's handles
 * hold no loop open: a timer does, meanwhile). */
static bool run_until_ms(uv_loop_t *loop, bool (*done)(void *arg), void *arg, uint64_t ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 5, 5);
    uint64_t until = uv_now(loop) + ms;
    bool ok = done(arg);
    while (!ok && uv_now(loop) < until) {
        uv_run(loop, UV_RUN_ONCE);
        ok = done(arg);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool run_until(uv_loop_t *loop, bool (*done)(void *arg), void *arg)
{
    return run_until_ms(loop, done, arg, 5000);
}

struct listening {
    const char *url;
    int64_t want;
};

/* The listener's session has run its LISTEN and waits. */
static bool listening_done(void *arg)
{
    struct listening *l = arg;
    return test_pg_int(l->url, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                               "current_database() AND query = 'LISTEN hb_changed' AND "
                               "state = 'idle'") == l->want;
}

struct heard_wait {
    struct heard *h;
    int n;
};

static bool heard_done(void *arg)
{
    struct heard_wait *w = arg;
    return w->h->n >= w->n;
}

static void wait_heard(uv_loop_t *loop, struct heard *h, int n)
{
    struct heard_wait w = {h, n};
    assert_true(run_until(loop, heard_done, &w));
}

static void key_of(struct store_apikey *k, const char *id)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->id, sizeof(k->id), "%s", id);
    snprintf(k->owner, sizeof(k->owner), "console:owner");
    snprintf(k->creator, sizeof(k->creator), "console:owner");
    snprintf(k->name, sizeof(k->name), "test");
    snprintf(k->prefix, sizeof(k->prefix), "hb_test");
    memset(k->hash, id[1], sizeof(k->hash));
    k->created_at = 1000;
}

/* One write transaction on the store (not started): committed. */
static void write_key(struct store *s, const char *id, int what)
{
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    struct store_apikey k;
    key_of(&k, id);
    if (what == 0)
        assert_int_equal(store_txn_apikey_insert(txn, &k), 0);
    else if (what == 1)
        assert_int_equal(store_txn_apikey_spend(txn, id, 5, 1, 2000), 0);
    else
        assert_int_equal(store_txn_apikey_revoke(txn, id, 3000), 0);
    assert_int_equal(store_txn_end(txn, true), 0);
}

static void write_link(struct store *s, const char *identity)
{
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    assert_int_equal(store_txn_link_put(txn, identity, "hedera:0.0.7", 1000), 0);
    assert_int_equal(store_txn_end(txn, true), 0);
}

static void write_state(struct store *s, const char *ns, const char *value)
{
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    assert_int_equal(store_txn_state_put(txn, ns, "telegram:-100", value, 1000), 0);
    assert_int_equal(store_txn_end(txn, true), 0);
}

static void write_chat(struct store *s)
{
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    assert_int_equal(
        store_txn_chat_put(txn, "telegram:-100", STORE_CHAT_PERSONA, "pirate", 0, 1000), 0);
    assert_int_equal(store_txn_end(txn, true), 0);
}

/* A fresh database, a store on it listening on a loop of its own, until
 * its LISTEN runs. */
struct lfx {
    char url[512];
    struct store *mine;
    uv_loop_t loop;
    struct heard h;
    struct store_listener *l;
    struct listening on;
};

static void lfx_init(struct lfx *x)
{
    memset(x, 0, sizeof(*x));
    assert_int_equal(test_pg_db(x->url, sizeof(x->url)), 0);
    struct store_options opts = {.backend = STORE_BACKEND_POSTGRES, .url = x->url};
    int rc = 0;
    x->mine = store_new(&opts, &rc);
    assert_non_null(x->mine);
    uv_loop_init(&x->loop);
    x->l = store_listen(x->mine, &x->loop, heard_cb, &x->h, &rc);
    assert_non_null(x->l);
    assert_int_equal(rc, 0);
    x->on = (struct listening){x->url, 1};
    assert_true(run_until(&x->loop, listening_done, &x->on));
}

static void lfx_close(struct lfx *x)
{
    store_listener_close(x->l);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    store_free(x->mine);
}

static void test_listen_hears_other_writers(void **state)
{
    (void)state;
    struct lfx x;
    lfx_init(&x);
    /* Two daemons' stores: one listens, the other writes. */
    struct store_options opts = {.backend = STORE_BACKEND_POSTGRES, .url = x.url};
    int rc = 0;
    struct store *other = store_new(&opts, &rc);
    assert_non_null(other);
    assert_int_equal(x.h.n, 0); /* the first connection says nothing */

    write_key(other, "k1", 0);
    wait_heard(&x.loop, &x.h, 1);
    assert_string_equal(x.h.what[0], "apikeys");
    /* A spend is not announced: the link written after it is the next
     * thing heard (notifications come in commit order). */
    write_key(other, "k1", 1);
    write_link(other, "discord:7");
    wait_heard(&x.loop, &x.h, 2);
    assert_string_equal(x.h.what[1], "wallet_links");
    /* A group's switches and overrides, set and cleared, a chat's persona
     * and a contest; no other namespace of the state table (a lease's
     * renewal, every beat). */
    write_state(other, "lease", "run-b 99");
    write_state(other, "feature", "off");
    write_state(other, "revenue", "system:treasury 10000bp");
    write_state(other, "feature", NULL);
    write_chat(other);
    write_state(other, "contest", "1 2 3");
    wait_heard(&x.loop, &x.h, 7);
    assert_string_equal(x.h.what[2], "state:feature");
    assert_string_equal(x.h.what[3], "state:revenue");
    assert_string_equal(x.h.what[4], "state:feature");
    assert_string_equal(x.h.what[5], "chat_settings");
    assert_string_equal(x.h.what[6], "state:contest");
    x.h.n = 2; /* the rest as before */
    /* This daemon's own commits are heard too. */
    write_key(x.mine, "k1", 2);
    wait_heard(&x.loop, &x.h, 3);
    assert_string_equal(x.h.what[2], "apikeys");

    /* The server ends the listener's session: it connects again (after
     * its backoff) and says "*", since what changed meanwhile was not
     * heard; then it hears again. */
    assert_int_equal(test_pg_exec(x.url,
                                  "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND query = "
                                  "'LISTEN hb_changed'",
                                  false),
                     0);
    wait_heard(&x.loop, &x.h, 4);
    assert_string_equal(x.h.what[3], "*");
    assert_true(run_until(&x.loop, listening_done, &x.on));
    write_key(other, "k2", 0);
    wait_heard(&x.loop, &x.h, 5);
    assert_string_equal(x.h.what[4], "apikeys");
    assert_int_equal(x.h.n, 5);

    lfx_close(&x);
    /* Closed: its session is gone. */
    x.on.want = 0;
    assert_true(listening_done(&x.on));
    store_free(other);
}

struct lost_wait {
    char path[512];
    int want;
};

/* The log at path into text (cap bytes): how many lost connections it
 * tells of. */
static int lost_read(const char *path, char *text, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t len = f != NULL ? fread(text, 1, cap - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    text[len] = '\0';
    int lost = 0;
    for (const char *p = text; (p = strstr(p, "store.listen_lost")) != NULL; p++)
        lost++;
    return lost;
}

static bool lost_done(void *arg)
{
    struct lost_wait *w = arg;
    char text[8192];
    fflush(NULL);
    return lost_read(w->path, text, sizeof(text)) >= w->want;
}

/* A server that is not there: the listener neither blocks the loop nor
 * gives up; it tries again with backoff, and closes cleanly meanwhile. */
static void test_listen_server_gone(void **state)
{
    (void)state;
    struct lfx x;
    lfx_init(&x);
    /* The test's database (the last of its connection string) dropped
     * from the server's own. */
    const char *db = strstr(x.url, "dbname='");
    char name[64], drop[128];
    assert_non_null(db);
    assert_int_equal(sscanf(db, "dbname='%63[^']'", name), 1);
    snprintf(drop, sizeof(drop), "DROP DATABASE %s WITH (FORCE)", name);
    assert_int_equal(test_pg_exec(getenv("HAIBOT_TEST_PG_URL"), drop, false), 0);
    /* Lost, and every attempt since refused: attempts made again and
     * again, each after a backoff twice the last (100 ms, then 200, 400,
     * 800...), each logged without the connection string, and nothing
     * heard meanwhile. The four take 1.5 s of backoff; a loaded machine
     * is given up to 20 s for them. */
    struct lost_wait lw = {.want = 4};
    char *dir = test_tmpdir_new();
    assert_non_null(dir);
    snprintf(lw.path, sizeof(lw.path), "%s/listen.log", dir);
    FILE *log = fopen(lw.path, "w");
    assert_non_null(log);
    log_configure(LOG_WARN, false, log);
    run_until_ms(&x.loop, lost_done, &lw, 20000);
    log_configure(LOG_WARN, false, listen_log);
    fclose(log);
    assert_int_equal(x.h.n, 0);
    char text[8192];
    int lost = lost_read(lw.path, text, sizeof(text));
    test_tmpdir_remove(dir);
    free(dir);
    assert_true(lost >= 4);
    assert_non_null(strstr(text, "retry_ms=100\n"));
    assert_non_null(strstr(text, "retry_ms=800"));
    assert_non_null(strstr(text, "during=connect"));
    assert_null(strstr(text, "dbname="));
    lfx_close(&x);
}

static void test_listen_sqlite_has_nothing(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/s.db", dir);
    struct store_options opts = {.path = path};
    int rc = 0;
    struct store *s = store_new(&opts, &rc);
    assert_non_null(s);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct heard h;
    assert_null(store_listen(s, &loop, heard_cb, &h, &rc));
    assert_int_equal(rc, UV_ENOTSUP);
    assert_int_equal(uv_loop_close(&loop), 0);
    store_free(s);
    test_tmpdir_remove(dir);
    free(dir);
}

static const struct CMUnitTest listen_tests[] = {
    cmocka_unit_test(test_listen_sqlite_has_nothing),
    cmocka_unit_test(test_listen_hears_other_writers),
    cmocka_unit_test(test_listen_server_gone),
};

TEST_GROUP_DEFINE(store_listen_pg, listen_tests, listen_group_setup, listen_group_teardown)
