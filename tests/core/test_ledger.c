/* The ledger's rules, one by one, including every error result. The group
 * `ledger` runs them on SQLite; `ledger_pg` runs the same tests on
 * PostgreSQL (a fresh database each), all but test_names_and_file, which
 * checks the SQLite file's mode and verify of a missing file. */
#include "tests/test.h"

#include "tests/core/ledger_helpers.h"

#include "base/error.h"
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define W1 "discord:1"
#define W2 "telegram:2"
#define POOL "pool:discord:456"
#define DEP LEDGER_SYSTEM_DEPOSITS
#define REV LEDGER_SYSTEM_REVENUE
#define NOOD LEDGER_ACCOUNT_NO_OVERDRAFT

static void assert_verify_ok(struct lt *t)
{
    char *out = NULL;
    int rc = lt_verify_ledger(t, &out);
    if (rc != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(rc, 0);
    free(out);
}

/* A wallet with `amount` deposited. */
static void funded(struct lt *t, const char *wallet, int64_t amount)
{
    struct lt_res res;
    char id[64];
    int rc = lt_open(t, wallet, NOOD, 0, &res);
    assert_true(rc == 0 || rc == HB_EEXISTS);
    snprintf(id, sizeof(id), "dep:%s:%lld", wallet, (long long)amount);
    assert_int_equal(lt_plain(t, id, DEP, wallet, amount, LEDGER_KIND_DEPOSIT, &res), 0);
}

static void test_account_open_bonus(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    assert_int_equal(lt_open(&t, W1, NOOD, 100, &res), 0);
    assert_string_equal(res.r.transfer.id, "bonus:" W1);
    assert_int_equal(lt_balance(&t, W1).posted, 100);
    /* Opening again grants nothing more. */
    assert_int_equal(lt_open(&t, W1, NOOD, 100, &res), HB_EEXISTS);
    assert_int_equal(lt_balance(&t, W1).available, 100);
    assert_int_equal(lt_open(&t, W1, 0, 100, &res), HB_ECONFLICT);
    assert_string_equal(res.field, "flags");
    /* A bonus of 0 opens the account without a transfer. */
    assert_int_equal(lt_open(&t, W2, NOOD, 0, &res), 0);
    assert_int_equal(lt_balance(&t, W2).posted, 0);
    assert_int_equal(lt_balance(&t, LEDGER_SYSTEM_BONUS).posted, -100);
    assert_int_equal(ledger_account_open(t.ledger, "", 0, 0, lt_cb, &res), HB_EINVAL);
    assert_int_equal(ledger_account_open(t.ledger, W1, 0, -1, lt_cb, &res), HB_EINVAL);
    assert_int_equal(ledger_account_open(t.ledger, W1, 0x80, 0, lt_cb, &res), HB_EINVAL);
    assert_verify_ok(&t);
    lt_done(&t);
}

/* A store job that holds the store's thread until released. */
struct held_job {
    struct store_job job;
    uv_sem_t entered, release;
    bool done;
};

static int held_run(struct store_txn *txn, struct store_job *job)
{
    (void)txn;
    struct held_job *h = (struct held_job *)job;
    uv_sem_post(&h->entered);
    uv_sem_wait(&h->release);
    return 0;
}

static void held_done(struct store_job *job, int rc)
{
    (void)rc;
    ((struct held_job *)job)->done = true;
}

static void stop_loop(uv_timer_t *timer)
{
    uv_stop(timer->loop);
}

/* An account the ledger has seen open is opened again without the store
 * (a member's wallet before each generation): answered while the store's
 * thread is busy with something else, never before the call returns, in
 * the order asked, and as the store would answer ("exists", or "conflict"
 * for other flags). An unknown account still waits for the store. */
static void test_account_open_known_without_store(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res, again, other, unknown;
    lt_init(&t, true, false);
    assert_int_equal(lt_open(&t, W1, NOOD, 100, &res), 0);

    struct held_job h = {.job = {.run = held_run, .done = held_done}};
    assert_int_equal(uv_sem_init(&h.entered, 0), 0);
    assert_int_equal(uv_sem_init(&h.release, 0), 0);
    assert_int_equal(store_submit(ledger_store(t.ledger), &h.job), 0);
    uv_sem_wait(&h.entered); /* the store's thread is held from here */

    memset(&again, 0, sizeof(again));
    memset(&other, 0, sizeof(other));
    memset(&unknown, 0, sizeof(unknown));
    assert_int_equal(ledger_account_open(t.ledger, W1, NOOD, 100, lt_cb, &again), 0);
    assert_int_equal(ledger_account_open(t.ledger, W1, 0, 100, lt_cb, &other), 0);
    assert_int_equal(ledger_account_open(t.ledger, W2, NOOD, 100, lt_cb, &unknown), 0);
    assert_false(again.done); /* never from inside the call */
    uv_timer_t guard;
    uv_timer_init(&t.loop, &guard);
    uv_timer_start(&guard, stop_loop, 2000, 0);
    while (!(again.done && other.done) && uv_timer_get_due_in(&guard) > 0)
        uv_run(&t.loop, UV_RUN_ONCE);
    assert_true(again.done);
    assert_int_equal(again.rc, HB_EEXISTS);
    assert_true(other.done);
    assert_int_equal(other.rc, HB_ECONFLICT);
    assert_string_equal(other.field, "flags");
    assert_false(unknown.done); /* behind the held job */
    assert_false(h.done);

    uv_sem_post(&h.release);
    lt_wait(&t, &unknown);
    assert_int_equal(unknown.rc, 0);
    assert_int_equal(lt_balance(&t, W1).posted, 100); /* one bonus */
    assert_int_equal(lt_balance(&t, W2).posted, 100);
    /* Asked just before the ledger closes: still called back. */
    memset(&again, 0, sizeof(again));
    assert_int_equal(ledger_account_open(t.ledger, W2, NOOD, 100, lt_cb, &again), 0);
    uv_close((uv_handle_t *)&guard, NULL);
    lt_done(&t);
    assert_true(again.done);
    assert_int_equal(again.rc, HB_EEXISTS);
    uv_sem_destroy(&h.entered);
    uv_sem_destroy(&h.release);
}

/* A transfer newly applied says its debit account's balance after it (the
 * charge of a generation needs no second read); a replay does not. */
static void test_transfer_says_debit_balance(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    assert_int_equal(lt_open(&t, W1, NOOD, 100, &res), 0);
    assert_int_equal(lt_reserve(&t, "bal:r", W1, REV, 30, 60000, &res), 0);
    assert_true(res.r.debit_balance);
    assert_int_equal(res.r.balance.available, 70);
    assert_int_equal(res.r.balance.pending_debits, 30);
    assert_int_equal(lt_post(&t, "bal:p", "bal:r", 20, &res), 0);
    assert_true(res.r.debit_balance);
    assert_int_equal(res.r.balance.posted, 80);
    assert_int_equal(res.r.balance.available, 80);
    assert_int_equal(res.r.balance.pending_debits, 0);
    assert_int_equal(lt_balance(&t, W1).available, 80);
    assert_int_equal(lt_post(&t, "bal:p", "bal:r", 20, &res), HB_EEXISTS);
    assert_false(res.r.debit_balance);
    assert_int_equal(lt_plain(&t, "bal:x", W1, REV, 5, LEDGER_KIND_GENERATION, &res), 0);
    assert_true(res.r.debit_balance);
    assert_int_equal(res.r.balance.posted, 75);
    lt_done(&t);
}

static void test_funds_and_unknown_accounts(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    funded(&t, W1, 50);
    assert_int_equal(lt_plain(&t, "gen1", W1, REV, 60, LEDGER_KIND_GENERATION, &res), HB_EFUNDS);
    assert_string_equal(res.r.account, W1);
    assert_int_equal(lt_plain(&t, "gen1", W1, REV, 50, LEDGER_KIND_GENERATION, &res), 0);
    struct ledger_balance b = lt_balance(&t, W1);
    assert_int_equal(b.posted, 0);
    assert_int_equal(b.available, 0);
    assert_int_equal(lt_plain(&t, "x1", W1, "discord:404", 1, LEDGER_KIND_TRANSFER, &res),
                     HB_ENOTFOUND);
    assert_string_equal(res.r.account, "discord:404");
    assert_int_equal(lt_plain(&t, "x2", "discord:404", W1, 1, LEDGER_KIND_TRANSFER, &res),
                     HB_ENOTFOUND);
    assert_string_equal(res.r.account, "discord:404");
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_balance_get(t.ledger, "discord:404", lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, HB_ENOTFOUND);
    /* A system account may go negative: it stands for outside money. */
    assert_int_equal(lt_balance(&t, DEP).posted, -50);
    assert_verify_ok(&t);
    lt_done(&t);
}

static void test_invalid_requests(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    char longid[200];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    lt_init(&t, true, false);
    struct ledger_transfer ok = {
        .id = "a", .debit = DEP, .credit = REV, .amount = 1, .kind = LEDGER_KIND_DEPOSIT};
    struct ledger_transfer bad[12];
    for (size_t i = 0; i < 12; i++)
        bad[i] = ok;
    bad[0].amount = 0;
    bad[1].amount = -5;
    bad[2].credit = DEP;
    bad[3].id = "";
    bad[4].id = longid;
    bad[5].kind = 0;
    bad[6].kind = 99;
    bad[7].flags = LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_POST;
    bad[8].flags = LEDGER_TRANSFER_POST; /* no pending_id */
    bad[9].timeout_ms = 10;              /* a timeout on a plain transfer */
    bad[10].debit = NULL;
    bad[11].pending_id = "p"; /* pending_id on a plain transfer */
    for (size_t i = 0; i < 12; i++)
        assert_int_equal(ledger_transfer_create(t.ledger, &bad[i], lt_cb, &res), HB_EINVAL);
    assert_int_equal(ledger_transfer_post(t.ledger, "p1", "x", 0, lt_cb, &res), HB_EINVAL);
    assert_int_equal(ledger_batch_create(t.ledger, bad, 2, lt_cb, &res), HB_EINVAL);
    assert_int_equal(ledger_batch_create(t.ledger, bad, 0, lt_cb, &res), HB_EINVAL);
    assert_int_equal(ledger_history_get(t.ledger, W1, 0, 0, lt_cb, &res), HB_EINVAL);
    assert_int_equal(ledger_usage_get(t.ledger, NULL, 10, 5, lt_cb, &res), HB_EINVAL);
    assert_int_equal(
        ledger_transfer_reverse(t.ledger, "r", "o", 1, LEDGER_KIND_BONUS, "", lt_cb, &res),
        HB_EINVAL);
    assert_int_equal(lt_transfer(&t, &ok, &res), 0);
    lt_done(&t);
}

static void test_idempotency(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    funded(&t, W1, 100);
    struct ledger_transfer tr = {.id = "interaction:77",
                                 .debit = W1,
                                 .credit = REV,
                                 .amount = 10,
                                 .kind = LEDGER_KIND_GENERATION,
                                 .ref = "cmd",
                                 .tag = "model-a"};
    assert_int_equal(lt_transfer(&t, &tr, &res), 0);
    uint64_t seq = res.r.transfer.seq;
    assert_int_equal(lt_transfer(&t, &tr, &res), HB_EEXISTS);
    assert_int_equal(res.r.transfer.seq, seq);
    assert_int_equal(lt_balance(&t, W1).posted, 90);
    struct {
        struct ledger_transfer tr;
        const char *field;
    } cases[7];
    for (size_t i = 0; i < 7; i++)
        cases[i].tr = tr;
    cases[0].tr.amount = 11, cases[0].field = "amount";
    cases[1].tr.credit = LEDGER_SYSTEM_GRANTS, cases[1].field = "credit";
    cases[2].tr.debit = DEP, cases[2].field = "debit";
    cases[3].tr.kind = LEDGER_KIND_GRANT, cases[3].field = "kind";
    cases[4].tr.ref = "other", cases[4].field = "ref";
    cases[5].tr.tag = "model-b", cases[5].field = "tag";
    cases[6].tr.flags = LEDGER_TRANSFER_PENDING, cases[6].field = "flags";
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(lt_transfer(&t, &cases[i].tr, &res), HB_ECONFLICT);
        assert_string_equal(res.field, cases[i].field);
    }
    /* A pending transfer's timeout is one of its fields. */
    assert_int_equal(lt_reserve(&t, "res:1", W1, REV, 5, 1000, &res), 0);
    t.now += 10;
    assert_int_equal(lt_reserve(&t, "res:1", W1, REV, 5, 1000, &res), HB_EEXISTS);
    assert_int_equal(lt_reserve(&t, "res:1", W1, REV, 5, 2000, &res), HB_ECONFLICT);
    assert_string_equal(res.field, "timeout");
    assert_int_equal(lt_balance(&t, W1).posted, 90);
    assert_int_equal(lt_balance(&t, W1).available, 85);
    assert_verify_ok(&t);
    lt_done(&t);
}

