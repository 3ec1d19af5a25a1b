/* Revenue shares (core/revenue.c): [revenue] parsed with one clear
 * sentence per mistake; a charge split by the shares, rounded down, with
 * the rounding's leftovers to the remainder account, so the parts always
 * add up to the charge; a settlement posting its shares in the charge's
 * own transaction; and /admin revenue moving the adjustable shares within
 * the operator's ranges, kept across a restart. */
#include "tests/test.h"

#include "base/error.h"
#include "bot/router.h"
#include "core/ledger.h"
#include "core/revenue.h"
#include "tests/core/router_fixture.h"
#include "tests/core/test_generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef __int128 i128; /* exact products, to check the split's arithmetic */

#define SHARES4                                                                                    \
    "system:developers 50%, pool:<scope> 25%, system:prizes:<scope> 15%, system:treasury 10%"

static void parse_ok(struct revenue_split *s, const char *shares, const char *rem, const char *adj)
{
    char err[256] = "";
    int rc = revenue_split_parse(shares, rem, adj, s, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
}

static void parse_bad(const char *shares, const char *rem, const char *adj, const char *needle)
{
    struct revenue_split s;
    char err[256] = "";
    assert_int_equal(revenue_split_parse(shares, rem, adj, &s, err, sizeof(err)), HB_EINVAL);
    if (strstr(err, needle) == NULL)
        print_error("got \"%s\", wanted \"%s\"\n", err, needle);
    assert_non_null(strstr(err, needle));
    assert_int_equal(s.n, 0);
}

static void test_split_parse(void **state)
{
    (void)state;
    struct revenue_split s;
    parse_ok(&s, NULL, NULL, NULL);
    assert_int_equal(s.n, 0);
    parse_ok(&s, SHARES4, NULL, "pool:<scope> 0-40%, system:prizes:<scope> 500bp-4000bp");
    assert_int_equal(s.n, 4);
    assert_string_equal(s.shares[1].account, "pool:<scope>");
    assert_int_equal(s.shares[0].bp, 5000);
    assert_int_equal(s.shares[2].bp, 1500);
    assert_string_equal(s.remainder, "system:developers"); /* the first unscoped share */
    assert_true(s.shares[1].adjustable && !s.shares[0].adjustable);
    assert_int_equal(s.shares[1].min_bp, 0);
    assert_int_equal(s.shares[1].max_bp, 4000);
    assert_int_equal(s.shares[2].min_bp, 500);
    parse_ok(&s, "a 12.5%, b 8750bp", "system:treasury", NULL);
    assert_int_equal(s.shares[0].bp, 1250);
    assert_int_equal(s.shares[1].bp, 8750);
    assert_string_equal(s.remainder, "system:treasury");

    parse_bad("a 50%, b 45%", NULL, NULL, "shares add up to 95%, not 100%");
    parse_bad("a 50%, b 45%", NULL, NULL, "unassigned");
    parse_bad("a 60%, b 45%", NULL, NULL, "add up to 105%");
    parse_bad("a 50, b 50%", NULL, NULL, "a: \"50\" is not a part");
    parse_bad("a 50%, b", NULL, NULL, "b needs a part");
    parse_bad("a 50%, a 50%", NULL, NULL, "a is named twice");
    parse_bad("system:revenue 50%, a 50%", NULL, NULL, "system:revenue cannot receive a share");
    parse_bad("debt:x 50%, a 50%", NULL, NULL, "debt:x cannot receive a share");
    parse_bad("a/b 100%", NULL, NULL, "\"a/b\" is not an account");
    parse_bad("pool:<group> 100%", NULL, NULL, "is not an account");
    parse_bad("pool:<scope> 100%", NULL, NULL, "set remainder = ACCOUNT");
    parse_bad("a 100%", "pool:<scope>", NULL, "remainder: \"pool:<scope>\"");
    parse_bad(NULL, "a", NULL, "need shares");
    parse_bad(SHARES4, NULL, "system:bonus 0-10%", "adjustable: system:bonus is not one");
    parse_bad(SHARES4, NULL, "pool:<scope> 30-40%", "lies outside the range");
    parse_bad(SHARES4, NULL, "pool:<scope> 40-30%", "needs a range");
    parse_bad(SHARES4, NULL, "pool:<scope>", "needs a range");
}

/* The parts of amount for an account, 0 when it has none. */
static int64_t part_of(const struct revenue_part *p, size_t n, const char *account)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(p[i].account, account) == 0)
            return p[i].amount;
    }
    return 0;
}

