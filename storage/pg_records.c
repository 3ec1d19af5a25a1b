/* The PostgreSQL store's ledger records: accounts, the transfer history and
 * its chain head, open reservations, usage, the state table, vote counts,
 * counters and the outbox (the same contract as sqlite_records.c). */
#include "storage/store.h"

#include "base/error.h"
#include "base/map.h"
#include "storage/pg_internal.h"

#include <stdlib.h>
#include <string.h>

#define PG_ACCOUNT_COLS                                                                            \
    "id, flags, debits_posted, credits_posted, debits_pending, credits_pending, created_at"

static void pg__row_account(const PGresult *r, int i, struct store_account *a)
{
    pg__text_at(r, i, 0, a->id, sizeof(a->id));
    a->flags = (uint32_t)pg__int_at(r, i, 1);
    a->debits_posted = pg__int_at(r, i, 2);
    a->credits_posted = pg__int_at(r, i, 3);
    a->debits_pending = pg__int_at(r, i, 4);
    a->credits_pending = pg__int_at(r, i, 5);
    a->created_at = pg__int_at(r, i, 6);
}

static void pg__row_transfer(const PGresult *r, int i, struct store_transfer *t)
{
    t->seq = (uint64_t)pg__int_at(r, i, 0);
    pg__text_at(r, i, 1, t->id, sizeof(t->id));
    pg__text_at(r, i, 2, t->debit, sizeof(t->debit));
    pg__text_at(r, i, 3, t->credit, sizeof(t->credit));
    t->amount = pg__int_at(r, i, 4);
    t->kind = (uint32_t)pg__int_at(r, i, 5);
    t->flags = (uint32_t)pg__int_at(r, i, 6);
    pg__text_at(r, i, 7, t->link, sizeof(t->link));
    t->expires_at = pg__int_at(r, i, 8);
    t->ts = pg__int_at(r, i, 9);
    pg__text_at(r, i, 10, t->ref, sizeof(t->ref));
    pg__text_at(r, i, 11, t->tag, sizeof(t->tag));
    pg__bytes_at(r, i, 12, t->hash, sizeof(t->hash));
}

PGresult *pg__query(struct store_txn *txn, const char *sql, const struct pg_params *p,
                    const char *what, int *rc)
{
    return pg__run(pg__of(txn), sql, p, PGRES_TUPLES_OK, what, rc);
}

