/* Discord's HTTP interactions endpoint end to end: the daemon's server
 * with the endpoint (bot/webhooks.c), the Discord adapter (not started: no
 * gateway is needed for interactions over HTTP) and the fake REST API.
 * Requests are signed with an Ed25519 key the test makes; the first
 * response must come back as the HTTP answer, later ones through REST. */
#include "tests/test.h"

#include "adapters/discord/discord.h"
#include "adapters/discord/verify.h"
#include "bot/config.h"
#include "net/http.h"
#include "net/server.h"
#include "bot/webhooks.h"
#include "base/error.h"
#include "tests/bot/tcall.h"
#include "tests/fake/discord_rest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define EP_TOKEN "endpoint-test-token.ZZZ-123456"
#define EP_APP "4242"
#define EP_GUARD_MS 10000

struct ep {
    uv_loop_t loop;
    struct http_client *http; /* the adapter's REST and the test's calls */
    struct fake_rest *rest;
    struct server *srv;
    struct webhooks *wh;
    struct adapter *adapter;
    struct adapter *bad_key; /* an adapter configured with a malformed key */
    EVP_PKEY *key;           /* signs the requests */
    EVP_PKEY *other;         /* a key Discord does not use */
    char key_hex[65];
    char url[96];
    uv_timer_t guard;
    bool timed_out;
    struct reply *held; /* a reply the handler keeps for later */
    bool answer_now;    /* the handler answers during dispatch */
    bool with_image;    /* ... with an image */
    bool long_text;     /* ... with a text in two messages */
    size_t dispatched;
    struct discord_adapter_stats stats;
};

static void ep_noop(void *data)
{
    (void)data;
}

static void ep_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void ep_guard(uv_timer_t *t)
{
    struct ep *e = t->data;
    e->timed_out = true;
}

static EVP_PKEY *ep_keygen(void)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
    EVP_PKEY_CTX_free(c);
    return k;
}

static void ep_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Ed25519 over timestamp + body, as Discord signs. */
static void ep_sign(EVP_PKEY *key, const char *ts, const char *body, char out[129])
{
    char msg[4096];
    int n = snprintf(msg, sizeof(msg), "%s%s", ts, body);
    assert_true(n > 0 && (size_t)n < sizeof(msg));
    unsigned char sig[64];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)msg, (size_t)n), 1);
    EVP_MD_CTX_free(md);
    assert_int_equal(siglen, 64);
    ep_hex(sig, 64, out);
}

static void ep_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct ep *e = data;
    (void)args;
    e->dispatched++;
    if (e->answer_now) {
        struct reply_image img = {.data = (const unsigned char *)"\x89PNG....",
                                  .len = 8,
                                  .filename = "a.png",
                                  .mime = "image/png"};
        struct reply_msg m = {
            .stage = REPLY_FINAL, .text = "balance: 5", .image = e->with_image ? &img : NULL};
        static char big[2600];
        if (e->long_text) {
            memset(big, 'x', sizeof(big) - 1);
            big[sizeof(big) - 1] = '\0';
            m.text = big;
        }
        reply_send(inv->reply, &m);
        reply_finish(inv->reply);
    } else {
        e->held = inv->reply;
    }
    invocation_clear(inv);
}

static void ep_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static void ep_open(struct ep *e)
{
    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(http_client_new(&e->loop, NULL, &e->http), 0);
    struct fake_rest_options ro = {.gateway_url = "ws://127.0.0.1:1"};
    e->rest = fake_rest_new(&e->loop, &ro);
    assert_non_null(e->rest);
    struct discord_options o = {.token = EP_TOKEN,
                                .application_id = EP_APP,
                                .api_base = fake_rest_api_base(e->rest),
                                .shard_last = -1,
                                .http = e->http,
                                .edit_interval_ms = 10};
    e->key = ep_keygen();
    e->other = ep_keygen();
    unsigned char pub[32];
    size_t publen = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(e->key, pub, &publen), 1);
    ep_hex(pub, 32, e->key_hex);
    struct adapter_host host = {.dispatch = ep_dispatch, .ended = ep_ended, .data = e};
    o.public_key = "not-a-key";
    e->bad_key = discord_new(&e->loop, &o, &host);
    assert_non_null(e->bad_key);
    o.public_key = e->key_hex;
    e->adapter = discord_new(&e->loop, &o, &host);
    assert_non_null(e->adapter);
    struct server_options so = {.max_body = 8192};
    e->srv = server_new(&e->loop, &so);
    assert_non_null(e->srv);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d/interactions/discord",
             server_port(e->srv));
    e->wh = webhooks_new(e->srv);
    assert_non_null(e->wh);
    assert_int_equal(webhooks_adapter_add(e->wh, e->bad_key), HB_EINVAL);
    assert_int_equal(webhooks_adapter_add(e->wh, e->adapter), 0);
    assert_int_equal(webhooks_adapter_add(e->wh, e->adapter), HB_EEXISTS);
    uv_timer_init(&e->loop, &e->guard);
    e->guard.data = e;
    uv_timer_start(&e->guard, ep_guard, EP_GUARD_MS, 0);
}

