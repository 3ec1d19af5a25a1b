/* The PostgreSQL store's smaller records: vote counts, limit counters, the
 * outbox, the audit trail, chat settings, wallet links and API keys (the
 * same contract as their SQLite counterparts). */
#include "storage/store.h"

#include "base/error.h"
#include "base/hex.h"
#include "storage/pg_internal.h"

#include <string.h>

/* ---- Votes ----------------------------------------------------------------------- */

int pg_txn_vote_add(struct store_txn *txn, const char *scope, const char *period,
                    const struct store_vote *v)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, scope);
    pg__text(&p, period);
    pg__text(&p, v->image);
    pg__text(&p, v->creator);
    pg__text(&p, v->model);
    pg__int(&p, v->count);
    return pg__do(pg__of(txn),
                  "INSERT INTO votes (scope, period, image, creator, model, count)"
                  " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, period, image)"
                  " DO UPDATE SET count = votes.count + $6",
                  &p, "vote_add", NULL);
}

int pg_txn_vote_top(struct store_txn *txn, const char *scope, const char *period,
                    struct store_vote *out, size_t max, size_t *n)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, scope);
    pg__text(&p, period);
    pg__int(&p, (int64_t)max);
    int rc = 0;
    *n = 0;
    PGresult *r = pg__query(txn,
                            "SELECT image, creator, model, count FROM votes"
                            " WHERE scope = $1 AND period = $2 ORDER BY count DESC, image LIMIT $3",
                            &p, "vote_top", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < max; i++) {
        struct store_vote *v = &out[(*n)++];
        pg__text_at(r, i, 0, v->image, sizeof(v->image));
        pg__text_at(r, i, 1, v->creator, sizeof(v->creator));
        pg__text_at(r, i, 2, v->model, sizeof(v->model));
        v->count = pg__int_at(r, i, 3);
    }
    PQclear(r);
    return 0;
}

/* ---- Counters -------------------------------------------------------------------- */

int pg_txn_counter_get(struct store_txn *txn, const char *name, int64_t win, int64_t *used)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, name);
    pg__int(&p, win);
    *used = 0;
    return pg__one_int(txn, "SELECT used FROM counters WHERE name = $1 AND win = $2", &p, used,
                       "counter_get");
}

/* The bounded add itself: 1 when it applied (*after the value now), 0 when
 * no row of name/win let it (none, or the bound refused), or an error. One
 * statement decides and adds: the bound is checked against the stored
 * value, never against a copy read earlier. */
static int pg__counter_step(struct store_txn *txn, const struct pg_params *p, int64_t *after)
{
    int rc = 0;
    PGresult *r = pg__query_write(txn,
                                  "UPDATE counters SET used = GREATEST(used + $3, 0)"
                                  " WHERE name = $1 AND win = $2"
                                  " AND ($3 <= 0 OR $4 <= 0 OR used + $3 <= $4) RETURNING used",
                                  p, "counter_add", &rc);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 1) {
        *after = pg__int_at(r, 0, 0);
        rc = 1;
    }
    PQclear(r);
    return rc;
}

/* As SQLite's: one statement when the window's row is there. A window's
 * first add makes the row, deletes the name's rows of earlier windows, and
 * adds again. Write transactions queue on the chain head's lock (pg.c), so
 * no other daemon makes the row in between: a row the INSERT finds was
 * there at the first step, which its bound refused. */
int pg_txn_counter_add(struct store_txn *txn, const char *name, int64_t win, int64_t delta,
                       int64_t limit, int64_t *after)
{
    struct pg_store *s = pg__of(txn);
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, name);
    pg__int(&p, win);
    pg__int(&p, delta);
    pg__int(&p, limit);
    int rc = pg__counter_step(txn, &p, after);
    if (rc == 0) {
        struct pg_params k;
        pg__params_init(&k);
        pg__text(&k, name);
        pg__int(&k, win);
        int64_t made = 0;
        rc = pg__do(s,
                    "INSERT INTO counters (name, win, used) VALUES ($1, $2, 0)"
                    " ON CONFLICT (name, win) DO NOTHING",
                    &k, "counter_ensure", &made);
        if (rc == 0 && made > 0)
            rc = pg__do(s, "DELETE FROM counters WHERE name = $1 AND win < $2", &k, "counter_prune",
                        NULL);
        if (rc == 0)
            rc = pg__counter_step(txn, &p, after);
    }
    return rc;
}