static void test_two_phase(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    funded(&t, W1, 100);
    assert_int_equal(lt_reserve(&t, "r1", W1, REV, 80, 60000, &res), 0);
    struct ledger_balance b = lt_balance(&t, W1);
    assert_int_equal(b.posted, 100);
    assert_int_equal(b.pending_debits, 80);
    assert_int_equal(b.available, 20);
    assert_int_equal(lt_balance(&t, REV).pending_credits, 80);
    /* The funds check counts what is reserved. */
    assert_int_equal(lt_reserve(&t, "r2", W1, REV, 30, 60000, &res), HB_EFUNDS);
    assert_int_equal(lt_plain(&t, "p2", W1, REV, 30, LEDGER_KIND_GENERATION, &res), HB_EFUNDS);
    /* Post less than reserved: the rest is released. */
    assert_int_equal(lt_post(&t, "r1:post", "r1", 90, &res), HB_EINVAL);
    assert_string_equal(res.field, "amount");
    assert_int_equal(lt_post(&t, "r1:post", "r1", 50, &res), 0);
    assert_int_equal(res.r.transfer.flags, LEDGER_TRANSFER_POST);
    assert_string_equal(res.r.transfer.tag, "model-a");
    b = lt_balance(&t, W1);
    assert_int_equal(b.posted, 50);
    assert_int_equal(b.pending_debits, 0);
    assert_int_equal(b.available, 50);
    assert_int_equal(lt_balance(&t, REV).posted, 50);
    /* It resolves exactly once. */
    assert_int_equal(lt_post(&t, "r1:post", "r1", 50, &res), HB_EEXISTS);
    assert_int_equal(lt_post(&t, "r1:post", "r1", 40, &res), HB_ECONFLICT);
    assert_string_equal(res.field, "amount");
    assert_int_equal(lt_post(&t, "r1:post2", "r1", 10, &res), HB_ESTATE);
    assert_string_equal(res.reason, "posted");
    assert_int_equal(lt_void(&t, "r1:void", "r1", &res), HB_ESTATE);
    assert_string_equal(res.reason, "posted");
    /* Void releases everything; a post after it is refused. */
    assert_int_equal(lt_reserve(&t, "r3", W1, REV, 40, 0, &res), 0);
    assert_int_equal(res.r.transfer.expires_at, 0);
    assert_int_equal(lt_balance(&t, W1).available, 10);
    assert_int_equal(lt_void(&t, "r3:void", "r3", &res), 0);
    assert_int_equal(res.r.transfer.amount, 40);
    assert_int_equal(lt_balance(&t, W1).available, 50);
    assert_int_equal(lt_post(&t, "r3:post", "r3", 40, &res), HB_ESTATE);
    assert_string_equal(res.reason, "voided");
    /* Resolving what is not a reservation. */
    assert_int_equal(lt_post(&t, "x:post", "nope", 1, &res), HB_ENOTFOUND);
    assert_string_equal(res.field, "pending_id");
    assert_int_equal(lt_post(&t, "x:post", "dep:" W1 ":100", 1, &res), HB_ESTATE);
    assert_string_equal(res.reason, "not pending");
    /* A post that names different accounts than the reservation. */
    assert_int_equal(lt_reserve(&t, "r4", W1, REV, 5, 0, &res), 0);
    struct ledger_transfer wrong = {.id = "r4:post",
                                    .debit = W2,
                                    .amount = 5,
                                    .flags = LEDGER_TRANSFER_POST,
                                    .pending_id = "r4"};
    assert_int_equal(lt_transfer(&t, &wrong, &res), HB_EINVAL);
    assert_string_equal(res.field, "debit");
    assert_verify_ok(&t);
    lt_done(&t);
}

