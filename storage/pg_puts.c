/* The writes a PostgreSQL write transaction puts off (pg_internal.h): a
 * transfer's row, an account's new sums, an open reservation's row added or
 * removed. They wait in memory, in order, and go out coalesced: one
 * multi-row statement a table (rows as arrays, unnest()) at the commit or
 * before the transaction's next statement, instead of three to five
 * statements a transfer.
 *
 * A job runs in a savepoint of its own (store.c) that costs nothing here
 * until the job sends a statement: a job whose writes are all put off and
 * that fails is undone in memory (its writes dropped, the caches it
 * changed restored). A job that sends a statement gets a real SAVEPOINT
 * first, after the earlier jobs' writes went out and before its own, so
 * that ROLLBACK TO SAVEPOINT undoes exactly that job. */
#include "base/error.h"
#include "base/hex.h"
#include "base/map.h"
#include "storage/pg_internal.h"
#include "base/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum pg_put_kind { PG_PUT_TRANSFER, PG_PUT_ACCOUNT, PG_PUT_PENDING_ADD, PG_PUT_PENDING_REMOVE };

struct pg_put {
    enum pg_put_kind kind;
    bool had_prev; /* an account: the cache held prev before this write */
    union {
        struct store_transfer transfer;
        struct {
            struct store_account now;
            struct store_account prev;
        } account;
        struct {
            char id[STORE_ID_SIZE];
            int64_t expires_at;
        } pending;
    } u;
};

/* ---- Array literals ------------------------------------------------------------ */

static void pg__arr_put(struct pg_arr *a, const char *v, size_t n)
{
    if (a->oom)
        return;
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap != 0 ? a->cap : 4096;
        while (cap < a->len + n + 1)
            cap *= 2;
        char *grown = realloc(a->buf, cap);
        if (grown == NULL) {
            a->oom = true;
            return;
        }
        a->buf = grown;
        a->cap = cap;
    }
    memcpy(a->buf + a->len, v, n);
    a->len += n;
    a->buf[a->len] = '\0';
}

void pg__arr_open(struct pg_arr *a)
{
    a->len = 0;
    a->oom = false;
    a->items = 0;
    pg__arr_put(a, "{", 1);
}

static void pg__arr_sep(struct pg_arr *a)
{
    if (a->items++ > 0)
        pg__arr_put(a, ",", 1);
}

/* A text element, quoted: quotes and backslashes escaped. */
void pg__arr_text(struct pg_arr *a, const char *v)
{
    pg__arr_sep(a);
    pg__arr_put(a, "\"", 1);
    for (const char *run = v;;) {
        size_t n = strcspn(run, "\"\\");
        pg__arr_put(a, run, n);
        if (run[n] == '\0')
            break;
        char esc[2] = {'\\', run[n]};
        pg__arr_put(a, esc, 2);
        run += n + 1;
    }
    pg__arr_put(a, "\"", 1);
}

static void pg__arr_opt(struct pg_arr *a, const char *v)
{
    if (v == NULL || v[0] == '\0') {
        pg__arr_sep(a);
        pg__arr_put(a, "NULL", 4);
    } else {
        pg__arr_text(a, v);
    }
}

static void pg__arr_int(struct pg_arr *a, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, v);
    pg__arr_sep(a);
    pg__arr_put(a, num, (size_t)n);
}

/* A chain hash as a bytea element in its hex form: "\\x0a1b..." (the
 * backslash escaped). */
static void pg__arr_hash(struct pg_arr *a, const uint8_t hash[STORE_HASH_SIZE])
{
    char hex[2 * STORE_HASH_SIZE + 1];
    hex_encode(hash, STORE_HASH_SIZE, hex);
    pg__arr_sep(a);
    pg__arr_put(a, "\"\\\\x", 4);
    pg__arr_put(a, hex, 2 * STORE_HASH_SIZE);
    pg__arr_put(a, "\"", 1);
}

