/* The daemon as a process: its command line, the console through a pipe,
 * signals, and live reload. Each test starts the real binary. */
#include "tests/test.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct daemon_fixture {
    char *dir;
    char conf[512];
    char db[512];
};

static const char *const conf_template = "[bot]\n"
                                         "name = %s\n"
                                         "log_level = debug\n"
                                         "shutdown_grace = 5\n"
                                         "\n"
                                         "[storage]\n"
                                         "path = %s\n"
                                         "\n"
                                         "[console]\n"
                                         "enabled = true\n"
                                         "user = tester\n"
                                         "image_dir = %s\n";

static void write_conf(struct daemon_fixture *f, const char *name)
{
    char text[2048];
    snprintf(text, sizeof(text), conf_template, name, f->db, f->dir);
    /* Write beside and rename, as editors do, so a reader never sees half. */
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->conf);
    test_file_write(tmp, text, (size_t)-1);
    chmod(tmp, 0600);
    assert_int_equal(rename(tmp, f->conf), 0);
}

static int setup(void **state)
{
    struct daemon_fixture *f = calloc(1, sizeof(*f));
    f->dir = test_tmpdir_new();
    snprintf(f->conf, sizeof(f->conf), "%s/bot.conf", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/haibot.db", f->dir);
    write_conf(f, "Alpha Bot");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct daemon_fixture *f = *state;
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void run(char *const argv[], const char *input, struct test_proc *p)
{
    test_proc_run(argv, input, 20000, p);
}

/* Start the daemon on the fixture's config and wait until it reads input. */
static void start_daemon(struct daemon_fixture *f, struct test_child *c)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    test_child_start(c, argv);
    assert_true(test_child_wait_for(c, "err", "console.started", 15000));
}

/* `haibot ledger verify` on the fixture's database: returns its status. */
static int ledger_verify_status(struct daemon_fixture *f)
{
    char *verify[] = {(char *)test_haibot_bin(), "ledger", "verify", "-c", f->conf, NULL};
    struct test_proc p;
    run(verify, NULL, &p);
    int status = p.status;
    test_proc_free(&p);
    return status;
}

static void test_version_and_help(void **state)
{
    (void)state;
    struct test_proc p;
    char *v[] = {(char *)test_haibot_bin(), "version", NULL};
    run(v, NULL, &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "haibot "));
    test_proc_free(&p);
    char *h[] = {(char *)test_haibot_bin(), "--help", NULL};
    run(h, NULL, &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "check-config"));
    assert_non_null(strstr(p.out, "ledger verify"));
    assert_non_null(strstr(p.out, "audit verify"));
    test_proc_free(&p);
    char *bad[] = {(char *)test_haibot_bin(), "frobnicate", NULL};
    run(bad, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err, "unknown command 'frobnicate'"));
    test_proc_free(&p);
}

static void test_missing_config_points_at_example(void **state)
{
    struct daemon_fixture *f = *state;
    char path[600];
    snprintf(path, sizeof(path), "%s/nope.conf", f->dir);
    char *argv[] = {(char *)test_haibot_bin(), "-c", path, NULL};
    struct test_proc p;
    run(argv, NULL, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.err, "bot.conf.example"));
    test_proc_free(&p);
}

static void test_check_config(void **state)
{
    struct daemon_fixture *f = *state;
    char *argv[] = {(char *)test_haibot_bin(), "check-config", "-c", f->conf, NULL};
    struct test_proc p;
    run(argv, NULL, &p);
    assert_int_equal(p.status, 0);
    test_proc_free(&p);
    test_file_write(f->conf, "[bot]\nname = x\nlog_levle = info\n", (size_t)-1);
    run(argv, NULL, &p);
    assert_int_equal(p.status, 1);
    char want[700];
    snprintf(want, sizeof(want), "%s:3: ", f->conf);
    assert_non_null(strstr(p.err, want));
    assert_non_null(strstr(p.err, "log_level"));
    test_proc_free(&p);
}

/* A filter pattern whose compile time doubles per character
 * (tests/corpus/config/) is refused at once, with its file and line, by
 * check-config and by a start alike; neither hangs. */
