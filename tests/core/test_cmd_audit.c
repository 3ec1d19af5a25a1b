/* The audit trail through the command path: entries written by admin
 * actions (a grant, a model switch, a config reload without secret
 * values), /admin audit with its paging buttons, /admin member, and
 * unmatched payments listed and assigned once. Non-admins reach none of
 * it. */
#include "tests/test.h"

#include "bot/config.h"
#include "bot/config_audit.h"
#include "bot/router.h"
#include "base/error.h"
#include "core/audit.h"
#include "core/core.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"
#include "tests/core/test_generate.h"
#include "tests/core/router_fixture.h"
#include "tests/fake/reply_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct who {
    const char *user;
    bool admin;
    const char *button;
    const char *event; /* NULL: a fresh event id */
    const char *scope; /* NULL: a DM */
};

static const struct who admin = {.user = "9", .admin = true};
static const struct who admin2 = {.user = "8", .admin = true};
static const struct who alice = {.user = "1001"};

/* Run one command line (or a button press) on Discord, in a DM, and wait
 * for its reply to end. Returns what it answered. */
static const char *run(struct rfx *f, const struct who *w, const char *line)
{
    reply_capture_close(&f->cap);
    reply_capture_init(&f->cap);
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = COMMAND_PLATFORM_DISCORD;
    snprintf(inv.user_id, sizeof(inv.user_id), "%s", w->user);
    inv.admin = w->admin;
    if (w->scope != NULL) {
        inv.scope = COMMAND_SCOPE_GROUP;
        snprintf(inv.scope_id, sizeof(inv.scope_id), "%s", w->scope);
        snprintf(inv.channel_id, sizeof(inv.channel_id), "chan-%s", w->scope);
    }
    if (w->event != NULL)
        snprintf(inv.event_id, sizeof(inv.event_id), "%s", w->event);
    else
        snprintf(inv.event_id, sizeof(inv.event_id), "ev%d", ++f->event);
    if (w->button != NULL)
        snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", w->button);
    inv.reply = &f->cap.reply;
    router_dispatch(f->router, &inv, w->button != NULL ? NULL : line);
    while (f->cap.finished == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(f->cap.finished, 1);
    return f->cap.text != NULL ? f->cap.text : "";
}

struct listed {
    bool done;
    int rc;
    struct store_audit rows[20];
    size_t n;
};

static void listed_cb(int rc, const struct store_audit *e, size_t n, void *data)
{
    struct listed *l = data;
    l->rc = rc;
    l->n = n < 20 ? n : 20;
    memcpy(l->rows, e, l->n * sizeof(*e));
    l->done = true;
}

/* The newest entries matching match (NULL: all). */
static void audit_read(struct lt *t, const char *match, struct listed *l)
{
    memset(l, 0, sizeof(*l));
    assert_int_equal(audit_list(ledger_store(t->ledger), match, 0, 0, 20, listed_cb, l), 0);
    while (!l->done)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(l->rc, 0);
}

static void test_grant_recorded(void **state)
{
    struct rfx *f = *state;
    struct listed l;
    run(f, &admin, "admin grant 1001 50 contest prize");
    run(f, &admin, "admin revoke 1001 20");
    audit_read(&f->lt, NULL, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.rows[1].action, "grant");
    assert_string_equal(l.rows[1].actor, "discord:9");
    assert_string_equal(l.rows[1].subject, "discord:1001");
    assert_non_null(strstr(l.rows[1].detail, "\"amount\":50"));
    assert_non_null(strstr(l.rows[1].detail, "\"reason\":\"contest prize\""));
    assert_string_equal(l.rows[0].action, "revoke");
    /* A revocation refused for funds moved nothing and records nothing;
     * neither does a redelivered grant (the entry commits with the
     * transfer, in the same transaction). */
    run(f, &admin, "admin revoke 1001 100000");
    struct who again = admin;
    again.event = "same-event";
    run(f, &again, "admin grant 1001 7");
    run(f, &again, "admin grant 1001 7");
    audit_read(&f->lt, NULL, &l);
    assert_int_equal(l.n, 3);
    assert_non_null(strstr(l.rows[0].detail, "\"transfer\":\"grant:same-event\""));
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 100 + 50 - 20 + 7);
}