/* A void's guard: count one on "void.count", or fail when told to. */
static int void_guard(struct store_txn *txn, void *data)
{
    const bool *fail = data;
    if (*fail)
        return HB_ELIMIT;
    return store_txn_counter_add(txn, "void.count", 0, 1, 0, NULL);
}

static int void_count_read(struct store_txn *txn, void *data)
{
    return store_txn_counter_get(txn, "void.count", 0, data);
}

/* A void carries a guard (a failed job's counts go back with it): its
 * writes commit with the void, and a guard that fails fails the void,
 * which leaves the reservation as it was. A replay runs no guard. (A post
 * takes one only through ledger_transfer_post_split: test_limits.c.) */
static void test_void_guard(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    funded(&t, W1, 100);
    assert_int_equal(lt_reserve(&t, "g1", W1, REV, 30, 60000, &res), 0);
    bool fail = true;
    struct ledger_transfer v = {.id = "g1:void",
                                .pending_id = "g1",
                                .flags = LEDGER_TRANSFER_VOID,
                                .guard = void_guard,
                                .guard_data = &fail};
    assert_int_equal(lt_transfer(&t, &v, &res), HB_ELIMIT);
    assert_int_equal(lt_balance(&t, W1).pending_debits, 30);
    fail = false;
    assert_int_equal(lt_transfer(&t, &v, &res), 0);
    assert_int_equal(lt_balance(&t, W1).available, 100);
    assert_int_equal(lt_transfer(&t, &v, &res), HB_EEXISTS);
    int64_t n = -1;
    assert_int_equal(lt_store_run(&t, void_count_read, &n), 0);
    assert_int_equal(n, 1);
    assert_verify_ok(&t);
    lt_done(&t);
}