static void test_check_config_pattern_blowup(void **state)
{
    (void)state;
    const char *conf = "tests/corpus/config/config-pattern-backtracking.conf";
    char want[200];
    snprintf(want, sizeof(want),
             "%s:10: [filter \"f\"]: filter rule \"f\": pattern refused: ", conf);
    char *check[] = {(char *)test_haibot_bin(), "check-config", "-c", (char *)conf, NULL};
    char *start[] = {(char *)test_haibot_bin(), "-c", (char *)conf, NULL};
    char *const *argvs[] = {check, start};
    for (size_t i = 0; i < 2; i++) {
        struct test_proc p;
        uint64_t t0 = test_now_ms();
        test_proc_run(argvs[i], NULL, 10000, &p);
        assert_int_equal(p.status, 1); /* not killed by the timeout (128 + 9) */
        assert_true(test_now_ms() - t0 < 10000);
        if (strstr(p.err, want) == NULL)
            fail_msg("no \"%s\" in:\n%s", want, p.err);
        assert_non_null(strstr(p.err, "nested quantifier"));
        test_proc_free(&p);
    }
}

static void test_console_pipe_help(void **state)
{
    struct daemon_fixture *f = *state;
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    run(argv, "/help\n/hepl\nhello\n/help help\n", &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "Alpha Bot commands:"));
    assert_non_null(strstr(p.out, "Did you mean /help?"));
    /* Plain text is a chat turn; this config has no model to answer it. */
    assert_non_null(strstr(p.out, "No text model is available right now."));
    assert_non_null(strstr(p.out, "Example: /help balance"));
    assert_non_null(strstr(p.err, "daemon.stopped"));
    test_proc_free(&p);
}

static void test_console_last_line_without_newline(void **state)
{
    struct daemon_fixture *f = *state;
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    run(argv, "/help", &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "Alpha Bot commands:"));
    test_proc_free(&p);
}

static void test_console_input_from_file(void **state)
{
    struct daemon_fixture *f = *state;
    char input[600];
    snprintf(input, sizeof(input), "%s/input.txt", f->dir);
    test_file_write(input, "/help\n", (size_t)-1);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "exec %s -c %s < %s", test_haibot_bin(), f->conf, input);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    struct test_proc p;
    run(argv, NULL, &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "Alpha Bot commands:"));
    test_proc_free(&p);
}

static void test_sigterm_idle_exits_clean(void **state)
{
    struct daemon_fixture *f = *state;
    struct test_child c;
    start_daemon(f, &c);
    kill(c.pid, SIGTERM);
    assert_true(test_child_wait_for(&c, "err", "daemon.stopped", 15000));
    int status = test_child_finish(&c, 15000);
    assert_int_equal(status, 0);
    assert_non_null(strstr(c.err, "reason=SIGTERM"));
    test_child_free(&c);
}

static void test_sigterm_mid_work_exits_clean(void **state)
{
    struct daemon_fixture *f = *state;
    struct test_child c;
    start_daemon(f, &c);
    /* Keep commands flowing while the signal lands. */
    static const char burst[] = "/help\n/help help\n/admin reload\n";
    for (int i = 0; i < 200; i++)
        assert_true(write(c.in_fd, burst, sizeof(burst) - 1) > 0);
    assert_true(test_child_wait_for(&c, "out", "commands:", 15000));
    kill(c.pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
        if (write(c.in_fd, burst, sizeof(burst) - 1) < 0)
            break;
    }
    int status = test_child_finish(&c, 15000);
    if (status != 0)
        fprintf(stderr, "daemon stderr:\n%s\n", c.err);
    assert_int_equal(status, 0);
    assert_non_null(strstr(c.err, "daemon.stopped"));
    assert_null(strstr(c.err, "ERROR: AddressSanitizer"));
    test_child_free(&c);
}

/* A config with the offline demo model, whose answers stream for a while. */
static void write_demo_conf(struct daemon_fixture *f)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "[bot]\nname = Demo Bot\nshutdown_grace = 20\n"
             "[storage]\npath = %s\n"
             "[console]\nuser = tester\nimage_dir = %s\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"demo-chat\"]\nprovider = demo\nprice_request = 1\n",
             f->db, f->dir);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
}

static void test_sigterm_lets_a_generation_finish(void **state)
{
    struct daemon_fixture *f = *state;
    write_demo_conf(f);
    struct test_child c;
    start_daemon(f, &c);
    assert_true(write(c.in_fd, "/chat hello\n", 12) == 12);
    assert_true(test_child_wait_for(&c, "out", "Generating", 15000));
    kill(c.pid, SIGTERM);
    /* The job in flight finishes and is charged; then the daemon stops. */
    assert_true(test_child_wait_for(&c, "out", "cost 1 credit", 15000));
    int status = test_child_finish(&c, 15000);
    assert_int_equal(status, 0);
    assert_non_null(strstr(c.err, "daemon.stopping reason=SIGTERM in_flight=1"));
    assert_non_null(strstr(c.err, "daemon.stopped"));
    test_child_free(&c);
    assert_int_equal(ledger_verify_status(f), 0);
}

