/* Generation recovery tells the member at once: a job a crash left
 * reserved is voided at restart and the host's notify is called for its
 * member; when no adapter of that platform runs, the notice is kept for
 * their next command and can be sent later. */
#include "core/catalog.h"
#include "core/core.h"
#include "base/error.h"
#include "core/generate.h"
#include "core/notify.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"
#include "tests/test.h"

#include <stdio.h>
#include <string.h>

struct fake_host {
    int calls;
    int rc; /* what notify answers */
    struct notify_target to;
    char text[512];
};

static int fake_host_notify(void *host, const struct notify_target *to, const char *text)
{
    struct fake_host *h = host;
    h->calls++;
    h->to = *to;
    snprintf(h->text, sizeof(h->text), "%s", text);
    return h->rc;
}

static const struct core_host_ops fake_host_ops = {.notify = fake_host_notify};

struct gn {
    struct lt lt;
    struct core core;
    struct generate *g;
    struct fake_host host;
    int closed;
};

struct gn_recovered {
    int done;
    int rc;
    size_t voided;
};

static void gn_recovered_cb(int rc, size_t voided, void *data)
{
    struct gn_recovered *r = data;
    r->rc = rc;
    r->voided = voided;
    r->done++;
}

struct gn_state {
    int done;
    int rc;
    char value[64];
};

static void gn_state_cb(int rc, const char *value, void *data)
{
    struct gn_state *s = data;
    s->rc = rc;
    snprintf(s->value, sizeof(s->value), "%s", value != NULL ? value : "");
    s->done++;
}

static void gn_run_until(struct gn *gn, const int *flag)
{
    while (*flag == 0)
        uv_run(&gn->lt.loop, UV_RUN_ONCE);
}

static void gn_init(struct gn *gn, int notify_rc)
{
    memset(gn, 0, sizeof(*gn));
    lt_init(&gn->lt, true, false);
    struct catalog_spec spec = {.limits = {.retry_max = 1}};
    char err[256] = "";
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    if (cat == NULL)
        fail_msg("catalog: %s", err);
    gn->host.rc = notify_rc;
    gn->core.ledger = gn->lt.ledger;
    gn->core.reservation_timeout_ms = 600000;
    gn->core.host_ops = &fake_host_ops;
    gn->core.host = &gn->host;
    gn->g = generate_new(&gn->lt.loop, &gn->core, cat, NULL);
    catalog_unref(cat);
    assert_non_null(gn->g);
    gn->core.generate = gn->g;
}

static void gn_closed(void *data)
{
    ((struct gn *)data)->closed++;
}

static void gn_done(struct gn *gn)
{
    generate_close(gn->g, gn_closed, gn);
    gn_run_until(gn, &gn->closed);
    lt_done(&gn->lt);
}

/* What a crash leaves: a job record and its open reservation. */
static void gn_crash_leftover(struct gn *gn, const char *wallet)
{
    struct lt_res res;
    assert_int_equal(lt_open(&gn->lt, wallet, LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    assert_int_equal(
        lt_reserve(&gn->lt, "gen:crashed:1:r1", wallet, LEDGER_SYSTEM_REVENUE, 12, 600000, &res),
        0);
    char value[128];
    snprintf(value, sizeof(value), "%s 1", wallet);
    struct gn_state st = {0};
    assert_int_equal(
        state_put(ledger_store(gn->lt.ledger), "gen.job", "gen:crashed:1", value, gn_state_cb, &st),
        0);
    gn_run_until(gn, &st.done);
    assert_int_equal(st.rc, 0);
}

static void gn_notice_record(struct gn *gn, const char *wallet, struct gn_state *out)
{
    memset(out, 0, sizeof(*out));
    assert_int_equal(state_get(ledger_store(gn->lt.ledger), "gen.notice", wallet, gn_state_cb, out),
                     0);
    gn_run_until(gn, &out->done);
}

static void test_recovery_notifies_at_once(void **state)
{
    (void)state;
    struct gn gn;
    gn_init(&gn, 0);
    gn_crash_leftover(&gn, "telegram:55");
    struct gn_recovered rec = {0};
    assert_int_equal(generate_recover(gn.g, gn_recovered_cb, &rec), 0);
    gn_run_until(&gn, &rec.done);
    assert_int_equal(rec.voided, 1);
    /* Told through the host, as a DM to the job's member. */
    assert_int_equal(gn.host.calls, 1);
    assert_int_equal(gn.host.to.platform, COMMAND_PLATFORM_TELEGRAM);
    assert_int_equal(gn.host.to.scope, COMMAND_SCOPE_DM);
    assert_string_equal(gn.host.to.user_id, "55");
    assert_non_null(strstr(gn.host.text, "interrupted when the bot restarted"));
    assert_non_null(strstr(gn.host.text, "nothing was charged"));
    assert_int_equal(lt_balance(&gn.lt, "telegram:55").pending_debits, 0);
    /* Told once: the record for the next command is gone. */
    struct gn_state st;
    gn_notice_record(&gn, "telegram:55", &st);
    assert_int_equal(st.rc, HB_ENOTFOUND);
    assert_int_equal(generate_notices_send(gn.g), 0);
    assert_int_equal(gn.host.calls, 1);
    gn_done(&gn);
}

static void test_recovery_without_adapter_keeps_notice(void **state)
{
    (void)state;
    struct gn gn;
    gn_init(&gn, HB_ENOTFOUND);
    gn_crash_leftover(&gn, "discord:77");
    struct gn_recovered rec = {0};
    assert_int_equal(generate_recover(gn.g, gn_recovered_cb, &rec), 0);
    gn_run_until(&gn, &rec.done);
    assert_int_equal(rec.voided, 1);
    assert_int_equal(gn.host.calls, 1);
    /* No adapter for discord: the record stays for the next command. */
    struct gn_state st;
    gn_notice_record(&gn, "discord:77", &st);
    assert_int_equal(st.rc, 0);
    assert_string_equal(st.value, "1");
    /* Once the adapter runs, the daemon sends what is left. */
    gn.host.rc = 0;
    assert_int_equal(generate_notices_send(gn.g), 1);
    assert_int_equal(gn.host.calls, 2);
    assert_string_equal(gn.host.to.user_id, "77");
    gn_notice_record(&gn, "discord:77", &st);
    assert_int_equal(st.rc, HB_ENOTFOUND);
    gn_done(&gn);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_recovery_notifies_at_once),
    cmocka_unit_test(test_recovery_without_adapter_keeps_notice),
};

TEST_GROUP_DEFINE(generate_notify, tests, lt_group_setup, lt_group_teardown)
