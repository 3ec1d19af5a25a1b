/* The fixture of the generation engine's tests (tests/core/test_generate.h):
 * the held provider, the engine on a real ledger, and the fake
 * OpenAI-compatible and Anthropic servers. */
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include "adapters/anthropic/anthropic.h"
#include "adapters/openai/openai.h"
#include "core/ledger.h"
#include "core/pool.h"
#include "core/state.h"
#include "net/http.h"
#include "base/error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a held provider: the test decides when each call speaks ---------- */

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
    c->nimages = req->nimages;
    if (req->nimages > 0) {
        snprintf(c->image_mime, sizeof(c->image_mime), "%s", req->images[0].mime);
        c->image_len = req->images[0].len;
        memcpy(c->image_head, req->images[0].data,
               req->images[0].len < sizeof(c->image_head) ? req->images[0].len
                                                          : sizeof(c->image_head));
    }
    snprintf(c->model, sizeof(c->model), "%s", req->model);
    if (req->nmessages > 0) {
        snprintf(c->last_prompt, sizeof(c->last_prompt), "%s",
                 req->messages[req->nmessages - 1].content);
        snprintf(c->first_prompt, sizeof(c->first_prompt), "%s", req->messages[0].content);
    }
    *out = c;
    return 0;
}

void held_finish(struct provider_call *c, int rc, const char *text, long in, long out)
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

int64_t gt_clock(void *data)
{
    return ((struct gt *)data)->wall;
}

static void gt_guard(uv_timer_t *t)
{
    struct gt *gt = t->data;
    gt->guard_fired = true;
}

void gt_closed(void *data)
{
    ((struct gt *)data)->closed++;
}

static void server_handler(struct httpd_response *res, const struct httpd_request *req, void *data);

/* Personas (core/persona.h): none is in use unless a test chooses one. */
static const char *const pirate_stop[] = {"ARR"};
static const char *const quiet_words[] = {"treasure"};
const struct catalog_persona_spec gt_personas[GT_NPERSONAS] = {
    {.name = "pirate",
     .description = "Talks like a pirate",
     .system_prompt = "Arr, {user} of {server}, {date}, {model}.",
     .temperature_set = true,
     .temperature = 0.9,
     .max_tokens = 50,
     .stop = pirate_stop,
     .nstop = 1,
     .extra_body = "{\"reasoning_effort\":\"high\",\"seed\":7}"},
    {.name = "quiet",
     .description = "Never speaks of treasure",
     .system_prompt = "Say little.",
     .forbidden = quiet_words,
     .nforbidden = 1,
     .show_prompt = true},
    {.name = "vip", .description = "For the boss", .allow = "console:boss", .model = "h2"},
    {.name = "careful",
     .description = "Checked by an admin",
     .system_prompt = "Be careful.",
     .allow = "console:gus",
     .approval = true},
};

/* An OpenAI-compatible and an Anthropic provider on the fake server, the
 * held provider, and models on each. */
void gt_init(struct gt *gt, const struct catalog_limits *limits, const struct filter_rule *rules,
             size_t nrules, size_t max_image_bytes)
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
    struct provider_settings as = {
        .name = "fakeanthropic", .base_url = base, .api_key = "ak-test-987654"};
    struct catalog_provider_spec ps[] = {
        {.name = "fakeai",
         .provider = openai_provider_new(gt->http, &os),
         .timeout_ms = 2000,
         .max_concurrent = 4},
        {.name = "fakeanthropic",
         .provider = anthropic_provider_new(gt->http, &as),
         .timeout_ms = 2000,
         .max_concurrent = 4},
        {.name = "held", .provider = &gt->held.provider, .timeout_ms = 60000, .max_concurrent = 1},
    };
    static const char *const tuned_stop[] = {"END"};
