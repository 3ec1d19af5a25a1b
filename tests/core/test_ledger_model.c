/* The ledger against a small in-memory model under thousands of random
 * operations: deposits, spends, transfers, reservations, posts (full and
 * partial), voids, timeouts, replays, conflicting replays, atomic batches,
 * reversals (with debt), account opens, and posts split by revenue shares
 * (core/revenue.h: each share its part rounded down, the rest to the
 * remainder account, all in the post's transaction; a replayed split
 * moves nothing again); and the economy (ledger_model_economy.h). Groups
 * of operations share one group commit; the model predicts every result.
 *
 * Payments go through the path every method books through
 * (core/deposit.h), with their ids derived by the Stripe adapter from
 * signed-event bodies: one payment reported again under new event ids and
 * other event types (checkout.session.completed, then
 * async_payment_succeeded) credits once; a refund reported under several
 * event ids, and a dispute after it, reverse what it credited once; a
 * deposit to an account that owes debt repays the debt first, once per
 * deposit, also when two deposits run at once. After every step: balances
 * equal the model's, no debt account is ever above zero, and no payment
 * was credited more than once.
 *
 * After every group each account's balance is compared with the model (an
 * incremental check: cheap, every step), and the balances of all accounts
 * sum to zero. A full `verify` of the chain and
 * the invariants runs every MODEL_VERIFY_EVERY groups and at the end, since
 * running it every step would make the test quadratic in its length.
 *
 * Some reservations carry a guard that takes a count against a limit in
 * the store (as the generation limits do): the model predicts when the
 * limit refuses a reservation, and the stored count is compared with the
 * model's after every group.
 *
 * The seed is printed first; HAIBOT_SEED=<n> replays a run. The database
 * lives on tmpfs with relaxed sync: durability is the crash test's subject.
 * The group `ledger_model_pg` runs the same model on PostgreSQL, on a fresh
 * database whose commits do not wait for the disk (synchronous_commit off
 * for that database, the server's counterpart of relaxed sync). */
#include "tests/test.h"

#include "tests/core/ledger_helpers.h"
#include "tests/core/ledger_model_economy.h"
#include "tests/core/ledger_model_split.h"

#include "adapters/stripe/stripe.h"
#include "base/error.h"
#include "core/deposit.h"
#include "base/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODEL_STEPS 2500
#define MODEL_VERIFY_EVERY 250
#define MODEL_GROUP_MAX 6
#define MODEL_ACCOUNTS_MAX 32
#define MODEL_TRANSFERS_MAX (MODEL_STEPS * MODEL_GROUP_MAX * 4 + 64)
#define MODEL_LIMIT 150 /* guarded reservations the counter admits */
#define MODEL_COUNTER "model.reservations"

/* The guard: one count per guarded reservation, never past MODEL_LIMIT. */
static int model_guard(struct store_txn *txn, void *data)
{
    (void)data;
    return store_txn_counter_add(txn, MODEL_COUNTER, 1, 1, MODEL_LIMIT, NULL);
}

struct macct {
    char id[48];
    bool flagged;
    int64_t dp, cp, dpend, cpend;
};

enum mstate { M_NONE, M_OPEN, M_POSTED, M_VOIDED, M_EXPIRED };

struct mxfer {
    char id[48];
    int debit, credit; /* account indexes */
    int64_t amount;
    uint32_t kind;
    uint32_t flags;  /* as committed */
    int64_t timeout; /* pending: as requested */
    int64_t expires_at;
    enum mstate state; /* pending only */
    int64_t reversed;  /* plain and post: credits reversed so far */
    char tag[16];
};

enum mop { OP_TRANSFER, OP_BATCH, OP_REVERSE, OP_OPEN, OP_EXPIRE, OP_SPLIT };

/* One submitted operation and what the model expects of it. */
struct mreq {
    enum mop op;
    struct ledger_transfer t[4]; /* strings point into the buffers below */
    size_t n;
    char ids[4][48], debits[4][48], credits[4][48], links[4][48], tags[4][16];
    int64_t rev_amount;
    uint32_t rev_kind;
    int expect;
    size_t expect_index;                               /* batches */
    int64_t expect_debt;                               /* reversals */
    size_t expect_expired;                             /* expiry runs */
    struct revenue_part parts[REVENUE_SHARES_MAX + 1]; /* split posts: the shares */
    struct ledger_share shares[REVENUE_SHARES_MAX + 1];
    size_t nparts;
    struct lt_res res;
};

#define MODEL_PAYMENTS_MAX 24

/* A card payment: one Checkout Session, however often it is reported. */
struct mpay {
    int account;
    int64_t credits;
    bool credited; /* its deposit committed */
};

struct model {
    uint64_t rng;
    struct mpay pays[MODEL_PAYMENTS_MAX];
    int npays;
    size_t pay_events, pay_repaid, pay_refunds; /* what the payment steps did */
    struct macct a[MODEL_ACCOUNTS_MAX];
    int na;
    struct mxfer *x;
    size_t nx;
    size_t next_id;
    int64_t now;
    int dep, rev, bonus;     /* system account indexes */
    int first_user, n_users; /* wallets and pools */
    int64_t counted;         /* guarded reservations taken (the store's counter) */
    struct revenue_split split;
    size_t splits, split_replays;          /* split posts applied, and replayed */
    char last_split[48], last_pending[48]; /* the newest split post and its pending, */
    int64_t last_amount;                   /* for replays */
};

static uint64_t rnd(struct model *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return m->rng;
}

