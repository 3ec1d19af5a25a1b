/* The SQLite store's conversation records (storage/store.h): what /chat
 * remembers, outside the ledger. Rows are deleted for real: the connection
 * runs with secure_delete (sqlite_open.c), so deleted text is overwritten
 * with zeros, and a vacuum after an erasure truncates the WAL, so that no
 * older copy of a page keeps the text either. */
#include "storage/store.h"

#include "base/error.h"
#include "base/log.h"
#include "storage/sqlite_internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum conv_stmt_id {
    CS_GET,
    CS_PUT,
    CS_TURNS,
    CS_TURN_PUT,
    CS_TRIM,
    CS_PLACE_GET,
    CS_PLACE_PUT,
    CS_PLACE_DELETE,
    CS_MESSAGE_GET,
    CS_MESSAGE_PUT,
    CS_FORGET_TURNS,
    CS_FORGET_CONVS,
    CS_FORGET_PLACES,
    CS_FORGET_MESSAGES,
    CS_EXPIRE_TURNS,
    CS_EXPIRE_REST,
    CS_PLACES_EACH,
    CS_COUNT
};

_Static_assert(CS_COUNT <= STORE_CONV_STMTS, "room for the conversation statements");

static const char *const conv_sql[CS_COUNT] = {
    [CS_GET] = "SELECT owner, updated_at FROM conversations WHERE id = ?1",
    [CS_PUT] = "INSERT INTO conversations (id, owner, updated_at) VALUES (?1, ?2, ?3)"
               " ON CONFLICT (id) DO UPDATE SET updated_at = MAX(updated_at, ?3)",
    [CS_TURNS] = "SELECT seq, role, text, at FROM conversation_turns WHERE conv = ?1 ORDER BY seq",
    [CS_TURN_PUT] = "INSERT OR REPLACE INTO conversation_turns (conv, seq, role, text, at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
    [CS_TRIM] = "DELETE FROM conversation_turns WHERE conv = ?1 AND seq < ?2",
    [CS_PLACE_GET] = "SELECT conv FROM conversation_places WHERE place = ?1",
    [CS_PLACE_PUT] = "INSERT OR REPLACE INTO conversation_places (place, conv, owner, updated_at)"
                     " VALUES (?1, ?2, ?3, ?4)",
    [CS_PLACE_DELETE] = "DELETE FROM conversation_places WHERE place = ?1",
    [CS_MESSAGE_GET] = "SELECT conv FROM conversation_messages WHERE message = ?1",
    [CS_MESSAGE_PUT] = "INSERT OR REPLACE INTO conversation_messages (message, conv, owner, at)"
                       " VALUES (?1, ?2, ?3, ?4)",
    [CS_FORGET_TURNS] = "DELETE FROM conversation_turns WHERE conv IN"
                        " (SELECT id FROM conversations WHERE owner = ?1)",
    [CS_FORGET_CONVS] = "DELETE FROM conversations WHERE owner = ?1",
    [CS_FORGET_PLACES] = "DELETE FROM conversation_places WHERE owner = ?1",
    [CS_FORGET_MESSAGES] = "DELETE FROM conversation_messages WHERE owner = ?1",
    [CS_EXPIRE_TURNS] = "DELETE FROM conversation_turns WHERE at < ?1 OR conv IN"
                        " (SELECT id FROM conversations WHERE updated_at < ?1)",
    /* Three statements would do; one keeps the array flat. Places and
     * messages pointing at a conversation that went are useless. */
    [CS_EXPIRE_REST] = "DELETE FROM conversations WHERE updated_at < ?1",
    [CS_PLACES_EACH] = "SELECT place FROM conversation_places",
};

static const char *const conv_expire_more[] = {
    /* A place is written when it starts pointing at a conversation, not
     * on every turn: it goes with its conversation, never by its age. */
    "DELETE FROM conversation_places WHERE conv NOT IN (SELECT id FROM conversations)"
    " AND ?1 IS NOT NULL",
    "DELETE FROM conversation_messages WHERE at < ?1"
    " OR conv NOT IN (SELECT id FROM conversations)",
};

int store__conv_prepare(struct sqlite_store *s)
{
    for (int i = 0; i < CS_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, conv_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->conv[i],
                               NULL) != SQLITE_OK)
            return store__fail(s, conv_sql[i]);
    }
    return 0;
}

