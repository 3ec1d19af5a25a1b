/* The generation engine end to end: a real ledger and state table, the
 * real provider adapters against fake OpenAI-compatible and Anthropic
 * servers on loopback (group "providers"), and a held in-test provider
 * that the test releases step by step for the queue, limits, filter and
 * recovery (group "generate"). Every wait is for an event, bounded by a
 * guard timer; every test ends with uv_loop_close() == 0. */
#include "tests/test.h"

#include "adapters/anthropic/anthropic.h"
#include "adapters/openai/openai.h"
#include "net/http.h"
#include "core/catalog.h"
#include "core/core.h"
#include "base/error.h"
#include "core/commands.h"
#include "core/generate.h"
#include "base/metrics.h"
#include "core/pool.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "base/log.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/httpd.h"
#include "tests/fake/reply_capture.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GT_GUARD_MS 20000
#define GT_MAX_CALLS 16

/* ---- a held provider: the test decides when each call speaks ---------- */

struct provider_call {
    struct held *held;
    const struct provider_events *ev;
    void *data;
    char model[64];
    char last_prompt[256];
    size_t nmessages;
    bool active;
    bool cancelled;
};

struct held {
    struct provider provider;
    struct provider_call calls[GT_MAX_CALLS];
    size_t ncalls;
    bool freed_ok;
};

static int held_start(struct provider *p, const struct provider_request *req,
                      const struct provider_events *ev, void *data, struct provider_call **out)
{
    struct held *h = p->impl;
    assert_true(h->ncalls < GT_MAX_CALLS);
    struct provider_call *c = &h->calls[h->ncalls++];
    memset(c, 0, sizeof(*c));
    c->held = h;
    c->ev = ev;
    c->data = data;
    c->active = true;
    c->nmessages = req->nmessages;
    snprintf(c->model, sizeof(c->model), "%s", req->model);
    if (req->nmessages > 0)
        snprintf(c->last_prompt, sizeof(c->last_prompt), "%s",
                 req->messages[req->nmessages - 1].content);
    *out = c;
    return 0;
}

static void held_finish(struct provider_call *c, int rc, const char *text, long in, long out)
{
    assert_true(c->active);
    if (text != NULL)
        c->ev->text(c->data, text, strlen(text));
    if (in >= 0 || out >= 0)
        c->ev->usage(c->data, in, out);
    c->active = false;
    struct provider_result res = {.rc = rc, .retry_after_ms = -1, .error = rc ? "it broke" : ""};
    c->ev->done(c->data, &res);
}

static void held_cancel(struct provider_call *c)
{
    c->cancelled = true;
}

static void held_free(struct provider *p)
{
    (void)p; /* static in the fixture */
}

static const struct provider_ops held_ops = {
    .start = held_start, .cancel = held_cancel, .free = held_free};

/* ---- the fixture ---------------------------------------------------------- */

struct gt {
    struct lt lt;
    struct core core;
    struct generate *g;
    struct http_client *http;
    struct httpd *srv;
    struct held held;
    uv_timer_t guard;
    bool guard_fired;
    int closed;
    int64_t wall; /* the engine's wall clock, ms */
    /* What the fake servers saw. */
    unsigned requests;
    uint64_t req_ms[8];
    char seen_auth[128];
    char seen_key[128];
    char seen_version[64];
    char seen_extra[64];
    bool seen_max_tokens;
    bool seen_include_usage;
    bool seen_stream;
    unsigned tries_429;
    unsigned tries_overloaded;
};

static int64_t gt_clock(void *data)
{
    return ((struct gt *)data)->wall;
}

static void gt_guard(uv_timer_t *t)
{
    struct gt *gt = t->data;
    gt->guard_fired = true;
}

static void gt_closed(void *data)
{
    ((struct gt *)data)->closed++;
}

static void server_handler(struct httpd_response *res, const struct httpd_request *req,
                           void *data);

/* An OpenAI-compatible and an Anthropic provider on the fake server, the
 * held provider, and models on each. */