static int64_t rnd_in(struct model *m, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd(m) % (uint64_t)(hi - lo + 1));
}

static int acct_add(struct model *m, const char *id, bool flagged)
{
    assert_true(m->na < MODEL_ACCOUNTS_MAX);
    struct macct *a = &m->a[m->na];
    memset(a, 0, sizeof(*a));
    snprintf(a->id, sizeof(a->id), "%s", id);
    a->flagged = flagged;
    return m->na++;
}

static int acct_find(struct model *m, const char *id)
{
    for (int i = 0; i < m->na; i++)
        if (strcmp(m->a[i].id, id) == 0)
            return i;
    return -1;
}

static struct mxfer *xfer_find(struct model *m, const char *id)
{
    for (size_t i = m->nx; i-- > 0;)
        if (strcmp(m->x[i].id, id) == 0)
            return &m->x[i];
    return NULL;
}

static int64_t avail(const struct macct *a)
{
    return a->cp - a->dp - a->dpend;
}

static int user(struct model *m)
{
    return m->first_user + (int)rnd_in(m, 0, m->n_users - 1);
}

static struct mxfer *xfer_add(struct model *m, const char *id, int d, int c, int64_t amount,
                              uint32_t kind, uint32_t flags)
{
    assert_true(m->nx < MODEL_TRANSFERS_MAX);
    struct mxfer *x = &m->x[m->nx++];
    memset(x, 0, sizeof(*x));
    snprintf(x->id, sizeof(x->id), "%s", id);
    x->debit = d;
    x->credit = c;
    x->amount = amount;
    x->kind = kind;
    x->flags = flags;
    return x;
}

/* Fill request slot i of r with a plain or pending transfer. */
static void req_transfer(struct mreq *r, size_t i, const char *id, const struct macct *d,
                         const struct macct *c, int64_t amount, uint32_t kind, uint32_t flags,
                         int64_t timeout, const char *tag)
{
    snprintf(r->ids[i], sizeof(r->ids[i]), "%s", id);
    snprintf(r->debits[i], sizeof(r->debits[i]), "%s", d->id);
    snprintf(r->credits[i], sizeof(r->credits[i]), "%s", c->id);
    snprintf(r->tags[i], sizeof(r->tags[i]), "%s", tag);
    r->t[i] = (struct ledger_transfer){.id = r->ids[i],
                                       .debit = r->debits[i],
                                       .credit = r->credits[i],
                                       .amount = amount,
                                       .kind = kind,
                                       .flags = flags,
                                       .timeout_ms = timeout,
                                       .tag = r->tags[i]};
}

static void req_resolve(struct mreq *r, const char *id, const char *pending, int64_t amount,
                        uint32_t flags)
{
    snprintf(r->ids[0], sizeof(r->ids[0]), "%s", id);
    snprintf(r->links[0], sizeof(r->links[0]), "%s", pending);
    r->t[0] = (struct ledger_transfer){
        .id = r->ids[0], .pending_id = r->links[0], .amount = amount, .flags = flags};
    r->n = 1;
}

/* The model's rules for one plain or pending transfer; returns the result
 * and applies it when it succeeds. */
static int model_transfer(struct model *m, const struct ledger_transfer *t)
{
    struct mxfer *old = xfer_find(m, t->id);
    if (old != NULL) {
        bool same = (old->flags & 7u) == t->flags && strcmp(m->a[old->debit].id, t->debit) == 0 &&
                    strcmp(m->a[old->credit].id, t->credit) == 0 && old->amount == t->amount &&
                    old->kind == t->kind && old->timeout == t->timeout_ms &&
                    strcmp(old->tag, t->tag) == 0;
        return same ? HB_EEXISTS : HB_ECONFLICT;
    }
    int d = acct_find(m, t->debit);
    int c = acct_find(m, t->credit);
    if (d < 0 || c < 0)
        return HB_ENOTFOUND;
    if (m->a[d].flagged && avail(&m->a[d]) < t->amount)
        return HB_EFUNDS;
    if (t->guard != NULL) {
        /* Runs after the ledger's own checks, never for a replay. */
        if (m->counted + 1 > MODEL_LIMIT)
            return HB_ELIMIT;
        m->counted++;
    }
    struct mxfer *x = xfer_add(m, t->id, d, c, t->amount, t->kind, t->flags);
    snprintf(x->tag, sizeof(x->tag), "%s", t->tag);
    if (t->flags & LEDGER_TRANSFER_PENDING) {
        m->a[d].dpend += t->amount;
        m->a[c].cpend += t->amount;
        x->timeout = t->timeout_ms;
        x->expires_at = t->timeout_ms > 0 ? m->now + t->timeout_ms : 0;
        x->state = M_OPEN;
    } else {
        m->a[d].dp += t->amount;
        m->a[c].cp += t->amount;
    }
    return 0;
}

