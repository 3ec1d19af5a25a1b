/* See tests/core/ledger_model_economy.h. */
#include "tests/core/ledger_model_economy.h"

#include "tests/test.h"

#include "base/error.h"
#include "core/contest.h"
#include "core/holders.h"
#include "core/ledger.h"
#include "core/revenue.h"
#include "tests/core/ledger_helpers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECO_SCOPE "telegram:-7"
#define ECO_PRIZES "system:prizes:" ECO_SCOPE
#define ECO_HOLDERS "holders:" ECO_SCOPE
#define ECO_REVENUE "system:eco:revenue"
#define ECO_MINT "system:eco:mint"
#define ECO_ACCOUNTS 12
#define ECO_PAYERS 5
#define ECO_PAID_MAX 64 /* payouts kept for replays */

struct eco_acct {
    char id[48];
    int64_t posted; /* the model's credits_posted - debits_posted */
    bool open;
};

/* One payout as first paid: a contest's prizes or a holder payout. */
struct eco_paid {
    char ids[CONTEST_WINNERS_MAX][STORE_ID_SIZE];
    char to[CONTEST_WINNERS_MAX][48];
    int64_t amount[CONTEST_WINNERS_MAX];
    size_t n;
    bool prize; /* else a holder payout */
};

struct meco {
    uint64_t rng;
    struct eco_acct a[ECO_ACCOUNTS];
    int na;
    struct revenue_split split;
    struct contest_rules rules;
    size_t next;                          /* ids */
    char last_post[32], last_pending[32]; /* the last settlement, for replays */
    int64_t last_amount;
    struct revenue_part last_parts[REVENUE_SHARES_MAX + 1];
    size_t last_nparts;
    struct eco_paid *paid; /* ECO_PAID_MAX, a ring */
    size_t npaid;
    size_t settles, settle_replays, contests, prizes, prize_replays, prize_conflicts,
        holder_payouts, holder_replays;
};

static uint64_t eco_rnd(struct meco *e)
{
    e->rng ^= e->rng << 13;
    e->rng ^= e->rng >> 7;
    e->rng ^= e->rng << 17;
    return e->rng;
}

static int64_t eco_in(struct meco *e, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(eco_rnd(e) % (uint64_t)(hi - lo + 1));
}

static int eco_acct(struct meco *e, const char *id)
{
    for (int i = 0; i < e->na; i++) {
        if (strcmp(e->a[i].id, id) == 0)
            return i;
    }
    assert_true(e->na < ECO_ACCOUNTS);
    snprintf(e->a[e->na].id, sizeof(e->a[0].id), "%s", id);
    return e->na++;
}

static void eco_move(struct meco *e, const char *from, const char *to, int64_t amount)
{
    int d = eco_acct(e, from), c = eco_acct(e, to);
    e->a[d].posted -= amount;
    e->a[c].posted += amount;
    e->a[c].open = true;
}

static const char *eco_payer(int i)
{
    static const char *const payers[ECO_PAYERS] = {"telegram:e1", "telegram:e2", "telegram:e3",
                                                   "telegram:e4", "telegram:e5"};
    return payers[i];
}

