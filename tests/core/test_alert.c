/* Alerts to operators (core/alert.c) with a manual clock and counters the
 * test moves: each rule fires once when it crosses and says when it
 * clears, the rate limit holds a flapping rule quiet, and a webhook
 * destination posts the alert as JSON to a loopback server. */
#include "tests/test.h"

#include "base/log.h"
#include "base/metrics.h"
#include "core/alert.h"
#include "core/filter.h"
#include "net/http.h"
#include "tests/fake/httpd.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define T0 1764892800000LL /* 2025-12-05 00:00:00 UTC */
#define SEC 1000LL

struct ax {
    struct clock_manual manual;
    struct clock clock;
    struct alert_sample s; /* what the next evaluation reads */
    struct alerts *alerts;
    struct alert_event ev[32];
    char text[32][512];
    size_t nev;
};

static void ax_read(void *data, struct alert_sample *out)
{
    struct ax *x = data;
    *out = x->s;
}

static void ax_send(void *data, const struct alert_event *ev)
{
    struct ax *x = data;
    assert_true(x->nev < 32);
    x->ev[x->nev] = *ev;
    snprintf(x->text[x->nev], sizeof(x->text[0]), "%s", ev->text);
    x->ev[x->nev].text = x->text[x->nev];
    x->nev++;
}

static void ax_init(struct ax *x, const struct alert_rules *rules)
{
    memset(x, 0, sizeof(*x));
    metrics_reset();
    x->manual.ms = T0 + 3600 * SEC; /* 01:00 UTC */
    x->clock = (struct clock){.now_ms = clock_manual_read, .data = &x->manual};
    x->alerts = alerts_new(&x->clock, rules, ax_read, ax_send, x);
    assert_non_null(x->alerts);
}

/* Move the clock by ms and evaluate. */
static void ax_at(struct ax *x, int64_t ms)
{
    x->manual.ms += ms;
    alerts_eval(x->alerts);
}

static double ax_state(enum alert_rule r)
{
    const char *labels[] = {alert_rule_name(r)};
    struct metrics_family *f =
        metrics_family_new("haibot_alert_state", "Alert rules firing now (1) or not (0).",
                           METRICS_GAUGE, (const char *[]){"rule"}, 1, NULL, 0);
    return metrics_value(f, labels);
}

static const struct alert_rules base_rules = {
    .window_ms = 60 * SEC, .min_samples = 10, .repeat_after_ms = 300 * SEC};

static void test_alert_credits_per_day(void **state)
{
    (void)state;
    struct ax x;
    struct alert_rules r = base_rules;
    r.credits_per_day = 1000;
    ax_init(&x, &r);
    x.s.credits_spent = 200; /* spent before: the day counts from here */
    ax_at(&x, 0);
    x.s.credits_spent = 1100;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 0); /* 900 today */
    x.s.credits_spent = 1300;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 1);
    assert_true(x.ev[0].firing);
    assert_int_equal(x.ev[0].rule, ALERT_CREDITS_DAY);
    assert_true(x.ev[0].value == 1100);
    assert_non_null(strstr(x.text[0], "ALERT credits_per_day: credits spent today: 1100"));
    assert_true(alerts_firing(x.alerts, ALERT_CREDITS_DAY));
    assert_true(ax_state(ALERT_CREDITS_DAY) == 1);
    /* Still above: no second message. */
    x.s.credits_spent = 5000;
    ax_at(&x, 10 * SEC);
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 1);
    /* A new UTC day starts from zero: it clears. */
    ax_at(&x, 24 * 3600 * SEC);
    assert_int_equal(x.nev, 2);
    assert_false(x.ev[1].firing);
    assert_non_null(strstr(x.text[1], "RESOLVED credits_per_day"));
    assert_true(ax_state(ALERT_CREDITS_DAY) == 0);
    alerts_free(x.alerts);
}