static void test_pool_settings_recorded(void **state)
{
    struct rfx *f = *state;
    struct listed l;
    struct who here = admin;
    here.scope = "g1";
    run(f, &here, "admin pool limit 500");
    run(f, &here, "admin pool policy wallet_first");
    run(f, &here, "admin pool grant 40");
    audit_read(&f->lt, "pool:discord:g1", &l);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.rows[2].action, "pool.limit");
    assert_string_equal(l.rows[2].detail, "{\"daily_cap\":500}");
    assert_string_equal(l.rows[1].action, "pool.policy");
    assert_string_equal(l.rows[1].detail, "{\"policy\":\"wallet_first\"}");
    assert_string_equal(l.rows[0].action, "pool.grant");
    assert_string_equal(l.rows[0].actor, "discord:9");
}

static void test_audit_paging(void **state)
{
    struct rfx *f = *state;
    char line[64];
    for (int i = 1; i <= 12; i++) {
        snprintf(line, sizeof(line), "admin grant 1001 %d", i);
        run(f, &admin, line);
    }
    run(f, &admin, "admin pool limit 5"); /* a DM has no pool: refused, not recorded */
    const char *t = run(f, &admin, "admin audit");
    assert_non_null(strstr(t, "Audit trail, newest first (page 1):"));
    assert_non_null(strstr(t, "#12 "));
    assert_non_null(strstr(t, "#3 "));
    assert_null(strstr(t, "#2 "));
    assert_non_null(strstr(t, "discord:9  grant  discord:1001 {\"amount\":12,"));
    assert_true(f->cap.last_personal);
    assert_int_equal(f->cap.nbuttons, 1);
    assert_string_equal(f->cap.buttons[0].label, "Older");
    char older[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(older, sizeof(older), "%s", f->cap.buttons[0].ref);

    /* New entries meanwhile do not shift the pages. */
    run(f, &admin, "admin grant 1001 99");
    struct who press = admin;
    press.button = older;
    t = run(f, &press, NULL);
    assert_non_null(strstr(t, "(page 2):"));
    assert_non_null(strstr(t, "#2 "));
    assert_non_null(strstr(t, "#1 "));
    assert_null(strstr(t, "#3 "));
    assert_int_equal(f->cap.nbuttons, 1);
    assert_string_equal(f->cap.buttons[0].label, "Newer");

    /* Another admin's press of this admin's button is refused. */
    press = admin2;
    press.button = older;
    t = run(f, &press, NULL);
    assert_non_null(strstr(t, "no longer active"));

    /* By member (an id of this platform) and by action. */
    t = run(f, &admin, "admin audit 1001");
    assert_non_null(strstr(t, "Audit trail for discord:1001"));
    assert_non_null(strstr(t, "#13 "));
    t = run(f, &admin, "admin audit revoke");
    assert_non_null(strstr(t, "no entries"));
    t = run(f, &admin, "admin audit 2");
    assert_non_null(strstr(t, "(page 2):"));
}

static void test_member_view(void **state)
{
    struct rfx *f = *state;
    struct lt_res res;
    run(f, &admin, "admin grant 1001 500");
    struct ledger_transfer gen = {.id = "gen1",
                                  .debit = "discord:1001",
                                  .credit = LEDGER_SYSTEM_REVENUE,
                                  .amount = 7,
                                  .kind = LEDGER_KIND_GENERATION,
                                  .ref = "job 1",
                                  .tag = "demo-chat"};
    assert_int_equal(lt_transfer(&f->lt, &gen, &res), 0);
    assert_int_equal(lt_reserve(&f->lt, "r1", "discord:1001", LEDGER_SYSTEM_REVENUE, 30, 0, &res),
                     0);
    const char *t = run(f, &admin, "admin member 1001");
    assert_non_null(strstr(t, "1001 (discord:1001)"));
    assert_non_null(strstr(t, "Wallet: 563 credits available (593 posted, 30 reserved)."));
    assert_non_null(strstr(t, "Open reservations:"));
    assert_non_null(strstr(t, "Recent transfers:"));
    assert_non_null(strstr(t, "+500  grant"));
    assert_non_null(strstr(t, "Generations in the last 30 days: 1, costing 7 credits."));
    assert_non_null(strstr(t, "demo-chat: 1, 7 credits"));
    assert_null(strstr(t, "job 1")); /* what caused a transfer is not shown */
    assert_true(f->cap.last_personal);
    t = run(f, &admin, "admin member 4242");
    assert_non_null(strstr(t, "4242 has no wallet yet."));
}

static void put_state(struct rfx *f, const char *ns, const char *key, const char *value)
{
    assert_int_equal(state_put(ledger_store(f->lt.ledger), ns, key, value, NULL, NULL), 0);
    /* A read after it sees it: jobs run in order. */
    struct listed l;
    audit_read(&f->lt, NULL, &l);
}

static void test_unmatched_assigned_once(void **state)
{
    struct rfx *f = *state;
    struct listed l;
    put_state(f, "payments.unmatched", "stripe:evt_9",
              "type=checkout.session.completed payment=cs_9 amount=500 currency=usd "
              "reason=no_reference credits=50");
    put_state(f, "hedera.unmatched", "0.0.5-17-1",
              "amount=300 token=hbar timestamp=17.1 reason=unknown_memo credits=0 memo=hi there");
    const char *t = run(f, &admin, "admin payments unmatched");
    assert_non_null(strstr(t, "stripe:evt_9  type=checkout.session.completed payment=cs_9"));
    assert_non_null(strstr(t, "hedera:0.0.5-17-1  amount=300"));
    assert_true(f->cap.last_personal);

    t = run(f, &admin, "admin payments assign stripe:evt_9 1001");
    assert_non_null(strstr(t, "Assigned payment stripe:evt_9 to 1001: 50 credits credited."));
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 150); /* bonus + 50 */
    t = run(f, &admin2, "admin payments assign stripe:evt_9 1002");
    assert_non_null(strstr(t, "was already assigned to discord:1001; nothing was credited"));
    t = run(f, &admin, "admin payments assign stripe:evt_9 1001");
    assert_non_null(strstr(t, "already assigned"));
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 150);

    /* The Hedera note names no price: the admin gives the credits. */
    t = run(f, &admin, "admin payments assign hedera:0.0.5-17-1 1001");
    assert_non_null(strstr(t, "does not say how many credits"));
    t = run(f, &admin, "admin payments assign hedera:0.0.5-17-1 1001 3");
    assert_non_null(strstr(t, "3 credits credited"));
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 153);
    /* A payment its webhook credited since is not credited by hand. */
    put_state(f, "payments.unmatched", "stripe:evt_7",
              "type=checkout.session.completed payment=cs_7 amount=500 currency=usd "
              "reason=no_package credits=50");
    put_state(f, "payments", "stripe:cs_7", "stripe:cs_7 discord:1002 50 500 0");
    t = run(f, &admin, "admin payments assign stripe:evt_7 1001");
    assert_non_null(strstr(t, "Payment stripe:evt_7 was already assigned to discord:1002"));
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 153);
    put_state(f, "payments.unmatched", "stripe:evt_7", NULL);
    t = run(f, &admin, "admin payments assign stripe:nosuch 1001");
    assert_non_null(strstr(t, "No unmatched payment has the id stripe:nosuch"));
    t = run(f, &admin, "admin payments unmatched");
    assert_non_null(strstr(t, "No unmatched payments."));

    audit_read(&f->lt, "payment.assign", &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.rows[1].subject, "stripe:evt_9");
    assert_string_equal(l.rows[1].actor, "discord:9");
    assert_non_null(strstr(l.rows[1].detail, "\"member\":\"discord:1001\""));
    assert_non_null(strstr(l.rows[1].detail, "\"credits\":50"));
    assert_null(strstr(l.rows[0].detail, "hi there")); /* never the memo */
}