struct meco *meco_new(struct lt *t, uint64_t seed)
{
    struct meco *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->paid = calloc(ECO_PAID_MAX, sizeof(*e->paid));
    assert_non_null(e->paid);
    e->rng = seed * 0x9E3779B97F4A7C15ull + 7;
    /* The holders' and the prizes' shares of a four-way split, the
     * remainder's odd basis points included. Each is at least 5 %: below
     * that its account could stay too small, in a run, for the payouts,
     * replays and conflicts checked at the end to happen at all (a seed
     * with a 0.5 % prize share paid one prize and never replayed it). */
    int32_t h = (int32_t)eco_in(e, 500, 4000), p = (int32_t)eco_in(e, 500, 3000),
            tr = (int32_t)eco_in(e, 0, 1500);
    char text[256], err[256];
    snprintf(text, sizeof(text),
             "system:eco:dev %dbp, holders:<scope> %dbp, system:prizes:<scope> %dbp, "
             "system:eco:treasury %dbp",
             (int)(REVENUE_BP_TOTAL - h - p - tr), (int)h, (int)p, (int)tr);
    assert_int_equal(revenue_split_parse(text, NULL, NULL, &e->split, err, sizeof(err)), 0);
    fprintf(stderr, "ledger_model: economy split %s\n", text);
    assert_int_equal(contest_rules_parse(3, "50,30,20", &e->rules, err, sizeof(err)), 0);
    struct lt_res res;
    assert_int_equal(lt_open(t, ECO_MINT, 0, 0, &res), 0);
    assert_int_equal(lt_open(t, ECO_REVENUE, 0, 0, &res), 0);
    e->a[eco_acct(e, ECO_MINT)].open = true;
    e->a[eco_acct(e, ECO_REVENUE)].open = true;
    for (int i = 0; i < ECO_PAYERS; i++) {
        assert_int_equal(lt_open(t, eco_payer(i), LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
        e->a[eco_acct(e, eco_payer(i))].open = true;
    }
    return e;
}

static void eco_check(struct meco *e, struct lt *t)
{
    int64_t sum = 0;
    for (int i = 0; i < e->na; i++) {
        if (!e->a[i].open)
            continue;
        struct ledger_balance b = lt_balance(t, e->a[i].id);
        if (b.posted != e->a[i].posted)
            fprintf(stderr, "economy account %s: ledger %" PRId64 " model %" PRId64 "\n",
                    e->a[i].id, b.posted, e->a[i].posted);
        assert_int_equal(b.posted, e->a[i].posted);
        assert_int_equal(b.pending_debits, 0);
        sum += b.posted;
    }
    assert_int_equal(sum, 0); /* the economy's accounts move only among themselves */
    /* The holder account never overdraws; the prize account never pays
     * more than it holds. */
    assert_true(e->a[eco_acct(e, ECO_HOLDERS)].posted >= 0);
    assert_true(e->a[eco_acct(e, ECO_PRIZES)].posted >= 0);
}

/* A settlement spent in the group: reserve, then post split by the shares,
 * each equal to its part rounded down and the rest to the remainder. */
static void eco_settle(struct meco *e, struct lt *t)
{
    struct lt_res res;
    bool replay = e->last_post[0] != '\0' && eco_rnd(e) % 5 == 0;
    if (!replay) {
        int p = (int)eco_in(e, 0, ECO_PAYERS - 1);
        int64_t have = e->a[eco_acct(e, eco_payer(p))].posted;
        if (have < 1)
            return;
        int64_t reserved = eco_in(e, 1, have < 300 ? have : 300);
        snprintf(e->last_pending, sizeof(e->last_pending), "eco:r%zu", e->next);
        snprintf(e->last_post, sizeof(e->last_post), "eco:p%zu", e->next++);
        assert_int_equal(
            lt_reserve(t, e->last_pending, eco_payer(p), ECO_REVENUE, reserved, 0, &res), 0);
        e->last_amount = eco_in(e, 1, reserved);
        e->last_nparts =
            revenue_split_amounts(&e->split, NULL, e->last_amount, ECO_SCOPE, e->last_parts);
        /* Every share is its percentage, rounded down; the remainder gets
         * what is left, less than one credit per share. */
        int64_t sum = 0;
        for (size_t i = 0; i < e->last_nparts; i++)
            sum += e->last_parts[i].amount;
        assert_int_equal(sum, e->last_amount);
        for (size_t k = 0; k < e->split.n; k++) {
            char account[STORE_ID_SIZE];
            snprintf(account, sizeof(account), "%s", e->split.shares[k].account);
            char *at = strstr(account, REVENUE_SCOPE);
            if (at != NULL)
                snprintf(at, sizeof(account) - (size_t)(at - account), "%s", ECO_SCOPE);
            int64_t want = e->last_amount * e->split.shares[k].bp / REVENUE_BP_TOTAL, got = 0;
            for (size_t i = 0; i < e->last_nparts; i++)
                got += strcmp(e->last_parts[i].account, account) == 0 ? e->last_parts[i].amount : 0;
            if (strcmp(account, e->split.remainder) == 0)
                assert_true(got >= want && got < want + (int64_t)e->split.n);
            else
                assert_int_equal(got, want);
        }
        eco_move(e, eco_payer(p), ECO_REVENUE, e->last_amount);
        for (size_t i = 0; i < e->last_nparts; i++)
            eco_move(e, ECO_REVENUE, e->last_parts[i].account, e->last_parts[i].amount);
    }
    struct ledger_share shares[REVENUE_SHARES_MAX + 1];
    for (size_t i = 0; i < e->last_nparts; i++)
        shares[i] = (struct ledger_share){e->last_parts[i].account, e->last_parts[i].amount};
    struct ledger_transfer post = {
        .id = e->last_post, .pending_id = e->last_pending, .amount = e->last_amount};
    memset(&res, 0, sizeof(res));
    assert_int_equal(
        ledger_transfer_post_split(t->ledger, &post, shares, e->last_nparts, NULL, lt_cb, &res), 0);
    lt_wait(t, &res);
    assert_int_equal(res.rc, replay ? HB_EEXISTS : 0); /* a replay moves nothing again */
    e->settles += !replay;
    e->settle_replays += replay;
}

static void eco_batch(struct meco *e, struct lt *t, const struct eco_paid *p, const char *from,
                      int64_t bump, int expect)
{
    struct ledger_transfer ts[CONTEST_WINNERS_MAX];
    for (size_t i = 0; i < p->n; i++)
        ts[i] = (struct ledger_transfer){.id = p->ids[i],
                                         .debit = from,
                                         .credit = p->to[i],
                                         .amount = p->amount[i] + (i == 0 ? bump : 0),
                                         .kind = LEDGER_KIND_TRANSFER,
                                         .ref = from};
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_batch_create(t->ledger, ts, p->n, lt_cb, &res), 0);
    lt_wait(t, &res);
    assert_int_equal(res.rc, expect);
    if (expect == HB_ECONFLICT)
        assert_int_equal(res.r.index, 0);
    (void)e;
}

/* A contest ends: its board, its pool (the prize, or the balance), the
 * payout by the split, paid as one batch. */
static void eco_contest(struct meco *e, struct lt *t)
{
    struct contest c = {.platform = COMMAND_PLATFORM_TELEGRAM, .scope_id = "-7"};
    c.id = (int64_t)++e->contests;
    struct store_vote rows[8];
    size_t n = (size_t)eco_in(e, 0, 6);
    int64_t count = 40;
    for (size_t i = 0; i < n; i++) {
        memset(&rows[i], 0, sizeof(rows[i]));
        snprintf(rows[i].image, sizeof(rows[i].image), "c%zui%zu", e->contests, i);
        snprintf(rows[i].creator, sizeof(rows[i].creator), "e%d", (int)eco_in(e, 1, ECO_PAYERS));
        count -= eco_in(e, 0, 6);
        rows[i].count = count > 0 ? count : 0;
    }
    int64_t balance = e->a[eco_acct(e, ECO_PRIZES)].posted;
    int64_t prize = eco_rnd(e) % 2 ? 0 : eco_in(e, 1, 500);
    int64_t pool = prize > 0 && prize < balance ? prize : balance;
    struct contest_payment pay[CONTEST_WINNERS_MAX];
    size_t k = contest_payout(&c, &e->rules, rows, n, pool, pay);
    struct eco_paid *p = &e->paid[e->npaid % ECO_PAID_MAX];
    memset(p, 0, sizeof(*p));
    p->prize = true;
    int64_t total = 0;
    for (size_t i = 0; i < k; i++) {
        if (pay[i].amount <= 0)
            continue;
        snprintf(p->ids[p->n], sizeof(p->ids[0]), "%s", pay[i].id);
        snprintf(p->to[p->n], sizeof(p->to[0]), "%s", pay[i].account);
        p->amount[p->n++] = pay[i].amount;
        total += pay[i].amount;
    }
    assert_true(total <= pool); /* the split never pays more than the pool */
    if (p->n == 0)
        return;
    eco_batch(e, t, p, ECO_PRIZES, 0, 0);
    for (size_t i = 0; i < p->n; i++)
        eco_move(e, ECO_PRIZES, p->to[i], p->amount[i]);
    e->npaid++;
    e->prizes += p->n;
}

/* The holders are paid out: the holder account's balance pro rata. */
static void eco_holders(struct meco *e, struct lt *t)
{
    struct holders_payee py[3] = {
        {.user = "e1", .weight = 3}, {.user = "e2", .weight = 1}, {.user = "e4", .weight = 2}};
    int64_t balance = e->a[eco_acct(e, ECO_HOLDERS)].posted;
    int64_t left = holders_split(balance, py, 3);
    assert_true(left >= 0 && left < 3);
    struct eco_paid *p = &e->paid[e->npaid % ECO_PAID_MAX];
    memset(p, 0, sizeof(*p));
    size_t period = e->next++;
    for (size_t i = 0; i < 3; i++) {
        if (py[i].amount <= 0)
            continue;
        snprintf(p->ids[p->n], sizeof(p->ids[0]), "holders:%s:p%zu:%s", ECO_SCOPE, period,
                 py[i].user);
        snprintf(p->to[p->n], sizeof(p->to[0]), "telegram:%s", py[i].user);
        p->amount[p->n++] = py[i].amount;
    }
    if (p->n == 0)
        return;
    eco_batch(e, t, p, ECO_HOLDERS, 0, 0);
    for (size_t i = 0; i < p->n; i++)
        eco_move(e, ECO_HOLDERS, p->to[i], p->amount[i]);
    e->npaid++;
    e->holder_payouts++;
}

/* A payout paid before, again: as it was (a restart) moves nothing, and
 * with another amount (a daemon that computed it differently) is refused. */
static void eco_replay(struct meco *e, struct lt *t)
{
    if (e->npaid == 0)
        return;
    size_t kept = e->npaid < ECO_PAID_MAX ? e->npaid : ECO_PAID_MAX;
    const struct eco_paid *p = &e->paid[(size_t)eco_in(e, 0, (int64_t)kept - 1)];
    const char *from = p->prize ? ECO_PRIZES : ECO_HOLDERS;
    eco_batch(e, t, p, from, 0, HB_EEXISTS);
    eco_batch(e, t, p, from, 1, HB_ECONFLICT);
    if (p->prize) {
        e->prize_replays++;
        e->prize_conflicts++;
    } else {
        e->holder_replays++;
    }
}

void meco_step(struct meco *e, struct lt *t)
{
    int what = (int)eco_in(e, 0, 99);
    if (what < 15) {
        int p = (int)eco_in(e, 0, ECO_PAYERS - 1);
        char id[32];
        snprintf(id, sizeof(id), "eco:f%zu", e->next++);
        int64_t amount = eco_in(e, 50, 500);
        struct lt_res res;
        assert_int_equal(lt_plain(t, id, ECO_MINT, eco_payer(p), amount, LEDGER_KIND_GRANT, &res),
                         0);
        eco_move(e, ECO_MINT, eco_payer(p), amount);
    } else if (what < 55) {
        eco_settle(e, t);
    } else if (what < 72) {
        eco_contest(e, t);
    } else if (what < 85) {
        eco_holders(e, t);
    } else {
        eco_replay(e, t);
    }
    eco_check(e, t);
}

/* Every payment of the recorded payouts is in the ledger once, with its
 * amount, and the prize account paid nothing else. */
static void eco_history(struct meco *e, struct lt *t)
{
    size_t prize_transfers = 0;
    uint64_t before = 0;
    for (;;) {
        static struct lt_res res;
        memset(&res, 0, sizeof(res));
        assert_int_equal(ledger_history_get(t->ledger, ECO_PRIZES, before, 100, lt_cb, &res), 0);
        lt_wait(t, &res);
        assert_int_equal(res.rc, 0);
        for (size_t i = 0; i < res.history_count; i++) {
            const struct store_transfer *x = &res.history[i];
            before = x->seq;
            if (strcmp(x->debit, ECO_PRIZES) != 0)
                continue;
            assert_true(strncmp(x->id, "prize:" ECO_SCOPE ":", strlen("prize:" ECO_SCOPE ":")) ==
                        0);
            prize_transfers++;
        }
        if (res.history_count < 100)
            break;
    }
    assert_int_equal(prize_transfers, e->prizes); /* none paid twice, none lost */
    size_t kept = e->npaid < ECO_PAID_MAX ? e->npaid : ECO_PAID_MAX;
    for (size_t k = 0; k < kept; k++) {
        for (size_t i = 0; i < e->paid[k].n; i++) {
            struct lt_res res;
            memset(&res, 0, sizeof(res));
            assert_int_equal(ledger_transfer_get(t->ledger, e->paid[k].ids[i], lt_cb, &res), 0);
            lt_wait(t, &res);
            assert_int_equal(res.rc, 0);
            assert_int_equal(res.r.transfer.amount, e->paid[k].amount[i]);
        }
    }
}

void meco_end(struct meco *e, struct lt *t)
{
    eco_check(e, t);
    eco_history(e, t);
    fprintf(stderr,
            "ledger_model: economy settles=%zu replays=%zu contests=%zu prizes=%zu "
            "prize_replays=%zu prize_conflicts=%zu holder_payouts=%zu holder_replays=%zu\n",
            e->settles, e->settle_replays, e->contests, e->prizes, e->prize_replays,
            e->prize_conflicts, e->holder_payouts, e->holder_replays);
    assert_true(e->settles > 0 && e->settle_replays > 0);
    assert_true(e->prizes > 0 && e->prize_replays > 0 && e->prize_conflicts > 0);
    assert_true(e->holder_payouts > 0);
    free(e->paid);
    free(e);
}
