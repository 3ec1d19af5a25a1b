/* Feature switches, member notices and alerts in the real daemon, through
 * the console: a low balance is told once per crossing, also across
 * restarts, until /notify off; [features] answers that a feature is off;
 * an alert rule fires into the log. */
#include "tests/test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dn {
    char *dir;
    char conf[512];
    char db[512];
};

static int setup(void **state)
{
    struct dn *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = test_tmpdir_new();
    snprintf(f->conf, sizeof(f->conf), "%s/bot.conf", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/haibot.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct dn *f = *state;
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void write_conf(struct dn *f, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "[bot]\nname = Demo Bot\nshutdown_grace = 20\n"
             "[storage]\npath = %s\n"
             "[console]\nuser = tester\nimage_dir = %s\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"demo-chat\"]\nprovider = demo\nprice_request = 1\n%s",
             f->db, f->dir, extra);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Run the daemon on one line of input; returns how many low-balance
 * notices it printed. */
static size_t run_line(struct dn *f, const char *line, const char *expect)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv, line, 30000, &p);
    if (p.status != 0 || (expect != NULL && strstr(p.out, expect) == NULL))
        fail_msg("status %d, no \"%s\" in:\n%s\n%s", p.status, expect != NULL ? expect : "", p.out,
                 p.err);
    size_t n = count(p.out, "[notice] Your wallet is running low");
    test_proc_free(&p);
    return n;
}

static void test_daemon_low_balance_notice(void **state)
{
    struct dn *f = *state;
    write_conf(f, "[notices]\nlow_balance = 100\n");
    /* 100 welcome credits, a chat costs 1: 99 is below 100, told once. */
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv, "/chat one\n", 30000, &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "[notice] Your wallet is running low: 99 credits left (below "
                                  "100). Top up with /deposit."));
    test_proc_free(&p);
    assert_int_equal(run_line(f, "/chat two\n", "cost 1 credit"), 0);
    /* A restart remembers the crossing. */
    assert_int_equal(run_line(f, "/chat three\n", "cost 1 credit"), 0);
    /* Above again (a grant), then below (a revocation): the next
     * generation tells the new crossing. */
    assert_int_equal(run_line(f, "/admin grant tester 10\n", "Granted 10 credits"), 0);
    assert_int_equal(run_line(f, "/chat four\n", "cost 1 credit"), 0); /* 106: above */
    assert_int_equal(run_line(f, "/admin revoke tester 20\n", "Revoked"), 0);
    assert_int_equal(run_line(f, "/chat five\n", "cost 1 credit"), 1); /* 85 */
    /* /notify off: the next crossing is not told. */
    assert_int_equal(run_line(f, "/notify off\n", "Notices are off"), 0);
    assert_int_equal(run_line(f, "/admin grant tester 50\n", "Granted 50 credits"), 0);
    assert_int_equal(run_line(f, "/chat six\n", "cost 1 credit"), 0); /* 134 */
    assert_int_equal(run_line(f, "/admin revoke tester 50\n", "Revoked"), 0);
    assert_int_equal(run_line(f, "/chat seven\n", "cost 1 credit"), 0); /* 83 */
}

static void test_daemon_features_and_alerts(void **state)
{
    struct dn *f = *state;
    write_conf(f, "[features]\nimages = off\n"
                  "[alerts]\nenabled = true\ninterval = 1\ncredits_per_day = 1\n");
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_child c;
    test_child_start(&c, argv);
    assert_true(test_child_wait_for(&c, "err", "console.started", 15000));
    assert_true(write(c.in_fd, "/imagine a cat\n", 15) == 15);
    assert_true(test_child_wait_for(&c, "out", "Images is switched off on this bot.", 15000));
    assert_true(write(c.in_fd, "/chat a\n", 8) == 8);
    assert_true(test_child_wait_for(&c, "out", "cost 1 credit", 15000));
    assert_true(write(c.in_fd, "/chat b\n", 8) == 8);
    /* 2 credits spent today is above 1: the rule fires, into the log. */
    assert_true(test_child_wait_for(&c, "err", "alert.fired rule=credits_per_day", 15000));
    kill(c.pid, SIGTERM);
    int status = test_child_finish(&c, 15000);
    assert_int_equal(status, 0);
    assert_int_equal(count(c.err, "alert.fired"), 1);
    assert_non_null(strstr(c.err, "daemon.stopped"));
    test_child_free(&c);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_daemon_low_balance_notice, setup, teardown),
    cmocka_unit_test_setup_teardown(test_daemon_features_and_alerts, setup, teardown),
};

TEST_GROUP_DEFINE(daemon_notices, tests, NULL, NULL)
