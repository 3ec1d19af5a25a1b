/* The one deposit path (core/deposit.h) on a real ledger: a payment id is
 * credited once, a replay is "already credited" and moves nothing, a new
 * wallet gets its welcome bonus and a pool none, the owner is told once
 * with the new balance, and a refund reverses once with what was already
 * spent booked to debt. */
#include "base/error.h"
#include "core/deposit.h"
#include "core/ledger.h"
#include "core/notify.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"
#include "tests/test.h"

#include <stdio.h>
#include <string.h>

/* What deposit_credit or deposit_reverse answered. */
struct got {
    int calls;
    int rc;
    bool existed;
    int64_t balance;
    int64_t debt;
    char step[32];
};

static void got_cb(int rc, const struct deposit_result *r, void *data)
{
    struct got *g = data;
    g->calls++;
    g->rc = rc;
    g->existed = r->existed;
    g->balance = r->balance;
    g->debt = r->debt;
    snprintf(g->step, sizeof(g->step), "%s", r->step != NULL ? r->step : "");
}

/* What members would be told. */
struct told {
    int calls;
    struct notify_target to;
    char text[256];
};

static int told_cb(void *data, const struct notify_target *to, const char *text)
{
    struct told *t = data;
    t->calls++;
    t->to = *to;
    snprintf(t->text, sizeof(t->text), "%s", text);
    return 0;
}

/* Book c and run the loop until it answered. */
static struct got book(struct lt *t, const struct deposit_credit *c)
{
    struct got g = {0};
    assert_int_equal(deposit_credit(t->ledger, c, got_cb, &g), 0);
    while (g.calls == 0)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(g.calls, 1);
    return g;
}

static struct got reverse(struct lt *t, const struct deposit_reversal *r)
{
    struct got g = {0};
    assert_int_equal(deposit_reverse(t->ledger, r, got_cb, &g), 0);
    while (g.calls == 0)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(g.calls, 1);
    return g;
}

static void test_deposit_id_make(void **state)
{
    (void)state;
    char id[DEPOSIT_ID_MAX + 1];
    assert_int_equal(deposit_id_make(id, sizeof(id), "hedera", "0.0.5-1700000000-000000001", NULL),
                     0);
    assert_string_equal(id, "hedera:0.0.5-1700000000-000000001");
    assert_int_equal(deposit_id_make(id, sizeof(id), "hedera", "0.0.5-1-2", "0.0.777"), 0);
    assert_string_equal(id, "hedera:0.0.5-1-2:0.0.777");
    assert_int_equal(deposit_id_make(id, sizeof(id), "tg:stars", "stxCHARGE1", ""), 0);
    assert_string_equal(id, "tg:stars:stxCHARGE1");
    assert_int_equal(deposit_id_make(id, sizeof(id), "tg:stars", "", NULL), HB_EINVAL);
    assert_int_equal(deposit_id_make(id, sizeof(id), "", "x", NULL), HB_EINVAL);
    char longer[200];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(deposit_id_make(id, sizeof(id), "hedera", longer, NULL), HB_EINVAL);
    char big[256];
    longer[DEPOSIT_ID_MAX - 6] = '\0'; /* "hedera:" and this is one byte too long */
    assert_int_equal(deposit_id_make(big, sizeof(big), "hedera", longer, NULL), HB_EINVAL);
    longer[DEPOSIT_ID_MAX - 7] = '\0';
    assert_int_equal(deposit_id_make(big, sizeof(big), "hedera", longer, NULL), 0);
    assert_int_equal(strlen(big), DEPOSIT_ID_MAX);
    char small[8];
    assert_int_equal(deposit_id_make(small, sizeof(small), "hedera", "tx", NULL), HB_EINVAL);
}