static int model_resolve(struct model *m, const struct ledger_transfer *t, bool expiry)
{
    struct mxfer *old = xfer_find(m, t->id);
    if (old != NULL) {
        bool same = (old->flags & 7u) == t->flags && (t->amount == 0 || t->amount == old->amount);
        return same ? HB_EEXISTS : HB_ECONFLICT;
    }
    struct mxfer *p = xfer_find(m, t->pending_id);
    if (p == NULL)
        return HB_ENOTFOUND;
    if (!(p->flags & LEDGER_TRANSFER_PENDING) || p->state != M_OPEN)
        return HB_ESTATE;
    bool post = (t->flags & LEDGER_TRANSFER_POST) != 0;
    if (post && p->expires_at != 0 && m->now >= p->expires_at)
        return HB_ESTATE;
    if ((post && t->amount > p->amount) || (!post && t->amount != 0 && t->amount != p->amount))
        return HB_EINVAL;
    m->a[p->debit].dpend -= p->amount;
    m->a[p->credit].cpend -= p->amount;
    int64_t amount = post ? t->amount : p->amount;
    if (post) {
        m->a[p->debit].dp += amount;
        m->a[p->credit].cp += amount;
    }
    p->state = post ? M_POSTED : expiry ? M_EXPIRED : M_VOIDED;
    uint32_t flags = t->flags | (expiry ? LEDGER_TRANSFER_EXPIRED : 0u);
    xfer_add(m, t->id, p->debit, p->credit, amount, p->kind, flags);
    return 0;
}

static int model_reverse(struct model *m, struct mreq *r)
{
    const char *id = r->ids[0];
    struct mxfer *old = xfer_find(m, id);
    if (old != NULL) {
        if (!(old->flags & LEDGER_TRANSFER_REVERSAL))
            return HB_ECONFLICT;
        return HB_EEXISTS; /* the model only replays reversals unchanged */
    }
    struct mxfer *o = xfer_find(m, r->links[0]);
    if (o == NULL)
        return HB_ENOTFOUND;
    if (o->flags & (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID | LEDGER_TRANSFER_REVERSAL))
        return HB_ESTATE;
    if (o->reversed >= o->amount)
        return HB_ESTATE;
    if (r->rev_amount > o->amount - o->reversed)
        return HB_EINVAL;
    struct macct *from = &m->a[o->credit];
    int64_t take = r->rev_amount;
    if (from->flagged) {
        int64_t av = avail(from);
        take = av < 0 ? 0 : av < take ? av : take;
    }
    int64_t shortfall = r->rev_amount - take;
    o->reversed += r->rev_amount;
    if (take > 0) {
        m->a[o->credit].dp += take;
        m->a[o->debit].cp += take;
        xfer_add(m, id, o->credit, o->debit, take, r->rev_kind, LEDGER_TRANSFER_REVERSAL);
    }
    if (shortfall > 0) {
        char debt[64], did[64];
        snprintf(debt, sizeof(debt), "debt:%s", m->a[o->credit].id);
        int d = acct_find(m, debt);
        if (d < 0)
            d = acct_add(m, debt, false);
        m->a[d].dp += shortfall;
        m->a[o->debit].cp += shortfall;
        snprintf(did, sizeof(did), take > 0 ? "%s:debt" : "%s", id);
        xfer_add(m, did, d, o->debit, shortfall, r->rev_kind,
                 LEDGER_TRANSFER_REVERSAL | LEDGER_TRANSFER_DEBT);
    }
    r->expect_debt = shortfall;
    return 0;
}

static size_t model_expire(struct model *m)
{
    size_t n = 0;
    size_t count = m->nx;
    for (size_t i = 0; i < count; i++) {
        struct mxfer *p = &m->x[i];
        if (!(p->flags & LEDGER_TRANSFER_PENDING) || p->state != M_OPEN || p->expires_at == 0 ||
            m->now < p->expires_at)
            continue;
        char id[64];
        snprintf(id, sizeof(id), "expire:%s", p->id);
        struct ledger_transfer t = {.id = id, .pending_id = p->id, .flags = LEDGER_TRANSFER_VOID};
        assert_int_equal(model_resolve(m, &t, true), 0);
        n++;
    }
    return n;
}

/* Pick a random earlier transfer matching flags (exactly), or NULL. */
static struct mxfer *pick(struct model *m, uint32_t flags)
{
    if (m->nx == 0)
        return NULL;
    for (int tries = 0; tries < 20; tries++) {
        struct mxfer *x = &m->x[rnd(m) % m->nx];
        if (x->flags == flags)
            return x;
    }
    return NULL;
}

