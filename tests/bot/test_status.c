/* /healthz and /metrics: the exposition format line by line, the bearer
 * token, and /healthz turning 503 when storage is gone. */
#include "net/server.h"
#include "bot/status.h"
#include "base/error.h"
#include "base/metrics.h"
#include "tests/bot/tcall.h"
#include "tests/core/ledger_helpers.h"
#include "tests/test.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stfx {
    struct lt lt;
    struct server *srv;
    struct status *st;
    struct http_client *client;
    char base[64];
};

static void stfx_open(struct stfx *fx, const char *token)
{
    memset(fx, 0, sizeof(*fx));
    lt_init(&fx->lt, true, false);
    fx->srv = server_new(&fx->lt.loop, NULL);
    assert_non_null(fx->srv);
    snprintf(fx->base, sizeof(fx->base), "http://127.0.0.1:%d", server_port(fx->srv));
    struct status_options o = {.metrics_token = token,
                               .storage_probe = status_probe_ledger,
                               .storage_probe_data = &fx->lt.ledger};
    fx->st = status_new(fx->srv, &o);
    assert_non_null(fx->st);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&fx->lt.loop, NULL, &fx->client), 0);
}

static void stfx_close(struct stfx *fx)
{
    if (fx->lt.ledger != NULL)
        lt_ledger_close(&fx->lt);
    http_client_close(fx->client, NULL, NULL);
    server_stop(fx->srv);
    uv_run(&fx->lt.loop, UV_RUN_DEFAULT);
    server_free(fx->srv);
    status_free(fx->st);
    assert_int_equal(uv_loop_close(&fx->lt.loop), 0);
    test_tmpdir_remove(fx->lt.dir);
    free(fx->lt.dir);
}

static void stfx_get(struct stfx *fx, const char *path, const char *auth, struct tcall *c)
{
    char u[128];
    snprintf(u, sizeof(u), "%s%s", fx->base, path);
    const char *h[] = {"Authorization", auth, NULL};
    tcall_do(&fx->lt.loop, fx->client, "GET", u, auth != NULL ? h : NULL, NULL, 0, c);
    assert_int_equal(c->rc, 0);
}

/* ---- a checker for the text exposition format ------------------------------ */

static bool name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && isdigit((unsigned char)c));
}

static const char *skip_name(const char *p)
{
    if (!name_char(*p, true))
        return NULL;
    while (name_char(*p, false))
        p++;
    return p;
}

/* One line: "# HELP name text", "# TYPE name type", or a sample
 * name{l="v",...} value. Returns true when valid. */
static bool exposition_line_ok(const char *line)
{
    if (strncmp(line, "# HELP ", 7) == 0)
        return skip_name(line + 7) != NULL;
    if (strncmp(line, "# TYPE ", 7) == 0) {
        const char *p = skip_name(line + 7);
        if (p == NULL || *p != ' ')
            return false;
        p++;
        return strcmp(p, "counter") == 0 || strcmp(p, "gauge") == 0 ||
               strcmp(p, "histogram") == 0 || strcmp(p, "summary") == 0 ||
               strcmp(p, "untyped") == 0;
    }
    if (line[0] == '#')
        return true; /* other comments are allowed */
    const char *p = skip_name(line);
    if (p == NULL)
        return false;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            const char *q = skip_name(p);
            if (q == NULL || q[0] != '=' || q[1] != '"')
                return false;
            p = q + 2;
            while (*p != '"') {
                if (*p == '\0' || *p == '\n')
                    return false;
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n')
                        return false;
                }
                p++;
            }
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return false;
        }
        p++;
    }
    if (*p != ' ')
        return false;
    p++;
    if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0 || strcmp(p, "NaN") == 0)
        return true;
    char *end = NULL;
    strtod(p, &end);
    return end != p && *end == '\0';
}

static double sample_value(const char *text, const char *prefix)
{
    const char *p = strstr(text, prefix);
    if (p == NULL)
        return -1;
    p = strchr(p, ' ');
    return p != NULL ? strtod(p + 1, NULL) : -1;
}