static void test_credits_once_per_payment_id(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct told told = {0};
    struct deposit_credit c = {.id = "tg:stars:c1",
                               .account = "telegram:5",
                               .credits = 500,
                               .welcome_bonus = 100,
                               .ref = "telegram stars=50 payer=5 charge=c1",
                               .method = "test",
                               .via = "card",
                               .notify = told_cb,
                               .notify_data = &told};
    /* A new wallet: its welcome bonus, then the payment; told once. */
    struct got g = book(&t, &c);
    assert_int_equal(g.rc, 0);
    assert_false(g.existed);
    assert_int_equal(g.balance, 600);
    assert_int_equal(lt_balance(&t, "telegram:5").posted, 600);
    assert_int_equal(told.calls, 1);
    assert_int_equal(told.to.scope, COMMAND_SCOPE_DM);
    assert_string_equal(told.to.user_id, "5");
    assert_string_equal(told.text, "Your card payment arrived: 500 credits. Your wallet now has "
                                   "600 credits available.");
    struct lt_res res = {0};
    assert_int_equal(ledger_transfer_get(t.ledger, "tg:stars:c1", lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.r.transfer.amount, 500);
    assert_int_equal(res.r.transfer.kind, LEDGER_KIND_DEPOSIT);
    assert_string_equal(res.r.transfer.debit, LEDGER_SYSTEM_DEPOSITS);
    assert_string_equal(res.r.transfer.ref, "telegram stars=50 payer=5 charge=c1");

    /* The same payment again: already credited, nothing moves, nobody is
     * told twice, the balance is still in the answer. */
    g = book(&t, &c);
    assert_int_equal(g.rc, 0);
    assert_true(g.existed);
    assert_int_equal(g.balance, 600);
    assert_int_equal(lt_balance(&t, "telegram:5").posted, 600);
    assert_int_equal(lt_balance(&t, LEDGER_SYSTEM_DEPOSITS).posted, -500);
    assert_int_equal(told.calls, 1);

    /* The same id claiming another amount is refused: still nothing twice. */
    struct deposit_credit other = c;
    other.credits = 900;
    g = book(&t, &other);
    assert_int_equal(g.rc, HB_ECONFLICT);
    assert_string_equal(g.step, "credit");
    assert_int_equal(lt_balance(&t, "telegram:5").posted, 600);
    assert_int_equal(told.calls, 1);

    /* Another payment is another id; the wallet is not given a second
     * bonus. */
    c.id = "tg:stars:c2";
    g = book(&t, &c);
    assert_int_equal(g.rc, 0);
    assert_false(g.existed);
    assert_int_equal(g.balance, 1100);
    assert_int_equal(told.calls, 2);
    lt_done(&t);
}

static void test_pool_and_quiet_deposits(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct told told = {0};
    /* A pool: no welcome bonus; the group is told in the chat the deposit
     * was started in. */
    struct deposit_credit c = {.id = "hedera:tx1",
                               .account = "pool:discord:9",
                               .channel = "777",
                               .credits = 250,
                               .welcome_bonus = 100,
                               .ref = "hedera tx1",
                               .method = "hedera",
                               .via = "Hedera",
                               .notify = told_cb,
                               .notify_data = &told};
    struct got g = book(&t, &c);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.balance, 250);
    assert_int_equal(lt_balance(&t, "pool:discord:9").posted, 250);
    assert_int_equal(told.calls, 1);
    assert_int_equal(told.to.scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(told.to.scope_id, "9");
    assert_string_equal(told.to.channel_id, "777");
    assert_string_equal(told.text, "A Hedera payment arrived: 250 credits. This group's pool now "
                                   "has 250 credits available.");
    /* No via: the caller answers itself, nobody is told by the path. */
    c = (struct deposit_credit){.id = "tg:stars:c9",
                                .account = "telegram:6",
                                .credits = 40,
                                .ref = "telegram",
                                .notify = told_cb,
                                .notify_data = &told};
    g = book(&t, &c);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.balance, 40);
    assert_int_equal(told.calls, 1);
    /* A via but no notifier: credited all the same, only logged. */
    c.id = "tg:stars:c10";
    c.via = "card";
    c.notify = NULL;
    g = book(&t, &c);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.balance, 80);
    lt_done(&t);
}

static void test_bad_requests_are_refused_at_once(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct got g = {0};
    struct deposit_credit c = {.id = "x:1", .account = "discord:1", .credits = 10};
    assert_int_equal(deposit_credit(NULL, &c, got_cb, &g), HB_ECANCELED);
    c.credits = 0;
    assert_int_equal(deposit_credit(t.ledger, &c, got_cb, &g), HB_EINVAL);
    c.credits = 10;
    c.id = "";
    assert_int_equal(deposit_credit(t.ledger, &c, got_cb, &g), HB_EINVAL);
    c.id = "x:1";
    c.account = NULL;
    assert_int_equal(deposit_credit(t.ledger, &c, got_cb, &g), HB_EINVAL);
    struct deposit_reversal r = {.id = "x:r", .original = "x:1", .credits = 0};
    assert_int_equal(deposit_reverse(t.ledger, &r, got_cb, &g), HB_EINVAL);
    r.credits = 5;
    assert_int_equal(deposit_reverse(NULL, &r, got_cb, &g), HB_ECANCELED);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    assert_int_equal(g.calls, 0);
    assert_int_equal(lt_balance(&t, LEDGER_SYSTEM_DEPOSITS).posted, 0);
    lt_done(&t);
}

