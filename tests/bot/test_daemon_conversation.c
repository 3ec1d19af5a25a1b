/* Conversations through the real daemon: a /chat conversation continues
 * after the daemon is stopped and started again on the same database, and
 * /forget erases it. The demo model says which turn of the conversation it
 * answers, which is how many remembered turns reached it. */
#include "tests/test.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long long dc_count(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void dc_say(struct test_child *c, const char *line, const char *expect)
{
    assert_true(write(c->in_fd, line, strlen(line)) == (ssize_t)strlen(line));
    assert_true(test_child_wait_for(c, "out", expect, 15000));
}

static void dc_start(struct test_child *c, struct test_daemon_dir *f)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    test_child_start(c, argv);
    assert_true(test_child_wait_for(c, "err", "console.started", 15000));
}

static void dc_stop(struct test_child *c)
{
    kill(c->pid, SIGTERM);
    assert_int_equal(test_child_finish(c, 15000), 0);
    test_child_free(c);
}

static void test_conversation_survives_daemon_restart(void **state)
{
    struct test_daemon_dir *f = *state;
    FILE *conf = fopen(f->conf, "a");
    assert_non_null(conf);
    fputs("[provider \"demo\"]\nkind = demo\n"
          "[model \"demo-chat\"]\nprovider = demo\nmodality = text\nprice_request = 1\n"
          "max_output_tokens = 100\nenabled = true\n",
          conf);
    fclose(conf);

    struct test_child c;
    dc_start(&c, f);
    dc_say(&c, "/chat my name is Ada\n", "(turn 1 of this conversation)");
    dc_say(&c, "/chat what is two and two\n", "(turn 2 of this conversation)");
    dc_stop(&c);
    assert_int_equal(dc_count(f->db, "SELECT COUNT(*) FROM conversation_turns"), 4);

    dc_start(&c, f);
    dc_say(&c, "/chat and my name?\n", "(turn 3 of this conversation)");
    dc_say(&c, "/forget\n", "Erased: 6 stored message(s)");
    dc_say(&c, "/chat hello again\n", "(turn 1 of this conversation)");
    dc_stop(&c);
    assert_int_equal(dc_count(f->db, "SELECT COUNT(*) FROM conversation_turns"), 2);
    assert_int_equal(dc_count(f->db, "SELECT COUNT(*) FROM conversation_turns WHERE text LIKE "
                                     "'%Ada%'"),
                     0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_conversation_survives_daemon_restart,
                                    test_daemon_dir_setup, test_daemon_dir_teardown),
};

TEST_GROUP_DEFINE(daemon_conversation, tests, NULL, NULL)
