/* [access] through the real daemon: the console's member refused by a block
 * list, left out by an allow list, or refused in a DM, with no wallet and no
 * welcome bonus in the database; admins always let in; a refusal in
 * silence; the lists changed by editing bot.conf while the daemon runs;
 * malformed ids reported with their line. */
#include "tests/test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct access_fixture {
    char *dir;
    char conf[512];
    char db[512];
};

#define BLOCKED_TEXT "Sorry, you may not use this bot here. Your id is console:tester."
#define NO_DMS_TEXT "This bot does not answer direct messages"

/* A console daemon with the demo models, the console user not an admin
 * unless admin says so, and the [access] lines given. */
static void write_conf(struct access_fixture *f, bool admin, const char *access)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "[bot]\nname = Access Bot\nlog_level = debug\nshutdown_grace = 5\n"
             "[storage]\npath = %s\n"
             "[ledger]\nwelcome_bonus = 100\n"
             "[console]\nenabled = true\nuser = tester\nadmin = %s\nimage_dir = %s\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"demo-chat\"]\nprovider = demo\nprice_request = 1\n"
             "[access]\n%s",
             f->db, admin ? "true" : "false", f->dir, access);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->conf);
    test_file_write(tmp, text, (size_t)-1);
    chmod(tmp, 0600);
    assert_int_equal(rename(tmp, f->conf), 0);
}

