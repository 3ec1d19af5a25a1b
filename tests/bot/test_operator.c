/* The operator's controls as the daemon wires them (bot/operator.c): a
 * config's [features] reaches the switches, an alert reaches every
 * destination configured (a Discord channel, a Telegram chat) through
 * the notify operation, and /metrics shows the families alerts read. */
#include "tests/test.h"

#include "base/metrics.h"
#include "bot/config.h"
#include "bot/operator.h"
#include "core/core.h"
#include "core/feature.h"
#include "core/ledger.h"
#include "tests/core/ledger_helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ox {
    struct notify_target to[8];
    char text[8][512];
    size_t sent;
    bool down;
};

static int ox_notify(void *data, const struct notify_target *to, const char *text)
{
    struct ox *x = data;
    assert_true(x->sent < 8);
    x->to[x->sent] = *to;
    snprintf(x->text[x->sent], sizeof(x->text[0]), "%s", text);
    x->sent++;
    return 0;
}

static bool ox_down(void *data, char *name, size_t cap)
{
    struct ox *x = data;
    if (x->down)
        snprintf(name, cap, "telegram:poller");
    return x->down;
}

static void closed(void *data)
{
    *(bool *)data = true;
}

static void test_operator_routes_alerts(void **state)
{
    (void)state;
    metrics_reset();
    struct lt lt;
    lt_init(&lt, true, false);
    char path[600];
    snprintf(path, sizeof(path), "%s/bot.conf", lt.dir);
    test_file_write(path,
                    "[console]\nenabled = true\n"
                    "[features]\nimages = off\n"
                    "[alerts]\nenabled = true\nrepeat_after = 0\n"
                    "discord_channel = 1000000000000000001\ntelegram_chat = -1001234\n"
                    "storage_errors = true\nplatform_down = 10\n",
                    (size_t)-1);
    struct config *cfg = NULL;
    struct config_problems problems;
    config_problems_init(&problems);
    assert_int_equal(config_load(path, &cfg, &problems), 0);
    config_problems_free(&problems);

    struct clock_manual manual = {.ms = 1764892800000LL};
    struct core core;
    memset(&core, 0, sizeof(core));
    core.clock = (struct clock){.now_ms = clock_manual_read, .data = &manual};
    struct ox x;
    memset(&x, 0, sizeof(x));
    struct operator_host host = {.platform_down = ox_down, .notify = ox_notify, .data = &x};
    struct operator* op = operator_new(&lt.loop, &core, &host);
    assert_non_null(op);
    assert_non_null(core.features);
    operator_configure(op, cfg);
    assert_false(features_global_on(core.features, FEATURE_IMAGES));
    assert_true(features_global_on(core.features, FEATURE_CHAT));
    assert_int_equal(operator_start(op, ledger_store(lt.ledger), NULL), 0);
    assert_non_null(core.notices);

    /* A storage error: one alert, to the channel and to the chat. */
    metrics_counter_add(metrics_std()->storage_errors, NULL, 1);
    manual.ms += 30000;
    operator_alerts_eval(op);
    assert_int_equal(x.sent, 2);
    assert_int_equal(x.to[0].platform, COMMAND_PLATFORM_DISCORD);
    assert_string_equal(x.to[0].channel_id, "1000000000000000001");
    assert_int_equal(x.to[1].platform, COMMAND_PLATFORM_TELEGRAM);
    assert_string_equal(x.to[1].channel_id, "-1001234");
    assert_non_null(strstr(x.text[0], "ALERT storage_errors"));
    /* The poller down for longer than 10 s. */
    x.down = true;
    manual.ms += 1000;
    operator_alerts_eval(op);
    manual.ms += 10000;
    operator_alerts_eval(op);
    assert_int_equal(x.sent, 4);
    assert_non_null(strstr(x.text[2], "ALERT platform_down: telegram:poller down for 10s"));

    /* /metrics shows the alert states and the families alerts read. */
    size_t len = 0;
    char *text = metrics_render(&len);
    assert_non_null(text);
    assert_non_null(strstr(text, "haibot_alert_state{rule=\"storage_errors\"} 1"));
    assert_non_null(strstr(text, "haibot_alert_state{rule=\"credits_per_day\"} 0"));
    assert_non_null(strstr(text, "haibot_alerts_total{rule=\"platform_down\",state=\"fired\"} 1"));
    assert_non_null(strstr(text, "# TYPE haibot_filter_hits_total counter"));
    assert_non_null(strstr(text, "# TYPE haibot_filter_checks_total counter"));
    assert_non_null(strstr(text, "# TYPE haibot_approvals_total counter"));
    assert_non_null(strstr(text, "haibot_storage_errors_total 1"));
    free(text);

    /* A reload that turns alerts off stops them; images on again. */
    config_free(cfg);
    test_file_write(path, "[console]\nenabled = true\n[alerts]\nenabled = false\n", (size_t)-1);
    config_problems_init(&problems);
    assert_int_equal(config_load(path, &cfg, &problems), 0);
    config_problems_free(&problems);
    operator_configure(op, cfg);
    assert_true(features_global_on(core.features, FEATURE_IMAGES));
    x.down = false;
    manual.ms += 1000;
    operator_alerts_eval(op);
    assert_int_equal(x.sent, 4);

    bool done = false;
    operator_close(op, closed, &done);
    while (!done)
        uv_run(&lt.loop, UV_RUN_ONCE);
    assert_null(core.notices);
    operator_free(op);
    assert_null(core.features);
    config_free(cfg);
    lt_done(&lt);
    metrics_reset();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_operator_routes_alerts),
};

TEST_GROUP_DEFINE(operator, tests, lt_group_setup, lt_group_teardown)