#define M(n, prov, fb)                                                                             \
    {                                                                                              \
        .name = n, .provider = prov, .modality = PROVIDER_TEXT, .price_request = 1,                \
        .price_input_1k = 100, .price_output_1k = 100, .max_output_tokens = 100, .fallbacks = fb,  \
        .enabled = true                                                                            \
    }
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
        /* "h" also sees images: a held turn may carry one. */
        {.name = "h",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .price_input_1k = 100,
         .price_output_1k = 100,
         .max_output_tokens = 100,
         .enabled = true,
         .vision = true},
        M("h2", "held", NULL),
        {.name = "img-b64",
         .provider = "fakeai",
         .modality = PROVIDER_IMAGE,
         .price_request = 7,
         .sizes = "256x256",
         .enabled = true},
        {.name = "img-url",
         .provider = "fakeai",
         .modality = PROVIDER_IMAGE,
         .price_request = 7,
         .sizes = "256x256",
         .enabled = true},
        {.name = "img-big",
         .provider = "fakeai",
         .modality = PROVIDER_IMAGE,
         .price_request = 7,
         .sizes = "256x256",
         .enabled = true},
        {.name = "private",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .allow = "console:boss",
         .enabled = true},
        /* Last, so the /models pages of the models above stay as they were. */
        M("rlmid", "fakeai", NULL),
        M("keymid", "fakeai", NULL),
        /* A fallback that may use ten times the tokens of the model asked for. */
        {.name = "hfb",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 100,
         .fallbacks = "hbig",
         .enabled = true},
        {.name = "hbig",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 1000,
         .enabled = true},
        /* A fallback dearer in credits than the model asked for. */
        {.name = "hcheap",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 100,
         .fallbacks = "hdear",
         .enabled = true},
        {.name = "hdear",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .price_request = 40,
         .max_output_tokens = 100,
         .enabled = true},
        /* Generation parameters, carried from the catalog to the wire. */
        {.name = "tuned",
         .provider = "fakeai",
         .upstream = "ok",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 100,
         .enabled = true,
         .system_prompt = "Be brief.",
         .temperature_set = true,
         .temperature = 0.5,
         .stop = tuned_stop,
         .nstop = 1,
         .extra_body = "{\"reasoning_effort\":\"low\"}",
         .max_tokens_field = PROVIDER_MAX_COMPLETION_TOKENS},
        {.name = "tunedc",
         .provider = "fakeanthropic",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 100,
         .enabled = true,
         .system_prompt = "Be brief.",
         .top_p_set = true,
         .top_p = 0.5},
        /* Free: nothing to reserve. */
        {.name = "hfree",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .max_output_tokens = 100,
         .enabled = true},
    };
#undef M
    struct catalog_spec spec = {.providers = ps,
                                .nproviders = 3,
                                .models = ms,
                                .nmodels = sizeof(ms) / sizeof(ms[0]),
                                .filter_rules = rules,
                                .nfilter_rules = nrules,
                                .personas = gt_personas,
                                .npersonas = GT_NPERSONAS};
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
    struct generate_options opts = {.clock = {.now_ms = gt_clock, .data = gt}};
    gt->g = generate_new(&gt->lt.loop, &gt->core, cat, &opts);
    catalog_unref(cat);
    assert_non_null(gt->g);
    gt->core.generate = gt->g;
}

void gt_done(struct gt *gt)
{
    generate_close(gt->g, gt_closed, gt);
    http_client_close(gt->http, gt_closed, gt);
    httpd_close(gt->srv, gt_closed, gt);
    uv_close((uv_handle_t *)&gt->guard, NULL);
    while (gt->closed < 3)
        uv_run(&gt->lt.loop, UV_RUN_ONCE);
    lt_done(&gt->lt);
}

void gt_restart(struct gt *gt)
{
    struct catalog *cat = generate_catalog(gt->g);
    catalog_ref(cat);
    int closed = gt->closed;
    generate_close(gt->g, gt_closed, gt);
    gt_wait(gt, &gt->closed, closed + 1);
    gt->closed = closed;
    lt_ledger_close(&gt->lt);
    lt_ledger_open(&gt->lt);
    gt->core.ledger = gt->lt.ledger;
    struct generate_options opts = {.clock = {.now_ms = gt_clock, .data = gt}};
    gt->g = generate_new(&gt->lt.loop, &gt->core, cat, &opts);
    assert_non_null(gt->g);
    gt->core.generate = gt->g;
    catalog_unref(cat);
}

void gt_wait(struct gt *gt, const int *flag, int want)
{
    while (*flag < want && !gt->guard_fired)
        uv_run(&gt->lt.loop, UV_RUN_ONCE);
    assert_false(gt->guard_fired);
}

/* A console invocation from user, in group scope (NULL: a DM), answering
 * into cap, with a fresh event id. */
void gt_inv(struct invocation *inv, struct reply_capture *cap, const char *user, const char *scope)
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

void gt_inv_png(struct invocation *inv, const unsigned char *png, size_t len)
{
    inv->image = calloc(1, sizeof(*inv->image));
    assert_non_null(inv->image);
    inv->image->data = malloc(len);
    assert_non_null(inv->image->data);
    memcpy(inv->image->data, png, len);
    inv->image->len = len;
    snprintf(inv->image->mime, sizeof(inv->image->mime), "image/png");
}

void gt_submit(struct gt *gt, struct reply_capture *cap, const char *user,
               enum provider_modality modality, const char *model, const char *prompt)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, NULL);
    struct generate_request req = {.modality = modality, .prompt = prompt, .model = model};
    generate_submit(gt->g, &inv, &req);
}

/* Submit and wait for the final reply. */
void gt_run(struct gt *gt, struct reply_capture *cap, const char *user,
            enum provider_modality modality, const char *model, const char *prompt)
{
    gt_submit(gt, cap, user, modality, model, prompt);
    gt_wait(gt, &cap->finished, 1);
}

int64_t gt_balance(struct gt *gt, const char *user)
{
    char acct[128];
    snprintf(acct, sizeof(acct), "console:%s", user);
    struct ledger_balance b = lt_balance(&gt->lt, acct);
    assert_int_equal(b.pending_debits, 0); /* nothing left reserved */
    return b.posted;
}

