/* API keys in SQLite: the apikeys table of schema version
 * STORE_APIKEY_VERSION. Keys are read once at start and written when one is
 * created, revoked or spends, so the statements are prepared when used. A
 * row holds a keyed hash of its key, never the key. */
#include "storage/sqlite_internal.h"

#include "base/error.h"

#include <string.h>

#define APIKEY_COLS                                                                                \
    "id, owner, creator, name, prefix, hash, created_at, last_used, spend, spend_day,"             \
    " day_spend, cap_day, cap_total, models, rpm, expires_at, revoked_at"

static void apikey__row(sqlite3_stmt *st, struct store_apikey *k)
{
    memset(k, 0, sizeof(*k));
    store__copy_text(k->id, sizeof(k->id), st, 0);
    store__copy_text(k->owner, sizeof(k->owner), st, 1);
    store__copy_text(k->creator, sizeof(k->creator), st, 2);
    store__copy_text(k->name, sizeof(k->name), st, 3);
    store__copy_text(k->prefix, sizeof(k->prefix), st, 4);
    const void *h = sqlite3_column_blob(st, 5);
    int hn = sqlite3_column_bytes(st, 5);
    if (h != NULL && hn == STORE_HASH_SIZE)
        memcpy(k->hash, h, STORE_HASH_SIZE);
    k->created_at = sqlite3_column_int64(st, 6);
    k->last_used = sqlite3_column_int64(st, 7);
    k->spend = sqlite3_column_int64(st, 8);
    k->spend_day = sqlite3_column_int64(st, 9);
    k->day_spend = sqlite3_column_int64(st, 10);
    k->cap_day = sqlite3_column_int64(st, 11);
    k->cap_total = sqlite3_column_int64(st, 12);
    store__copy_text(k->models, sizeof(k->models), st, 13);
    k->rpm = sqlite3_column_int64(st, 14);
    k->expires_at = sqlite3_column_int64(st, 15);
    k->revoked_at = sqlite3_column_int64(st, 16);
}

int sqlite_txn_apikey_insert(struct store_txn *txn, const struct store_apikey *k)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->base.version < STORE_APIKEY_VERSION)
        return HB_ESCHEMA;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO apikeys (" APIKEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                           " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                           -1, &st, NULL) != SQLITE_OK)
        return store__fail(s, "apikey_insert");
    sqlite3_bind_text(st, 1, k->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->creator, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, k->prefix, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, k->hash, STORE_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, k->created_at);
    sqlite3_bind_int64(st, 8, k->last_used);
    sqlite3_bind_int64(st, 9, k->spend);
    sqlite3_bind_int64(st, 10, k->spend_day);
    sqlite3_bind_int64(st, 11, k->day_spend);
    sqlite3_bind_int64(st, 12, k->cap_day);
    sqlite3_bind_int64(st, 13, k->cap_total);
    sqlite3_bind_text(st, 14, k->models, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 15, k->rpm);
    sqlite3_bind_int64(st, 16, k->expires_at);
    sqlite3_bind_int64(st, 17, k->revoked_at);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_CONSTRAINT)
        rc = HB_EEXISTS;
    else if (r != SQLITE_DONE)
        rc = store__fail(s, "apikey_insert");
    sqlite3_finalize(st);
    return rc;
}

int sqlite_txn_apikey_each(struct store_txn *txn,
                           int (*fn)(const struct store_apikey *k, void *data), void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->base.version < STORE_APIKEY_VERSION)
        return HB_ESCHEMA;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT " APIKEY_COLS " FROM apikeys ORDER BY created_at, id", -1,
                           &st, NULL) != SQLITE_OK)
        return store__fail(s, "apikey_each");
    int rc = 0;
    struct store_apikey k;
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = store__fail(s, "apikey_each");
            break;
        }
        apikey__row(st, &k);
        rc = fn(&k, data);
        if (rc != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Run an UPDATE of one row; HB_ENOTFOUND when it changed none. */
static int apikey__update(struct sqlite_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : store__fail(s, what);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = HB_ENOTFOUND;
    sqlite3_finalize(st);
    return rc;
}

int sqlite_txn_apikey_revoke(struct store_txn *txn, const char *id, int64_t at)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->base.version < STORE_APIKEY_VERSION)
        return HB_ESCHEMA;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE apikeys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at = 0",
                           -1, &st, NULL) != SQLITE_OK)
        return store__fail(s, "apikey_revoke");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at > 0 ? at : 1);
    return apikey__update(s, st, "apikey_revoke");
}

int sqlite_txn_apikey_spend(struct store_txn *txn, const char *id, int64_t amount, int64_t day,
                            int64_t now_ms)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->base.version < STORE_APIKEY_VERSION)
        return HB_ESCHEMA;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE apikeys SET spend = spend + ?2,"
                           " day_spend = CASE WHEN spend_day = ?3 THEN day_spend + ?2 ELSE ?2 END,"
                           " spend_day = ?3, last_used = MAX(last_used, ?4) WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return store__fail(s, "apikey_spend");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, amount);
    sqlite3_bind_int64(st, 3, day);
    sqlite3_bind_int64(st, 4, now_ms);
    return apikey__update(s, st, "apikey_spend");
}