static void test_non_admin_refused(void **state)
{
    struct rfx *f = *state;
    static const char *const lines[] = {"admin audit", "admin member 1001",
                                        "admin payments unmatched",
                                        "admin payments assign stripe:evt_9 1001"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        const char *t = run(f, &alice, lines[i]);
        assert_non_null(strstr(t, "Only admins can use"));
    }
    /* An admin's paging button is no use to a member either. */
    for (int i = 0; i < 12; i++)
        run(f, &admin, "admin grant 1001 1");
    run(f, &admin, "admin audit");
    assert_int_equal(f->cap.nbuttons, 1);
    struct who press = alice;
    char ref[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(ref, sizeof(ref), "%s", f->cap.buttons[0].ref);
    press.button = ref;
    const char *t = run(f, &press, NULL);
    assert_null(strstr(t, "Audit trail"));
}

/* A model switched off and on again in a group, attributed. */
static void test_model_switch_recorded(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    for (int enable = 0; enable < 2; enable++) {
        struct reply_capture cap;
        struct invocation inv;
        gt_inv(&inv, &cap, "admin", "g1");
        inv.admin = true;
        inv.opts[0].set = true;
        inv.opts[0].type = COMMAND_OPT_STRING;
        inv.opts[0].string = strdup("h");
        if (enable)
            cmd_admin_model_enable(&gt.core, &inv);
        else
            cmd_admin_model_disable(&gt.core, &inv);
        gt_wait(&gt, &cap.finished, 1);
        free(inv.opts[0].string);
        reply_capture_close(&cap);
    }
    struct listed l;
    audit_read(&gt.lt, NULL, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.rows[1].action, "model.disable");
    assert_string_equal(l.rows[0].action, "model.enable");
    assert_string_equal(l.rows[1].actor, "console:admin");
    assert_string_equal(l.rows[1].subject, "console:g1");
    assert_string_equal(l.rows[1].detail, "{\"model\":\"h\"}");
    gt_done(&gt);
}

struct change_list {
    struct config_change items[8];
    size_t n;
};

static void change_collect(const struct config_change *ch, void *data)
{
    struct change_list *l = data;
    if (l->n < 8)
        l->items[l->n++] = *ch;
}

/* A reload names the keys that changed, never a value: a provider's API
 * key changed and its value is nowhere in the entry. */
static void test_config_reload_recorded(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, true);
    char path[600];
    snprintf(path, sizeof(path), "%s/bot.conf", t.dir);
    static const char conf[] = "[bot]\nname = %s\n[console]\nenabled = true\n"
                               "[provider \"p\"]\nkind = openai\n"
                               "base_url = http://127.0.0.1:9/v1\napi_key = %s\n"
                               "[model \"m\"]\nprovider = p\nupstream = gpt\nmodality = text\n";
    struct config *cfg[2] = {NULL, NULL};
    const char *names[2] = {"One", "Two"};
    const char *keys[2] = {"sk-first-SECRET-1", "sk-second-SECRET-2"};
    for (int i = 0; i < 2; i++) {
        char text[1024];
        struct config_problems problems;
        memset(&problems, 0, sizeof(problems));
        snprintf(text, sizeof(text), conf, names[i], keys[i]);
        test_file_write(path, text, (size_t)-1);
        chmod(path, 0600);
        int rc = config_load(path, &cfg[i], &problems);
        if (rc != 0)
            config_problems_print(&problems, stderr);
        assert_int_equal(rc, 0);
        config_problems_free(&problems);
    }
    struct change_list got = {.n = 0};
    config_diff(cfg[0], cfg[1], change_collect, &got);
    assert_int_equal(got.n, 2);
    assert_int_equal(config_changes_audit(ledger_store(t.ledger), got.items, got.n, false), 0);
    struct listed l;
    audit_read(&t, NULL, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.rows[0].actor, "config");
    assert_string_equal(l.rows[0].action, "config.reload");
    assert_non_null(strstr(l.rows[0].detail, "\"bot.name\""));
    assert_non_null(strstr(l.rows[0].detail, "\"provider \\\"p\\\".api_key\""));
    assert_null(strstr(l.rows[0].detail, "SECRET"));
    assert_null(strstr(l.rows[0].detail, "sk-"));
    assert_null(strstr(l.rows[0].detail, "Two"));
    config_free(cfg[0]);
    config_free(cfg[1]);
    lt_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_grant_recorded, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_pool_settings_recorded, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_audit_paging, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_member_view, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_unmatched_assigned_once, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_non_admin_refused, rfx_setup, rfx_teardown),
    cmocka_unit_test(test_model_switch_recorded),
    cmocka_unit_test(test_config_reload_recorded),
};

TEST_GROUP_DEFINE(cmd_audit, tests, lt_group_setup, lt_group_teardown)