static void gt_init(struct gt *gt, const struct catalog_limits *limits,
                    const struct filter_rule *rules, size_t nrules, size_t max_image_bytes)
{
    memset(gt, 0, sizeof(*gt));
    lt_init(&gt->lt, true, false);
    gt->wall = 1767225600000LL + 10 * 60000; /* 00:10 UTC */
    assert_int_equal(http_client_new(&gt->lt.loop, NULL, &gt->http), 0);
    gt->srv = httpd_new(&gt->lt.loop, server_handler, gt);
    assert_non_null(gt->srv);
    uv_timer_init(&gt->lt.loop, &gt->guard);
    gt->guard.data = gt;
    uv_timer_start(&gt->guard, gt_guard, GT_GUARD_MS, 0);

    gt->held.provider.ops = &held_ops;
    gt->held.provider.impl = &gt->held;
    char base[128];
    snprintf(base, sizeof(base), "%s/v1", httpd_base_url(gt->srv));
    struct provider_settings os = {.name = "fakeai",
                                   .base_url = base,
                                   .api_key = "sk-test-123456",
                                   .headers = "X-Extra: yes",
                                   .max_image_bytes = max_image_bytes};
    struct provider_settings as = {.name = "fakeanthropic", .base_url = base, .api_key = "ak-test-987654"};
    struct catalog_provider_spec ps[] = {
        {.name = "fakeai", .provider = openai_provider_new(gt->http, &os), .timeout_ms = 2000,
         .max_concurrent = 4},
        {.name = "fakeanthropic", .provider = anthropic_provider_new(gt->http, &as),
         .timeout_ms = 2000, .max_concurrent = 4},
        {.name = "held", .provider = &gt->held.provider, .timeout_ms = 60000, .max_concurrent = 1},
    };
#define M(n, prov, fb) \
    {.name = n, .provider = prov, .modality = PROVIDER_TEXT, .price_request = 1, \
     .price_input_1k = 100, .price_output_1k = 100, .max_output_tokens = 100, .fallbacks = fb, \
     .enabled = true}
    struct catalog_model_spec ms[] = {
        M("ok", "fakeai", NULL),
        M("midstream", "fakeai", "ok"),
        M("allfail", "fakeai", "malformed"),
        M("malformed", "fakeai", NULL),
        M("truncated", "fakeai", NULL),
        M("never", "fakeai", NULL),
        M("r429", "fakeai", NULL),
        M("r429ms", "fakeai", NULL),
        M("badkey", "fakeai", "ok"),
        M("claude", "fakeanthropic", NULL),
        M("overloaded", "fakeanthropic", NULL),
        M("h", "held", NULL),
        M("h2", "held", NULL),
        {.name = "img-b64", .provider = "fakeai", .modality = PROVIDER_IMAGE, .price_request = 7,
         .sizes = "256x256", .enabled = true},
        {.name = "img-url", .provider = "fakeai", .modality = PROVIDER_IMAGE, .price_request = 7,
         .sizes = "256x256", .enabled = true},
        {.name = "img-big", .provider = "fakeai", .modality = PROVIDER_IMAGE, .price_request = 7,
         .sizes = "256x256", .enabled = true},
        {.name = "private", .provider = "held", .modality = PROVIDER_TEXT, .price_request = 1,
         .allow = "console:boss", .enabled = true},
    };
#undef M
    struct catalog_spec spec = {.providers = ps,
                                .nproviders = 3,
                                .models = ms,
                                .nmodels = sizeof(ms) / sizeof(ms[0]),
                                .filter_rules = rules,
                                .nfilter_rules = nrules};
    if (limits != NULL)
        spec.limits = *limits;
    else
        spec.limits.retry_max = 2;
    spec.limits.job_timeout_ms = spec.limits.job_timeout_ms > 0 ? spec.limits.job_timeout_ms : 8000;
    char err[256] = "";
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    if (cat == NULL)
        fail_msg("catalog: %s", err);
    gt->core.ledger = gt->lt.ledger;
    gt->core.welcome_bonus = 100;
    gt->core.reservation_timeout_ms = 600000;
    memset(gt->core.button_key, 7, sizeof(gt->core.button_key));
    struct generate_options opts = {.clock = gt_clock, .clock_data = gt};
    gt->g = generate_new(&gt->lt.loop, &gt->core, cat, &opts);
    catalog_unref(cat);
    assert_non_null(gt->g);
    gt->core.generate = gt->g;
}

static void gt_done(struct gt *gt)
{
    generate_close(gt->g, gt_closed, gt);
    http_client_close(gt->http, gt_closed, gt);
    httpd_close(gt->srv, gt_closed, gt);
    uv_close((uv_handle_t *)&gt->guard, NULL);
    while (gt->closed < 3)
        uv_run(&gt->lt.loop, UV_RUN_ONCE);
    lt_done(&gt->lt);
}

static void gt_wait(struct gt *gt, const int *flag, int want)
{
    while (*flag < want && !gt->guard_fired)
        uv_run(&gt->lt.loop, UV_RUN_ONCE);
    assert_false(gt->guard_fired);
}

/* A console invocation from user, in group scope (NULL: a DM), answering
 * into cap, with a fresh event id. */
static void gt_inv(struct invocation *inv, struct reply_capture *cap, const char *user,
                   const char *scope)
{
    static unsigned seq;
    memset(inv, 0, sizeof(*inv));
    reply_capture_init(cap);
    inv->platform = COMMAND_PLATFORM_CONSOLE;
    snprintf(inv->user_id, sizeof(inv->user_id), "%s", user);
    if (scope != NULL) {
        inv->scope = COMMAND_SCOPE_GROUP;
        snprintf(inv->scope_id, sizeof(inv->scope_id), "%s", scope);
        snprintf(inv->channel_id, sizeof(inv->channel_id), "c-%s", scope);
    } else {
        snprintf(inv->channel_id, sizeof(inv->channel_id), "console");
    }
    snprintf(inv->event_id, sizeof(inv->event_id), "test:%u:%u", (unsigned)getpid(), ++seq);
    inv->reply = &cap->reply;
}

static void gt_submit(struct gt *gt, struct reply_capture *cap, const char *user,
                      enum provider_modality modality, const char *model, const char *prompt)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, NULL);
    struct generate_request req = {.modality = modality, .prompt = prompt, .model = model};
    generate_submit(gt->g, &inv, &req);
}

/* Submit and wait for the final reply. */
static void gt_run(struct gt *gt, struct reply_capture *cap, const char *user,
                   enum provider_modality modality, const char *model, const char *prompt)
{
    gt_submit(gt, cap, user, modality, model, prompt);
    gt_wait(gt, &cap->finished, 1);
}

static int64_t gt_balance(struct gt *gt, const char *user)
{
    char acct[128];
    snprintf(acct, sizeof(acct), "console:%s", user);
    struct ledger_balance b = lt_balance(&gt->lt, acct);
    assert_int_equal(b.pending_debits, 0); /* nothing left reserved */
    return b.posted;
}

static void assert_has(const struct reply_capture *cap, const char *needle)
{
    if (cap->text == NULL || strstr(cap->text, needle) == NULL)
        fail_msg("reply lacks \"%s\":\n%s", needle, cap->text != NULL ? cap->text : "(none)");
}

/* ---- the fake servers --------------------------------------------------- */

static const char png_bytes[] = "\x89PNG\r\n\x1a\nfake-image-bytes";

static void send_sse(struct httpd_response *res, const char *const *events)
{
    httpd_response_start(res, 200, "text/event-stream");
    for (size_t i = 0; events[i] != NULL; i++)
        httpd_response_chunk(res, events[i], strlen(events[i]));
    httpd_response_end(res);
}

static const char *const openai_ok[] = {
    ": keep-alive comment\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo, \"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"world\"},\"finish_reason\":null}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"choices\":null,\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20,\"total_tokens\":30}}\n\n",
    "data: [DONE]\n\n",
    NULL};