void assert_has(const struct reply_capture *cap, const char *needle)
{
    if (cap->text == NULL || strstr(cap->text, needle) == NULL)
        fail_msg("reply lacks \"%s\":\n%s", needle, cap->text != NULL ? cap->text : "(none)");
}

/* ---- the fake servers --------------------------------------------------- */

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
    "data: "
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"world\"},\"finish_reason\":null}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: "
    "{\"choices\":null,\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20,\"total_tokens\":"
    "30}}\n\n",
    "data: [DONE]\n\n",
    NULL};

static void openai_chat(struct gt *gt, struct httpd_response *res, const char *model)
{
    if (strcmp(model, "ok") == 0) {
        send_sse(res, openai_ok);
    } else if (strcmp(model, "midstream") == 0) {
        static const char *const ev[] = {
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"The server had an "
            "error\",\"type\":\"server_error\"}}\n\n",
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
    } else if (strcmp(model, "rlmid") == 0) {
        /* OpenAI's rate-limit error inside a 200 stream, once. */
        static const char *const ev[] = {
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"Rate limit reached for requests\",\"type\":"
            "\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}\n\n",
            NULL};
        send_sse(res, gt->tries_rl_mid++ == 0 ? ev : openai_ok);
    } else if (strcmp(model, "keymid") == 0) {
        /* The key refused inside a 200 stream. */
        static const char *const ev[] = {
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"Incorrect API key provided\",\"type\":"
            "\"invalid_request_error\",\"param\":null,\"code\":\"invalid_api_key\"}}\n\n",
            NULL};
        gt->tries_key_mid++;
        send_sse(res, ev);
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
    "event: message_start\ndata: "
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
    "\"assistant\",\"content\":[],\"model\":\"claude\",\"usage\":{\"input_tokens\":10,\"output_"
    "tokens\":1}}}\n\n",
    "event: content_block_start\ndata: "
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":"
    "\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: "
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
    "\"Bonjour\"}}\n\n",
    "event: content_block_delta\ndata: "
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" "
    "le monde\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: "
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":20}}\n\n",
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
    char *compact = body != NULL ? cJSON_PrintUnformatted(body) : NULL;
    snprintf(gt->seen_body, sizeof(gt->seen_body), "%s", compact != NULL ? compact : "");
    free(compact);
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
            static const char *const ev[] = {"event: error\ndata: "
                                             "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_"
                                             "error\",\"message\":\"Overloaded\"}}\n\n",
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

/* ---- waiting on the held provider ------------------------------------------ */

struct provider_call *held_wait_call(struct gt *gt, size_t index)
{
    while (gt->held.ncalls <= index && !gt->guard_fired)
        uv_run(&gt->lt.loop, UV_RUN_ONCE);
    assert_false(gt->guard_fired);
    return &gt->held.calls[index];
}

void gt_settle(struct gt *gt, int n)
{
    for (int i = 0; i < n; i++)
        uv_run(&gt->lt.loop, UV_RUN_NOWAIT);
}

/* Run one held job for `user` in group `scope` and settle it. */
void gt_run_in_group(struct gt *gt, const char *user, const char *scope, size_t call_index)
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

int gt_group_setup(void **state)
{
    http_global_init();
    return lt_group_setup(state);
}

void gt_recovered_cb(int rc, size_t voided, void *data)
{
    struct gt_recovered *r = data;
    assert_int_equal(rc, 0);
    r->voided = voided;
    r->done++;
}

void gt_state_done(int rc, const char *value, void *data)
{
    (void)value;
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

void gt_crashed(struct gt *gt, const char *record)
{
    struct lt_res res;
    assert_int_equal(lt_open(&gt->lt, "console:u1", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    assert_int_equal(lt_reserve(&gt->lt, "gen:crashed:1:r1", "console:u1", LEDGER_SYSTEM_REVENUE,
                                12, 600000, &res),
                     0);
    int stored = 0;
    assert_int_equal(state_put(ledger_store(gt->lt.ledger), "gen.job", "gen:crashed:1", record,
                               gt_state_done, &stored),
                     0);
    gt_wait(gt, &stored, 1);
}

static void gt__pool_saved(int rc, const struct pool_settings *s, void *data)
{
    (void)s;
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

void gt_pool_set(struct gt *gt, const char *pool, enum pool_policy policy, int64_t cap)
{
    int saved = 0;
    struct pool_settings s = {.policy = policy, .daily_cap = cap};
    assert_int_equal(pool_settings_put(&gt->core, pool, &s, gt__pool_saved, &saved), 0);
    gt_wait(gt, &saved, 1);
}

void gt_pool_fund(struct gt *gt, const char *pool, int64_t amount)
{
    struct lt_res res;
    assert_int_equal(lt_open(&gt->lt, pool, LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(
        lt_plain(&gt->lt, "fund", LEDGER_SYSTEM_GRANTS, pool, amount, LEDGER_KIND_GRANT, &res), 0);
}
