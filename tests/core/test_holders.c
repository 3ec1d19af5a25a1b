/* Holder shares (core/holders.c) on a fake clock, through the real router
 * and ledger: the settings parse or are refused with a clear sentence; a
 * group's holder account is paid out pro rata after each period, exactly
 * once, also across a restart, when the daemon was down at the payout time
 * and when two daemons on one ledger pay at once; rounding leaves the
 * remainder in the account; /earnings shows what a member received. */
#include "tests/test.h"

#include "base/error.h"
#include "bot/router.h"
#include "core/holders.h"
#include "core/ledger.h"
#include "core/link.h"
#include "core/revenue.h"
#include "core/state.h"
#include "core/votes.h"
#include "tests/core/router_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define SATURDAY 1796472000000LL /* 2026-12-05 12:00 UTC */
#define TG_HOLD "holders:telegram:g1"
#define DC_HOLD "holders:discord:77"

/* ---- settings ------------------------------------------------------------------ */

static void test_config(void **state)
{
    (void)state;
    struct holders_config *c = malloc(sizeof(*c));
    assert_non_null(c);
    char err[256];
    assert_int_equal(holders_config_parse("discord:555, discord:556",
                                          "telegram:g1/u1*3 telegram:g1/u2, discord:77/9",
                                          HOLDERS_DAILY, c, err, sizeof(err)),
                     0);
    assert_int_equal(c->nroles, 2);
    assert_true(c->roles[1] == 556);
    assert_int_equal(c->nmembers, 3);
    assert_string_equal(c->members[0].scope, "telegram:g1");
    assert_string_equal(c->members[0].user, "u1");
    assert_int_equal(c->members[0].weight, 3);
    assert_int_equal(c->members[1].weight, 1);
    assert_int_equal(c->every, HOLDERS_DAILY);

    assert_int_equal(holders_config_parse("555", NULL, HOLDERS_WEEKLY, c, err, sizeof(err)),
                     HB_EINVAL);
    assert_string_equal(err, "holder_roles: \"555\" is not a Discord role (discord:<role id>)");
    assert_int_equal(holders_config_parse(NULL, "telegram:u1", HOLDERS_WEEKLY, c, err, sizeof(err)),
                     HB_EINVAL);
    assert_string_equal(err, "holder_members: \"telegram:u1\" is not a member of a group "
                             "(<platform>:<group>/<user>, optionally *weight from 1 to 1000000)");
    assert_int_equal(
        holders_config_parse(NULL, "telegram:g1/u1*0", HOLDERS_WEEKLY, c, err, sizeof(err)),
        HB_EINVAL);
    assert_int_equal(
        holders_config_parse(NULL, "matrix:g1/u1", HOLDERS_WEEKLY, c, err, sizeof(err)), HB_EINVAL);
    assert_int_equal(holders_config_parse(NULL, "telegram:g1/u1, telegram:g1/u1", HOLDERS_WEEKLY, c,
                                          err, sizeof(err)),
                     HB_EINVAL);
    assert_string_equal(err, "holder_members: telegram:g1/u1 is named twice");

    /* Against the split: the share and the holders go together. */
    struct revenue_split split;
    assert_int_equal(revenue_split_parse("holders:<scope> 25%, system:developers 75%", NULL, NULL,
                                         &split, err, sizeof(err)),
                     0);
    assert_int_equal(holders_config_parse(NULL, NULL, HOLDERS_WEEKLY, c, err, sizeof(err)), 0);
    assert_int_equal(holders_config_check(&split, c, err, sizeof(err)), HB_EINVAL);
    assert_string_equal(err, "shares: holders:<scope> needs holders: set holder_roles (Discord) "
                             "or holder_members (<platform>:<group>/<user>)");
    assert_int_equal(holders_config_parse("discord:5", NULL, HOLDERS_WEEKLY, c, err, sizeof(err)),
                     0);
    assert_int_equal(holders_config_check(&split, c, err, sizeof(err)), 0);
    assert_int_equal(
        revenue_split_parse("system:developers 100%", NULL, NULL, &split, err, sizeof(err)), 0);
    assert_int_equal(holders_config_check(&split, c, err, sizeof(err)), HB_EINVAL);
    assert_string_equal(err, "holder_roles and holder_members need a share to holders:<scope>");
    assert_int_equal(revenue_split_parse("holders:x 25%, system:developers 75%", NULL, NULL, &split,
                                         err, sizeof(err)),
                     0);
    assert_int_equal(holders_config_check(&split, c, err, sizeof(err)), HB_EINVAL);
    assert_string_equal(err, "shares: holders:x: the holders' share is written holders:<scope>");
    free(c);

    /* The period that ended: the day before, the ISO week before. */
    char p[VOTES_PERIOD_MAX];
    assert_int_equal(holders_period_ended(HOLDERS_DAILY, SATURDAY, p, sizeof(p)), 0);
    assert_string_equal(p, "d2026-12-04");
    assert_int_equal(holders_period_ended(HOLDERS_WEEKLY, SATURDAY, p, sizeof(p)), 0);
    assert_string_equal(p, "w2026-W48");
    assert_int_equal(holders_period_ended(HOLDERS_WEEKLY, SATURDAY + 2 * DAY_MS, p, sizeof(p)), 0);
    assert_string_equal(p, "w2026-W49"); /* Monday 12:00: the week to Sunday ended */

    /* Pro rata, rounded down; the remainder is what is left, never more. */
    struct holders_payee py[3] = {{.user = "a", .weight = 3}, {.user = "b", .weight = 1}};
    assert_int_equal(holders_split(7, py, 2), 1);
    assert_int_equal(py[0].amount, 5);
    assert_int_equal(py[1].amount, 1);
    assert_int_equal(holders_split(1000, py, 2), 0);
    assert_int_equal(py[0].amount, 750);
    assert_int_equal(holders_split(5, py, 0), 5);
    uint64_t r = 99;
    for (int i = 0; i < 1000; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        py[0].weight = (int64_t)(r >> 40) % HOLDERS_WEIGHT_MAX + 1;
        py[1].weight = (int64_t)(r >> 20) % 7 + 1;
        py[2].weight = (int64_t)(r >> 50) % 100 + 1;
        int64_t bal = (int64_t)(r >> 24) % 1000000000;
        int64_t left = holders_split(bal, py, 3);
        assert_int_equal(py[0].amount + py[1].amount + py[2].amount + left, bal);
        assert_true(left >= 0 && left < 3);
    }
}