static void ep_adapter_closed(void *data)
{
    struct ep *e = data;
    fake_rest_close(e->rest, ep_noop, NULL);
    http_client_close(e->http, ep_noop, NULL);
}

static void ep_close(struct ep *e)
{
    discord_adapter_stats(e->adapter, &e->stats);
    uv_close((uv_handle_t *)&e->guard, ep_handle_closed);
    webhooks_stop(e->wh);
    server_stop(e->srv);
    e->bad_key->ops->close(e->bad_key, ep_noop, NULL);
    e->adapter->ops->close(e->adapter, ep_adapter_closed, e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    e->bad_key->ops->free(e->bad_key);
    e->adapter->ops->free(e->adapter);
    server_free(e->srv);
    webhooks_free(e->wh);
    fake_rest_free(e->rest);
    EVP_PKEY_free(e->key);
    EVP_PKEY_free(e->other);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    assert_false(e->timed_out);
}

/* POST body to the endpoint, signed with key (NULL: no signature headers)
 * at time ts. */
static void ep_post_at(struct ep *e, EVP_PKEY *key, const char *ts, const char *body,
                       struct tcall *out)
{
    char sig[129];
    if (key != NULL)
        ep_sign(key, ts, body, sig);
    const char *headers[] = {
        "X-Signature-Ed25519", sig, "X-Signature-Timestamp", ts, "Content-Type",
        "application/json",    NULL};
    const char *bare[] = {"Content-Type", "application/json", NULL};
    tcall_do(&e->loop, e->http, "POST", e->url, key != NULL ? headers : bare, body, strlen(body),
             out);
}

/* Now as Discord writes it in X-Signature-Timestamp, moved by delta seconds. */
static void ep_now(char *out, size_t cap, long delta)
{
    snprintf(out, cap, "%lld", (long long)time(NULL) + delta);
}

/* POST body to the endpoint, signed with key (NULL: no signature headers) now. */
static void ep_post(struct ep *e, EVP_PKEY *key, const char *body, struct tcall *out)
{
    char ts[32];
    ep_now(ts, sizeof(ts), 0);
    ep_post_at(e, key, ts, body, out);
}

static void ep_command(char *out, size_t cap, unsigned n, int type, const char *data)
{
    snprintf(out, cap,
             "{\"id\":\"%u\",\"application_id\":\"" EP_APP "\",\"type\":%d,\"token\":\"tok%u\","
             "\"guild_id\":\"77\",\"channel_id\":\"88\",\"member\":{\"permissions\":\"0\","
             "\"user\":{\"id\":\"555\",\"username\":\"ann\"}},\"data\":%s,\"version\":1}",
             2000u + n, type, n, data);
}

/* Run the loop until the fake REST has a request with method, target
 * substring and body substring (guarded). */
static void ep_wait_rest(struct ep *e, const char *method, const char *target, const char *needle)
{
    for (;;) {
        size_t total = fake_rest_count(e->rest);
        for (size_t i = 0; i < total; i++) {
            struct fake_rest_request *q = fake_rest_get(e->rest, i);
            bool hit = q != NULL && strcmp(q->method, method) == 0 &&
                       strstr(q->target, target) != NULL && strstr(q->json, needle) != NULL;
            fake_rest_request_free(q);
            if (hit)
                return;
        }
        if (e->timed_out)
            return;
        uv_run(&e->loop, UV_RUN_ONCE);
    }
}

/* A slash command whose handler answers later: deferred in the HTTP
 * answer, the result as an edit of @original through REST, and no
 * callback through REST at all. */
static void test_endpoint_deferred_then_edit(void **state)
{
    (void)state;
    struct ep e;
    ep_open(&e);
    char body[1024];
    ep_command(body, sizeof(body), 1, 2, "{\"id\":\"9\",\"name\":\"help\",\"type\":1}");
    struct tcall c = {0};
    ep_post(&e, e.key, body, &c);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.status, 200);
    assert_non_null(c.content_type);
    assert_non_null(strstr(c.content_type, "application/json"));
    assert_string_equal(c.body, "{\"type\":5}");
    assert_int_equal(e.dispatched, 1);
    assert_non_null(e.held);
    tcall_clear(&c);
    /* The result, once the HTTP answer is in. */
    reply_text(e.held, false, "result: 42");
    reply_finish(e.held);
    e.held = NULL;
    ep_wait_rest(&e, "PATCH", "/webhooks/" EP_APP "/tok1/messages/@original", "result: 42");
    assert_int_equal(fake_rest_matching(e.rest, NULL, "/callback"), 0);
    /* The same interaction again is not handled twice. */
    ep_post(&e, e.key, body, &c);
    assert_int_equal(c.status, 400);
    assert_int_equal(e.dispatched, 1);
    tcall_clear(&c);
    ep_close(&e);
    assert_int_equal(e.stats.acks, 1);
    assert_int_equal(e.stats.duplicates, 1);
}

