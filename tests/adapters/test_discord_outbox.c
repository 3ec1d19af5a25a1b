/* The Discord outbox on a ledger several daemons share: each daemon sends
 * the notice rows it wrote, and takes over those of a daemon that is gone
 * (its run's lease ran out), never those of one that lives. Two adapters
 * on one ledger stand for two daemons, each with a cluster of its own
 * (core/cluster.h, on SQLite here: the rules are the store's, whichever
 * backend), posting to one fake Discord REST. */
#include "tests/test.h"

#include "adapters/discord/discord.h"
#include "base/error.h"
#include "core/cluster.h"
#include "core/core.h"
#include "core/notify.h"
#include "core/outbox.h"
#include "net/http.h"
#include "storage/store.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/discord_rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOB_GUARD_MS 15000
#define DOB_LEASE_MS 3000

struct dob {
    struct lt lt;
    struct http_client *http;
    struct fake_rest *rest;
    struct core core[2]; /* one per daemon: its cluster */
    struct adapter *dc[2];
    struct adapter *old[2]; /* closed: freed once the loop ran them out */
    size_t nold;
};

static void dob_dispatch(void *data, struct invocation *inv, const char *args)
{
    (void)data;
    (void)args;
    reply_finish(inv->reply);
    invocation_clear(inv);
}

