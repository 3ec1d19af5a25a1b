/* The daemon and its database, as an operator meets them: one daemon per
 * database, storage failures that stop the start with a message (never an
 * abort), a read-only or full disk that /healthz reports, a storage
 * path that means the same wherever the daemon is started, and on
 * PostgreSQL a clean stop that leaves no heartbeat lease behind. Each test runs
 * the real binary; the disk tests use a private mount namespace (as root)
 * and are skipped where one cannot be made. */
#include "net/http.h"
#include "tests/bot/tcall.h"
#include "tests/test.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct store_fixture {
    char *dir;
    char conf[512];
    char db[512];
};

static int setup(void **state)
{
    struct store_fixture *f = calloc(1, sizeof(*f));
    f->dir = test_tmpdir_new();
    snprintf(f->conf, sizeof(f->conf), "%s/bot.conf", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/haibot.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct store_fixture *f = *state;
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A config with the console, the offline demo model and, when port > 0,
 * the HTTP server. `path` is written as given (it may be relative). */
static void conf_write(struct store_fixture *f, const char *path, int port)
{
    char text[2048];
    int n = snprintf(text, sizeof(text),
                     "[bot]\nname = Store Bot\nshutdown_grace = 20\n"
                     "[storage]\npath = %s\n"
                     "[console]\nuser = tester\nimage_dir = %s\n"
                     "[provider \"demo\"]\nkind = demo\n"
                     "[model \"demo-chat\"]\nprovider = demo\nprice_request = 1\n",
                     path, f->dir);
    if (port > 0)
        snprintf(text + n, sizeof(text) - (size_t)n, "[server]\nenabled = true\nport = %d\n", port);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
}

static void daemon_start(struct store_fixture *f, struct test_child *c)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    test_child_start(c, argv);
    assert_true(test_child_wait_for(c, "err", "console.started", 15000));
}

/* An orderly refusal: exit 1, the message, and neither an abort nor a
 * sanitizer report. */
static void assert_refused(const struct test_proc *p, const char *needle)
{
    if (p->status != 1 || strstr(p->err, needle) == NULL)
        fail_msg("want exit 1 with \"%s\"; got exit %d:\n%s", needle, p->status, p->err);
    assert_null(strstr(p->err, "Assertion"));
    assert_null(strstr(p->err, "AddressSanitizer"));
    assert_null(strstr(p->err, "daemon.started"));
}

static int verify_status(struct store_fixture *f)
{
    char *argv[] = {(char *)test_haibot_bin(), "ledger", "verify", "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 20000, &p);
    int status = p.status;
    if (status != 0)
        fprintf(stderr, "ledger verify:\n%s%s\n", p.out, p.err);
    test_proc_free(&p);
    return status;
}

/* A second daemon on the same database is refused, naming the first one's
 * pid; the first one's generation in flight is neither voided nor
 * announced as interrupted. The command-line tools still read beside it. */
static void test_second_daemon_refused(void **state)
{
    struct store_fixture *f = *state;
    conf_write(f, f->db, 0);
    struct test_child a;
    daemon_start(f, &a);
    assert_true(write(a.in_fd, "/chat hello there, tell me a long story\n", 40) == 40);
    assert_true(test_child_wait_for(&a, "out", "Generating", 15000));

    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc b;
    test_proc_run(argv, "", 20000, &b);
    char pid[64];
    snprintf(pid, sizeof(pid), "holder_pid=%d", a.pid);
    assert_refused(&b, pid);
    assert_non_null(strstr(b.err, "store.locked"));
    test_proc_free(&b);

    /* Read-only tools work while the daemon holds the database. */
    assert_int_equal(verify_status(f), 0);

    assert_true(test_child_wait_for(&a, "out", "cost 1 credit", 15000));
    int status = test_child_finish(&a, 15000);
    assert_int_equal(status, 0);
    assert_null(strstr(a.out, "interrupted"));
    assert_null(strstr(a.err, "generate.recovered"));
    test_child_free(&a);

    /* Once the first daemon stopped, a daemon starts there again, and
     * finds nothing to void. */
    struct test_proc c;
    test_proc_run(argv, "/balance\n", 20000, &c);
    assert_int_equal(c.status, 0);
    assert_null(strstr(c.out, "interrupted"));
    test_proc_free(&c);
    assert_int_equal(verify_status(f), 0);
}

/* Several daemons on PostgreSQL: a daemon that stops cleanly gives its
 * run's heartbeat lease up as the last thing its ledger writes, so the
 * others take it for gone at their next heartbeat (its outbox rows, its
 * held jobs), not a lease later. Before, its row stayed until it ran
 * out. */
static void test_clean_stop_gives_run_up(void **state)
{
    struct store_fixture *f = *state;
    char url[512];
    assert_int_equal(test_pg_db(url, sizeof(url)), 0);
    char text[2048];
    snprintf(text, sizeof(text),
             "[bot]\nname = Store Bot\n"
             "[storage]\nbackend = postgres\npostgres_url = \"%s\"\n"
             "[console]\nuser = tester\nimage_dir = %s\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"demo-chat\"]\nprovider = demo\nprice_request = 1\n",
             url, f->dir);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
    struct test_child a;
    daemon_start(f, &a);
    assert_true(test_child_wait_for(&a, "err", "cluster.joined", 15000));
    const char *runs = "SELECT count(*) FROM state WHERE ns = 'lease' AND key LIKE 'run:%'";
    for (int i = 0; i < 100 && test_pg_int(url, runs) == 0; i++)
        usleep(50 * 1000);
    assert_int_equal(test_pg_int(url, runs), 1);
    assert_true(write(a.in_fd, "/chat hello\n", 12) == 12);
    assert_true(test_child_wait_for(&a, "out", "cost 1 credit", 15000));
    assert_int_equal(test_child_finish(&a, 15000), 0);
    assert_non_null(strstr(a.err, "cluster.left"));
    test_child_free(&a);
    assert_int_equal(test_pg_int(url, runs), 0);
}

/* A wrong path, a file that is not a database, a database of a newer
 * schema: each stops the start with its message and exit 1. */
static void test_storage_failures_exit_1(void **state)
{
    struct store_fixture *f = *state;
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;

    char path[600];
    snprintf(path, sizeof(path), "%s/no-such-folder/haibot.db", f->dir);
    conf_write(f, path, 0);
    test_proc_run(argv, "", 20000, &p);
    assert_refused(&p, "No such file or directory");
    test_proc_free(&p);

    test_file_write(f->db, "this is a text file, not a ledger\n", (size_t)-1);
    conf_write(f, f->db, 0);
    test_proc_run(argv, "", 20000, &p);
    assert_refused(&p, "file is not a database");
    test_proc_free(&p);

    unlink(f->db);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    test_proc_run(argv, "", 20000, &p);
    assert_refused(&p, "store.schema_newer");
    test_proc_free(&p);
}

/* `ledger verify` on a file that holds no ledger (an empty or raw copy)
 * says so, instead of calling it newer than the program. */
static void test_verify_empty_file_says_so(void **state)
{
    struct store_fixture *f = *state;
    test_file_write(f->db, "", 0);
    conf_write(f, f->db, 0);
    char *argv[] = {(char *)test_haibot_bin(), "ledger", "verify", "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 20000, &p);
    assert_int_equal(p.status, 2); /* cannot check */
    assert_null(strstr(p.out, "newer"));
    assert_null(strstr(p.err, "newer"));
    assert_non_null(strstr(p.err, "holds no ledger"));
    test_proc_free(&p);
}

/* The storage path in bot.conf is relative to bot.conf's folder, wherever
 * the daemon is started from; the start logs the absolute path. */
static void test_relative_path_follows_config(void **state)
{
    struct store_fixture *f = *state;
    conf_write(f, "ledger/haibot.db", 0);
    char sub[600], elsewhere[600], want[700];
    snprintf(sub, sizeof(sub), "%s/ledger", f->dir);
    snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(mkdir(elsewhere, 0700), 0);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "cd %s && exec %s -c ../bot.conf", elsewhere, test_haibot_bin());
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    struct test_proc p;
    test_proc_run(argv, "/balance\n", 20000, &p);
    assert_int_equal(p.status, 0);
    /* with its reader beside the writer, for the pages that only read */
    snprintf(want, sizeof(want), "store.opened path=%s/ledger/haibot.db version=", f->dir);
    const char *opened = strstr(p.err, want);
    if (opened == NULL)
        fail_msg("no \"%s\" in:\n%s", want, p.err);
    const char *line_end = strchr(opened, '\n');
    const char *readers = strstr(opened, " readers=1");
    assert_true(readers != NULL && (line_end == NULL || readers < line_end));
    test_proc_free(&p);
    struct stat st;
    snprintf(want, sizeof(want), "%s/ledger/haibot.db", f->dir);
    assert_int_equal(stat(want, &st), 0);
    snprintf(want, sizeof(want), "%s/ledger/haibot.db", elsewhere);
    assert_int_not_equal(stat(want, &st), 0);
}

/* Whether this machine lets us make a private mount namespace. */
static bool mounts_available(void)
{
    char *argv[] = {
        "/usr/bin/unshare", "-m", "/bin/sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt", NULL};
    if (access(argv[0], X_OK) != 0)
        return false;
    struct test_proc p;
    test_proc_run(argv, NULL, 10000, &p);
    bool ok = p.status == 0;
    test_proc_free(&p);
    return ok;
}

/* A database on a read-only mount: every write would fail, so the start
 * is refused with a message that says why. */
static void test_read_only_database_refused(void **state)
{
    struct store_fixture *f = *state;
    if (!mounts_available())
        skip();
    char sub[600], db[700];
    snprintf(sub, sizeof(sub), "%s/ro", f->dir);
    snprintf(db, sizeof(db), "%s/haibot.db", sub);
    assert_int_equal(mkdir(sub, 0700), 0);
    conf_write(f, db, 0);
    char *plain[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(plain, "/balance\n", 20000, &p);
    assert_int_equal(p.status, 0);
    test_proc_free(&p);

    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "mount --bind %s %s && mount -o remount,bind,ro %s && exec %s -c %s",
             sub, sub, sub, test_haibot_bin(), f->conf);
    char *argv[] = {"/usr/bin/unshare", "-m", "/bin/sh", "-c", cmd, NULL};
    test_proc_run(argv, "/balance\n", 20000, &p);
    assert_refused(&p, "store.read_only");
    test_proc_free(&p);

    /* The folder writable, the file itself on a read-only mount. */
    snprintf(cmd, sizeof(cmd), "mount --bind %s %s && mount -o remount,bind,ro %s && exec %s -c %s",
             db, db, db, test_haibot_bin(), f->conf);
    test_proc_run(argv, "/balance\n", 20000, &p);
    assert_refused(&p, "store.read_only");
    assert_non_null(strstr(p.err, "the database file cannot be written"));
    test_proc_free(&p);
}

static void healthz(int port, struct tcall *t)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct http_client *client = NULL;
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&loop, NULL, &client), 0);
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/healthz", port);
    tcall_do(&loop, client, "GET", u, NULL, NULL, 0, t);
    http_client_close(client, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Run a shell command inside the daemon's mount namespace. */
static int in_daemon_mounts(int pid, const char *cmd)
{
    char target[32];
    snprintf(target, sizeof(target), "%d", pid);
    char *argv[] = {"/usr/bin/nsenter", "-t", target, "-m", "/bin/sh", "-c", (char *)cmd, NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 10000, &p);
    int status = p.status;
    test_proc_free(&p);
    return status;
}

/* The disk fills up under a running daemon: commits fail, and /healthz
 * says storage is down (503) instead of "up"; once space is back, so is
 * storage. */
static void test_healthz_down_when_commits_fail(void **state)
{
    struct store_fixture *f = *state;
    if (!mounts_available() || access("/usr/bin/nsenter", X_OK) != 0)
        skip();
    char sub[600], db[700];
    snprintf(sub, sizeof(sub), "%s/small", f->dir);
    snprintf(db, sizeof(db), "%s/haibot.db", sub);
    assert_int_equal(mkdir(sub, 0700), 0);
    int port = test_port_free();
    conf_write(f, db, port);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=2m tmpfs %s && exec %s -c %s", sub,
             test_haibot_bin(), f->conf);
    char *argv[] = {"/usr/bin/unshare", "-m", "/bin/sh", "-c", cmd, NULL};
    struct test_child c;
    test_child_start(&c, argv);
    assert_true(test_child_wait_for(&c, "err", "console.started", 15000));
    struct tcall t;
    healthz(port, &t);
    assert_int_equal(t.status, 200);
    assert_non_null(strstr(t.body, "\"storage\":{\"state\":\"up\""));
    tcall_clear(&t);

    /* Fill the small disk; the next write cannot commit. */
    snprintf(cmd, sizeof(cmd), "cat /dev/zero > %s/filler 2>/dev/null; test -s %s/filler", sub,
             sub);
    assert_int_equal(in_daemon_mounts(c.pid, cmd), 0);
    healthz(port, &t);
    if (t.status != 503)
        fail_msg("want 503, got %d: %s", t.status, t.body != NULL ? t.body : "");
    assert_non_null(strstr(t.body, "\"storage\":{\"state\":\"down\""));
    tcall_clear(&t);

    /* Space again: storage is up again. */
    snprintf(cmd, sizeof(cmd), "rm -f %s/filler", sub);
    assert_int_equal(in_daemon_mounts(c.pid, cmd), 0);
    healthz(port, &t);
    assert_int_equal(t.status, 200);
    tcall_clear(&t);

    int status = test_child_finish(&c, 15000);
    assert_int_equal(status, 0);
    assert_null(strstr(c.err, "AddressSanitizer"));
    test_child_free(&c);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_second_daemon_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_storage_failures_exit_1, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_empty_file_says_so, setup, teardown),
    cmocka_unit_test_setup_teardown(test_relative_path_follows_config, setup, teardown),
    cmocka_unit_test_setup_teardown(test_read_only_database_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_healthz_down_when_commits_fail, setup, teardown),
    cmocka_unit_test_setup_teardown(test_clean_stop_gives_run_up, setup, teardown),
};

TEST_GROUP_DEFINE(daemon_store, tests, NULL, NULL)