/* Make one random operation, predicting its result with the model. */
static void gen(struct model *m, struct mreq *r)
{
    char id[48];
    memset(r, 0, sizeof(*r));
    r->op = OP_TRANSFER;
    r->n = 1;
    snprintf(id, sizeof(id), "t%zu", m->next_id++);
    int what = (int)rnd_in(m, 0, 99);
    if (what < 12) { /* deposit */
        req_transfer(r, 0, id, &m->a[m->dep], &m->a[user(m)], rnd_in(m, 1, 100),
                     LEDGER_KIND_DEPOSIT, 0, 0, "");
    } else if (what < 24) { /* spend, or move between users */
        int d = user(m);
        int c = rnd(m) % 2 ? m->rev : user(m);
        if (c == d)
            c = m->rev;
        req_transfer(r, 0, id, &m->a[d], &m->a[c], rnd_in(m, 1, 60),
                     c == m->rev ? LEDGER_KIND_GENERATION : LEDGER_KIND_TRANSFER, 0, 0,
                     c == m->rev ? "model-a" : "");
    } else if (what < 40) { /* reserve */
        int64_t timeout = rnd(m) % 4 == 0 ? 0 : rnd_in(m, 100, 5000);
        req_transfer(r, 0, id, &m->a[user(m)], &m->a[m->rev], rnd_in(m, 1, 60),
                     LEDGER_KIND_GENERATION, LEDGER_TRANSFER_PENDING, timeout,
                     rnd(m) % 2 ? "model-a" : "model-b");
        if (rnd(m) % 2)
            r->t[0].guard = model_guard;
    } else if (what < 52) { /* post, full or partial (or too much) */
        struct mxfer *p = pick(m, LEDGER_TRANSFER_PENDING);
        if (p == NULL) {
            gen(m, r);
            return;
        }
        req_resolve(r, id, p->id, rnd_in(m, 1, p->amount + 3), LEDGER_TRANSFER_POST);
        if (rnd(m) % 2 == 0) { /* split by the shares; now and then the last split again */
            r->op = OP_SPLIT;
            if (m->last_split[0] != '\0' && rnd(m) % 4 == 0)
                req_resolve(r, m->last_split, m->last_pending, m->last_amount,
                            LEDGER_TRANSFER_POST);
            r->nparts = msplit_parts(&m->split, r->t[0].amount, r->parts);
            for (size_t i = 0; i < r->nparts; i++)
                r->shares[i] = (struct ledger_share){r->parts[i].account, r->parts[i].amount};
        }
    } else if (what < 60) { /* void */
        struct mxfer *p = pick(m, LEDGER_TRANSFER_PENDING);
        if (p == NULL) {
            gen(m, r);
            return;
        }
        req_resolve(r, id, p->id, 0, LEDGER_TRANSFER_VOID);
    } else if (what < 74) { /* replay, or replay with one field changed */
        struct mxfer *x = m->nx > 0 ? &m->x[rnd(m) % m->nx] : NULL;
        if (x == NULL || (x->flags & ~7u) != 0) {
            gen(m, r);
            return;
        }
        bool conflict = what >= 68;
        if (x->flags & (LEDGER_TRANSFER_POST | LEDGER_TRANSFER_VOID)) {
            gen(m, r); /* a replay of a post or void needs the pending it resolved */
            return;
        }
        req_transfer(r, 0, x->id, &m->a[x->debit], &m->a[x->credit], x->amount + (conflict ? 1 : 0),
                     x->kind, x->flags, x->timeout, x->tag);
        /* Expiries, bonuses and payments carry refs a replay here lacks. */
        if (strncmp(x->id, "expire:", 7) == 0 || strncmp(x->id, "bonus:", 6) == 0 ||
            strncmp(x->id, "stripe:", 7) == 0) {
            gen(m, r);
            return;
        }
    } else if (what < 82) { /* an atomic batch of plain transfers */
        r->op = OP_BATCH;
        r->n = (size_t)rnd_in(m, 2, 4);
        for (size_t i = 0; i < r->n; i++) {
            char bid[80];
            snprintf(bid, sizeof(bid), "%s.%zu", id, i);
            int d = rnd(m) % 3 == 0 ? m->dep : user(m);
            int c = d == m->dep ? user(m) : m->rev;
            req_transfer(r, i, bid, &m->a[d], &m->a[c], rnd_in(m, 1, 50),
                         d == m->dep ? LEDGER_KIND_DEPOSIT : LEDGER_KIND_GENERATION, 0, 0, "");
        }
    } else if (what < 92) { /* reversal of a plain or posted transfer */
        struct mxfer *o = pick(m, rnd(m) % 2 ? 0u : LEDGER_TRANSFER_POST);
        if (o == NULL) {
            gen(m, r);
            return;
        }
        r->op = OP_REVERSE;
        snprintf(r->ids[0], sizeof(r->ids[0]), "%s", id);
        snprintf(r->links[0], sizeof(r->links[0]), "%s", o->id);
        r->rev_amount = rnd_in(m, 1, o->amount + 2);
        r->rev_kind = rnd(m) % 2 ? LEDGER_KIND_REFUND : LEDGER_KIND_CHARGEBACK;
    } else if (what < 95) { /* open an existing account again */
        r->op = OP_OPEN;
        snprintf(r->ids[0], sizeof(r->ids[0]), "%s", m->a[user(m)].id);
    } else { /* time passes; expire */
        r->op = OP_EXPIRE;
    }
}

/* Predict r's result (and apply it to the model). */
static void predict(struct model *m, struct mreq *r)
{
    switch (r->op) {
    case OP_TRANSFER:
        r->expect = (r->t[0].flags & (LEDGER_TRANSFER_POST | LEDGER_TRANSFER_VOID))
                        ? model_resolve(m, &r->t[0], false)
                        : model_transfer(m, &r->t[0]);
        break;
    case OP_BATCH: {
        /* All or nothing: apply to a copy of the accounts, keep it only if
         * every member succeeds. */
        struct macct saved[MODEL_ACCOUNTS_MAX];
        size_t nx = m->nx;
        memcpy(saved, m->a, sizeof(saved));
        r->expect = 0;
        for (size_t i = 0; i < r->n; i++) {
            int rc = model_transfer(m, &r->t[i]);
            if (rc < 0) {
                r->expect = rc;
                r->expect_index = i;
                memcpy(m->a, saved, sizeof(saved));
                m->nx = nx;
                break;
            }
        }
        break;
    }
    case OP_REVERSE:
        r->expect = model_reverse(m, r);
        break;
    case OP_OPEN:
        r->expect = HB_EEXISTS;
        break;
    case OP_EXPIRE:
        r->expect = 0;
        r->expect_expired = model_expire(m);
        break;
    case OP_SPLIT: /* the post, then its shares out of the revenue account */
        r->expect = model_resolve(m, &r->t[0], false);
        m->split_replays += r->expect == HB_EEXISTS;
        if (r->expect != 0)
            break;
        m->splits++;
        snprintf(m->last_split, sizeof(m->last_split), "%s", r->ids[0]);
        snprintf(m->last_pending, sizeof(m->last_pending), "%s", r->links[0]);
        m->last_amount = r->t[0].amount;
        for (size_t i = 0; i < r->nparts; i++) {
            int c = acct_find(m, r->parts[i].account);
            if (c < 0)
                c = acct_add(m, r->parts[i].account, strncmp(r->parts[i].account, "system:", 7));
            m->a[m->rev].dp += r->parts[i].amount;
            m->a[c].cp += r->parts[i].amount;
            char sid[64];
            snprintf(sid, sizeof(sid), "%s:s%zu", r->ids[0], i);
            struct mxfer *x = xfer_add(m, sid, m->rev, c, r->parts[i].amount, LEDGER_KIND_SHARE, 0);
            snprintf(x->tag, sizeof(x->tag), "%s", xfer_find(m, r->links[0])->tag);
        }
        break;
    }
}