static void test_split_amounts(void **state)
{
    (void)state;
    struct revenue_split s;
    struct revenue_part p[REVENUE_SHARES_MAX + 1];
    parse_ok(&s, SHARES4, NULL, NULL);
    size_t n = revenue_split_amounts(&s, NULL, 1000, "discord:9", p);
    assert_int_equal(n, 4);
    assert_int_equal(part_of(p, n, "system:developers"), 500);
    assert_int_equal(part_of(p, n, "pool:discord:9"), 250);
    assert_int_equal(part_of(p, n, "system:prizes:discord:9"), 150);
    assert_int_equal(part_of(p, n, "system:treasury"), 100);
    /* 7 credits: 3, 1, 1, 0 rounded down; the 2 left to the remainder. */
    n = revenue_split_amounts(&s, NULL, 7, "discord:9", p);
    assert_int_equal(n, 3);
    assert_int_equal(part_of(p, n, "system:developers"), 5);
    assert_int_equal(part_of(p, n, "pool:discord:9"), 1);
    assert_int_equal(part_of(p, n, "system:prizes:discord:9"), 1);
    /* No community: the scoped shares go to the remainder account. */
    n = revenue_split_amounts(&s, NULL, 1000, NULL, p);
    assert_int_equal(n, 2);
    assert_int_equal(part_of(p, n, "system:developers"), 900);
    assert_int_equal(part_of(p, n, "system:treasury"), 100);
    assert_int_equal(revenue_split_amounts(&s, NULL, 0, NULL, p), 0);

    /* Any amount, any split: the parts add up to it, and each share is its
     * part rounded down (the remainder's, plus less than one per share). */
    uint64_t rng = 88172645463325252ull;
    for (int round = 0; round < 2000; round++) {
        struct revenue_split r;
        memset(&r, 0, sizeof(r));
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        r.n = 1 + rng % REVENUE_SHARES_MAX;
        int32_t left = REVENUE_BP_TOTAL;
        for (size_t i = 0; i < r.n; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            r.shares[i].bp = i + 1 == r.n ? left : (int32_t)(rng % (uint64_t)(left + 1));
            left -= r.shares[i].bp;
            snprintf(r.shares[i].account, sizeof(r.shares[i].account), "acct:%zu", i);
        }
        snprintf(r.remainder, sizeof(r.remainder), "acct:0");
        int64_t amount = 1 + (int64_t)(rng % 1000000);
        if (round % 7 == 0)
            amount = INT64_MAX / 3 + (int64_t)(rng % 1000);
        n = revenue_split_amounts(&r, NULL, amount, NULL, p);
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            assert_true(p[i].amount > 0);
            sum += p[i].amount;
        }
        assert_int_equal(sum, amount);
        for (size_t i = 0; i < r.n; i++) {
            i128 exact = (i128)amount * r.shares[i].bp / REVENUE_BP_TOTAL;
            int64_t got = part_of(p, n, r.shares[i].account);
            if (i == 0)
                assert_true(got >= exact && got < exact + (int64_t)r.n);
            else
                assert_true(got == exact);
        }
    }
}