static void test_second_signal_exits_at_once(void **state)
{
    struct daemon_fixture *f = *state;
    write_demo_conf(f);
    struct test_child c;
    start_daemon(f, &c);
    assert_true(write(c.in_fd, "/chat hello\n", 12) == 12);
    assert_true(test_child_wait_for(&c, "out", "Generating", 15000));
    kill(c.pid, SIGTERM);
    assert_true(test_child_wait_for(&c, "err", "daemon.stopping", 15000));
    kill(c.pid, SIGINT);
    int status = test_child_finish(&c, 15000);
    assert_int_equal(status, 1);
    assert_non_null(strstr(c.err, "daemon.exit_now"));
    test_child_free(&c);
    /* The reservation left open is voided at the next start; the ledger
     * stays intact. */
    assert_int_equal(ledger_verify_status(f), 0);
}

static void test_sighup_reloads(void **state)
{
    struct daemon_fixture *f = *state;
    struct test_child c;
    start_daemon(f, &c);
    kill(c.pid, SIGHUP);
    assert_true(test_child_wait_for(&c, "err", "daemon.sighup", 15000));
    assert_true(test_child_wait_for(&c, "err", "config.reloaded", 15000));
    test_child_finish(&c, 15000);
    test_child_free(&c);
}

static void test_file_edit_reloads_live(void **state)
{
    struct daemon_fixture *f = *state;
    struct test_child c;
    start_daemon(f, &c);
    write_conf(f, "Beta Bot");
    assert_true(test_child_wait_for(&c, "err", "config.reloaded", 15000));
    assert_true(write(c.in_fd, "/help\n", 6) == 6);
    assert_true(test_child_wait_for(&c, "out", "Beta Bot commands:", 15000));

    /* A broken edit is refused and the running name stays. */
    test_file_write(f->conf, "[bot]\nname = Gamma Bot\nshutdown_grace = lots\n", (size_t)-1);
    assert_true(test_child_wait_for(&c, "err", "shutdown_grace", 15000));
    assert_true(write(c.in_fd, "/admin reload\n", 14) == 14);
    assert_true(test_child_wait_for(&c, "out", "still running on the previous settings", 15000));
    assert_true(write(c.in_fd, "/help\n", 6) == 6);
    int status = test_child_finish(&c, 15000);
    assert_int_equal(status, 0);
    assert_null(strstr(c.out, "Gamma Bot"));
    test_child_free(&c);
}

static void test_no_adapter_is_an_error(void **state)
{
    struct daemon_fixture *f = *state;
    char text[1024];
    snprintf(text, sizeof(text), "[storage]\npath = %s\n[console]\nenabled = false\n", f->db);
    test_file_write(f->conf, text, (size_t)-1);
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    run(argv, NULL, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.err, "daemon.no_adapter"));
    assert_non_null(strstr(p.err, "enable [console], [discord] or [telegram]"));
    test_proc_free(&p);
}

static void test_ledger_verify_and_head_cli(void **state)
{
    struct daemon_fixture *f = *state;
    char *daemon[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    run(daemon, "/start\n/admin grant tester 500 prize\n/admin grant @tester 20\n/start\n", &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "Granted 500 credits to tester"));
    test_proc_free(&p);

    assert_int_equal(ledger_verify_status(f), 0);
    char *head[] = {(char *)test_haibot_bin(), "ledger", "head", "-c", f->conf, NULL};
    run(head, NULL, &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "seq=3 hash=")); /* 1 bonus and 2 grants */
    test_proc_free(&p);

    /* Change one committed amount behind the ledger's back. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TRIGGER transfers_no_update;"
                                  "UPDATE transfers SET amount = 5000 WHERE seq = 2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char *verify[] = {(char *)test_haibot_bin(), "ledger", "verify", "-c", f->conf, NULL};
    run(verify, NULL, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.out, "FAILED at entry seq=2"));
    test_proc_free(&p);
}

/* `haibot audit verify`: a grant made through the console is in the trail,
 * the chain verifies, and an entry edited behind the daemon's back fails
 * both audit verify and ledger verify. */