/* ---- payouts -------------------------------------------------------------------- */

static int64_t fake_clock(void *data)
{
    return ((struct lt *)data)->now;
}

static const char *run(struct rfx *f, enum command_platform platform, const char *scope_id,
                       const char *user, uint64_t role, const char *line)
{
    struct invocation inv;
    rfx_inv(&inv, platform, user, scope_id);
    if (role != 0) {
        inv.roles[0] = role;
        inv.nroles = 1;
    }
    return rfx_run(f, &inv, line);
}

/* A settlement's holder share, as ledger_transfer_post_split books it. */
static void accrue(struct rfx *f, const char *account, int64_t amount)
{
    static int n;
    char rid[16], pid[16];
    snprintf(rid, sizeof(rid), "hr%d", n);
    snprintf(pid, sizeof(pid), "hp%d", n++);
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(
        lt_reserve(&f->lt, rid, "telegram:payer", LEDGER_SYSTEM_REVENUE, amount, 60000, &res), 0);
    struct ledger_share sh[1] = {{account, amount}};
    struct ledger_transfer post = {.id = pid, .pending_id = rid, .amount = amount};
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_transfer_post_split(f->lt.ledger, &post, sh, 1, NULL, lt_cb, &res), 0);
    lt_wait(&f->lt, &res);
    assert_int_equal(res.rc, 0);
}

static void settle(struct rfx *f, struct holders **h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 100000 && holders_busy(h[i]) > 0; k++)
            uv_run(&f->lt.loop, UV_RUN_ONCE);
        assert_int_equal(holders_busy(h[i]), 0);
    }
}

static struct holders *start(struct rfx *f, const struct holders_config *cfg)
{
    struct holders *h = holders_new(&f->core);
    assert_non_null(h);
    holders_configure(h, cfg);
    f->core.holders = h;
    return h;
}

