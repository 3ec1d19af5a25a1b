/* Member notices (core/notice.c) on a real store: a low balance is told
 * exactly once per crossing, also across a restart; /notify off silences
 * it; upvotes are told at most once an hour per creator, batched. */
#include "tests/test.h"

#include "base/error.h"
#include "bot/router.h"
#include "core/core.h"
#include "core/ledger.h"
#include "core/notice.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/reply_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR 3600000LL

struct nx {
    struct lt lt;
    struct clock_manual manual;
    struct notices *n;
    struct notice_options opts;
    struct notify_target to[16];
    char text[16][512];
    size_t sent;
    int refuse;    /* notices to refuse before taking one */
    int refuse_rc; /* what a refusal says: 0 means HB_ENOTFOUND (no adapter) */
};

static int nx_notify(void *data, const struct notify_target *to, const char *text)
{
    struct nx *x = data;
    if (x->refuse > 0) {
        x->refuse--;
        return x->refuse_rc != 0 ? x->refuse_rc : HB_ENOTFOUND;
    }
    assert_true(x->sent < 16);
    x->to[x->sent] = *to;
    snprintf(x->text[x->sent], sizeof(x->text[0]), "%s", text);
    x->sent++;
    return 0;
}

static void nx_open(struct nx *x)
{
    x->n = notices_new(ledger_store(x->lt.ledger), nx_notify, x, &x->opts);
    assert_non_null(x->n);
}

static int setup(void **state)
{
    struct nx *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    lt_init(&x->lt, true, false);
    x->manual.ms = 1764892800000LL;
    x->opts = (struct notice_options){
        .clock = {.now_ms = clock_manual_read, .data = &x->manual},
        .low_balance = 50,
        .upvotes = true,
    };
    nx_open(x);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct nx *x = *state;
    notices_free(x->n);
    lt_done(&x->lt);
    free(x);
    return 0;
}

static void flushed(int rc, const char *value, void *data)
{
    (void)rc;
    (void)value;
    *(bool *)data = true;
}

/* Let every store job queued so far, and the ones their callbacks queue,
 * finish: the store runs jobs in order, so a read queued after them
 * answers after them (twice: a notice reads the member's setting). */
static void nx_flush(struct nx *x)
{
    for (int i = 0; i < 3; i++) {
        bool done = false;
        assert_int_equal(state_get(ledger_store(x->lt.ledger), "test", "flush", flushed, &done), 0);
        while (!done)
            uv_run(&x->lt.loop, UV_RUN_ONCE);
    }
}

static void nx_done_count(void *data)
{
    (*(int *)data)++;
}

static void nx_balance(struct nx *x, const char *account, int64_t available)
{
    assert_true(notices_balance(x->n, account, available, NULL, NULL, NULL) >= 0);
    nx_flush(x);
}

