/* Feature switches (core/feature.c) through the real command path: a
 * feature off for the whole bot or in one group answers clearly and runs
 * no handler, /admin feature keeps a group's switch in the store across a
 * restart, and the platforms' command lists leave out what is off. */
#include "tests/test.h"

#include "base/error.h"
#include "base/metrics.h"
#include "bot/router.h"
#include "core/commands.h"
#include "core/core.h"
#include "core/feature.h"
#include "core/ledger.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/reply_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fx {
    struct lt lt;
    struct core core;
    struct router *router;
    struct reply_capture cap;
    int event;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    lt_init(&f->lt, true, true);
    f->core.bot_name = "Test Bot";
    f->core.ledger = f->lt.ledger;
    f->core.welcome_bonus = 100;
    f->core.features = features_new();
    assert_non_null(f->core.features);
    f->router = router_new(&f->core);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    reply_capture_close(&f->cap);
    router_free(f->router);
    features_free(f->core.features);
    lt_done(&f->lt);
    free(f);
    return 0;
}

/* Run a line as user (in group scope, or a DM when NULL) on Telegram and
 * wait for the reply to end; returns what it said. */
static const char *run(struct fx *f, const char *user, const char *scope, bool admin,
                       const char *line)
{
    reply_capture_close(&f->cap);
    reply_capture_init(&f->cap);
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = COMMAND_PLATFORM_TELEGRAM;
    snprintf(inv.user_id, sizeof(inv.user_id), "%s", user);
    if (scope != NULL) {
        inv.scope = COMMAND_SCOPE_GROUP;
        snprintf(inv.scope_id, sizeof(inv.scope_id), "%s", scope);
        snprintf(inv.channel_id, sizeof(inv.channel_id), "%s", scope);
    }
    inv.admin = admin;
    snprintf(inv.event_id, sizeof(inv.event_id), "ev%d", ++f->event);
    inv.reply = &f->cap.reply;
    router_dispatch(f->router, &inv, line);
    while (f->cap.finished == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(f->cap.finished, 1);
    return f->cap.text != NULL ? f->cap.text : "";
}

static void test_feature_names(void **state)
{
    (void)state;
    assert_int_equal(feature_parse("images"), FEATURE_IMAGES);
    assert_int_equal(feature_parse("video"), FEATURE_COUNT);
    assert_string_equal(feature_name(FEATURE_PAYMENTS), "payments");
    assert_int_equal(feature_of_command("imagine"), FEATURE_IMAGES);
    assert_int_equal(feature_of_command("chat"), FEATURE_CHAT);
    assert_int_equal(feature_of_command("new"), FEATURE_CHAT);
    assert_int_equal(feature_of_command("deposit"), FEATURE_PAYMENTS);
    assert_int_equal(feature_of_command("admin approve"), FEATURE_APPROVALS);
    assert_int_equal(feature_of_command("balance"), FEATURE_COUNT);
    /* No switches at all: everything on. */
    assert_true(features_on(NULL, FEATURE_CHAT, COMMAND_PLATFORM_DISCORD, "1"));
}

/* Off for the whole bot: a clear answer, no handler, and the command is
 * left out of the list the platforms register. */
static void test_feature_off_globally(void **state)
{
    struct fx *f = *state;
    metrics_reset();
    features_global_set(f->core.features, FEATURE_IMAGES, false);
    const char *t = run(f, "5", NULL, false, "imagine a red cat");
    assert_string_equal(t, "Images is switched off on this bot.");
    assert_true(f->cap.last_ephemeral);
    t = run(f, "5", "-100", true, "imagine a red cat");
    assert_string_equal(t, "Images is switched off on this bot.");
    assert_int_equal(
        (int)metrics_value(metrics_std()->commands, (const char *[]){"imagine", "feature_off"}), 2);
    /* Other commands still run. */
    t = run(f, "5", NULL, false, "help");
    assert_non_null(strstr(t, "/balance"));

    size_t n;
    const struct command_spec *table = commands_table(&n);
    struct command_spec *listed = calloc(n, sizeof(*listed));
    assert_non_null(listed);
    size_t m = features_table_listed(f->core.features, table, n, listed);
    assert_int_equal(m, n - 1);
    bool chat = false;
    for (size_t i = 0; i < m; i++) {
        assert_string_not_equal(listed[i].name, "imagine");
        chat = chat || strcmp(listed[i].name, "chat") == 0;
    }
    assert_true(chat);
    free(listed);

    /* Live: on again, and it runs (here it reaches the handler, which has
     * no generation engine in this fixture and says so). */
    features_global_set(f->core.features, FEATURE_IMAGES, true);
    t = run(f, "5", NULL, false, "imagine a red cat");
    assert_null(strstr(t, "switched off"));
}

static void flushed_feature(int rc, const char *value, void *data)
{
    (void)rc;
    (void)value;
    *(bool *)data = true;
}

static bool loaded;
static void on_loaded(int rc, void *data)
{
    (void)data;
    assert_int_equal(rc, 0);
    loaded = true;
}

/* Off in one group by its admin: that group hears it is off here, other
 * groups and DMs are untouched, and the switch survives a restart. */
static void test_feature_off_per_group(void **state)
{
    struct fx *f = *state;
    const char *t = run(f, "9", "-100", false, "admin feature chat off");
    assert_string_equal(t, "Only admins can use /admin feature.");
    t = run(f, "9", NULL, true, "admin feature chat off");
    assert_string_equal(t, "Features are switched per server or group: run this there.");
    t = run(f, "9", "-100", true, "admin feature chat off");
    assert_string_equal(t, "Chat is now off in this group.");
    t = run(f, "5", "-100", false, "chat hello there");
    assert_string_equal(t, "Chat is switched off here.");
    t = run(f, "5", "-100", false, "new");
    assert_string_equal(t, "Chat is switched off here.");
    assert_true(features_on(f->core.features, FEATURE_CHAT, COMMAND_PLATFORM_TELEGRAM, "-200"));
    assert_true(features_on(f->core.features, FEATURE_CHAT, COMMAND_PLATFORM_TELEGRAM, ""));
    /* The same group id on another platform is another group. */
    assert_true(features_on(f->core.features, FEATURE_CHAT, COMMAND_PLATFORM_DISCORD, "-100"));
    t = run(f, "9", "-100", true, "admin feature chat");
    assert_string_equal(t, "Chat is off in this group (on for the whole bot).");
    t = run(f, "9", "-100", true, "admin feature images off");
    assert_string_equal(t, "Images is now off in this group.");

    /* A restart: a fresh cache reads the switches back from the store. */
    lt_ledger_close(&f->lt);
    lt_ledger_open(&f->lt);
    f->core.ledger = f->lt.ledger;
    struct features *fs = features_new();
    assert_non_null(fs);
    loaded = false;
    assert_int_equal(features_load(fs, ledger_store(f->lt.ledger), on_loaded, NULL), 0);
    while (!loaded)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_true(features_group_off(fs, FEATURE_CHAT, COMMAND_PLATFORM_TELEGRAM, "-100"));
    assert_true(features_group_off(fs, FEATURE_IMAGES, COMMAND_PLATFORM_TELEGRAM, "-100"));
    assert_false(features_group_off(fs, FEATURE_PAYMENTS, COMMAND_PLATFORM_TELEGRAM, "-100"));
    features_free(f->core.features);
    f->core.features = fs;
    t = run(f, "5", "-100", false, "chat hello again");
    assert_string_equal(t, "Chat is switched off here.");

    /* On again in the group; a switch the operator holds off wins. */
    t = run(f, "9", "-100", true, "admin feature chat on");
    assert_string_equal(t, "Chat is now on in this group.");
    assert_true(features_on(f->core.features, FEATURE_CHAT, COMMAND_PLATFORM_TELEGRAM, "-100"));
    features_global_set(f->core.features, FEATURE_PAYMENTS, false);
    t = run(f, "9", "-100", true, "admin feature payments on");
    assert_string_equal(
        t, "Payments is now on in this group, but the operator has switched it off for the whole "
           "bot.");
    t = run(f, "5", "-100", false, "deposit");
    assert_string_equal(t, "Payments is switched off on this bot.");
}

/* The switches may be freed (the daemon stopping) while their load is
 * still queued in the store: its answer touches nothing freed and calls
 * back nobody. */
static void test_freed_while_loading(void **state)
{
    struct fx *f = *state;
    struct features *fs = features_new();
    assert_non_null(fs);
    loaded = false;
    assert_int_equal(features_load(fs, ledger_store(f->lt.ledger), on_loaded, NULL), 0);
    features_free(fs);
    bool done = false;
    assert_int_equal(state_get(ledger_store(f->lt.ledger), "test", "flush", flushed_feature, &done),
                     0);
    while (!done)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_false(loaded);
}

static int nothing_run(struct store_txn *txn, void *data)
{
    (void)txn;
    (void)data;
    return 0;
}

/* Two daemons on one ledger: a switch made on one counts on the other
 * once it reads the switches again (every minute in the daemon), also a
 * switch turned back on; one made here while the rows are read is newer
 * than what was read and stays. */
static void test_refresh_from_another_daemon(void **state)
{
    struct fx *f = *state;
    struct store *store = ledger_store(f->lt.ledger);
    struct features *other = features_new();
    assert_non_null(other);
    loaded = false;
    assert_int_equal(features_load(other, store, on_loaded, NULL), 0);
    while (!loaded)
        uv_run(&f->lt.loop, UV_RUN_ONCE);

    const char *t = run(f, "9", "-100", true, "admin feature chat off");
    assert_string_equal(t, "Chat is now off in this group.");
    assert_true(features_on(other, FEATURE_CHAT, COMMAND_PLATFORM_TELEGRAM, "-100"));
    loaded = false;
    assert_int_equal(features_refresh(other, store, on_loaded, NULL), 0);
    assert_int_equal(features_refresh(other, store, on_loaded, NULL), HB_EBUSY);
    while (!loaded)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_false(features_on(other, FEATURE_CHAT, COMMAND_PLATFORM_TELEGRAM, "-100"));

    t = run(f, "9", "-100", true, "admin feature chat on");
    assert_string_equal(t, "Chat is now on in this group.");
    loaded = false;
    assert_int_equal(features_refresh(other, store, on_loaded, NULL), 0);
    while (!loaded)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_true(features_on(other, FEATURE_CHAT, COMMAND_PLATFORM_TELEGRAM, "-100"));

    /* Switched on the other daemon while its own read is under way. */
    loaded = false;
    assert_int_equal(features_refresh(other, store, on_loaded, NULL), 0);
    assert_int_equal(features_group_set(other, store, COMMAND_PLATFORM_TELEGRAM, "-100",
                                        FEATURE_IMAGES, false, NULL, NULL),
                     0);
    while (!loaded)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_false(features_on(other, FEATURE_IMAGES, COMMAND_PLATFORM_TELEGRAM, "-100"));

    /* A change heard from the first daemon while a read is under way here
     * that began before it: features_refresh_after reads again after it
     * (features_refresh refuses, as the caller waits for its own read). */
    loaded = false;
    assert_int_equal(features_refresh(other, store, on_loaded, NULL), 0);
    assert_int_equal(features_group_set(f->core.features, store, COMMAND_PLATFORM_TELEGRAM, "-100",
                                        FEATURE_PAYMENTS, false, NULL, NULL),
                     0);
    assert_int_equal(features_refresh(other, store, NULL, NULL), HB_EBUSY);
    assert_int_equal(features_refresh_after(other, store), 0);
    while (!loaded)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(lt_store_run(&f->lt, nothing_run, NULL), 0); /* queued behind it */
    assert_false(features_on(other, FEATURE_PAYMENTS, COMMAND_PLATFORM_TELEGRAM, "-100"));
    features_free(other);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_feature_names),
    cmocka_unit_test_setup_teardown(test_feature_off_globally, setup, teardown),
    cmocka_unit_test_setup_teardown(test_freed_while_loading, setup, teardown),
    cmocka_unit_test_setup_teardown(test_feature_off_per_group, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refresh_from_another_daemon, setup, teardown),
};

TEST_GROUP_DEFINE(feature, tests, lt_group_setup, lt_group_teardown)
