/* Generation parameters on the wire: the exact bodies the OpenAI-compatible
 * and the Anthropic providers send to a fake server (system prompt
 * placement, temperature, top_p, stop, extra_body merged without touching
 * what the engine decides), and max_tokens against a fake that, as OpenAI
 * does for its reasoning and GPT-5 models, refuses the wrong cap key with
 * HTTP 400 unsupported_parameter. */
#include "tests/test.h"

#include "adapters/anthropic/anthropic.h"
#include "adapters/openai/openai.h"
#include "base/error.h"
#include "net/http.h"
#include "tests/fake/httpd.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct pt {
    uv_loop_t loop;
    struct http_client *http;
    struct httpd *srv;
    struct provider *openai;
    struct provider *anthropic;
    char *body;     /* the last request's body, re-printed compactly */
    char text[256]; /* streamed text of the last call */
    struct provider_result res;
    char error[256];
    int done;
    int closed;
};

static const char *const openai_ok = "data: "
                                     "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},"
                                     "\"finish_reason\":\"stop\"}]}\n\n"
                                     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
                                     "\"completion_tokens\":1}}\n\n"
                                     "data: [DONE]\n\n";

static const char *const anthropic_ok =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
    "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\","
    "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/* As OpenAI: o-series and GPT-5 models refuse max_tokens, and the fake
 * refuses max_completion_tokens from every other model so that a wrong
 * guess either way shows. */
static bool pt_newer(const char *model)
{
    return strncmp(model, "o1", 2) == 0 || strncmp(model, "o3", 2) == 0 ||
           strncmp(model, "o4", 2) == 0 || strncmp(model, "gpt-5", 5) == 0;
}

static void pt_handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    struct pt *pt = data;
    cJSON *json = cJSON_ParseWithLength(req->body, req->body_len);
    free(pt->body);
    pt->body = json != NULL ? cJSON_PrintUnformatted(json) : strdup("(not JSON)");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(json, "model");
    const char *m = cJSON_IsString(model) ? model->valuestring : "";
    if (strcmp(req->target, "/v1/chat/completions") == 0) {
        const char *wrong = pt_newer(m) ? "max_tokens" : "max_completion_tokens";
        if (cJSON_GetObjectItemCaseSensitive(json, wrong) != NULL) {
            char err[512];
            snprintf(err, sizeof(err),
                     "{\"error\":{\"message\":\"Unsupported parameter: '%s' is not supported "
                     "with this model.\",\"type\":\"invalid_request_error\",\"param\":\"%s\","
                     "\"code\":\"unsupported_parameter\"}}",
                     wrong, wrong);
            httpd_response_send(res, 400, "application/json", err, strlen(err));
        } else {
            httpd_response_send(res, 200, "text/event-stream", openai_ok, strlen(openai_ok));
        }
    } else if (strcmp(req->target, "/v1/messages") == 0) {
        httpd_response_send(res, 200, "text/event-stream", anthropic_ok, strlen(anthropic_ok));
    } else {
        httpd_response_send(res, 404, "application/json", "{}", 2);
    }
    cJSON_Delete(json);
}

static void pt_on_text(void *data, const char *delta, size_t len)
{
    struct pt *pt = data;
    size_t have = strlen(pt->text);
    if (have + len < sizeof(pt->text)) {
        memcpy(pt->text + have, delta, len);
        pt->text[have + len] = '\0';
    }
}

static void pt_on_usage(void *data, long in, long out)
{
    (void)data;
    (void)in;
    (void)out;
}

static void pt_on_done(void *data, const struct provider_result *res)
{
    struct pt *pt = data;
    pt->res = *res;
    snprintf(pt->error, sizeof(pt->error), "%s", res->error != NULL ? res->error : "");
    pt->res.error = pt->error;
    pt->done++;
}

static void pt_closed(void *data)
{
    ((struct pt *)data)->closed++;
}

static int pt_setup(void **state)
{
    http_global_init();
    struct pt *pt = calloc(1, sizeof(*pt));
    assert_non_null(pt);
    assert_int_equal(uv_loop_init(&pt->loop), 0);
    assert_int_equal(http_client_new(&pt->loop, NULL, &pt->http), 0);
    pt->srv = httpd_new(&pt->loop, pt_handler, pt);
    assert_non_null(pt->srv);
    char base[128];
    snprintf(base, sizeof(base), "%s/v1", httpd_base_url(pt->srv));
    struct provider_settings s = {.name = "fake", .base_url = base, .api_key = "k"};
    pt->openai = openai_provider_new(pt->http, &s);
    pt->anthropic = anthropic_provider_new(pt->http, &s);
    assert_non_null(pt->openai);
    assert_non_null(pt->anthropic);
    *state = pt;
    return 0;
}

