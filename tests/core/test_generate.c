/* The generation engine end to end with a held in-test provider that the
 * test releases step by step: the fair queue and its bounds, the content
 * filter, conversation memory, per-group model switches, /admin stats,
 * closing, and recovery after a crash. The fixture is in
 * test_generate_fixture.c; the real adapters are exercised in
 * test_generate_providers.c, limits and payers in test_generate_quota.c.
 * Every wait is for an event, bounded by a guard timer; every test ends
 * with uv_loop_close() == 0. */
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include "net/http.h"
#include "core/commands.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/state.h"
#include "base/error.h"
#include "base/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_fair_queue_and_bounds(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.queue_max = 4, .user_queue = 2};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture a[4], b, c, busy;
    gt_submit(&gt, &a[0], "alice", PROVIDER_TEXT, "h", "a1");
    held_wait_call(&gt, 0);
    gt_submit(&gt, &a[1], "alice", PROVIDER_TEXT, "h", "a2");
    gt_submit(&gt, &a[2], "alice", PROVIDER_TEXT, "h", "a3");
    /* Wait until alice's second and third are queued. */
    while ((a[1].nprogress == 0 || a[2].nprogress == 0) && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    gt_submit(&gt, &b, "bob", PROVIDER_TEXT, "h", "b1");
    while (b.nprogress == 0 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    assert_has(&b, "position 3");
    gt_submit(&gt, &c, "carol", PROVIDER_TEXT, "h", "c1");
    while (c.nprogress == 0 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    /* The queue holds 4 now: the next is told to come back. */
    gt_submit(&gt, &busy, "dave", PROVIDER_TEXT, "h", "d1");
    gt_wait(&gt, &busy.finished, 1);
    assert_has(&busy, "busy");
    reply_capture_close(&busy);
    /* alice's fourth hits her own bound. */
    gt_submit(&gt, &a[3], "alice", PROVIDER_TEXT, "h", "a4");
    gt_wait(&gt, &a[3].finished, 1);
    assert_has(&a[3], "please wait");
    reply_capture_close(&a[3]);

    /* One at a time (max_concurrent 1): bob and carol come before alice's
     * second and third although they asked later. */
    const char *order[] = {"a1", "b1", "c1", "a2", "a3"};
    for (size_t i = 0; i < 5; i++) {
        struct provider_call *call = held_wait_call(&gt, i);
        assert_string_equal(call->last_prompt, order[i]);
        held_finish(call, 0, "fine", 5, 5);
    }
    gt_wait(&gt, &a[2].finished, 1);
    gt_wait(&gt, &c.finished, 1);
    for (size_t i = 0; i < 3; i++)
        reply_capture_close(&a[i]);
    reply_capture_close(&b);
    reply_capture_close(&c);
    gt_done(&gt);
}

static void test_filter_block_and_redact(void **state)
{
    (void)state;
    static const char *const bad[] = {"forbidden"};
    struct filter_rule rules[] = {
        {.name = "badwords",
         .kind = FILTER_KIND_WORDS,
         .action = FILTER_ACTION_BLOCK,
         .words = bad,
         .nwords = 1},
        {.name = "emails", .kind = FILTER_KIND_EMAIL, .action = FILTER_ACTION_REDACT},
    };
    struct gt gt;
    gt_init(&gt, NULL, rules, 2, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "h", "say the forbidden word");
    assert_has(&cap, "refused by the content filter (rule badwords)");
    assert_int_equal(gt.held.ncalls, 0);
    reply_capture_close(&cap);
    /* A redacted prompt reaches the provider without the address. */
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "mail bob@example.com please");
    struct provider_call *call = held_wait_call(&gt, 0);
    assert_string_equal(call->last_prompt, "mail [email removed] please");
    held_finish(call, 0, "write to alice@example.org", 3, 3);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "write to [email removed]");
    /* Only the model's words are marked Markdown, not the bot's footer. */
    assert_non_null(cap.last_markdown);
    assert_string_equal(cap.last_markdown, "write to [email removed]");
    assert_true(strlen(strstr(cap.text, "write to [email removed]")) > strlen(cap.last_markdown));
    reply_capture_close(&cap);
    /* A blocked output is withheld and not charged. */
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "go on");
    held_finish(held_wait_call(&gt, 1), 0, "here is the forbidden thing", 3, 3);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "withheld by the content filter");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    assert_int_equal(generate_filter_hits(gt.g, "badwords"), 2);
    assert_int_equal(generate_filter_hits(gt.g, "emails"), 2);
    gt_done(&gt);
}

