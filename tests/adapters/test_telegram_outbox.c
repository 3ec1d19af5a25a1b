/* The Telegram outbox shared by two pollers of one ledger: a daemon that
 * lost its lease and the one that took it over both write rows for what
 * they still owe. The group `telegram_outbox`. */
#include "tests/adapters/test_telegram.h"

#include "base/clock.h"
#include "core/cluster.h"
#include "core/ledger.h"
#include "core/notify.h"
#include "storage/store_backend.h"
#include "tests/storage/store_db.h"

static void tob_notice(struct adapter *a, const char *user, const char *text)
{
    struct notify_target to = {.platform = COMMAND_PLATFORM_TELEGRAM, .scope = COMMAND_SCOPE_DM};
    snprintf(to.user_id, sizeof(to.user_id), "%s", user);
    struct reply_msg m = {.text = text};
    assert_int_equal(a->ops->notify(a, &to, &m), 0);
}

/* Two pollers that read the outbox at the same time, each with a notice
 * the Bot API will not take yet, keep both notices. Before, each numbered
 * its rows on from the highest row it had read, so both wrote row 1, and
 * the second write took the first one's place: that notice was lost to a
 * restart. */
static void test_two_pollers_keep_both_rows(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx_start(&fx);
    struct adapter *other = fx_adapter_open(&fx);
    fx_wait_count(&fx, "getUpdates", 2); /* each read the outbox, then polled */
    tgapi_fail(fx.api, "sendMessage", 1000, 502, "{\"ok\":false,\"error_code\":502}");
    tob_notice(fx.tg, "556", "Your deposit arrived.");
    tob_notice(other, "557", "Your key was revoked.");
    fx_wait_count(&fx, "sendMessage", 2); /* each row is written before its send */
    fx_adapter_close_one(&fx, other);
    fx_adapter_close(&fx);
    assert_int_equal(test_sql_int(fx.lt.path, "SELECT COUNT(*) FROM outbox WHERE failed_at = 0"),
                     2);
    assert_int_equal(test_sql_int(fx.lt.path, "SELECT COUNT(*) FROM outbox WHERE chat = 556 AND "
                                              "body LIKE '%Your deposit arrived.%'"),
                     1);
    assert_int_equal(test_sql_int(fx.lt.path, "SELECT COUNT(*) FROM outbox WHERE chat = 557 AND "
                                              "body LIKE '%Your key was revoked.%'"),
                     1);
    fx_done(&fx);
}

struct tob_lease {
    int rc;
    bool done;
};

static void tob_lease_done(int rc, const char *holder, int64_t until, void *data)
{
    (void)holder;
    (void)until;
    struct tob_lease *l = data;
    l->rc = rc;
    l->done = true;
}

static bool tob_lease_answered(struct fx *fx, void *arg)
{
    (void)fx;
    return ((struct tob_lease *)arg)->done;
}

static bool tob_store_idle(struct store *s)
{
    uv_mutex_lock(&s->mu);
    bool idle = s->queue_head == NULL && s->done_head == NULL;
    uv_mutex_unlock(&s->mu);
    return idle;
}

/* The other run's clock: 10 s ahead, so that it judges the poller's lease
 * run out (on SQLite a lease is judged by the asking run's clock). */
static int64_t tob_clock_ahead(void *data)
{
    (void)data;
    return clock_real_ms() + 10000;
}

/* How many sendMessage calls carried needle. */
static size_t tob_sent(struct fx *fx, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (strcmp(c->method, "sendMessage") == 0 && strstr(c->body, needle) != NULL)
            n++;
    }
    return n;
}

/* The poller loses its lease while a notice's row is being written, so it
 * keeps that send (no other daemon could have read the row) and writes
 * the row; the notice waits for the chat's pace. Given the lease back
 * before it went, the poller reads the outbox again, as at a takeover,
 * and finds that row. Before, it queued the notice a second time and the
 * member got it twice; now the row is known as its own queued send. */
static void test_lease_regained_sends_kept_row_once(void **state)
{
    (void)state;
    struct fx fx;
    fx_init(&fx, NULL);
    fx.opts.chat_interval_ms = 6000;
    struct store *store = ledger_store(fx.lt.ledger);
    fx.core.cluster = cluster_new(&fx.lt.loop, store, "run-a", 3000, NULL, NULL, NULL);
    assert_non_null(fx.core.cluster);
    fx_start(&fx);
    fx_wait_count(&fx, "getUpdates", 1); /* it holds the lease, and polls */
    tob_notice(fx.tg, "556", "The first notice.");
    fx_wait_count(&fx, "sendMessage", 1); /* the chat's pace runs from here */
    struct clock ahead = {.now_ms = tob_clock_ahead};
    struct cluster *other = cluster_new(&fx.lt.loop, store, "run-b", 3000, &ahead, NULL, NULL);
    assert_non_null(other);
    fx_run_for(&fx, 50);

    /* The store held, with nothing of the poller's in flight: the other
     * run takes the lease first (its clock says the poller's ran out),
     * then the poller's renewal comes, then the notice's row. */
    struct store_gate gate;
    while (!tob_store_idle(store))
        fx_run_for(&fx, 5);
    store_gate_hold(store, &gate);
    struct tob_lease took = {0};
    assert_int_equal(cluster_lease_take(other, "telegram:4242", tob_lease_done, &took), 0);
    fx_run_for(&fx, 1500); /* the poller's renewal is queued (every lease / 3) */
    tob_notice(fx.tg, "556", "The kept notice.");
    uv_sem_post(&gate.open);
    fx_until(&fx, tob_lease_answered, &took);
    assert_int_equal(took.rc, 0); /* the other run polls now: the poller lost it */
    while (!gate.done)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    uv_sem_destroy(&gate.open);
    uv_sem_destroy(&gate.entered);

    /* The other run goes; the poller takes the lease again and reads the
     * outbox, the kept notice's row in it. */
    size_t polls = tgapi_count(fx.api, "getUpdates");
    struct tob_lease dropped = {0};
    assert_int_equal(cluster_lease_drop(other, "telegram:4242", tob_lease_done, &dropped), 0);
    fx_until(&fx, tob_lease_answered, &dropped);
    fx_run_for(&fx, 1500);                                  /* the poller's next renewal takes it */
    assert_int_equal(tob_sent(&fx, "The kept notice."), 0); /* still paced */
    fx_wait_count(&fx, "sendMessage", 2);
    fx_run_for(&fx, 7000); /* a second one would go a pace later */
    assert_int_equal(tob_sent(&fx, "The kept notice."), 1);
    assert_int_equal(tob_sent(&fx, "The first notice."), 1);
    fx_wait_count(&fx, "getUpdates", polls + 1); /* it polls again */
    fx_adapter_close(&fx);
    cluster_free(other);
    cluster_free(fx.core.cluster);
    fx.core.cluster = NULL;
    fx_done(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_two_pollers_keep_both_rows),
    cmocka_unit_test(test_lease_regained_sends_kept_row_once),
};

TEST_GROUP_DEFINE(telegram_outbox, tests, NULL, NULL)
