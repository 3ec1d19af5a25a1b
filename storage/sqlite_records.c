/* The store's records: accounts, the transfer history and its chain head,
 * open reservations, usage, the state table and the vote counts, read and
 * written inside a transaction on the store's thread. */
#include "storage/store.h"

#include "base/error.h"
#include "storage/sqlite_internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

void store__copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    if (v == NULL) {
        dst[0] = '\0';
        return;
    }
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

void store__row_account(sqlite3_stmt *st, struct store_account *a)
{
    store__copy_text(a->id, sizeof(a->id), st, 0);
    a->flags = (uint32_t)sqlite3_column_int64(st, 1);
    a->debits_posted = sqlite3_column_int64(st, 2);
    a->credits_posted = sqlite3_column_int64(st, 3);
    a->debits_pending = sqlite3_column_int64(st, 4);
    a->credits_pending = sqlite3_column_int64(st, 5);
    a->created_at = sqlite3_column_int64(st, 6);
}

static void store__row_transfer(sqlite3_stmt *st, struct store_transfer *t)
{
    t->seq = (uint64_t)sqlite3_column_int64(st, 0);
    store__copy_text(t->id, sizeof(t->id), st, 1);
    store__copy_text(t->debit, sizeof(t->debit), st, 2);
    store__copy_text(t->credit, sizeof(t->credit), st, 3);
    t->amount = sqlite3_column_int64(st, 4);
    t->kind = (uint32_t)sqlite3_column_int64(st, 5);
    t->flags = (uint32_t)sqlite3_column_int64(st, 6);
    store__copy_text(t->link, sizeof(t->link), st, 7);
    t->expires_at = sqlite3_column_int64(st, 8);
    t->ts = sqlite3_column_int64(st, 9);
    store__copy_text(t->ref, sizeof(t->ref), st, 10);
    store__copy_text(t->tag, sizeof(t->tag), st, 11);
    memset(t->hash, 0, sizeof(t->hash));
    const void *h = sqlite3_column_blob(st, 12);
    int hn = sqlite3_column_bytes(st, 12);
    if (h != NULL)
        memcpy(t->hash, h, hn < STORE_HASH_SIZE ? (size_t)hn : STORE_HASH_SIZE);
}

/* ---- Records ----------------------------------------------------------------- */

/* Step a statement expected to return at most one transfer row. */
static int store__transfer_one(struct sqlite_store *s, sqlite3_stmt *st, struct store_transfer *out,
                               const char *what)
{
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW)
        store__row_transfer(st, out);
    else if (r == SQLITE_DONE)
        rc = HB_ENOTFOUND;
    else
        rc = store__fail(s, what);
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_transfer_get(struct store_txn *txn, const char *id, struct store_transfer *out)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_TRANSFER_GET);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return store__transfer_one(s, st, out, "transfer_get");
}

int sqlite_txn_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    struct sqlite_store *s = sqlite__of(txn);
    int rc = 0;
    if (!txn->head_valid) {
        sqlite3_stmt *st = store__stmt(s, ST_HEAD);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            txn->head_seq = (uint64_t)sqlite3_column_int64(st, 0);
            memset(txn->head_hash, 0, STORE_HASH_SIZE);
            const void *h = sqlite3_column_blob(st, 1);
            int hn = sqlite3_column_bytes(st, 1);
            if (h != NULL)
                memcpy(txn->head_hash, h, hn < STORE_HASH_SIZE ? (size_t)hn : STORE_HASH_SIZE);
            txn->head_valid = true;
        } else if (r == SQLITE_DONE) {
            txn->head_seq = 0;
            memset(txn->head_hash, 0, STORE_HASH_SIZE);
            txn->head_valid = true;
        } else {
            rc = store__fail(s, "head");
        }
        sqlite3_reset(st);
        if (rc < 0)
            goto out;
    }
    *seq = txn->head_seq;
    memcpy(hash, txn->head_hash, STORE_HASH_SIZE);
out:
    return rc;
}

static void store__bind_opt_text(sqlite3_stmt *st, int col, const char *text)
{
    if (text == NULL || text[0] == '\0')
        sqlite3_bind_null(st, col);
    else
        sqlite3_bind_text(st, col, text, -1, SQLITE_STATIC);
}