static void openai_chat(struct gt *gt, struct httpd_response *res, const char *model)
{
    if (strcmp(model, "ok") == 0) {
        send_sse(res, openai_ok);
    } else if (strcmp(model, "midstream") == 0) {
        static const char *const ev[] = {
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n",
            NULL};
        send_sse(res, ev);
    } else if (strcmp(model, "malformed") == 0) {
        static const char *const ev[] = {"data: {\"choices\":[{\"delta\":\n\n", NULL};
        send_sse(res, ev);
    } else if (strcmp(model, "truncated") == 0) {
        httpd_response_start(res, 200, "text/event-stream");
        const char *c = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cut\"}}]}\n\n";
        httpd_response_chunk(res, c, strlen(c));
        httpd_response_abort(res);
    } else if (strcmp(model, "never") == 0) {
        /* no answer at all */
    } else if (strcmp(model, "r429") == 0) {
        if (gt->tries_429++ == 0) {
            httpd_response_header_add(res, "Retry-After", "1");
            const char *b = "{\"error\":{\"message\":\"Rate limit reached\"}}";
            httpd_response_send(res, 429, "application/json", b, strlen(b));
        } else {
            send_sse(res, openai_ok);
        }
    } else if (strcmp(model, "r429ms") == 0) {
        /* A retry-after-ms that does not parse, beside a usable Retry-After. */
        if (gt->tries_429++ == 0) {
            httpd_response_header_add(res, "retry-after-ms", "soon");
            httpd_response_header_add(res, "Retry-After", "1");
            const char *b = "{\"error\":{\"message\":\"Rate limit reached\"}}";
            httpd_response_send(res, 429, "application/json", b, strlen(b));
        } else {
            send_sse(res, openai_ok);
        }
    } else if (strcmp(model, "badkey") == 0) {
        const char *b = "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":"
                        "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}";
        httpd_response_send(res, 401, "application/json", b, strlen(b));
    } else {
        httpd_response_send(res, 404, "application/json", "{}", 2);
    }
}

static void openai_image(struct gt *gt, struct httpd_response *res, const char *model)
{
    char body[512];
    if (strcmp(model, "img-b64") == 0) {
        /* base64 of png_bytes */
        static const char b64[] = "iVBORw0KGgpmYWtlLWltYWdlLWJ5dGVz";
        snprintf(body, sizeof(body), "{\"created\":1,\"data\":[{\"b64_json\":\"%s\"}]}", b64);
    } else {
        snprintf(body, sizeof(body), "{\"created\":1,\"data\":[{\"url\":\"%s/files/%s.png\"}]}",
                 httpd_base_url(gt->srv), strcmp(model, "img-url") == 0 ? "small" : "big");
    }
    httpd_response_send(res, 200, "application/json", body, strlen(body));
}

static const char *const anthropic_ok[] = {
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Bonjour\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" le monde\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":20}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    NULL};

static void server_handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    struct gt *gt = data;
    if (gt->requests < 8)
        gt->req_ms[gt->requests] = uv_now(&gt->lt.loop);
    gt->requests++;
    if (strncmp(req->target, "/files/", 7) == 0) {
        if (strcmp(req->target, "/files/small.png") == 0) {
            httpd_response_send(res, 200, "image/png", png_bytes, sizeof(png_bytes) - 1);
        } else {
            static char big[4096];
            memset(big, 'x', sizeof(big));
            httpd_response_send(res, 200, "image/png", big, sizeof(big));
        }
        return;
    }
    cJSON *body = cJSON_ParseWithLength(req->body, req->body_len);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    const char *m = cJSON_IsString(model) ? model->valuestring : "";
    const char *v;
    snprintf(gt->seen_auth, sizeof(gt->seen_auth), "%s",
             (v = httpd_request_header(req, "authorization")) != NULL ? v : "");
    snprintf(gt->seen_key, sizeof(gt->seen_key), "%s",
             (v = httpd_request_header(req, "x-api-key")) != NULL ? v : "");
    snprintf(gt->seen_version, sizeof(gt->seen_version), "%s",
             (v = httpd_request_header(req, "anthropic-version")) != NULL ? v : "");
    snprintf(gt->seen_extra, sizeof(gt->seen_extra), "%s",
             (v = httpd_request_header(req, "x-extra")) != NULL ? v : "");
    gt->seen_max_tokens = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(body, "max_tokens"));
    gt->seen_stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "stream"));
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    gt->seen_include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    if (strcmp(req->target, "/v1/chat/completions") == 0) {
        openai_chat(gt, res, m);
    } else if (strcmp(req->target, "/v1/images/generations") == 0) {
        openai_image(gt, res, m);
    } else if (strcmp(req->target, "/v1/messages") == 0) {
        if (strcmp(m, "overloaded") == 0 && gt->tries_overloaded++ == 0) {
            static const char *const ev[] = {
                "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
                NULL};
            send_sse(res, ev);
        } else {
            send_sse(res, anthropic_ok);
        }
    } else {
        httpd_response_send(res, 404, "application/json", "{}", 2);
    }
    cJSON_Delete(body);
}

/* ---- providers: the real adapters against the fakes ---------------------- */

