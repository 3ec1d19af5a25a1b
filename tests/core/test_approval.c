/* The approval queue through the real command path: members submit
 * generations to the engine on a real ledger, admins decide by typed
 * commands and by button presses routed by the router, and the host's
 * notices are captured. Held jobs approved, edited, rejected, timed out
 * (manual clock), and restarted while held; presses by non-admins and
 * second presses; a filter rule with action review. */
#include "bot/router.h"
#include "core/persona.h"
#include "core/feature.h"
#include "core/approval.h"
#include "core/cluster.h"
#include "core/generate.h"
#include "core/notify.h"
#include "base/error.h"
#include "base/metrics.h"
#include "storage/store.h"
#include "tests/core/test_generate.h"
#include "tests/core/approval_fixture.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- tests ---------------------------------------------------------------- */

static void test_held_job_approved(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    double approved = at_outcomes("approved");
    struct reply_capture cap, adm;
    char id[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap, "ann", "h", "tell me a story", id);
    /* Nothing ran yet; the reservation is held. */
    assert_int_equal(at.gt.held.ncalls, 0);
    assert_true(at_pending(&at, "ann") > 0);
    /* The admins see the prompt, the member, the model and the cost, on the
     * console and in the Telegram chat, with buttons there. */
    const struct ah_notice *n = at_notice(&at, COMMAND_PLATFORM_CONSOLE, id);
    assert_non_null(strstr(n->text, "tell me a story"));
    assert_non_null(strstr(n->text, "console:ann"));
    assert_non_null(strstr(n->text, "asks h for up to"));
    assert_non_null(strstr(n->text, "held: model h"));
    n = at_notice(&at, COMMAND_PLATFORM_TELEGRAM, id);
    assert_string_equal(n->to.channel_id, "-100500");
    at_button(n, "Approve");
    at_button(n, "Edit");
    at_button(n, "Reject: Off topic");

    at_line(&at, "boss", true, "admin approvals", &adm);
    assert_has(&adm, id);
    assert_has(&adm, "console:ann");
    reply_capture_close(&adm);

    at_line(&at, "boss", true, "admin approve", &adm); /* the id is required */
    assert_has(&adm, "id");
    reply_capture_close(&adm);

    char line[64];
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_line(&at, "boss", true, line, &adm);
    assert_has(&adm, "approved");
    reply_capture_close(&adm);
    held_finish(held_wait_call(&at.gt, 0), 0, "once upon a time", 5, 5);
    at_told(&at, "ann", "once upon a time");
    gt_settle(&at.gt, 5);
    assert_true(gt_balance(&at.gt, "ann") < 100); /* charged, nothing left reserved */
    assert_true(at_outcomes("approved") == approved + 1);
    /* The decision is in the audit trail: who, on which request; no prompt. */
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM audit WHERE action = 'approval' AND subject = '%s' AND "
             "actor = 'console:boss' AND detail LIKE '%%approved%%'",
             id);
    assert_int_equal(test_sql_int(at.gt.lt.path, sql), 1);
    assert_int_equal(
        test_sql_int(at.gt.lt.path, "SELECT COUNT(*) FROM audit WHERE detail LIKE '%story%'"), 0);

    at_line(&at, "boss", true, "admin approvals", &adm);
    assert_has(&adm, "Nothing waits for approval.");
    reply_capture_close(&adm);
    at_done(&at);
}

static void test_held_job_edited(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    struct reply_capture cap, adm;
    char id[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap, "bob", "h", "something rude", id);
    char line[128];
    snprintf(line, sizeof(line), "admin edit %s something kind", id);
    at_line(&at, "boss", true, line, &adm);
    assert_has(&adm, "edited");
    reply_capture_close(&adm);
    struct provider_call *c = held_wait_call(&at.gt, 0);
    assert_string_equal(c->last_prompt, "something kind");
    held_finish(c, 0, "kind words", 5, 5);
    at_told(&at, "bob", "An admin edited your prompt");
    at_told(&at, "bob", "kind words");
    gt_settle(&at.gt, 5);
    assert_true(gt_balance(&at.gt, "bob") < 100);
    at_done(&at);
}