static int pt_teardown(void **state)
{
    struct pt *pt = *state;
    pt->openai->ops->free(pt->openai);
    pt->anthropic->ops->free(pt->anthropic);
    http_client_close(pt->http, pt_closed, pt);
    httpd_close(pt->srv, pt_closed, pt);
    while (pt->closed < 2)
        uv_run(&pt->loop, UV_RUN_ONCE);
    assert_int_equal(uv_loop_close(&pt->loop), 0);
    free(pt->body);
    free(pt);
    return 0;
}

/* Run one request to its end; the body the fake saw is in pt->body. */
static void pt_run(struct pt *pt, struct provider *p, const struct provider_request *req)
{
    static const struct provider_events ev = {
        .text = pt_on_text, .usage = pt_on_usage, .done = pt_on_done};
    pt->done = 0;
    pt->text[0] = '\0';
    free(pt->body);
    pt->body = NULL;
    struct provider_call *call = NULL;
    assert_int_equal(p->ops->start(p, req, &ev, pt, &call), 0);
    while (pt->done == 0)
        uv_run(&pt->loop, UV_RUN_ONCE);
    assert_non_null(pt->body);
}

static const struct provider_message convo[] = {
    {.role = "user", .content = "hi"},
    {.role = "assistant", .content = "hello"},
    {.role = "user", .content = "again"},
};

/* Nothing set: the body is what it always was. */
static void test_openai_plain_body(void **state)
{
    struct pt *pt = *state;
    struct provider_request req = {.model = "gpt-4o-mini",
                                   .messages = convo,
                                   .nmessages = 3,
                                   .max_output_tokens = 100,
                                   .timeout_ms = 5000};
    pt_run(pt, pt->openai, &req);
    assert_int_equal(pt->res.rc, 0);
    assert_string_equal(pt->text, "ok");
    assert_string_equal(pt->body,
                        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":"
                        "\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"},{\"role\":"
                        "\"user\",\"content\":\"again\"}],\"stream\":true,\"stream_options\":{"
                        "\"include_usage\":true},\"max_tokens\":100}");
}

/* Every parameter set: the system prompt first, then the conversation;
 * extra_body adds its keys, replaces the bot's temperature, and leaves
 * model, messages and stream alone. */
static void test_openai_full_body(void **state)
{
    struct pt *pt = *state;
    static const char *const stop[] = {"END", "\n\nUser:"};
    struct provider_request req = {
        .model = "gpt-4o-mini",
        .messages = convo,
        .nmessages = 1,
        .max_output_tokens = 50,
        .timeout_ms = 5000,
        .system = "Be brief.",
        .temperature_set = true,
        .temperature = 0.5,
        .top_p_set = true,
        .top_p = 0.25,
        .stop = stop,
        .nstop = 2,
        .extra_body = "{\"model\":\"evil\",\"messages\":[],\"stream\":false,\"top_k\":20,"
                      "\"provider\":{\"order\":[\"groq\"]},\"temperature\":0}",
    };
    pt_run(pt, pt->openai, &req);
    assert_int_equal(pt->res.rc, 0);
    assert_string_equal(pt->body,
                        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":"
                        "\"Be brief.\"},{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,"
                        "\"stream_options\":{\"include_usage\":true},\"max_tokens\":50,\"top_p\":"
                        "0.25,\"stop\":[\"END\",\"\\n\\nUser:\"],\"top_k\":20,\"provider\":{"
                        "\"order\":[\"groq\"]},\"temperature\":0}");
}

/* The cap's key: auto picks max_completion_tokens for o-series and GPT-5
 * ids, which the fake (as OpenAI) requires; forcing the wrong key gets the
 * 400 unsupported_parameter, reported as a request the operator must fix. */
