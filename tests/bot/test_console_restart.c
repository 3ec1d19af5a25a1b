/* Console event ids across restarts: a daemon killed and started again
 * within the same second must not reuse the ids of its previous run, or an
 * acknowledged grant is silently not booked (same fields) or refused as a
 * replay (other fields). */
#include "tests/test.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RESTART_CYCLES 4

/* Sum of the grants booked to a wallet, read from the ledger's table. */
static long long granted_to(const char *db_path, const char *account)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT COUNT(*) FROM transfers WHERE credit_account = ?1 "
                                        "AND debit_account = 'system:grants'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Wait until the wall clock has just turned a second, so that a start, a
 * grant, a kill and the next start fall inside one second. */
static void wait_second_start(void)
{
    time_t t0 = time(NULL);
    while (time(NULL) == t0)
        usleep(1000);
}

static void test_console_ids_survive_fast_restart(void **state)
{
    struct test_daemon_dir *f = *state;
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    int acknowledged = 0;
    wait_second_start();
    for (int cycle = 0; cycle < RESTART_CYCLES; cycle++) {
        struct test_child c;
        test_child_start(&c, argv);
        assert_true(test_child_wait_for(&c, "err", "console.started", 15000));
        /* The same grant each run: only a fresh event id books it again. */
        static const char grant[] = "/admin grant tester 5 prize\n";
        assert_true(write(c.in_fd, grant, sizeof(grant) - 1) == (ssize_t)(sizeof(grant) - 1));
        assert_true(test_child_wait_for(&c, "out", "Granted 5 credits", 15000));
        acknowledged++;
        kill(c.pid, SIGKILL);
        test_child_finish(&c, 15000);
        test_child_free(&c);
    }
    /* Every acknowledged grant is booked, once. */
    assert_int_equal(granted_to(f->db, "console:tester"), acknowledged);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_console_ids_survive_fast_restart, test_daemon_dir_setup,
                                    test_daemon_dir_teardown),
};

TEST_GROUP_DEFINE(console_restart, tests, NULL, NULL)
