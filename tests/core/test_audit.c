/* The audit trail: entries appended through the store's group commit,
 * read back by page and filter, and the chain verified; an edited, removed
 * or reordered entry (triggers dropped, as an attacker would) is caught by
 * `haibot audit verify` and by `haibot ledger verify`. */
#include "tests/test.h"

#include "tests/core/ledger_helpers.h"

#include "base/error.h"
#include "core/audit.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct at_done {
    bool done;
    int rc;
    struct store_audit rows[20];
    size_t n;
};

static void at_cb(int rc, void *data)
{
    struct at_done *d = data;
    d->rc = rc;
    d->done = true;
}

static void at_list_cb(int rc, const struct store_audit *entries, size_t n, void *data)
{
    struct at_done *d = data;
    d->rc = rc;
    d->n = n < 20 ? n : 20;
    memcpy(d->rows, entries, d->n * sizeof(*entries));
    d->done = true;
}

static void at_run(struct lt *t, struct at_done *d)
{
    while (!d->done)
        uv_run(&t->loop, UV_RUN_ONCE);
}

static void at_record(struct lt *t, const char *actor, const char *action, const char *subject,
                      const char *detail)
{
    struct at_done d = {0};
    assert_int_equal(
        audit_record(ledger_store(t->ledger), actor, action, subject, detail, at_cb, &d), 0);
    at_run(t, &d);
    assert_int_equal(d.rc, 0);
}

static int at_verify(const char *path, bool ledger, char **out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    int rc = ledger ? ledger_verify_file(path, f) : audit_verify_file(path, f);
    fclose(f);
    *out = buf;
    return rc;
}

/* Five entries of an ordinary day. */
static void at_build(struct lt *t)
{
    at_record(t, "discord:7", "grant", "discord:1", "{\"amount\":500,\"reason\":\"prize\"}");
    at_record(t, "discord:7", "model.disable", "discord:g1", "{\"model\":\"demo-image\"}");
    at_record(t, "config", "config.reload", "bot.conf", "{\"changed\":[\"bot.name\"]}");
    at_record(t, NULL, "payment.unmatched", "stripe:pi_1", "{\"reason\":\"no_reference\"}");
    at_record(t, "telegram:9", "grant", "telegram:2", "{\"amount\":5}");
}

static void test_audit_append_verify(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    at_build(&t);

    /* Newest first; the filter matches actor, action or subject. */
    struct at_done d = {0};
    assert_int_equal(audit_list(ledger_store(t.ledger), NULL, 0, 0, 10, at_list_cb, &d), 0);
    at_run(&t, &d);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.n, 5);
    assert_int_equal(d.rows[0].seq, 5);
    assert_string_equal(d.rows[0].actor, "telegram:9");
    assert_string_equal(d.rows[1].actor, "system");
    assert_string_equal(d.rows[4].detail, "{\"amount\":500,\"reason\":\"prize\"}");
    assert_memory_equal(d.rows[0].prev, d.rows[1].hash, STORE_HASH_SIZE);
    memset(&d, 0, sizeof(d));
    assert_int_equal(audit_list(ledger_store(t.ledger), "grant", 0, 0, 10, at_list_cb, &d), 0);
    at_run(&t, &d);
    assert_int_equal(d.n, 2);
    memset(&d, 0, sizeof(d));
    assert_int_equal(audit_list(ledger_store(t.ledger), "discord:7", 0, 1, 10, at_list_cb, &d), 0);
    at_run(&t, &d);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.rows[0].action, "grant");
    memset(&d, 0, sizeof(d));
    assert_int_equal(audit_list(ledger_store(t.ledger), NULL, 3, 0, 10, at_list_cb, &d), 0);
    at_run(&t, &d);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.rows[0].seq, 2);

    /* Too long a detail is refused, not cut into invalid JSON. */
    char big[STORE_AUDIT_DETAIL_SIZE + 8];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(audit_record(ledger_store(t.ledger), "x", "grant", "", big, NULL, NULL),
                     HB_EINVAL);
    assert_int_equal(audit_record(ledger_store(t.ledger), "x", "", "", "{}", NULL, NULL),
                     HB_EINVAL);

    lt_ledger_close(&t);
    char *out = NULL;
    assert_int_equal(at_verify(t.path, false, &out), 0);
    assert_non_null(strstr(out, "audit verify: ok entries=5 "));
    free(out);
    assert_int_equal(at_verify(t.path, true, &out), 0);
    assert_non_null(strstr(out, "ledger verify: ok"));
    assert_non_null(strstr(out, "audit verify: ok entries=5 "));
    free(out);
    lt_done(&t);
}