static void test_override_parse(void **state)
{
    (void)state;
    struct revenue_split s;
    int32_t bp[REVENUE_SHARES_MAX];
    char err[256], text[512];
    parse_ok(&s, SHARES4, NULL, "pool:<scope> 10-40%, system:prizes:<scope> 0-30%");
    assert_int_equal(revenue_override_parse(&s, "pool:<scope> 30% system:prizes:<scope> 10%", bp,
                                            err, sizeof(err)),
                     0);
    assert_int_equal(bp[0], 5000);
    assert_int_equal(bp[1], 3000);
    assert_int_equal(bp[2], 1000);
    assert_int_equal(bp[3], 1000);
    assert_string_equal(revenue_override_text(&s, bp, text, sizeof(text)),
                        "pool:<scope> 3000bp system:prizes:<scope> 1000bp");
    assert_int_equal(revenue_override_parse(&s, text, bp, err, sizeof(err)), 0);
    assert_int_equal(bp[1], 3000);
    assert_int_equal(revenue_override_parse(&s, "pool:<scope> 45%", bp, err, sizeof(err)),
                     HB_EINVAL);
    assert_non_null(strstr(err, "pool:<scope> may be set from 10% to 40%"));
    assert_int_equal(revenue_override_parse(&s, "pool:<scope> 30%", bp, err, sizeof(err)),
                     HB_EINVAL);
    assert_non_null(strstr(err, "must add up to 40% together (they add up to 45%)"));
    assert_int_equal(revenue_override_parse(&s, "system:developers 40%", bp, err, sizeof(err)),
                     HB_EINVAL);
    assert_non_null(strstr(err, "system:developers is not a share this group may adjust"));
}

/* The ledger's side: shares that do not add up to the charge are refused
 * before anything runs; a share back to the charged account is refused in
 * the transaction (nothing of the post stays); a replay moves nothing. */
static void test_ledger_post_split(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct lt_res res;
    assert_int_equal(lt_open(&t, "discord:1", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    assert_int_equal(lt_reserve(&t, "r1", "discord:1", LEDGER_SYSTEM_REVENUE, 50, 60000, &res), 0);
    struct ledger_share sh[2] = {{"system:dev", 30}, {"pool:discord:7", 10}};
    struct ledger_transfer post = {.id = "p1", .pending_id = "r1", .amount = 41};
    assert_int_equal(ledger_transfer_post_split(t.ledger, &post, sh, 2, NULL, lt_cb, &res),
                     HB_EINVAL);
    post.amount = 40;
    struct ledger_share back[2] = {{"system:dev", 30}, {LEDGER_SYSTEM_REVENUE, 10}};
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_transfer_post_split(t.ledger, &post, back, 2, NULL, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, HB_EINVAL);
    assert_int_equal(lt_balance(&t, "discord:1").pending_debits, 50); /* still reserved */
    for (int round = 0; round < 2; round++) {
        memset(&res, 0, sizeof(res));
        assert_int_equal(ledger_transfer_post_split(t.ledger, &post, sh, 2, NULL, lt_cb, &res), 0);
        lt_wait(&t, &res);
        assert_int_equal(res.rc, round == 0 ? 0 : HB_EEXISTS);
        assert_string_equal(res.r.transfer.id, "p1");
        if (round == 0) { /* the payer's balance after the post, for the settlement's reply */
            assert_true(res.r.debit_balance);
            assert_string_equal(res.r.transfer.debit, "discord:1");
            assert_int_equal(res.r.balance.posted, 60);
        }
        assert_int_equal(lt_balance(&t, "discord:1").posted, 60);
        assert_int_equal(lt_balance(&t, "system:dev").posted, 30);
        assert_int_equal(lt_balance(&t, "pool:discord:7").posted, 10);
        assert_int_equal(lt_balance(&t, LEDGER_SYSTEM_REVENUE).posted, 0);
    }
    char *report = NULL;
    assert_int_equal(lt_verify(t.path, &report), 0);
    free(report);
    lt_done(&t);
}

/* ---- a settlement posts its shares with the charge ------------------------- */

static int64_t posted(struct gt *gt, const char *account)
{
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_balance_get(gt->lt.ledger, account, lt_cb, &res), 0);
    lt_wait(&gt->lt, &res);
    return res.rc == 0 ? res.r.balance.posted : (res.rc == HB_ENOTFOUND ? 0 : -1);
}

static void test_settlement_posts_shares(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct revenue *rv = revenue_new();
    assert_non_null(rv);
    struct revenue_split s;
    parse_ok(&s, SHARES4, NULL, NULL);
    revenue_configure(rv, &s);
    gt.core.revenue = rv;

    /* In a group: four shares, the pool's to that group's pool. */
    gt_run_in_group(&gt, "u1", "g1", 0);
    gt_settle(&gt, 10);
    int64_t charged = 100 - gt_balance(&gt, "u1");
    assert_true(charged > 0);
    struct revenue_part p[REVENUE_SHARES_MAX + 1];
    size_t n = revenue_split_amounts(&s, NULL, charged, "console:g1", p);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(posted(&gt, p[i].account), p[i].amount);
        sum += p[i].amount;
    }
    assert_int_equal(sum, charged);
    assert_int_equal(posted(&gt, LEDGER_SYSTEM_REVENUE), 0); /* all of it shared out */
    /* One post and n shares, all in the post's transaction. */
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM transfers WHERE kind = 9"),
                     (long long)n);

    /* In a DM the scoped shares go to the remainder account. */
    int64_t dev = posted(&gt, "system:developers");
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u2", PROVIDER_TEXT, "h", "hello");
    held_finish(held_wait_call(&gt, 1), 0, "fine", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_settle(&gt, 10);
    int64_t charged2 = 100 - gt_balance(&gt, "u2");
    n = revenue_split_amounts(&s, NULL, charged2, NULL, p);
    assert_int_equal(posted(&gt, "system:developers") - dev, part_of(p, n, "system:developers"));
    assert_int_equal(posted(&gt, LEDGER_SYSTEM_REVENUE), 0);

    /* A split turned off by a reload: the next charge stays in revenue. */
    struct revenue_split none;
    parse_ok(&none, NULL, NULL, NULL);
    revenue_configure(rv, &none);
    gt_run_in_group(&gt, "u3", "g2", 2);
    gt_settle(&gt, 10);
    assert_int_equal(posted(&gt, LEDGER_SYSTEM_REVENUE), 100 - gt_balance(&gt, "u3"));

    char *report = NULL;
    assert_int_equal(lt_verify(gt.lt.path, &report), 0);
    free(report);
    gt.core.revenue = NULL;
    revenue_free(rv);
    gt_done(&gt);
}

