/* Tamper evidence: altering, deleting or reordering any one row of the
 * history (with sqlite3 directly, triggers dropped as an attacker would)
 * makes verify fail and name that entry; so do edits of the cached sums and
 * of the open reservations. */
#include "tests/test.h"

#include "tests/core/ledger_helpers.h"

#include "base/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W1 "discord:1"
#define W2 "telegram:2"
#define REV LEDGER_SYSTEM_REVENUE
#define DEP LEDGER_SYSTEM_DEPOSITS

static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    char *data = test_file_read(from, &len);
    if (data == NULL) {
        unlink(to);
        return;
    }
    test_file_write(to, data, len);
    free(data);
}

/* A copy of the database at `path` with `sql` applied. */
static void tampered(const char *path, const char *copy, const char *sql)
{
    char a[600], b[600];
    copy_file(path, copy);
    snprintf(a, sizeof(a), "%s-wal", path);
    snprintf(b, sizeof(b), "%s-wal", copy);
    copy_file(a, b);
    snprintf(b, sizeof(b), "%s-shm", copy);
    unlink(b);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(copy, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, "DROP TRIGGER transfers_no_update; DROP TRIGGER transfers_no_delete;",
                          NULL, NULL, &err);
    assert_int_equal(rc, SQLITE_OK);
    rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "tamper sql failed: %s: %s\n", sql, err);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(sqlite3_changes(db) > 0 || strstr(sql, "UPDATE") == NULL, 1);
    sqlite3_close(db);
}

static void expect_broken(const char *path, const char *copy, const char *sql, const char *name)
{
    char *out = NULL;
    tampered(path, copy, sql);
    int rc = lt_verify(copy, &out);
    /* The name must appear whole: "seq=1" is not "seq=12". */
    const char *hit = strstr(out, name);
    bool whole = hit != NULL && (hit[strlen(name)] == ' ' || hit[strlen(name)] == ':');
    if (rc != 1 || !whole)
        fprintf(stderr, "after %s\nwanted %s, got: %s", sql, name, out);
    assert_int_equal(rc, 1);
    assert_true(whole);
    free(out);
}

/* A ledger with every kind of entry; returns the number of entries. */
static uint64_t build(struct lt *t)
{
    struct lt_res res;
    assert_int_equal(lt_open(t, W1, LEDGER_ACCOUNT_NO_OVERDRAFT, 50, &res), 0);
    assert_int_equal(lt_open(t, W2, LEDGER_ACCOUNT_NO_OVERDRAFT, 50, &res), 0);
    assert_int_equal(lt_plain(t, "pay:1", DEP, W1, 100, LEDGER_KIND_DEPOSIT, &res), 0);
    assert_int_equal(lt_plain(t, "gift:1", W1, W2, 60, LEDGER_KIND_TRANSFER, &res), 0);
    assert_int_equal(lt_reserve(t, "r1", W1, REV, 40, 1000, &res), 0);
    assert_int_equal(lt_post(t, "r1:post", "r1", 25, &res), 0);
    assert_int_equal(lt_reserve(t, "r2", W2, REV, 20, 1000, &res), 0);
    assert_int_equal(lt_void(t, "r2:void", "r2", &res), 0);
    assert_int_equal(lt_reserve(t, "r3", W2, REV, 10, 1000, &res), 0);
    t->now += 2000;
    assert_int_equal(lt_expire(t, &res), 0);
    assert_int_equal(lt_reverse(t, "refund:1", "r1:post", 5, LEDGER_KIND_REFUND, &res), 0);
    assert_int_equal(lt_reverse(t, "cb:1", "pay:1", 100, LEDGER_KIND_CHARGEBACK, &res), 0);
    assert_true(res.r.debt > 0);
    assert_int_equal(lt_plain(t, "pay:2", DEP, W2, 10, LEDGER_KIND_DEPOSIT, &res), 0);
    assert_int_equal(lt_reserve(t, "r4", W2, REV, 10, 0, &res), 0); /* stays open */
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_head_get(t->ledger, lt_cb, &res), 0);
    lt_wait(t, &res);
    return res.r.head_seq;
}

static void test_tamper_each_row(void **state)
{
    (void)state;
    struct lt t;
    char copy[600], sql[256], name[64];
    lt_init(&t, true, false);
    uint64_t n = build(&t);
    assert_int_equal(n, 15);
    lt_ledger_close(&t);
    char *out = NULL;
    assert_int_equal(lt_verify(t.path, &out), 0);
    assert_non_null(strstr(out, "ok"));
    free(out);
    snprintf(copy, sizeof(copy), "%s/copy.db", t.dir);
    for (uint64_t s = 1; s <= n; s++) {
        snprintf(name, sizeof(name), "at entry seq=%llu", (unsigned long long)s);
        snprintf(sql, sizeof(sql), "UPDATE transfers SET amount = amount + 1 WHERE seq = %llu",
                 (unsigned long long)s);
        expect_broken(t.path, copy, sql, name);
        snprintf(sql, sizeof(sql), "UPDATE transfers SET ref = ref || 'x' WHERE seq = %llu",
                 (unsigned long long)s);
        expect_broken(t.path, copy, sql, name);
        snprintf(sql, sizeof(sql), "UPDATE transfers SET ts = ts + 1 WHERE seq = %llu",
                 (unsigned long long)s);
        expect_broken(t.path, copy, sql, name);
        snprintf(sql, sizeof(sql), "DELETE FROM transfers WHERE seq = %llu", (unsigned long long)s);
        expect_broken(t.path, copy, sql, name);
        if (s < n) {
            /* Reorder: swap this entry and the next. */
            snprintf(sql, sizeof(sql),
                     "UPDATE transfers SET seq = -1 WHERE seq = %llu;"
                     "UPDATE transfers SET seq = %llu WHERE seq = %llu;"
                     "UPDATE transfers SET seq = %llu WHERE seq = -1;",
                     (unsigned long long)s, (unsigned long long)s, (unsigned long long)s + 1,
                     (unsigned long long)s + 1);
            expect_broken(t.path, copy, sql, name);
        }
    }
    /* Edits outside the history are caught by recomputing from it. */
    expect_broken(t.path, copy,
                  "UPDATE accounts SET credits_posted = credits_posted + 7 WHERE id = 'telegram:2'",
                  "at account telegram:2");
    expect_broken(t.path, copy, "UPDATE accounts SET debits_pending = 0 WHERE id = 'telegram:2'",
                  "at account telegram:2");
    expect_broken(t.path, copy, "DELETE FROM pending WHERE id = 'r4'", "at reservation r4");
    expect_broken(t.path, copy, "INSERT INTO pending VALUES ('r1', 5)", "at reservation r1");
    expect_broken(t.path, copy, "DELETE FROM accounts WHERE id = 'discord:1'",
                  "at account discord:1");
    /* An entry appended behind the ledger's back. */
    snprintf(
        sql, sizeof(sql),
        "INSERT INTO transfers SELECT seq + 1, 'forged', debit_account, credit_account, amount,"
        " kind, flags, link, expires_at, ts, ref, tag, hash FROM transfers WHERE seq = %llu",
        (unsigned long long)n);
    snprintf(name, sizeof(name), "at entry seq=%llu id=forged", (unsigned long long)n + 1);
    expect_broken(t.path, copy, sql, name);
    lt_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tamper_each_row),
};

TEST_GROUP_DEFINE(ledger_tamper, tests, lt_group_setup, lt_group_teardown)