static void test_openai_max_tokens_field(void **state)
{
    struct pt *pt = *state;
    static const char *const newer[] = {"o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini"};
    for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++) {
        struct provider_request req = {.model = newer[i],
                                       .messages = convo,
                                       .nmessages = 1,
                                       .max_output_tokens = 64,
                                       .timeout_ms = 5000};
        pt_run(pt, pt->openai, &req);
        assert_int_equal(pt->res.rc, 0);
        assert_non_null(strstr(pt->body, "\"max_completion_tokens\":64"));
        assert_null(strstr(pt->body, "\"max_tokens\""));
    }
    static const char *const older[] = {"gpt-4o", "gpt-4.1-mini", "llama3", "openai/o3"};
    for (size_t i = 0; i < sizeof(older) / sizeof(older[0]); i++) {
        struct provider_request req = {.model = older[i],
                                       .messages = convo,
                                       .nmessages = 1,
                                       .max_output_tokens = 64,
                                       .timeout_ms = 5000};
        pt_run(pt, pt->openai, &req);
        assert_null(strstr(pt->body, "max_completion_tokens"));
        assert_non_null(strstr(pt->body, "\"max_tokens\":64"));
    }

    /* Forced the wrong way, the fake refuses as OpenAI does. */
    struct provider_request req = {.model = "o3-mini",
                                   .messages = convo,
                                   .nmessages = 1,
                                   .max_output_tokens = 64,
                                   .timeout_ms = 5000,
                                   .max_tokens_field = PROVIDER_MAX_TOKENS};
    pt_run(pt, pt->openai, &req);
    assert_int_equal(pt->res.rc, HB_EHTTP);
    assert_int_equal(pt->res.http_status, 400);
    assert_false(pt->res.retryable);
    assert_non_null(strstr(pt->res.error, "Unsupported parameter: 'max_tokens'"));
    req.max_tokens_field = PROVIDER_MAX_COMPLETION_TOKENS;
    pt_run(pt, pt->openai, &req);
    assert_int_equal(pt->res.rc, 0);

    /* Forced for a model the auto rule would not know (a gateway's id). */
    req.model = "openai/gpt-5";
    req.max_tokens_field = PROVIDER_MAX_TOKENS_AUTO;
    assert_string_equal(openai_max_tokens_key(req.max_tokens_field, req.model), "max_tokens");
    req.max_tokens_field = PROVIDER_MAX_COMPLETION_TOKENS;
    assert_string_equal(openai_max_tokens_key(req.max_tokens_field, req.model),
                        "max_completion_tokens");
    req.model = "gpt-5";
    req.max_tokens_field = PROVIDER_MAX_TOKENS;
    pt_run(pt, pt->openai, &req);
    assert_int_equal(pt->res.http_status, 400);
}

/* Anthropic: the system prompt is the top-level "system" field, never a
 * message; stop sequences are "stop_sequences"; extra_body cannot replace
 * the system prompt. */
static void test_anthropic_bodies(void **state)
{
    struct pt *pt = *state;
    struct provider_request req = {.model = "claude-x",
                                   .messages = convo,
                                   .nmessages = 2,
                                   .max_output_tokens = 300,
                                   .timeout_ms = 5000};
    pt_run(pt, pt->anthropic, &req);
    assert_int_equal(pt->res.rc, 0);
    assert_string_equal(pt->text, "ok");
    assert_string_equal(pt->body,
                        "{\"model\":\"claude-x\",\"max_tokens\":300,\"stream\":true,\"messages\":"
                        "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
                        "\"content\":\"hello\"}]}");

    static const char *const stop[] = {"END"};
    req.system = "You are terse.";
    req.temperature_set = true;
    req.temperature = 0;
    req.stop = stop;
    req.nstop = 1;
    req.max_tokens_field = PROVIDER_MAX_COMPLETION_TOKENS; /* never for Anthropic */
    req.extra_body = "{\"system\":\"other\",\"thinking\":{\"type\":\"enabled\","
                     "\"budget_tokens\":1024},\"max_tokens\":2048}";
    pt_run(pt, pt->anthropic, &req);
    assert_int_equal(pt->res.rc, 0);
    assert_string_equal(pt->body,
                        "{\"model\":\"claude-x\",\"stream\":true,\"system\":\"You are terse.\","
                        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":"
                        "\"assistant\",\"content\":\"hello\"}],\"temperature\":0,"
                        "\"stop_sequences\":[\"END\"],\"thinking\":{\"type\":\"enabled\","
                        "\"budget_tokens\":1024},\"max_tokens\":2048}");
}