static void test_expiry(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    funded(&t, W1, 100);
    assert_int_equal(lt_reserve(&t, "r1", W1, REV, 70, 1000, &res), 0);
    assert_int_equal(res.r.transfer.expires_at, t.now + 1000);
    t.now += 999;
    assert_int_equal(lt_expire(&t, &res), 0);
    assert_int_equal(res.r.expired, 0);
    t.now += 1;
    /* Expired but not yet voided: posting is refused all the same. */
    assert_int_equal(lt_post(&t, "r1:post", "r1", 70, &res), HB_ESTATE);
    assert_string_equal(res.reason, "expired");
    assert_int_equal(lt_expire(&t, &res), 0);
    assert_int_equal(res.r.expired, 1);
    assert_int_equal(lt_balance(&t, W1).available, 100);
    assert_int_equal(lt_post(&t, "r1:post", "r1", 70, &res), HB_ESTATE);
    assert_string_equal(res.reason, "expired");
    assert_int_equal(lt_void(&t, "r1:void", "r1", &res), HB_ESTATE);
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_transfer_get(t.ledger, "expire:r1", lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.r.transfer.flags, LEDGER_TRANSFER_VOID | LEDGER_TRANSFER_EXPIRED);
    assert_int_equal(lt_expire(&t, &res), 0);
    assert_int_equal(res.r.expired, 0);
    assert_verify_ok(&t);
    lt_done(&t);
}

static void test_expiry_at_start(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    funded(&t, W1, 100);
    assert_int_equal(lt_reserve(&t, "r1", W1, REV, 30, 5000, &res), 0);
    assert_int_equal(lt_reserve(&t, "r2", W1, REV, 30, 50000, &res), 0);
    lt_ledger_close(&t);
    t.now += 10000;
    lt_ledger_open(&t);
    /* r1 was voided while opening; r2 still holds. */
    assert_int_equal(lt_balance(&t, W1).available, 70);
    assert_int_equal(lt_post(&t, "r1:post", "r1", 30, &res), HB_ESTATE);
    assert_string_equal(res.reason, "expired");
    assert_int_equal(lt_post(&t, "r2:post", "r2", 30, &res), 0);
    assert_verify_ok(&t);
    lt_done(&t);
}