/* A personal command over HTTP: the deferral in the HTTP answer is itself
 * ephemeral, so the channel never sees who asked, and the answer is an
 * edit of it: no delete, no follow-up. */
static void test_endpoint_personal_deferred_ephemeral(void **state)
{
    (void)state;
    struct ep e;
    ep_open(&e);
    char body[1024];
    ep_command(body, sizeof(body), 7, 2, "{\"id\":\"9\",\"name\":\"balance\",\"type\":1}");
    struct tcall c = {0};
    ep_post(&e, e.key, body, &c);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "{\"type\":5,\"data\":{\"flags\":64}}");
    assert_non_null(e.held);
    tcall_clear(&c);
    reply_personal(e.held, "Your wallet: 5 credits available");
    reply_finish(e.held);
    e.held = NULL;
    ep_wait_rest(&e, "PATCH", "/webhooks/" EP_APP "/tok7/messages/@original", "Your wallet: 5");
    discord_adapter_stats(e.adapter, &e.stats);
    while (e.stats.edits < 1 && !e.timed_out) {
        uv_run(&e.loop, UV_RUN_ONCE);
        discord_adapter_stats(e.adapter, &e.stats);
    }
    assert_int_equal(fake_rest_count(e.rest), 1);
    assert_int_equal(fake_rest_matching(e.rest, "DELETE", "/tok7"), 0);
    assert_int_equal(fake_rest_matching(e.rest, "POST", "/webhooks/" EP_APP "/tok7"), 0);
    ep_close(&e);
}

/* Answered during dispatch: the message is the HTTP answer (type 4). With
 * an image the HTTP answer defers and the message, file and all, is the
 * edit of @original. */
static void test_endpoint_answer_now_and_image(void **state)
{
    (void)state;
    struct ep e;
    ep_open(&e);
    e.answer_now = true;
    char body[1024];
    ep_command(body, sizeof(body), 2, 2, "{\"id\":\"9\",\"name\":\"help\",\"type\":1}");
    struct tcall c = {0};
    ep_post(&e, e.key, body, &c);
    assert_int_equal(c.status, 200);
    assert_non_null(strstr(c.body, "\"type\":4"));
    assert_non_null(strstr(c.body, "balance: 5"));
    tcall_clear(&c);
    e.with_image = true;
    ep_command(body, sizeof(body), 3, 2, "{\"id\":\"9\",\"name\":\"help\",\"type\":1}");
    ep_post(&e, e.key, body, &c);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "{\"type\":5}");
    tcall_clear(&c);
    ep_wait_rest(&e, "PATCH", "/webhooks/" EP_APP "/tok3/messages/@original", "balance: 5");
    struct fake_rest_request *q = fake_rest_get(e.rest, fake_rest_count(e.rest) - 1);
    assert_non_null(q);
    assert_int_equal(q->nfiles, 1);
    assert_string_equal(q->file_name, "a.png");
    fake_rest_request_free(q);
    assert_int_equal(fake_rest_matching(e.rest, NULL, "/callback"), 0);
    /* Autocomplete answers in the HTTP answer too (type 8). */
    ep_command(body, sizeof(body), 4, 4,
               "{\"id\":\"9\",\"name\":\"model\",\"type\":1,\"options\":[{\"name\":\"model\","
               "\"type\":3,\"value\":\"g\",\"focused\":true}]}");
    ep_post(&e, e.key, body, &c);
    assert_int_equal(c.status, 200);
    assert_non_null(strstr(c.body, "\"type\":8"));
    tcall_clear(&c);
    ep_close(&e);
}

