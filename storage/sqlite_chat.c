/* Chat settings in SQLite: the chat_settings table of schema version
 * STORE_CHAT_VERSION (personas and plain talk chosen in the chats). Writes
 * are rare and the whole table is read once at start, so the statements
 * are prepared when used rather than at open. */
#include "storage/sqlite_internal.h"

#include "base/error.h"

#include <string.h>

static int store__chat_exec(struct sqlite_store *s, const char *sql, const char *key,
                            bool with_value, const char *persona, int plaintalk, int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return store__fail(s, "chat_prepare");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (with_value) {
        if (persona != NULL)
            sqlite3_bind_text(st, 2, persona, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 2);
        if (plaintalk >= 0)
            sqlite3_bind_int(st, 3, plaintalk != 0);
        else
            sqlite3_bind_null(st, 3);
        sqlite3_bind_int64(st, 4, now_ms);
    }
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : store__fail(s, "chat_put");
    sqlite3_finalize(st);
    return rc;
}

int sqlite_txn_chat_put(struct store_txn *txn, const char *key, unsigned fields,
                        const char *persona, int plaintalk, int64_t now_ms)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->base.version < STORE_CHAT_VERSION)
        return HB_ESCHEMA;
    int rc = 0;
    /* Each field is written on its own, so setting one keeps the other. */
    if (fields & STORE_CHAT_PERSONA)
        rc = store__chat_exec(s,
                              "INSERT INTO chat_settings (key, persona, plaintalk, updated_at)"
                              " VALUES (?1, ?2, NULL, ?4) ON CONFLICT (key) DO UPDATE"
                              " SET persona = ?2, updated_at = ?4",
                              key, true, persona, -1, now_ms);
    if (rc == 0 && (fields & STORE_CHAT_PLAINTALK))
        rc = store__chat_exec(s,
                              "INSERT INTO chat_settings (key, persona, plaintalk, updated_at)"
                              " VALUES (?1, NULL, ?3, ?4) ON CONFLICT (key) DO UPDATE"
                              " SET plaintalk = ?3, updated_at = ?4",
                              key, true, NULL, plaintalk, now_ms);
    if (rc == 0)
        rc = store__chat_exec(s,
                              "DELETE FROM chat_settings WHERE key = ?1 AND persona IS NULL"
                              " AND plaintalk IS NULL",
                              key, false, NULL, -1, 0);
    return rc;
}

int sqlite_txn_chat_each(struct store_txn *txn,
                         int (*fn)(const char *key, const char *persona, int plaintalk, void *data),
                         void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->base.version < STORE_CHAT_VERSION)
        return HB_ESCHEMA;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT key, persona, plaintalk FROM chat_settings ORDER BY key",
                           -1, &st, NULL) != SQLITE_OK)
        return store__fail(s, "chat_each");
    int rc = 0;
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = store__fail(s, "chat_each");
            break;
        }
        const unsigned char *key = sqlite3_column_text(st, 0);
        const unsigned char *persona = sqlite3_column_text(st, 1);
        int plaintalk =
            sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 2) != 0;
        rc = fn(key != NULL ? (const char *)key : "", (const char *)persona, plaintalk, data);
        if (rc != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}