static void test_expiry_timer(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, true);
    funded(&t, W1, 100);
    assert_int_equal(lt_reserve(&t, "r1", W1, REV, 30, 40, &res), 0);
    assert_int_equal(lt_reserve(&t, "r2", W1, REV, 30, 80, &res), 0);
    assert_int_equal(lt_balance(&t, W1).available, 40);
    uint64_t deadline = test_now_ms() + 5000;
    while (lt_balance(&t, W1).available != 100 && test_now_ms() < deadline)
        uv_run(&t.loop, UV_RUN_NOWAIT), usleep(5000);
    assert_int_equal(lt_balance(&t, W1).available, 100);
    assert_verify_ok(&t);
    lt_done(&t);
}

static void test_batch(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    funded(&t, W1, 10);
    assert_int_equal(lt_open(&t, POOL, NOOD, 0, &res), 0);
    struct ledger_transfer b[3] = {
        {.id = "b1", .debit = DEP, .credit = W1, .amount = 5, .kind = LEDGER_KIND_DEPOSIT},
        {.id = "b2", .debit = W1, .credit = POOL, .amount = 15, .kind = LEDGER_KIND_TRANSFER},
        {.id = "b3", .debit = POOL, .credit = REV, .amount = 20, .kind = LEDGER_KIND_GENERATION},
    };
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_batch_create(t.ledger, b, 3, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, HB_EFUNDS);
    assert_int_equal(res.r.index, 2);
    assert_string_equal(res.r.account, POOL);
    /* None applied. */
    assert_int_equal(lt_balance(&t, W1).posted, 10);
    assert_int_equal(lt_balance(&t, POOL).posted, 0);
    b[2].amount = 12;
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_batch_create(t.ledger, b, 3, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(lt_balance(&t, W1).posted, 0);
    assert_int_equal(lt_balance(&t, POOL).posted, 3);
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_batch_create(t.ledger, b, 3, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, HB_EEXISTS);
    /* A conflicting member fails the whole batch and is named. */
    struct ledger_transfer c[2] = {
        {.id = "c1", .debit = DEP, .credit = W1, .amount = 5, .kind = LEDGER_KIND_DEPOSIT},
        {.id = "b1", .debit = DEP, .credit = W1, .amount = 6, .kind = LEDGER_KIND_DEPOSIT},
    };
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_batch_create(t.ledger, c, 2, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, HB_ECONFLICT);
    assert_int_equal(res.r.index, 1);
    assert_string_equal(res.field, "amount");
    assert_int_equal(lt_balance(&t, W1).posted, 0);
    assert_verify_ok(&t);
    lt_done(&t);
}

static void test_reversal_and_debt(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    assert_int_equal(lt_open(&t, W1, NOOD, 0, &res), 0);
    assert_int_equal(lt_plain(&t, "pay:1", DEP, W1, 100, LEDGER_KIND_DEPOSIT, &res), 0);
    assert_int_equal(lt_plain(&t, "gen:1", W1, REV, 70, LEDGER_KIND_GENERATION, &res), 0);
    /* Refund part of a generation: back from revenue to the wallet. */
    assert_int_equal(lt_reverse(&t, "refund:1", "gen:1", 20, LEDGER_KIND_REFUND, &res), 0);
    assert_int_equal(res.r.debt, 0);
    assert_int_equal(lt_balance(&t, W1).posted, 50);
    assert_int_equal(lt_reverse(&t, "refund:2", "gen:1", 51, LEDGER_KIND_REFUND, &res), HB_EINVAL);
    assert_string_equal(res.field, "amount");
    /* A chargeback of the payment: 50 is left, 50 becomes debt. */
    assert_int_equal(lt_reverse(&t, "cb:1", "pay:1", 100, LEDGER_KIND_CHARGEBACK, &res), 0);
    assert_int_equal(res.r.debt, 50);
    assert_int_equal(res.r.transfer.amount, 50);
    assert_int_equal(lt_balance(&t, W1).posted, 0);
    assert_int_equal(lt_balance(&t, "debt:" W1).posted, -50);
    assert_int_equal(lt_balance(&t, DEP).posted, 0);
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_transfer_get(t.ledger, "cb:1:debt", lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, 0);
    assert_string_equal(res.r.transfer.debit, "debt:" W1);
    assert_int_equal(res.r.transfer.flags, LEDGER_TRANSFER_REVERSAL | LEDGER_TRANSFER_DEBT);
    /* Replays and conflicts. */
    assert_int_equal(lt_reverse(&t, "cb:1", "pay:1", 100, LEDGER_KIND_CHARGEBACK, &res),
                     HB_EEXISTS);
    assert_int_equal(res.r.debt, 50);
    assert_int_equal(lt_reverse(&t, "cb:1", "pay:1", 90, LEDGER_KIND_CHARGEBACK, &res),
                     HB_ECONFLICT);
    assert_string_equal(res.field, "amount");
    assert_int_equal(lt_reverse(&t, "cb:1", "gen:1", 100, LEDGER_KIND_CHARGEBACK, &res),
                     HB_ECONFLICT);
    assert_string_equal(res.field, "original_id");
    assert_int_equal(lt_reverse(&t, "gen:1", "pay:1", 1, LEDGER_KIND_CHARGEBACK, &res),
                     HB_ECONFLICT);
    assert_string_equal(res.field, "flags");
    assert_int_equal(lt_reverse(&t, "cb:2", "pay:1", 1, LEDGER_KIND_CHARGEBACK, &res), HB_ESTATE);
    assert_string_equal(res.reason, "reversed");
    assert_int_equal(lt_reverse(&t, "cb:3", "nope", 1, LEDGER_KIND_CHARGEBACK, &res), HB_ENOTFOUND);
    assert_string_equal(res.field, "original_id");
    assert_int_equal(lt_reverse(&t, "cb:4", "refund:1", 1, LEDGER_KIND_REVERSAL, &res), HB_ESTATE);
    assert_string_equal(res.reason, "not reversible");
    /* Entirely spent: the whole reversal goes to debt, under its own id. */
    assert_int_equal(lt_plain(&t, "pay:2", DEP, W1, 10, LEDGER_KIND_DEPOSIT, &res), 0);
    assert_int_equal(lt_plain(&t, "gen:2", W1, REV, 10, LEDGER_KIND_GENERATION, &res), 0);
    assert_int_equal(lt_reverse(&t, "cb:5", "pay:2", 10, LEDGER_KIND_CHARGEBACK, &res), 0);
    assert_int_equal(res.r.debt, 10);
    assert_string_equal(res.r.transfer.id, "cb:5");
    assert_int_equal(lt_reverse(&t, "cb:5", "pay:2", 10, LEDGER_KIND_CHARGEBACK, &res), HB_EEXISTS);
    assert_int_equal(lt_balance(&t, "debt:" W1).posted, -60);
    /* Pending transfers are voided, not reversed. */
    assert_int_equal(lt_plain(&t, "pay:3", DEP, W1, 10, LEDGER_KIND_DEPOSIT, &res), 0);
    assert_int_equal(lt_reserve(&t, "r1", W1, REV, 5, 0, &res), 0);
    assert_int_equal(lt_reverse(&t, "cb:6", "r1", 5, LEDGER_KIND_REFUND, &res), HB_ESTATE);
    assert_verify_ok(&t);
    lt_done(&t);
}

static void test_queries(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    lt_init(&t, true, false);
    funded(&t, W1, 1000);
    funded(&t, W2, 1000);
    const int64_t day = 86400000;
    const int64_t day0 = t.now / day;
    /* Day 0: two generations on model-a, one on model-b; day 1: one more. */
    struct ledger_transfer g = {.debit = W1, .credit = REV, .kind = LEDGER_KIND_GENERATION};
    g.id = "g1", g.amount = 10, g.tag = "model-a";
    assert_int_equal(lt_transfer(&t, &g, &res), 0);
    g.id = "g2", g.amount = 15, g.tag = "model-a";
    assert_int_equal(lt_transfer(&t, &g, &res), 0);
    g.id = "g3", g.amount = 7, g.tag = "model-b", g.debit = W2;
    assert_int_equal(lt_transfer(&t, &g, &res), 0);
    /* A reservation counts only as what is posted. */
    assert_int_equal(lt_reserve(&t, "g4", W1, REV, 50, 0, &res), 0);
    assert_int_equal(lt_post(&t, "g4:post", "g4", 20, &res), 0);
    assert_int_equal(lt_reserve(&t, "g5", W1, REV, 50, 0, &res), 0);
    assert_int_equal(lt_void(&t, "g5:void", "g5", &res), 0);
    t.now += day;
    g.id = "g6", g.amount = 3, g.tag = "model-b", g.debit = W1;
    assert_int_equal(lt_transfer(&t, &g, &res), 0);

    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_usage_get(t.ledger, NULL, day0 * day, (day0 + 2) * day, lt_cb, &res),
                     0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.usage_count, 3);
    assert_int_equal(res.usage[0].day, day0);
    assert_string_equal(res.usage[0].tag, "model-a");
    assert_int_equal(res.usage[0].amount, 45);
    assert_int_equal(res.usage[0].count, 3);
    assert_string_equal(res.usage[1].tag, "model-b");
    assert_int_equal(res.usage[1].amount, 7);
    assert_int_equal(res.usage[2].day, day0 + 1);
    assert_int_equal(res.usage[2].amount, 3);
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_usage_get(t.ledger, W2, day0 * day, (day0 + 1) * day, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.usage_count, 1);
    assert_int_equal(res.usage[0].amount, 7);

    /* History, newest first, in pages. */
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_history_get(t.ledger, W1, 0, 3, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.history_count, 3);
    assert_string_equal(res.history[0].id, "g6");
    assert_string_equal(res.history[1].id, "g5:void");
    assert_string_equal(res.history[2].id, "g5");
    uint64_t before = res.history[2].seq;
    size_t total = 3;
    for (;;) {
        memset(&res, 0, sizeof(res));
        assert_int_equal(ledger_history_get(t.ledger, W1, before, 3, lt_cb, &res), 0);
        lt_wait(&t, &res);
        if (res.history_count == 0)
            break;
        for (size_t i = 0; i < res.history_count; i++) {
            assert_true(res.history[i].seq < before);
            assert_true(strcmp(res.history[i].debit, W1) == 0 ||
                        strcmp(res.history[i].credit, W1) == 0);
            before = res.history[i].seq;
        }
        total += res.history_count;
    }
    /* dep, g1, g2, g4, g4:post, g5, g5:void, g6 */
    assert_int_equal(total, 8);

    /* The head. */
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_head_get(t.ledger, lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.r.head_seq, 10);
    uint8_t head_hash[STORE_HASH_SIZE];
    memcpy(head_hash, res.r.head_hash, sizeof(head_hash));
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_transfer_get(t.ledger, "g6", lt_cb, &res), 0);
    lt_wait(&t, &res);
    assert_memory_equal(res.r.transfer.hash, head_hash, STORE_HASH_SIZE);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct store_options so = {.backend = t.opts.backend, .path = t.opts.path, .url = t.opts.url};
    assert_int_equal(lt_backend == STORE_BACKEND_SQLITE ? ledger_head_file(t.path, f)
                                                        : ledger_head_store(&so, f),
                     0);
    fclose(f);
    char want[128] = "seq=10 hash=";
    for (size_t i = 0; i < STORE_HASH_SIZE; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%02x", head_hash[i]);
    strcat(want, "\n");
    assert_string_equal(buf, want);
    free(buf);
    assert_verify_ok(&t);
    lt_done(&t);
}