/* PING is answered with PONG; a forged, missing or stale-keyed signature
 * is 401 and reaches nothing; a body changed after signing too. */
static void test_endpoint_ping_and_forgeries(void **state)
{
    (void)state;
    struct ep e;
    ep_open(&e);
    struct tcall c = {0};
    const char *ping =
        "{\"id\":\"1\",\"application_id\":\"" EP_APP "\",\"type\":1,\"token\":\"t\"}";
    ep_post(&e, e.key, ping, &c);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "{\"type\":1}");
    tcall_clear(&c);
    char body[1024];
    ep_command(body, sizeof(body), 5, 2, "{\"id\":\"9\",\"name\":\"help\",\"type\":1}");
    ep_post(&e, e.other, body, &c);
    assert_int_equal(c.status, 401);
    tcall_clear(&c);
    ep_post(&e, e.other, ping, &c);
    assert_int_equal(c.status, 401);
    tcall_clear(&c);
    ep_post(&e, NULL, body, &c);
    assert_int_equal(c.status, 401);
    tcall_clear(&c);
    /* Signed for one body, sent with another. */
    char sig[129], now[32];
    ep_now(now, sizeof(now), 0);
    ep_sign(e.key, now, ping, sig);
    const char *headers[] = {"X-Signature-Ed25519", sig, "X-Signature-Timestamp", now, NULL};
    tcall_do(&e.loop, e.http, "POST", e.url, headers, body, strlen(body), &c);
    assert_int_equal(c.status, 401);
    tcall_clear(&c);
    assert_int_equal(e.dispatched, 0);
    /* Closing: the endpoint no longer reaches the adapter. */
    webhooks_stop(e.wh);
    ep_post(&e, e.key, body, &c);
    assert_int_equal(c.status, 503);
    tcall_clear(&c);
    assert_int_equal(e.dispatched, 0);
    assert_int_equal(fake_rest_count(e.rest), 0);
    ep_close(&e);
}

/* A correctly signed request is refused with 401 when its timestamp is
 * more than five minutes old or ahead (a replay), or not a number; within
 * five minutes either way it is answered. */
static void test_endpoint_stale_timestamp(void **state)
{
    (void)state;
    struct ep e;
    ep_open(&e);
    struct tcall c = {0};
    const char *ping =
        "{\"id\":\"1\",\"application_id\":\"" EP_APP "\",\"type\":1,\"token\":\"t\"}";
    char body[1024], ts[32];
    ep_command(body, sizeof(body), 6, 2, "{\"id\":\"9\",\"name\":\"help\",\"type\":1}");
    ep_post_at(&e, e.key, "1700000000", body, &c); /* signed long ago */
    assert_int_equal(c.status, 401);
    tcall_clear(&c);
    static const long refused[] = {-301 - 5, 301 + 5, -86400};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        ep_now(ts, sizeof(ts), refused[i]);
        ep_post_at(&e, e.key, ts, ping, &c);
        assert_int_equal(c.status, 401);
        tcall_clear(&c);
        ep_post_at(&e, e.key, ts, body, &c);
        assert_int_equal(c.status, 401);
        tcall_clear(&c);
    }
    ep_post_at(&e, e.key, "soon", ping, &c);
    assert_int_equal(c.status, 401);
    tcall_clear(&c);
    assert_int_equal(e.dispatched, 0);
    static const long answered[] = {-290, 0, 290};
    for (size_t i = 0; i < sizeof(answered) / sizeof(answered[0]); i++) {
        ep_now(ts, sizeof(ts), answered[i]);
        ep_post_at(&e, e.key, ts, ping, &c);
        assert_int_equal(c.status, 200);
        tcall_clear(&c);
    }
    assert_int_equal(discord_timestamp_check("1000", 1300), 0);
    assert_int_equal(discord_timestamp_check("1000", 1301), HB_EPERM);
    assert_int_equal(discord_timestamp_check("1301", 1000), HB_EPERM);
    assert_int_equal(discord_timestamp_check("1e300", 1000), HB_EINVAL);
    assert_int_equal(discord_timestamp_check(NULL, 1000), HB_EINVAL);
    ep_close(&e);
}

