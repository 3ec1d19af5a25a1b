/* Wallet links in SQLite: the wallet_links table of schema version
 * STORE_LINK_VERSION (core/link.h says what a link means). Writes are rare
 * (a /link or /unlink) and the whole table is read once at start, so the
 * statements are prepared when used rather than at open. */
#include "storage/sqlite_internal.h"

#include "base/error.h"

/* The first schema with the wallet_links table (sqlite_open.c). */
#define STORE_LINK_VERSION 10

static int store__link_exec(struct sqlite_store *s, const char *sql, const char *identity,
                            const char *wallet, int64_t now_ms)
{
    if (s->base.version < STORE_LINK_VERSION)
        return HB_ESCHEMA;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return store__fail(s, "link_prepare");
    sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
    if (wallet != NULL) {
        sqlite3_bind_text(st, 2, wallet, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now_ms);
    }
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : store__fail(s, "link_write");
    sqlite3_finalize(st);
    return rc;
}

int sqlite_txn_link_put(struct store_txn *txn, const char *identity, const char *wallet,
                        int64_t now_ms)
{
    return store__link_exec(sqlite__of(txn),
                            "INSERT INTO wallet_links (identity, wallet, linked_at)"
                            " VALUES (?1, ?2, ?3) ON CONFLICT (identity) DO UPDATE"
                            " SET wallet = ?2, linked_at = ?3",
                            identity, wallet != NULL ? wallet : "", now_ms);
}

int sqlite_txn_link_remove(struct store_txn *txn, const char *identity)
{
    return store__link_exec(sqlite__of(txn), "DELETE FROM wallet_links WHERE identity = ?1",
                            identity, NULL, 0);
}

int sqlite_txn_link_each(struct store_txn *txn,
                         int (*fn)(const char *identity, const char *wallet, int64_t linked_at,
                                   void *data),
                         void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->base.version < STORE_LINK_VERSION)
        return HB_ESCHEMA;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT identity, wallet, linked_at FROM wallet_links ORDER BY identity",
                           -1, &st, NULL) != SQLITE_OK)
        return store__fail(s, "link_each");
    int rc = 0;
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = store__fail(s, "link_each");
            break;
        }
        const unsigned char *identity = sqlite3_column_text(st, 0);
        const unsigned char *wallet = sqlite3_column_text(st, 1);
        rc = fn(identity != NULL ? (const char *)identity : "",
                wallet != NULL ? (const char *)wallet : "", sqlite3_column_int64(st, 2), data);
        if (rc != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}