static void dob_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static void dob_guard(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Run the loop until cond(arg) holds (cond NULL: for ms). */
static void dob_run(struct dob *t, bool (*cond)(void *arg), void *arg, uint64_t ms)
{
    uv_timer_t guard;
    bool fired = false;
    uv_timer_init(&t->lt.loop, &guard);
    guard.data = &fired;
    uv_timer_start(&guard, dob_guard, cond != NULL ? DOB_GUARD_MS : ms, 0);
    while ((cond == NULL || !cond(arg)) && !fired)
        uv_run(&t->lt.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&t->lt.loop, UV_RUN_NOWAIT);
    if (cond != NULL)
        assert_false(fired);
}

static void dob_init(struct dob *t)
{
    memset(t, 0, sizeof(*t));
    lt_init(&t->lt, true, true);
    assert_int_equal(http_client_new(&t->lt.loop, NULL, &t->http), 0);
    struct fake_rest_options ro = {.gateway_url = "ws://127.0.0.1:1"};
    t->rest = fake_rest_new(&t->lt.loop, &ro);
    assert_non_null(t->rest);
}

/* Daemon i: its cluster (run "run-a" or "run-b") and its adapter, trying
 * a failed notice again after backoff_ms; started (its gateway, and the
 * outbox's rows taken over) when start. One adapter at most is started in
 * a test, as in a daemon: each start makes a websocket context, and with
 * two in one process LeakSanitizer finds a TLS context left at exit. */
static void dob_daemon(struct dob *t, int i, uint64_t backoff_ms, bool start)
{
    struct store *store = ledger_store(t->lt.ledger);
    t->core[i].ledger = t->lt.ledger;
    t->core[i].cluster =
        cluster_new(&t->lt.loop, store, i == 0 ? "run-a" : "run-b", DOB_LEASE_MS, NULL, NULL, NULL);
    assert_non_null(t->core[i].cluster);
    struct discord_options o;
    memset(&o, 0, sizeof(o));
    o.token = "outbox-test-token.ZZZ-123456";
    o.application_id = "4242";
    o.api_base = fake_rest_api_base(t->rest);
    o.shard_last = -1;
    o.http = t->http;
    o.store = store;
    o.core = &t->core[i];
    o.notice_backoff_ms = backoff_ms;
    struct adapter_host host = {.dispatch = dob_dispatch, .ended = dob_ended, .data = NULL};
    t->dc[i] = discord_new(&t->lt.loop, &o, &host);
    assert_non_null(t->dc[i]);
    if (start)
        assert_int_equal(t->dc[i]->ops->start(t->dc[i]), 0);
}

static void dob_count(void *data)
{
    (*(int *)data)++;
}

static bool dob_positive(void *arg)
{
    return *(int *)arg > 0;
}

/* Daemon i goes: its adapter closes (a notice still on its way keeps its
 * row) and its heartbeat stops, so its run's lease runs out a lease later. */
static void dob_daemon_gone(struct dob *t, int i)
{
    int closed = 0;
    t->dc[i]->ops->close(t->dc[i], dob_count, &closed);
    dob_run(t, dob_positive, &closed, 0);
    t->old[t->nold++] = t->dc[i];
    t->dc[i] = NULL;
    cluster_free(t->core[i].cluster);
    t->core[i].cluster = NULL;
}

static void dob_done(struct dob *t)
{
    for (int i = 0; i < 2; i++) {
        if (t->dc[i] != NULL)
            dob_daemon_gone(t, i);
    }
    int closed = 0;
    fake_rest_close(t->rest, dob_count, &closed);
    http_client_close(t->http, dob_count, &closed);
    while (closed < 2)
        uv_run(&t->lt.loop, UV_RUN_ONCE);
    lt_ledger_close(&t->lt);
    uv_run(&t->lt.loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < t->nold; i++)
        t->old[i]->ops->free(t->old[i]);
    fake_rest_free(t->rest);
    lt_done(&t->lt);
}

static void dob_notify(struct dob *t, int i, const char *text)
{
    struct notify_target to;
    assert_int_equal(notify_target_from_account(&to, "discord:555"), 0);
    snprintf(to.channel_id, sizeof(to.channel_id), "88");
    struct reply_msg m = {.stage = REPLY_FINAL, .text = text};
    assert_int_equal(t->dc[i]->ops->notify(t->dc[i], &to, &m), 0);
}

/* Posts of text to channel 88 that Discord took (status 200), from the
 * fake's request number since on. */
static size_t dob_posted(struct dob *t, const char *text, size_t since)
{
    size_t n = 0;
    for (size_t i = since; i < fake_rest_count(t->rest); i++) {
        struct fake_rest_request *q = fake_rest_get(t->rest, i);
        if (q != NULL && q->status == 200 && strstr(q->target, "/channels/88/messages") != NULL &&
            strstr(q->json, text) != NULL)
            n++;
        fake_rest_request_free(q);
    }
    return n;
}

struct dob_wait {
    struct dob *t;
    const char *text;
    size_t since, n;
};

static bool dob_posted_enough(void *arg)
{
    struct dob_wait *w = arg;
    return dob_posted(w->t, w->text, w->since) >= w->n;
}

static bool dob_tried(void *arg)
{
    struct dob *t = arg;
    return fake_rest_matching(t->rest, "POST", "/channels/88/messages") > 0;
}

/* Rows of the outbox still to send, whichever daemon wrote them. */
static int dob_rows(struct dob *t)
{
    return (int)test_sql_int(t->lt.path, "SELECT COUNT(*) FROM outbox WHERE failed_at = 0");
}

/* A daemon that starts while another lives leaves that one's rows alone:
 * the other is still sending them (here: trying a refused post again
 * after its back-off). Before, the starting daemon sent every row of the
 * outbox, and the member got the notice twice. */
static void test_live_run_keeps_its_rows(void **state)
{
    (void)state;
    struct dob t;
    dob_init(&t);
    dob_daemon(&t, 0, 1500, false);
    fake_rest_script_status(t.rest, "/channels/88/", 500);
    dob_notify(&t, 0, "From the first daemon.");
    dob_run(&t, dob_tried, &t, 0); /* refused: tried again in 1.5 s */
    assert_int_equal(dob_rows(&t), 1);

    dob_daemon(&t, 1, 1500, true);
    struct dob_wait w = {.t = &t, .text = "From the first daemon.", .n = 1};
    dob_run(&t, dob_posted_enough, &w, 0);
    dob_run(&t, NULL, NULL, 2000); /* a second post would come by now */
    assert_int_equal(dob_posted(&t, "From the first daemon.", 0), 1);
    assert_int_equal(dob_rows(&t), 0);
    dob_done(&t);
}

/* The rows of a daemon that is gone (a post in flight when it stopped)
 * are sent once by a daemon that lives, and only once the gone one's run
 * lease ran out: until then it may still be sending them. */
static void test_gone_run_rows_sent_once(void **state)
{
    (void)state;
    struct dob t;
    dob_init(&t);
    dob_daemon(&t, 0, 1000, false);
    fake_rest_delay(t.rest, "/channels/88/", 60000);
    dob_notify(&t, 0, "Kept when it stopped.");
    dob_run(&t, dob_tried, &t, 0);
    dob_daemon_gone(&t, 0); /* the post never answered: its row stays */
    assert_int_equal(dob_rows(&t), 1);
    fake_rest_delay(t.rest, "/channels/88/", 0);
    size_t since = fake_rest_count(t.rest); /* the post in flight is counted */

    dob_daemon(&t, 1, 1000, true);
    dob_run(&t, NULL, NULL, 1000); /* the first run's lease has 2 s to go */
    assert_int_equal(dob_posted(&t, "Kept when it stopped.", since), 0);
    assert_int_equal(dob_rows(&t), 1);
    struct dob_wait w = {.t = &t, .text = "Kept when it stopped.", .since = since, .n = 1};
    dob_run(&t, dob_posted_enough, &w, 0);
    dob_run(&t, NULL, NULL, 1500);
    assert_int_equal(dob_posted(&t, "Kept when it stopped.", since), 1);
    assert_int_equal(dob_rows(&t), 0);
    dob_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_live_run_keeps_its_rows),
    cmocka_unit_test(test_gone_run_rows_sent_once),
};

TEST_GROUP_DEFINE(discord_outbox, tests, NULL, NULL)