static int setup(void **state)
{
    struct access_fixture *f = calloc(1, sizeof(*f));
    f->dir = test_tmpdir_new();
    snprintf(f->conf, sizeof(f->conf), "%s/bot.conf", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/haibot.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct access_fixture *f = *state;
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Run the daemon over input and return its result (the caller frees it). */
static void run_daemon(struct access_fixture *f, const char *input, struct test_proc *p)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    test_proc_run(argv, input, 20000, p);
    assert_int_equal(p->status, 0);
}

/* One number from the fixture's database. */
static int db_count(struct access_fixture *f, const char *sql)
{
    int64_t n = test_sql_int(f->db, sql);
    assert_true(n >= 0);
    return (int)n;
}

static int wallets(struct access_fixture *f)
{
    return db_count(f, "SELECT count(*) FROM accounts WHERE id LIKE 'console:%'");
}

static int transfers(struct access_fixture *f)
{
    return db_count(f, "SELECT count(*) FROM transfers");
}

/* Every way in is refused with one message each, and nothing is opened:
 * no wallet, no welcome bonus, no generation. */
static void test_blocked_member_gets_no_wallet(void **state)
{
    struct access_fixture *f = *state;
    write_conf(f, false, "block_users = console:tester, discord:80351110224678912\n");
    struct test_proc p;
    run_daemon(f, "/start\n/balance\n/chat hello\nplain words\n/help\n/nosuch\n", &p);
    size_t refusals = 0;
    for (const char *s = p.out; (s = strstr(s, BLOCKED_TEXT)) != NULL; s++)
        refusals++;
    assert_int_equal(refusals, 6);
    assert_null(strstr(p.out, "Welcome"));
    assert_null(strstr(p.out, "demo"));
    assert_null(strstr(p.out, "commands:"));
    assert_null(strstr(p.out, "Unknown command"));
    assert_non_null(strstr(p.err, "reason=blocked"));
    test_proc_free(&p);
    assert_int_equal(wallets(f), 0);
    assert_int_equal(transfers(f), 0);
}

/* An allow list lets in only the members it names. */
static void test_allow_list_only_lets_listed_in(void **state)
{
    struct access_fixture *f = *state;
    write_conf(f, false, "allow_users = console:alice, telegram:42\n");
    struct test_proc p;
    run_daemon(f, "/start\n/chat hello\n", &p);
    assert_non_null(strstr(p.out, BLOCKED_TEXT));
    assert_null(strstr(p.out, "Welcome"));
    test_proc_free(&p);
    assert_int_equal(wallets(f), 0);
    assert_int_equal(transfers(f), 0);

    write_conf(f, false, "allow_users = console:alice, console:tester\n");
    run_daemon(f, "/start\n", &p);
    assert_null(strstr(p.out, BLOCKED_TEXT));
    assert_non_null(strstr(p.out, "welcome bonus of 100 credits"));
    test_proc_free(&p);
    assert_int_equal(wallets(f), 1);
}

/* dms = no refuses a DM; the console is one. */
static void test_dms_off_refuses_dms(void **state)
{
    struct access_fixture *f = *state;
    write_conf(f, false, "dms = no\n");
    struct test_proc p;
    run_daemon(f, "/start\nhello there\n", &p);
    assert_non_null(strstr(p.out, NO_DMS_TEXT));
    assert_non_null(strstr(p.out, "Your id is console:tester."));
    assert_null(strstr(p.out, "Welcome"));
    assert_non_null(strstr(p.err, "reason=no_dms"));
    test_proc_free(&p);
    assert_int_equal(wallets(f), 0);
    assert_int_equal(transfers(f), 0);
}

/* An admin is let in whatever the lists say. */
static void test_admin_always_allowed(void **state)
{
    struct access_fixture *f = *state;
    write_conf(f, true,
               "block_users = console:tester\nallow_users = console:alice\ndms = no\n"
               "blocked_reply = silent\n");
    struct test_proc p;
    run_daemon(f, "/start\n", &p);
    assert_non_null(strstr(p.out, "welcome bonus of 100 credits"));
    assert_null(strstr(p.out, "Sorry"));
    test_proc_free(&p);
    assert_int_equal(wallets(f), 1);
}

/* blocked_reply = silent: a refused member hears nothing at all. */
static void test_silent_refusal(void **state)
{
    struct access_fixture *f = *state;
    write_conf(f, false, "block_users = console:tester\nblocked_reply = silent\n");
    struct test_proc p;
    run_daemon(f, "/start\n/help\nhello\n", &p);
    assert_null(strstr(p.out, "Sorry"));
    assert_null(strstr(p.out, "Welcome"));
    assert_null(strstr(p.out, "commands:"));
    assert_null(strstr(p.out, "console:tester"));
    assert_non_null(strstr(p.err, "reason=blocked"));
    test_proc_free(&p);
    assert_int_equal(wallets(f), 0);
    assert_int_equal(transfers(f), 0);
}

/* Forget what a child printed so far, so the next wait sees only what
 * follows. */
static void child_forget(struct test_child *c)
{
    c->out_len = 0;
    c->out[0] = '\0';
    c->err_len = 0;
    c->err[0] = '\0';
}

/* Editing bot.conf changes the lists without a restart, both ways. */
static void test_live_reload_changes_lists(void **state)
{
    struct access_fixture *f = *state;
    write_conf(f, false, "block_users = console:tester\n");
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_child c;
    test_child_start(&c, argv);
    assert_true(test_child_wait_for(&c, "err", "console.started", 15000));
    assert_true(write(c.in_fd, "/start\n", 7) == 7);
    assert_true(test_child_wait_for(&c, "out", BLOCKED_TEXT, 15000));
    assert_int_equal(wallets(f), 0);

    child_forget(&c);
    write_conf(f, false, "block_users = console:someone\n");
    assert_true(test_child_wait_for(&c, "err", "config.reloaded", 15000));
    assert_non_null(strstr(c.err, "key=block_users"));
    assert_true(write(c.in_fd, "/start\n", 7) == 7);
    assert_true(test_child_wait_for(&c, "out", "welcome bonus of 100 credits", 15000));
    assert_null(strstr(c.out, "Sorry"));

    child_forget(&c);
    write_conf(f, false, "allow_users = console:someone\n");
    assert_true(test_child_wait_for(&c, "err", "config.reloaded", 15000));
    assert_true(write(c.in_fd, "/balance\n", 9) == 9);
    assert_true(test_child_wait_for(&c, "out", BLOCKED_TEXT, 15000));
    assert_null(strstr(c.out, "Your wallet"));
    assert_int_equal(test_child_finish(&c, 15000), 0);
    test_child_free(&c);
    assert_int_equal(wallets(f), 1);
}

/* A malformed id is a config problem on its own line, at start and for
 * check-config, and the daemon does not start on it. */
static void test_malformed_ids_reported_with_line(void **state)
{
    struct access_fixture *f = *state;
    write_conf(f, false,
               "allow_users = console:tester\n"     /* line 20 */
               "block_users = telegram:-100123\n"   /* line 21 */
               "allow_roles = 123\n"                /* line 22 */
               "allow_groups = discord:guild\n"     /* line 23 */
               "block_roles = discord:1\n"          /* line 24 */
               "block_groups = telegram:-1001234\n" /* line 25 */
               "blocked_reply = loud\n");           /* line 26 */
    char *check[] = {(char *)test_haibot_bin(), "check-config", "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(check, NULL, 20000, &p);
    assert_int_equal(p.status, 1);
    char want[700];
    snprintf(want, sizeof(want), "%s:21: [access] block_users: \"telegram:-100123\"", f->conf);
    assert_non_null(strstr(p.err, want));
    snprintf(want, sizeof(want), "%s:22: [access] allow_roles: \"123\" names no platform", f->conf);
    assert_non_null(strstr(p.err, want));
    snprintf(want, sizeof(want), "%s:23: [access] allow_groups: \"discord:guild\"", f->conf);
    assert_non_null(strstr(p.err, want));
    snprintf(want, sizeof(want), "%s:26:", f->conf);
    assert_non_null(strstr(p.err, want));
    snprintf(want, sizeof(want), "%s:20:", f->conf);
    assert_null(strstr(p.err, want));
    snprintf(want, sizeof(want), "%s:24:", f->conf);
    assert_null(strstr(p.err, want));
    snprintf(want, sizeof(want), "%s:25:", f->conf);
    assert_null(strstr(p.err, want));
    test_proc_free(&p);

    char *daemon[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    test_proc_run(daemon, "/start\n", 20000, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.err, "block_users"));
    test_proc_free(&p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_blocked_member_gets_no_wallet, setup, teardown),
    cmocka_unit_test_setup_teardown(test_allow_list_only_lets_listed_in, setup, teardown),
    cmocka_unit_test_setup_teardown(test_dms_off_refuses_dms, setup, teardown),
    cmocka_unit_test_setup_teardown(test_admin_always_allowed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_silent_refusal, setup, teardown),
    cmocka_unit_test_setup_teardown(test_live_reload_changes_lists, setup, teardown),
    cmocka_unit_test_setup_teardown(test_malformed_ids_reported_with_line, setup, teardown),
};

TEST_GROUP_DEFINE(daemon_access, tests, NULL, NULL)