void store__conv_finalize(struct sqlite_store *s)
{
    for (int i = 0; i < STORE_CONV_STMTS; i++) {
        sqlite3_finalize(s->conv[i]);
        s->conv[i] = NULL;
    }
}

/* The statement reset for a fresh use, or NULL on an older schema. */
static sqlite3_stmt *conv__stmt(struct sqlite_store *s, enum conv_stmt_id id)
{
    sqlite3_stmt *st = s->conv[id];
    if (st == NULL)
        return NULL;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Run a statement that returns no rows; *changes (may be NULL) gets the
 * rows it changed. */
static int conv__done(struct sqlite_store *s, sqlite3_stmt *st, const char *what, int64_t *changes)
{
    int rc = store__step_done(s, st, what);
    if (rc == 0 && changes != NULL)
        *changes += sqlite3_changes(s->db);
    return rc;
}

int sqlite_txn_conv_get(struct store_txn *txn, const char *id, struct store_conv *out)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = conv__stmt(s, CS_GET);
    if (st == NULL)
        return HB_ESCHEMA;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW) {
        memset(out, 0, sizeof(*out));
        size_t n = strlen(id);
        if (n >= sizeof(out->id))
            n = sizeof(out->id) - 1;
        memcpy(out->id, id, n);
        store__copy_text(out->owner, sizeof(out->owner), st, 0);
        out->updated_at = sqlite3_column_int64(st, 1);
    } else if (r == SQLITE_DONE) {
        rc = HB_ENOTFOUND;
    } else {
        rc = store__fail(s, "conv_get");
    }
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_conv_put(struct store_txn *txn, const struct store_conv *c)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = conv__stmt(s, CS_PUT);
    if (st == NULL)
        return HB_ESCHEMA;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, c->updated_at);
    return conv__done(s, st, "conv_put", NULL);
}

int sqlite_txn_conv_turns(struct store_txn *txn, const char *conv,
                          int (*fn)(int64_t seq, const char *role, const char *text, int64_t at,
                                    void *data),
                          void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = conv__stmt(s, CS_TURNS);
    if (st == NULL)
        return HB_ESCHEMA;
    sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *role = sqlite3_column_text(st, 1);
        const unsigned char *text = sqlite3_column_text(st, 2);
        rc = fn(sqlite3_column_int64(st, 0), role != NULL ? (const char *)role : "",
                text != NULL ? (const char *)text : "", sqlite3_column_int64(st, 3), data);
        if (rc != 0)
            break;
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = store__fail(s, "conv_turns");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_conv_turn_put(struct store_txn *txn, const char *conv, int64_t seq, const char *role,
                             const char *text, int64_t at)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = conv__stmt(s, CS_TURN_PUT);
    if (st == NULL)
        return HB_ESCHEMA;
    sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_text(st, 3, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, at);
    return conv__done(s, st, "conv_turn_put", NULL);
}

int sqlite_txn_conv_trim(struct store_txn *txn, const char *conv, int64_t first)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = conv__stmt(s, CS_TRIM);
    if (st == NULL)
        return HB_ESCHEMA;
    sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, first);
    return conv__done(s, st, "conv_trim", NULL);
}

/* The conv column of a one-row lookup by key. */
static int conv__lookup(struct sqlite_store *s, enum conv_stmt_id id, const char *key, char *conv,
                        size_t cap)
{
    sqlite3_stmt *st = conv__stmt(s, id);
    if (st == NULL)
        return HB_ESCHEMA;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW)
        store__copy_text(conv, cap, st, 0);
    else if (r == SQLITE_DONE)
        rc = HB_ENOTFOUND;
    else
        rc = store__fail(s, "conv_lookup");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_conv_place_get(struct store_txn *txn, const char *place, char *conv, size_t cap)
{
    return conv__lookup(sqlite__of(txn), CS_PLACE_GET, place, conv, cap);
}

int sqlite_txn_conv_message_get(struct store_txn *txn, const char *message, char *conv, size_t cap)
{
    return conv__lookup(sqlite__of(txn), CS_MESSAGE_GET, message, conv, cap);
}

