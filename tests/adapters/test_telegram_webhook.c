/* Telegram in webhook mode: updates come in at POST /webhooks/telegram on
 * the daemon's server (bot/webhooks.c) instead of getUpdates. The fake Bot
 * API takes the replies and records setWebhook; the test posts updates
 * with the HTTP client, with the right secret token, a wrong one and none. */
#include "tests/test.h"

#include "adapters/telegram/telegram.h"
#include "bot/config.h"
#include "net/http.h"
#include "net/server.h"
#include "bot/webhooks.h"
#include "core/cluster.h"
#include "core/core.h"
#include "core/notify.h"
#include "core/state.h"
#include "base/clock.h"
#include "base/error.h"
#include "tests/bot/tcall.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/telegram_api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TW_TOKEN "123456:TEST-token-abcdef"
#define TW_SECRET "hook-secret_0123456789"
#define TW_GUARD_MS 10000

struct tw {
    struct lt lt;
    struct http_client *http;
    struct tgapi *api;
    struct core core;
    struct server *srv;
    struct webhooks *wh;
    struct adapter *tg;
    struct adapter *no_secret; /* in webhook mode without a secret */
    bool tg_closed;            /* tg closed already (its daemon gone) */
    char url[96];
    size_t dispatched;
    char last_args[256];
};

static void tw_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct tw *t = data;
    t->dispatched++;
    snprintf(t->last_args, sizeof(t->last_args), "%s", args != NULL ? args : "");
    reply_text(inv->reply, false, "ok %s", args != NULL ? args : "");
    reply_finish(inv->reply);
}

static void tw_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static void tw_closed(void *data)
{
    int *n = data;
    (*n)++;
}

static void tw_guard(uv_timer_t *timer)
{
    bool *fired = timer->data;
    *fired = true;
}

/* Run the loop until method has been called n times at the fake. */
static void tw_wait_count(struct tw *t, const char *method, size_t n)
{
    uv_timer_t guard;
    bool fired = false;
    uv_timer_init(&t->lt.loop, &guard);
    guard.data = &fired;
    uv_timer_start(&guard, tw_guard, TW_GUARD_MS, 0);
    while (tgapi_count(t->api, method) < n && !fired)
        uv_run(&t->lt.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&t->lt.loop, UV_RUN_NOWAIT);
    assert_false(fired);
}

/* A daemon's core on t's ledger; with a cluster as run when run is not
 * NULL (a daemon of a shared ledger). */
static void tw_core(struct tw *t, struct core *core, const char *run)
{
    core->bot_name = "HAI Bot";
    core->ledger = t->lt.ledger;
    if (run != NULL) {
        core->cluster =
            cluster_new(&t->lt.loop, ledger_store(t->lt.ledger), run, 3000, NULL, NULL, NULL);
        assert_non_null(core->cluster);
    }
}

static struct telegram_options tw_options(struct tw *t, const char *webhook_url)
{
    struct telegram_options o = {.token = TW_TOKEN,
                                 .api_base = tgapi_base(t->api),
                                 .chat_interval_ms = 20,
                                 .group_interval_ms = 30,
                                 .global_per_s = 1000,
                                 .backoff_min_ms = 20,
                                 .backoff_max_ms = 100,
                                 .webhook = 1,
                                 .webhook_url = webhook_url,
                                 .webhook_secret = TW_SECRET};
    return o;
}