int pg__one_int(struct store_txn *txn, const char *sql, const struct pg_params *p, int64_t *out,
                const char *what)
{
    int rc = 0;
    PGresult *r = pg__query(txn, sql, p, what, &rc);
    if (r == NULL)
        return rc;
    *out = PQntuples(r) > 0 ? pg__int_at(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

/* The server's clock: clock_timestamp(), not now() (the transaction's
 * start, which a batch may have begun a while ago). */
int pg_txn_clock_ms(struct store_txn *txn, int64_t *now_ms)
{
    return pg__one_int(txn, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", NULL,
                       now_ms, "clock");
}

/* ---- Accounts and transfers --------------------------------------------------- */

/* The value of an id looked up with no transfer. */
static char pg__absent;

static void pg__transfers_forget(struct pg_store *s)
{
    if (s->transfers == NULL || map_count(s->transfers) == 0)
        return;
    struct map_iter it;
    void *v;
    map_iter_init(&it, s->transfers);
    while (map_iter_next(&it, NULL, &v)) {
        if (v != &pg__absent)
            free(v);
    }
    map_free(s->transfers);
    s->transfers = NULL;
}

static void pg__accounts_drop(struct pg_store *s)
{
    if (s->accounts != NULL && map_count(s->accounts) > 0) {
        map_free(s->accounts);
        s->accounts = NULL;
    }
    s->accounts_valid = false;
}

void pg__caches_forget(struct pg_store *s)
{
    pg__accounts_drop(s);
    pg__transfers_forget(s);
}

#define PG_ACCOUNTS_KEEP_MAX 100000 /* accounts kept between batches, at most */

void pg__cache_committed(struct pg_store *s, const struct store_txn *txn)
{
    pg__transfers_forget(s);
    bool known = s->accounts_checked && txn->head_valid;
    if (!known || (s->accounts != NULL && map_count(s->accounts) > PG_ACCOUNTS_KEEP_MAX)) {
        pg__accounts_drop(s);
        return;
    }
    s->accounts_valid = true;
    s->accounts_seq = txn->head_seq;
}

/* Before the account cache is used in a transaction: a transaction that
 * did not check it against the head starts it empty. */
static void pg__accounts_check(struct pg_store *s)
{
    if (!s->accounts_checked) {
        pg__accounts_drop(s);
        s->accounts_checked = true;
    }
}

/* Remember what id holds in this transaction: t, or none (t NULL). */
static void pg__transfer_keep(struct pg_store *s, const char *id, const struct store_transfer *t)
{
    if (!s->cache_on)
        return;
    if (s->transfers == NULL && (s->transfers = map_new(NULL)) == NULL)
        return;
    void *old = map_get(s->transfers, id);
    void *v = &pg__absent;
    if (t != NULL) {
        struct store_transfer *copy = malloc(sizeof(*copy));
        if (copy == NULL) {
            /* Unknown rather than wrong: the next read asks the database. */
            if (old != NULL && old != &pg__absent)
                free(old);
            map_remove(s->transfers, id);
            return;
        }
        *copy = *t;
        v = copy;
    }
    if (map_set(s->transfers, id, v) < 0) {
        if (v != &pg__absent)
            free(v);
        map_remove(s->transfers, id);
        v = NULL;
    }
    if (old != NULL && old != &pg__absent && old != v)
        free(old);
}

/* The cache's copy of a's account, when it keeps one, becomes a: read
 * again, or as it was before a failed job's write (pg_puts.c). */
void pg__account_kept_set(struct pg_store *s, const struct store_account *a)
{
    struct store_account *kept = s->accounts != NULL ? map_get(s->accounts, a->id) : NULL;
    if (kept != NULL)
        *kept = *a;
}

/* A failed job's transfer unknown again (pg_puts.c). */
void pg__transfer_unkeep(struct pg_store *s, const char *id)
{
    if (s->transfers != NULL && map_get(s->transfers, id) != NULL)
        pg__transfer_keep(s, id, NULL);
}

/* Read again every kept account that a transfer after seq moved. */
static int pg__accounts_refresh(struct pg_store *s, uint64_t seq)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__int(&p, (int64_t)seq);
    int rc = 0;
    PGresult *r = pg__run(s,
                          "SELECT " PG_ACCOUNT_COLS " FROM accounts WHERE id IN"
                          " (SELECT debit_account FROM transfers WHERE seq > $1"
                          " UNION SELECT credit_account FROM transfers WHERE seq > $1)",
                          &p, PGRES_TUPLES_OK, "accounts_refresh", &rc);
    if (r == NULL)
        return rc;
    struct store_account a;
    for (int i = 0; i < PQntuples(r); i++) {
        pg__row_account(r, i, &a);
        pg__account_kept_set(s, &a);
    }
    PQclear(r);
    return 0;
}

int pg__batch_begin(struct store *base, struct store_job *jobs)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!s->cache_on)
        return 0;
    /* The head now: the accounts kept hold unless another daemon appended
     * since this one's last commit. */
    struct store_txn *txn = &s->base.txn;
    txn->head_valid = false;
    uint64_t seq = 0;
    uint8_t hash[STORE_HASH_SIZE];
    int hrc = pg_txn_head(txn, &seq, hash);
    if (hrc < 0)
        return hrc;
    if (s->accounts_valid && seq > s->accounts_seq && s->accounts != NULL) {
        /* Other daemons appended since: the accounts their transfers moved
         * are read again, in one query; the others still hold. */
        int rc = pg__accounts_refresh(s, s->accounts_seq);
        if (rc < 0)
            return rc;
    } else if (!s->accounts_valid || seq != s->accounts_seq) {
        pg__accounts_drop(s);
    }
    s->accounts_checked = true;
    pg__arr_open(&s->keys);
    size_t n = 0;
    for (struct store_job *j = jobs; j != NULL; j = j->next) {
        for (int k = 0; k < 2; k++) {
            const char *id = j->keys[k];
            if (id == NULL || id[0] == '\0')
                continue;
            pg__arr_text(&s->keys, id);
            n++;
        }
    }
    const char *ids = pg__arr_close(&s->keys);
    if (n == 0 || ids == NULL)
        return 0; /* out of memory: each is read when asked */
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, ids);
    int rc = 0;
    PGresult *r = pg__run(s,
                          "SELECT " PG_TRANSFER_COLS " FROM unnest($1::text[]) AS k(id)"
                          " JOIN transfers USING (id)",
                          &p, PGRES_TUPLES_OK, "batch_begin", &rc);
    if (r == NULL)
        return rc;
    struct store_transfer t;
    for (int i = 0; i < PQntuples(r); i++) {
        pg__row_transfer(r, i, &t);
        pg__transfer_keep(s, t.id, &t);
    }
    PQclear(r);
    /* Every id named and not found has no transfer (nothing else writes
     * while this transaction holds the write lock). */
    size_t seen = 0;
    for (struct store_job *j = jobs; j != NULL && seen < n; j = j->next) {
        for (int k = 0; k < 2 && seen < n; k++) {
            const char *id = j->keys[k];
            if (id == NULL || id[0] == '\0')
                continue;
            seen++;
            if (s->transfers == NULL || map_get(s->transfers, id) == NULL)
                pg__transfer_keep(s, id, NULL);
        }
    }
    return 0;
}