static void test_held_job_rejected_no_charge(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    double rejected = at_outcomes("rejected");
    struct reply_capture cap, adm;
    char id[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap, "cid", "h", "expensive thing", id);
    char line[128];
    snprintf(line, sizeof(line), "admin reject %s off topic here", id);
    at_line(&at, "boss", true, line, &adm);
    assert_has(&adm, "rejected");
    reply_capture_close(&adm);
    const char *told = at_told(&at, "cid", "An admin rejected your request (off topic here)");
    assert_non_null(strstr(told, "(off topic here). Its reservation was released and nothing was "
                                 "charged."));
    gt_settle(&at.gt, 5);
    assert_int_equal(gt_balance(&at.gt, "cid"), 100); /* voided: nothing reserved or charged */
    assert_int_equal(at.gt.held.ncalls, 0);
    assert_true(at_outcomes("rejected") == rejected + 1);
    at_done(&at);
}

static void test_held_job_times_out(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    struct reply_capture cap;
    char id[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap, "dee", "h", "wait for me", id);
    /* Not yet. */
    at.gt.wall += 3600000 - 1000;
    assert_int_equal(generate_approvals_expire(at.gt.g), 0);
    at.gt.wall += 1000;
    assert_int_equal(generate_approvals_expire(at.gt.g), 1);
    at_told(&at, "dee", "Nobody reviewed your request in time");
    gt_settle(&at.gt, 5);
    assert_int_equal(gt_balance(&at.gt, "dee"), 100);
    /* A late decision hears what happened. */
    struct reply_capture adm;
    char line[64];
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_line(&at, "boss", true, line, &adm);
    assert_has(&adm, "already decided: timed_out by timeout");
    reply_capture_close(&adm);
    at_done(&at);
}