/* The literal, closed; NULL when memory ran out. */
const char *pg__arr_close(struct pg_arr *a)
{
    pg__arr_put(a, "}", 1);
    return a->oom ? NULL : a->buf;
}

/* ---- Putting off ----------------------------------------------------------------- */

static struct pg_put *pg__put_new(struct pg_store *s, enum pg_put_kind kind)
{
    if (s->nputs == s->puts_cap) {
        struct pg_put *grown = hb_grow(s->puts, &s->puts_cap, 64, sizeof(*grown));
        if (grown == NULL)
            return NULL;
        s->puts = grown;
    }
    struct pg_put *p = &s->puts[s->nputs++];
    p->kind = kind;
    p->had_prev = false;
    return p;
}

int pg__put_transfer(struct pg_store *s, const struct store_transfer *t)
{
    struct pg_put *p = pg__put_new(s, PG_PUT_TRANSFER);
    if (p == NULL)
        return HB_ENOMEM;
    p->u.transfer = *t;
    return 0;
}

int pg__put_account(struct pg_store *s, const struct store_account *now,
                    const struct store_account *prev)
{
    struct pg_put *p = pg__put_new(s, PG_PUT_ACCOUNT);
    if (p == NULL)
        return HB_ENOMEM;
    p->u.account.now = *now;
    if (prev != NULL) {
        p->u.account.prev = *prev;
        p->had_prev = true;
    }
    return 0;
}

int pg__put_pending(struct pg_store *s, const char *id, int64_t expires_at, bool add)
{
    struct pg_put *p = pg__put_new(s, add ? PG_PUT_PENDING_ADD : PG_PUT_PENDING_REMOVE);
    if (p == NULL)
        return HB_ENOMEM;
    snprintf(p->u.pending.id, sizeof(p->u.pending.id), "%s", id);
    p->u.pending.expires_at = expires_at;
    return 0;
}

/* ---- Sending them ---------------------------------------------------------------- */

enum {
    TC_SEQ,
    TC_ID,
    TC_DEBIT,
    TC_CREDIT,
    TC_AMOUNT,
    TC_KIND,
    TC_FLAGS,
    TC_LINK,
    TC_EXPIRES,
    TC_TS,
    TC_REF,
    TC_TAG,
    TC_HASH,
    TC_N
};

/* Send sql with the array literals arrs[first, first + n) as $1..$n. */
static int pg__send_arrays(struct pg_store *s, const char *sql, unsigned first, unsigned n,
                           const char *what)
{
    struct pg_params p;
    pg__params_init(&p);
    for (unsigned i = first; i < first + n; i++) {
        const char *v = pg__arr_close(&s->arrs[i]);
        if (v == NULL)
            return HB_ENOMEM;
        pg__text(&p, v);
    }
    return pg__send(s, sql, &p, what);
}

static int pg__flush_transfers(struct pg_store *s, size_t from, size_t upto)
{
    for (unsigned c = 0; c < TC_N; c++)
        pg__arr_open(&s->arrs[c]);
    unsigned rows = 0;
    const struct store_transfer *one = NULL;
    for (size_t i = from; i < upto; i++) {
        if (s->puts[i].kind != PG_PUT_TRANSFER)
            continue;
        const struct store_transfer *t = &s->puts[i].u.transfer;
        one = t;
        pg__arr_int(&s->arrs[TC_SEQ], (int64_t)t->seq);
        pg__arr_text(&s->arrs[TC_ID], t->id);
        pg__arr_text(&s->arrs[TC_DEBIT], t->debit);
        pg__arr_text(&s->arrs[TC_CREDIT], t->credit);
        pg__arr_int(&s->arrs[TC_AMOUNT], t->amount);
        pg__arr_int(&s->arrs[TC_KIND], t->kind);
        pg__arr_int(&s->arrs[TC_FLAGS], t->flags);
        pg__arr_opt(&s->arrs[TC_LINK], t->link);
        pg__arr_int(&s->arrs[TC_EXPIRES], t->expires_at);
        pg__arr_int(&s->arrs[TC_TS], t->ts);
        pg__arr_text(&s->arrs[TC_REF], t->ref);
        pg__arr_text(&s->arrs[TC_TAG], t->tag);
        pg__arr_hash(&s->arrs[TC_HASH], t->hash);
        rows++;
    }
    if (rows == 0)
        return 0;
    if (rows == 1) {
        /* Alone, the plain statement costs the server less. */
        struct pg_params p;
        pg__transfer_params(&p, one);
        return pg__send(s, pg_sql_transfer_insert, &p, "transfer_append");
    }
    return pg__send_arrays(s,
                           "INSERT INTO transfers (" PG_TRANSFER_COLS ")"
                           " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[],"
                           " $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[],"
                           " $9::bigint[], $10::bigint[], $11::text[], $12::text[],"
                           " $13::bytea[])",
                           0, TC_N, "transfer_append");
}