/* Remember an account as this transaction now has it (nothing when out of
 * memory: the next read asks the database). */
static void pg__account_keep(struct pg_store *s, const struct store_account *a)
{
    if (!s->cache_on)
        return;
    pg__accounts_check(s);
    if (s->accounts == NULL && (s->accounts = map_new(free)) == NULL)
        return;
    struct store_account *kept = map_get(s->accounts, a->id);
    if (kept != NULL) {
        *kept = *a;
        return;
    }
    kept = malloc(sizeof(*kept));
    if (kept == NULL)
        return;
    *kept = *a;
    if (map_set(s->accounts, a->id, kept) < 0)
        free(kept);
}

int pg_txn_account_get(struct store_txn *txn, const char *id, struct store_account *out)
{
    struct pg_store *s = pg__of(txn);
    if (s->cache_on)
        pg__accounts_check(s);
    const struct store_account *kept =
        s->cache_on && s->accounts != NULL ? map_get(s->accounts, id) : NULL;
    if (kept != NULL) {
        *out = *kept;
        return 0;
    }
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, id);
    int rc = 0;
    PGresult *r = pg__query(txn, "SELECT " PG_ACCOUNT_COLS " FROM accounts WHERE id = $1", &p,
                            "account_get", &rc);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 1) {
        pg__row_account(r, 0, out);
        pg__account_keep(s, out);
    } else {
        rc = HB_ENOTFOUND;
    }
    PQclear(r);
    return rc;
}

int pg_txn_account_insert(struct store_txn *txn, const struct store_account *a)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, a->id);
    pg__int(&p, a->flags);
    pg__int(&p, a->debits_posted);
    pg__int(&p, a->credits_posted);
    pg__int(&p, a->debits_pending);
    pg__int(&p, a->credits_pending);
    pg__int(&p, a->created_at);
    int rc =
        pg__do(pg__of(txn),
               "INSERT INTO accounts (" PG_ACCOUNT_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7)", &p,
               "account_insert", NULL);
    if (rc == 0)
        pg__account_keep(pg__of(txn), a);
    return rc == HB_EEXISTS ? HB_ESTORAGE : rc;
}

const char pg_sql_account_sums[] = "UPDATE accounts SET debits_posted = $2, credits_posted = $3,"
                                   " debits_pending = $4, credits_pending = $5 WHERE id = $1";

/* An account's sums as pg_sql_account_sums's parameters. */
void pg__account_sums_params(struct pg_params *p, const struct store_account *a)
{
    pg__params_init(p);
    pg__text(p, a->id);
    pg__int(p, a->debits_posted);
    pg__int(p, a->credits_posted);
    pg__int(p, a->debits_pending);
    pg__int(p, a->credits_pending);
}

int pg_txn_account_update(struct store_txn *txn, const struct store_account *a)
{
    struct pg_store *s = pg__of(txn);
    if (s->cache_on)
        pg__accounts_check(s);
    struct store_account *kept =
        s->cache_on && s->accounts != NULL ? map_get(s->accounts, a->id) : NULL;
    /* In a write transaction the new sums go out with the batch's others,
     * one row an account (pg_puts.c). */
    int rc = 0;
    if (s->cache_on) {
        rc = pg__put_account(s, a, kept);
    } else {
        struct pg_params p;
        pg__account_sums_params(&p, a);
        rc = pg__do(s, pg_sql_account_sums, &p, "account_update", NULL);
    }
    if (rc == 0 && kept != NULL) {
        /* Flags and creation time never change; the sums do. */
        kept->debits_posted = a->debits_posted;
        kept->credits_posted = a->credits_posted;
        kept->debits_pending = a->debits_pending;
        kept->credits_pending = a->credits_pending;
    }
    return rc;
}