/* Many operations queued at once share transactions; one failing among
 * them changes nothing for the others. */
static void test_group_commit(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    enum { N = 600 };
    static struct lt_res results[N];
    lt_init(&t, true, false);
    funded(&t, W1, 100);
    memset(results, 0, sizeof(results));
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "spend:%d", i);
        /* Each spends 1 of the 100 credits: the 101st and later fail. */
        struct ledger_transfer tr = {
            .id = id, .debit = W1, .credit = REV, .amount = 1, .kind = LEDGER_KIND_GENERATION};
        assert_int_equal(ledger_transfer_create(t.ledger, &tr, lt_cb, &results[i]), 0);
    }
    for (int i = 0; i < N; i++)
        lt_wait(&t, &results[i]);
    for (int i = 0; i < N; i++)
        assert_int_equal(results[i].rc, i < 100 ? 0 : HB_EFUNDS);
    assert_int_equal(lt_balance(&t, W1).posted, 0);
    (void)res;
    assert_verify_ok(&t);
    lt_done(&t);
}

/* Jobs of one batch that wrote accounts and then failed (a split whose
 * share id was taken: the post's sums were written, then rolled back)
 * among jobs that read the same accounts next: each reads what the
 * database holds after the rollback, never what the failed job wrote. The
 * sums then match the history (verify) and the balances the successes. */