/* Each account's last sums in the range, one row an account. */
static int pg__flush_accounts(struct pg_store *s, size_t from, size_t upto)
{
    struct map *seen = NULL;
    const struct store_account *alone[2] = {NULL, NULL};
    for (unsigned c = 0; c < 5; c++)
        pg__arr_open(&s->arrs[c]);
    unsigned rows = 0;
    for (size_t i = upto; i > from; i--) {
        const struct pg_put *p = &s->puts[i - 1];
        if (p->kind != PG_PUT_ACCOUNT)
            continue;
        const struct store_account *a = &p->u.account.now;
        if (seen == NULL && (seen = map_new(NULL)) == NULL)
            return HB_ENOMEM;
        if (map_get(seen, a->id) != NULL)
            continue; /* a later write of the range has it */
        if (map_set(seen, a->id, (void *)p) < 0) {
            map_free(seen);
            return HB_ENOMEM;
        }
        if (rows < 2)
            alone[rows] = a;
        pg__arr_text(&s->arrs[0], a->id);
        pg__arr_int(&s->arrs[1], a->debits_posted);
        pg__arr_int(&s->arrs[2], a->credits_posted);
        pg__arr_int(&s->arrs[3], a->debits_pending);
        pg__arr_int(&s->arrs[4], a->credits_pending);
        rows++;
    }
    map_free(seen);
    if (rows <= 2) {
        /* One or two (a transfer's pair): plain statements cost less. */
        int rc = 0;
        for (unsigned i = 0; i < rows && rc == 0; i++) {
            struct pg_params p;
            pg__account_sums_params(&p, alone[i]);
            rc = pg__send(s, pg_sql_account_sums, &p, "account_update");
        }
        return rc;
    }
    return pg__send_arrays(s,
                           "UPDATE accounts AS a SET debits_posted = v.dp, credits_posted = v.cp,"
                           " debits_pending = v.dq, credits_pending = v.cq"
                           " FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],"
                           " $5::bigint[]) AS v(id, dp, cp, dq, cq) WHERE a.id = v.id",
                           0, 5, "account_update");
}

/* Reservations opened, then those closed: an id opened and closed in the
 * same range is inserted and deleted, in that order (an id is opened once,
 * with its transfer). */
static int pg__flush_pending(struct pg_store *s, size_t from, size_t upto)
{
    pg__arr_open(&s->arrs[0]);
    pg__arr_open(&s->arrs[1]);
    pg__arr_open(&s->arrs[2]);
    unsigned added = 0;
    unsigned removed = 0;
    for (size_t i = from; i < upto; i++) {
        const struct pg_put *p = &s->puts[i];
        if (p->kind == PG_PUT_PENDING_ADD) {
            pg__arr_text(&s->arrs[0], p->u.pending.id);
            pg__arr_int(&s->arrs[1], p->u.pending.expires_at);
            added++;
        } else if (p->kind == PG_PUT_PENDING_REMOVE) {
            pg__arr_text(&s->arrs[2], p->u.pending.id);
            removed++;
        }
    }
    int rc = 0;
    if (added > 0)
        rc = pg__send_arrays(s,
                             "INSERT INTO pending (id, expires_at)"
                             " SELECT * FROM unnest($1::text[], $2::bigint[])",
                             0, 2, "pending_add");
    if (rc == 0 && removed > 0)
        rc = pg__send_arrays(s,
                             "DELETE FROM pending AS p USING unnest($1::text[]) AS d(id)"
                             " WHERE p.id = d.id",
                             2, 1, "pending_remove");
    return rc;
}