static void test_audit_verify_cli(void **state)
{
    struct daemon_fixture *f = *state;
    char *daemon[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    run(daemon, "/admin grant tester 500 prize\n/admin audit\n", &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "console:tester  grant  console:tester {\"amount\":500,"));
    test_proc_free(&p);
    char *audit[] = {(char *)test_haibot_bin(), "audit", "verify", "-c", f->conf, NULL};
    run(audit, NULL, &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "audit verify: ok entries=1 "));
    test_proc_free(&p);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TRIGGER audit_no_update;"
                                  "UPDATE audit SET detail = '{\"amount\":5}' WHERE seq = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    run(audit, NULL, &p);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.out, "audit verify: FAILED at entry seq=1:"));
    test_proc_free(&p);
    assert_int_equal(ledger_verify_status(f), 1);
}

/* A name that is not a member is refused with how to name one, and nothing
 * is opened for it: no wallet, no bonus, no grant. On the console the
 * console's own user is the one member there is. */
static void test_grant_to_unknown_member_refused(void **state)
{
    struct daemon_fixture *f = *state;
    char *daemon[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    run(daemon, "/admin grant bob 500 prize\n/admin revoke @carol 5\n/admin grant 12345 7\n", &p);
    assert_int_equal(p.status, 0);
    assert_null(strstr(p.out, "Granted"));
    assert_null(strstr(p.out, "Revoked"));
    assert_non_null(strstr(p.out, "I don't know bob"));
    assert_non_null(strstr(p.out, "I don't know @carol"));
    assert_non_null(strstr(p.out, "I don't know 12345"));
    assert_non_null(strstr(p.out, "tester")); /* how to name the one member here */
    test_proc_free(&p);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM transfers", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM accounts WHERE id LIKE '%bob%' "
                                        "OR id LIKE '%carol%' OR id LIKE '%12345%'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* At log_level = debug a generation logs what it did, never what was
 * asked: the prompt reaches no log line. */
static void test_prompt_never_logged(void **state)
{
    struct daemon_fixture *f = *state;
    char text[2048];
    snprintf(text, sizeof(text),
             "[bot]\nname = Demo Bot\nlog_level = debug\n"
             "[storage]\npath = %s\n"
             "[console]\nuser = tester\nimage_dir = %s\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"demo-chat\"]\nprovider = demo\nprice_request = 1\n",
             f->db, f->dir);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
    char *daemon[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    run(daemon, "/chat zebra quokka marmalade secret\nplain xylophone kumquat turn\n", &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "cost 1 credit"));
    assert_non_null(strstr(p.err, "generate.")); /* the engine did log, at debug */
    assert_null(strstr(p.err, "quokka"));
    assert_null(strstr(p.err, "marmalade"));
    assert_null(strstr(p.err, "xylophone"));
    assert_null(strstr(p.err, "kumquat"));
    test_proc_free(&p);
}

static void test_world_readable_config_warns(void **state)
{
    struct daemon_fixture *f = *state;
    chmod(f->conf, 0644);
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    run(argv, "", &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.err, "readable or writable by other users"));
    test_proc_free(&p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_version_and_help),
    cmocka_unit_test_setup_teardown(test_missing_config_points_at_example, setup, teardown),
    cmocka_unit_test_setup_teardown(test_check_config, setup, teardown),
    cmocka_unit_test(test_check_config_pattern_blowup),
    cmocka_unit_test_setup_teardown(test_console_pipe_help, setup, teardown),
    cmocka_unit_test_setup_teardown(test_console_last_line_without_newline, setup, teardown),
    cmocka_unit_test_setup_teardown(test_console_input_from_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sigterm_idle_exits_clean, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sigterm_mid_work_exits_clean, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sigterm_lets_a_generation_finish, setup, teardown),
    cmocka_unit_test_setup_teardown(test_second_signal_exits_at_once, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sighup_reloads, setup, teardown),
    cmocka_unit_test_setup_teardown(test_file_edit_reloads_live, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_adapter_is_an_error, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ledger_verify_and_head_cli, setup, teardown),
    cmocka_unit_test_setup_teardown(test_audit_verify_cli, setup, teardown),
    cmocka_unit_test_setup_teardown(test_grant_to_unknown_member_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_prompt_never_logged, setup, teardown),
    cmocka_unit_test_setup_teardown(test_world_readable_config_warns, setup, teardown),
};

TEST_GROUP_DEFINE(daemon, tests, NULL, NULL)
