/* The PostgreSQL store's conversation records (storage/store.h): what /chat
 * remembers, outside the ledger, the member's to erase. Rows are deleted
 * for real; store_txn_vacuum_after has a VACUUM of the conversation tables
 * follow the commit, so the space of deleted rows is marked free at once
 * rather than at autovacuum's next pass. (PostgreSQL has no secure_delete:
 * the bytes stay in free space and the WAL until they are reused; the
 * README says so.) */
#include "storage/store.h"

#include "base/error.h"
#include "base/log.h"
#include "storage/pg_internal.h"

#include <string.h>

/* A query's result, or NULL with *rc set. */
static PGresult *conv__query(struct store_txn *txn, const char *sql, const struct pg_params *p,
                             const char *what, int *rc)
{
    return pg__run(pg__of(txn), sql, p, PGRES_TUPLES_OK, what, rc);
}

int pg_txn_conv_get(struct store_txn *txn, const char *id, struct store_conv *out)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, id);
    int rc = 0;
    PGresult *r = conv__query(txn, "SELECT id, owner, updated_at FROM conversations WHERE id = $1",
                              &p, "conv_get", &rc);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 1) {
        memset(out, 0, sizeof(*out));
        pg__text_at(r, 0, 0, out->id, sizeof(out->id));
        pg__text_at(r, 0, 1, out->owner, sizeof(out->owner));
        out->updated_at = pg__int_at(r, 0, 2);
    } else {
        rc = HB_ENOTFOUND;
    }
    PQclear(r);
    return rc;
}

int pg_txn_conv_put(struct store_txn *txn, const struct store_conv *c)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, c->id);
    pg__text(&p, c->owner);
    pg__int(&p, c->updated_at);
    return pg__do(pg__of(txn),
                  "INSERT INTO conversations (id, owner, updated_at) VALUES ($1, $2, $3)"
                  " ON CONFLICT (id) DO UPDATE"
                  " SET updated_at = GREATEST(conversations.updated_at, $3)",
                  &p, "conv_put", NULL);
}

int pg_txn_conv_turns(struct store_txn *txn, const char *conv,
                      int (*fn)(int64_t seq, const char *role, const char *text, int64_t at,
                                void *data),
                      void *data)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, conv);
    int rc = 0;
    PGresult *r = conv__query(txn,
                              "SELECT seq, role, text, at FROM conversation_turns WHERE conv = $1"
                              " ORDER BY seq",
                              &p, "conv_turns", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = fn(pg__int_at(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), pg__int_at(r, i, 3),
                data);
    PQclear(r);
    return rc;
}

int pg_txn_conv_turn_put(struct store_txn *txn, const char *conv, int64_t seq, const char *role,
                         const char *text, int64_t at)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, conv);
    pg__int(&p, seq);
    pg__text(&p, role);
    pg__text(&p, text);
    pg__int(&p, at);
    return pg__do(pg__of(txn),
                  "INSERT INTO conversation_turns (conv, seq, role, text, at)"
                  " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (conv, seq) DO UPDATE"
                  " SET role = $3, text = $4, at = $5",
                  &p, "conv_turn_put", NULL);
}

int pg_txn_conv_trim(struct store_txn *txn, const char *conv, int64_t first)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, conv);
    pg__int(&p, first);
    return pg__do(pg__of(txn), "DELETE FROM conversation_turns WHERE conv = $1 AND seq < $2", &p,
                  "conv_trim", NULL);
}

/* The conv column of a one-row lookup by key. */
static int conv__lookup(struct store_txn *txn, const char *sql, const char *key, char *conv,
                        size_t cap)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, key);
    int rc = 0;
    PGresult *r = conv__query(txn, sql, &p, "conv_lookup", &rc);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 1)
        pg__text_at(r, 0, 0, conv, cap);
    else
        rc = HB_ENOTFOUND;
    PQclear(r);
    return rc;
}

int pg_txn_conv_place_get(struct store_txn *txn, const char *place, char *conv, size_t cap)
{
    return conv__lookup(txn, "SELECT conv FROM conversation_places WHERE place = $1", place, conv,
                        cap);
}

int pg_txn_conv_message_get(struct store_txn *txn, const char *message, char *conv, size_t cap)
{
    return conv__lookup(txn, "SELECT conv FROM conversation_messages WHERE message = $1", message,
                        conv, cap);
}