static void test_openai_stream_settles_by_usage(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "ok", "hi there");
    assert_has(&cap, "Hello, world");
    /* usage 10 in, 20 out: 1 + ceil(10*100/1000) + ceil(20*100/1000) = 4 */
    assert_has(&cap, "cost 4 credits");
    assert_has(&cap, "balance 96");
    assert_true(cap.nprogress >= 1);
    assert_int_equal(gt_balance(&gt, "u1"), 96);
    assert_string_equal(gt.seen_auth, "Bearer sk-test-123456");
    assert_string_equal(gt.seen_extra, "yes");
    assert_true(gt.seen_stream && gt.seen_include_usage && gt.seen_max_tokens);
    struct generate_stats st;
    generate_stats_get(gt.g, &st);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.tokens_today, 30);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_anthropic_stream(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "claude", "salut");
    assert_has(&cap, "Bonjour le monde");
    assert_has(&cap, "cost 4 credits");
    assert_string_equal(gt.seen_key, "ak-test-987654");
    assert_string_equal(gt.seen_version, "2023-06-01");
    assert_true(gt.seen_max_tokens && gt.seen_stream);
    assert_string_equal(gt.seen_auth, "");
    reply_capture_close(&cap);

    /* overloaded_error inside the stream is retried and then succeeds. */
    gt_run(&gt, &cap, "u2", PROVIDER_TEXT, "overloaded", "salut");
    assert_has(&cap, "Bonjour le monde");
    assert_int_equal(gt.tries_overloaded, 2);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_midstream_error_falls_back(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "midstream", "hi there");
    assert_has(&cap, "trying ok");
    assert_has(&cap, "Hello, world");
    assert_has(&cap, "— ok ·");
    assert_int_equal(gt_balance(&gt, "u1"), 96); /* charged as the fallback, once */
    reply_capture_close(&cap);

    /* Every model fails: nothing is charged and the member is told. */
    gt_run(&gt, &cap, "u2", PROVIDER_TEXT, "allfail", "hi there");
    assert_has(&cap, "Nothing was charged");
    assert_int_equal(gt_balance(&gt, "u2"), 100);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_timeout_refunds(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.job_timeout_ms = 600};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "never", "hello?");
    assert_has(&cap, "did not answer in time");
    assert_has(&cap, "Nothing was charged");
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_429_retry_after_honoured(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "r429", "hi there");
    assert_has(&cap, "Hello, world");
    assert_int_equal(gt.tries_429, 2);
    assert_true(gt.req_ms[1] - gt.req_ms[0] >= 990);
    assert_int_equal(gt_balance(&gt, "u1"), 96);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* A retry-after-ms that does not parse is no hint at all, not "at once":
 * the Retry-After beside it is honoured. */
static void test_429_bad_retry_after_ms(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "r429ms", "hi there");
    assert_has(&cap, "Hello, world");
    assert_int_equal(gt.tries_429, 2);
    assert_true(gt.req_ms[1] - gt.req_ms[0] >= 990);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* From adapters/llm/llm.h, whose struct provider_call differs from this
 * file's held provider. */
int64_t llm_retry_after_ms(const char *value);

/* Retry-After in seconds, fractions, or as an HTTP date. */
static void test_retry_after_forms(void **state)
{
    (void)state;
    assert_int_equal(llm_retry_after_ms("2"), 2000);
    assert_int_equal(llm_retry_after_ms("0.25"), 250);
    assert_int_equal(llm_retry_after_ms(NULL), -1);
    assert_int_equal(llm_retry_after_ms("soon"), -1);
    assert_int_equal(llm_retry_after_ms("-3"), -1);
    char date[64];
    time_t later = time(NULL) + 30;
    struct tm tm;
    gmtime_r(&later, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int64_t ms = llm_retry_after_ms(date);
    assert_true(ms >= 28000 && ms <= 30000);
    assert_int_equal(llm_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), 0); /* past */
    /* Numbers no integer holds are no hint (tests/corpus/llm/). */
    char *huge = test_file_read("tests/corpus/llm/retry-after-1e300.txt", NULL);
    assert_non_null(huge);
    assert_int_equal(llm_retry_after_ms(huge), -1);
    free(huge);
    assert_int_equal(llm_retry_after_ms("inf"), -1);
    assert_int_equal(llm_retry_after_ms("nan"), -1);
    assert_int_equal(llm_retry_after_ms("99999999999999999999"), -1);
}

static void test_bad_key_fails_fast(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.retry_max = 3};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "badkey", "hi there");
    /* One request to badkey (no retries), then the fallback. */
    assert_int_equal(gt.requests, 2);
    struct generate_stats st;
    generate_stats_get(gt.g, &st);
    assert_int_equal(st.retries, 0);
    assert_has(&cap, "Hello, world");
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_malformed_and_truncated_streams(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "malformed", "hi");
    assert_has(&cap, "broken stream");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "truncated", "hi");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    gt_done(&gt);
}

static void test_images_b64_url_and_limit(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 1000);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_IMAGE, "img-b64", "a red cat");
    assert_int_equal(cap.image_bytes, sizeof(png_bytes) - 1);
    assert_int_equal(cap.nbuttons, 2);
    assert_has(&cap, "cost 7 credits");
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u1", PROVIDER_IMAGE, "img-url", "a red cat");
    assert_int_equal(cap.image_bytes, sizeof(png_bytes) - 1);
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u1", PROVIDER_IMAGE, "img-big", "a red cat");
    assert_int_equal(cap.image_bytes, 0);
    assert_has(&cap, "larger than allowed");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    assert_int_equal(gt_balance(&gt, "u1"), 86);
    gt_done(&gt);
}


static void gt_press(struct gt *gt, struct reply_capture *cap, const char *user, const char *ref)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, NULL);
    snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", ref);
    cmd_generate_button(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
}

/* Regenerate is the owner's and charged again; Upvote is anyone else's,
 * once. */
static void test_image_buttons(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap, p;
    gt_run(&gt, &cap, "u1", PROVIDER_IMAGE, "img-b64", "a red cat");
    assert_int_equal(cap.nbuttons, 2);
    assert_string_equal(cap.buttons[0].label, "Regenerate");
    assert_string_equal(cap.buttons[1].label, "Upvote");
    char regen[COMMAND_BUTTON_REF_MAX + 1], up[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(regen, sizeof(regen), "%s", cap.buttons[0].ref);
    snprintf(up, sizeof(up), "%s", cap.buttons[1].ref);
    reply_capture_close(&cap);

    gt_press(&gt, &p, "u2", up);
    assert_has(&p, "Upvoted");
    reply_capture_close(&p);
    gt_press(&gt, &p, "u2", up);
    assert_has(&p, "already upvoted");
    reply_capture_close(&p);
    gt_press(&gt, &p, "u1", up);
    assert_has(&p, "your own");
    reply_capture_close(&p);
    gt_press(&gt, &p, "u2", regen);
    assert_has(&p, "not yours");
    reply_capture_close(&p);
    gt_press(&gt, &p, "u1", regen);
    assert_int_equal(p.image_bytes, sizeof(png_bytes) - 1);
    assert_has(&p, "cost 7 credits");
    reply_capture_close(&p);
    assert_int_equal(gt_balance(&gt, "u1"), 86);
    gt_done(&gt);
}

/* An image made in group g9; its Upvote ref goes to up. */
static void gt_image_in_group(struct gt *gt, const char *user, char *up)
{
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, user, "g9");
    struct generate_request req = {.modality = PROVIDER_IMAGE, .prompt = "a cat", .model = "img-b64"};
    generate_submit(gt->g, &inv, &req);
    gt_wait(gt, &cap.finished, 1);
    assert_int_equal(cap.nbuttons, 2);
    snprintf(up, COMMAND_BUTTON_REF_MAX + 1, "%s", cap.buttons[1].ref);
    reply_capture_close(&cap);
}