static void test_payouts(void **state)
{
    struct rfx *f = *state;
    f->lt.now = SATURDAY;
    f->core.clock = (struct clock){.now_ms = fake_clock, .data = &f->lt};
    struct lt_res res;
    assert_int_equal(lt_open(&f->lt, "telegram:payer", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(lt_plain(&f->lt, "fund", LEDGER_SYSTEM_GRANTS, "telegram:payer", 100000,
                              LEDGER_KIND_GRANT, &res),
                     0);
    struct holders_config *cfg = malloc(sizeof(*cfg));
    assert_non_null(cfg);
    char err[256];
    assert_int_equal(holders_config_parse("discord:555", "telegram:g1/u1*3, telegram:g1/u2",
                                          HOLDERS_DAILY, cfg, err, sizeof(err)),
                     0);
    struct holders *h[2] = {start(f, cfg), NULL};

    /* Discord members are seen holding the role (or not) at any command. */
    run(f, COMMAND_PLATFORM_DISCORD, "77", "900", 555, "balance");
    run(f, COMMAND_PLATFORM_DISCORD, "77", "901", 0, "balance");
    run(f, COMMAND_PLATFORM_DISCORD, "77", "902", 555, "balance");
    run(f, COMMAND_PLATFORM_DISCORD, "77", "902", 0, "balance"); /* dropped it */

    /* The first pass at start: yesterday's period, nothing accrued yet. */
    assert_true(holders_tick(h[0]));
    settle(f, h, 1);
    assert_false(holders_tick(h[0])); /* done for this period */
    accrue(f, TG_HOLD, 1000);
    accrue(f, DC_HOLD, 101);
    assert_false(holders_tick(h[0]));
    assert_int_equal(lt_balance(&f->lt, TG_HOLD).posted, 1000);

    /* The day ends: the accounts are paid out pro rata. */
    f->lt.now += DAY_MS;
    assert_true(holders_tick(h[0]));
    settle(f, h, 1);
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 750 + 100); /* + welcome bonus */
    assert_int_equal(lt_balance(&f->lt, "telegram:u2").posted, 250 + 100);
    assert_int_equal(lt_balance(&f->lt, TG_HOLD).posted, 0);
    assert_int_equal(lt_balance(&f->lt, "discord:900").posted, 101 + 100);
    assert_int_equal(lt_balance(&f->lt, "discord:902").posted, 100); /* no longer holds */
    assert_int_equal(lt_balance(&f->lt, DC_HOLD).posted, 0);
    struct lt_res t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(
        ledger_transfer_get(f->lt.ledger, "holders:telegram:g1:d2026-12-05:u1", lt_cb, &t), 0);
    lt_wait(&f->lt, &t);
    assert_int_equal(t.rc, 0);

    /* /earnings shows it to the member. */
    const char *text = run(f, COMMAND_PLATFORM_TELEGRAM, "g1", "u1", 0, "earnings");
    assert_non_null(strstr(text, "Holder payouts credited to your wallet: "));
    assert_non_null(strstr(text, "750 in all, from 1 payout."));

    /* A restart pays nothing again. */
    holders_free(h[0]);
    h[0] = start(f, cfg);
    assert_true(holders_tick(h[0]));
    settle(f, h, 1);
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 850);
    assert_int_equal(lt_balance(&f->lt, "discord:900").posted, 201);

    /* Down across the next payout time (three days): at the start two
     * daemons on the ledger pay what accrued, once; the rounding's credit
     * stays in the account. */
    accrue(f, TG_HOLD, 7);
    holders_free(h[0]);
    f->core.holders = NULL;
    lt_ledger_close(&f->lt);
    f->lt.now += 3 * DAY_MS;
    lt_ledger_open(&f->lt);
    f->core.ledger = f->lt.ledger;
    h[0] = start(f, cfg);
    h[1] = start(f, cfg);
    assert_true(holders_tick(h[0]));
    assert_true(holders_tick(h[1]));
    settle(f, h, 2);
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 850 + 5);
    assert_int_equal(lt_balance(&f->lt, "telegram:u2").posted, 350 + 1);
    assert_int_equal(lt_balance(&f->lt, TG_HOLD).posted, 1);
    /* Each looks once more (a payout made, the period is checked again),
     * then is done with the period. */
    for (size_t i = 0; i < 2; i++) {
        holders_tick(h[i]);
        settle(f, h, 2);
        assert_false(holders_tick(h[i]));
    }
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 855);
    assert_int_equal(lt_balance(&f->lt, "telegram:u2").posted, 351);

    /* A payout fixed before a crash, not yet paid: the next pass pays it
     * as fixed, once. */
    assert_int_equal(state_put(ledger_store(f->lt.ledger), HOLDERS_NS_PAYOUT, "telegram:g1",
                               "fixed d2026-12-09\nu2 1", NULL, NULL),
                     0);
    f->lt.now += DAY_MS;
    assert_true(holders_tick(h[0]));
    settle(f, h, 1);
    assert_int_equal(lt_balance(&f->lt, "telegram:u2").posted, 352);
    assert_int_equal(lt_balance(&f->lt, TG_HOLD).posted, 0);
    /* Then the period of now, with nothing left: a pass finds nothing. */
    assert_true(holders_tick(h[0]));
    settle(f, h, 1);
    assert_int_equal(lt_balance(&f->lt, "telegram:u2").posted, 352);
    assert_false(holders_tick(h[0]));
    text = run(f, COMMAND_PLATFORM_TELEGRAM, "g1", "u2", 0, "earnings");
    assert_non_null(strstr(text, "252 in all, from 3 payouts."));
    assert_int_equal(lt_verify_ledger(&f->lt, NULL), 0);

    holders_free(h[0]);
    holders_free(h[1]);
    f->core.holders = NULL;
    free(cfg);
}