static int rv_nothing(struct store_txn *txn, void *data)
{
    (void)txn;
    (void)data;
    return 0;
}

/* ---- /admin revenue ------------------------------------------------------- */

static const char *run(struct rfx *f, const char *scope, bool admin, const char *line)
{
    struct invocation inv;
    rfx_inv(&inv, COMMAND_PLATFORM_DISCORD, "501", scope);
    inv.admin = admin;
    return rfx_run(f, &inv, line);
}

static void loaded(int rc, void *data)
{
    *(int *)data = rc == 0 ? 1 : -1;
}

static void test_admin_revenue(void **state)
{
    struct rfx *f = *state;
    struct revenue *rv = revenue_new();
    assert_non_null(rv);
    f->core.revenue = rv;
    const char *t = run(f, "77", true, "admin revenue");
    assert_string_equal(t, "No revenue shares are set up on this bot: every credit spent goes to "
                           "system:revenue.");
    struct revenue_split s;
    parse_ok(&s, SHARES4, NULL, NULL);
    revenue_configure(rv, &s);
    t = run(f, "77", true, "admin revenue pool:<scope> 30% system:prizes:<scope> 10%");
    assert_string_equal(t, "The operator has fixed every share: none can be adjusted here.");
    parse_ok(&s, SHARES4, NULL, "pool:<scope> 10-40%, system:prizes:<scope> 0-30%");
    revenue_configure(rv, &s);

    t = run(f, "77", true, "admin revenue");
    assert_non_null(strstr(t, "Revenue shares of every credit spent here:\n"
                              "  system:developers 50%\n"
                              "  pool:<scope> 25% (adjustable here, 10% to 40%)\n"));
    assert_non_null(strstr(t, "Rounding leftovers go to system:developers. <scope> is this group "
                              "(discord:77)."));
    assert_null(strstr(t, "own split"));
    /* Members may not; admins may, within the ranges, keeping the sum. */
    t = run(f, "77", false, "admin revenue pool:<scope> 30% system:prizes:<scope> 10%");
    assert_null(strstr(t, "Saved"));
    t = run(f, "77", true, "admin revenue pool:<scope> 45% system:prizes:<scope> 0%");
    assert_non_null(strstr(t, "That split cannot be used here: pool:<scope> may be set from 10% "
                              "to 40%."));
    t = run(f, "77", true, "admin revenue pool:<scope> 30%");
    assert_non_null(strstr(t, "must add up to 40% together"));
    t = run(f, "77", true, "admin revenue pool:<scope> 30% system:prizes:<scope> 10%");
    assert_non_null(strstr(t, "Saved. Revenue shares"));
    assert_non_null(strstr(t, "  pool:<scope> 30% (adjustable"));
    assert_non_null(strstr(t, "own split is in effect"));
    t = run(f, NULL, true, "admin revenue pool:<scope> 30% system:prizes:<scope> 10%");
    assert_string_equal(t, "Revenue shares are adjusted per server or group: run this there.");
    t = run(f, NULL, true, "admin revenue");
    assert_non_null(strstr(t, "  pool:<scope> 25% (adjustable"));
    assert_non_null(strstr(t, "so do the <scope> shares here, where there is no group."));
    /* The change is on the audit trail, as the other admin settings (the
     * entry is written after the answer, not before it). */
    assert_int_equal(test_sql_int_wait(&f->lt.loop, f->lt.path,
                                       "SELECT COUNT(*) FROM audit WHERE action = "
                                       "'revenue.set' AND subject = 'discord:77'"),
                     1);

    /* The override splits this group's charges, and no other group's. */
    struct revenue_part p[REVENUE_SHARES_MAX + 1];
    size_t n = revenue_shares(rv, COMMAND_PLATFORM_DISCORD, "77", 1000, p);
    assert_int_equal(part_of(p, n, "pool:discord:77"), 300);
    assert_int_equal(part_of(p, n, "system:prizes:discord:77"), 100);
    n = revenue_shares(rv, COMMAND_PLATFORM_DISCORD, "78", 1000, p);
    assert_int_equal(part_of(p, n, "pool:discord:78"), 250);

    /* Kept in the store: a new start reads it back. */
    struct revenue *again = revenue_new();
    revenue_configure(again, &s);
    int done = 0;
    assert_int_equal(revenue_load(again, ledger_store(f->lt.ledger), loaded, &done), 0);
    while (done == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(done, 1);
    n = revenue_shares(again, COMMAND_PLATFORM_DISCORD, "77", 1000, p);
    assert_int_equal(part_of(p, n, "pool:discord:77"), 300);
    /* Narrower ranges from the operator: the override no longer applies. */
    struct revenue_split narrow;
    parse_ok(&narrow, SHARES4, NULL, "pool:<scope> 20-25%, system:prizes:<scope> 15-20%");
    revenue_configure(again, &narrow);
    n = revenue_shares(again, COMMAND_PLATFORM_DISCORD, "77", 1000, p);
    assert_int_equal(part_of(p, n, "pool:discord:77"), 250);
    revenue_configure(again, &s);

    t = run(f, "77", true, "admin revenue reset");
    assert_non_null(strstr(t, "This group uses the operator's split again."));
    assert_non_null(strstr(t, "  pool:<scope> 25% (adjustable"));
    n = revenue_shares(rv, COMMAND_PLATFORM_DISCORD, "77", 1000, p);
    assert_int_equal(part_of(p, n, "pool:discord:77"), 250);

    /* Another daemon on the same ledger (again) still splits by the
     * override it read, until it reads the overrides again. */
    assert_int_equal(test_sql_int_wait(&f->lt.loop, f->lt.path,
                                       "SELECT COUNT(*) FROM state WHERE ns = 'revenue'"),
                     0);
    n = revenue_shares(again, COMMAND_PLATFORM_DISCORD, "77", 1000, p);
    assert_int_equal(part_of(p, n, "pool:discord:77"), 300);
    done = 0;
    assert_int_equal(revenue_refresh(again, ledger_store(f->lt.ledger), loaded, &done), 0);
    assert_int_equal(revenue_refresh(again, ledger_store(f->lt.ledger), loaded, &done), HB_EBUSY);
    while (done == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    n = revenue_shares(again, COMMAND_PLATFORM_DISCORD, "77", 1000, p);
    assert_int_equal(part_of(p, n, "pool:discord:77"), 250);
    /* One set here while the rows are read is newer than what was read. */
    done = 0;
    assert_int_equal(revenue_refresh(again, ledger_store(f->lt.ledger), loaded, &done), 0);
    assert_int_equal(
        revenue_override_set(again, ledger_store(f->lt.ledger), COMMAND_PLATFORM_DISCORD, "77",
                             "pool:<scope> 3500bp system:prizes:<scope> 500bp", NULL, NULL),
        0);
    while (done == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    n = revenue_shares(again, COMMAND_PLATFORM_DISCORD, "77", 1000, p);
    assert_int_equal(part_of(p, n, "pool:discord:77"), 350);
    /* One heard from the first daemon while a read is under way here
     * that began before it: revenue_refresh_after reads again after it
     * (revenue_refresh refuses: its caller waits for its own). */
    done = 0;
    assert_int_equal(revenue_refresh(again, ledger_store(f->lt.ledger), loaded, &done), 0);
    assert_int_equal(revenue_override_set(rv, ledger_store(f->lt.ledger), COMMAND_PLATFORM_DISCORD,
                                          "77", "pool:<scope> 3000bp system:prizes:<scope> 1000bp",
                                          NULL, NULL),
                     0);
    assert_int_equal(revenue_refresh(again, ledger_store(f->lt.ledger), NULL, NULL), HB_EBUSY);
    assert_int_equal(revenue_refresh_after(again, ledger_store(f->lt.ledger)), 0);
    while (done == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(lt_store_run(&f->lt, rv_nothing, NULL), 0); /* queued behind it */
    n = revenue_shares(again, COMMAND_PLATFORM_DISCORD, "77", 1000, p);
    assert_int_equal(part_of(p, n, "pool:discord:77"), 300);
    revenue_free(again);
    f->core.revenue = NULL;
    revenue_free(rv);
}

/* /earnings: the shares credited to the member's own wallet, only to them. */
static void test_earnings(void **state)
{
    struct rfx *f = *state;
    const char *t = run(f, "77", false, "earnings");
    assert_string_equal(t, "No revenue shares have been credited to your wallet: they come from "
                           "the operator's [revenue] shares that name it.");
    struct lt_res res;
    assert_int_equal(lt_open(&f->lt, "discord:900", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    for (int i = 0; i < 2; i++) {
        char rid[16], pid[16];
        snprintf(rid, sizeof(rid), "r%d", i);
        snprintf(pid, sizeof(pid), "p%d", i);
        assert_int_equal(
            lt_reserve(&f->lt, rid, "discord:900", LEDGER_SYSTEM_REVENUE, 50, 60000, &res), 0);
        struct ledger_share sh[2] = {{"discord:501", 30 + i}, {"system:dev", 10}};
        struct ledger_transfer post = {.id = pid, .pending_id = rid, .amount = 40 + i};
        memset(&res, 0, sizeof(res));
        assert_int_equal(ledger_transfer_post_split(f->lt.ledger, &post, sh, 2, NULL, lt_cb, &res),
                         0);
        lt_wait(&f->lt, &res);
        assert_int_equal(res.rc, 0);
    }
    t = run(f, "77", false, "earnings");
    assert_string_equal(t, "Revenue shares credited to your wallet: 61 credits this week (since "
                           "Monday, UTC), 61 in all, from 2 shares.");
    assert_true(f->cap.last_ephemeral);
    /* Older than a page of history: still found, page after page. */
    for (int i = 0; i < 120; i++) {
        char id[16];
        snprintf(id, sizeof(id), "dep%d", i);
        assert_int_equal(lt_plain(&f->lt, id, LEDGER_SYSTEM_DEPOSITS, "discord:501", 1,
                                  LEDGER_KIND_DEPOSIT, &res),
                         0);
    }
    t = run(f, "77", false, "earnings");
    assert_string_equal(t, "Revenue shares credited to your wallet: 61 credits this week (since "
                           "Monday, UTC), 61 in all, from 2 shares.");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_split_parse),
    cmocka_unit_test(test_split_amounts),
    cmocka_unit_test(test_override_parse),
    cmocka_unit_test(test_ledger_post_split),
    cmocka_unit_test(test_settlement_posts_shares),
    cmocka_unit_test_setup_teardown(test_admin_revenue, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_earnings, rfx_setup, rfx_teardown),
};

TEST_GROUP_DEFINE(revenue, tests, gt_group_setup, lt_group_teardown)
