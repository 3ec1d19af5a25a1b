/* Wallet links through the real daemon: the links are read at start, so
 * the console's member, linked to another wallet in the database, spends
 * that wallet from the first command on (no bonus of its own), reads its
 * history, gets a link code, and /unlink removes the stored link with an
 * audit entry. */
#include "tests/test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct link_fixture {
    char *dir;
    char conf[512];
    char db[512];
};

static void write_conf(struct link_fixture *f, const char *user, bool admin)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "[bot]\nname = Link Bot\nlog_level = info\nshutdown_grace = 5\n"
             "[storage]\npath = %s\n"
             "[ledger]\nwelcome_bonus = 100\n"
             "[console]\nenabled = true\nuser = %s\nadmin = %s\nimage_dir = %s\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"demo-chat\"]\nprovider = demo\nprice_request = 1\n",
             f->db, user, admin ? "true" : "false", f->dir);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
}

static int setup(void **state)
{
    struct link_fixture *f = calloc(1, sizeof(*f));
    f->dir = test_tmpdir_new();
    snprintf(f->conf, sizeof(f->conf), "%s/bot.conf", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/haibot.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct link_fixture *f = *state;
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void run_daemon(struct link_fixture *f, const char *input, struct test_proc *p)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    test_proc_run(argv, input, 20000, p);
    assert_int_equal(p->status, 0);
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_link_read_at_start(void **state)
{
    struct link_fixture *f = *state;
    /* A wallet with credits: alice's, 100 bonus and a grant of 500. */
    write_conf(f, "alice", true);
    struct test_proc p;
    run_daemon(f, "/start\n/admin grant alice 500\n", &p);
    assert_non_null(strstr(p.out, "Granted 500 credits"));
    test_proc_free(&p);
    /* The console's member is now tester, whose identity was linked to
     * alice's wallet before this start. */
    sql_exec(f->db, "INSERT INTO wallet_links (identity, wallet, linked_at)"
                    " VALUES ('console:tester', 'console:alice', 1)");
    write_conf(f, "tester", false);
    run_daemon(f, "/balance\n/history\n/link\n/unlink\n/unlink\n", &p);
    assert_non_null(strstr(p.err, "link.loaded links=1"));
    assert_non_null(strstr(p.out, "600 credits available"));
    assert_null(strstr(p.out, "holds a welcome bonus")); /* no bonus of its own */
    assert_non_null(strstr(p.out, "spends the wallet of console:alice"));
    assert_non_null(strstr(p.out, "Your link code: "));
    assert_non_null(strstr(p.out, "Unlinked: this account has its own wallet again"));
    assert_non_null(strstr(p.out, "This account is not linked to another one."));
    test_proc_free(&p);
    assert_int_equal(test_sql_int(f->db, "SELECT count(*) FROM wallet_links"), 0);
    assert_int_equal(test_sql_int(f->db, "SELECT count(*) FROM audit WHERE action = 'unlink'"
                                         " AND subject = 'console:tester'"),
                     1);
    assert_int_equal(
        test_sql_int(f->db, "SELECT count(*) FROM accounts WHERE id = 'console:tester'"), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_link_read_at_start, setup, teardown),
};

TEST_GROUP_DEFINE(daemon_link, tests, NULL, NULL)