int sqlite_txn_conv_places_each(struct store_txn *txn, int (*fn)(const char *place, void *data),
                                void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = conv__stmt(s, CS_PLACES_EACH);
    if (st == NULL)
        return HB_ESCHEMA;
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *place = sqlite3_column_text(st, 0);
        rc = fn(place != NULL ? (const char *)place : "", data);
        if (rc != 0)
            break;
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = store__fail(s, "conv_places_each");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_conv_place_put(struct store_txn *txn, const char *place, const char *conv,
                              const char *owner, int64_t now_ms)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = conv__stmt(s, conv != NULL ? CS_PLACE_PUT : CS_PLACE_DELETE);
    if (st == NULL)
        return HB_ESCHEMA;
    sqlite3_bind_text(st, 1, place, -1, SQLITE_STATIC);
    if (conv != NULL) {
        sqlite3_bind_text(st, 2, conv, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now_ms);
    }
    return conv__done(s, st, "conv_place_put", NULL);
}

int sqlite_txn_conv_message_put(struct store_txn *txn, const char *message, const char *conv,
                                const char *owner, int64_t now_ms)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = conv__stmt(s, CS_MESSAGE_PUT);
    if (st == NULL)
        return HB_ESCHEMA;
    sqlite3_bind_text(st, 1, message, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, conv, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    return conv__done(s, st, "conv_message_put", NULL);
}

int sqlite_txn_conv_forget(struct store_txn *txn, const char *owner, int64_t *turns)
{
    struct sqlite_store *s = sqlite__of(txn);
    static const enum conv_stmt_id order[] = {CS_FORGET_TURNS, CS_FORGET_CONVS, CS_FORGET_PLACES,
                                              CS_FORGET_MESSAGES};
    int64_t n = 0;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        sqlite3_stmt *st = conv__stmt(s, order[i]);
        if (st == NULL)
            return HB_ESCHEMA;
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        int rc = conv__done(s, st, "conv_forget", i == 0 ? &n : NULL);
        if (rc < 0)
            return rc;
    }
    if (turns != NULL)
        *turns = n;
    return 0;
}

int sqlite_txn_conv_expire(struct store_txn *txn, int64_t before, int64_t *rows)
{
    struct sqlite_store *s = sqlite__of(txn);
    int64_t n = 0;
    for (int id = CS_EXPIRE_TURNS; id <= CS_EXPIRE_REST; id++) {
        sqlite3_stmt *st = conv__stmt(s, (enum conv_stmt_id)id);
        if (st == NULL)
            return HB_ESCHEMA;
        sqlite3_bind_int64(st, 1, before);
        int rc = conv__done(s, st, "conv_expire", &n);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < sizeof(conv_expire_more) / sizeof(conv_expire_more[0]); i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db, conv_expire_more[i], -1, &st, NULL) != SQLITE_OK) {
            sqlite3_finalize(st);
            return store__fail(s, "conv_expire");
        }
        sqlite3_bind_int64(st, 1, before);
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            n += sqlite3_changes(s->db);
        sqlite3_finalize(st);
        if (r != SQLITE_DONE)
            return store__fail(s, "conv_expire");
    }
    if (rows != NULL)
        *rows = n;
    return 0;
}

void sqlite_txn_vacuum_after(struct store_txn *txn)
{
    txn->store->after_batch_due = true;
}

void store__vacuum(struct sqlite_store *s)
{
    char *err = NULL;
    int freed = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA freelist_count", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        freed = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    /* Only a database created with auto_vacuum=INCREMENTAL (by an earlier
     * version) shrinks; otherwise the free pages stay, zeroed by
     * secure_delete, and are reused. */
    if (sqlite3_exec(s->db, "PRAGMA incremental_vacuum", NULL, NULL, &err) != SQLITE_OK) {
        log_warn("store.vacuum_failed", "step=incremental_vacuum err=%s",
                 err != NULL ? err : "unknown");
        sqlite3_free(err);
        err = NULL;
    }
    /* Every page is copied into the database and the WAL emptied: the
     * frames that still held deleted rows are gone. */
    if (sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, &err) != SQLITE_OK) {
        log_warn("store.vacuum_failed", "step=wal_checkpoint err=%s",
                 err != NULL ? err : "unknown");
        sqlite3_free(err);
    }
    log_info("store.vacuumed", "free_pages=%d", freed);
}