static void test_button_presses(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    struct reply_capture cap, adm;
    char id[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap, "eve", "h", "press me", id);
    const struct ah_notice *n = at_notice(&at, COMMAND_PLATFORM_TELEGRAM, id);
    char approve[COMMAND_BUTTON_REF_MAX + 1], reject[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(approve, sizeof(approve), "%s", at_button(n, "Approve"));
    snprintf(reject, sizeof(reject), "%s", at_button(n, "Reject: Too expensive"));

    /* A member who is not an admin is refused. */
    at_press(&at, "55", false, "-100500", approve, &adm);
    assert_null(strstr(adm.text, "approved"));
    reply_capture_close(&adm);
    /* An admin elsewhere pressing a copied ref: bound to the approval chat. */
    at_press(&at, "66", true, "-100777", approve, &adm);
    assert_has(&adm, "Only admins");
    reply_capture_close(&adm);
    /* A Discord server's admin typing it, for a request not of their server
     * and outside the approval chat: refused. */
    struct invocation inv;
    gt_inv(&inv, &adm, "44", "guild9");
    inv.platform = COMMAND_PLATFORM_DISCORD;
    inv.admin = true;
    char line[64];
    snprintf(line, sizeof(line), "admin approve %s", id);
    router_dispatch(at.router, &inv, line);
    invocation_clear(&inv);
    assert_has(&adm, "Only admins of the request's server or group");
    reply_capture_close(&adm);
    gt_settle(&at.gt, 3);
    assert_int_equal(at.gt.held.ncalls, 0);

    /* An admin of the approval chat rejects with a listed reason. */
    at_press(&at, "77", true, "-100500", reject, &adm);
    assert_has(&adm, "rejected");
    reply_capture_close(&adm);
    at_told(&at, "eve", "rejected your request (Too expensive)");

    /* A second press hears who decided. */
    at_press(&at, "88", true, "-100500", approve, &adm);
    assert_has(&adm, "was already decided: rejected by telegram:77");
    reply_capture_close(&adm);
    gt_settle(&at.gt, 5);
    assert_int_equal(at.gt.held.ncalls, 0);
    assert_int_equal(gt_balance(&at.gt, "eve"), 100);
    at_done(&at);
}

static void test_filter_review_holds(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    struct reply_capture cap, adm;
    char id[APPROVAL_ID_LEN + 1];
    /* h2 needs no approval by itself; the review rule holds it. */
    at_hold(&at, &cap, "fay", "h2", "what are the launch codes", id);
    const struct ah_notice *n = at_notice(&at, COMMAND_PLATFORM_CONSOLE, id);
    assert_non_null(strstr(n->text, "held: filter rule sensitive"));
    char line[64];
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_line(&at, "boss", true, line, &adm);
    reply_capture_close(&adm);
    held_finish(held_wait_call(&at.gt, 0), 0, "classified", 5, 5);
    at_told(&at, "fay", "classified");
    gt_settle(&at.gt, 5);

    /* Without the queue, a review rule refuses as a block would. */
    struct approval_rules r;
    at_rules(&r);
    r.enabled = false;
    generate_approval_configure(at.gt.g, &r);
    gt_run(&at.gt, &cap, "fay", PROVIDER_TEXT, "h2", "the launch codes again");
    assert_has(&cap, "sensitive");
    assert_int_equal(at.gt.held.ncalls, 1);
    reply_capture_close(&cap);
    at_done(&at);
}

static void at_persona_saved(int rc, void *data)
{
    *(int *)data = rc == 0 ? 1 : -1;
}

/* A persona with approval = true holds its generations; [features]
 * approvals switched off in a group holds nothing there (and a review rule
 * refuses, as with the queue off). */
static void test_persona_and_feature_switch(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    at.gt.core.personas = persona_dir_new();
    assert_non_null(at.gt.core.personas);
    struct reply_capture cap, adm;
    struct invocation who;
    gt_inv(&who, &cap, "gus", NULL);
    int saved = 0;
    assert_int_equal(persona_choose(&at.gt.core, &who, PERSONA_LEVEL_MEMBER, "careful",
                                    at_persona_saved, &saved),
                     0);
    gt_wait(&at.gt, &saved, 1);
    invocation_clear(&who);
    reply_capture_close(&cap);
    char id[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap, "gus", "h2", "a careful question", id);
    const struct ah_notice *n = at_notice(&at, COMMAND_PLATFORM_CONSOLE, id);
    assert_non_null(strstr(n->text, "held: persona careful"));
    char line[64];
    snprintf(line, sizeof(line), "admin reject %s", id);
    at_line(&at, "boss", true, line, &adm);
    reply_capture_close(&adm);
    at_told(&at, "gus", "rejected");

    /* Approvals off in group g1: the same rules hold nothing there. */
    at.gt.core.features = features_new();
    assert_non_null(at.gt.core.features);
    assert_int_equal(features_group_set(at.gt.core.features, ledger_store(at.gt.lt.ledger),
                                        COMMAND_PLATFORM_CONSOLE, "g1", FEATURE_APPROVALS, false,
                                        NULL, NULL),
                     0);
    struct invocation inv;
    gt_inv(&inv, &cap, "hal", "g1");
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hello", .model = "h"};
    generate_submit(at.gt.g, &inv, &req);
    held_finish(held_wait_call(&at.gt, 0), 0, "hi there", 5, 5);
    gt_wait(&at.gt, &cap.finished, 1);
    assert_has(&cap, "hi there");
    invocation_clear(&inv);
    reply_capture_close(&cap);
    gt_inv(&inv, &cap, "hal", "g1");
    struct generate_request rev = {
        .modality = PROVIDER_TEXT, .prompt = "the launch codes", .model = "h2"};
    generate_submit(at.gt.g, &inv, &rev);
    gt_wait(&at.gt, &cap.finished, 1);
    assert_has(&cap, "sensitive");
    invocation_clear(&inv);
    reply_capture_close(&cap);
    features_free(at.gt.core.features);
    at.gt.core.features = NULL;
    struct persona_dir *d = at.gt.core.personas;
    at_done(&at);
    persona_dir_free(d);
}

/* New members: a wallet younger than new_member_days, or one that spent
 * less than new_member_spent, waits; an older one that spent enough runs. */
static void test_new_member_held(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    struct approval_rules r;
    at_rules(&r);
    r.models[0] = '\0';
    r.new_member_days = 1;
    generate_approval_configure(at.gt.g, &r);
    struct reply_capture cap;
    char id[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap, "hal", "h2", "first steps", id); /* opened ten minutes ago */
    assert_non_null(
        strstr(at_notice(&at, COMMAND_PLATFORM_CONSOLE, id)->text, "new member (joined under 1"));
    struct reply_capture adm;
    char line[64];
    snprintf(line, sizeof(line), "admin reject %s", id);
    at_line(&at, "boss", true, line, &adm);
    reply_capture_close(&adm);
    at_told(&at, "hal", "(no reason given)");
    gt_settle(&at.gt, 5);

    /* Two days later the wallet is old enough; spending is the next rule. */
    at.gt.wall += 2 * 86400000LL;
    r.new_member_spent = 1;
    generate_approval_configure(at.gt.g, &r);
    at_hold(&at, &cap, "hal", "h2", "still new by spending", id);
    assert_non_null(
        strstr(at_notice(&at, COMMAND_PLATFORM_CONSOLE, id)->text, "new member (spent under 1"));
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_line(&at, "boss", true, line, &adm);
    reply_capture_close(&adm);
    held_finish(held_wait_call(&at.gt, 0), 0, "spent now", 5, 5);
    at_told(&at, "hal", "spent now");
    gt_settle(&at.gt, 5);

    /* Old enough and has spent: runs without waiting. */
    gt_submit(&at.gt, &cap, "hal", PROVIDER_TEXT, "h2", "no wait");
    held_finish(held_wait_call(&at.gt, 1), 0, "straight", 5, 5);
    gt_wait(&at.gt, &cap.finished, 1);
    assert_null(strstr(cap.text, "review"));
    assert_has(&cap, "straight");
    reply_capture_close(&cap);
    at_done(&at);
}

static void at_recovered(int rc, size_t voided, void *data)
{
    (void)voided;
    int *done = data;
    assert_int_equal(rc, 0);
    (*done)++;
}

/* Stop the engine (the held jobs' records and reservations stay), let
 * edit change the store if given, and restart the ledger past an ordinary
 * reservation's timeout (600 s), expiring what has run out. */
static void at_stop(struct at *at, int (*edit)(struct store_txn *txn, void *data), void *data)
{
    at->cat = generate_catalog(at->gt.g);
    catalog_ref(at->cat);
    generate_close(at->gt.g, gt_closed, &at->gt);
    gt_wait(&at->gt, &at->gt.closed, 1);
    if (edit != NULL)
        assert_int_equal(lt_store_run(&at->gt.lt, edit, data), 0);
    lt_ledger_close(&at->gt.lt);
    at->gt.lt.now += 30 * 60000;
    at->gt.wall += 30 * 60000;
    lt_ledger_open(&at->gt.lt);
    at->gt.core.ledger = at->gt.lt.ledger;
    struct lt_res res;
    assert_int_equal(lt_expire(&at->gt.lt, &res), 0);
}

/* A new engine on the same catalog and rules, after its recovery. */
static void at_start(struct at *at)
{
    struct generate_options opts = {.clock = {.now_ms = gt_clock, .data = &at->gt}};
    at->gt.g = generate_new(&at->gt.lt.loop, &at->gt.core, at->cat, &opts);
    catalog_unref(at->cat);
    at->cat = NULL;
    assert_non_null(at->gt.g);
    at->gt.core.generate = at->gt.g;
    struct approval_rules r;
    at_rules(&r);
    generate_approval_configure(at->gt.g, &r);
    int done = 0;
    assert_int_equal(generate_recover(at->gt.g, at_recovered, &done), 0);
    gt_wait(&at->gt, &done, 1);
}

/* Hold a turn of user's on "h" with a small PNG attached. */
static const unsigned char at_png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 7, 8, 9};