static void at_copy_file(const char *from, const char *to)
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

/* A copy of the database at path with sql applied, triggers dropped. */
static void at_tampered(const char *path, const char *copy, const char *sql)
{
    char a[600], b[600];
    at_copy_file(path, copy);
    snprintf(a, sizeof(a), "%s-wal", path);
    snprintf(b, sizeof(b), "%s-wal", copy);
    at_copy_file(a, b);
    snprintf(b, sizeof(b), "%s-shm", copy);
    unlink(b);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(copy, &db), SQLITE_OK);
    char *err = NULL;
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;",
                                  NULL, NULL, &err),
                     SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "tamper sql failed: %s: %s\n", sql, err);
    assert_int_equal(rc, SQLITE_OK);
    assert_true(sqlite3_changes(db) > 0);
    sqlite3_close(db);
}

static void at_expect_broken(const char *path, const char *copy, const char *sql, const char *name)
{
    at_tampered(path, copy, sql);
    for (int ledger = 0; ledger < 2; ledger++) {
        char *out = NULL;
        int rc = at_verify(copy, ledger != 0, &out);
        const char *hit = strstr(out, name);
        bool whole = hit != NULL && (hit[strlen(name)] == ' ' || hit[strlen(name)] == ':');
        if (rc != 1 || !whole || strstr(out, "audit verify: FAILED") == NULL)
            fprintf(stderr, "after %s\nwanted %s, got: %s", sql, name, out);
        assert_int_equal(rc, 1);
        assert_true(whole);
        assert_non_null(strstr(out, "audit verify: FAILED"));
        free(out);
    }
}

static void test_audit_tamper(void **state)
{
    (void)state;
    struct lt t;
    char copy[600], sql[300], name[64];
    lt_init(&t, true, false);
    at_build(&t);
    lt_ledger_close(&t);
    snprintf(copy, sizeof(copy), "%s/copy.db", t.dir);
    for (unsigned s = 1; s <= 5; s++) {
        snprintf(name, sizeof(name), "at entry seq=%u", s);
        /* An edited detail, actor or time. */
        snprintf(sql, sizeof(sql), "UPDATE audit SET detail = '{\"amount\":1}' WHERE seq = %u", s);
        at_expect_broken(t.path, copy, sql, name);
        snprintf(sql, sizeof(sql), "UPDATE audit SET actor = 'discord:666' WHERE seq = %u", s);
        at_expect_broken(t.path, copy, sql, name);
        snprintf(sql, sizeof(sql), "UPDATE audit SET ts = ts + 1 WHERE seq = %u", s);
        at_expect_broken(t.path, copy, sql, name);
        /* A deleted row: the middle ones break the sequence, the newest
         * the recorded head. */
        snprintf(sql, sizeof(sql), "DELETE FROM audit WHERE seq = %u", s);
        at_expect_broken(t.path, copy, sql, name);
        if (s < 5) {
            /* Reordered: this entry and the next swap places. */
            snprintf(sql, sizeof(sql),
                     "UPDATE audit SET seq = -1 WHERE seq = %u;"
                     "UPDATE audit SET seq = %u WHERE seq = %u;"
                     "UPDATE audit SET seq = %u WHERE seq = -1;",
                     s, s, s + 1, s + 1);
            at_expect_broken(t.path, copy, sql, name);
        }
    }
    /* The newest entries removed: the recorded head shows it. */
    at_expect_broken(t.path, copy, "DELETE FROM audit WHERE seq >= 4", "at entry seq=4");
    lt_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_audit_append_verify),
    cmocka_unit_test(test_audit_tamper),
};

TEST_GROUP_DEFINE(audit, tests, lt_group_setup, lt_group_teardown)