static void test_batch_rollback_accounts(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    enum { N = 40 };
    static struct lt_res posts[N], plains[N];
    lt_init(&t, true, false);
    funded(&t, W1, 1000);
    funded(&t, W2, 1000);
    char id[48], pid[48];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "p%d:s0", i); /* the share's id, taken */
        assert_int_equal(lt_plain(&t, id, W2, REV, 1, LEDGER_KIND_GENERATION, &res), 0);
        snprintf(id, sizeof(id), "r%d", i);
        assert_int_equal(lt_reserve(&t, id, W1, REV, 5, 60000, &res), 0);
    }
    memset(posts, 0, sizeof(posts));
    memset(plains, 0, sizeof(plains));
    struct ledger_share share = {.account = "system:developers", .amount = 5};
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        snprintf(pid, sizeof(pid), "p%d", i);
        struct ledger_transfer post = {.id = pid, .pending_id = id, .amount = 5};
        assert_int_equal(
            ledger_transfer_post_split(t.ledger, &post, &share, 1, NULL, lt_cb, &posts[i]), 0);
        snprintf(id, sizeof(id), "x%d", i);
        struct ledger_transfer tr = {
            .id = id, .debit = W1, .credit = REV, .amount = 1, .kind = LEDGER_KIND_GENERATION};
        assert_int_equal(ledger_transfer_create(t.ledger, &tr, lt_cb, &plains[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        lt_wait(&t, &posts[i]);
        lt_wait(&t, &plains[i]);
        assert_int_equal(posts[i].rc, HB_ECONFLICT);
        assert_int_equal(plains[i].rc, 0);
    }
    struct ledger_balance b = lt_balance(&t, W1);
    assert_int_equal(b.posted, 1000 - N);
    assert_int_equal(b.pending_debits, 5 * N);
    assert_int_equal(lt_balance(&t, REV).posted, 2 * N);
    assert_verify_ok(&t);
    lt_done(&t);
}

/* A failed job that opened an account (a split's first share to a new
 * account, then its second share's id taken) leaves no account behind in
 * the batch either: a later split to the same new account in that batch
 * opens it again, and its credits are there. */
static void test_batch_rollback_opened(void **state)
{
    (void)state;
    struct lt t;
    struct lt_res res;
    enum { N = 30 };
    static struct lt_res bad[N], good[N];
    lt_init(&t, true, false);
    funded(&t, W1, 1000);
    funded(&t, W2, 1000);
    char id[48], pid[48], acct[48];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "bad%d:s1", i); /* the second share's id, taken */
        assert_int_equal(lt_plain(&t, id, W2, REV, 1, LEDGER_KIND_GENERATION, &res), 0);
        snprintf(id, sizeof(id), "rb%d", i);
        assert_int_equal(lt_reserve(&t, id, W1, REV, 5, 60000, &res), 0);
        snprintf(id, sizeof(id), "rg%d", i);
        assert_int_equal(lt_reserve(&t, id, W1, REV, 5, 60000, &res), 0);
    }
    memset(bad, 0, sizeof(bad));
    memset(good, 0, sizeof(good));
    for (int i = 0; i < N; i++) {
        snprintf(acct, sizeof(acct), "system:new:%d", i);
        struct ledger_share two[2] = {{.account = acct, .amount = 2},
                                      {.account = "system:developers", .amount = 3}};
        snprintf(id, sizeof(id), "rb%d", i);
        snprintf(pid, sizeof(pid), "bad%d", i);
        struct ledger_transfer post = {.id = pid, .pending_id = id, .amount = 5};
        assert_int_equal(ledger_transfer_post_split(t.ledger, &post, two, 2, NULL, lt_cb, &bad[i]),
                         0);
        snprintf(id, sizeof(id), "rg%d", i);
        snprintf(pid, sizeof(pid), "good%d", i);
        struct ledger_transfer ok = {.id = pid, .pending_id = id, .amount = 5};
        assert_int_equal(ledger_transfer_post_split(t.ledger, &ok, two, 2, NULL, lt_cb, &good[i]),
                         0);
    }
    for (int i = 0; i < N; i++) {
        lt_wait(&t, &bad[i]);
        lt_wait(&t, &good[i]);
        assert_int_equal(bad[i].rc, HB_ECONFLICT);
        assert_int_equal(good[i].rc, 0);
        snprintf(acct, sizeof(acct), "system:new:%d", i);
        assert_int_equal(lt_balance(&t, acct).posted, 2);
    }
    assert_int_equal(lt_balance(&t, "system:developers").posted, 3 * N);
    assert_verify_ok(&t);
    lt_done(&t);
}