static void test_metrics_exposition(void **state)
{
    (void)state;
    struct stfx fx;
    stfx_open(&fx, NULL);
    /* Storage commits are measured; a label value needs escaping. */
    struct lt_res res;
    lt_open(&fx.lt, "console:ann", LEDGER_ACCOUNT_NO_OVERDRAFT, 5, &res);
    metrics_counter_add(metrics_std()->commands, (const char *[]){"we\"ird\\cmd\n", "answered"}, 1);
    metrics_observe(metrics_std()->provider_latency, (const char *[]){"demo"}, 0.3);
    struct tcall c;
    stfx_get(&fx, "/metrics", NULL, &c);
    assert_int_equal(c.status, 200);
    assert_non_null(strstr(c.content_type, "text/plain"));
    assert_true(c.body_len > 0 && c.body[c.body_len - 1] == '\n');
    size_t lines = 0;
    char *save = NULL;
    char *copy = strdup(c.body);
    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (!exposition_line_ok(line))
            fail_msg("not exposition format: %s", line);
        lines++;
    }
    free(copy);
    assert_true(lines > 40);
    /* Every family the issue names is there, reading 0 until reported. */
    static const char *const families[] = {
        "haibot_commands_total",           "haibot_generations_total",
        "haibot_credits_moved_total",      "haibot_queue_depth",
        "haibot_provider_latency_seconds", "haibot_gateway_reconnects_total",
        "haibot_gateway_resumes_total",    "haibot_ratelimit_waits_total",
        "haibot_http_429_total",           "haibot_storage_commit_seconds",
        "haibot_storage_batch_size",       "process_resident_memory_bytes"};
    for (size_t i = 0; i < TEST_ARRAY_SIZE(families); i++) {
        char want[128];
        snprintf(want, sizeof(want), "# TYPE %s ", families[i]);
        if (strstr(c.body, want) == NULL)
            fail_msg("missing family %s", families[i]);
    }
    assert_true(sample_value(c.body, "\nhaibot_storage_commit_seconds_count ") >= 1);
    assert_true(sample_value(c.body, "\nhaibot_storage_batch_size_count ") >= 1);
    assert_true(sample_value(c.body, "\nprocess_resident_memory_bytes ") > 0);
    assert_true(sample_value(c.body, "\nhaibot_queue_depth ") == 0);
    assert_non_null(strstr(c.body, "command=\"we\\\"ird\\\\cmd\\n\""));
    assert_non_null(
        strstr(c.body, "haibot_provider_latency_seconds_bucket{provider=\"demo\",le=\"0.5\"} 1\n"));
    assert_non_null(strstr(
        c.body, "haibot_provider_latency_seconds_bucket{provider=\"demo\",le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(
        c.body, "haibot_provider_latency_seconds_bucket{provider=\"demo\",le=\"0.25\"} 0\n"));
    tcall_clear(&c);
    stfx_close(&fx);
}

static void test_metrics_token(void **state)
{
    (void)state;
    struct stfx fx;
    stfx_open(&fx, "s3cret-metrics-token");
    struct tcall c;
    stfx_get(&fx, "/metrics", NULL, &c);
    assert_int_equal(c.status, 401);
    assert_string_equal(c.www_authenticate, "Bearer");
    tcall_clear(&c);
    stfx_get(&fx, "/metrics", "Bearer s3cret-metrics-tokeX", &c);
    assert_int_equal(c.status, 401);
    tcall_clear(&c);
    stfx_get(&fx, "/metrics", "Bearer s3cret-metrics-token", &c);
    assert_int_equal(c.status, 200);
    tcall_clear(&c);
    /* /healthz stays open for load balancers. */
    stfx_get(&fx, "/healthz", NULL, &c);
    assert_int_equal(c.status, 200);
    tcall_clear(&c);
    stfx_close(&fx);
}

static const char *component_state(const char *json, const char *name)
{
    static char out[32];
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    cJSON *s = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "components"), name), "state");
    snprintf(out, sizeof(out), "%s", cJSON_IsString(s) ? s->valuestring : "(none)");
    cJSON_Delete(root);
    return out;
}

static void test_healthz_storage_down(void **state)
{
    (void)state;
    struct stfx fx;
    stfx_open(&fx, NULL);
    assert_int_equal(status_component_set(fx.st, "console", true, STATUS_UP, NULL), 0);
    assert_int_equal(status_component_set(fx.st, "provider:demo", false, STATUS_DOWN, "timeout"),
                     0);
    struct tcall c;
    stfx_get(&fx, "/healthz", NULL, &c);
    assert_int_equal(c.status, 200); /* a non-essential component down is not fatal */
    assert_string_equal(c.content_type, "application/json");
    assert_string_equal(component_state(c.body, "storage"), "up");
    assert_string_equal(component_state(c.body, "console"), "up");
    assert_string_equal(component_state(c.body, "provider:demo"), "down");
    assert_non_null(strstr(c.body, "\"status\":\"ok\""));
    tcall_clear(&c);
    /* Storage goes away: 503. */
    lt_ledger_close(&fx.lt);
    stfx_get(&fx, "/healthz", NULL, &c);
    assert_int_equal(c.status, 503);
    assert_string_equal(component_state(c.body, "storage"), "down");
    assert_non_null(strstr(c.body, "\"status\":\"down\""));
    tcall_clear(&c);
    /* So does an essential adapter going down, with storage back. */
    lt_ledger_open(&fx.lt);
    assert_int_equal(status_component_set(fx.st, "console", true, STATUS_DOWN, "ended"), 0);
    stfx_get(&fx, "/healthz", NULL, &c);
    assert_int_equal(c.status, 503);
    assert_string_equal(component_state(c.body, "storage"), "up");
    tcall_clear(&c);
    stfx_close(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_metrics_exposition),
    cmocka_unit_test(test_metrics_token),
    cmocka_unit_test(test_healthz_storage_down),
};

TEST_GROUP_DEFINE(status, tests, lt_group_setup, lt_group_teardown)