static void linked(int rc, int64_t moved, int64_t held, void *data)
{
    (void)moved;
    (void)held;
    *(int *)data = rc == 0 ? 1 : -1;
}

/* A holder whose identity is linked to another wallet is paid into the
 * wallet they spend (and /earnings, reading it, shows the payout). */
static void test_linked_holder(void **state)
{
    struct rfx *f = *state;
    f->lt.now = SATURDAY;
    f->core.clock = (struct clock){.now_ms = fake_clock, .data = &f->lt};
    f->core.links = link_dir_new();
    assert_non_null(f->core.links);
    struct lt_res res;
    assert_int_equal(lt_open(&f->lt, "telegram:payer", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(lt_plain(&f->lt, "fund", LEDGER_SYSTEM_GRANTS, "telegram:payer", 1000,
                              LEDGER_KIND_GRANT, &res),
                     0);
    assert_int_equal(lt_open(&f->lt, "discord:1", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    int done = 0;
    assert_int_equal(link_join(&f->core, "telegram:u5", "discord:1", "ev-link", linked, &done), 0);
    while (done == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(done, 1);

    struct holders_config *cfg = malloc(sizeof(*cfg));
    assert_non_null(cfg);
    char err[256];
    assert_int_equal(
        holders_config_parse(NULL, "telegram:g1/u5", HOLDERS_DAILY, cfg, err, sizeof(err)), 0);
    struct holders *h[1] = {start(f, cfg)};
    accrue(f, TG_HOLD, 40);
    assert_true(holders_tick(h[0])); /* yesterday's payout: what accrued until now */
    settle(f, h, 1);
    assert_int_equal(lt_balance(&f->lt, "discord:1").posted, 40);
    assert_int_equal(lt_balance(&f->lt, "telegram:u5").posted, 0);
    const char *text = run(f, COMMAND_PLATFORM_TELEGRAM, "g1", "u5", 0, "earnings");
    assert_non_null(strstr(text, "40 in all, from 1 payout."));
    holders_free(h[0]);
    f->core.holders = NULL;
    link_dir_free(f->core.links);
    f->core.links = NULL;
    free(cfg);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_config),
    cmocka_unit_test_setup_teardown(test_payouts, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_linked_holder, rfx_setup, rfx_teardown),
};

/* The payouts again on PostgreSQL, the ledger several daemons share. */
static const struct CMUnitTest pg_tests[] = {
    cmocka_unit_test_setup_teardown(test_payouts, rfx_setup, rfx_teardown),
};

TEST_GROUP_DEFINE(holders, tests, lt_group_setup, lt_group_teardown)
TEST_GROUP_DEFINE(holders_pg, pg_tests, lt_group_setup_pg, lt_group_teardown)