static void submit(struct lt *t, struct mreq *r)
{
    int rc = 0;
    switch (r->op) {
    case OP_TRANSFER:
        rc = ledger_transfer_create(t->ledger, &r->t[0], lt_cb, &r->res);
        break;
    case OP_BATCH:
        rc = ledger_batch_create(t->ledger, r->t, r->n, lt_cb, &r->res);
        break;
    case OP_REVERSE:
        rc = ledger_transfer_reverse(t->ledger, r->ids[0], r->links[0], r->rev_amount, r->rev_kind,
                                     "model", lt_cb, &r->res);
        break;
    case OP_OPEN:
        rc = ledger_account_open(t->ledger, r->ids[0], LEDGER_ACCOUNT_NO_OVERDRAFT, 10, lt_cb,
                                 &r->res);
        break;
    case OP_EXPIRE:
        rc = ledger_expire_run(t->ledger, lt_cb, &r->res);
        break;
    case OP_SPLIT:
        rc = ledger_transfer_post_split(t->ledger, &r->t[0], r->shares, r->nparts, NULL, lt_cb,
                                        &r->res);
        break;
    }
    assert_int_equal(rc, 0);
}

static void check_balances(struct lt *t, struct model *m)
{
    static struct lt_res res[MODEL_ACCOUNTS_MAX];
    int64_t sum = 0, model_sum = 0;
    for (int i = 0; i < m->na; i++) {
        memset(&res[i], 0, sizeof(res[i]));
        assert_int_equal(ledger_balance_get(t->ledger, m->a[i].id, lt_cb, &res[i]), 0);
    }
    for (int i = 0; i < m->na; i++) {
        lt_wait(t, &res[i]);
        const struct macct *a = &m->a[i];
        const struct ledger_balance *b = &res[i].r.balance;
        if (res[i].rc != 0 || b->posted != a->cp - a->dp || b->pending_debits != a->dpend ||
            b->pending_credits != a->cpend)
            fprintf(stderr,
                    "account %s: ledger %" PRId64 "/%" PRId64 "/%" PRId64 " model %" PRId64
                    "/%" PRId64 "/%" PRId64 "\n",
                    a->id, b->posted, b->pending_debits, b->pending_credits, a->cp - a->dp,
                    a->dpend, a->cpend);
        assert_int_equal(res[i].rc, 0);
        assert_int_equal(b->posted, a->cp - a->dp);
        assert_int_equal(b->pending_debits, a->dpend);
        assert_int_equal(b->pending_credits, a->cpend);
        if (a->flagged)
            assert_true(avail(a) >= 0);
        sum += b->posted;
        model_sum += a->cp - a->dp;
    }
    assert_int_equal(sum, 0); /* double entry: every account, shares included */
    assert_int_equal(model_sum, 0);
}

static void check_counter(struct lt *t, const struct model *m)
{
    int64_t used = lt_counter(t, MODEL_COUNTER);
    assert_int_equal(used, m->counted);
    assert_true(used <= MODEL_LIMIT);
}

