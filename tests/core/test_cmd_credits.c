/* The credit commands through the neutral path: router, handlers and a real
 * ledger on a loop. */
#include "tests/test.h"

#include "bot/config.h"
#include "bot/router.h"
#include "core/core.h"
#include "core/deposit.h"
#include "base/error.h"
#include "core/ledger.h"
#include "base/metrics.h"
#include "tests/core/ledger_helpers.h"
#include "tests/core/router_fixture.h"
#include "tests/fake/reply_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Who runs a command, and where. */
struct who {
    const char *user;
    const char *scope; /* NULL: a DM */
    bool admin;
    const char *event; /* NULL: a fresh event id */
    const char *button;
    uint64_t role; /* a Discord role the member holds; 0: none */
};

/* Run one command line (or a button press) and wait for its reply to end.
 * Returns the text it answered (owned by the fixture until the next call). */
static const char *run(struct rfx *f, const struct who *w, const char *line)
{
    reply_capture_close(&f->cap);
    reply_capture_init(&f->cap);
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = COMMAND_PLATFORM_DISCORD;
    snprintf(inv.user_id, sizeof(inv.user_id), "%s", w->user);
    if (w->scope != NULL) {
        inv.scope = COMMAND_SCOPE_GROUP;
        snprintf(inv.scope_id, sizeof(inv.scope_id), "%s", w->scope);
        snprintf(inv.channel_id, sizeof(inv.channel_id), "chan-%s", w->scope);
    }
    inv.admin = w->admin;
    if (w->role != 0) {
        inv.roles[0] = w->role;
        inv.nroles = 1;
    }
    if (w->event != NULL)
        snprintf(inv.event_id, sizeof(inv.event_id), "%s", w->event);
    else
        snprintf(inv.event_id, sizeof(inv.event_id), "ev%d", ++f->event);
    if (w->button != NULL)
        snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", w->button);
    inv.reply = &f->cap.reply;
    router_dispatch(f->router, &inv, w->button != NULL ? NULL : line);
    while (f->cap.finished == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(f->cap.finished, 1);
    return f->cap.text != NULL ? f->cap.text : "";
}

static const struct who alice = {.user = "1001"};
static const struct who bob = {.user = "1002"};

static void test_start_opens_wallet_once(void **state)
{
    struct rfx *f = *state;
    const char *t = run(f, &alice, "start");
    assert_non_null(strstr(t, "welcome bonus of 100 credits"));
    assert_non_null(strstr(t, "Your wallet: 100 credits available"));
    assert_true(f->cap.last_personal); /* a balance: the member's alone */
    t = run(f, &alice, "start");
    assert_non_null(strstr(t, "Welcome back to Test Bot"));
    assert_non_null(strstr(t, "100 credits available"));
    /* Any first command opens the wallet: bob starts with /balance. */
    t = run(f, &bob, "balance");
    assert_non_null(strstr(t, "welcome bonus of 100"));
    assert_true(f->cap.last_ephemeral);
    assert_true(f->cap.last_personal);
    assert_int_equal(lt_balance(&f->lt, "discord:1002").available, 100);
}

/* In a private chat /start tells the member their id, as bot.conf's admin
 * and [access] lists want it; in a group it does not show it to all. */
static void test_start_tells_id_in_dm(void **state)
{
    struct rfx *f = *state;
    const char *t = run(f, &alice, "start");
    assert_non_null(strstr(t, "Your discord user id is 1001 (in bot.conf's [access] lists: "
                              "discord:1001)."));
    struct who in_group = {.user = "1002", .scope = "g1"};
    t = run(f, &in_group, "start");
    assert_non_null(strstr(t, "welcome bonus"));
    assert_null(strstr(t, "user id"));
}

/* The wallet account's balance read: its result code (HB_ENOTFOUND when no
 * wallet was ever opened). */
static int wallet_rc(struct rfx *f, const char *account)
{
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    int rc = ledger_balance_get(f->lt.ledger, account, lt_cb, &res);
    if (rc < 0)
        return rc;
    lt_wait(&f->lt, &res);
    return res.rc;
}

/* [access] through the router: a member holding a blocked Discord role is
 * refused before any handler runs, so no wallet and no bonus; without the
 * role, or as an admin, they get in. */
static void test_access_blocked_role_opens_nothing(void **state)
{
    struct rfx *f = *state;
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.access.block_roles = (char *)"discord:666";
    cfg.access.allow_groups = (char *)"discord:777";
    cfg.access.dms = true;
    assert_int_equal(router_access_configure(f->router, &cfg), 0);
    struct who banned = {.user = "1003", .scope = "777", .role = 666};
    const char *t = run(f, &banned, "start");
    assert_string_equal(t, "Sorry, you may not use this bot here. Your id is discord:1003.");
    assert_true(f->cap.last_ephemeral);
    t = run(f, &banned, "chat hello");
    assert_non_null(strstr(t, "Sorry, you may not use this bot here."));
    assert_int_equal(wallet_rc(f, "discord:1003"), HB_ENOTFOUND);
    /* Another server than the listed one: refused too. */
    struct who elsewhere = {.user = "1004", .scope = "778"};
    t = run(f, &elsewhere, "balance");
    assert_non_null(strstr(t, "Sorry, you may not use this bot here."));
    assert_int_equal(wallet_rc(f, "discord:1004"), HB_ENOTFOUND);
    /* An admin holding the role is let in. */
    struct who admin = {.user = "1005", .scope = "778", .role = 666, .admin = true};
    t = run(f, &admin, "start");
    assert_non_null(strstr(t, "welcome bonus of 100 credits"));
    /* Without the role, in the listed server: in. */
    struct who member = {.user = "1003", .scope = "777", .role = 5};
    t = run(f, &member, "start");
    assert_non_null(strstr(t, "welcome bonus of 100 credits"));
    assert_int_equal(lt_balance(&f->lt, "discord:1003").available, 100);
}

static void test_grant_and_revoke(void **state)
{
    struct rfx *f = *state;
    const char *t = run(f, &bob, "admin grant <@1001> 500");
    assert_non_null(strstr(t, "Only admins"));
    struct who admin = {.user = "9", .admin = true, .event = "grant-event-1"};
    t = run(f, &admin, "admin grant <@1001> 500 contest prize");
    assert_non_null(strstr(t, "Granted 500 credits to 1001"));
    assert_non_null(strstr(t, "600 available")); /* bonus + grant */
    /* The same event delivered again grants nothing more. */
    t = run(f, &admin, "admin grant <@1001> 500 contest prize");
    assert_non_null(strstr(t, "600 available"));
    assert_int_equal(lt_balance(&f->lt, "discord:1001").posted, 600);
    /* The same event id with other values is refused, not applied. */
    t = run(f, &admin, "admin grant <@1001> 700");
    assert_non_null(strstr(t, "already handled"));
    admin.event = NULL;
    t = run(f, &admin, "admin revoke <@1001> 5000");
    assert_non_null(strstr(t, "does not have 5,000 credits available; nothing was revoked"));
    double granted = metrics_value(metrics_std()->credits_moved, (const char *[]){"grant"});
    t = run(f, &admin, "admin revoke <@1001> 250 mistake");
    /* Moves are counted by kind: a revocation is a correction. */
    assert_true(granted >= 500);
    assert_true(metrics_value(metrics_std()->credits_moved, (const char *[]){"reversal"}) >= 250);
    assert_non_null(
        strstr(t, "Revoked 250 credits from 1001. Their wallet now has 350 available."));
    t = run(f, &admin, "admin grant <@1001> 0");
    assert_non_null(strstr(t, "between 1 and"));
    t = run(f, &admin, "admin grant");
    assert_non_null(strstr(t, "Missing `member`"));
    assert_int_equal(lt_verify(f->lt.path, NULL), 0);
}

/* On Discord a member is picked in the member option or mentioned; a
 * written name nobody resolves is refused and nothing is opened for it. */
static void test_grant_to_unknown_name_refused(void **state)
{
    struct rfx *f = *state;
    struct who admin = {.user = "9", .admin = true};
    const char *t = run(f, &admin, "admin grant @alice 50");
    assert_non_null(strstr(t, "I don't know @alice"));
    assert_non_null(strstr(t, "member option"));
    t = run(f, &admin, "admin revoke alice 5");
    assert_non_null(strstr(t, "I don't know alice"));
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_balance_get(f->lt.ledger, "discord:alice", lt_cb, &res), 0);
    lt_wait(&f->lt, &res);
    assert_int_equal(res.rc, HB_ENOTFOUND);
    /* The member option's id (what Discord sends) still works. */
    t = run(f, &admin, "admin grant 1003 50");
    assert_non_null(strstr(t, "Granted 50 credits to 1003"));
    assert_int_equal(lt_balance(&f->lt, "discord:1003").posted, 150);
}