static void test_refund_reverses_once_into_debt(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct deposit_credit c = {
        .id = "stripe:evt_1", .account = "discord:8", .credits = 1000, .ref = "stripe pi_1"};
    struct got g = book(&t, &c);
    assert_int_equal(g.rc, 0);
    /* 700 of it spent. */
    struct lt_res res = {0};
    assert_int_equal(lt_plain(&t, "spend-1", "discord:8", LEDGER_SYSTEM_REVENUE, 700,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    assert_int_equal(res.rc, 0);
    /* Part refunded: covered by what is left. */
    struct deposit_reversal r = {.id = "stripe:evt_2",
                                 .original = "stripe:evt_1",
                                 .credits = 200,
                                 .ref = "stripe charge.refunded pi_1"};
    g = reverse(&t, &r);
    assert_int_equal(g.rc, 0);
    assert_false(g.existed);
    assert_int_equal(g.debt, 0);
    assert_int_equal(lt_balance(&t, "discord:8").posted, 100);
    /* A dispute takes the rest: what was spent becomes debt. */
    r = (struct deposit_reversal){.id = "stripe:evt_3",
                                  .original = "stripe:evt_1",
                                  .credits = 800,
                                  .chargeback = true,
                                  .ref = "stripe dispute"};
    g = reverse(&t, &r);
    assert_int_equal(g.rc, 0);
    assert_false(g.existed);
    assert_int_equal(g.debt, 700);
    assert_int_equal(lt_balance(&t, "discord:8").posted, 0);
    assert_int_equal(lt_balance(&t, "debt:discord:8").posted, -700);
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_transfer_get(t.ledger, "stripe:evt_3", lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.r.transfer.kind, LEDGER_KIND_CHARGEBACK);
    /* The dispute reported again: already reversed, nothing moves. */
    g = reverse(&t, &r);
    assert_int_equal(g.rc, 0);
    assert_true(g.existed);
    assert_int_equal(lt_balance(&t, "discord:8").posted, 0);
    assert_int_equal(lt_balance(&t, "debt:discord:8").posted, -700);
    /* More than was credited is never reversed. */
    r = (struct deposit_reversal){.id = "stripe:evt_4",
                                  .original = "stripe:evt_1",
                                  .credits = 1,
                                  .ref = "stripe charge.refunded pi_1"};
    g = reverse(&t, &r);
    assert_true(g.rc < 0);
    assert_string_equal(g.step, "reverse");
    assert_int_equal(lt_balance(&t, "discord:8").posted, 0);
    assert_int_equal(lt_balance(&t, "debt:discord:8").posted, -700);
    lt_done(&t);
}

/* An adapter that is gone (the process died before the send). */
static int gone_cb(void *data, const struct notify_target *to, const char *text)
{
    (void)data;
    (void)to;
    (void)text;
    return HB_ECANCELED;
}

struct listed {
    bool done;
    int rc;
    size_t n;
    char value[256];
};

static void listed_cb(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct listed *l = data;
    l->done = true;
    l->rc = rc;
    l->n = n;
    if (n > 0)
        snprintf(l->value, sizeof(l->value), "%s", e[0].value != NULL ? e[0].value : "");
}

static struct listed pending(struct lt *t)
{
    struct listed l = {0};
    assert_int_equal(state_list(ledger_store(t->ledger), NOTIFY_NS_PENDING, "", 10, listed_cb, &l),
                     0);
    while (!l.done)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(l.rc, 0);
    return l;
}

/* The notice a payment owes commits with its credit: the process dying
 * between the commit and the send (the adapter never got it) leaves it to
 * the next start, which sends it once (without the balance, which may have
 * moved) and forgets it. A notice an adapter took is not kept. */
static void test_notice_survives_a_kill_after_the_commit(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct deposit_credit c = {.id = "stripe:cs_kill",
                               .account = "discord:77",
                               .credits = 1000,
                               .ref = "stripe session=cs_kill",
                               .method = "stripe",
                               .via = "card",
                               .notify = gone_cb};
    struct got g = book(&t, &c);
    assert_int_equal(g.rc, 0);
    struct listed l = pending(&t);
    assert_int_equal(l.n, 1);
    assert_non_null(strstr(l.value, "\"account\":\"discord:77\""));
    /* The restart. */
    lt_ledger_close(&t);
    lt_ledger_open(&t);
    struct told told = {0};
    assert_int_equal(notify_pending_send(ledger_store(t.ledger), told_cb, &told), 0);
    while (told.calls == 0)
        uv_run(&t.loop, UV_RUN_ONCE);
    assert_int_equal(told.calls, 1);
    assert_string_equal(told.to.user_id, "77");
    assert_string_equal(told.text, "Your card payment arrived: 1,000 credits.");
    assert_int_equal(pending(&t).n, 0);
    /* Told at once: nothing kept. */
    struct told now = {0};
    c.id = "stripe:cs_live";
    c.notify = told_cb;
    c.notify_data = &now;
    g = book(&t, &c);
    assert_int_equal(g.rc, 0);
    assert_int_equal(now.calls, 1);
    assert_int_equal(pending(&t).n, 0);
    lt_done(&t);
}

static void pass_done(void *data)
{
    (*(int *)data)++;
}

/* One pass of notify_pending_retry, run to its end. */
static void retry_pass(struct lt *t, int64_t before, notify_fn fn, void *data)
{
    int passes = 0;
    assert_int_equal(notify_pending_retry(ledger_store(t->ledger), COMMAND_PLATFORM_TELEGRAM,
                                          before, fn, data, pass_done, &passes),
                     0);
    while (passes == 0)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(passes, 1);
}

static void put_done(int rc, const char *value, void *data)
{
    (void)value;
    *(int *)data = rc == 0 ? 1 : -1;
}

/* On a shared ledger the Telegram poller sends the payment notices other
 * daemons booked and could not send: only Telegram members' and groups',
 * only those older than the pass's bound (a younger one is its own
 * daemon's to send), each once; one it cannot send stays, and so does one
 * to another platform. A row kept before rows had a time counts as old. */
static void test_owed_notices_retried_for_one_platform(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    int64_t t0 = t.now;
    static const char *const ids[] = {"stripe:cs_t5", "stripe:cs_d6", "stripe:cs_t7"};
    static const char *const accounts[] = {"telegram:5", "discord:6", "telegram:7"};
    for (size_t i = 0; i < 3; i++) {
        if (i == 2)
            t.now = t0 + 10000; /* the last one, ten seconds later */
        struct deposit_credit c = {.id = ids[i],
                                   .account = accounts[i],
                                   .credits = 1000,
                                   .ref = ids[i],
                                   .method = "stripe",
                                   .via = "card",
                                   .notify = gone_cb}; /* a standby: not sent */
        assert_int_equal(book(&t, &c).rc, 0);
    }
    assert_int_equal(pending(&t).n, 3);
    /* An adapter that cannot send now keeps them all. */
    retry_pass(&t, t0 + 5000, gone_cb, NULL);
    assert_int_equal(pending(&t).n, 3);
    struct told told = {0};
    retry_pass(&t, t0 + 5000, told_cb, &told);
    assert_int_equal(told.calls, 1);
    assert_string_equal(told.to.user_id, "5");
    assert_string_equal(told.text, "Your card payment arrived: 1,000 credits.");
    assert_int_equal(pending(&t).n, 2); /* discord:6, and telegram:7 (too young) */
    retry_pass(&t, t0 + 5000, told_cb, &told);
    assert_int_equal(told.calls, 1);
    /* A row without a time (kept by an older build) is old. */
    int put = 0;
    assert_int_equal(state_put(ledger_store(t.ledger), NOTIFY_NS_PENDING, "old",
                               "{\"account\":\"telegram:8\",\"channel\":\"\",\"via\":\"card\","
                               "\"credits\":5}",
                               put_done, &put),
                     0);
    while (put == 0)
        uv_run(&t.loop, UV_RUN_ONCE);
    assert_int_equal(put, 1);
    retry_pass(&t, t0 + 20000, told_cb, &told);
    assert_int_equal(told.calls, 3); /* telegram:7 now, and telegram:8 */
    struct listed left = pending(&t);
    assert_int_equal(left.n, 1);
    assert_non_null(strstr(left.value, "\"account\":\"discord:6\""));
    lt_done(&t);
}

/* A note commits only with a transfer that applies. */
static void test_note_only_with_its_transfer(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct lt_res res = {0};
    struct ledger_note note = {.ns = NOTIFY_NS_PENDING, .key = "v1", .value = "{}"};
    assert_int_equal(
        ledger_transfer_void_noted(t.ledger, "v1", "no-such-pending", &note, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, HB_ENOTFOUND);
    assert_int_equal(pending(&t).n, 0);
    assert_int_equal(lt_open(&t, "discord:1", 0, 0, &res), 0);
    assert_int_equal(
        lt_plain(&t, "fund", LEDGER_SYSTEM_DEPOSITS, "discord:1", 50, LEDGER_KIND_DEPOSIT, &res),
        0);
    assert_int_equal(lt_reserve(&t, "r1", "discord:1", LEDGER_SYSTEM_REVENUE, 20, 60000, &res), 0);
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_transfer_void_noted(t.ledger, "v1", "r1", &note, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(pending(&t).n, 1);
    lt_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_deposit_id_make),
    cmocka_unit_test(test_notice_survives_a_kill_after_the_commit),
    cmocka_unit_test(test_note_only_with_its_transfer),
    cmocka_unit_test(test_owed_notices_retried_for_one_platform),
    cmocka_unit_test(test_credits_once_per_payment_id),
    cmocka_unit_test(test_pool_and_quiet_deposits),
    cmocka_unit_test(test_bad_requests_are_refused_at_once),
    cmocka_unit_test(test_refund_reverses_once_into_debt),
};

TEST_GROUP_DEFINE(deposit_book, tests, lt_group_setup, lt_group_teardown)