/* shared: a daemon of a shared ledger (a cluster set up). */
static void tw_open(struct tw *t, const char *webhook_url, bool shared)
{
    memset(t, 0, sizeof(*t));
    lt_init(&t->lt, true, true);
    assert_int_equal(http_client_new(&t->lt.loop, NULL, &t->http), 0);
    t->api = tgapi_new(&t->lt.loop, TW_TOKEN);
    assert_non_null(t->api);
    tw_core(t, &t->core, shared ? "run-w" : NULL);
    struct telegram_options o = tw_options(t, webhook_url);
    struct adapter_host host = {.dispatch = tw_dispatch, .ended = tw_ended, .data = t};
    o.webhook_secret = "";
    t->no_secret = telegram_new(&t->lt.loop, t->http, &t->core, &o, &host);
    assert_non_null(t->no_secret);
    o.webhook_secret = TW_SECRET;
    t->tg = telegram_new(&t->lt.loop, t->http, &t->core, &o, &host);
    assert_non_null(t->tg);
    struct server_options so = {.max_body = 8192};
    t->srv = server_new(&t->lt.loop, &so);
    assert_non_null(t->srv);
    snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d/webhooks/telegram", server_port(t->srv));
    t->wh = webhooks_new(t->srv);
    assert_non_null(t->wh);
    assert_int_equal(webhooks_adapter_add(t->wh, t->no_secret), HB_EINVAL);
    assert_int_equal(webhooks_adapter_add(t->wh, t->tg), 0);
    assert_int_equal(webhooks_adapter_add(t->wh, t->tg), HB_EEXISTS);
    assert_int_equal(t->tg->ops->start(t->tg), 0);
}

static void tw_close(struct tw *t)
{
    int closed = 0;
    webhooks_stop(t->wh);
    server_stop(t->srv);
    t->no_secret->ops->close(t->no_secret, tw_closed, &closed);
    int want = 1;
    if (!t->tg_closed) {
        t->tg->ops->close(t->tg, tw_closed, &closed);
        want++;
    }
    while (closed < want)
        uv_run(&t->lt.loop, UV_RUN_ONCE);
    cluster_free(t->core.cluster);
    t->core.cluster = NULL;
    http_client_close(t->http, tw_closed, &closed);
    tgapi_close(t->api, tw_closed, &closed);
    while (closed < want + 2)
        uv_run(&t->lt.loop, UV_RUN_ONCE);
    uv_run(&t->lt.loop, UV_RUN_NOWAIT);
    server_free(t->srv);
    webhooks_free(t->wh);
    lt_done(&t->lt); /* asserts uv_loop_close == 0 */
}

static void tw_update(char *out, size_t cap, int64_t id, int64_t user, const char *text)
{
    snprintf(out, cap,
             "{\"update_id\":%" PRId64 ",\"message\":{\"message_id\":7,\"date\":1700000000,"
             "\"chat\":{\"id\":%" PRId64 ",\"type\":\"private\",\"first_name\":\"Ann\"},"
             "\"from\":{\"id\":%" PRId64 ",\"is_bot\":false,\"first_name\":\"Ann\"},"
             "\"text\":\"%s\"}}",
             id, user, user, text);
}

static void tw_post(struct tw *t, const char *secret, const char *body, struct tcall *out)
{
    const char *with[] = {"X-Telegram-Bot-Api-Secret-Token", secret, "Content-Type",
                          "application/json", NULL};
    const char *bare[] = {"Content-Type", "application/json", NULL};
    tcall_do(&t->lt.loop, t->http, "POST", t->url, secret != NULL ? with : bare, body, strlen(body),
             out);
}

/* setWebhook with the URL and the secret at start; an update through the
 * webhook reaches its reply; a repeat is answered 200 and not dispatched
 * again; nothing ever polls. */