/* A query expected to return at most one transfer row. */
static int pg__transfer_one(struct store_txn *txn, const char *sql, const struct pg_params *p,
                            struct store_transfer *out, const char *what)
{
    int rc = 0;
    PGresult *r = pg__query(txn, sql, p, what, &rc);
    if (r == NULL)
        return rc;
    if (PQntuples(r) >= 1)
        pg__row_transfer(r, 0, out);
    else
        rc = HB_ENOTFOUND;
    PQclear(r);
    return rc;
}

int pg_txn_transfer_get(struct store_txn *txn, const char *id, struct store_transfer *out)
{
    struct pg_store *s = pg__of(txn);
    const void *kept = s->cache_on && s->transfers != NULL ? map_get(s->transfers, id) : NULL;
    if (kept == &pg__absent)
        return HB_ENOTFOUND;
    if (kept != NULL) {
        *out = *(const struct store_transfer *)kept;
        return 0;
    }
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, id);
    return pg__transfer_one(txn, "SELECT " PG_TRANSFER_COLS " FROM transfers WHERE id = $1", &p,
                            out, "transfer_get");
}

int pg__head_read(struct store_txn *txn, const char *sql, uint64_t *seq, uint8_t *hash,
                  const char *what)
{
    int rc = 0;
    PGresult *r = pg__query(txn, sql, NULL, what, &rc);
    if (r == NULL)
        return rc;
    *seq = 0;
    memset(hash, 0, STORE_HASH_SIZE);
    if (PQntuples(r) == 1) {
        *seq = (uint64_t)pg__int_at(r, 0, 0);
        pg__bytes_at(r, 0, 1, hash, STORE_HASH_SIZE);
    }
    PQclear(r);
    return 0;
}

int pg_txn_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    if (!txn->head_valid) {
        int rc = pg__head_read(txn, "SELECT seq, hash FROM transfers ORDER BY seq DESC LIMIT 1",
                               &txn->head_seq, txn->head_hash, "head");
        if (rc < 0)
            return rc;
        txn->head_valid = true;
    }
    *seq = txn->head_seq;
    memcpy(hash, txn->head_hash, STORE_HASH_SIZE);
    return 0;
}

int pg_txn_head_recorded(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    return pg__head_read(txn, "SELECT seq, hash FROM head WHERE one = 1 AND seq > 0", seq, hash,
                         "head_recorded");
}

const char pg_sql_transfer_insert[] =
    "INSERT INTO transfers (" PG_TRANSFER_COLS ")"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/* A transfer's row as pg_sql_transfer_insert's parameters. */
void pg__transfer_params(struct pg_params *p, const struct store_transfer *t)
{
    pg__params_init(p);
    pg__int(p, (int64_t)t->seq);
    pg__text(p, t->id);
    pg__text(p, t->debit);
    pg__text(p, t->credit);
    pg__int(p, t->amount);
    pg__int(p, t->kind);
    pg__int(p, t->flags);
    pg__opt(p, t->link);
    pg__int(p, t->expires_at);
    pg__int(p, t->ts);
    pg__text(p, t->ref);
    pg__text(p, t->tag);
    pg__bin(p, t->hash, STORE_HASH_SIZE);
}

int pg_txn_transfer_append(struct store_txn *txn, const struct store_transfer *t)
{
    uint64_t head;
    uint8_t hash[STORE_HASH_SIZE];
    int rc = pg_txn_head(txn, &head, hash);
    if (rc < 0)
        return rc;
    if (t->seq != head + 1)
        return HB_EINVAL;
    if (pg__of(txn)->cache_on) {
        rc = pg__put_transfer(pg__of(txn), t);
    } else {
        struct pg_params p;
        pg__transfer_params(&p, t);
        rc = pg__do(pg__of(txn), pg_sql_transfer_insert, &p, "transfer_append", NULL);
    }
    if (rc == 0) {
        txn->head_seq = t->seq;
        memcpy(txn->head_hash, t->hash, STORE_HASH_SIZE);
        txn->head_valid = true;
        txn->head_dirty = true;
        /* Known to this transaction now (a later job of the batch may ask). */
        if (pg__of(txn)->transfers != NULL && map_get(pg__of(txn)->transfers, t->id) != NULL)
            pg__transfer_keep(pg__of(txn), t->id, t);
    }
    return rc == HB_EEXISTS ? HB_ESTORAGE : rc;
}