static const char *gt_leaderboard(struct gt *gt, struct reply_capture *cap, const char *scope)
{
    struct invocation inv;
    gt_inv(&inv, cap, "viewer", scope);
    inv.opts[0].set = true;
    inv.opts[0].type = COMMAND_OPT_STRING;
    inv.opts[0].string = strdup("all");
    cmd_leaderboard(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
    free(inv.opts[0].string);
    return cap->text != NULL ? cap->text : "";
}

static void test_leaderboard_counts_upvotes(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    char up1[COMMAND_BUTTON_REF_MAX + 1], up2[COMMAND_BUTTON_REF_MAX + 1];
    struct reply_capture p;
    assert_non_null(strstr(gt_leaderboard(&gt, &p, "g9"), "No upvoted generations"));
    reply_capture_close(&p);
    gt_image_in_group(&gt, "u1", up1);
    gt_image_in_group(&gt, "u3", up2);
    const char *voters1[] = {"u2", "u4", "u2"}; /* u2 twice: counted once */
    for (size_t i = 0; i < 3; i++) {
        gt_press(&gt, &p, voters1[i], up1);
        reply_capture_close(&p);
    }
    gt_press(&gt, &p, "u2", up2);
    reply_capture_close(&p);
    gt_press(&gt, &p, "u3", up2); /* one's own: not counted */
    reply_capture_close(&p);
    const char *t = gt_leaderboard(&gt, &p, "g9");
    if (strstr(t, "1. 2 upvotes: an image by u1 (img-b64)\n2. 1 upvote: an image by u3 (img-b64)") == NULL)
        fail_msg("unexpected leaderboard:\n%s", t);
    reply_capture_close(&p);
    /* Another group sees nothing of g9's; a DM has no leaderboard. */
    assert_non_null(strstr(gt_leaderboard(&gt, &p, "g10"), "No upvoted generations"));
    reply_capture_close(&p);
    assert_non_null(strstr(gt_leaderboard(&gt, &p, NULL), "belong to servers and groups"));
    reply_capture_close(&p);
    gt_done(&gt);
}

/* ---- the engine with the held provider ------------------------------------ */

static struct provider_call *held_wait_call(struct gt *gt, size_t index)
{
    while (gt->held.ncalls <= index && !gt->guard_fired)
        uv_run(&gt->lt.loop, UV_RUN_ONCE);
    assert_false(gt->guard_fired);
    return &gt->held.calls[index];
}

/* Let the loop settle the ledger operations now queued. */
static void gt_settle(struct gt *gt, int n)
{
    for (int i = 0; i < n; i++)
        uv_run(&gt->lt.loop, UV_RUN_NOWAIT);
}

static void test_fair_queue_and_bounds(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.queue_max = 4, .user_queue = 2};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture a[4], b, c, busy;
    gt_submit(&gt, &a[0], "alice", PROVIDER_TEXT, "h", "a1");
    held_wait_call(&gt, 0);
    gt_submit(&gt, &a[1], "alice", PROVIDER_TEXT, "h", "a2");
    gt_submit(&gt, &a[2], "alice", PROVIDER_TEXT, "h", "a3");
    /* Wait until alice's second and third are queued. */
    while ((a[1].nprogress == 0 || a[2].nprogress == 0) && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    gt_submit(&gt, &b, "bob", PROVIDER_TEXT, "h", "b1");
    while (b.nprogress == 0 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    assert_has(&b, "position 3");
    gt_submit(&gt, &c, "carol", PROVIDER_TEXT, "h", "c1");
    while (c.nprogress == 0 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    /* The queue holds 4 now: the next is told to come back. */
    gt_submit(&gt, &busy, "dave", PROVIDER_TEXT, "h", "d1");
    gt_wait(&gt, &busy.finished, 1);
    assert_has(&busy, "busy");
    reply_capture_close(&busy);
    /* alice's fourth hits her own bound. */
    gt_submit(&gt, &a[3], "alice", PROVIDER_TEXT, "h", "a4");
    gt_wait(&gt, &a[3].finished, 1);
    assert_has(&a[3], "please wait");
    reply_capture_close(&a[3]);

    /* One at a time (max_concurrent 1): bob and carol come before alice's
     * second and third although they asked later. */
    const char *order[] = {"a1", "b1", "c1", "a2", "a3"};
    for (size_t i = 0; i < 5; i++) {
        struct provider_call *call = held_wait_call(&gt, i);
        assert_string_equal(call->last_prompt, order[i]);
        held_finish(call, 0, "fine", 5, 5);
    }
    gt_wait(&gt, &a[2].finished, 1);
    gt_wait(&gt, &c.finished, 1);
    for (size_t i = 0; i < 3; i++)
        reply_capture_close(&a[i]);
    reply_capture_close(&b);
    reply_capture_close(&c);
    gt_done(&gt);
}

static void test_limits_refuse_and_reset(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.user_per_hour = 1, .tokens_per_day = 50};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "one");
    held_finish(held_wait_call(&gt, 0), 0, "ok", 10, 10);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "h", "two");
    assert_has(&cap, "limit resets in 50 min");
    reply_capture_close(&cap);
    /* The next hour the member may ask again. */
    gt.wall += 60 * 60000;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "three");
    held_finish(held_wait_call(&gt, 1), 0, "ok", 20, 20);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "cost");
    reply_capture_close(&cap);
    /* 60 tokens today > 50: everyone waits for tomorrow. */
    gt_run(&gt, &cap, "u2", PROVIDER_TEXT, "h", "four");
    assert_has(&cap, "daily allowance of 50 tokens");
    reply_capture_close(&cap);
    gt.wall += 24 * 3600000LL;
    gt_submit(&gt, &cap, "u2", PROVIDER_TEXT, "h", "five");
    held_finish(held_wait_call(&gt, 2), 0, "ok", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "cost");
    reply_capture_close(&cap);
    /* Access: the private model is refused to others. */
    gt_run(&gt, &cap, "u2", PROVIDER_TEXT, "private", "x");
    assert_has(&cap, "may not use private");
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void gt_run_in_group(struct gt *gt, const char *user, const char *scope, size_t call_index);