/* Load text as a config file; the problems' messages joined in out. */
static int ep_config(const char *text, char *out, size_t cap)
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
    out[0] = '\0';
    for (size_t i = 0; i < problems.count; i++) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s\n", problems.items[i].message);
    }
    config_problems_free(&problems);
    config_free(cfg);
    test_tmpdir_remove(dir);
    free(dir);
    return rc;
}

/* The endpoint needs a well-formed key and the server. */
static void test_endpoint_config(void **state)
{
    (void)state;
    char msgs[1024];
    const char *base = "[console]\nenabled = true\n[discord]\nenabled = true\ntoken = x\n"
                       "application_id = 1\ninteractions_endpoint = true\n";
    char text[1024];
    snprintf(text, sizeof(text), "%s", base);
    assert_int_equal(ep_config(text, msgs, sizeof(msgs)), HB_ECONFIG);
    assert_non_null(strstr(msgs, "public_key"));
    snprintf(text, sizeof(text), "%spublic_key = %064d\n", base, 0);
    assert_int_equal(ep_config(text, msgs, sizeof(msgs)), HB_ECONFIG);
    assert_non_null(strstr(msgs, "[server] enabled"));
    snprintf(text, sizeof(text), "%spublic_key = %064d\n[server]\nenabled = true\n", base, 0);
    assert_int_equal(ep_config(text, msgs, sizeof(msgs)), 0);
}

/* A text longer than one message: the first piece is the HTTP answer,
 * the rest a follow-up through REST. When Discord has not taken the HTTP
 * answer in yet (404 on the follow-up) the follow-up is repeated once. */
static void test_endpoint_followup_retried_after_404(void **state)
{
    (void)state;
    struct ep e;
    ep_open(&e);
    e.answer_now = true;
    e.long_text = true;
    fake_rest_script_status(e.rest, "/webhooks/" EP_APP "/tok6", 404);
    char body[1024];
    ep_command(body, sizeof(body), 6, 2, "{\"id\":\"9\",\"name\":\"help\",\"type\":1}");
    struct tcall c = {0};
    ep_post(&e, e.key, body, &c);
    assert_int_equal(c.status, 200);
    assert_non_null(strstr(c.body, "\"type\":4"));
    tcall_clear(&c);
    while (fake_rest_matching(e.rest, "POST", "/webhooks/" EP_APP "/tok6") < 2 && !e.timed_out)
        uv_run(&e.loop, UV_RUN_ONCE);
    struct fake_rest_request *first = fake_rest_get(e.rest, 0);
    struct fake_rest_request *second = fake_rest_get(e.rest, 1);
    assert_non_null(first);
    assert_non_null(second);
    assert_int_equal(first->status, 404);
    assert_int_equal(second->status / 100, 2);
    assert_string_equal(first->json, second->json);
    assert_true(second->at_ms - first->at_ms >= 400);
    fake_rest_request_free(first);
    fake_rest_request_free(second);
    /* Let the reply see its answer before closing. */
    discord_adapter_stats(e.adapter, &e.stats);
    while (e.stats.followups < 1 && !e.timed_out) {
        uv_run(&e.loop, UV_RUN_ONCE);
        discord_adapter_stats(e.adapter, &e.stats);
    }
    assert_int_equal(fake_rest_matching(e.rest, NULL, "/callback"), 0);
    ep_close(&e);
    assert_int_equal(e.stats.followups, 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_endpoint_followup_retried_after_404),
    cmocka_unit_test(test_endpoint_config),
    cmocka_unit_test(test_endpoint_deferred_then_edit),
    cmocka_unit_test(test_endpoint_answer_now_and_image),
    cmocka_unit_test(test_endpoint_personal_deferred_ephemeral),
    cmocka_unit_test(test_endpoint_ping_and_forgeries),
    cmocka_unit_test(test_endpoint_stale_timestamp),
};

TEST_GROUP_DEFINE(discord_endpoint, tests, NULL, NULL)