static void at_hold_image(struct at *at, struct reply_capture *cap, const char *user,
                          const char *prompt, char id[APPROVAL_ID_LEN + 1])
{
    int before = at->host.count;
    struct invocation inv;
    gt_inv(&inv, cap, user, NULL);
    gt_inv_png(&inv, at_png, sizeof(at_png));
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = prompt, .model = "h"};
    generate_submit(at->gt.g, &inv, &req);
    at_held(at, cap, before, id);
}

static void test_restart_while_held(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    struct reply_capture cap, adm;
    char id[APPROVAL_ID_LEN + 1], gone[APPROVAL_ID_LEN + 1];
    /* One decided before the restart. */
    at_hold(&at, &cap, "ivy", "h", "decided before", gone);
    char line[64];
    snprintf(line, sizeof(line), "admin reject %s", gone);
    at_line(&at, "boss", true, line, &adm);
    reply_capture_close(&adm);
    at_told(&at, "ivy", "rejected your request");
    gt_settle(&at.gt, 5);
    /* Held with an image attached: the record keeps it too. gus starts
     * with enough for the image's reservation (1,600 input tokens). */
    at.gt.core.welcome_bonus = 1000;
    at_hold_image(&at, &cap, "gus", "survive this", id);
    int64_t held = at_pending(&at, "gus");
    assert_true(held > 0);

    at_stop(&at, NULL, NULL);
    assert_int_equal(at_pending(&at, "gus"), held);
    at_start(&at);
    assert_int_equal(at_pending(&at, "gus"), held);

    at_line(&at, "boss", true, "admin approvals", &adm);
    assert_has(&adm, id);
    assert_null(strstr(adm.text, gone));
    reply_capture_close(&adm);
    /* The decision made before the restart is still known, and by whom. */
    snprintf(line, sizeof(line), "admin approve %s", gone);
    at_line(&at, "boss", true, line, &adm);
    assert_has(&adm, "already decided: rejected by console:boss");
    reply_capture_close(&adm);
    int before = at.host.count;
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_line(&at, "boss", true, line, &adm);
    assert_has(&adm, "approved");
    reply_capture_close(&adm);
    struct provider_call *c = held_wait_call(&at.gt, 0);
    assert_string_equal(c->last_prompt, "survive this");
    assert_int_equal(c->nimages, 1);
    assert_string_equal(c->image_mime, "image/png");
    assert_int_equal(c->image_len, sizeof(at_png));
    assert_memory_equal(c->image_head, at_png, sizeof(at_png));
    held_finish(c, 0, "still here", 5, 5);
    /* The answer reaches the member as a notice. */
    bool told = false;
    for (int seen = before; !told && !at.gt.guard_fired;) {
        for (; seen < at.host.count; seen++) {
            if (strstr(at.host.n[seen].text, "still here") != NULL) {
                told = true;
                assert_string_equal(at.host.n[seen].to.user_id, "gus");
            }
        }
        if (!told)
            uv_run(&at.gt.lt.loop, UV_RUN_ONCE);
    }
    gt_settle(&at.gt, 5);
    assert_true(told);
    assert_true(gt_balance(&at.gt, "gus") < 1000); /* charged: below the bonus */
    at.gt.closed = 0;
    at_done(&at);
}