static void full_verify(struct lt *t)
{
    char *out = NULL;
    int rc = lt_verify_ledger(t, &out);
    if (rc != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(rc, 0);
    free(out);
}

/* ---- payments, through core/deposit.h ---------------------------------- */

struct pwait {
    int done;
    int rc;
    struct deposit_result r;
};

static void pwait_cb(int rc, const struct deposit_result *r, void *data)
{
    struct pwait *w = data;
    w->done = 1;
    w->rc = rc;
    w->r = *r;
}

static void pwait(struct lt *t, struct pwait *w)
{
    while (!w->done)
        uv_run(&t->loop, UV_RUN_ONCE);
}

/* What debt:<account> owes in the model (0 when it has no debt account). */
static int model_debt(struct model *m, int account, int64_t *owed)
{
    char debt[64];
    snprintf(debt, sizeof(debt), "debt:%s", m->a[account].id);
    int d = acct_find(m, debt);
    *owed = d >= 0 ? m->a[d].dp - m->a[d].cp : 0;
    return d;
}

/* The model of deposit_credit: credit once per id, then repay debt once
 * per deposit (at most the deposit and what is available), when it is
 * first credited: a replay repays nothing (the credit's marker went with
 * its first repayment; debt that came after the credit is repaid by a
 * later deposit). Returns what was repaid now. */
static int64_t model_deposit(struct model *m, const char *id, int account, int64_t credits,
                             bool replay)
{
    if (replay)
        return 0;
    if (xfer_find(m, id) == NULL) {
        xfer_add(m, id, m->dep, account, credits, LEDGER_KIND_DEPOSIT, 0);
        m->a[m->dep].dp += credits;
        m->a[account].cp += credits;
    }
    int64_t owed = 0;
    int d = model_debt(m, account, &owed);
    char rid[DEPOSIT_ID_MAX + 1];
    assert_int_equal(deposit_repay_id_make(rid, sizeof(rid), id), 0);
    int64_t amount = owed < credits ? owed : credits;
    if (amount > avail(&m->a[account]))
        amount = avail(&m->a[account]);
    if (d < 0 || amount <= 0 || xfer_find(m, rid) != NULL)
        return 0;
    xfer_add(m, rid, account, d, amount, LEDGER_KIND_TRANSFER, 0);
    m->a[account].dp += amount;
    m->a[d].cp += amount;
    return amount;
}

/* A signed-event body as Stripe sends it, read by the Stripe adapter:
 * what the ledger id is derived from. */
static void stripe_read(const char *body, struct payment_event *ev)
{
    assert_int_equal(stripe_event_parse(body, strlen(body), ev), 0);
}

static void pay_credit_body(char *out, size_t cap, struct model *m, int p)
{
    static const char *const types[] = {"checkout.session.completed",
                                        "checkout.session.async_payment_succeeded"};
    snprintf(out, cap,
             "{\"id\":\"evt_%" PRIu64 "\",\"type\":\"%s\",\"data\":{\"object\":{\"id\":"
             "\"cs_model_%d\",\"amount_total\":500,\"currency\":\"usd\",\"payment_intent\":"
             "\"pi_model_%d\",\"payment_status\":\"paid\"}}}",
             rnd(m), types[rnd(m) % 2], p, p);
}

/* One payment step, alone: a new payment, or one reported again under a
 * new event; sometimes two deposits to one account at once. */
static void step_payment(struct lt *t, struct model *m)
{
    int n = rnd(m) % 4 == 0 ? 2 : 1;
    int p[2];
    char ids[2][DEPOSIT_ID_MAX + 1];
    struct pwait w[2];
    int64_t expect_repaid[2];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < n; i++) {
        if (m->npays < MODEL_PAYMENTS_MAX && (m->npays == 0 || rnd(m) % 2 == 0)) {
            p[i] = m->npays++;
            m->pays[p[i]].account = i > 0 ? m->pays[p[0]].account : user(m);
            m->pays[p[i]].credits = rnd_in(m, 1, 120);
        } else {
            p[i] = (int)(rnd(m) % (uint64_t)m->npays);
        }
        char body[512];
        struct payment_event ev;
        pay_credit_body(body, sizeof(body), m, p[i]);
        stripe_read(body, &ev);
        assert_int_equal(ev.action, PAYMENT_CREDIT);
        assert_int_equal(deposit_id_make(ids[i], sizeof(ids[i]), "stripe", ev.object_id, NULL), 0);
    }
    /* The model in the order the ledger runs them: both credits, then
     * the repayments one after the other. */
    bool existed[2];
    for (int i = 0; i < n; i++) {
        struct mpay *pay = &m->pays[p[i]];
        existed[i] = xfer_find(m, ids[i]) != NULL;
        if (!existed[i]) {
            xfer_add(m, ids[i], m->dep, pay->account, pay->credits, LEDGER_KIND_DEPOSIT, 0);
            m->a[m->dep].dp += pay->credits;
            m->a[pay->account].cp += pay->credits;
        }
    }
    for (int i = 0; i < n; i++)
        expect_repaid[i] =
            model_deposit(m, ids[i], m->pays[p[i]].account, m->pays[p[i]].credits, existed[i]);
    for (int i = 0; i < n; i++) {
        struct deposit_credit c = {.id = ids[i],
                                   .account = m->a[m->pays[p[i]].account].id,
                                   .credits = m->pays[p[i]].credits,
                                   .ref = "model payment",
                                   .method = "stripe"};
        assert_int_equal(deposit_credit(t->ledger, &c, pwait_cb, &w[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pwait(t, &w[i]);
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(w[i].r.existed, existed[i]);
        assert_int_equal(w[i].r.repaid, expect_repaid[i]);
        m->pays[p[i]].credited = true;
        m->pay_events++;
        m->pay_repaid += expect_repaid[i] > 0;
    }
}

/* A refund of a credited payment (charge.refunded, the whole amount)
 * under a new event id, or a dispute: what the payment credited is
 * reversed once in all, whatever else reversed it before. */
static void step_payment_refund(struct lt *t, struct model *m)
{
    if (m->npays == 0)
        return;
    int p = (int)(rnd(m) % (uint64_t)m->npays);
    if (!m->pays[p].credited)
        return;
    char body[512];
    if (rnd(m) % 3 == 0)
        snprintf(body, sizeof(body),
                 "{\"id\":\"evt_%" PRIu64 "\",\"type\":\"charge.dispute.created\",\"data\":{"
                 "\"object\":{\"id\":\"dp_model_%d\",\"amount\":500,\"payment_intent\":"
                 "\"pi_model_%d\"}}}",
                 rnd(m), p, p);
    else
        snprintf(body, sizeof(body),
                 "{\"id\":\"evt_%" PRIu64 "\",\"type\":\"charge.refunded\",\"data\":{"
                 "\"object\":{\"id\":\"ch_model_%d\",\"amount_refunded\":500,"
                 "\"payment_intent\":\"pi_model_%d\"}}}",
                 rnd(m), p, p);
    struct payment_event ev;
    stripe_read(body, &ev);
    assert_true(ev.action == PAYMENT_REFUND || ev.action == PAYMENT_CHARGEBACK);
    char id[DEPOSIT_ID_MAX + 1], orig[DEPOSIT_ID_MAX + 1], session[48];
    assert_int_equal(deposit_id_make(id, sizeof(id), "stripe", ev.object_id, NULL), 0);
    snprintf(session, sizeof(session), "cs_model_%d", p);
    assert_int_equal(deposit_id_make(orig, sizeof(orig), "stripe", session, NULL), 0);
    struct mxfer *o = xfer_find(m, orig);
    assert_non_null(o);
    /* Often the member spent it all first: the refund leaves debt. */
    int acct = o->credit;
    int64_t all = avail(&m->a[acct]);
    if (rnd(m) % 2 == 0 && all > 0) {
        char sid[48];
        snprintf(sid, sizeof(sid), "pspend%zu", m->next_id++);
        struct ledger_transfer sp = {.id = sid,
                                     .debit = m->a[acct].id,
                                     .credit = m->a[m->rev].id,
                                     .amount = all,
                                     .kind = LEDGER_KIND_GENERATION,
                                     .tag = ""};
        assert_int_equal(model_transfer(m, &sp), 0);
        struct lt_res res;
        assert_int_equal(lt_transfer(t, &sp, &res), 0);
    }
    /* As bot/payments.c: reverse what is left of the credit, if anything. */
    struct mreq r;
    memset(&r, 0, sizeof(r));
    snprintf(r.ids[0], sizeof(r.ids[0]), "%.40s", id);
    snprintf(r.links[0], sizeof(r.links[0]), "%.40s", orig);
    assert_string_equal(r.ids[0], id);
    assert_string_equal(r.links[0], orig);
    r.rev_amount = o->amount - o->reversed;
    r.rev_kind = ev.action == PAYMENT_CHARGEBACK ? LEDGER_KIND_CHARGEBACK : LEDGER_KIND_REFUND;
    bool again = xfer_find(m, id) != NULL;
    if (r.rev_amount <= 0 && !again)
        return;
    if (again) {
        /* A replay with the amount it had: exists, nothing moves. */
        struct mxfer *x = xfer_find(m, id);
        char did[64];
        snprintf(did, sizeof(did), "%.50s:debt", id);
        struct mxfer *dx = xfer_find(m, did);
        r.rev_amount = x->amount + (dx != NULL && dx != x ? dx->amount : 0);
    }
    int expect = model_reverse(m, &r);
    struct pwait w = {0};
    struct deposit_reversal rev = {.id = id,
                                   .original = orig,
                                   .credits = r.rev_amount,
                                   .chargeback = ev.action == PAYMENT_CHARGEBACK,
                                   .ref = "model"};
    assert_int_equal(deposit_reverse(t->ledger, &rev, pwait_cb, &w), 0);
    pwait(t, &w);
    assert_int_equal(w.rc, expect == HB_EEXISTS ? 0 : expect);
    assert_int_equal(w.r.existed, expect == HB_EEXISTS);
    if (expect == 0)
        assert_int_equal(w.r.debt, r.expect_debt);
    m->pay_refunds++;
}

/* Invariants of the payment steps, after every step: no debt account
 * above zero (repaid more than owed), no payment credited twice. */
static void check_payments(struct lt *t, struct model *m)
{
    for (int i = 0; i < m->na; i++) {
        if (strncmp(m->a[i].id, LEDGER_DEBT_PREFIX, strlen(LEDGER_DEBT_PREFIX)) == 0)
            assert_true(lt_balance(t, m->a[i].id).posted <= 0);
    }
    for (int p = 0; p < m->npays; p++) {
        size_t n = 0;
        char prefix[48];
        snprintf(prefix, sizeof(prefix), "stripe:cs_model_%d", p);
        for (size_t i = 0; i < m->nx; i++)
            n += strcmp(m->x[i].id, prefix) == 0 && m->x[i].kind == LEDGER_KIND_DEPOSIT;
        assert_true(n <= 1);
        struct lt_res res;
        memset(&res, 0, sizeof(res));
        assert_int_equal(ledger_transfer_get(t->ledger, prefix, lt_cb, &res), 0);
        lt_wait(t, &res);
        assert_int_equal(res.rc, m->pays[p].credited ? 0 : HB_ENOTFOUND);
        if (m->pays[p].credited)
            assert_int_equal(res.r.transfer.amount, m->pays[p].credits);
    }
}

static void test_model(void **state)
{
    (void)state;
    static struct model m;
    static struct mreq reqs[MODEL_GROUP_MAX];
    struct lt t;
    size_t seen[7] = {0}, expired = 0, debts = 0, limited = 0;
    const char *env = getenv("HAIBOT_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    fprintf(stderr, "ledger_model: seed=%" PRIu64 " (HAIBOT_SEED=%" PRIu64 " replays it)\n", seed,
            seed);
    memset(&m, 0, sizeof(m));
    m.rng = seed * 2654435761u + 1;
    msplit_init(&m.split, seed);
    m.x = calloc(MODEL_TRANSFERS_MAX, sizeof(*m.x));
    assert_non_null(m.x);
    lt_init(&t, true, false);
    lt_ledger_close(&t);
    t.opts.relaxed_sync = true;
    if (lt_backend == STORE_BACKEND_POSTGRES)
        assert_int_equal(test_pg_exec(t.url,
                                      "DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET "
                                      "synchronous_commit = off', current_database()); END$$",
                                      false),
                         0);
    lt_ledger_open(&t);
    struct meco *eco = meco_new(&t, seed);
    m.now = t.now;
    m.dep = acct_add(&m, LEDGER_SYSTEM_DEPOSITS, false);
    m.bonus = acct_add(&m, LEDGER_SYSTEM_BONUS, false);
    acct_add(&m, LEDGER_SYSTEM_GRANTS, false);
    m.rev = acct_add(&m, LEDGER_SYSTEM_REVENUE, false);
    m.first_user = m.na;
    const char *users[] = {"discord:1",     "discord:2",      "telegram:3",
                           "console:alice", "pool:discord:9", "pool:telegram:-100"};
    m.n_users = 6;
    for (int i = 0; i < m.n_users; i++) {
        struct lt_res res;
        int u = acct_add(&m, users[i], true);
        assert_int_equal(lt_open(&t, users[i], LEDGER_ACCOUNT_NO_OVERDRAFT, 10, &res), 0);
        char bid[64];
        snprintf(bid, sizeof(bid), "bonus:%s", users[i]);
        m.a[m.bonus].dp += 10;
        m.a[u].cp += 10;
        xfer_add(&m, bid, m.bonus, u, 10, LEDGER_KIND_BONUS, 0);
    }
    for (int step = 0; step < MODEL_STEPS; step++) {
        int pay = (int)rnd_in(&m, 0, 99);
        if (pay >= 92) { /* the economy's accounts are its own: the model's stay as they were */
            meco_step(eco, &t);
            continue;
        }
        if (pay < 10) {
            /* Payments run alone: each is several ledger steps. */
            if (pay < 6)
                step_payment(&t, &m);
            else
                step_payment_refund(&t, &m);
            check_balances(&t, &m);
            check_payments(&t, &m);
            continue;
        }
        size_t n = (size_t)rnd_in(&m, 1, MODEL_GROUP_MAX);
        for (size_t i = 0; i < n; i++) {
            gen(&m, &reqs[i]);
            if (reqs[i].op == OP_EXPIRE) {
                /* Time moves before the group; every op in it sees it. */
                m.now += rnd_in(&m, 0, 3000);
                t.now = m.now;
            }
        }
        for (size_t i = 0; i < n; i++)
            predict(&m, &reqs[i]);
        for (size_t i = 0; i < n; i++)
            submit(&t, &reqs[i]);
        for (size_t i = 0; i < n; i++) {
            struct mreq *r = &reqs[i];
            lt_wait(&t, &r->res);
            if (r->res.rc != r->expect)
                fprintf(stderr, "step %d op %zu (%d, id %s): got %s, model says %s\n", step, i,
                        r->op, r->ids[0], hb_strerror(r->res.rc), hb_strerror(r->expect));
            assert_int_equal(r->res.rc, r->expect);
            if (r->op == OP_BATCH && r->expect < 0)
                assert_int_equal(r->res.r.index, r->expect_index);
            if (r->op == OP_REVERSE && r->expect == 0)
                assert_int_equal(r->res.r.debt, r->expect_debt);
            if (r->op == OP_EXPIRE)
                assert_int_equal(r->res.r.expired, r->expect_expired);
            seen[r->expect == 0              ? 0
                 : r->expect == HB_EEXISTS   ? 1
                 : r->expect == HB_ECONFLICT ? 2
                 : r->expect == HB_EFUNDS    ? 3
                 : r->expect == HB_ESTATE    ? 4
                 : r->expect == HB_EINVAL    ? 5
                                             : 6]++;
            expired += r->expect_expired;
            limited += r->expect == HB_ELIMIT;
            debts += r->expect_debt > 0;
        }
        check_balances(&t, &m);
        check_counter(&t, &m);
        if ((step + 1) % MODEL_VERIFY_EVERY == 0)
            full_verify(&t);
    }
    full_verify(&t); /* also: the sum over all accounts, the economy's included, is zero */
    meco_end(eco, &t);
    fprintf(stderr,
            "ledger_model: ok=%zu exists=%zu conflict=%zu funds=%zu state=%zu invalid=%zu "
            "other=%zu expired=%zu reversals_with_debt=%zu transfers=%zu\n",
            seen[0], seen[1], seen[2], seen[3], seen[4], seen[5], seen[6], expired, debts, m.nx);
    fprintf(stderr, "ledger_model: payment_events=%zu with_repayment=%zu refunds=%zu payments=%d\n",
            m.pay_events, m.pay_repaid, m.pay_refunds, m.npays);
    assert_true(m.pay_events > (size_t)m.npays); /* some were reported again */
    assert_true(m.pay_repaid > 0);
    assert_true(m.pay_refunds > 0);
    fprintf(stderr, "ledger_model: splits=%zu split_replays=%zu\n", m.splits, m.split_replays);
    assert_true(m.splits > 0 && m.split_replays > 0);
    /* Every kind of result came up. */
    for (int i = 0; i < 6; i++)
        assert_true(seen[i] > 0);
    assert_true(expired > 0);
    /* The guard's limit filled and then refused. */
    assert_int_equal(m.counted, MODEL_LIMIT);
    assert_true(limited > 0);
    lt_done(&t);
    free(m.x);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_model),
};

TEST_GROUP_DEFINE(ledger_model, tests, lt_group_setup, lt_group_teardown)
TEST_GROUP_DEFINE(ledger_model_pg, tests, lt_group_setup_pg, lt_group_teardown)