/* Rates over the window: provider errors and filter hits. */
static void test_alert_rates(void **state)
{
    (void)state;
    struct ax x;
    struct alert_rules r = base_rules;
    r.provider_error_pct = 20;
    r.filter_hit_pct = 50;
    ax_init(&x, &r);
    ax_at(&x, 0);
    /* 9 generations, 5 failed: too few to judge. */
    x.s.generations_ok = 4;
    x.s.generations_failed = 5;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 0);
    /* 20 generations, 4 failed: 20% is not above 20%. */
    x.s.generations_ok = 16;
    x.s.generations_failed = 4;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 0);
    /* 21 generations, 5 failed: 23.8%. */
    x.s.generations_ok = 16;
    x.s.generations_failed = 5;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 1);
    assert_int_equal(x.ev[0].rule, ALERT_PROVIDER_ERRORS);
    assert_true(x.ev[0].firing);
    assert_true(fabs(x.ev[0].value - 100.0 * 5 / 21) < 0.01);
    /* Filter hits: 12 checks, 7 hits. */
    x.s.filter_checks = 12;
    x.s.filter_hits = 7;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 2);
    assert_int_equal(x.ev[1].rule, ALERT_FILTER_HITS);
    assert_non_null(strstr(x.text[1], "content-filter hits: 58.3% of 12 checks"));
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 2);
    /* A quiet window: nothing to judge, both clear, once each. */
    ax_at(&x, 70 * SEC);
    ax_at(&x, 70 * SEC);
    assert_int_equal(x.nev, 4);
    assert_false(x.ev[2].firing);
    assert_false(x.ev[3].firing);
    assert_false(alerts_firing(x.alerts, ALERT_PROVIDER_ERRORS));
    assert_false(alerts_firing(x.alerts, ALERT_FILTER_HITS));
    alerts_free(x.alerts);
}

static void test_alert_latency_p95(void **state)
{
    (void)state;
    struct ax x;
    struct alert_rules r = base_rules;
    r.latency_p95_ms = 1500;
    ax_init(&x, &r);
    static const double bounds[] = {0.1, 0.5, 1, 2, INFINITY};
    memcpy(x.s.latency_bounds, bounds, sizeof(bounds));
    x.s.nlatency = 5;
    ax_at(&x, 0);
    /* 19 fast answers and one slow: the p95 is fast. */
    x.s.latency_counts[0] = 19;
    x.s.latency_counts[3] = 1;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 0);
    /* Ten more slow ones: rank 28.5 of 30 lies in (1 s, 2 s], which holds
     * 11: 1 s + 9.5/11 of a second. */
    x.s.latency_counts[3] = 11;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 1);
    assert_int_equal(x.ev[0].rule, ALERT_LATENCY_P95);
    assert_true(fabs(x.ev[0].value - (1000 + 1000 * 9.5 / 11)) < 0.5);
    /* Fast answers only in the next window: it clears. */
    ax_at(&x, 61 * SEC);
    x.s.latency_counts[0] = 60;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 2);
    assert_false(x.ev[1].firing);
    alerts_free(x.alerts);
}

/* Any storage error or payment failure in the window. */
static void test_alert_storage_and_payments(void **state)
{
    (void)state;
    struct ax x;
    struct alert_rules r = base_rules;
    r.storage_errors = true;
    r.payments = true;
    ax_init(&x, &r);
    ax_at(&x, 0);
    x.s.storage_errors = 1;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 1);
    assert_int_equal(x.ev[0].rule, ALERT_STORAGE_ERRORS);
    x.s.payments_unmatched = 1;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 2);
    assert_int_equal(x.ev[1].rule, ALERT_PAYMENTS);
    assert_non_null(strstr(x.text[1], "0 failed and 1 unmatched"));
    x.s.payment_failures = 2;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 2); /* still firing: said once */
    /* A window without new ones: both clear. */
    ax_at(&x, 61 * SEC);
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 4);
    assert_false(alerts_firing(x.alerts, ALERT_STORAGE_ERRORS));
    assert_false(alerts_firing(x.alerts, ALERT_PAYMENTS));
    alerts_free(x.alerts);
}

static void test_alert_platform_down(void **state)
{
    (void)state;
    struct ax x;
    struct alert_rules r = base_rules;
    r.platform_down_ms = 120 * SEC;
    ax_init(&x, &r);
    ax_at(&x, 0);
    x.s.platform_down = true;
    snprintf(x.s.platform_down_name, sizeof(x.s.platform_down_name), "discord:shard:1");
    ax_at(&x, 10 * SEC);
    ax_at(&x, 119 * SEC);
    assert_int_equal(x.nev, 0);
    ax_at(&x, 1 * SEC);
    assert_int_equal(x.nev, 1);
    assert_non_null(strstr(x.text[0], "ALERT platform_down: discord:shard:1 down for 120s"));
    ax_at(&x, 30 * SEC);
    assert_int_equal(x.nev, 1);
    x.s.platform_down = false;
    ax_at(&x, 30 * SEC);
    assert_int_equal(x.nev, 2);
    assert_false(x.ev[1].firing);
    /* Down again but back within the threshold: nothing. */
    x.s.platform_down = true;
    ax_at(&x, 400 * SEC);
    x.s.platform_down = false;
    ax_at(&x, 60 * SEC);
    assert_int_equal(x.nev, 2);
    alerts_free(x.alerts);
}

/* A flapping rule: fired, cleared, crossing again within repeat_after is
 * held without a message (nor a clear), and fires once the limit allows
 * when it still holds. */