/* A held turn's image that does not read back after a restart (the record
 * damaged): the turn is not run without it; its member hears why, and its
 * reservation is released. */
static int at_spoil_image(const char *key, const char *value, void *data)
{
    struct store_txn *txn = data;
    const char *img = strstr(value, "\"image\":\"");
    if (img == NULL)
        return 0;
    char *spoilt = strdup(value);
    assert_non_null(spoilt);
    memcpy(spoilt + (img - value) + 9, "!!!!", 4);
    int rc = store_txn_state_put(txn, "gen.job", key, spoilt, 0);
    free(spoilt);
    return rc < 0 ? rc : 1;
}

static int at_spoil(struct store_txn *txn, void *data)
{
    (void)data;
    int rc = store_txn_state_each(txn, "gen.job", "", at_spoil_image, txn);
    return rc == 1 ? 0 : -1; /* a record with an image was found and spoilt */
}

static void test_restart_image_unreadable(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    at.gt.core.welcome_bonus = 1000;
    struct reply_capture cap;
    char id[APPROVAL_ID_LEN + 1];
    at_hold_image(&at, &cap, "joy", "what is this", id);
    assert_true(at_pending(&at, "joy") > 0);
    at_stop(&at, at_spoil, NULL);
    at_start(&at);
    at_told(&at, "joy", "its image did not read back");
    gt_settle(&at.gt, 5);
    assert_int_equal(at_pending(&at, "joy"), 0);
    assert_int_equal(gt_balance(&at.gt, "joy"), 1000);
    assert_int_equal(at.gt.held.ncalls, 0);
    at.gt.closed = 0;
    at_done(&at);
}