/* A group's daily limit counts every member's generations there, refuses
 * with the reset time, leaves other groups and DMs alone, and resets at
 * midnight UTC. */
static void test_group_daily_limit(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.pool_per_day = 2, .user_per_hour = 100};
    gt_init(&gt, &l, NULL, 0, 0);
    gt_run_in_group(&gt, "a", "g1", 0);
    gt_run_in_group(&gt, "b", "g1", 1);
    struct reply_capture cap;
    const char *scopes[] = {"g1", "g2", NULL};
    for (size_t i = 0; i < 3; i++) {
        struct invocation inv;
        gt_inv(&inv, &cap, "c", scopes[i]);
        struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi", .model = "h"};
        generate_submit(gt.g, &inv, &req);
        if (i == 0) {
            gt_wait(&gt, &cap.finished, 1);
            assert_has(&cap, "This group has used its 2 generations for today");
            assert_has(&cap, "resets in 23 h 50 min");
        } else {
            held_finish(held_wait_call(&gt, i + 1), 0, "fine", 1, 1);
            gt_wait(&gt, &cap.finished, 1);
            assert_has(&cap, "fine");
        }
        reply_capture_close(&cap);
    }
    /* The next UTC day the group may generate again. */
    gt.wall += 24 * 3600000LL;
    gt_run_in_group(&gt, "a", "g1", 4);
    gt_done(&gt);
}

static void test_filter_block_and_redact(void **state)
{
    (void)state;
    static const char *const bad[] = {"forbidden"};
    struct filter_rule rules[] = {
        {.name = "badwords", .kind = FILTER_KIND_WORDS, .action = FILTER_ACTION_BLOCK,
         .words = bad, .nwords = 1},
        {.name = "emails", .kind = FILTER_KIND_EMAIL, .action = FILTER_ACTION_REDACT},
    };
    struct gt gt;
    gt_init(&gt, NULL, rules, 2, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "h", "say the forbidden word");
    assert_has(&cap, "refused by the content filter (rule badwords)");
    assert_int_equal(gt.held.ncalls, 0);
    reply_capture_close(&cap);
    /* A redacted prompt reaches the provider without the address. */
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "mail bob@example.com please");
    struct provider_call *call = held_wait_call(&gt, 0);
    assert_string_equal(call->last_prompt, "mail [email removed] please");
    held_finish(call, 0, "write to alice@example.org", 3, 3);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "write to [email removed]");
    reply_capture_close(&cap);
    /* A blocked output is withheld and not charged. */
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "go on");
    held_finish(held_wait_call(&gt, 1), 0, "here is the forbidden thing", 3, 3);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "withheld by the content filter");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    assert_int_equal(generate_filter_hits(gt.g, "badwords"), 2);
    assert_int_equal(generate_filter_hits(gt.g, "emails"), 2);
    gt_done(&gt);
}