static void test_pools(void **state)
{
    struct rfx *f = *state;
    struct who member = {.user = "1001", .scope = "555"};
    struct who admin = {.user = "9", .scope = "555", .admin = true};
    const char *t = run(f, &alice, "pool");
    assert_non_null(strstr(t, "Pools belong to servers and groups"));
    t = run(f, &member, "balance");
    assert_non_null(strstr(t, "This group's pool: empty"));
    t = run(f, &admin, "admin pool grant 5000 launch");
    assert_non_null(
        strstr(t, "Added 5,000 credits to this group's pool. It now has 5,000 available."));
    t = run(f, &member, "pool");
    assert_non_null(strstr(t, "This group's pool: 5,000 credits available"));
    assert_non_null(strstr(t, "pool first"));
    assert_non_null(strstr(t, "Daily cap: none."));
    t = run(f, &admin, "admin pool policy wallet_first");
    assert_non_null(strstr(t, "their own wallet first"));
    t = run(f, &admin, "admin pool limit 2000");
    assert_non_null(strstr(t, "at most 2,000 credits a day"));
    t = run(f, &member, "pool");
    assert_non_null(strstr(t, "wallet first"));
    assert_non_null(strstr(t, "Daily cap: 2,000 credits per day."));
    t = run(f, &admin, "admin pool policy sideways");
    assert_non_null(strstr(t, "one of: pool_first, wallet_first"));
    /* Another group's pool is another account. */
    struct who other = {.user = "1001", .scope = "777"};
    t = run(f, &other, "balance");
    assert_non_null(strstr(t, "This group's pool: empty"));
    struct who dm_admin = {.user = "9", .admin = true};
    t = run(f, &dm_admin, "admin pool grant 5");
    assert_non_null(strstr(t, "run this there"));
}

