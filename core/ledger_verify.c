/* `haibot ledger verify` and `haibot ledger head`: recompute the hash chain
 * and every invariant from the transfers alone, and compare them with what
 * the database claims (cached account sums, open reservations, the recorded
 * head). The first thing that does not hold is named and the walk stops. */
#include "core/ledger.h"

#include "base/error.h"
#include "base/hex.h"
#include "core/ledger_internal.h"
#include "base/hash.h"
#include "core/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A string-keyed open-addressing map of four integers, for the sums and
 * states the walk recomputes. */
struct verify_entry {
    char *key; /* heap, NULL for a free slot */
    int64_t v[4];
    bool seen; /* matched against a stored record */
};

struct verify_map {
    struct verify_entry *slots;
    size_t cap; /* power of two */
    size_t count;
};

static uint64_t verify__hash(const char *s)
{
    return hash_fnv1a64_str(s);
}

static struct verify_entry *verify__find(struct verify_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = verify__hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == NULL)
            return NULL;
        if (strcmp(m->slots[i].key, key) == 0)
            return &m->slots[i];
    }
}

static int verify__grow(struct verify_map *m)
{
    size_t cap = m->cap != 0 ? m->cap * 2 : 64;
    struct verify_entry *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return HB_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == NULL)
            continue;
        size_t j = verify__hash(m->slots[i].key) & (cap - 1);
        while (slots[j].key != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* Find or add (zeroed) the entry for key. NULL when out of memory. */
static struct verify_entry *verify__get(struct verify_map *m, const char *key)
{
    struct verify_entry *e = verify__find(m, key);
    if (e != NULL)
        return e;
    if ((m->count + 1) * 2 > m->cap && verify__grow(m) < 0)
        return NULL;
    size_t i = verify__hash(key) & (m->cap - 1);
    while (m->slots[i].key != NULL)
        i = (i + 1) & (m->cap - 1);
    e = &m->slots[i];
    e->key = strdup(key);
    if (e->key == NULL)
        return NULL;
    m->count++;
    return e;
}

static void verify__map_free(struct verify_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

enum { VERIFY_DP, VERIFY_CP, VERIFY_DPEND, VERIFY_CPEND };

struct verify {
    struct store_txn *txn;
    uint64_t next_seq;             /* the seq the next entry must have */
    uint8_t prev[STORE_HASH_SIZE]; /* the previous entry's hash */
    struct verify_map accounts;    /* recomputed sums */
    struct verify_map open;        /* v[0]: 1 while open; v[1]: expires_at */
    struct verify_map reversed;    /* v[0]: credits reversed of an original */
    size_t open_count;
    const struct ledger_head *head; /* a published head the chain must hold, or NULL */
    char where[STORE_ID_SIZE + 64]; /* the first bad entry or account */
    char what[512];                 /* what is wrong with it */
};

#define VERIFY_BROKEN 1

static int verify__bad_entry(struct verify *v, const struct store_transfer *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int verify__bad_entry(struct verify *v, const struct store_transfer *t, const char *fmt, ...)
{
    va_list ap;
    snprintf(v->where, sizeof(v->where), "entry seq=%" PRIu64 " id=%s", t->seq, t->id);
    va_start(ap, fmt);
    vsnprintf(v->what, sizeof(v->what), fmt, ap);
    va_end(ap);
    return VERIFY_BROKEN;
}

static int verify__bad(struct verify *v, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int verify__bad(struct verify *v, const char *where, const char *fmt, ...)
{
    va_list ap;
    snprintf(v->where, sizeof(v->where), "%s", where);
    va_start(ap, fmt);
    vsnprintf(v->what, sizeof(v->what), fmt, ap);
    va_end(ap);
    return VERIFY_BROKEN;
}

static int verify__sum(struct verify *v, const struct store_transfer *t, const char *account,
                       int field, int64_t delta)
{
    struct verify_entry *e = verify__get(&v->accounts, account);
    if (e == NULL)
        return HB_ENOMEM;
    if (__builtin_add_overflow(e->v[field], delta, &e->v[field]))
        return verify__bad_entry(v, t, "the sums of account %s overflow", account);
    return 0;
}

/* A post or void: it must resolve an open reservation made earlier, once. */
static int verify__resolution(struct verify *v, const struct store_transfer *t)
{
    struct store_transfer p;
    struct verify_entry *e = verify__find(&v->open, t->link);
    if (e == NULL || e->v[0] == 0)
        return verify__bad_entry(v, t, "resolves %s, which is not an open reservation", t->link);
    int rc = store_txn_transfer_get(v->txn, t->link, &p);
    if (rc == HB_ENOTFOUND)
        return verify__bad_entry(v, t, "resolves %s, which is missing", t->link);
    if (rc < 0)
        return rc;
    if (strcmp(p.debit, t->debit) != 0 || strcmp(p.credit, t->credit) != 0)
        return verify__bad_entry(v, t, "accounts differ from the reservation %s", p.id);
    bool post = (t->flags & LEDGER_TRANSFER_POST) != 0;
    if ((post && t->amount > p.amount) || (!post && t->amount != p.amount))
        return verify__bad_entry(v, t,
                                 "amount %" PRId64 " does not fit the reservation of %" PRId64,
                                 t->amount, p.amount);
    if (post && p.expires_at != 0 && t->ts >= p.expires_at)
        return verify__bad_entry(v, t, "posted after the reservation expired");
    if ((t->flags & LEDGER_TRANSFER_EXPIRED) != 0 && (p.expires_at == 0 || t->ts < p.expires_at))
        return verify__bad_entry(v, t, "voided as expired before the reservation expired");
    e->v[0] = 0;
    v->open_count--;
    rc = verify__sum(v, t, p.debit, VERIFY_DPEND, -p.amount);
    if (rc == 0)
        rc = verify__sum(v, t, p.credit, VERIFY_CPEND, -p.amount);
    if (rc == 0 && post)
        rc = verify__sum(v, t, t->debit, VERIFY_DP, t->amount);
    if (rc == 0 && post)
        rc = verify__sum(v, t, t->credit, VERIFY_CP, t->amount);
    return rc;
}

static int verify__reversal(struct verify *v, const struct store_transfer *t)
{
    struct store_transfer o;
    char debt[STORE_ID_SIZE + sizeof(LEDGER_DEBT_PREFIX)];
    int rc = store_txn_transfer_get(v->txn, t->link, &o);
    if (rc == HB_ENOTFOUND || (rc == 0 && o.seq >= t->seq))
        return verify__bad_entry(v, t, "reverses %s, which does not come before it", t->link);
    if (rc < 0)
        return rc;
    if ((o.flags & (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID | LEDGER_TRANSFER_REVERSAL)) !=
        0)
        return verify__bad_entry(v, t, "reverses %s, which cannot be reversed", o.id);
    snprintf(debt, sizeof(debt), "%s%s", LEDGER_DEBT_PREFIX, o.credit);
    const char *from = (t->flags & LEDGER_TRANSFER_DEBT) != 0 ? debt : o.credit;
    if (strcmp(t->debit, from) != 0 || strcmp(t->credit, o.debit) != 0)
        return verify__bad_entry(v, t, "accounts do not mirror the reversed transfer %s", o.id);
    struct verify_entry *e = verify__get(&v->reversed, o.id);
    if (e == NULL)
        return HB_ENOMEM;
    e->v[0] += t->amount;
    if (e->v[0] > o.amount)
        return verify__bad_entry(v, t, "reversals of %s exceed its amount", o.id);
    rc = verify__sum(v, t, t->debit, VERIFY_DP, t->amount);
    if (rc == 0)
        rc = verify__sum(v, t, t->credit, VERIFY_CP, t->amount);
    return rc;
}

static int verify__transfer(const struct store_transfer *t, void *data)
{
    struct verify *v = data;
    uint8_t hash[STORE_HASH_SIZE];
    int rc = 0;
    if (t->seq != v->next_seq) {
        snprintf(v->where, sizeof(v->where), "entry seq=%" PRIu64, v->next_seq);
        snprintf(v->what, sizeof(v->what),
                 "is missing (the next stored entry is seq=%" PRIu64 " id=%s)", t->seq, t->id);
        return VERIFY_BROKEN;
    }
    rc = ledger__hash(v->prev, t, hash);
    if (rc < 0)
        return rc;
    if (memcmp(hash, t->hash, STORE_HASH_SIZE) != 0)
        return verify__bad_entry(v, t,
                                 "hash does not match its contents and its predecessor "
                                 "(altered, moved or inserted)");
    if (v->head != NULL && v->head->seq == t->seq &&
        memcmp(hash, v->head->hash, STORE_HASH_SIZE) != 0)
        return verify__bad_entry(v, t,
                                 "hash differs from the published head: the history up "
                                 "to it was rewritten");
    memcpy(v->prev, t->hash, STORE_HASH_SIZE);
    v->next_seq++;
    if (t->amount <= 0)
        return verify__bad_entry(v, t, "amount %" PRId64 " is not positive", t->amount);
    if (strcmp(t->debit, t->credit) == 0)
        return verify__bad_entry(v, t, "debits and credits the same account");
    if (t->kind == 0 || t->kind > LEDGER_KIND_MAX)
        return verify__bad_entry(v, t, "kind %" PRIu32 " is unknown", t->kind);
    uint32_t f = t->flags;
    if (f == 0) {
        rc = verify__sum(v, t, t->debit, VERIFY_DP, t->amount);
        if (rc == 0)
            rc = verify__sum(v, t, t->credit, VERIFY_CP, t->amount);
    } else if (f == LEDGER_TRANSFER_PENDING) {
        struct verify_entry *e = verify__get(&v->open, t->id);
        if (e == NULL)
            return HB_ENOMEM;
        e->v[0] = 1;
        e->v[1] = t->expires_at;
        v->open_count++;
        rc = verify__sum(v, t, t->debit, VERIFY_DPEND, t->amount);
        if (rc == 0)
            rc = verify__sum(v, t, t->credit, VERIFY_CPEND, t->amount);
    } else if (f == LEDGER_TRANSFER_POST || f == LEDGER_TRANSFER_VOID ||
               f == (LEDGER_TRANSFER_VOID | LEDGER_TRANSFER_EXPIRED)) {
        rc = verify__resolution(v, t);
    } else if (f == LEDGER_TRANSFER_REVERSAL ||
               f == (LEDGER_TRANSFER_REVERSAL | LEDGER_TRANSFER_DEBT)) {
        rc = verify__reversal(v, t);
    } else {
        rc = verify__bad_entry(v, t, "flags 0x%" PRIx32 " are not a valid combination", f);
    }
    return rc;
}

struct verify_totals {
    struct verify *v;
    int64_t balance; /* sum over accounts of credits_posted - debits_posted */
    int64_t pending; /* sum of debits_pending - credits_pending */
    size_t accounts;
};

static int verify__account(const struct store_account *a, void *data)
{
    struct verify_totals *tot = data;
    struct verify *v = tot->v;
    char where[STORE_ID_SIZE + 16];
    int64_t zero[4] = {0, 0, 0, 0};
    snprintf(where, sizeof(where), "account %s", a->id);
    struct verify_entry *e = verify__find(&v->accounts, a->id);
    const int64_t *sums = e != NULL ? e->v : zero;
    if (e != NULL)
        e->seen = true;
    if (a->debits_posted != sums[VERIFY_DP] || a->credits_posted != sums[VERIFY_CP] ||
        a->debits_pending != sums[VERIFY_DPEND] || a->credits_pending != sums[VERIFY_CPEND])
        return verify__bad(v, where,
                           "stored sums (debits %" PRId64 "/%" PRId64 " credits %" PRId64
                           "/%" PRId64 ") differ from its transfers (debits %" PRId64 "/%" PRId64
                           " credits %" PRId64 "/%" PRId64 ")",
                           a->debits_posted, a->debits_pending, a->credits_posted,
                           a->credits_pending, sums[VERIFY_DP], sums[VERIFY_DPEND], sums[VERIFY_CP],
                           sums[VERIFY_CPEND]);
    int64_t avail = 0;
    if (__builtin_sub_overflow(a->credits_posted, a->debits_posted, &avail) ||
        __builtin_add_overflow(tot->balance, avail, &tot->balance) ||
        __builtin_sub_overflow(avail, a->debits_pending, &avail) ||
        __builtin_add_overflow(tot->pending, a->debits_pending - a->credits_pending, &tot->pending))
        return verify__bad(v, where, "its sums overflow");
    if ((a->flags & LEDGER_ACCOUNT_NO_OVERDRAFT) != 0 && avail < 0)
        return verify__bad(v, where, "must not go negative but has %" PRId64 " available", avail);
    tot->accounts++;
    return 0;
}

static int verify__pending(const char *id, int64_t expires_at, void *data)
{
    struct verify *v = data;
    char where[STORE_ID_SIZE + 16];
    snprintf(where, sizeof(where), "reservation %s", id);
    struct verify_entry *e = verify__find(&v->open, id);
    if (e == NULL || e->v[0] == 0 || e->v[1] != expires_at)
        return verify__bad(v, where, "is listed open but its transfers say otherwise");
    e->seen = true;
    return 0;
}

int ledger_head_parse(const char *text, struct ledger_head *out)
{
    char *end = NULL;
    if (text == NULL || *text < '1' || *text > '9')
        return HB_EINVAL;
    errno = 0;
    unsigned long long seq = strtoull(text, &end, 10);
    if (errno != 0 || *end != ':' || strlen(end + 1) != 2 * STORE_HASH_SIZE)
        return HB_EINVAL;
    if (hex_decode(end + 1, out->hash, STORE_HASH_SIZE) < 0)
        return HB_EINVAL;
    out->seq = seq;
    return 0;
}

int ledger_verify_file(const char *db_path, FILE *out)
{
    return ledger_verify_file_head(db_path, NULL, out);
}

int ledger_verify_file_head(const char *db_path, const struct ledger_head *head, FILE *out)
{
    struct store_options so = {.path = db_path};
    return ledger_verify_store(&so, head, out);
}

int ledger_verify_store(const struct store_options *db, const struct ledger_head *head, FILE *out)
{
    struct store_options so = *db;
    so.read_only = true;
    struct store *store = NULL;
    struct store_txn *txn = NULL;
    struct verify v;
    struct verify_totals tot;
    uint64_t rec_seq = 0;
    uint8_t rec_hash[STORE_HASH_SIZE];
    char hex[2 * STORE_HASH_SIZE + 1];
    size_t listed = 0;
    struct audit_verify_result audit;
    bool audited = false;
    int audit_rc = 0;
    int rc = 0;
    memset(&v, 0, sizeof(v));
    memset(&tot, 0, sizeof(tot));
    v.next_seq = 1;
    v.head = head;
    tot.v = &v;
    store = store_new(&so, &rc);
    if (store == NULL)
        goto out;
    /* One read transaction: a consistent snapshot even beside a writer. */
    rc = store_txn_begin(store, false, &txn);
    if (rc < 0)
        goto out;
    v.txn = txn;
    rc = store_txn_transfer_each(txn, 1, verify__transfer, &v);
    if (rc != 0)
        goto out;
    if (head != NULL && head->seq > v.next_seq - 1) {
        char where[64];
        snprintf(where, sizeof(where), "entry seq=%" PRIu64, head->seq);
        rc = verify__bad(&v, where,
                         "of the published head is missing: the chain ends at seq=%" PRIu64
                         " (truncated or rewritten)",
                         v.next_seq - 1);
        goto out;
    }
    rc = store_txn_head_recorded(txn, &rec_seq, rec_hash);
    if (rc < 0)
        goto out;
    if (rec_seq != v.next_seq - 1 || memcmp(rec_hash, v.prev, STORE_HASH_SIZE) != 0) {
        char where[64];
        snprintf(where, sizeof(where), "entry seq=%" PRIu64,
                 rec_seq > v.next_seq - 1 ? v.next_seq : rec_seq);
        rc = verify__bad(&v, where,
                         rec_seq > v.next_seq - 1
                             ? "is missing (the recorded head is seq=%" PRIu64 ")"
                             : "differs from the recorded head (seq=%" PRIu64 ")",
                         rec_seq);
        goto out;
    }
    rc = store_txn_account_each(txn, verify__account, &tot);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < v.accounts.cap; i++) {
        struct verify_entry *e = &v.accounts.slots[i];
        if (e->key != NULL && !e->seen) {
            char where[STORE_ID_SIZE + 16];
            snprintf(where, sizeof(where), "account %s", e->key);
            rc = verify__bad(&v, where, "is used by transfers but has no record");
            goto out;
        }
    }
    if (tot.balance != 0 || tot.pending != 0) {
        rc = verify__bad(&v, "all accounts",
                         "balances sum to %" PRId64 " and reservations to %" PRId64 ", not zero",
                         tot.balance, tot.pending);
        goto out;
    }
    rc = store_txn_pending_each(txn, verify__pending, &v);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < v.open.cap; i++) {
        struct verify_entry *e = &v.open.slots[i];
        if (e->key != NULL && e->v[0] != 0) {
            listed++;
            if (!e->seen) {
                char where[STORE_ID_SIZE + 16];
                snprintf(where, sizeof(where), "reservation %s", e->key);
                rc = verify__bad(&v, where, "is open but not listed as open");
                goto out;
            }
        }
    }
    /* The audit trail is its own chain in the same snapshot. */
    audit_rc = audit_verify_txn(txn, &audit);
    audited = true;
out:
    if (txn != NULL)
        store_txn_end(txn, false);
    store_free(store);
    if (rc == VERIFY_BROKEN) {
        fprintf(out, "ledger verify: FAILED at %s: %s\n", v.where, v.what);
        rc = 1;
    } else if (rc < 0) {
        fprintf(out, "ledger verify: cannot check %s: %s\n", store_options_where(db),
                hb_strerror(rc));
    } else {
        ledger__hex(v.prev, hex);
        fprintf(out,
                "ledger verify: ok entries=%" PRIu64 " accounts=%zu open=%zu head=%" PRIu64
                " hash=%s\n",
                v.next_seq - 1, tot.accounts, listed, v.next_seq - 1, hex);
        if (head != NULL)
            fprintf(out, "ledger verify: the chain holds the published head seq=%" PRIu64 "\n",
                    head->seq);
        if (audited && audit_verify_print(audit_rc, &audit, out) != 0)
            rc = audit_rc < 0 ? audit_rc : 1;
    }
    verify__map_free(&v.accounts);
    verify__map_free(&v.open);
    verify__map_free(&v.reversed);
    return rc;
}

int ledger_head_file(const char *db_path, FILE *out)
{
    struct store_options so = {.path = db_path};
    return ledger_head_store(&so, out);
}

int ledger_head_store(const struct store_options *where, FILE *out)
{
    struct store_options so = *where;
    so.read_only = true;
    struct store_txn *txn = NULL;
    uint64_t seq = 0;
    uint8_t hash[STORE_HASH_SIZE];
    char hex[2 * STORE_HASH_SIZE + 1];
    int rc = 0;
    struct store *store = store_new(&so, &rc);
    if (store == NULL)
        goto out;
    rc = store_txn_begin(store, false, &txn);
    if (rc < 0)
        goto out;
    rc = store_txn_head(txn, &seq, hash);
    if (rc < 0)
        goto out;
    ledger__hex(hash, hex);
    fprintf(out, "seq=%" PRIu64 " hash=%s\n", seq, hex);
out:
    if (txn != NULL)
        store_txn_end(txn, false);
    store_free(store);
    if (rc < 0)
        fprintf(out, "ledger head: cannot read %s: %s\n", store_options_where(where),
                hb_strerror(rc));
    return rc;
}