static const unsigned char png16[] = {0x89, 'P',  'N',  'G',  '\r', '\n', 0x1a, '\n',
                                      0x00, 0x00, 0x00, '\r', 'I',  'H',  'D',  'R'};

/* An image with the prompt: only the last message becomes a content array,
 * its text part first, then the image as a data URI (OpenAI's image_url);
 * the earlier turns stay plain strings. */
static void test_openai_image_body(void **state)
{
    struct pt *pt = *state;
    const struct provider_image img = {.data = png16, .len = sizeof(png16), .mime = "image/png"};
    struct provider_request req = {.model = "gpt-4o",
                                   .messages = convo,
                                   .nmessages = 3,
                                   .max_output_tokens = 100,
                                   .timeout_ms = 5000,
                                   .system = "Be brief.",
                                   .images = &img,
                                   .nimages = 1};
    pt_run(pt, pt->openai, &req);
    assert_int_equal(pt->res.rc, 0);
    assert_string_equal(pt->text, "ok");
    assert_string_equal(
        pt->body,
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":"
        "\"hello\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"again\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUg==\"}}]}],\"stream\":true,\"stream_options\":{"
        "\"include_usage\":true},\"max_tokens\":100}");
}

/* Anthropic: the image block (base64 source with its media type) before
 * the text block, in the last message only. */
static void test_anthropic_image_body(void **state)
{
    struct pt *pt = *state;
    static const unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 'J', 'F', 'I', 'F'};
    const struct provider_image img = {.data = jpeg, .len = sizeof(jpeg), .mime = "image/jpeg"};
    struct provider_request req = {.model = "claude-x",
                                   .messages = convo,
                                   .nmessages = 3,
                                   .max_output_tokens = 300,
                                   .timeout_ms = 5000,
                                   .system = "You are terse.",
                                   .images = &img,
                                   .nimages = 1};
    pt_run(pt, pt->anthropic, &req);
    assert_int_equal(pt->res.rc, 0);
    assert_string_equal(pt->text, "ok");
    assert_string_equal(
        pt->body,
        "{\"model\":\"claude-x\",\"max_tokens\":300,\"stream\":true,\"system\":"
        "\"You are terse.\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":"
        "\"assistant\",\"content\":\"hello\"},{\"role\":\"user\",\"content\":[{\"type\":"
        "\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":"
        "\"/9j/4EpGSUY=\"}},{\"type\":\"text\",\"text\":\"again\"}]}]}");
}

/* extra_body that is not a JSON object (the config refuses it; a caller
 * bypassing the config still gets no request sent). */
static void test_extra_body_refused(void **state)
{
    struct pt *pt = *state;
    struct provider_request req = {.model = "gpt-4o",
                                   .messages = convo,
                                   .nmessages = 1,
                                   .max_output_tokens = 10,
                                   .timeout_ms = 5000,
                                   .extra_body = "[1, 2]"};
    struct provider_call *call = NULL;
    static const struct provider_events ev = {
        .text = pt_on_text, .usage = pt_on_usage, .done = pt_on_done};
    assert_int_not_equal(pt->openai->ops->start(pt->openai, &req, &ev, pt, &call), 0);
    assert_int_not_equal(pt->anthropic->ops->start(pt->anthropic, &req, &ev, pt, &call), 0);
    req.extra_body = "{\"a\":";
    assert_int_not_equal(pt->openai->ops->start(pt->openai, &req, &ev, pt, &call), 0);
    uv_run(&pt->loop, UV_RUN_NOWAIT);
    assert_int_equal(pt->done, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_openai_plain_body, pt_setup, pt_teardown),
    cmocka_unit_test_setup_teardown(test_openai_full_body, pt_setup, pt_teardown),
    cmocka_unit_test_setup_teardown(test_openai_max_tokens_field, pt_setup, pt_teardown),
    cmocka_unit_test_setup_teardown(test_anthropic_bodies, pt_setup, pt_teardown),
    cmocka_unit_test_setup_teardown(test_extra_body_refused, pt_setup, pt_teardown),
    cmocka_unit_test_setup_teardown(test_openai_image_body, pt_setup, pt_teardown),
    cmocka_unit_test_setup_teardown(test_anthropic_image_body, pt_setup, pt_teardown),
};

TEST_GROUP_DEFINE(llm_params, tests, NULL, NULL)