/* ---- Outbox ---------------------------------------------------------------------- */

int pg_txn_outbox_put(struct store_txn *txn, const char *channel, int64_t id, int64_t chat,
                      const char *body, const void *data, size_t data_len, int64_t now_ms)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, channel);
    pg__int(&p, id);
    pg__int(&p, chat);
    pg__text(&p, body);
    if (data != NULL)
        pg__bin(&p, data, data_len);
    else
        pg__opt(&p, NULL);
    pg__int(&p, now_ms);
    return pg__do(pg__of(txn),
                  "INSERT INTO outbox (channel, id, chat, body, data, created_at)"
                  " VALUES ($1, $2, $3, $4, $5::bytea, $6) ON CONFLICT (channel, id) DO UPDATE"
                  " SET chat = $3, body = $4, data = $5::bytea, created_at = $6, failed_at = 0,"
                  " error = NULL",
                  &p, "outbox_put", NULL);
}

int pg_txn_outbox_remove(struct store_txn *txn, const char *channel, int64_t id)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, channel);
    pg__int(&p, id);
    return pg__do(pg__of(txn), "DELETE FROM outbox WHERE channel = $1 AND id = $2", &p,
                  "outbox_remove", NULL);
}

/* The rows of channel marked undeliverable long enough before now_ms. */
static int pg__outbox_purge(struct store_txn *txn, const char *channel, int64_t now_ms)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, channel);
    pg__int(&p, now_ms - STORE_OUTBOX_FAILED_KEEP_MS);
    return pg__do(pg__of(txn),
                  "DELETE FROM outbox WHERE channel = $1 AND failed_at != 0 AND failed_at < $2", &p,
                  "outbox_purge", NULL);
}

int pg_txn_outbox_fail(struct store_txn *txn, const char *channel, int64_t id, const char *error,
                       int64_t now_ms)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, channel);
    pg__int(&p, id);
    pg__int(&p, now_ms > 0 ? now_ms : 1);
    pg__text(&p, error);
    int rc = pg__do(pg__of(txn),
                    "UPDATE outbox SET failed_at = $3, error = $4, data = NULL"
                    " WHERE channel = $1 AND id = $2",
                    &p, "outbox_fail", NULL);
    return rc < 0 ? rc : pg__outbox_purge(txn, channel, now_ms);
}

int pg_txn_outbox_each(struct store_txn *txn, const char *channel, int64_t after_id, size_t max,
                       int (*fn)(int64_t id, int64_t chat, const char *body, const void *data,
                                 size_t data_len, void *arg),
                       void *arg)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, channel);
    pg__int(&p, after_id);
    pg__int(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    int rc = 0;
    PGresult *r = pg__query(txn,
                            "SELECT id, chat, body, data FROM outbox WHERE channel = $1"
                            " AND failed_at = 0 AND id > $2 ORDER BY id LIMIT $3",
                            &p, "outbox_each", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        /* data arrives as hex text: decoded in place, byte i written over
         * text already read (it sits at 2 + 2i). */
        char *hex = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
        size_t len = hex != NULL ? pg__bytea_len(hex) : 0;
        if (len > 0 && hex_decode(hex + 2, (unsigned char *)hex, len) < 0)
            len = 0;
        rc = fn(pg__int_at(r, i, 0), pg__int_at(r, i, 1), PQgetvalue(r, i, 2), hex, len, arg);
    }
    PQclear(r);
    return rc;
}

int pg_txn_outbox_max(struct store_txn *txn, const char *channel, int64_t *id)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, channel);
    *id = 0;
    return pg__one_int(txn, "SELECT COALESCE(MAX(id), 0) FROM outbox WHERE channel = $1", &p, id,
                       "outbox_max");
}

int pg_txn_outbox_count(struct store_txn *txn, const char *channel, bool undeliverable, int64_t *n)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, channel);
    pg__int(&p, undeliverable ? 1 : 0);
    *n = 0;
    return pg__one_int(txn,
                       "SELECT COUNT(*) FROM outbox WHERE channel = $1"
                       " AND (failed_at != 0) = ($2 = 1)",
                       &p, n, "outbox_count");
}