static void test_names_and_file(void **state)
{
    (void)state;
    char buf[STORE_ID_SIZE];
    char longname[200];
    memset(longname, '9', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(ledger_wallet_name(buf, sizeof(buf), "discord", "123"), 0);
    assert_string_equal(buf, "discord:123");
    assert_int_equal(ledger_pool_name(buf, sizeof(buf), "telegram", "-100123"), 0);
    assert_string_equal(buf, "pool:telegram:-100123");
    assert_int_equal(ledger_wallet_name(buf, sizeof(buf), "console", ""), HB_EINVAL);
    assert_int_equal(ledger_pool_name(buf, sizeof(buf), "discord", longname), HB_EINVAL);
    assert_int_equal(ledger_wallet_name(buf, 4, "discord", "123"), HB_EINVAL);

    struct lt t;
    lt_init(&t, false, false);
    struct stat st;
    assert_int_equal(stat(t.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    lt_done(&t);
    char *out = NULL;
    assert_true(lt_verify("/nonexistent/ledger.db", &out) < 0);
    assert_non_null(strstr(out, "cannot check"));
    free(out);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_account_open_bonus),
    cmocka_unit_test(test_account_open_known_without_store),
    cmocka_unit_test(test_transfer_says_debit_balance),
    cmocka_unit_test(test_funds_and_unknown_accounts),
    cmocka_unit_test(test_invalid_requests),
    cmocka_unit_test(test_idempotency),
    cmocka_unit_test(test_two_phase),
    cmocka_unit_test(test_void_guard),
    cmocka_unit_test(test_expiry),
    cmocka_unit_test(test_expiry_at_start),
    cmocka_unit_test(test_expiry_timer),
    cmocka_unit_test(test_batch),
    cmocka_unit_test(test_reversal_and_debt),
    cmocka_unit_test(test_queries),
    cmocka_unit_test(test_group_commit),
    cmocka_unit_test(test_batch_rollback_accounts),
    cmocka_unit_test(test_batch_rollback_opened),
    cmocka_unit_test(test_names_and_file),
};

TEST_GROUP_DEFINE(ledger, tests, lt_group_setup, lt_group_teardown)

static const struct CMUnitTest pg_tests[] = {
    cmocka_unit_test(test_account_open_bonus),
    cmocka_unit_test(test_account_open_known_without_store),
    cmocka_unit_test(test_transfer_says_debit_balance),
    cmocka_unit_test(test_funds_and_unknown_accounts),
    cmocka_unit_test(test_invalid_requests),
    cmocka_unit_test(test_idempotency),
    cmocka_unit_test(test_two_phase),
    cmocka_unit_test(test_void_guard),
    cmocka_unit_test(test_expiry),
    cmocka_unit_test(test_expiry_at_start),
    cmocka_unit_test(test_expiry_timer),
    cmocka_unit_test(test_batch),
    cmocka_unit_test(test_reversal_and_debt),
    cmocka_unit_test(test_queries),
    cmocka_unit_test(test_group_commit),
    cmocka_unit_test(test_batch_rollback_accounts),
    cmocka_unit_test(test_batch_rollback_opened),
};

TEST_GROUP_DEFINE(ledger_pg, pg_tests, lt_group_setup_pg, lt_group_teardown)