/* Send the writes put off up to upto (queued in the pipeline; their
 * answers are read at the next sync point, and a failure there fails the
 * whole transaction: the jobs that made them have ended). */
static int pg__puts_flush(struct pg_store *s, size_t upto)
{
    size_t from = s->flushed;
    if (upto <= from)
        return 0;
    int rc = pg__flush_transfers(s, from, upto);
    if (rc == 0)
        rc = pg__flush_accounts(s, from, upto);
    if (rc == 0)
        rc = pg__flush_pending(s, from, upto);
    if (rc < 0) {
        s->broken = true;
        return rc == HB_ENOMEM ? HB_ESTORAGE : rc;
    }
    s->flushed = upto;
    s->deferred = true;
    return 0;
}

int pg__puts_before(struct pg_store *s, bool read)
{
    int rc = 0;
    /* A job that writes now, or reads after it wrote, needs its SAVEPOINT
     * (to undo what reaches the server); it goes after the earlier jobs'
     * writes and before the job's own. A read before the job's first
     * write needs none: it changes nothing, and should it fail, the whole
     * transaction fails (pg.c). */
    if (s->in_job && !s->job_sp && (!read || s->nputs > s->job_mark)) {
        rc = pg__puts_flush(s, s->job_mark);
        if (rc == 0)
            rc = pg__ctl(s, "SAVEPOINT job", false, "savepoint");
        if (rc < 0)
            return rc;
        s->job_sp = true;
        s->savepoints++;
    }
    if (read)
        rc = pg__puts_flush(s, s->nputs);
    return rc;
}

int pg__puts_commit(struct pg_store *s)
{
    return pg__puts_flush(s, s->nputs);
}

void pg__puts_clear(struct pg_store *s)
{
    /* A burst's buffers (some 3 MB after a batch of 1,024 transfers) go
     * back once the batches stayed small for a while; big batches now and
     * then keep them. */
    s->small_batches = s->nputs <= PG_PUTS_KEEP / 4 ? s->small_batches + 1 : 0;
    if (s->puts_cap > PG_PUTS_KEEP && s->small_batches >= PG_PUTS_SMALL_BATCHES)
        pg__puts_free(s);
    s->nputs = 0;
    s->flushed = 0;
    s->in_job = false;
    s->job_sp = false;
    s->savepoints = 0;
}

void pg__puts_job_start(struct pg_store *s)
{
    s->in_job = true;
    s->job_sp = false;
    s->job_mark = s->nputs;
}

/* The job failed: its writes are dropped. Without a savepoint of its own
 * nothing of it reached the server, and the caches it changed are put
 * back as they were, newest first. */
void pg__puts_job_undo(struct pg_store *s)
{
    if (!s->job_sp) {
        for (size_t i = s->nputs; i > s->job_mark; i--) {
            const struct pg_put *p = &s->puts[i - 1];
            if (p->kind == PG_PUT_ACCOUNT && p->had_prev)
                pg__account_kept_set(s, &p->u.account.prev);
            else if (p->kind == PG_PUT_TRANSFER)
                pg__transfer_unkeep(s, p->u.transfer.id);
        }
    }
    s->nputs = s->job_mark;
    if (s->flushed > s->nputs)
        s->flushed = s->nputs;
}

void pg__puts_free(struct pg_store *s)
{
    free(s->puts);
    s->puts = NULL;
    s->puts_cap = 0;
    for (unsigned c = 0; c < PG_ARRS; c++) {
        free(s->arrs[c].buf);
        s->arrs[c] = (struct pg_arr){0};
    }
}