int pg_txn_outbox_channels(struct store_txn *txn, const char *family,
                           int (*fn)(const char *channel, void *arg), void *arg)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, family);
    int rc = 0;
    PGresult *r = pg__query(txn,
                            "SELECT DISTINCT channel FROM outbox WHERE channel = $1"
                            " OR substr(channel, 1, length($1) + 1) = $1 || '/' ORDER BY channel",
                            &p, "outbox_channels", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = fn(PQgetvalue(r, i, 0), arg);
    PQclear(r);
    return rc;
}

int pg_txn_outbox_move(struct store_txn *txn, const char *from, const char *to, int64_t upto_id,
                       int64_t now_ms, int64_t *moved)
{
    int rc = pg__outbox_purge(txn, from, now_ms);
    if (rc < 0)
        return rc;
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, from);
    pg__text(&p, to);
    pg__int(&p, upto_id);
    return pg__do(pg__of(txn),
                  "UPDATE outbox SET channel = $2 WHERE channel = $1 AND ($3 = 0 OR id <= $3)", &p,
                  "outbox_move", moved);
}

/* ---- Audit trail ----------------------------------------------------------------- */

#define PG_AUDIT_COLS "seq, ts, actor, action, subject, detail, prev, hash"

static void audit__row(const PGresult *r, int i, struct store_audit *a)
{
    a->seq = (uint64_t)pg__int_at(r, i, 0);
    a->ts = pg__int_at(r, i, 1);
    pg__text_at(r, i, 2, a->actor, sizeof(a->actor));
    pg__text_at(r, i, 3, a->action, sizeof(a->action));
    pg__text_at(r, i, 4, a->subject, sizeof(a->subject));
    pg__text_at(r, i, 5, a->detail, sizeof(a->detail));
    pg__bytes_at(r, i, 6, a->prev, sizeof(a->prev));
    pg__bytes_at(r, i, 7, a->hash, sizeof(a->hash));
}

int pg_txn_audit_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    return pg__head_read(txn, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", seq, hash,
                         "audit_head");
}

int pg_txn_audit_head_recorded(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    return pg__head_read(txn, "SELECT seq, hash FROM audit_head WHERE one = 1", seq, hash,
                         "audit_head_recorded");
}

int pg_txn_audit_append(struct store_txn *txn, const struct store_audit *a)
{
    uint64_t head = 0;
    uint8_t hash[STORE_HASH_SIZE];
    int rc = pg_txn_audit_head(txn, &head, hash);
    if (rc < 0)
        return rc;
    if (a->seq != head + 1 || memcmp(a->prev, hash, STORE_HASH_SIZE) != 0)
        return HB_EINVAL;
    struct pg_params p;
    pg__params_init(&p);
    pg__int(&p, (int64_t)a->seq);
    pg__int(&p, a->ts);
    pg__text(&p, a->actor);
    pg__text(&p, a->action);
    pg__text(&p, a->subject);
    pg__text(&p, a->detail);
    pg__bin(&p, a->prev, STORE_HASH_SIZE);
    pg__bin(&p, a->hash, STORE_HASH_SIZE);
    rc = pg__do(pg__of(txn),
                "INSERT INTO audit (" PG_AUDIT_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", &p,
                "audit_append", NULL);
    if (rc < 0)
        return rc == HB_EEXISTS ? HB_ESTORAGE : rc;
    pg__params_init(&p);
    pg__int(&p, (int64_t)a->seq);
    pg__bin(&p, a->hash, STORE_HASH_SIZE);
    return pg__do(pg__of(txn),
                  "INSERT INTO audit_head (one, seq, hash) VALUES (1, $1, $2)"
                  " ON CONFLICT (one) DO UPDATE SET seq = $1, hash = $2",
                  &p, "audit_head_record", NULL);
}

int pg_txn_audit_each(struct store_txn *txn, uint64_t from_seq,
                      int (*fn)(const struct store_audit *a, void *data), void *data)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__int(&p, from_seq > INT64_MAX ? INT64_MAX : (int64_t)from_seq);
    int rc = 0;
    PGresult *r = pg__query(txn, "SELECT " PG_AUDIT_COLS " FROM audit WHERE seq >= $1 ORDER BY seq",
                            &p, "audit_each", &rc);
    if (r == NULL)
        return rc;
    struct store_audit a;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        audit__row(r, i, &a);
        rc = fn(&a, data);
    }
    PQclear(r);
    return rc;
}