static void test_alert_rate_limited(void **state)
{
    (void)state;
    struct ax x;
    struct alert_rules r = base_rules;
    r.storage_errors = true;
    r.repeat_after_ms = 600 * SEC;
    ax_init(&x, &r);
    ax_at(&x, 0);
    x.s.storage_errors = 1;
    ax_at(&x, 10 * SEC); /* t=10: fires */
    ax_at(&x, 70 * SEC); /* t=80: clears */
    assert_int_equal(x.nev, 2);
    for (int i = 0; i < 5; i++) {
        x.s.storage_errors += 1;
        ax_at(&x, 10 * SEC); /* errors again: held */
        ax_at(&x, 70 * SEC); /* a quiet window: cleared, silently */
    }
    assert_int_equal(x.nev, 2); /* t=480 */
    const char *l[] = {"storage_errors"};
    struct metrics_family *sup =
        metrics_family_new("haibot_alerts_suppressed_total", "x", METRICS_COUNTER,
                           (const char *[]){"rule"}, 1, NULL, 0);
    assert_true(metrics_value(sup, l) == 5);
    /* t=680, past the limit: the next crossing fires at once. */
    x.s.storage_errors += 1;
    ax_at(&x, 200 * SEC);
    assert_int_equal(x.nev, 3);
    assert_true(x.ev[2].firing);
    alerts_free(x.alerts);

    /* Held and still holding when the limit allows: fires then, once. */
    ax_init(&x, &r);
    int64_t start = x.manual.ms;
    ax_at(&x, 0);
    x.s.storage_errors = 1;
    ax_at(&x, 10 * SEC); /* t=10 fires */
    ax_at(&x, 70 * SEC); /* t=80 clears */
    for (int i = 0; i < 60; i++) {
        x.s.storage_errors += 1;
        ax_at(&x, 10 * SEC); /* t=90..680: an error every evaluation */
    }
    assert_int_equal(x.nev, 3);
    assert_true(x.ev[2].firing);
    assert_true(x.ev[2].at_ms == start + 610 * SEC);
    alerts_free(x.alerts);
}

/* A rule turned off (a reload) clears without a message. */
static void test_alert_rule_turned_off(void **state)
{
    (void)state;
    struct ax x;
    struct alert_rules r = base_rules;
    r.storage_errors = true;
    ax_init(&x, &r);
    ax_at(&x, 0);
    x.s.storage_errors = 1;
    ax_at(&x, 10 * SEC);
    assert_int_equal(x.nev, 1);
    r.storage_errors = false;
    alerts_configure(x.alerts, &r);
    ax_at(&x, 10 * SEC);
    assert_false(alerts_firing(x.alerts, ALERT_STORAGE_ERRORS));
    alerts_free(x.alerts);
}

/* ---- the webhook destination --------------------------------------------- */

struct hook {
    uv_loop_t loop;
    struct httpd *srv;
    struct http_client *http;
    char body[1024];
    char type[64];
    char target[64];
    int got;
};

static void hook_handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    struct hook *h = data;
    snprintf(h->body, sizeof(h->body), "%s", req->body);
    snprintf(h->target, sizeof(h->target), "%s %s", req->method, req->target);
    const char *ct = httpd_request_header(req, "Content-Type");
    snprintf(h->type, sizeof(h->type), "%s", ct != NULL ? ct : "");
    h->got++;
    httpd_response_send(res, 204, NULL, "", 0);
}

static void test_alert_webhook_posts_json(void **state)
{
    (void)state;
    struct hook h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(uv_loop_init(&h.loop), 0);
    h.srv = httpd_new(&h.loop, hook_handler, &h);
    assert_non_null(h.srv);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&h.loop, NULL, &h.http), 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/hooks/ops", httpd_base_url(h.srv));
    struct alert_event ev = {.rule = ALERT_PAYMENTS,
                             .firing = true,
                             .value = 2,
                             .threshold = 0,
                             .at_ms = T0,
                             .text = "ALERT payments: 2 \"failed\""};
    assert_int_equal(alert_webhook_post(h.http, url, &ev), 0);
    while (h.got == 0)
        uv_run(&h.loop, UV_RUN_ONCE);
    assert_string_equal(h.target, "POST /hooks/ops");
    assert_non_null(strstr(h.type, "application/json"));
    cJSON *j = cJSON_Parse(h.body);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "alert")->valuestring, "payments");
    assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "firing");
    assert_true(cJSON_GetObjectItem(j, "value")->valuedouble == 2);
    assert_true(cJSON_GetObjectItem(j, "at")->valuedouble == (double)T0);
    assert_string_equal(cJSON_GetObjectItem(j, "text")->valuestring,
                        "ALERT payments: 2 \"failed\"");
    cJSON_Delete(j);
    http_client_close(h.http, NULL, NULL);
    httpd_close(h.srv, NULL, NULL);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h.loop), 0);
}