static void test_low_balance_once_per_crossing(void **state)
{
    struct nx *x = *state;
    nx_balance(x, "telegram:5", 80);
    assert_int_equal(x->sent, 0);
    nx_balance(x, "telegram:5", 40);
    assert_int_equal(x->sent, 1);
    assert_int_equal(x->to[0].platform, COMMAND_PLATFORM_TELEGRAM);
    assert_int_equal(x->to[0].scope, COMMAND_SCOPE_DM);
    assert_string_equal(x->to[0].user_id, "5");
    assert_string_equal(x->text[0],
                        "Your wallet is running low: 40 credits left (below 50). Top up "
                        "with /deposit. /notify off stops these notices.");
    /* Still below: nothing more, however often it is read. */
    nx_balance(x, "telegram:5", 30);
    nx_balance(x, "telegram:5", 0);
    assert_int_equal(x->sent, 1);
    /* Two generations settling at once: one notice. */
    assert_int_equal(notices_balance(x->n, "telegram:6", 10, NULL, NULL, NULL), 1);
    assert_int_equal(notices_balance(x->n, "telegram:6", 9, NULL, NULL, NULL), 0);
    nx_flush(x);
    assert_int_equal(x->sent, 2);
    /* Back at the threshold, then below: a new crossing, a new notice. */
    nx_balance(x, "telegram:5", 50);
    nx_balance(x, "telegram:5", 49);
    assert_int_equal(x->sent, 3);
    assert_non_null(strstr(x->text[2], "49 credits left"));

    /* A pool's notice goes to its group, in the chat it was spent from. */
    assert_int_equal(notices_balance(x->n, "pool:discord:77", 12, "88", NULL, NULL), 1);
    nx_flush(x);
    assert_int_equal(x->sent, 4);
    assert_int_equal(x->to[3].scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(x->to[3].scope_id, "77");
    assert_string_equal(x->to[3].channel_id, "88");
    assert_non_null(strstr(x->text[3], "This group's pool is running low: 12 credits left"));

    /* No adapter takes it: the next low reading tries again. */
    x->refuse = 1;
    nx_balance(x, "telegram:8", 20);
    assert_int_equal(x->sent, 4);
    nx_balance(x, "telegram:8", 19);
    assert_int_equal(x->sent, 5);
    assert_string_equal(x->to[4].user_id, "8");
    nx_balance(x, "telegram:8", 18);
    assert_int_equal(x->sent, 5);

    /* Threshold 0: no notices at all. */
    x->opts.low_balance = 0;
    notices_configure(x->n, &x->opts);
    nx_balance(x, "telegram:9", 1);
    assert_int_equal(x->sent, 5);
}

static void nx_owed_read(int rc, const char *value, void *data)
{
    char **out = data;
    *out = rc == 0 && value != NULL ? strdup(value) : strdup("");
}

/* The low-balance notice owed for account ("" when none). */
static char *nx_owed(struct nx *x, const char *account)
{
    char key[200], *value = NULL;
    snprintf(key, sizeof(key), NOTIFY_LOW_PREFIX "%s", account);
    assert_int_equal(
        state_get(ledger_store(x->lt.ledger), NOTIFY_NS_PENDING, key, nx_owed_read, &value), 0);
    while (value == NULL)
        uv_run(&x->lt.loop, UV_RUN_ONCE);
    return value;
}

static void nx_pass_done(void *data)
{
    *(bool *)data = true;
}

/* The Telegram poller's pass over the notices owed a lease old. */
static void nx_poller_pass(struct nx *x)
{
    bool done = false;
    assert_int_equal(notify_pending_retry(ledger_store(x->lt.ledger), COMMAND_PLATFORM_TELEGRAM,
                                          x->manual.ms + 1, nx_notify, x, nx_pass_done, &done),
                     0);
    while (!done)
        uv_run(&x->lt.loop, UV_RUN_ONCE);
    nx_flush(x);
}

/* A low reading on a standby (x->refuse_rc HB_ESTATE): the notice is owed. */
static void nx_owe(struct nx *x, const char *account)
{
    x->refuse = 1;
    nx_balance(x, account, 5);
    char *owed = nx_owed(x, account);
    assert_non_null(strstr(owed, "5 credits left"));
    free(owed);
}

/* A standby on a shared ledger may not send to Telegram (the adapter says
 * HB_ESTATE): the low-balance notice is left owed, and the poller's pass
 * sends it, once; going back above the threshold takes an owed one back. */
static void test_low_balance_owed_by_a_standby(void **state)
{
    struct nx *x = *state;
    x->refuse = 1;
    x->refuse_rc = HB_ESTATE;
    nx_balance(x, "telegram:8", 20);
    assert_int_equal(x->sent, 0);
    char *owed = nx_owed(x, "telegram:8");
    assert_non_null(strstr(owed, "20 credits left"));
    free(owed);
    nx_balance(x, "telegram:8", 19); /* still below: owed once, not twice */
    assert_int_equal(x->sent, 0);
    x->manual.ms += 15000;
    nx_poller_pass(x);
    assert_int_equal(x->sent, 1);
    assert_int_equal(x->to[0].platform, COMMAND_PLATFORM_TELEGRAM);
    assert_string_equal(x->to[0].user_id, "8");
    assert_non_null(strstr(x->text[0], "Your wallet is running low: 20 credits left"));
    owed = nx_owed(x, "telegram:8");
    assert_string_equal(owed, "");
    free(owed);
    nx_poller_pass(x);
    assert_int_equal(x->sent, 1);

    /* Owed, then topped up before the poller's pass: nothing stale is sent. */
    nx_owe(x, "telegram:9");
    nx_balance(x, "telegram:9", 500);
    owed = nx_owed(x, "telegram:9");
    assert_string_equal(owed, "");
    free(owed);
    x->manual.ms += 15000;
    nx_poller_pass(x);
    assert_int_equal(x->sent, 1);

    /* Owed, then the member turns notices off: it is not sent either. */
    nx_owe(x, "telegram:10");
    assert_int_equal(
        notices_optout_set(ledger_store(x->lt.ledger), "telegram:10", true, NULL, NULL), 0);
    nx_flush(x);
    x->manual.ms += 15000;
    nx_poller_pass(x);
    assert_int_equal(x->sent, 1);
}

/* The crossing is in the store: a restart (store reopened, memory gone)
 * does not tell it again; the next crossing after it does. */
static void test_low_balance_across_restart(void **state)
{
    struct nx *x = *state;
    nx_balance(x, "discord:5", 10);
    assert_int_equal(x->sent, 1);
    notices_free(x->n);
    lt_ledger_close(&x->lt);
    lt_ledger_open(&x->lt);
    nx_open(x);
    nx_balance(x, "discord:5", 8);
    assert_int_equal(x->sent, 1);
    nx_balance(x, "discord:5", 60);
    notices_free(x->n);
    lt_ledger_close(&x->lt);
    lt_ledger_open(&x->lt);
    nx_open(x);
    nx_balance(x, "discord:5", 7);
    assert_int_equal(x->sent, 2);
}

static bool optout_done;
static bool optout_off;
static void on_optout(int rc, bool off, void *data)
{
    (void)data;
    assert_int_equal(rc, 0);
    optout_done = true;
    optout_off = off;
}

static void nx_optout(struct nx *x, const char *wallet, bool off)
{
    optout_done = false;
    assert_int_equal(notices_optout_set(ledger_store(x->lt.ledger), wallet, off, on_optout, NULL),
                     0);
    while (!optout_done)
        uv_run(&x->lt.loop, UV_RUN_ONCE);
}

/* /notify off silences both kinds; /notify on brings them back (from the
 * next crossing). Run through the router, as a member types it. */
static void test_notify_off_silences(void **state)
{
    struct nx *x = *state;
    struct core core;
    memset(&core, 0, sizeof(core));
    core.ledger = x->lt.ledger;
    struct router *r = router_new(&core);
    assert_non_null(r);
    const char *lines[] = {"notify off", "notify", "notify on", "notify"};
    const char *want[] = {"Notices are off", "Notices are off", "Notices are on", "Notices are on"};
    for (int step = 0; step < 4; step++) {
        struct reply_capture cap;
        reply_capture_init(&cap);
        struct invocation inv;
        memset(&inv, 0, sizeof(inv));
        inv.platform = COMMAND_PLATFORM_TELEGRAM;
        snprintf(inv.user_id, sizeof(inv.user_id), "5");
        snprintf(inv.event_id, sizeof(inv.event_id), "ev%d", step);
        inv.reply = &cap.reply;
        router_dispatch(r, &inv, lines[step]);
        while (cap.finished == 0)
            uv_run(&x->lt.loop, UV_RUN_ONCE);
        assert_non_null(strstr(cap.text, want[step]));
        assert_true(cap.last_personal || cap.last_ephemeral);
        reply_capture_close(&cap);
        if (step == 0) {
            /* Off: a crossing is kept but not told; upvotes are not told. */
            nx_balance(x, "telegram:5", 10);
            notices_upvote(x->n, COMMAND_PLATFORM_TELEGRAM, "5");
            nx_flush(x);
            assert_int_equal(x->sent, 0);
        }
    }
    router_free(r);
    /* On again: the crossing already happened; the next one is told. */
    nx_balance(x, "telegram:5", 5);
    assert_int_equal(x->sent, 0);
    nx_balance(x, "telegram:5", 100);
    nx_balance(x, "telegram:5", 5);
    assert_int_equal(x->sent, 1);
    /* Others are not affected by one member's setting. */
    nx_optout(x, "telegram:6", true);
    assert_true(optout_off);
    nx_balance(x, "telegram:7", 5);
    assert_int_equal(x->sent, 2);
    assert_string_equal(x->to[1].user_id, "7");
}

/* The first upvote after a quiet hour is told at once; the ones in the
 * next hour wait and go together, one notice, once the hour passed. */
static void test_upvotes_batched_hourly(void **state)
{
    struct nx *x = *state;
    notices_upvote(x->n, COMMAND_PLATFORM_DISCORD, "42");
    nx_flush(x);
    assert_int_equal(x->sent, 1);
    assert_string_equal(x->to[0].user_id, "42");
    assert_int_equal(x->to[0].platform, COMMAND_PLATFORM_DISCORD);
    assert_string_equal(x->text[0],
                        "Your images got 1 new upvote. /notify off stops these notices.");
    for (int i = 0; i < 3; i++) {
        x->manual.ms += 5 * 60000;
        notices_upvote(x->n, COMMAND_PLATFORM_DISCORD, "42");
    }
    /* Another creator is told on their own schedule. */
    notices_upvote(x->n, COMMAND_PLATFORM_DISCORD, "43");
    nx_flush(x);
    assert_int_equal(x->sent, 2);
    assert_string_equal(x->to[1].user_id, "43");
    x->manual.ms += 30 * 60000; /* 45 minutes after the first notice */
    notices_tick(x->n);
    nx_flush(x);
    assert_int_equal(x->sent, 2);
    x->manual.ms += 15 * 60000; /* an hour */
    notices_tick(x->n);
    nx_flush(x);
    assert_int_equal(x->sent, 3);
    assert_string_equal(x->to[2].user_id, "42");
    assert_string_equal(x->text[2],
                        "Your images got 3 new upvotes. /notify off stops these notices.");
    /* Nothing new: the ticks say nothing. */
    x->manual.ms += HOUR;
    notices_tick(x->n);
    x->manual.ms += HOUR;
    notices_tick(x->n);
    nx_flush(x);
    assert_int_equal(x->sent, 3);
    /* A quiet hour later, an upvote is told at once again. */
    notices_upvote(x->n, COMMAND_PLATFORM_DISCORD, "42");
    nx_flush(x);
    assert_int_equal(x->sent, 4);
    /* Upvote notices switched off in [notices]: none. */
    x->opts.upvotes = false;
    notices_configure(x->n, &x->opts);
    x->manual.ms += 2 * HOUR;
    notices_upvote(x->n, COMMAND_PLATFORM_DISCORD, "44");
    nx_flush(x);
    assert_int_equal(x->sent, 4);
}

/* Upvotes waiting for their hour survive a restart (nothing read back:
 * they are in the store, where every tick looks), and are told when the
 * hour since the last notice is up, not sooner. */
static void test_upvotes_across_restart(void **state)
{
    struct nx *x = *state;
    notices_upvote(x->n, COMMAND_PLATFORM_TELEGRAM, "42");
    x->manual.ms += 10 * 60000;
    notices_upvote(x->n, COMMAND_PLATFORM_TELEGRAM, "42");
    notices_upvote(x->n, COMMAND_PLATFORM_TELEGRAM, "42");
    nx_flush(x);
    assert_int_equal(x->sent, 1);
    notices_free(x->n);
    lt_ledger_close(&x->lt);
    lt_ledger_open(&x->lt);
    nx_open(x);
    x->manual.ms += 20 * 60000; /* 30 minutes after the first notice */
    notices_tick(x->n);
    nx_flush(x);
    assert_int_equal(x->sent, 1);
    x->manual.ms += 30 * 60000; /* an hour */
    notices_tick(x->n);
    nx_flush(x);
    assert_int_equal(x->sent, 2);
    assert_string_equal(x->to[1].user_id, "42");
    assert_string_equal(x->text[1],
                        "Your images got 2 new upvotes. /notify off stops these notices.");
    /* Told: another restart has nothing left to tell. */
    notices_free(x->n);
    lt_ledger_close(&x->lt);
    lt_ledger_open(&x->lt);
    nx_open(x);
    x->manual.ms += 2 * HOUR;
    notices_tick(x->n);
    nx_flush(x);
    assert_int_equal(x->sent, 2);
}

/* The notices may be freed (the daemon stopping, a reload) while their
 * store jobs are still queued: what answers later touches nothing freed
 * and tells nobody; what was owed to a job (its done) still runs, so the
 * job can end. */
static void test_freed_while_reading(void **state)
{
    struct nx *x = *state;
    notices_upvote(x->n, COMMAND_PLATFORM_TELEGRAM, "42");
    x->manual.ms += 10 * 60000;
    notices_upvote(x->n, COMMAND_PLATFORM_TELEGRAM, "42");
    nx_flush(x);
    size_t sent = x->sent;

    /* An hour on: a tick's look and a vote, both due, still queued. */
    x->manual.ms += HOUR;
    notices_tick(x->n);
    notices_upvote(x->n, COMMAND_PLATFORM_TELEGRAM, "43");
    int done = 0;
    assert_int_equal(notices_balance(x->n, "telegram:7", 10, NULL, nx_done_count, &done), 1);
    notices_free(x->n);
    x->n = NULL;
    nx_flush(x);
    assert_int_equal(done, 1);
    assert_int_equal(x->sent, sent); /* nothing sent for freed notices */
    nx_open(x);
}

/* Two daemons on one ledger (each its own notices, one store): the upvotes
 * counted through either make one total, told once an interval by
 * whichever daemon finds it due, never once by each. */
static void test_upvotes_two_daemons_one_count(void **state)
{
    struct nx *x = *state;
    struct notices *other = notices_new(ledger_store(x->lt.ledger), nx_notify, x, &x->opts);
    assert_non_null(other);
    notices_upvote(x->n, COMMAND_PLATFORM_DISCORD, "42");
    nx_flush(x);
    assert_int_equal(x->sent, 1);
    /* Within the hour: votes through both, none told yet. */
    x->manual.ms += 10 * 60000;
    notices_upvote(other, COMMAND_PLATFORM_DISCORD, "42");
    notices_upvote(other, COMMAND_PLATFORM_DISCORD, "42");
    notices_upvote(x->n, COMMAND_PLATFORM_DISCORD, "42");
    nx_flush(x);
    assert_int_equal(x->sent, 1);
    /* The hour is up and both tick: one notice carries all three. */
    x->manual.ms += 50 * 60000;
    notices_tick(other);
    notices_tick(x->n);
    nx_flush(x);
    assert_int_equal(x->sent, 2);
    assert_string_equal(x->to[1].user_id, "42");
    assert_string_equal(x->text[1],
                        "Your images got 3 new upvotes. /notify off stops these notices.");
    /* Another hour: nothing left for either to tell. */
    x->manual.ms += HOUR;
    notices_tick(x->n);
    notices_tick(other);
    nx_flush(x);
    assert_int_equal(x->sent, 2);
    notices_free(other);
}

/* Two daemons on one ledger: a wallet read low on one, topped up and read
 * on the other, then read low on the first again has crossed twice, and
 * is told twice; readings on the same side, on either, tell nothing. */
static void test_low_balance_two_daemons(void **state)
{
    struct nx *x = *state;
    notices_free(x->n);
    x->opts.shared = true;
    nx_open(x);
    struct notices *other = notices_new(ledger_store(x->lt.ledger), nx_notify, x, &x->opts);
    assert_non_null(other);
    nx_balance(x, "discord:5", 10);
    assert_int_equal(x->sent, 1);
    assert_true(notices_balance(other, "discord:5", 500, NULL, NULL, NULL) >= 0);
    nx_flush(x);
    nx_balance(x, "discord:5", 10);
    assert_int_equal(x->sent, 2);
    nx_balance(x, "discord:5", 9);
    assert_true(notices_balance(other, "discord:5", 8, NULL, NULL, NULL) >= 0);
    nx_flush(x);
    assert_int_equal(x->sent, 2);
    notices_free(other);
}

/* An upvote notice a standby may not send (to Telegram) is owed, and the
 * poller's pass sends it once, with its count. */
static void test_upvotes_owed_by_a_standby(void **state)
{
    struct nx *x = *state;
    x->refuse = 1;
    x->refuse_rc = HB_ESTATE;
    notices_upvote(x->n, COMMAND_PLATFORM_TELEGRAM, "8");
    notices_upvote(x->n, COMMAND_PLATFORM_TELEGRAM, "8");
    nx_flush(x);
    assert_int_equal(x->sent, 0);
    x->manual.ms += 15000;
    nx_poller_pass(x);
    assert_int_equal(x->sent, 1);
    assert_int_equal(x->to[0].platform, COMMAND_PLATFORM_TELEGRAM);
    assert_string_equal(x->to[0].user_id, "8");
    assert_string_equal(x->text[0],
                        "Your images got 1 new upvote. /notify off stops these notices.");
    nx_poller_pass(x);
    assert_int_equal(x->sent, 1);
    /* The second vote waits for its hour, as it would on the poller. */
    x->manual.ms += HOUR;
    notices_tick(x->n);
    nx_flush(x);
    assert_int_equal(x->sent, 2);
    assert_string_equal(x->text[1],
                        "Your images got 1 new upvote. /notify off stops these notices.");
}

/* An upvote notice no adapter took (none runs for the creator's platform
 * on this daemon, or the daemon is stopping) gives its count back to the
 * untold ones, told with the next notice (before, those upvotes were
 * taken off the count and never told). */
static void test_upvotes_not_taken_are_told_later(void **state)
{
    struct nx *x = *state;
    x->refuse = 1; /* no adapter */
    notices_upvote(x->n, COMMAND_PLATFORM_DISCORD, "7");
    nx_flush(x);
    assert_int_equal(x->sent, 0);
    notices_upvote(x->n, COMMAND_PLATFORM_DISCORD, "7");
    nx_flush(x);
    assert_int_equal(x->sent, 0);
    x->manual.ms += HOUR;
    notices_tick(x->n);
    nx_flush(x);
    assert_int_equal(x->sent, 1);
    assert_string_equal(x->text[0],
                        "Your images got 2 new upvotes. /notify off stops these notices.");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_upvotes_across_restart, setup, teardown),
    cmocka_unit_test_setup_teardown(test_low_balance_once_per_crossing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_low_balance_across_restart, setup, teardown),
    cmocka_unit_test_setup_teardown(test_low_balance_owed_by_a_standby, setup, teardown),
    cmocka_unit_test_setup_teardown(test_notify_off_silences, setup, teardown),
    cmocka_unit_test_setup_teardown(test_upvotes_batched_hourly, setup, teardown),
    cmocka_unit_test_setup_teardown(test_freed_while_reading, setup, teardown),
    cmocka_unit_test_setup_teardown(test_upvotes_two_daemons_one_count, setup, teardown),
    cmocka_unit_test_setup_teardown(test_low_balance_two_daemons, setup, teardown),
    cmocka_unit_test_setup_teardown(test_upvotes_owed_by_a_standby, setup, teardown),
    cmocka_unit_test_setup_teardown(test_upvotes_not_taken_are_told_later, setup, teardown),
};

TEST_GROUP_DEFINE(notice, tests, lt_group_setup, lt_group_teardown)