int pg_txn_transfer_find_link(struct store_txn *txn, const char *link, uint32_t flags_any,
                              struct store_transfer *out)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, link);
    pg__int(&p, flags_any);
    return pg__transfer_one(txn,
                            "SELECT " PG_TRANSFER_COLS " FROM transfers"
                            " WHERE link = $1 AND (flags & $2) != 0 ORDER BY seq LIMIT 1",
                            &p, out, "find_link");
}

int pg_txn_link_sum(struct store_txn *txn, const char *link, uint32_t flags_any, int64_t *sum)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, link);
    pg__int(&p, flags_any);
    return pg__one_int(txn,
                       "SELECT COALESCE(SUM(amount), 0) FROM transfers"
                       " WHERE link = $1 AND (flags & $2) != 0",
                       &p, sum, "link_sum");
}

int pg_txn_pending_add(struct store_txn *txn, const char *id, int64_t expires_at)
{
    struct pg_store *s = pg__of(txn);
    if (s->cache_on)
        return pg__put_pending(s, id, expires_at, true);
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, id);
    pg__int(&p, expires_at);
    int rc =
        pg__do(s, "INSERT INTO pending (id, expires_at) VALUES ($1, $2)", &p, "pending_add", NULL);
    return rc == HB_EEXISTS ? HB_ESTORAGE : rc;
}

int pg_txn_pending_remove(struct store_txn *txn, const char *id)
{
    struct pg_store *s = pg__of(txn);
    if (s->cache_on)
        return pg__put_pending(s, id, 0, false);
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, id);
    return pg__do(s, "DELETE FROM pending WHERE id = $1", &p, "pending_remove", NULL);
}

int pg_txn_pending_expired(struct store_txn *txn, int64_t now, char (*ids)[STORE_ID_SIZE],
                           size_t max, size_t *n)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__int(&p, now);
    pg__int(&p, (int64_t)max);
    int rc = 0;
    *n = 0;
    PGresult *r = pg__query(txn,
                            "SELECT id FROM pending WHERE expires_at > 0 AND expires_at <= $1"
                            " ORDER BY expires_at, id LIMIT $2",
                            &p, "pending_expired", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < max; i++)
        pg__text_at(r, i, 0, ids[(*n)++], STORE_ID_SIZE);
    PQclear(r);
    return 0;
}

int pg_txn_pending_next(struct store_txn *txn, int64_t *expires_at)
{
    return pg__one_int(txn, "SELECT MIN(expires_at) FROM pending WHERE expires_at > 0", NULL,
                       expires_at, "pending_next");
}

int pg_txn_transfer_each(struct store_txn *txn, uint64_t from_seq,
                         int (*fn)(const struct store_transfer *t, void *data), void *data)
{
    /* In pages, so that a long history never sits in memory at once. */
    struct store_transfer t;
    for (;;) {
        struct pg_params p;
        pg__params_init(&p);
        pg__int(&p, (int64_t)from_seq);
        int rc = 0;
        PGresult *r = pg__query(txn,
                                "SELECT " PG_TRANSFER_COLS " FROM transfers WHERE seq >= $1"
                                " ORDER BY seq LIMIT 1000",
                                &p, "transfer_each", &rc);
        if (r == NULL)
            return rc;
        int rows = PQntuples(r);
        for (int i = 0; i < rows && rc == 0; i++) {
            pg__row_transfer(r, i, &t);
            rc = fn(&t, data);
        }
        PQclear(r);
        if (rc != 0 || rows < 1000)
            return rc;
        from_seq = t.seq + 1;
    }
}

int pg_txn_account_each(struct store_txn *txn, int (*fn)(const struct store_account *a, void *data),
                        void *data)
{
    int rc = 0;
    PGresult *r = pg__query(txn, "SELECT " PG_ACCOUNT_COLS " FROM accounts ORDER BY id", NULL,
                            "account_each", &rc);
    if (r == NULL)
        return rc;
    struct store_account a;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        pg__row_account(r, i, &a);
        rc = fn(&a, data);
    }
    PQclear(r);
    return rc;
}

int pg_txn_pending_each(struct store_txn *txn,
                        int (*fn)(const char *id, int64_t expires_at, void *data), void *data)
{
    int rc = 0;
    PGresult *r =
        pg__query(txn, "SELECT id, expires_at FROM pending ORDER BY id", NULL, "pending_each", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = fn(PQgetvalue(r, i, 0), pg__int_at(r, i, 1), data);
    PQclear(r);
    return rc;
}

int pg_txn_history(struct store_txn *txn, const char *account, uint64_t before_seq,
                   struct store_transfer *out, size_t max, size_t *n)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, account);
    pg__int(&p, before_seq != 0 ? (int64_t)before_seq : INT64_MAX);
    pg__int(&p, (int64_t)max);
    int rc = 0;
    *n = 0;
    PGresult *r = pg__query(txn,
                            "SELECT " PG_TRANSFER_COLS " FROM transfers"
                            " WHERE (debit_account = $1 OR credit_account = $1) AND seq < $2"
                            " ORDER BY seq DESC LIMIT $3",
                            &p, "history", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < max; i++)
        pg__row_transfer(r, i, &out[(*n)++]);
    PQclear(r);
    return 0;
}