/* A free model on the list is held too (the queue is for what is asked,
 * not only for what it costs): nothing is reserved, the hold survives a
 * restart, and once approved it runs and costs nothing. */
static void test_free_model_held(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    struct reply_capture cap, adm;
    char id[APPROVAL_ID_LEN + 1];
    int before = at.host.count;
    gt_submit(&at.gt, &cap, "fay", PROVIDER_TEXT, "hfree", "free but watched");
    while (at.host.count < before + 2 && !at.gt.guard_fired)
        uv_run(&at.gt.lt.loop, UV_RUN_ONCE);
    assert_false(at.gt.guard_fired);
    assert_has(&cap, "waits for an admin's review: place 1 in the review queue (free");
    reply_capture_close(&cap);
    const struct ah_notice *n = at_notice(&at, COMMAND_PLATFORM_CONSOLE, id);
    assert_non_null(strstr(n->text, "asks hfree (free)"));
    gt_settle(&at.gt, 5);
    assert_int_equal(at.gt.held.ncalls, 0);
    assert_int_equal(at_pending(&at, "fay"), 0);

    at_stop(&at, NULL, NULL);
    at_start(&at);
    char line[64];
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_line(&at, "boss", true, line, &adm);
    assert_has(&adm, "approved");
    reply_capture_close(&adm);
    struct provider_call *c = held_wait_call(&at.gt, 0);
    assert_string_equal(c->last_prompt, "free but watched");
    held_finish(c, 0, "watched and free", 5, 5);
    at_told(&at, "fay", "watched and free");
    gt_settle(&at.gt, 5);
    assert_int_equal(gt_balance(&at.gt, "fay"), 100);
    assert_int_equal(at_pending(&at, "fay"), 0);
    /* Rejected, a free job is told nothing was charged, and nothing of a
     * reservation (it had none). */
    before = at.host.count;
    gt_submit(&at.gt, &cap, "fay", PROVIDER_TEXT, "hfree", "free again");
    while (at.host.count < before + 2 && !at.gt.guard_fired)
        uv_run(&at.gt.lt.loop, UV_RUN_ONCE);
    reply_capture_close(&cap);
    at_notice(&at, COMMAND_PLATFORM_CONSOLE, id);
    snprintf(line, sizeof(line), "admin reject %s", id);
    at_line(&at, "boss", true, line, &adm);
    reply_capture_close(&adm);
    const char *told = at_told(&at, "fay", "rejected your request");
    assert_non_null(strstr(told, "Nothing was charged."));
    assert_null(strstr(told, "reservation"));
    gt_settle(&at.gt, 5);
    at.gt.closed = 0;
    at_done(&at);
}

/* A rejected job's counts go back with its void, in one commit: when its
 * member is told, the hour's count that held it is already given back. */
static void test_rejected_counts_go_back_with_void(void **state)
{
    (void)state;
    struct at at;
    struct catalog_limits l = {.user_per_hour = 5};
    at_init_with(&at, &l);
    struct reply_capture cap, adm;
    char id[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap, "rex", "h", "count me", id);
    at.host.db_path = at.gt.lt.path;
    at.host.probe_on = "rejected your request";
    at.host.probe_sql = "SELECT COALESCE(SUM(used), -1) FROM counters WHERE name LIKE 'gen.user:%'";
    at.host.probed = -2;
    assert_int_equal(test_sql_int(at.host.db_path, at.host.probe_sql), 1);
    char line[64];
    snprintf(line, sizeof(line), "admin reject %s", id);
    at_line(&at, "boss", true, line, &adm);
    reply_capture_close(&adm);
    at_told(&at, "rex", "rejected your request");
    assert_int_equal(at.host.probed, 0);
    gt_settle(&at.gt, 5);
    assert_int_equal(test_sql_int(at.host.db_path, at.host.probe_sql), 0);
    assert_int_equal(at_pending(&at, "rex"), 0);
    at_done(&at);
}