int pg_txn_conv_places_each(struct store_txn *txn, int (*fn)(const char *place, void *data),
                            void *data)
{
    int rc = 0;
    PGresult *r =
        conv__query(txn, "SELECT place FROM conversation_places", NULL, "conv_places_each", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = fn(PQgetvalue(r, i, 0), data);
    PQclear(r);
    return rc;
}

int pg_txn_conv_place_put(struct store_txn *txn, const char *place, const char *conv,
                          const char *owner, int64_t now_ms)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, place);
    if (conv == NULL)
        return pg__do(pg__of(txn), "DELETE FROM conversation_places WHERE place = $1", &p,
                      "conv_place_put", NULL);
    pg__text(&p, conv);
    pg__text(&p, owner);
    pg__int(&p, now_ms);
    return pg__do(pg__of(txn),
                  "INSERT INTO conversation_places (place, conv, owner, updated_at)"
                  " VALUES ($1, $2, $3, $4) ON CONFLICT (place) DO UPDATE"
                  " SET conv = $2, owner = $3, updated_at = $4",
                  &p, "conv_place_put", NULL);
}

int pg_txn_conv_message_put(struct store_txn *txn, const char *message, const char *conv,
                            const char *owner, int64_t now_ms)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, message);
    pg__text(&p, conv);
    pg__text(&p, owner);
    pg__int(&p, now_ms);
    return pg__do(pg__of(txn),
                  "INSERT INTO conversation_messages (message, conv, owner, at)"
                  " VALUES ($1, $2, $3, $4) ON CONFLICT (message) DO UPDATE"
                  " SET conv = $2, owner = $3, at = $4",
                  &p, "conv_message_put", NULL);
}

int pg_txn_conv_forget(struct store_txn *txn, const char *owner, int64_t *turns)
{
    static const char *const sql[] = {
        ("DELETE FROM conversation_turns WHERE conv IN"
         " (SELECT id FROM conversations WHERE owner = $1)"),
        "DELETE FROM conversations WHERE owner = $1",
        "DELETE FROM conversation_places WHERE owner = $1",
        "DELETE FROM conversation_messages WHERE owner = $1",
    };
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, owner);
    int64_t n = 0;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        int64_t changed = 0;
        int rc = pg__do(pg__of(txn), sql[i], &p, "conv_forget", &changed);
        if (rc < 0)
            return rc;
        if (i == 0)
            n = changed;
    }
    if (turns != NULL)
        *turns = n;
    return 0;
}

int pg_txn_conv_expire(struct store_txn *txn, int64_t before, int64_t *rows)
{
    static const char *const sql[] = {
        "DELETE FROM conversation_turns WHERE at < $1 OR conv IN"
        " (SELECT id FROM conversations WHERE updated_at < $1)",
        "DELETE FROM conversations WHERE updated_at < $1",
        /* A place goes with its conversation, never by its age. */
        "DELETE FROM conversation_places WHERE conv NOT IN (SELECT id FROM conversations)"
        " AND $1::bigint IS NOT NULL",
        "DELETE FROM conversation_messages WHERE at < $1"
        " OR conv NOT IN (SELECT id FROM conversations)",
    };
    struct pg_params p;
    pg__params_init(&p);
    pg__int(&p, before);
    int64_t n = 0;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        int64_t changed = 0;
        int rc = pg__do(pg__of(txn), sql[i], &p, "conv_expire", &changed);
        if (rc < 0)
            return rc;
        n += changed;
    }
    if (rows != NULL)
        *rows = n;
    return 0;
}

void pg_txn_vacuum_after(struct store_txn *txn)
{
    txn->store->after_batch_due = true;
}

void pg__vacuum(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK)
        return;
    /* VACUUM runs outside any transaction: not in a pipeline, where the
     * commands up to a sync form one. Nothing is queued after a commit. */
    bool pipeline = s->pipeline && s->queued == 0 && PQexitPipelineMode(s->conn) == 1;
    if (s->pipeline && !pipeline)
        return;
    s->pipeline = false;
    if (pg__exec(s,
                 "VACUUM conversation_turns, conversations, conversation_places,"
                 " conversation_messages",
                 "vacuum") < 0)
        log_warn("store.vacuum_failed", "backend=postgres");
    if (pipeline && PQenterPipelineMode(s->conn) == 1)
        s->pipeline = true;
}
