/* Migrations that carry data forward, on each backend (the group
 * `store_migrate` on SQLite, `store_migrate_pg` on PostgreSQL). */
#include "tests/test.h"

#include "storage/store.h"
#include "tests/storage/store_db.h"

#include <stdbool.h>
#include <stdio.h>

/* The schema before an API key's caps were limit counters (SQLite 12,
 * PostgreSQL 6): upgraded, what each capped key spent so far becomes its
 * counters (in total, and on its last day for a daily cap). */
static void test_key_caps_seeded(void **state)
{
    enum store_backend_kind backend = *(enum store_backend_kind *)*state;
    struct store_db d;
    store_db_init(&d, backend);
    bool pg = backend == STORE_BACKEND_POSTGRES;
    d.opts.schema_version = pg ? 6 : 12;
    int rc = 0;
    struct store *s = store_new(&d.opts, &rc);
    assert_non_null(s);
    store_free(s);
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO apikeys (id, owner, creator, name, prefix, hash, created_at, last_used,"
             " spend, spend_day, day_spend, cap_day, cap_total, models, rpm, expires_at,"
             " revoked_at) VALUES"
             " ('k1', 'console:u', 'console:u', 'a', 'hai-a', %s, 0, 0, 40, 20000, 7, 10, 100,"
             " '', 0, 0, 0),"
             " ('k2', 'console:u', 'console:u', 'b', 'hai-b', %s, 0, 0, 5, 20000, 5, 0, 0,"
             " '', 0, 0, 0)",
             pg ? "'\\x01'::bytea" : "X'01'", pg ? "'\\x02'::bytea" : "X'02'");
    assert_true(db_exec_ok(&d, sql));
    d.opts.schema_version = 0;
    s = store_new(&d.opts, &rc);
    assert_non_null(s);
    store_free(s);
    assert_int_equal(db_int(&d, "SELECT used FROM counters WHERE name = 'gen.key:k1' AND win = 0"),
                     40);
    assert_int_equal(
        db_int(&d, "SELECT used FROM counters WHERE name = 'gen.key.day:k1' AND win = 20000"), 7);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM counters WHERE name LIKE 'gen.key%:k2'"), 0);
    store_db_done(&d);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_key_caps_seeded),
};

TEST_GROUP_DEFINE(store_migrate, tests, store_db_setup_sqlite, NULL)
TEST_GROUP_DEFINE(store_migrate_pg, tests, store_db_setup_pg, NULL)