/* Whether s is valid UTF-8 (every sequence whole). */
static bool at_utf8_whole(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        int more = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : 3;
        p++;
        for (int i = 0; i < more; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

/* An admin whose display name is long and not ASCII: a second decision
 * hears who decided, in whole characters (before, the name was cut to
 * fit inside a character, and the answer was invalid UTF-8, which
 * Telegram refuses to send). */
static void test_long_actor_name_cut_whole(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    /* Both ways the name may fall against the limit: ids of even and odd
     * length before it. */
    static const char *const ids[] = {"12345678901234567890", "123456789012345678901"};
    for (int k = 0; k < 2; k++) {
        struct reply_capture cap;
        char id[APPROVAL_ID_LEN + 1];
        at_hold(&at, &cap, "ann", "h", "tell me a story", id);
        struct invocation by;
        memset(&by, 0, sizeof(by));
        by.platform = COMMAND_PLATFORM_CONSOLE;
        by.admin = true;
        snprintf(by.user_id, sizeof(by.user_id), "%s", ids[k]);
        size_t n = 0;
        while (n + 3 < sizeof(by.user_name)) { /* "\xc3\xa9" (e acute) is two bytes */
            memcpy(by.user_name + n, "\xc3\xa9", 2);
            n += 2;
        }
        by.user_name[n] = '\0';
        char msg[512];
        assert_int_equal(
            generate_approval_decide(at.gt.g, &by, id, APPROVAL_REJECTED, NULL, msg, sizeof(msg)),
            0);
        at_told(&at, "ann", "rejected your request");
        gt_settle(&at.gt, 5);
        assert_int_equal(
            generate_approval_decide(at.gt.g, &by, id, APPROVAL_APPROVED, NULL, msg, sizeof(msg)),
            HB_ESTATE);
        assert_non_null(strstr(msg, "already decided"));
        assert_true(at_utf8_whole(msg));
    }
    at_done(&at);
}

/* More decisions than one page of the store's listing (1,000) before an
 * old one. */
static int at_many_decided(struct store_txn *txn, void *data)
{
    const int64_t *now = data;
    char key[32], value[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "0%07d", i);
        snprintf(value, sizeof(value), "%lld 1 console:boss", (long long)*now);
        int rc = store_txn_state_put(txn, "approval.decided", key, value, 1);
        if (rc < 0)
            return rc;
    }
    return store_txn_state_put(txn, "approval.decided", "ffffffff", "1 1 console:boss", 1);
}

/* A start reads every decision kept, not the first 1,000: one past them
 * that is older than a week is dropped too (before, only the first page
 * was read, and the rows past it were kept for ever). */
static void test_start_reads_every_decision(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    int64_t now = at.gt.wall + 30 * 60000; /* as the restart below sees it */
    at_stop(&at, at_many_decided, &now);
    at_start(&at);
    /* The start's reads and its removal are store jobs, a round trip each:
     * waited for, not given a fixed number of turns of the loop (ten were
     * too few on a loaded machine). */
    static const char old_row[] =
        "SELECT COUNT(*) FROM state WHERE ns = 'approval.decided' AND key = 'ffffffff'";
    uint64_t end = test_now_ms() + 10000;
    while (test_sql_int(at.gt.lt.path, old_row) != 0 && test_now_ms() < end) {
        uv_run(&at.gt.lt.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(test_sql_int(at.gt.lt.path, old_row), 0);
    assert_int_equal(
        test_sql_int(at.gt.lt.path, "SELECT COUNT(*) FROM state WHERE ns = 'approval.decided'"),
        1000);
    at_done(&at);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_held_job_approved),
    cmocka_unit_test(test_held_job_edited),
    cmocka_unit_test(test_held_job_rejected_no_charge),
    cmocka_unit_test(test_held_job_times_out),
    cmocka_unit_test(test_button_presses),
    cmocka_unit_test(test_filter_review_holds),
    cmocka_unit_test(test_persona_and_feature_switch),
    cmocka_unit_test(test_new_member_held),
    cmocka_unit_test(test_restart_while_held),
    cmocka_unit_test(test_start_reads_every_decision),
    cmocka_unit_test(test_long_actor_name_cut_whole),
    cmocka_unit_test(test_restart_image_unreadable),
    cmocka_unit_test(test_free_model_held),
    cmocka_unit_test(test_rejected_counts_go_back_with_void),
};

TEST_GROUP_DEFINE(approval, tests, gt_group_setup, lt_group_teardown)