/* The sample the daemon reads comes from the metrics alerts watch. */
static void test_alert_sample_from_metrics(void **state)
{
    (void)state;
    metrics_reset();
    const struct metrics_std *m = metrics_std();
    metrics_counter_add(m->credits_moved, (const char *[]){"generation"}, 40);
    metrics_counter_add(m->generations, (const char *[]){"a", "completed"}, 3);
    metrics_counter_add(m->generations, (const char *[]){"b", "failed"}, 2);
    metrics_counter_add(m->filter_checks, NULL, 10);
    metrics_counter_add(m->filter_hits, (const char *[]){"blocked"}, 1);
    metrics_counter_add(m->filter_hits, (const char *[]){"redacted"}, 2);
    metrics_counter_add(m->storage_errors, NULL, 1);
    metrics_counter_add(m->webhooks, (const char *[]){"stripe", "error"}, 1);
    metrics_counter_add(m->deposits, (const char *[]){"hedera", "unmatched"}, 4);
    metrics_observe(m->provider_latency, (const char *[]){"p1"}, 0.2);
    metrics_observe(m->provider_latency, (const char *[]){"p2"}, 40);
    struct alert_sample s;
    memset(&s, 0, sizeof(s));
    alert_sample_from_metrics(&s);
    assert_true(s.credits_spent == 40);
    assert_true(s.generations_ok == 3 && s.generations_failed == 2);
    assert_true(s.filter_checks == 10 && s.filter_hits == 3);
    assert_true(s.storage_errors == 1);
    assert_true(s.payment_failures == 1 && s.payments_unmatched == 4);
    assert_int_equal(s.nlatency, 13);
    double total = 0;
    for (size_t i = 0; i < s.nlatency; i++)
        total += s.latency_counts[i];
    assert_true(total == 2);
    assert_true(s.latency_counts[12] == 1); /* 40 s is past the last bound */
    assert_true(isinf(s.latency_bounds[12]));
    metrics_reset();
}

/* The content filter counts what the filter-hit rule reads: checks, and
 * those that blocked or redacted, by action. */
static void test_alert_filter_counts(void **state)
{
    (void)state;
    metrics_reset();
    static const char *const words[] = {"forbidden"};
    const struct filter_rule rules[] = {
        {.name = "block",
         .kind = FILTER_KIND_WORDS,
         .action = FILTER_ACTION_BLOCK,
         .words = words,
         .nwords = 1},
        {.name = "mail", .kind = FILTER_KIND_EMAIL, .action = FILTER_ACTION_REDACT},
    };
    char err[128];
    struct filter *f = filter_new(rules, 2, err, sizeof(err));
    assert_non_null(f);
    const char *texts[] = {"hello", "a forbidden word", "write to a@b.example", "fine"};
    for (size_t i = 0; i < 4; i++) {
        struct filter_result r;
        assert_int_equal(filter_apply(f, texts[i], &r), 0);
        filter_result_clear(&r);
    }
    filter_free(f);
    const struct metrics_std *m = metrics_std();
    assert_true(metrics_value(m->filter_checks, NULL) == 4);
    assert_true(metrics_value(m->filter_hits, (const char *[]){"blocked"}) == 1);
    assert_true(metrics_value(m->filter_hits, (const char *[]){"redacted"}) == 1);
    struct alert_sample s;
    memset(&s, 0, sizeof(s));
    alert_sample_from_metrics(&s);
    assert_true(s.filter_checks == 4 && s.filter_hits == 2);
    metrics_reset();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_alert_filter_counts),
    cmocka_unit_test(test_alert_credits_per_day),
    cmocka_unit_test(test_alert_rates),
    cmocka_unit_test(test_alert_latency_p95),
    cmocka_unit_test(test_alert_storage_and_payments),
    cmocka_unit_test(test_alert_platform_down),
    cmocka_unit_test(test_alert_rate_limited),
    cmocka_unit_test(test_alert_rule_turned_off),
    cmocka_unit_test(test_alert_webhook_posts_json),
    cmocka_unit_test(test_alert_sample_from_metrics),
};

static int alert_setup(void **state)
{
    (void)state;
    log_configure(LOG_ERROR, false, NULL);
    return 0;
}

static int alert_teardown(void **state)
{
    (void)state;
    log_configure(LOG_INFO, false, NULL);
    metrics_reset();
    return 0;
}

TEST_GROUP_DEFINE(alert, tests, alert_setup, alert_teardown)
