/* [revenue] and [contest] in bot.conf: each mistake reported on the line
 * of the key it is about, a file without the section splitting nothing,
 * and a reload reaching the running split (and the contests' rules)
 * through the operator's controls. */
#include "tests/test.h"

#include "base/error.h"
#include "bot/config.h"
#include "bot/operator.h"
#include "core/contest.h"
#include "core/core.h"
#include "core/revenue.h"
#include "tests/core/ledger_helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int load(const char *path, const char *text, struct config **cfg,
                struct config_problems *problems)
{
    config_free(*cfg);
    *cfg = NULL;
    test_file_write(path, text, (size_t)-1);
    chmod(path, 0600);
    return config_load(path, cfg, problems);
}

static void has_problem(const struct config_problems *p, int line, const char *needle)
{
    for (size_t i = 0; i < p->count; i++) {
        if (p->items[i].line == line && strstr(p->items[i].message, needle) != NULL)
            return;
    }
    for (size_t i = 0; i < p->count; i++)
        print_error("line %d: %s\n", p->items[i].line, p->items[i].message);
    fail_msg("no problem on line %d with \"%s\"", line, needle);
}

static void test_revenue_config_problems(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[600];
    snprintf(path, sizeof(path), "%s/bot.conf", dir);
    struct config *cfg = NULL;
    struct config_problems p;
    config_problems_init(&p);
    assert_int_equal(load(path,
                          "[console]\nenabled = true\n"
                          "[revenue]\n"
                          "shares = system:developers 50%, pool:<scope> 40%\n",
                          &cfg, &p),
                     HB_ECONFIG);
    has_problem(&p, 4, "[revenue] shares add up to 90%, not 100%");
    assert_int_equal(load(path,
                          "[revenue]\n"
                          "shares = system:developers 50%, pool:<scope> 50%\n"
                          "remainder = system:treasury\n"
                          "adjustable = pool:<scope> 60-70%\n",
                          &cfg, &p),
                     HB_ECONFIG);
    has_problem(&p, 4, "[revenue] adjustable: pool:<scope>: its share lies outside the range");
    assert_int_equal(load(path,
                          "[revenue]\n"
                          "shares = system:developers 50%, pool:<scope> 50%\n"
                          "remainder = pool:<scope>\n",
                          &cfg, &p),
                     HB_ECONFIG);
    has_problem(&p, 3, "[revenue] remainder: \"pool:<scope>\" must be one account");
    assert_int_equal(load(path, "[revenue]\nremainder = system:treasury\n", &cfg, &p), HB_ECONFIG);
    has_problem(&p, 1, "[revenue] remainder and adjustable need shares = ...");
    /* Holder shares: the share and the holders go together. */
    assert_int_equal(load(path,
                          "[revenue]\n"
                          "shares = system:developers 75%, holders:<scope> 25%\n",
                          &cfg, &p),
                     HB_ECONFIG);
    has_problem(&p, 2, "[revenue] shares: holders:<scope> needs holders");
    assert_int_equal(load(path,
                          "[revenue]\n"
                          "shares = system:developers 75%, holders:<scope> 25%\n"
                          "holder_members = telegram:42\n",
                          &cfg, &p),
                     HB_ECONFIG);
    has_problem(&p, 3, "[revenue] holder_members: \"telegram:42\" is not a member of a group");
    assert_int_equal(load(path,
                          "[revenue]\n"
                          "shares = system:developers 100%\n"
                          "holder_roles = discord:555\n",
                          &cfg, &p),
                     HB_ECONFIG);
    has_problem(&p, 3, "[revenue] holder_roles and holder_members need a share to holders:<scope>");
    assert_int_equal(load(path,
                          "[revenue]\n"
                          "shares = system:developers 75%, holders:<scope> 25%\n"
                          "holder_members = telegram:-100/42*3\n"
                          "holder_payout = daily\n",
                          &cfg, &p),
                     0);
    assert_int_equal(cfg->revenue.holder_payout, 1);
    assert_int_equal(
        load(path, "[contest]\nwinners = 1\nsplit = 100\nweight_roles = discord:5\n", &cfg, &p),
        HB_ECONFIG);
    has_problem(&p, 4, "[contest] weight_roles: \"discord:5\" is not a Discord role and a weight");
    assert_int_equal(
        load(path, "[contest]\nweight_roles = discord:5 4\nweight_holders = on\n", &cfg, &p), 0);
    assert_true(cfg->contest.weight_holders);
    assert_int_equal(
        load(path, "[contest]\nschedule_period = week\nschedule = discord:77\n", &cfg, &p),
        HB_ECONFIG);
    has_problem(&p, 3, "[contest] schedule: \"discord:77\" is not a group");
    assert_int_equal(
        load(path, "[contest]\nschedule = telegram:-100\nschedule_period = 0\n", &cfg, &p),
        HB_ECONFIG);
    has_problem(&p, 3, "[contest] schedule_period: \"0\" is neither week nor a number of days");
    assert_int_equal(load(path, "[revenue]\nshares = a 100%\n", &cfg, &p), 0);
    assert_string_equal(cfg->revenue.shares, "a 100%");
    assert_int_equal(load(path, "[console]\nenabled = true\n", &cfg, &p), 0);
    assert_null(cfg->revenue.shares);
    config_free(cfg);
    config_problems_free(&p);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_contest_config_problems(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[600];
    snprintf(path, sizeof(path), "%s/bot.conf", dir);
    struct config *cfg = NULL;
    struct config_problems p;
    config_problems_init(&p);
    assert_int_equal(load(path, "[console]\nenabled = true\n[contest]\nwinners = 2\n", &cfg, &p),
                     HB_ECONFIG); /* the default split names three */
    has_problem(&p, 3, "[contest] split names more parts than the 2 winners");
    assert_int_equal(load(path, "[contest]\nwinners = 4\n", &cfg, &p), HB_ECONFIG);
    has_problem(&p, 1, "[contest] split must name one part per winner (4), it names 3");
    assert_int_equal(
        load(path, "[console]\nenabled = true\n[contest]\nwinners = 2\nsplit = 80, 30\n", &cfg, &p),
        HB_ECONFIG);
    has_problem(&p, 5, "[contest] split adds up to 110%, more than 100%");
    assert_int_equal(load(path, "[contest]\nwinners = 11\nsplit = 100\n", &cfg, &p), HB_ECONFIG);
    has_problem(&p, 2, "winners");
    assert_int_equal(load(path, "[contest]\nwinners = 2\nsplit = 70,30\n", &cfg, &p), 0);
    assert_int_equal(cfg->contest.winners, 2);
    assert_int_equal(load(path, "[console]\nenabled = true\n", &cfg, &p), 0);
    assert_int_equal(cfg->contest.winners, 3);
    assert_string_equal(cfg->contest.split, "50,30,20");
    config_free(cfg);
    config_problems_free(&p);
    test_tmpdir_remove(dir);
    free(dir);
}

static void closed(void *data)
{
    *(bool *)data = true;
}

static void test_revenue_reload(void **state)
{
    (void)state;
    struct lt lt;
    lt_init(&lt, true, false);
    char path[600];
    snprintf(path, sizeof(path), "%s/bot.conf", lt.dir);
    struct config *cfg = NULL;
    struct config_problems p;
    config_problems_init(&p);
    assert_int_equal(load(path, "[console]\nenabled = true\n", &cfg, &p), 0);
    struct core core;
    memset(&core, 0, sizeof(core));
    struct operator* op = operator_new(&lt.loop, &core, NULL);
    assert_non_null(op);
    assert_non_null(core.revenue);
    operator_configure(op, cfg);
    assert_int_equal(revenue_config(core.revenue)->n, 0); /* today's behaviour */
    struct revenue_part parts[REVENUE_SHARES_MAX + 1];
    assert_int_equal(revenue_shares(core.revenue, COMMAND_PLATFORM_DISCORD, "5", 100, parts), 0);

    assert_int_equal(load(path,
                          "[console]\nenabled = true\n[revenue]\n"
                          "shares = system:developers 70%, pool:<scope> 30%\n",
                          &cfg, &p),
                     0);
    operator_configure(op, cfg);
    assert_int_equal(revenue_shares(core.revenue, COMMAND_PLATFORM_DISCORD, "5", 100, parts), 2);
    assert_string_equal(parts[1].account, "pool:discord:5");
    assert_int_equal(parts[1].amount, 30);

    assert_int_equal(load(path, "[console]\nenabled = true\n", &cfg, &p), 0);
    operator_configure(op, cfg);
    assert_int_equal(revenue_shares(core.revenue, COMMAND_PLATFORM_DISCORD, "5", 100, parts), 0);

    /* [contest] reaches the running contests too. */
    assert_non_null(core.contests);
    assert_int_equal(contests_rules(core.contests)->winners, 3);
    assert_int_equal(
        load(path, "[console]\nenabled = true\n[contest]\nwinners = 2\nsplit = 60,40\n", &cfg, &p),
        0);
    operator_configure(op, cfg);
    assert_int_equal(contests_rules(core.contests)->winners, 2);
    assert_int_equal(contests_rules(core.contests)->split[1], 40);

    bool done = false;
    operator_close(op, closed, &done);
    while (!done)
        uv_run(&lt.loop, UV_RUN_ONCE);
    operator_free(op);
    assert_null(core.revenue);
    assert_null(core.contests);
    config_free(cfg);
    config_problems_free(&p);
    lt_done(&lt);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_revenue_config_problems),
    cmocka_unit_test(test_contest_config_problems),
    cmocka_unit_test(test_revenue_reload),
};

TEST_GROUP_DEFINE(config_revenue, tests, lt_group_setup, lt_group_teardown)