static void test_webhook_update_to_reply(void **state)
{
    (void)state;
    struct tw t;
    tw_open(&t, "https://bot.example.org/webhooks/telegram", false);
    tw_wait_count(&t, "setWebhook", 1);
    const struct tgapi_call *c = NULL;
    for (size_t i = 0; i < tgapi_ncalls(t.api); i++) {
        if (strcmp(tgapi_call_at(t.api, i)->method, "setWebhook") == 0)
            c = tgapi_call_at(t.api, i);
    }
    assert_non_null(c);
    assert_non_null(strstr(c->body, "\"url\":\"https://bot.example.org/webhooks/telegram\""));
    assert_non_null(strstr(c->body, "\"secret_token\":\"" TW_SECRET "\""));
    /* Updates in order: one connection (Telegram's default, 40, lets one
     * overtake another, and the duplicate check would drop it). */
    assert_non_null(strstr(c->body, "\"max_connections\":1"));
    char body[1024];
    tw_update(body, sizeof(body), 500, 77, "/help");
    struct tcall r = {0};
    tw_post(&t, TW_SECRET, body, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(t.dispatched, 1); /* handed over before the 200 */
    tcall_clear(&r);
    tw_wait_count(&t, "sendMessage", 1);
    for (size_t i = 0; i < tgapi_ncalls(t.api); i++) {
        c = tgapi_call_at(t.api, i);
        if (strcmp(c->method, "sendMessage") == 0)
            assert_non_null(strstr(c->body, "\"chat_id\":77"));
    }
    /* Telegram delivers again when unsure: answered, not dispatched twice. */
    tw_post(&t, TW_SECRET, body, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(t.dispatched, 1);
    tcall_clear(&r);
    /* Not an update at all. */
    tw_post(&t, TW_SECRET, "{\"nope\":1}", &r);
    assert_int_equal(r.status, 400);
    tcall_clear(&r);
    assert_int_equal(tgapi_count(t.api, "getUpdates"), 0);
    tw_close(&t);
}

/* Telegram hears 200 only once the update's reply is safe: here the Bot
 * API keeps failing the send, so the reply's outbox row must be durable
 * before the answer (a 200 first would let a kill lose the reply). */
static void tw_reply_safe(bool shared)
{
    struct tw t;
    tw_open(&t, NULL, shared);
    tgapi_fail(t.api, "sendMessage", 1000, 502, "{\"ok\":false,\"error_code\":502}");
    char body[1024];
    tw_update(body, sizeof(body), 600, 78, "/help");
    struct tcall r = {0};
    tw_post(&t, TW_SECRET, body, &r);
    assert_int_equal(r.status, 200);
    tcall_clear(&r);
    assert_int_equal(test_sql_int(t.lt.path, "SELECT COUNT(*) FROM outbox WHERE chat = 78"), 1);
    assert_int_equal(test_sql_int(t.lt.path, "SELECT value FROM state WHERE ns = 'telegram' AND "
                                             "key = 'offset'"),
                     601);
    tw_close(&t);
}

static void test_webhook_answered_once_reply_is_safe(void **state)
{
    (void)state;
    tw_reply_safe(false);
}

/* The same on a shared ledger, where webhook mode takes no poller's lease:
 * its daemon still confirms its updates and keeps their replies. (A
 * standby in polling mode does neither: test_telegram_failover.c.) */
static void test_webhook_reply_safe_on_shared_ledger(void **state)
{
    (void)state;
    tw_reply_safe(true);
}

/* A wrong, missing or prefix-only secret is 401 and reaches nothing.
 * Without a URL the adapter does not call setWebhook (the operator does). */
static void test_webhook_wrong_secret(void **state)
{
    (void)state;
    struct tw t;
    tw_open(&t, NULL, false);
    tw_wait_count(&t, "getMe", 1);
    char body[1024];
    tw_update(body, sizeof(body), 600, 78, "/help");
    struct tcall r = {0};
    tw_post(&t, "hook-secret_0123456788", body, &r);
    assert_int_equal(r.status, 401);
    tcall_clear(&r);
    tw_post(&t, "hook-secret", body, &r);
    assert_int_equal(r.status, 401);
    tcall_clear(&r);
    tw_post(&t, NULL, body, &r);
    assert_int_equal(r.status, 401);
    tcall_clear(&r);
    assert_int_equal(t.dispatched, 0);
    /* The right one still works after the refusals. */
    tw_post(&t, TW_SECRET, body, &r);
    assert_int_equal(r.status, 200);
    tcall_clear(&r);
    assert_int_equal(t.dispatched, 1);
    tw_wait_count(&t, "sendMessage", 1);
    assert_int_equal(tgapi_count(t.api, "setWebhook"), 0);
    assert_int_equal(tgapi_count(t.api, "getUpdates"), 0);
    tw_close(&t);
}

/* A message update's body with the chat and sender ids as given. */
static void tw_message(char *out, size_t cap, const char *chat, const char *from)
{
    snprintf(out, cap,
             "\"message\":{\"message_id\":7,\"date\":1700000000,\"chat\":{\"id\":%s,"
             "\"type\":\"private\"},\"from\":{\"id\":%s,\"is_bot\":false,"
             "\"first_name\":\"Ann\"},\"text\":\"/help\"}",
             chat, from);
}

/* Numbers from outside that no integer holds: update_id 1e300 (from
 * tests/corpus/telegram/), an update_id near 2^63, ids of 1e300. Each is a
 * malformed update or one nobody is charged for; none moves the offset, so
 * the next ordinary update is dispatched, not taken for a repeat. */
static void test_webhook_numbers_out_of_range(void **state)
{
    (void)state;
    struct tw t;
    tw_open(&t, NULL, false);
    tw_wait_count(&t, "getMe", 1);
    struct tcall r = {0};
    char *corpus = test_file_read("tests/corpus/telegram/telegram-update-id-1e300.json", NULL);
    assert_non_null(corpus);
    tw_post(&t, TW_SECRET, corpus, &r);
    free(corpus);
    assert_int_equal(r.status, 400);
    tcall_clear(&r);
    char m[512], body[1024];
    tw_message(m, sizeof(m), "77", "77");
    snprintf(body, sizeof(body), "{\"update_id\":9223372036854775807,%s}", m);
    tw_post(&t, TW_SECRET, body, &r);
    assert_int_equal(r.status, 400);
    tcall_clear(&r);
    snprintf(body, sizeof(body), "{\"update_id\":-1e300,%s}", m);
    tw_post(&t, TW_SECRET, body, &r);
    assert_int_equal(r.status, 400);
    tcall_clear(&r);
    tw_message(m, sizeof(m), "1e300", "77");
    snprintf(body, sizeof(body), "{\"update_id\":700,%s}", m);
    tw_post(&t, TW_SECRET, body, &r);
    assert_int_equal(r.status, 400); /* no chat to answer */
    tcall_clear(&r);
    tw_message(m, sizeof(m), "77", "-1e300");
    snprintf(body, sizeof(body), "{\"update_id\":701,%s}", m);
    tw_post(&t, TW_SECRET, body, &r);
    assert_int_equal(r.status, 200); /* nobody to charge: skipped */
    tcall_clear(&r);
    assert_int_equal(t.dispatched, 0);
    tw_update(body, sizeof(body), 702, 77, "/help");
    tw_post(&t, TW_SECRET, body, &r);
    assert_int_equal(r.status, 200);
    tcall_clear(&r);
    assert_int_equal(t.dispatched, 1);
    tw_wait_count(&t, "sendMessage", 1);
    tw_close(&t);
}

/* ---- several daemons in webhook mode ----------------------------------- */

/* A second daemon of t's ledger in webhook mode (run "run-v"), reached by
 * no request: only what it sends of the outbox counts. Started. */
struct tw_other {
    struct core core;
    struct adapter *tg;
};

static void tw_other_open(struct tw *t, struct tw_other *o)
{
    memset(o, 0, sizeof(*o));
    tw_core(t, &o->core, "run-v");
    struct telegram_options opts = tw_options(t, NULL);
    struct adapter_host host = {.dispatch = tw_dispatch, .ended = tw_ended, .data = t};
    o->tg = telegram_new(&t->lt.loop, t->http, &o->core, &opts, &host);
    assert_non_null(o->tg);
    assert_int_equal(o->tg->ops->start(o->tg), 0);
}

static void tw_other_close(struct tw *t, struct tw_other *o)
{
    int closed = 0;
    o->tg->ops->close(o->tg, tw_closed, &closed);
    while (closed < 1)
        uv_run(&t->lt.loop, UV_RUN_ONCE);
    cluster_free(o->core.cluster);
    o->core.cluster = NULL;
}

/* sendMessage calls to chat the fake took (200). */
static size_t tw_sent(struct tw *t, int64_t chat)
{
    char needle[48];
    snprintf(needle, sizeof(needle), "\"chat_id\":%" PRId64, chat);
    size_t n = 0;
    for (size_t i = 0; i < tgapi_ncalls(t->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(t->api, i);
        if (strcmp(c->method, "sendMessage") == 0 && c->status == 200 &&
            strstr(c->body, needle) != NULL)
            n++;
    }
    return n;
}

#define TW_RETRY_3S                                                                                \
    "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry after 3\","       \
    "\"parameters\":{\"retry_after\":3}}"

/* t open on a shared ledger, with the reply to an update from chat told
 * to wait 3 s (429): answered 200 once its row is durable. */
static void tw_open_reply_waits(struct tw *t, int64_t update_id, int64_t chat)
{
    tw_open(t, NULL, true);
    tgapi_fail(t->api, "sendMessage", 1, 429, TW_RETRY_3S);
    char body[1024];
    tw_update(body, sizeof(body), update_id, chat, "/help");
    struct tcall r = {0};
    tw_post(t, TW_SECRET, body, &r);
    assert_int_equal(r.status, 200);
    tcall_clear(&r);
}

/* Several daemons behind one webhook URL: one that starts leaves the rows
 * of a daemon that lives alone. Here the first daemon's reply was told to
 * wait 3 s (429), so its row is written and it sends it after. Before,
 * the second daemon sent every row of the outbox at its start, this one
 * included, and the member got the reply twice. */
static void test_webhook_second_daemon_leaves_rows(void **state)
{
    (void)state;
    struct tw t;
    tw_open_reply_waits(&t, 800, 79);
    assert_int_equal(test_sql_int(t.lt.path, "SELECT COUNT(*) FROM outbox WHERE chat = 79"), 1);

    struct tw_other o;
    tw_other_open(&t, &o);
    test_run_for(&t.lt.loop, 4500); /* the first daemon's wait is over */
    assert_int_equal(tw_sent(&t, 79), 1);
    assert_int_equal(test_sql_int(t.lt.path, "SELECT COUNT(*) FROM outbox WHERE chat = 79"), 0);
    tw_other_close(&t, &o);
    tw_close(&t);
}

/* The rows of a daemon that is gone are sent by one that lives, once the
 * gone one's run lease ran out (until then it may still send them). */
static void test_webhook_gone_daemon_rows_sent(void **state)
{
    (void)state;
    struct tw t;
    tw_open_reply_waits(&t, 900, 81);
    /* The first daemon stops before its wait is over: the row stays. Its
     * heartbeat stops with it; its run's lease runs out 3 s later. */
    int closed = 0;
    webhooks_stop(t.wh);
    t.tg->ops->close(t.tg, tw_closed, &closed);
    while (closed < 1)
        uv_run(&t.lt.loop, UV_RUN_ONCE);
    t.tg_closed = true;
    cluster_free(t.core.cluster);
    t.core.cluster = NULL;
    assert_int_equal(test_sql_int(t.lt.path, "SELECT COUNT(*) FROM outbox WHERE chat = 81"), 1);

    struct tw_other o;
    tw_other_open(&t, &o);
    test_run_for(&t.lt.loop, 1000);
    assert_int_equal(tw_sent(&t, 81), 0); /* the first run's lease lasts */
    test_run_for(&t.lt.loop, 4000);
    assert_int_equal(tw_sent(&t, 81), 1);
    assert_int_equal(test_sql_int(t.lt.path, "SELECT COUNT(*) FROM outbox WHERE chat = 81"), 0);
    tw_other_close(&t, &o);
    tw_close(&t);
}

static void tw_noted(int rc, const char *value, void *data)
{
    (void)value;
    assert_int_equal(rc, 0);
    *(bool *)data = true;
}

/* A notice owed in the store (a payment's, a low balance's) that its
 * daemon could not hand to Telegram before it went is sent by a daemon in
 * webhook mode that lives, once it is a lease old, and once only. Before,
 * only a poller sent such notices: with every daemon in webhook mode they
 * waited for the next daemon to start. */
static void test_webhook_owed_notice_sent(void **state)
{
    (void)state;
    struct tw t;
    tw_open(&t, NULL, true);
    char value[512];
    assert_int_equal(notify_pending_text_value(value, sizeof(value), "telegram:83", "",
                                               "Your balance is low.", clock_real_ms() - 60000),
                     0);
    bool noted = false;
    assert_int_equal(state_put(ledger_store(t.lt.ledger), NOTIFY_NS_PENDING, "low.telegram:83",
                               value, tw_noted, &noted),
                     0);
    while (!noted)
        uv_run(&t.lt.loop, UV_RUN_ONCE);
    struct tw_other o;
    tw_other_open(&t, &o); /* a second daemon: the notice goes once */
    test_run_for(&t.lt.loop, 3000);
    assert_int_equal(tw_sent(&t, 83), 1);
    assert_int_equal(test_sql_int(t.lt.path, "SELECT COUNT(*) FROM state WHERE ns = "
                                             "'notice.payment'"),
                     0);
    tw_other_close(&t, &o);
    tw_close(&t);
}

/* Load text as a config file: its result, and whether a problem mentions needle. */
static int tw_config(const char *text, const char *needle)
{
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/bot.conf", dir);
    test_file_write(path, text, (size_t)-1);
    chmod(path, 0600);
    struct config *cfg = NULL;
    struct config_problems problems;
    config_problems_init(&problems);
    int rc = config_load(path, &cfg, &problems);
    bool found = needle == NULL;
    for (size_t i = 0; i < problems.count; i++) {
        if (needle != NULL && strstr(problems.items[i].message, needle) != NULL)
            found = true;
    }
    assert_true(found);
    config_problems_free(&problems);
    config_free(cfg);
    test_tmpdir_remove(dir);
    free(dir);
    return rc;
}

/* Webhook mode needs a usable secret and the server. */
static void test_webhook_config(void **state)
{
    (void)state;
    const char *base = "[telegram]\nenabled = true\ntoken = 1:x\nwebhook = true\n";
    char text[512];
    snprintf(text, sizeof(text), "%s", base);
    assert_int_equal(tw_config(text, "webhook_secret"), HB_ECONFIG);
    snprintf(text, sizeof(text), "%swebhook_secret = has space\n", base);
    assert_int_equal(tw_config(text, "webhook_secret"), HB_ECONFIG);
    snprintf(text, sizeof(text), "%swebhook_secret = " TW_SECRET "\n", base);
    assert_int_equal(tw_config(text, "[server] enabled"), HB_ECONFIG);
    snprintf(text, sizeof(text), "%swebhook_secret = " TW_SECRET "\n[server]\nenabled = true\n",
             base);
    assert_int_equal(tw_config(text, NULL), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_webhook_config),
    cmocka_unit_test(test_webhook_update_to_reply),
    cmocka_unit_test(test_webhook_answered_once_reply_is_safe),
    cmocka_unit_test(test_webhook_reply_safe_on_shared_ledger),
    cmocka_unit_test(test_webhook_wrong_secret),
    cmocka_unit_test(test_webhook_numbers_out_of_range),
    cmocka_unit_test(test_webhook_second_daemon_leaves_rows),
    cmocka_unit_test(test_webhook_gone_daemon_rows_sent),
    cmocka_unit_test(test_webhook_owed_notice_sent),
};

TEST_GROUP_DEFINE(telegram_webhook, tests, NULL, NULL)