int pg_txn_usage(struct store_txn *txn, uint32_t kind, uint32_t flags_none, const char *account,
                 int64_t from, int64_t to, struct store_usage *out, size_t max, size_t *n)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__int(&p, kind);
    pg__int(&p, from);
    pg__int(&p, to);
    pg__int(&p, flags_none);
    pg__opt(&p, account);
    pg__int(&p, (int64_t)max);
    int rc = 0;
    *n = 0;
    PGresult *r = pg__query(txn,
                            "SELECT ts / 86400000, tag, SUM(amount), COUNT(*) FROM transfers"
                            " WHERE kind = $1 AND ts >= $2 AND ts < $3 AND (flags & $4) = 0"
                            " AND ($5::text IS NULL OR debit_account = $5)"
                            " GROUP BY 1, 2 ORDER BY 1, 2 LIMIT $6",
                            &p, "usage", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < max; i++) {
        struct store_usage *u = &out[(*n)++];
        u->day = pg__int_at(r, i, 0);
        pg__text_at(r, i, 1, u->tag, sizeof(u->tag));
        u->amount = pg__int_at(r, i, 2);
        u->count = pg__int_at(r, i, 3);
    }
    PQclear(r);
    return 0;
}

/* ---- State ------------------------------------------------------------------------- */

int pg_txn_state_get(struct store_txn *txn, const char *ns, const char *key, char **value)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, ns);
    pg__text(&p, key);
    int rc = 0;
    *value = NULL;
    PGresult *r =
        pg__query(txn, "SELECT value FROM state WHERE ns = $1 AND key = $2", &p, "state_get", &rc);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 1) {
        *value = strdup(PQgetvalue(r, 0, 0));
        if (*value == NULL)
            rc = HB_ENOMEM;
    } else {
        rc = HB_ENOTFOUND;
    }
    PQclear(r);
    return rc;
}

int pg_txn_state_put(struct store_txn *txn, const char *ns, const char *key, const char *value,
                     int64_t now_ms)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, ns);
    pg__text(&p, key);
    if (value == NULL)
        return pg__do(pg__of(txn), "DELETE FROM state WHERE ns = $1 AND key = $2", &p,
                      "state_delete", NULL);
    pg__text(&p, value);
    pg__int(&p, now_ms);
    return pg__do(pg__of(txn),
                  "INSERT INTO state (ns, key, value, updated_at) VALUES ($1, $2, $3, $4)"
                  " ON CONFLICT (ns, key) DO UPDATE SET value = $3, updated_at = $4",
                  &p, "state_put", NULL);
}

/* Hand each (key, value) row of a state query to fn until it returns
 * non-zero (which is returned). */
static int pg__state_rows(struct store_txn *txn, const char *sql, const struct pg_params *p,
                          const char *what,
                          int (*fn)(const char *key, const char *value, void *data), void *data)
{
    int rc = 0;
    PGresult *r = pg__query(txn, sql, p, what, &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = fn(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), data);
    PQclear(r);
    return rc;
}

int pg_txn_state_range(struct store_txn *txn, const char *ns, const char *from, const char *to,
                       int (*fn)(const char *key, const char *value, void *data), void *data)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, ns);
    pg__text(&p, from);
    pg__opt(&p, to);
    return pg__state_rows(txn,
                          "SELECT key, value FROM state WHERE ns = $1 AND key >= $2"
                          " AND ($3::text IS NULL OR key < $3) ORDER BY key",
                          &p, "state_range", fn, data);
}

int pg_txn_state_each(struct store_txn *txn, const char *ns, const char *prefix,
                      int (*fn)(const char *key, const char *value, void *data), void *data)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, ns);
    pg__text(&p, prefix);
    return pg__state_rows(txn,
                          "SELECT key, value FROM state WHERE ns = $1 AND key >= $2"
                          " AND left(key, length($2)) = $2 ORDER BY key",
                          &p, "state_each", fn, data);
}