static void test_conversation_memory(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "first");
    held_finish(held_wait_call(&gt, 0), 0, "answer one", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "second");
    struct provider_call *call = held_wait_call(&gt, 1);
    assert_int_equal(call->nmessages, 3); /* first, answer one, second */
    held_finish(call, 0, "answer two", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    snprintf(inv.user_id, sizeof(inv.user_id), "u1");
    snprintf(inv.channel_id, sizeof(inv.channel_id), "console");
    generate_conversation_reset(gt.g, &inv);
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "third");
    call = held_wait_call(&gt, 2);
    assert_int_equal(call->nmessages, 1);
    held_finish(call, 0, "answer three", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static const char *gt_model_switch(struct gt *gt, struct reply_capture *cap, const char *scope,
                                   const char *model, bool enable)
{
    struct invocation inv;
    gt_inv(&inv, cap, "admin", scope);
    inv.admin = true;
    inv.opts[0].set = true;
    inv.opts[0].type = COMMAND_OPT_STRING;
    inv.opts[0].string = strdup(model);
    if (enable)
        cmd_admin_model_enable(&gt->core, &inv);
    else
        cmd_admin_model_disable(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
    free(inv.opts[0].string);
    return cap->text != NULL ? cap->text : "";
}

static const char *gt_models(struct gt *gt, struct reply_capture *cap, const char *scope,
                             const char *button)
{
    struct invocation inv;
    gt_inv(&inv, cap, "m", scope);
    inv.spec = commands_find("models");
    if (button != NULL) {
        snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", button);
        cmd_models_button(&gt->core, &inv);
    } else {
        cmd_models(&gt->core, &inv);
    }
    gt_wait(gt, &cap->finished, 1);
    return cap->text != NULL ? cap->text : "";
}

static void test_group_model_switches(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    assert_non_null(strstr(gt_model_switch(&gt, &cap, NULL, "h", false), "run this there"));
    reply_capture_close(&cap);
    assert_non_null(strstr(gt_model_switch(&gt, &cap, "g1", "nosuch", false), "no model called"));
    reply_capture_close(&cap);
    assert_non_null(
        strstr(gt_model_switch(&gt, &cap, "g1", "h", false), "h is turned off in this group"));
    reply_capture_close(&cap);

    /* Refused in g1, still fine in g2. */
    const char *scopes[] = {"g1", "g2"};
    for (size_t i = 0; i < 2; i++) {
        struct invocation inv;
        gt_inv(&inv, &cap, "m", scopes[i]);
        struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi", .model = "h"};
        generate_submit(gt.g, &inv, &req);
        if (i == 0) {
            gt_wait(&gt, &cap.finished, 1);
            assert_has(&cap, "turned h off here");
            assert_int_equal(gt.held.ncalls, 0);
        } else {
            held_finish(held_wait_call(&gt, 0), 0, "fine", 5, 5);
            gt_wait(&gt, &cap.finished, 1);
            assert_has(&cap, "fine");
        }
        reply_capture_close(&cap);
    }
    /* /models in g1 leaves h out; in g2 it is there (h is on page 2). */
    const char *groups[] = {"g1", "g2"};
    for (size_t i = 0; i < 2; i++) {
        char next[COMMAND_BUTTON_REF_MAX + 1];
        bool seen = strstr(gt_models(&gt, &cap, groups[i], NULL), "\n  h (") != NULL;
        assert_true(cap.nbuttons >= 1);
        snprintf(next, sizeof(next), "%s", cap.buttons[cap.nbuttons - 1].ref);
        reply_capture_close(&cap);
        seen = seen || strstr(gt_models(&gt, &cap, groups[i], next), "\n  h (") != NULL;
        reply_capture_close(&cap);
        assert_int_equal(seen, i == 1);
    }
    assert_non_null(
        strstr(gt_model_switch(&gt, &cap, "g1", "h", true), "available in this group again"));
    reply_capture_close(&cap);
    gt_run_in_group(&gt, "m", "g1", 1);
    assert_int_equal(gt_balance(&gt, "m") < 100, 1);
    gt_done(&gt);
}

static const char *gt_stats(struct gt *gt, struct reply_capture *cap, const char *scope)
{
    struct invocation inv;
    gt_inv(&inv, cap, "admin", scope);
    inv.admin = true;
    cmd_admin_stats(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
    return cap->text != NULL ? cap->text : "";
}

static void test_admin_stats(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.clock = (struct clock){.now_ms = gt_clock, .data = &gt};
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u", PROVIDER_TEXT, "h", "hello");
    held_finish(held_wait_call(&gt, 0), 0, "fine", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u", PROVIDER_TEXT, "nosuch", "hello");
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u", PROVIDER_TEXT, "allfail", "hello");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    const char *t = gt_stats(&gt, &cap, NULL);
    if (strstr(t, "Generations charged: 1;") == NULL || strstr(t, "Top models: h (1,") == NULL ||
        strstr(t, "Refused: model 1") == NULL || strstr(t, "by provider: fakeai 1") == NULL)
        fail_msg("unexpected stats:\n%s", t);
    reply_capture_close(&cap);
    /* The same outcomes reach /metrics. */
    assert_true(metrics_value(metrics_std()->generations, (const char *[]){"h", "completed"}) >= 1);
    assert_true(
        metrics_value(metrics_std()->generations, (const char *[]){"malformed", "failed"}) >=
        1); /* its last fallback */
    t = gt_stats(&gt, &cap, "g1");
    assert_non_null(strstr(t, "This group's pool, last 7 days:\nGenerations charged: 0;"));
    assert_null(strstr(t, "Refused"));
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* Outcome counters of a thousand older days do not hide today's: a refusal
 * on each of 1,000 days before the month, then one today. */
static void test_admin_stats_newest_counters(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.clock = (struct clock){.now_ms = gt_clock, .data = &gt};
    int64_t now = gt.wall;
    struct reply_capture cap;
    for (int d = 1000; d >= 1; d--) {
        gt.wall = now - (int64_t)(d + 30) * 86400000;
        gt_run(&gt, &cap, "u", PROVIDER_TEXT, "nosuch", "hello");
        reply_capture_close(&cap);
    }
    gt.wall = now;
    gt_run(&gt, &cap, "u", PROVIDER_TEXT, "nosuch", "hello");
    reply_capture_close(&cap);
    const char *t = gt_stats(&gt, &cap, NULL);
    if (strstr(t, "Refused: model 1\n") == NULL)
        fail_msg("unexpected stats:\n%s", t);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* A month of counters takes more than one page to read: twenty reasons on
 * each of 30 days (600 counters, as generate__count keys them) sum whole. */
static void test_admin_stats_counters_paged(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.clock = (struct clock){.now_ms = gt_clock, .data = &gt};
    int64_t today = gt.wall / 86400000;
    struct store *s = ledger_store(gt.lt.ledger);
    int pending = 0;
    for (int64_t d = today - 29; d <= today; d++) {
        for (int r = 0; r < 20; r++) {
            char key[64];
            snprintf(key, sizeof(key), "%lld/refused/r%02d", (long long)d, r);
            assert_int_equal(state_incr(s, GENERATE_NS_STATS, key, 1, NULL, NULL), 0);
            pending++;
        }
    }
    gt_settle(&gt, 4);
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, "admin", NULL);
    inv.admin = true;
    inv.opts[0].set = true;
    inv.opts[0].type = COMMAND_OPT_STRING;
    inv.opts[0].string = strdup("month");
    cmd_admin_stats(&gt.core, &inv);
    gt_wait(&gt, &cap.finished, 1);
    free(inv.opts[0].string);
    const char *t = cap.text != NULL ? cap.text : "";
    if (strstr(t, "Refused: r00 30, r01 30,") == NULL || strstr(t, ", r19 30\n") == NULL)
        fail_msg("unexpected stats after %d counters:\n%s", pending, t);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* /models pages with buttons that only their owner may press. */
static void test_models_pages(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_models(&gt, &cap, NULL, NULL);
    size_t listed = 0;
    for (const char *p = strstr(cap.text, "\n  "); p != NULL; p = strstr(p + 1, "\n  "))
        listed++;
    /* The test catalog has more usable models than a page holds. */
    assert_int_equal(listed, 6);
    assert_int_equal(cap.nbuttons, 1);
    assert_string_equal(cap.buttons[0].label, "Next");
    char next[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(next, sizeof(next), "%s", cap.buttons[0].ref);
    char *page1 = strdup(cap.text);
    reply_capture_close(&cap);
    const char *t = gt_models(&gt, &cap, NULL, next);
    assert_string_not_equal(t, page1);
    assert_string_equal(cap.buttons[0].label, "Previous");
    reply_capture_close(&cap);
    free(page1);
    gt_done(&gt);
}

static void test_close_voids_running_job(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "long job");
    struct provider_call *call = held_wait_call(&gt, 0);
    generate_close(gt.g, gt_closed, &gt);
    assert_true(call->cancelled);
    held_finish(call, HB_ECANCELED, NULL, -1, -1);
    while (gt.closed < 1 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    assert_has(&cap, "Nothing was charged");
    assert_int_equal(cap.finished, 1);
    gt_settle(&gt, 10);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    reply_capture_close(&cap);
    gt.closed = 0;
    http_client_close(gt.http, gt_closed, &gt);
    httpd_close(gt.srv, gt_closed, &gt);
    uv_close((uv_handle_t *)&gt.guard, NULL);
    while (gt.closed < 2)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    lt_done(&gt.lt);
}

struct gone_sink {
    int ended;
    int rc;
    int64_t charged;
};

static void gone_end(void *data, const struct generate_outcome *o)
{
    struct gone_sink *s = data;
    s->ended++;
    s->rc = o->rc;
    s->charged = o->charged;
}

/* Callers that leave (generate_cancel): a queued job is voided, nothing
 * charged; a running one's call is stopped and what it made is charged,
 * as at a normal end. */
static void test_cancel_caller_gone(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture ca, cb;
    struct gone_sink sa = {0}, sb = {0};
    struct generate_sink ka = {.end = gone_end, .data = &sa};
    struct generate_sink kb = {.end = gone_end, .data = &sb};
    struct invocation inv;
    gt_inv(&inv, &ca, "u1", NULL);
    struct generate_request ra = {
        .modality = PROVIDER_TEXT, .prompt = "first", .model = "h", .sink = &ka};
    generate_submit(gt.g, &inv, &ra);
    struct provider_call *call = held_wait_call(&gt, 0);
    gt_inv(&inv, &cb, "u2", NULL);
    struct generate_request rb = {
        .modality = PROVIDER_TEXT, .prompt = "second", .model = "h", .sink = &kb};
    generate_submit(gt.g, &inv, &rb);
    struct generate_stats st = {0};
    while (st.queued == 0 && !gt.guard_fired) {
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
        generate_stats_get(gt.g, &st);
    }
    assert_int_equal(st.queued, 1);
    assert_int_equal(generate_cancel(gt.g, &sb), 0);
    gt_wait(&gt, &sb.ended, 1);
    assert_int_not_equal(sb.rc, 0);
    assert_int_equal(sb.charged, 0);

    call->ev->text(call->data, "a partial answer", 16);
    assert_int_equal(generate_cancel(gt.g, &sa), 0);
    assert_true(call->cancelled);
    held_finish(call, HB_ECANCELED, NULL, -1, -1);
    gt_wait(&gt, &sa.ended, 1);
    assert_int_equal(sa.rc, 0);
    assert_true(sa.charged > 0);
    assert_int_equal(generate_cancel(gt.g, &sa), HB_ENOTFOUND);
    gt_settle(&gt, 10);
    assert_int_equal(gt_balance(&gt, "u2"), 100);
    assert_int_equal(gt_balance(&gt, "u1"), 100 - sa.charged);
    reply_capture_close(&ca);
    reply_capture_close(&cb);
    gt_done(&gt);
}

/* What a crash leaves: a job record and its open reservation. A restart
 * voids it and the member hears of it with their next command. */
static void test_crash_restart_voids(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt_crashed(&gt, "console:u1 1");
    assert_int_equal(lt_balance(&gt.lt, "console:u1").pending_debits, 12);

    struct gt_recovered rec = {0};
    assert_int_equal(generate_recover(gt.g, gt_recovered_cb, &rec), 0);
    gt_wait(&gt, &rec.done, 1);
    assert_int_equal(rec.voided, 1);
    gt_settle(&gt, 10);
    assert_int_equal(gt_balance(&gt, "u1"), 100);

    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "hello again");
    held_finish(held_wait_call(&gt, 0), 0, "hi", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "interrupted when the bot restarted");
    reply_capture_close(&cap);

    /* A second recovery finds nothing left. */
    rec.done = 0;
    assert_int_equal(generate_recover(gt.g, gt_recovered_cb, &rec), 0);
    gt_wait(&gt, &rec.done, 1);
    assert_int_equal(rec.voided, 0);
    gt_done(&gt);
}

/* More job records than one page of the store's listing (1,000): the
 * recovery reads on to the last, and the crashed job past the first page
 * is voided too (before, only the first page was read, and the rest stayed
 * reserved until the ledger's own timeout, the member never told). */
static void test_crash_restart_reads_every_record(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    int stored = 0;
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "gen:a%04d", i); /* before gen:crashed:1 */
        assert_int_equal(state_put(ledger_store(gt.lt.ledger), "gen.job", key,
                                   "console:u9 0 run-gone", gt_state_done, &stored),
                         0);
    }
    gt_wait(&gt, &stored, 1000);
    gt_crashed(&gt, "console:u1 1");
    struct gt_recovered rec = {0};
    assert_int_equal(generate_recover(gt.g, gt_recovered_cb, &rec), 0);
    gt_wait(&gt, &rec.done, 1);
    assert_int_equal(rec.voided, 1);
    gt_settle(&gt, 10);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM state WHERE ns = 'gen.job'"),
                     0);
    gt_done(&gt);
}

/* Recovery voids what earlier runs left, never a job this run still has
 * in flight: the member is charged for the answer and told of no restart. */
static void test_recovery_spares_this_runs_jobs(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "a job in flight");
    struct provider_call *call = held_wait_call(&gt, 0);

    struct gt_recovered rec = {0};
    assert_int_equal(generate_recover(gt.g, gt_recovered_cb, &rec), 0);
    gt_wait(&gt, &rec.done, 1);
    assert_int_equal(rec.voided, 0);

    held_finish(call, 0, "the answer", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "the answer");
    assert_null(strstr(cap.text, "interrupted"));
    gt_settle(&gt, 10);
    assert_true(gt_balance(&gt, "u1") < 100);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* A job's record of open reservations is written with its reservation and
 * deleted with its charge, in the same transactions: while it runs both
 * are there; once charged (or voided) neither record nor reservation is
 * left open. */
static void test_job_record_rides_with_its_transfers(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    const char *records = "SELECT COUNT(*) FROM state WHERE ns = 'gen.job'";
    const char *open = "SELECT COUNT(*) FROM pending";
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "a job in flight");
    struct provider_call *call = held_wait_call(&gt, 0);
    assert_int_equal(test_sql_int(gt.lt.path, records), 1);
    assert_int_equal(test_sql_int(gt.lt.path, open), 1);
    held_finish(call, 0, "the answer", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    gt_settle(&gt, 10);
    assert_int_equal(test_sql_int(gt.lt.path, records), 0);
    assert_int_equal(test_sql_int(gt.lt.path, open), 0);
    assert_true(gt_balance(&gt, "u1") < 100);
    reply_capture_close(&cap);

    /* A job that fails is voided, and its record goes with the void. */
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "this one fails");
    call = held_wait_call(&gt, 1);
    assert_int_equal(test_sql_int(gt.lt.path, records), 1);
    held_finish(call, HB_EIO, NULL, -1, -1);
    gt_wait(&gt, &cap.finished, 1);
    gt_settle(&gt, 10);
    assert_int_equal(test_sql_int(gt.lt.path, records), 0);
    assert_int_equal(test_sql_int(gt.lt.path, open), 0);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static const struct CMUnitTest generate_tests[] = {
    cmocka_unit_test(test_fair_queue_and_bounds),
    cmocka_unit_test(test_filter_block_and_redact),
    cmocka_unit_test(test_conversation_memory),
    cmocka_unit_test(test_group_model_switches),
    cmocka_unit_test(test_models_pages),
    cmocka_unit_test(test_admin_stats),
    cmocka_unit_test(test_admin_stats_newest_counters),
    cmocka_unit_test(test_admin_stats_counters_paged),
    cmocka_unit_test(test_close_voids_running_job),
    cmocka_unit_test(test_cancel_caller_gone),
    cmocka_unit_test(test_crash_restart_voids),
    cmocka_unit_test(test_crash_restart_reads_every_record),
    cmocka_unit_test(test_recovery_spares_this_runs_jobs),
    cmocka_unit_test(test_job_record_rides_with_its_transfers),
};

TEST_GROUP_DEFINE(generate, generate_tests, gt_group_setup, lt_group_teardown)