/* What everyone reads where the platform cannot hide a note (a Telegram
 * group): every text that is not personal. */
static const char *shown(const struct rfx *f)
{
    return f->cap.shown_text != NULL ? f->cap.shown_text : "";
}

static const char *personal(const struct rfx *f)
{
    return f->cap.personal_text != NULL ? f->cap.personal_text : "";
}

/* In a group a grant's confirmation names the amount and the member, never
 * the member's balance: that goes to the admin alone, as an aside (shown
 * where the platform can hide it, left out where it cannot). A pool's
 * balance is the group's own and stays in the confirmation. */
static void test_grant_in_group_keeps_balance_private(void **state)
{
    struct rfx *f = *state;
    struct who admin = {.user = "9", .scope = "555", .admin = true};
    run(f, &admin, "admin grant <@1001> 500");
    assert_non_null(strstr(shown(f), "Granted 500 credits to 1001."));
    assert_null(strstr(shown(f), "600"));
    assert_null(strstr(shown(f), "available"));
    assert_int_equal(f->cap.nasides, 1);
    assert_string_equal(personal(f), "1001's wallet now has 600 credits available.");
    run(f, &admin, "admin revoke <@1001> 250");
    assert_non_null(strstr(shown(f), "Revoked 250 credits from 1001."));
    assert_null(strstr(shown(f), "350"));
    assert_int_equal(f->cap.nasides, 1);
    assert_string_equal(personal(f), "1001's wallet now has 350 credits available.");
    /* Too much to revoke: the refusal says so without a figure, or even a
     * bound on one; the admin alone hears what is available. */
    run(f, &admin, "admin revoke <@1001> 5000");
    assert_non_null(strstr(shown(f), "nothing was revoked"));
    assert_null(strstr(shown(f), "5,000"));
    assert_null(strstr(shown(f), "350"));
    assert_int_equal(f->cap.nasides, 1);
    assert_string_equal(personal(f), "1001's wallet now has 350 credits available.");
    assert_int_equal(lt_balance(&f->lt, "discord:1001").posted, 350);
    /* In a DM the whole answer is the admin's: one message, as before. */
    struct who dm_admin = {.user = "9", .admin = true};
    const char *t = run(f, &dm_admin, "admin grant <@1001> 50");
    assert_string_equal(t, "Granted 50 credits to 1001. Their wallet now has 400 available.");
    assert_int_equal(f->cap.npersonal, 0);
    /* The pool's balance is the group's. */
    run(f, &admin, "admin pool grant 70");
    assert_non_null(strstr(f->cap.public_text, "It now has 70 available."));
    assert_int_equal(f->cap.npersonal, 0);
}