static void test_conversation_memory(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "first");
    held_finish(held_wait_call(&gt, 0), 0, "answer one", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "second");
    struct provider_call *call = held_wait_call(&gt, 1);
    assert_int_equal(call->nmessages, 3); /* first, answer one, second */
    held_finish(call, 0, "answer two", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    snprintf(inv.user_id, sizeof(inv.user_id), "u1");
    snprintf(inv.channel_id, sizeof(inv.channel_id), "console");
    generate_conversation_reset(gt.g, &inv);
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "third");
    call = held_wait_call(&gt, 2);
    assert_int_equal(call->nmessages, 1);
    held_finish(call, 0, "answer three", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_not_enough_credits(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.welcome_bonus = 5; /* the estimate of "h" is 12 */
    struct reply_capture cap;
    gt_run(&gt, &cap, "poor", PROVIDER_TEXT, "h", "hello");
    assert_has(&cap, "Not enough credits");
    assert_has(&cap, "your balance is 5");
    assert_int_equal(gt.held.ncalls, 0);
    assert_int_equal(gt_balance(&gt, "poor"), 5);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* Run one held job for `user` in group `scope` and settle it. */
static void gt_run_in_group(struct gt *gt, const char *user, const char *scope, size_t call_index)
{
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, user, scope);
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi", .model = "h"};
    generate_submit(gt->g, &inv, &req);
    held_finish(held_wait_call(gt, call_index), 0, "fine", 5, 5);
    gt_wait(gt, &cap.finished, 1);
    assert_has(&cap, "fine");
    reply_capture_close(&cap);
}

static void pool_saved(int rc, const struct pool_settings *s, void *data)
{
    (void)s;
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

static void gt_pool_set(struct gt *gt, const char *pool, enum pool_policy policy, int64_t cap)
{
    int saved = 0;
    struct pool_settings s = {.policy = policy, .daily_cap = cap};
    assert_int_equal(pool_settings_put(&gt->core, pool, &s, pool_saved, &saved), 0);
    gt_wait(gt, &saved, 1);
}

static void test_pool_policy_chooses_payer(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct lt_res res;
    assert_int_equal(lt_open(&gt.lt, "pool:console:g1", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(lt_plain(&gt.lt, "fund", LEDGER_SYSTEM_GRANTS, "pool:console:g1", 1000,
                              LEDGER_KIND_GRANT, &res), 0);
    /* The default policy: the pool pays. */
    gt_run_in_group(&gt, "m", "g1", 0);
    int64_t cost = 1000 - lt_balance(&gt.lt, "pool:console:g1").posted;
    assert_true(cost > 0 && cost < 20);
    assert_int_equal(gt_balance(&gt, "m"), 100);
    /* Wallet first: the member pays. */
    gt_pool_set(&gt, "pool:console:g1", POOL_POLICY_WALLET_FIRST, 0);
    gt_run_in_group(&gt, "m", "g1", 1);
    assert_int_equal(gt_balance(&gt, "m"), 100 - cost);
    assert_int_equal(lt_balance(&gt.lt, "pool:console:g1").posted, 1000 - cost);
    /* Pool first, but the pool reached its daily cap: the member pays. */
    gt_pool_set(&gt, "pool:console:g1", POOL_POLICY_POOL_FIRST, cost);
    gt_run_in_group(&gt, "m", "g1", 2);
    assert_int_equal(gt_balance(&gt, "m"), 100 - 2 * cost);
    assert_int_equal(lt_balance(&gt.lt, "pool:console:g1").posted, 1000 - cost);
    /* A group whose pool was never funded: the member pays. */
    gt_run_in_group(&gt, "m", "g2", 3);
    assert_int_equal(gt_balance(&gt, "m"), 100 - 3 * cost);
    /* Wallet first with an empty wallet: the pool covers it. */
    gt_pool_set(&gt, "pool:console:g1", POOL_POLICY_WALLET_FIRST, 0);
    assert_int_equal(lt_plain(&gt.lt, "drain", "console:m", LEDGER_SYSTEM_GRANTS, 100 - 3 * cost,
                              LEDGER_KIND_REVERSAL, &res), 0);
    gt_run_in_group(&gt, "m", "g1", 4);
    assert_int_equal(lt_balance(&gt.lt, "pool:console:g1").posted, 1000 - 2 * cost);
    assert_int_equal(gt_balance(&gt, "m"), 0);
    assert_int_equal(lt_verify(gt.lt.path, NULL), 0);
    gt_done(&gt);
}

static const char *gt_model_switch(struct gt *gt, struct reply_capture *cap, const char *scope,
                                   const char *model, bool enable)
{
    struct invocation inv;
    gt_inv(&inv, cap, "admin", scope);
    inv.admin = true;
    inv.opts[0].set = true;
    inv.opts[0].type = COMMAND_OPT_STRING;
    inv.opts[0].string = strdup(model);
    if (enable)
        cmd_admin_model_enable(&gt->core, &inv);
    else
        cmd_admin_model_disable(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
    free(inv.opts[0].string);
    return cap->text != NULL ? cap->text : "";
}

static const char *gt_models(struct gt *gt, struct reply_capture *cap, const char *scope,
                             const char *button)
{
    struct invocation inv;
    gt_inv(&inv, cap, "m", scope);
    inv.spec = commands_find("models");
    if (button != NULL) {
        snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", button);
        cmd_models_button(&gt->core, &inv);
    } else {
        cmd_models(&gt->core, &inv);
    }
    gt_wait(gt, &cap->finished, 1);
    return cap->text != NULL ? cap->text : "";
}

static void test_group_model_switches(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    assert_non_null(strstr(gt_model_switch(&gt, &cap, NULL, "h", false), "run this there"));
    reply_capture_close(&cap);
    assert_non_null(strstr(gt_model_switch(&gt, &cap, "g1", "nosuch", false), "no model called"));
    reply_capture_close(&cap);
    assert_non_null(strstr(gt_model_switch(&gt, &cap, "g1", "h", false), "h is turned off in this group"));
    reply_capture_close(&cap);

    /* Refused in g1, still fine in g2. */
    const char *scopes[] = {"g1", "g2"};
    for (size_t i = 0; i < 2; i++) {
        struct invocation inv;
        gt_inv(&inv, &cap, "m", scopes[i]);
        struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi", .model = "h"};
        generate_submit(gt.g, &inv, &req);
        if (i == 0) {
            gt_wait(&gt, &cap.finished, 1);
            assert_has(&cap, "turned h off here");
            assert_int_equal(gt.held.ncalls, 0);
        } else {
            held_finish(held_wait_call(&gt, 0), 0, "fine", 5, 5);
            gt_wait(&gt, &cap.finished, 1);
            assert_has(&cap, "fine");
        }
        reply_capture_close(&cap);
    }
    /* /models in g1 leaves h out; in g2 it is there (h is on page 2). */
    const char *groups[] = {"g1", "g2"};
    for (size_t i = 0; i < 2; i++) {
        char next[COMMAND_BUTTON_REF_MAX + 1];
        bool seen = strstr(gt_models(&gt, &cap, groups[i], NULL), "\n  h (") != NULL;
        assert_true(cap.nbuttons >= 1);
        snprintf(next, sizeof(next), "%s", cap.buttons[cap.nbuttons - 1].ref);
        reply_capture_close(&cap);
        seen = seen || strstr(gt_models(&gt, &cap, groups[i], next), "\n  h (") != NULL;
        reply_capture_close(&cap);
        assert_int_equal(seen, i == 1);
    }
    assert_non_null(strstr(gt_model_switch(&gt, &cap, "g1", "h", true), "available in this group again"));
    reply_capture_close(&cap);
    gt_run_in_group(&gt, "m", "g1", 1);
    assert_int_equal(gt_balance(&gt, "m") < 100, 1);
    gt_done(&gt);
}

static const char *gt_stats(struct gt *gt, struct reply_capture *cap, const char *scope)
{
    struct invocation inv;
    gt_inv(&inv, cap, "admin", scope);
    inv.admin = true;
    cmd_admin_stats(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
    return cap->text != NULL ? cap->text : "";
}

static void test_admin_stats(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.clock = gt_clock;
    gt.core.clock_data = &gt;
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u", PROVIDER_TEXT, "h", "hello");
    held_finish(held_wait_call(&gt, 0), 0, "fine", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u", PROVIDER_TEXT, "nosuch", "hello");
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u", PROVIDER_TEXT, "allfail", "hello");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    const char *t = gt_stats(&gt, &cap, NULL);
    if (strstr(t, "Generations charged: 1;") == NULL || strstr(t, "Top models: h (1,") == NULL ||
        strstr(t, "Refused: model 1") == NULL || strstr(t, "by provider: fakeai 1") == NULL)
        fail_msg("unexpected stats:\n%s", t);
    reply_capture_close(&cap);
    /* The same outcomes reach /metrics. */
    assert_true(metrics_value(metrics_std()->generations, (const char *[]){"h", "completed"}) >= 1);
    assert_true(metrics_value(metrics_std()->generations, (const char *[]){"malformed", "failed"}) >= 1); /* its last fallback */
    t = gt_stats(&gt, &cap, "g1");
    assert_non_null(strstr(t, "This group's pool, last 7 days:\nGenerations charged: 0;"));
    assert_null(strstr(t, "Refused"));
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* /models pages with buttons that only their owner may press. */
static void test_models_pages(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_models(&gt, &cap, NULL, NULL);
    size_t listed = 0;
    for (const char *p = strstr(cap.text, "\n  "); p != NULL; p = strstr(p + 1, "\n  "))
        listed++;
    /* The test catalog has more usable models than a page holds. */
    assert_int_equal(listed, 6);
    assert_int_equal(cap.nbuttons, 1);
    assert_string_equal(cap.buttons[0].label, "Next");
    char next[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(next, sizeof(next), "%s", cap.buttons[0].ref);
    char *page1 = strdup(cap.text);
    reply_capture_close(&cap);
    const char *t = gt_models(&gt, &cap, NULL, next);
    assert_string_not_equal(t, page1);
    assert_string_equal(cap.buttons[0].label, "Previous");
    reply_capture_close(&cap);
    free(page1);
    gt_done(&gt);
}

static void test_close_voids_running_job(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "long job");
    struct provider_call *call = held_wait_call(&gt, 0);
    generate_close(gt.g, gt_closed, &gt);
    assert_true(call->cancelled);
    held_finish(call, HB_ECANCELED, NULL, -1, -1);
    while (gt.closed < 1 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    assert_has(&cap, "Nothing was charged");
    assert_int_equal(cap.finished, 1);
    gt_settle(&gt, 10);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    reply_capture_close(&cap);
    gt.closed = 0;
    http_client_close(gt.http, gt_closed, &gt);
    httpd_close(gt.srv, gt_closed, &gt);
    uv_close((uv_handle_t *)&gt.guard, NULL);
    while (gt.closed < 2)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    lt_done(&gt.lt);
}

struct recovered {
    int done;
    size_t voided;
};

static void recovered_cb(int rc, size_t voided, void *data)
{
    struct recovered *r = data;
    assert_int_equal(rc, 0);
    r->voided = voided;
    r->done++;
}

static void state_done(int rc, const char *value, void *data)
{
    (void)value;
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

/* What a crash leaves: a job record and its open reservation. A restart
 * voids it and the member hears of it with their next command. */
static void test_crash_restart_voids(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct lt_res res;
    assert_int_equal(lt_open(&gt.lt, "console:u1", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    assert_int_equal(lt_reserve(&gt.lt, "gen:crashed:1:r1", "console:u1", LEDGER_SYSTEM_REVENUE, 12,
                                600000, &res),
                     0);
    int stored = 0;
    assert_int_equal(state_put(ledger_store(gt.lt.ledger), "gen.job", "gen:crashed:1",
                               "console:u1 1", state_done, &stored),
                     0);
    gt_wait(&gt, &stored, 1);
    assert_int_equal(lt_balance(&gt.lt, "console:u1").pending_debits, 12);

    struct recovered rec = {0};
    assert_int_equal(generate_recover(gt.g, recovered_cb, &rec), 0);
    gt_wait(&gt, &rec.done, 1);
    assert_int_equal(rec.voided, 1);
    gt_settle(&gt, 10);
    assert_int_equal(gt_balance(&gt, "u1"), 100);

    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "hello again");
    held_finish(held_wait_call(&gt, 0), 0, "hi", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "interrupted when the bot restarted");
    reply_capture_close(&cap);

    /* A second recovery finds nothing left. */
    rec.done = 0;
    assert_int_equal(generate_recover(gt.g, recovered_cb, &rec), 0);
    gt_wait(&gt, &rec.done, 1);
    assert_int_equal(rec.voided, 0);
    gt_done(&gt);
}

static int gt_group_setup(void **state)
{
    http_global_init();
    return lt_group_setup(state);
}

static const struct CMUnitTest provider_tests[] = {
    cmocka_unit_test(test_openai_stream_settles_by_usage),
    cmocka_unit_test(test_anthropic_stream),
    cmocka_unit_test(test_midstream_error_falls_back),
    cmocka_unit_test(test_timeout_refunds),
    cmocka_unit_test(test_429_retry_after_honoured),
    cmocka_unit_test(test_429_bad_retry_after_ms),
    cmocka_unit_test(test_retry_after_forms),
    cmocka_unit_test(test_bad_key_fails_fast),
    cmocka_unit_test(test_malformed_and_truncated_streams),
    cmocka_unit_test(test_images_b64_url_and_limit),
    cmocka_unit_test(test_image_buttons),
    cmocka_unit_test(test_leaderboard_counts_upvotes),
};

static const struct CMUnitTest generate_tests[] = {
    cmocka_unit_test(test_fair_queue_and_bounds),
    cmocka_unit_test(test_limits_refuse_and_reset),
    cmocka_unit_test(test_group_daily_limit),
    cmocka_unit_test(test_filter_block_and_redact),
    cmocka_unit_test(test_conversation_memory),
    cmocka_unit_test(test_not_enough_credits),
    cmocka_unit_test(test_pool_policy_chooses_payer),
    cmocka_unit_test(test_group_model_switches),
    cmocka_unit_test(test_models_pages),
    cmocka_unit_test(test_admin_stats),
    cmocka_unit_test(test_close_voids_running_job),
    cmocka_unit_test(test_crash_restart_voids),
};

TEST_GROUP_DEFINE(providers, provider_tests, gt_group_setup, lt_group_teardown)
TEST_GROUP_DEFINE(generate, generate_tests, gt_group_setup, lt_group_teardown)