int pg_txn_audit_page(struct store_txn *txn, const char *match, uint64_t before_seq, size_t skip,
                      struct store_audit *out, size_t max, size_t *n)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__opt(&p, match);
    pg__int(&p, before_seq > INT64_MAX ? INT64_MAX : (int64_t)before_seq);
    pg__int(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    pg__int(&p, skip > INT64_MAX ? INT64_MAX : (int64_t)skip);
    int rc = 0;
    *n = 0;
    PGresult *r = pg__query(txn,
                            "SELECT " PG_AUDIT_COLS " FROM audit"
                            " WHERE ($1::text IS NULL OR actor = $1 OR action = $1 OR subject = $1)"
                            " AND ($2 = 0 OR seq < $2) ORDER BY seq DESC LIMIT $3 OFFSET $4",
                            &p, "audit_page", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < max; i++)
        audit__row(r, i, &out[(*n)++]);
    PQclear(r);
    return 0;
}

/* ---- Chat settings and wallet links ---------------------------------------------- */

int pg_txn_chat_put(struct store_txn *txn, const char *key, unsigned fields, const char *persona,
                    int plaintalk, int64_t now_ms)
{
    struct pg_store *s = pg__of(txn);
    struct pg_params p;
    int rc = 0;
    /* Each field is written on its own, so setting one keeps the other. */
    if (fields & STORE_CHAT_PERSONA) {
        pg__params_init(&p);
        pg__text(&p, key);
        if (persona != NULL)
            pg__text(&p, persona);
        else
            pg__opt(&p, NULL);
        pg__int(&p, now_ms);
        rc = pg__do(s,
                    "INSERT INTO chat_settings (key, persona, plaintalk, updated_at)"
                    " VALUES ($1, $2, NULL, $3) ON CONFLICT (key) DO UPDATE"
                    " SET persona = $2, updated_at = $3",
                    &p, "chat_put", NULL);
    }
    if (rc == 0 && (fields & STORE_CHAT_PLAINTALK)) {
        pg__params_init(&p);
        pg__text(&p, key);
        if (plaintalk >= 0)
            pg__int(&p, plaintalk != 0);
        else
            pg__opt(&p, NULL);
        pg__int(&p, now_ms);
        rc = pg__do(s,
                    "INSERT INTO chat_settings (key, persona, plaintalk, updated_at)"
                    " VALUES ($1, NULL, $2::integer, $3) ON CONFLICT (key) DO UPDATE"
                    " SET plaintalk = $2::integer, updated_at = $3",
                    &p, "chat_put", NULL);
    }
    if (rc == 0) {
        pg__params_init(&p);
        pg__text(&p, key);
        rc = pg__do(s,
                    "DELETE FROM chat_settings WHERE key = $1 AND persona IS NULL"
                    " AND plaintalk IS NULL",
                    &p, "chat_put", NULL);
    }
    return rc;
}

int pg_txn_chat_each(struct store_txn *txn,
                     int (*fn)(const char *key, const char *persona, int plaintalk, void *data),
                     void *data)
{
    int rc = 0;
    PGresult *r = pg__query(txn, "SELECT key, persona, plaintalk FROM chat_settings ORDER BY key",
                            NULL, "chat_each", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *persona = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);
        int plaintalk = PQgetisnull(r, i, 2) ? -1 : pg__int_at(r, i, 2) != 0;
        rc = fn(PQgetvalue(r, i, 0), persona, plaintalk, data);
    }
    PQclear(r);
    return rc;
}

int pg_txn_link_put(struct store_txn *txn, const char *identity, const char *wallet, int64_t now_ms)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, identity);
    pg__text(&p, wallet);
    pg__int(&p, now_ms);
    return pg__do(pg__of(txn),
                  "INSERT INTO wallet_links (identity, wallet, linked_at) VALUES ($1, $2, $3)"
                  " ON CONFLICT (identity) DO UPDATE SET wallet = $2, linked_at = $3",
                  &p, "link_put", NULL);
}

int pg_txn_link_remove(struct store_txn *txn, const char *identity)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, identity);
    return pg__do(pg__of(txn), "DELETE FROM wallet_links WHERE identity = $1", &p, "link_remove",
                  NULL);
}

int pg_txn_link_each(struct store_txn *txn,
                     int (*fn)(const char *identity, const char *wallet, int64_t linked_at,
                               void *data),
                     void *data)
{
    int rc = 0;
    PGresult *r =
        pg__query(txn, "SELECT identity, wallet, linked_at FROM wallet_links ORDER BY identity",
                  NULL, "link_each", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = fn(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), pg__int_at(r, i, 2), data);
    PQclear(r);
    return rc;
}