/* A member's first command in a group opens their wallet; an answer the
 * group reads (/pool, /deposit) welcomes them without stating what the
 * wallet holds: the bonus is told to the member alone. */
static void test_group_welcome_keeps_bonus_private(void **state)
{
    struct rfx *f = *state;
    struct who member = {.user = "1001", .scope = "555"};
    run(f, &member, "pool");
    assert_non_null(strstr(shown(f), "This group's pool is empty."));
    assert_null(strstr(shown(f), "100 credits"));
    assert_non_null(strstr(personal(f), "welcome bonus of 100 credits"));
    struct who other = {.user = "1002", .scope = "555"};
    run(f, &other, "deposit");
    assert_null(strstr(shown(f), "100 credits"));
    assert_non_null(strstr(personal(f), "welcome bonus of 100 credits"));
    /* In a DM the welcome is part of the answer, as before. */
    struct who third = {.user = "1003"};
    const char *t = run(f, &third, "deposit");
    assert_non_null(strstr(t, "welcome bonus of 100 credits"));
    assert_int_equal(f->cap.npersonal, 0);
}

static void test_history_pages_and_buttons(void **state)
{
    struct rfx *f = *state;
    struct who admin = {.user = "9", .admin = true};
    for (int i = 1; i <= 19; i++) {
        char line[64];
        snprintf(line, sizeof(line), "admin grant <@1001> %d", i);
        run(f, &admin, line);
    }
    /* 20 entries: the bonus and 19 grants; 8 a page. */
    const char *t = run(f, &alice, "history");
    assert_non_null(strstr(t, "page 1"));
    assert_non_null(strstr(t, "+19  grant"));
    assert_int_equal(f->cap.nbuttons, 1);
    assert_true(f->cap.last_personal);
    assert_string_equal(f->cap.buttons[0].label, "Older");
    char older[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(older, sizeof(older), "%s", f->cap.buttons[0].ref);

    /* A new transfer does not shift the pages being read. */
    run(f, &admin, "admin grant <@1001> 77");
    struct who press = {.user = "1001", .button = older};
    t = run(f, &press, NULL);
    assert_non_null(strstr(t, "page 2"));
    assert_non_null(strstr(t, "+11  grant"));
    assert_null(strstr(t, "+77"));
    assert_int_equal(f->cap.nbuttons, 2);
    char older2[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(older2, sizeof(older2), "%s", f->cap.buttons[1].ref);
    press.button = older2;
    t = run(f, &press, NULL);
    assert_non_null(strstr(t, "page 3"));
    assert_non_null(strstr(t, "+100  welcome bonus"));
    assert_int_equal(f->cap.nbuttons, 1); /* only "Newer" */
    assert_string_equal(f->cap.buttons[0].label, "Newer");

    /* Bob pressing alice's button, or a forged ref: refused politely. */
    struct who thief = {.user = "1002", .button = older};
    t = run(f, &thief, NULL);
    assert_non_null(strstr(t, "belongs to someone else"));
    char forged[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(forged, sizeof(forged), "%s", older);
    forged[5] = forged[5] == '9' ? '8' : '9';
    press.button = forged;
    t = run(f, &press, NULL);
    assert_true(strstr(t, "belongs to someone else") != NULL ||
                strstr(t, "no longer active") != NULL);
    t = run(f, &alice, "history 13");
    assert_non_null(strstr(t, "between 1 and 12"));
}

static char *personal_text(void *host, const char *wallet, const char *pool)
{
    (void)host;
    char *text = NULL;
    if (asprintf(&text, "pay for %s (pool %s)", wallet, pool != NULL ? pool : "-") < 0)
        return NULL;
    return text;
}

static void test_usage_and_deposit(void **state)
{
    struct rfx *f = *state;
    const char *t = run(f, &alice, "usage");
    assert_non_null(strstr(t, "No generations in the last 7 days."));
    struct lt_res res;
    assert_int_equal(lt_plain(&f->lt, "gen-1", "discord:1001", LEDGER_SYSTEM_REVENUE, 12,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    struct ledger_transfer tr = {.id = "gen-2",
                                 .debit = "discord:1001",
                                 .credit = LEDGER_SYSTEM_REVENUE,
                                 .amount = 30,
                                 .kind = LEDGER_KIND_GENERATION,
                                 .tag = "demo-chat"};
    assert_int_equal(lt_transfer(&f->lt, &tr, &res), 0);
    t = run(f, &alice, "usage day");
    assert_non_null(strstr(t, "demo-chat: 1 generation, 30 credits"));
    assert_non_null(strstr(t, "Total: 2 generations, 42 credits."));
    assert_true(f->cap.last_personal);
    t = run(f, &alice, "usage decade");
    assert_non_null(strstr(t, "one of: day, week, month, year"));
    t = run(f, &alice, "deposit");
    assert_non_null(strstr(t, "No payment method is set up"));
    f->core.deposit_text = "Buy credits with Telegram Stars: /deposit in the Telegram bot.";
    t = run(f, &alice, "deposit");
    assert_non_null(strstr(t, "Telegram Stars"));
    /* With payments set up, the member gets links made for their accounts. */
    static const struct core_host_ops ops = {.deposit_text_for = personal_text};
    f->core.host_ops = &ops;
    struct who member = {.user = "1001", .scope = "555"};
    t = run(f, &member, "deposit");
    /* The pool's link names the chat it was asked in, so the group hears
     * there when the payment arrives. */
    assert_non_null(strstr(t, "pay for discord:1001 (pool pool:discord:555#chan-555)"));
}

struct dep_wait {
    int done;
    int rc;
    struct deposit_result r;
};

static void dep_done(int rc, const struct deposit_result *r, void *data)
{
    struct dep_wait *w = data;
    w->done = 1;
    w->rc = rc;
    w->r = *r;
}

static void dep_wait(struct rfx *f, struct dep_wait *w)
{
    while (!w->done)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(w->rc, 0);
}

/* Book a payment of credits to account as id, through the one deposit
 * path every method uses. */
static struct deposit_result deposit(struct rfx *f, const char *id, const char *account,
                                     int64_t credits)
{
    struct dep_wait w = {0};
    struct deposit_credit c = {
        .id = id, .account = account, .credits = credits, .ref = "test", .method = "test"};
    assert_int_equal(deposit_credit(f->lt.ledger, &c, dep_done, &w), 0);
    dep_wait(f, &w);
    return w.r;
}

/* A refund of credits already spent is owed; /balance and /history say
 * so, and the next deposits repay it before anything else. */
static void test_debt_shown_and_repaid(void **state)
{
    struct rfx *f = *state;
    const char *t = run(f, &alice, "balance");
    assert_null(strstr(t, "You owe"));
    deposit(f, "test:pay1", "discord:1001", 1000);
    struct lt_res res;
    assert_int_equal(lt_plain(&f->lt, "spend-1", "discord:1001", LEDGER_SYSTEM_REVENUE, 1050,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    struct dep_wait w = {0};
    struct deposit_reversal rev = {
        .id = "test:refund1", .original = "test:pay1", .credits = 1000, .ref = "refund"};
    assert_int_equal(deposit_reverse(f->lt.ledger, &rev, dep_done, &w), 0);
    dep_wait(f, &w);
    assert_int_equal(w.r.debt, 950);
    t = run(f, &alice, "balance");
    assert_non_null(strstr(t, "Your wallet: 0 credits available"));
    assert_non_null(strstr(t, "You owe 950 credits"));
    t = run(f, &alice, "history");
    assert_non_null(strstr(t, "You owe 950 credits"));
    /* 500 in: all of it repays. */
    struct deposit_result r = deposit(f, "test:pay2", "discord:1001", 500);
    assert_int_equal(r.repaid, 500);
    assert_int_equal(r.balance, 0);
    t = run(f, &alice, "history");
    assert_non_null(strstr(t, "You owe 450 credits"));
    assert_non_null(strstr(t, "-500  debt repaid"));
    /* The same deposit reported again repays nothing more. */
    r = deposit(f, "test:pay2", "discord:1001", 500);
    assert_true(r.existed);
    assert_int_equal(lt_balance(&f->lt, "debt:discord:1001").posted, -450);
    /* 600 in: 450 repay the rest, 150 are the member's. */
    r = deposit(f, "test:pay3", "discord:1001", 600);
    assert_int_equal(r.repaid, 450);
    assert_int_equal(r.balance, 150);
    t = run(f, &alice, "balance");
    assert_non_null(strstr(t, "150 credits available"));
    assert_null(strstr(t, "You owe"));
    assert_int_equal(lt_balance(&f->lt, "debt:discord:1001").posted, 0);

    /* A group's pool that owes says so in /balance too. */
    const struct who in_group = {.user = "1001", .scope = "g1"};
    deposit(f, "test:pool1", "pool:discord:g1", 300);
    assert_int_equal(lt_plain(&f->lt, "spend-p", "pool:discord:g1", LEDGER_SYSTEM_REVENUE, 200,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    struct dep_wait pw = {0};
    struct deposit_reversal prev = {
        .id = "test:refundp", .original = "test:pool1", .credits = 300, .ref = "refund"};
    assert_int_equal(deposit_reverse(f->lt.ledger, &prev, dep_done, &pw), 0);
    dep_wait(f, &pw);
    t = run(f, &in_group, "balance");
    assert_non_null(strstr(t, "This group's pool owes 200 credits"));
    assert_null(strstr(t, "You owe"));
    assert_int_equal(lt_verify(f->lt.path, NULL), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_start_opens_wallet_once, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_start_tells_id_in_dm, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_access_blocked_role_opens_nothing, rfx_setup,
                                    rfx_teardown),
    cmocka_unit_test_setup_teardown(test_grant_and_revoke, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_grant_to_unknown_name_refused, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_pools, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_grant_in_group_keeps_balance_private, rfx_setup,
                                    rfx_teardown),
    cmocka_unit_test_setup_teardown(test_group_welcome_keeps_bonus_private, rfx_setup,
                                    rfx_teardown),
    cmocka_unit_test_setup_teardown(test_history_pages_and_buttons, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_usage_and_deposit, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_debt_shown_and_repaid, rfx_setup, rfx_teardown),
};

TEST_GROUP_DEFINE(cmd_credits, tests, lt_group_setup, lt_group_teardown)