int sqlite_txn_transfer_append(struct store_txn *txn, const struct store_transfer *t)
{
    struct sqlite_store *s = sqlite__of(txn);
    uint64_t head;
    uint8_t hash[STORE_HASH_SIZE];
    int rc = sqlite_txn_head(txn, &head, hash);
    if (rc < 0)
        return rc;
    if (t->seq != head + 1)
        return HB_EINVAL;
    sqlite3_stmt *st = store__stmt(s, ST_TRANSFER_INSERT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)t->seq);
    sqlite3_bind_text(st, 2, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->debit, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->credit, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, t->amount);
    sqlite3_bind_int64(st, 6, t->kind);
    sqlite3_bind_int64(st, 7, t->flags);
    store__bind_opt_text(st, 8, t->link);
    sqlite3_bind_int64(st, 9, t->expires_at);
    sqlite3_bind_int64(st, 10, t->ts);
    sqlite3_bind_text(st, 11, t->ref, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, t->tag, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 13, t->hash, STORE_HASH_SIZE, SQLITE_STATIC);
    rc = store__step_done(s, st, "transfer_append");
    if (rc == 0) {
        txn->head_seq = t->seq;
        memcpy(txn->head_hash, t->hash, STORE_HASH_SIZE);
        txn->head_valid = true;
        txn->head_dirty = true;
    }
    return rc;
}

int sqlite_txn_transfer_find_link(struct store_txn *txn, const char *link, uint32_t flags_any,
                                  struct store_transfer *out)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_FIND_LINK);
    sqlite3_bind_text(st, 1, link, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, flags_any);
    return store__transfer_one(s, st, out, "find_link");
}

int sqlite_txn_link_sum(struct store_txn *txn, const char *link, uint32_t flags_any, int64_t *sum)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_LINK_SUM);
    sqlite3_bind_text(st, 1, link, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, flags_any);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *sum = sqlite3_column_int64(st, 0);
    else
        rc = store__fail(s, "link_sum");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_pending_add(struct store_txn *txn, const char *id, int64_t expires_at)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_ADD);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, expires_at);
    return store__step_done(s, st, "pending_add");
}

int sqlite_txn_pending_remove(struct store_txn *txn, const char *id)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_REMOVE);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return store__step_done(s, st, "pending_remove");
}

int sqlite_txn_pending_expired(struct store_txn *txn, int64_t now, char (*ids)[STORE_ID_SIZE],
                               size_t max, size_t *n)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_EXPIRED);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    int rc = 0;
    int r;
    *n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max)
        store__copy_text(ids[(*n)++], STORE_ID_SIZE, st, 0);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "pending_expired");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_pending_next(struct store_txn *txn, int64_t *expires_at)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_NEXT);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *expires_at = sqlite3_column_int64(st, 0); /* NULL reads as 0 */
    else
        rc = store__fail(s, "pending_next");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_transfer_each(struct store_txn *txn, uint64_t from_seq,
                             int (*fn)(const struct store_transfer *t, void *data), void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_TRANSFER_EACH);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)from_seq);
    struct store_transfer t;
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        store__row_transfer(st, &t);
        rc = fn(&t, data);
        if (rc != 0)
            goto out;
    }
    if (r != SQLITE_DONE)
        rc = store__fail(s, "transfer_each");
out:
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_account_each(struct store_txn *txn,
                            int (*fn)(const struct store_account *a, void *data), void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    int rc = sqlite__kept_flush(s); /* the table as this transaction has it */
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_EACH);
    struct store_account a;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        store__row_account(st, &a);
        rc = fn(&a, data);
        if (rc != 0)
            goto out;
    }
    if (r != SQLITE_DONE)
        rc = store__fail(s, "account_each");
out:
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_pending_each(struct store_txn *txn,
                            int (*fn)(const char *id, int64_t expires_at, void *data), void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_PENDING_EACH);
    char id[STORE_ID_SIZE];
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        store__copy_text(id, sizeof(id), st, 0);
        rc = fn(id, sqlite3_column_int64(st, 1), data);
        if (rc != 0)
            goto out;
    }
    if (r != SQLITE_DONE)
        rc = store__fail(s, "pending_each");
out:
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_history(struct store_txn *txn, const char *account, uint64_t before_seq,
                       struct store_transfer *out, size_t max, size_t *n)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_HISTORY);
    sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before_seq != 0 ? (sqlite3_int64)before_seq : INT64_MAX);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
    int rc = 0;
    int r;
    *n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max)
        store__row_transfer(st, &out[(*n)++]);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "history");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_usage(struct store_txn *txn, uint32_t kind, uint32_t flags_none, const char *account,
                     int64_t from, int64_t to, struct store_usage *out, size_t max, size_t *n)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_USAGE);
    sqlite3_bind_int64(st, 1, kind);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    sqlite3_bind_int64(st, 4, flags_none);
    store__bind_opt_text(st, 5, account);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)max);
    int rc = 0;
    int r;
    *n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        struct store_usage *u = &out[(*n)++];
        u->day = sqlite3_column_int64(st, 0);
        store__copy_text(u->tag, sizeof(u->tag), st, 1);
        u->amount = sqlite3_column_int64(st, 2);
        u->count = sqlite3_column_int64(st, 3);
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "usage");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_head_recorded(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_HEAD_RECORDED);
    int r = sqlite3_step(st);
    int rc = 0;
    *seq = 0;
    memset(hash, 0, STORE_HASH_SIZE);
    if (r == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
        const void *h = sqlite3_column_blob(st, 1);
        int hn = sqlite3_column_bytes(st, 1);
        if (h != NULL)
            memcpy(hash, h, hn < STORE_HASH_SIZE ? (size_t)hn : STORE_HASH_SIZE);
    } else if (r != SQLITE_DONE) {
        rc = store__fail(s, "head_recorded");
    }
    sqlite3_reset(st);
    return rc;
}

