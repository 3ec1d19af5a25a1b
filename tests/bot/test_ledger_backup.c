/* `haibot ledger backup` and `ledger verify --head`, against a running
 * daemon whose recent entries still sit in SQLite's write-ahead log. A
 * plain copy of the database file misses them and verifies as "ok" on its
 * own; the backup holds them, and a published head tells the two apart. */
#include "tests/test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKUP_GRANTS 12

static void haibot(struct test_proc *p, char *a1, char *a2, char *a3, char *a4, char *conf)
{
    char *argv[] = {(char *)test_haibot_bin(), a1, a2, a3, a4, "-c", conf, NULL};
    /* Drop the unused slots so "-c conf" follows the last argument. */
    char *packed[8];
    size_t n = 0;
    for (size_t i = 0; i < 7; i++) {
        if (argv[i] != NULL)
            packed[n++] = argv[i];
    }
    packed[n] = NULL;
    test_proc_run(packed, NULL, 20000, p);
}

/* "seq=N hash=H" from `ledger head` as "N:H". */
static void head_arg(const char *out, char *buf, size_t cap)
{
    unsigned long long seq = 0;
    char hash[65] = {0};
    const char *at = strstr(out, "seq=");
    assert_non_null(at);
    assert_int_equal(sscanf(at, "seq=%llu hash=%64s", &seq, hash), 2);
    snprintf(buf, cap, "%llu:%s", seq, hash);
}

static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    char *data = test_file_read(from, &len);
    assert_non_null(data);
    test_file_write(to, data, len);
    free(data);
}

static void test_backup_while_running_holds_every_entry(void **state)
{
    struct test_daemon_dir *f = *state;
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    struct test_child c;
    test_child_start(&c, argv);
    assert_true(test_child_wait_for(&c, "err", "console.started", 15000));
    for (int i = 0; i < BACKUP_GRANTS; i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "/admin grant tester %d\n", i + 1);
        assert_true(write(c.in_fd, line, (size_t)n) == n);
    }
    char want[64];
    snprintf(want, sizeof(want), "Granted %d credits", BACKUP_GRANTS);
    assert_true(test_child_wait_for(&c, "out", want, 15000));

    /* The published head, read while the daemon runs. */
    struct test_proc p;
    haibot(&p, "ledger", "head", NULL, NULL, f->conf);
    assert_int_equal(p.status, 0);
    char head[128];
    head_arg(p.out, head, sizeof(head));
    test_proc_free(&p);

    /* A plain copy of the file misses what sits in the WAL: it cannot show
     * the published head. */
    char raw[600], raw_conf[600];
    snprintf(raw, sizeof(raw), "%s/raw.db", f->dir);
    snprintf(raw_conf, sizeof(raw_conf), "%s/raw.conf", f->dir);
    copy_file(f->db, raw);
    char text[1024];
    snprintf(text, sizeof(text), "[storage]\npath = %s\n[console]\nuser = tester\n", raw);
    test_file_write(raw_conf, text, (size_t)-1);
    chmod(raw_conf, 0600);
    haibot(&p, "ledger", "verify", "--head", head, raw_conf);
    assert_int_not_equal(p.status, 0);
    assert_null(strstr(p.out, "holds the published head"));
    test_proc_free(&p);

    /* The backup, taken while the daemon runs, holds every entry. */
    char copy[600], copy_conf[600];
    snprintf(copy, sizeof(copy), "%s/backup.db", f->dir);
    snprintf(copy_conf, sizeof(copy_conf), "%s/backup.conf", f->dir);
    haibot(&p, "ledger", "backup", copy, NULL, f->conf);
    if (p.status != 0)
        fprintf(stderr, "backup: %s%s\n", p.out, p.err);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "ledger backup: wrote"));
    assert_non_null(strstr(p.out, "ledger verify: ok"));
    char seq_eq[64];
    snprintf(seq_eq, sizeof(seq_eq), "seq=%.*s ", (int)(strchr(head, ':') - head), head);
    assert_non_null(strstr(p.out, seq_eq));
    test_proc_free(&p);
    snprintf(text, sizeof(text), "[storage]\npath = %s\n[console]\nuser = tester\n", copy);
    test_file_write(copy_conf, text, (size_t)-1);
    chmod(copy_conf, 0600);
    haibot(&p, "ledger", "verify", "--head", head, copy_conf);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "holds the published head"));
    test_proc_free(&p);

    /* A backup never overwrites. */
    haibot(&p, "ledger", "backup", copy, NULL, f->conf);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.err, "never overwrites"));
    test_proc_free(&p);

    kill(c.pid, SIGTERM);
    assert_int_equal(test_child_finish(&c, 15000), 0);
    test_child_free(&c);
}

static void test_verify_head_refuses_a_different_hash(void **state)
{
    struct test_daemon_dir *f = *state;
    struct test_proc p;
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    test_proc_run(argv, "/admin grant tester 5\n/admin grant tester 6\n", 20000, &p);
    assert_int_equal(p.status, 0);
    test_proc_free(&p);
    haibot(&p, "ledger", "head", NULL, NULL, f->conf);
    char head[128];
    head_arg(p.out, head, sizeof(head));
    test_proc_free(&p);
    haibot(&p, "ledger", "verify", "--head", head, f->conf);
    assert_int_equal(p.status, 0);
    test_proc_free(&p);
    /* The same position with another hash: a rewritten history. */
    char *colon = strchr(head, ':');
    colon[1] = colon[1] == '0' ? '1' : '0';
    haibot(&p, "ledger", "verify", "--head", head, f->conf);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.out, "differs from the published head"));
    test_proc_free(&p);
    /* A malformed head is a usage error that says the form. */
    haibot(&p, "ledger", "verify", "--head", "12:nothex", f->conf);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err, "SEQ:HASH"));
    test_proc_free(&p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_backup_while_running_holds_every_entry,
                                    test_daemon_dir_setup, test_daemon_dir_teardown),
    cmocka_unit_test_setup_teardown(test_verify_head_refuses_a_different_hash,
                                    test_daemon_dir_setup, test_daemon_dir_teardown),
};

TEST_GROUP_DEFINE(ledger_backup, tests, NULL, NULL)