/* ---- API keys -------------------------------------------------------------------- */

#define PG_APIKEY_COLS                                                                             \
    "id, owner, creator, name, prefix, hash, created_at, last_used, spend, spend_day,"             \
    " day_spend, cap_day, cap_total, models, rpm, expires_at, revoked_at"

int pg_txn_apikey_insert(struct store_txn *txn, const struct store_apikey *k)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, k->id);
    pg__text(&p, k->owner);
    pg__text(&p, k->creator);
    pg__text(&p, k->name);
    pg__text(&p, k->prefix);
    pg__bin(&p, k->hash, STORE_HASH_SIZE);
    pg__int(&p, k->created_at);
    pg__int(&p, k->last_used);
    pg__int(&p, k->spend);
    pg__int(&p, k->spend_day);
    pg__int(&p, k->day_spend);
    pg__int(&p, k->cap_day);
    pg__int(&p, k->cap_total);
    pg__text(&p, k->models);
    pg__int(&p, k->rpm);
    pg__int(&p, k->expires_at);
    pg__int(&p, k->revoked_at);
    int64_t added = 0;
    /* DO NOTHING rather than an error: a failed statement would abort the
     * whole transaction, and a taken id is an answer, not a failure. */
    int rc = pg__do(pg__of(txn),
                    "INSERT INTO apikeys (" PG_APIKEY_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7,"
                    " $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT DO NOTHING",
                    &p, "apikey_insert", &added);
    return rc == 0 && added == 0 ? HB_EEXISTS : rc;
}

int pg_txn_apikey_each(struct store_txn *txn, int (*fn)(const struct store_apikey *k, void *data),
                       void *data)
{
    int rc = 0;
    PGresult *r = pg__query(txn, "SELECT " PG_APIKEY_COLS " FROM apikeys ORDER BY created_at, id",
                            NULL, "apikey_each", &rc);
    if (r == NULL)
        return rc;
    struct store_apikey k;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        memset(&k, 0, sizeof(k));
        pg__text_at(r, i, 0, k.id, sizeof(k.id));
        pg__text_at(r, i, 1, k.owner, sizeof(k.owner));
        pg__text_at(r, i, 2, k.creator, sizeof(k.creator));
        pg__text_at(r, i, 3, k.name, sizeof(k.name));
        pg__text_at(r, i, 4, k.prefix, sizeof(k.prefix));
        pg__bytes_at(r, i, 5, k.hash, sizeof(k.hash));
        k.created_at = pg__int_at(r, i, 6);
        k.last_used = pg__int_at(r, i, 7);
        k.spend = pg__int_at(r, i, 8);
        k.spend_day = pg__int_at(r, i, 9);
        k.day_spend = pg__int_at(r, i, 10);
        k.cap_day = pg__int_at(r, i, 11);
        k.cap_total = pg__int_at(r, i, 12);
        pg__text_at(r, i, 13, k.models, sizeof(k.models));
        k.rpm = pg__int_at(r, i, 14);
        k.expires_at = pg__int_at(r, i, 15);
        k.revoked_at = pg__int_at(r, i, 16);
        rc = fn(&k, data);
    }
    PQclear(r);
    return rc;
}

int pg_txn_apikey_revoke(struct store_txn *txn, const char *id, int64_t at)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, id);
    pg__int(&p, at > 0 ? at : 1);
    int64_t changed = 0;
    int rc =
        pg__do(pg__of(txn), "UPDATE apikeys SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0",
               &p, "apikey_revoke", &changed);
    return rc == 0 && changed == 0 ? HB_ENOTFOUND : rc;
}

int pg_txn_apikey_spend(struct store_txn *txn, const char *id, int64_t amount, int64_t day,
                        int64_t now_ms)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, id);
    pg__int(&p, amount);
    pg__int(&p, day);
    pg__int(&p, now_ms);
    int64_t changed = 0;
    int rc = pg__do(pg__of(txn),
                    "UPDATE apikeys SET spend = spend + $2,"
                    " day_spend = CASE WHEN spend_day = $3 THEN day_spend + $2 ELSE $2 END,"
                    " spend_day = $3, last_used = GREATEST(last_used, $4) WHERE id = $1",
                    &p, "apikey_spend", &changed);
    return rc == 0 && changed == 0 ? HB_ENOTFOUND : rc;
}