/* ---- State ------------------------------------------------------------- */

int sqlite_txn_state_get(struct store_txn *txn, const char *ns, const char *key, char **value)
{
    struct sqlite_store *s = sqlite__of(txn);
    *value = NULL;
    if (s->stmt[ST_STATE_GET] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_STATE_GET);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        *value = strdup(v != NULL ? (const char *)v : "");
        if (*value == NULL)
            rc = HB_ENOMEM;
    } else if (r == SQLITE_DONE) {
        rc = HB_ENOTFOUND;
    } else {
        rc = store__fail(s, "state_get");
    }
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_state_put(struct store_txn *txn, const char *ns, const char *key, const char *value,
                         int64_t now_ms)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_STATE_PUT] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st;
    if (value == NULL) {
        st = store__stmt(s, ST_STATE_DELETE);
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        return store__step_done(s, st, "state_delete");
    }
    st = store__stmt(s, ST_STATE_PUT);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    return store__step_done(s, st, "state_put");
}

int sqlite_txn_state_each(struct store_txn *txn, const char *ns, const char *prefix,
                          int (*fn)(const char *key, const char *value, void *data), void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_STATE_EACH] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_STATE_EACH);
    size_t plen = strlen(prefix);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (k == NULL || strncmp(k, prefix, plen) != 0)
            break; /* keys are ordered: past the prefix */
        rc = fn(k, v != NULL ? v : "", data);
        if (rc != 0)
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "state_each");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_state_range(struct store_txn *txn, const char *ns, const char *from, const char *to,
                           int (*fn)(const char *key, const char *value, void *data), void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_STATE_EACH] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_STATE_EACH);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (k == NULL || (to != NULL && strcmp(k, to) >= 0))
            break; /* keys are ordered: past the range */
        rc = fn(k, v != NULL ? v : "", data);
        if (rc != 0)
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "state_range");
    sqlite3_reset(st);
    return rc;
}

/* ---- Votes -------------------------------------------------------------- */

int sqlite_txn_vote_add(struct store_txn *txn, const char *scope, const char *period,
                        const struct store_vote *v)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_VOTE_ADD] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_VOTE_ADD);
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, v->image, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, v->creator, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, v->model, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, v->count);
    return store__step_done(s, st, "vote_add");
}

int sqlite_txn_vote_top(struct store_txn *txn, const char *scope, const char *period,
                        struct store_vote *out, size_t max, size_t *n)
{
    struct sqlite_store *s = sqlite__of(txn);
    *n = 0;
    if (s->stmt[ST_VOTE_TOP] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_VOTE_TOP);
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        struct store_vote *v = &out[(*n)++];
        store__copy_text(v->image, sizeof(v->image), st, 0);
        store__copy_text(v->creator, sizeof(v->creator), st, 1);
        store__copy_text(v->model, sizeof(v->model), st, 2);
        v->count = sqlite3_column_int64(st, 3);
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "vote_top");
    sqlite3_reset(st);
    return rc;
}
/* ---- Counters ------------------------------------------------------------- */

/* The bounded add itself: 1 when it applied (*after the value now), 0 when
 * no row of name/win let it (none, or the bound refused), or HB_ESTORAGE. */
static int store__counter_step(struct sqlite_store *s, const char *name, int64_t win, int64_t delta,
                               int64_t limit, int64_t *after)
{
    sqlite3_stmt *st = store__stmt(s, ST_COUNTER_ADD);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, win);
    sqlite3_bind_int64(st, 3, delta);
    sqlite3_bind_int64(st, 4, limit);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW) {
        *after = sqlite3_column_int64(st, 0);
        rc = 1;
        r = sqlite3_step(st);
    }
    if (r != SQLITE_DONE)
        rc = store__fail(s, "counter_add");
    sqlite3_reset(st);
    return rc;
}

int store__counter_add_sql(struct sqlite_store *s, const char *name, int64_t win, int64_t delta,
                           int64_t limit, int64_t *after)
{
    int rc = store__counter_step(s, name, win, delta, limit, after);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = store__stmt(s, ST_COUNTER_ENSURE);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, win);
    rc = store__step_done(s, st, "counter_ensure");
    if (rc < 0 || sqlite3_changes(s->db) == 0)
        return rc; /* the row was there, and the bound refused */
    st = store__stmt(s, ST_COUNTER_PRUNE);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, win);
    rc = store__step_done(s, st, "counter_prune");
    if (rc == 0)
        rc = store__counter_step(s, name, win, delta, limit, after);
    return rc == 1 ? 2 : rc;
}

/* ---- Outbox ------------------------------------------------------------ */

int sqlite_txn_outbox_put(struct store_txn *txn, const char *channel, int64_t id, int64_t chat,
                          const char *body, const void *data, size_t data_len, int64_t now_ms)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_OUTBOX_PUT] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_OUTBOX_PUT);
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, chat);
    sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
    if (data != NULL)
        sqlite3_bind_blob64(st, 5, data, (sqlite3_uint64)data_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now_ms);
    return store__step_done(s, st, "outbox_put");
}

int sqlite_txn_outbox_remove(struct store_txn *txn, const char *channel, int64_t id)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_OUTBOX_REMOVE] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_OUTBOX_REMOVE);
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    return store__step_done(s, st, "outbox_remove");
}

/* The rows of channel marked undeliverable long enough before now_ms. */
static int sqlite__outbox_purge(struct sqlite_store *s, const char *channel, int64_t now_ms)
{
    if (s->stmt[ST_OUTBOX_PURGE] == NULL)
        return 0;
    sqlite3_stmt *st = store__stmt(s, ST_OUTBOX_PURGE);
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms - STORE_OUTBOX_FAILED_KEEP_MS);
    return store__step_done(s, st, "outbox_purge");
}

int sqlite_txn_outbox_fail(struct store_txn *txn, const char *channel, int64_t id,
                           const char *error, int64_t now_ms)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_OUTBOX_FAIL] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_OUTBOX_FAIL);
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, now_ms > 0 ? now_ms : 1);
    sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
    int rc = store__step_done(s, st, "outbox_fail");
    return rc < 0 ? rc : sqlite__outbox_purge(s, channel, now_ms);
}

int sqlite_txn_outbox_each(struct store_txn *txn, const char *channel, int64_t after_id, size_t max,
                           int (*fn)(int64_t id, int64_t chat, const char *body, const void *data,
                                     size_t data_len, void *arg),
                           void *arg)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_OUTBOX_EACH] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_OUTBOX_EACH);
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *body = (const char *)sqlite3_column_text(st, 2);
        const void *data = sqlite3_column_blob(st, 3);
        size_t dlen = (size_t)sqlite3_column_bytes(st, 3);
        rc = fn(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), body != NULL ? body : "",
                data, data != NULL ? dlen : 0, arg);
        if (rc != 0)
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "outbox_each");
    sqlite3_reset(st);
    return rc;
}

/* Step a statement returning one integer. */
static int store__one_int(struct sqlite_store *s, sqlite3_stmt *st, int64_t *out, const char *what)
{
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = store__fail(s, what);
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_outbox_max(struct store_txn *txn, const char *channel, int64_t *id)
{
    struct sqlite_store *s = sqlite__of(txn);
    *id = 0;
    if (s->stmt[ST_OUTBOX_MAX] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_OUTBOX_MAX);
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    return store__one_int(s, st, id, "outbox_max");
}

int sqlite_txn_outbox_count(struct store_txn *txn, const char *channel, bool undeliverable,
                            int64_t *n)
{
    struct sqlite_store *s = sqlite__of(txn);
    *n = 0;
    if (s->stmt[ST_OUTBOX_COUNT] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_OUTBOX_COUNT);
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, undeliverable ? 1 : 0);
    return store__one_int(s, st, n, "outbox_count");
}

int sqlite_txn_outbox_channels(struct store_txn *txn, const char *family,
                               int (*fn)(const char *channel, void *arg), void *arg)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_OUTBOX_CHANNELS] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_OUTBOX_CHANNELS);
    sqlite3_bind_text(st, 1, family, -1, SQLITE_STATIC);
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *channel = (const char *)sqlite3_column_text(st, 0);
        rc = fn(channel != NULL ? channel : "", arg);
        if (rc != 0)
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "outbox_channels");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_outbox_move(struct store_txn *txn, const char *from, const char *to, int64_t upto_id,
                           int64_t now_ms, int64_t *moved)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_OUTBOX_MOVE] == NULL)
        return HB_ESCHEMA;
    int rc = sqlite__outbox_purge(s, from, now_ms);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = store__stmt(s, ST_OUTBOX_MOVE);
    sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, upto_id);
    rc = store__step_done(s, st, "outbox_move");
    *moved = rc == 0 ? sqlite3_changes(s->db) : 0;
    return rc;
}
