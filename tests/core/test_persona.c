/* Personas in the generation engine (core/persona.h, core/generate_persona.c):
 * which persona a generation uses (member, channel, thread or topic, group,
 * bot), that the choices survive a reload of the store, the exact request
 * bodies on both wires with the prompt's variables filled in and the
 * persona's settings over the model's, the prompt in the estimate, the
 * persona's forbidden words, /persona with its buttons, and a live reload
 * that changes a persona. Every test ends with uv_loop_close() == 0. */
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include "adapters/openai/openai.h"
#include "core/commands.h"
#include "core/handlers.h"
#include "core/persona.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pt_done {
    int n;
    int rc;
};

static void pt_saved(int rc, void *data)
{
    struct pt_done *d = data;
    d->rc = rc;
    d->n++;
}

/* Choose name at level for inv and wait until the store has it. */
static void pt_choose(struct gt *gt, const struct invocation *inv, enum persona_level level,
                      const char *name)
{
    struct pt_done d = {0};
    assert_int_equal(persona_choose(&gt->core, inv, level, name, pt_saved, &d), 0);
    gt_wait(gt, &d.n, 1);
    assert_int_equal(d.rc, 0);
}

static int pt_nothing(struct store_txn *txn, void *data)
{
    (void)txn;
    (void)data;
    return 0;
}

static const char *pt_resolved(struct gt *gt, const struct invocation *inv,
                               enum persona_level *level)
{
    const struct catalog_persona *p =
        persona_resolve(&gt->core, generate_catalog(gt->g), inv, level);
    return p != NULL ? p->name : "";
}

static void pt_init(struct gt *gt)
{
    gt_init(gt, NULL, NULL, 0, 0);
    gt->core.personas = persona_dir_new();
    assert_non_null(gt->core.personas);
}

static void pt_done(struct gt *gt)
{
    struct persona_dir *d = gt->core.personas;
    gt_done(gt);
    persona_dir_free(d);
}

/* Member > channel (a thread or topic takes its parent's) > group > bot. */
static void test_resolution_order_and_inheritance(void **state)
{
    (void)state;
    struct gt gt;
    pt_init(&gt);
    struct reply_capture cap;
    struct invocation inv;
    enum persona_level level;
    gt_inv(&inv, &cap, "u1", "g1"); /* channel c-g1 */
    assert_string_equal(pt_resolved(&gt, &inv, &level), "");
    assert_int_equal(level, PERSONA_LEVEL_NONE);

    pt_choose(&gt, &inv, PERSONA_LEVEL_GROUP, "pirate");
    assert_string_equal(pt_resolved(&gt, &inv, &level), "pirate");
    assert_int_equal(level, PERSONA_LEVEL_GROUP);

    pt_choose(&gt, &inv, PERSONA_LEVEL_CHANNEL, "quiet");
    assert_string_equal(pt_resolved(&gt, &inv, &level), "quiet");
    assert_int_equal(level, PERSONA_LEVEL_CHANNEL);

    /* Another channel of the group has only the group's. */
    struct invocation other = inv;
    snprintf(other.channel_id, sizeof(other.channel_id), "c-other");
    assert_string_equal(pt_resolved(&gt, &other, &level), "pirate");
    assert_int_equal(level, PERSONA_LEVEL_GROUP);

    /* A Discord thread of c-g1 takes its channel's, until it has its own. */
    struct invocation thread = inv;
    snprintf(thread.channel_id, sizeof(thread.channel_id), "t-1");
    snprintf(thread.parent_channel_id, sizeof(thread.parent_channel_id), "c-g1");
    assert_string_equal(pt_resolved(&gt, &thread, &level), "quiet");
    assert_int_equal(level, PERSONA_LEVEL_CHANNEL);
    pt_choose(&gt, &thread, PERSONA_LEVEL_CHANNEL, "pirate");
    assert_string_equal(pt_resolved(&gt, &thread, &level), "pirate");
    assert_string_equal(pt_resolved(&gt, &inv, &level), "quiet"); /* the parent keeps its own */

    /* A Telegram forum topic takes its chat's, until it has its own. */
    struct invocation topic = inv;
    snprintf(topic.thread_id, sizeof(topic.thread_id), "5");
    assert_string_equal(pt_resolved(&gt, &topic, &level), "quiet");
    pt_choose(&gt, &topic, PERSONA_LEVEL_CHANNEL, "pirate");
    assert_string_equal(pt_resolved(&gt, &topic, &level), "pirate");
    assert_string_equal(pt_resolved(&gt, &inv, &level), "quiet");

    /* The member's own choice wins where its allow list lets them. */
    pt_choose(&gt, &inv, PERSONA_LEVEL_MEMBER, "pirate");
    assert_string_equal(pt_resolved(&gt, &inv, &level), "pirate");
    assert_int_equal(level, PERSONA_LEVEL_MEMBER);
    pt_choose(&gt, &inv, PERSONA_LEVEL_MEMBER, "vip"); /* only for console:boss */
    assert_string_equal(pt_resolved(&gt, &inv, &level), "quiet");
    assert_int_equal(level, PERSONA_LEVEL_CHANNEL);
    struct invocation boss = inv;
    snprintf(boss.user_id, sizeof(boss.user_id), "boss");
    pt_choose(&gt, &boss, PERSONA_LEVEL_MEMBER, "vip");
    assert_string_equal(pt_resolved(&gt, &boss, &level), "vip");

    /* In a DM only the member's own counts; no group level exists there. */
    struct invocation dm;
    gt_inv(&dm, &cap, "u2", NULL);
    assert_int_equal(persona_choose(&gt.core, &dm, PERSONA_LEVEL_GROUP, "pirate", NULL, NULL),
                     HB_EINVAL);
    assert_string_equal(pt_resolved(&gt, &dm, &level), "");

    /* Clearing falls back a level. */
    pt_choose(&gt, &inv, PERSONA_LEVEL_CHANNEL, NULL);
    pt_choose(&gt, &inv, PERSONA_LEVEL_MEMBER, NULL);
    assert_string_equal(pt_resolved(&gt, &inv, &level), "pirate");
    assert_int_equal(level, PERSONA_LEVEL_GROUP);

    /* Everything chosen is in the store: a fresh directory reads it back. */
    struct persona_dir *old = gt.core.personas;
    gt.core.personas = persona_dir_new();
    assert_string_equal(pt_resolved(&gt, &thread, &level), "");
    struct pt_done d = {0};
    assert_int_equal(persona_dir_load(&gt.core, pt_saved, &d), 0);
    gt_wait(&gt, &d.n, 1);
    assert_int_equal(d.rc, 0);
    assert_string_equal(pt_resolved(&gt, &thread, &level), "pirate");
    assert_string_equal(pt_resolved(&gt, &topic, &level), "pirate");
    assert_string_equal(pt_resolved(&gt, &inv, &level), "pirate");
    assert_int_equal(level, PERSONA_LEVEL_GROUP);
    assert_string_equal(pt_resolved(&gt, &boss, &level), "vip");

    /* Two daemons on one ledger (old is the other's directory): a choice
     * cleared there counts here once this one reads the choices again. */
    struct persona_dir *mine = gt.core.personas;
    gt.core.personas = old;
    pt_choose(&gt, &inv, PERSONA_LEVEL_GROUP, NULL);
    gt.core.personas = mine;
    assert_string_equal(pt_resolved(&gt, &inv, &level), "pirate");
    d = (struct pt_done){0};
    assert_int_equal(persona_dir_refresh(&gt.core, pt_saved, &d), 0);
    assert_int_equal(persona_dir_refresh(&gt.core, pt_saved, &d), HB_EBUSY);
    gt_wait(&gt, &d.n, 1);
    assert_int_equal(d.rc, 0);
    assert_string_equal(pt_resolved(&gt, &inv, &level), "");
    assert_string_equal(pt_resolved(&gt, &boss, &level), "vip");
    /* A choice made here while the rows are read is newer: it stays. */
    d = (struct pt_done){0};
    assert_int_equal(persona_dir_refresh(&gt.core, pt_saved, &d), 0);
    pt_choose(&gt, &inv, PERSONA_LEVEL_GROUP, "pirate");
    gt_wait(&gt, &d.n, 1);
    assert_string_equal(pt_resolved(&gt, &inv, &level), "pirate");
    /* A choice heard from the other daemon while a read is under way here
     * that began before it: persona_dir_refresh_after reads again after
     * it (persona_dir_refresh refuses: its caller waits for its own). */
    d = (struct pt_done){0};
    struct pt_done theirs = {0};
    assert_int_equal(persona_dir_refresh(&gt.core, pt_saved, &d), 0);
    gt.core.personas = old;
    assert_int_equal(persona_choose(&gt.core, &inv, PERSONA_LEVEL_GROUP, "vip", pt_saved, &theirs),
                     0);
    gt.core.personas = mine;
    assert_int_equal(persona_dir_refresh(&gt.core, NULL, NULL), HB_EBUSY);
    assert_int_equal(persona_dir_refresh_after(&gt.core), 0);
    gt_wait(&gt, &d.n, 1);
    gt_wait(&gt, &theirs.n, 1);
    assert_int_equal(lt_store_run(&gt.lt, pt_nothing, NULL), 0); /* queued behind it */
    assert_string_equal(pt_resolved(&gt, &inv, &level), "vip");
    persona_dir_free(old);
    reply_capture_close(&cap);
    pt_done(&gt);
}

/* The persona's prompt goes where a system prompt goes on each wire, its
 * variables filled in, and its settings replace or merge over the
 * model's: OpenAI's first "system" message, Anthropic's top-level
 * "system". */
static void test_request_bodies_with_persona(void **state)
{
    (void)state;
    struct gt gt;
    pt_init(&gt);
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, "u1", "g1");
    snprintf(inv.user_name, sizeof(inv.user_name), "Ann");
    snprintf(inv.scope_name, sizeof(inv.scope_name), "The Deck");
    reply_capture_close(&cap);
    pt_choose(&gt, &inv, PERSONA_LEVEL_GROUP, "pirate");

    gt_inv(&inv, &cap, "u1", "g1");
    snprintf(inv.user_name, sizeof(inv.user_name), "Ann");
    snprintf(inv.scope_name, sizeof(inv.scope_name), "The Deck");
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "salut", .model = "tuned"};
    generate_submit(gt.g, &inv, &req);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "Hello, world");
    assert_string_equal(gt.seen_body,
                        "{\"model\":\"ok\",\"messages\":[{\"role\":\"system\",\"content\":"
                        "\"Arr, Ann of The Deck, 2026-01-01, tuned.\"},{\"role\":\"user\","
                        "\"content\":\"salut\"}],\"stream\":true,\"stream_options\":"
                        "{\"include_usage\":true},\"max_completion_tokens\":50,"
                        "\"temperature\":0.9,\"stop\":[\"ARR\"],\"reasoning_effort\":\"high\","
                        "\"seed\":7}");
    reply_capture_close(&cap);

    gt_inv(&inv, &cap, "u2", "g1");
    snprintf(inv.user_name, sizeof(inv.user_name), "Bo");
    req.model = "tunedc";
    generate_submit(gt.g, &inv, &req);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "Bonjour le monde");
    assert_string_equal(gt.seen_body,
                        "{\"model\":\"tunedc\",\"max_tokens\":50,\"stream\":true,\"system\":"
                        "\"Arr, Bo of this group, 2026-01-01, tunedc.\",\"messages\":[{\"role\":"
                        "\"user\",\"content\":\"salut\"}],\"temperature\":0.9,\"top_p\":0.5,"
                        "\"stop_sequences\":[\"ARR\"],\"reasoning_effort\":\"high\",\"seed\":7}");
    reply_capture_close(&cap);

    /* Without a persona the model's own settings go, as before. */
    gt_inv(&inv, &cap, "u3", "g2");
    req.model = "tuned";
    generate_submit(gt.g, &inv, &req);
    gt_wait(&gt, &cap.finished, 1);
    assert_non_null(strstr(gt.seen_body, "\"content\":\"Be brief.\""));
    assert_non_null(strstr(gt.seen_body, "\"reasoning_effort\":\"low\"}"));
    reply_capture_close(&cap);
    pt_done(&gt);
}

/* The system prompt counts in the reservation (the price shown before the
 * work) and the persona's lower output cap lowers it. */
static void test_estimate_counts_the_prompt(void **state)
{
    (void)state;
    struct gt gt;
    pt_init(&gt);
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, "u1", NULL);
    pt_choose(&gt, &inv, PERSONA_LEVEL_MEMBER, "pirate");
    /* "h": 1 per request, 100 per 1,000 input and output tokens, at most
     * 100 output tokens. The prompt "hi" and the filled system prompt
     * "Arr, u1 of a private chat, 2026-01-01, h." (41 bytes) at a token a
     * byte: 1 + ceil(43 * 0.1) + ceil(50 * 0.1) = 1 + 5 + 5 = 11. */
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi", .model = "h"};
    generate_submit(gt.g, &inv, &req);
    struct provider_call *call = held_wait_call(&gt, 0);
    assert_int_equal(lt_balance(&gt.lt, "console:u1").pending_debits, 11);
    assert_has(&cap, "up to 11 credits");
    held_finish(call, 0, "fine", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);

    /* Without the persona: 1 + ceil(2 * 0.1) + ceil(100 * 0.1) = 12. */
    gt_inv(&inv, &cap, "u1", NULL);
    pt_choose(&gt, &inv, PERSONA_LEVEL_MEMBER, NULL);
    generate_submit(gt.g, &inv, &req);
    call = held_wait_call(&gt, 1);
    assert_int_equal(lt_balance(&gt.lt, "console:u1").pending_debits, 12);
    held_finish(call, 0, "fine", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    pt_done(&gt);
}

/* The persona's forbidden words block prompts and answers while it is in
 * use, and only then. */
static void test_forbidden_words_while_in_use(void **state)
{
    (void)state;
    struct gt gt;
    pt_init(&gt);
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, "u1", NULL);
    pt_choose(&gt, &inv, PERSONA_LEVEL_MEMBER, "quiet");
    struct generate_request req = {
        .modality = PROVIDER_TEXT, .prompt = "where is the treasure", .model = "h"};
    generate_submit(gt.g, &inv, &req);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "refused by the content filter (rule quiet)");
    reply_capture_close(&cap);

    gt_inv(&inv, &cap, "u1", NULL);
    req.prompt = "where is it";
    generate_submit(gt.g, &inv, &req);
    struct provider_call *call = held_wait_call(&gt, 0);
    held_finish(call, 0, "under the treasure tree", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "withheld by the content filter (rule quiet)");
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    reply_capture_close(&cap);

    /* Another member, no persona: the same words pass. */
    gt_inv(&inv, &cap, "u2", NULL);
    req.prompt = "where is the treasure";
    generate_submit(gt.g, &inv, &req);
    call = held_wait_call(&gt, 1);
    held_finish(call, 0, "the treasure is here", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "the treasure is here");
    reply_capture_close(&cap);
    pt_done(&gt);
}

/* A persona's model is the default; the member's asking still wins. */
static void test_persona_model_default(void **state)
{
    (void)state;
    struct gt gt;
    pt_init(&gt);
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, "boss", NULL);
    pt_choose(&gt, &inv, PERSONA_LEVEL_MEMBER, "vip");
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi"};
    generate_submit(gt.g, &inv, &req);
    struct provider_call *call = held_wait_call(&gt, 0);
    assert_string_equal(call->model, "h2");
    held_finish(call, 0, "fine", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    pt_done(&gt);
}

/* /persona lists the personas this member may use with a button each (and
 * None); /persona NAME and a button press choose; the prompt is shown only
 * where the persona allows. */
static void test_persona_command_and_buttons(void **state)
{
    (void)state;
    struct gt gt;
    pt_init(&gt);
    const struct command_spec *spec = commands_find("persona");
    assert_non_null(spec);
    struct reply_capture cap;
    struct invocation inv;
    char err[256];
    gt_inv(&inv, &cap, "u1", "g1");
    inv.spec = spec;
    assert_int_equal(command_args_parse(spec, "", &inv, err, sizeof(err)), 0);
    cmd_persona(&gt.core, &inv);
    assert_int_equal(cap.finished, 1);
    assert_has(&cap, "pirate: Talks like a pirate");
    assert_has(&cap, "quiet: Never speaks of treasure");
    assert_null(strstr(cap.text, "vip")); /* not for u1 */
    assert_has(&cap, "No persona is in use here.");
    assert_int_equal(cap.nbuttons, 3);
    assert_string_equal(cap.buttons[0].label, "pirate");
    assert_string_equal(cap.buttons[1].label, "quiet");
    assert_string_equal(cap.buttons[2].label, "None");
    struct reply_button pirate = cap.buttons[0];
    invocation_clear(&inv);
    reply_capture_close(&cap);

    /* The pirate button, pressed by its member. */
    gt_inv(&inv, &cap, "u1", "g1");
    snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", pirate.ref);
    cmd_persona_button(&gt.core, &inv);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "From now on your /chat uses the persona pirate.");
    assert_null(strstr(cap.text, "Arr")); /* its prompt is not shown */
    reply_capture_close(&cap);
    assert_string_equal(persona_chosen(&gt.core, &inv, PERSONA_LEVEL_MEMBER), "pirate");

    /* Someone else's press of it is refused. */
    gt_inv(&inv, &cap, "u2", "g1");
    snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", pirate.ref);
    cmd_persona_button(&gt.core, &inv);
    assert_has(&cap, "belongs to someone else's /persona");
    assert_string_equal(persona_chosen(&gt.core, &inv, PERSONA_LEVEL_MEMBER), "");
    reply_capture_close(&cap);

    /* The list says which one is in use; a persona that shows its prompt
     * shows it when chosen. */
    gt_inv(&inv, &cap, "u1", "g1");
    inv.spec = spec;
    assert_int_equal(command_args_parse(spec, "", &inv, err, sizeof(err)), 0);
    cmd_persona(&gt.core, &inv);
    assert_has(&cap, "pirate: Talks like a pirate (in use here)");
    assert_has(&cap, "In use here: pirate (your choice).");
    invocation_clear(&inv);
    reply_capture_close(&cap);
    gt_inv(&inv, &cap, "u1", "g1");
    inv.spec = spec;
    assert_int_equal(command_args_parse(spec, "quiet", &inv, err, sizeof(err)), 0);
    cmd_persona(&gt.core, &inv);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "persona quiet.\nIts system prompt:\nSay little.");
    invocation_clear(&inv);
    reply_capture_close(&cap);

    /* A name the member may not use is refused and nothing changes. */
    gt_inv(&inv, &cap, "u1", "g1");
    inv.spec = spec;
    assert_int_equal(command_args_parse(spec, "vip", &inv, err, sizeof(err)), 0);
    cmd_persona(&gt.core, &inv);
    assert_has(&cap, "There is no persona called \"vip\" that you can use here.");
    assert_string_equal(persona_chosen(&gt.core, &inv, PERSONA_LEVEL_MEMBER), "quiet");
    invocation_clear(&inv);
    reply_capture_close(&cap);
    pt_done(&gt);
}

/* Admins set and clear a group's or a channel's persona; the answer is
 * the channel's to read. */
static void test_admin_persona_set_and_clear(void **state)
{
    (void)state;
    struct gt gt;
    pt_init(&gt);
    struct reply_capture cap;
    struct invocation inv;
    char err[256];
    const struct command_spec *set = commands_find("admin persona set");
    const struct command_spec *clear = commands_find("admin persona clear");
    assert_non_null(set);
    assert_non_null(clear);
    gt_inv(&inv, &cap, "admin1", "g1");
    inv.admin = true;
    inv.spec = set;
    assert_int_equal(command_args_parse(set, "pirate channel", &inv, err, sizeof(err)), 0);
    cmd_admin_persona_set(&gt.core, &inv);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "pirate is now the persona of this channel.");
    assert_false(cap.last_ephemeral);
    invocation_clear(&inv);
    reply_capture_close(&cap);
    assert_string_equal(persona_chosen(&gt.core, &inv, PERSONA_LEVEL_CHANNEL), "pirate");
    assert_string_equal(persona_chosen(&gt.core, &inv, PERSONA_LEVEL_GROUP), "");

    gt_inv(&inv, &cap, "admin1", "g1");
    inv.admin = true;
    inv.spec = set;
    assert_int_equal(command_args_parse(set, "nobody", &inv, err, sizeof(err)), 0);
    cmd_admin_persona_set(&gt.core, &inv);
    assert_has(&cap, "There is no persona called \"nobody\" in bot.conf.");
    invocation_clear(&inv);
    reply_capture_close(&cap);

    gt_inv(&inv, &cap, "admin1", "g1");
    inv.admin = true;
    inv.spec = clear;
    assert_int_equal(command_args_parse(clear, "channel", &inv, err, sizeof(err)), 0);
    cmd_admin_persona_clear(&gt.core, &inv);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "No persona is set for this channel any more.");
    invocation_clear(&inv);
    reply_capture_close(&cap);
    assert_string_equal(persona_chosen(&gt.core, &inv, PERSONA_LEVEL_CHANNEL), "");
    /* Both settings are in the audit trail, with who made them. */
    assert_int_equal(test_sql_int_wait(&gt.lt.loop, gt.lt.path,
                                       "SELECT COUNT(*) FROM audit WHERE action = "
                                       "'persona.set' AND actor = 'console:admin1' AND "
                                       "detail LIKE '%pirate%'"),
                     1);
    assert_int_equal(test_sql_int_wait(&gt.lt.loop, gt.lt.path,
                                       "SELECT COUNT(*) FROM audit WHERE action = 'persona.clear'"),
                     1);

    /* In a DM there is no group to set it for. */
    gt_inv(&inv, &cap, "admin1", NULL);
    inv.admin = true;
    inv.spec = set;
    assert_int_equal(command_args_parse(set, "pirate", &inv, err, sizeof(err)), 0);
    cmd_admin_persona_set(&gt.core, &inv);
    assert_has(&cap, "Personas are set per server or group");
    invocation_clear(&inv);
    reply_capture_close(&cap);
    pt_done(&gt);
}

/* A reload swaps in a catalog whose persona changed: the next generation
 * uses the new prompt, and [bot] persona applies where nothing was chosen. */
static void test_live_reload_changes_persona(void **state)
{
    (void)state;
    struct gt gt;
    pt_init(&gt);
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, "u1", "g1");
    reply_capture_close(&cap);
    pt_choose(&gt, &inv, PERSONA_LEVEL_GROUP, "pirate");

    char base[128];
    snprintf(base, sizeof(base), "%s/v1", httpd_base_url(gt.srv));
    struct provider_settings os = {.name = "fakeai", .base_url = base, .api_key = "sk-test-123456"};
    struct catalog_provider_spec ps[] = {{.name = "fakeai",
                                          .provider = openai_provider_new(gt.http, &os),
                                          .timeout_ms = 2000,
                                          .max_concurrent = 4}};
    struct catalog_model_spec ms[] = {{.name = "ok",
                                       .provider = "fakeai",
                                       .modality = PROVIDER_TEXT,
                                       .price_request = 1,
                                       .max_output_tokens = 100,
                                       .enabled = true}};
    struct catalog_persona_spec pe[] = {
        {.name = "pirate", .system_prompt = "Now a parrot, {user}."},
        {.name = "robot", .system_prompt = "Beep at {server}."},
    };
    struct catalog_spec spec = {.providers = ps,
                                .nproviders = 1,
                                .models = ms,
                                .nmodels = 1,
                                .personas = pe,
                                .npersonas = 2,
                                .default_persona = "robot"};
    spec.limits.job_timeout_ms = 8000;
    char err[256] = "";
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    if (cat == NULL)
        fail_msg("catalog: %s", err);
    generate_catalog_set(gt.g, cat);
    catalog_unref(cat);

    gt_inv(&inv, &cap, "u1", "g1");
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi", .model = "ok"};
    generate_submit(gt.g, &inv, &req);
    gt_wait(&gt, &cap.finished, 1);
    assert_non_null(
        strstr(gt.seen_body, "{\"role\":\"system\",\"content\":\"Now a parrot, u1.\"}"));
    assert_null(strstr(gt.seen_body, "temperature"));
    reply_capture_close(&cap);

    /* Another group chose nothing: the bot's default persona. */
    gt_inv(&inv, &cap, "u1", "g7");
    generate_submit(gt.g, &inv, &req);
    gt_wait(&gt, &cap.finished, 1);
    assert_non_null(
        strstr(gt.seen_body, "{\"role\":\"system\",\"content\":\"Beep at this group.\"}"));
    reply_capture_close(&cap);
    pt_done(&gt);
}

/* The prompt's variables, braces and unknown words. */
static void test_prompt_expand(void **state)
{
    (void)state;
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = COMMAND_PLATFORM_TELEGRAM;
    inv.scope = COMMAND_SCOPE_GROUP;
    snprintf(inv.user_id, sizeof(inv.user_id), "42");
    snprintf(inv.scope_name, sizeof(inv.scope_name), "Cats");
    char *s = persona_prompt_expand("{user} in {server} on {date} with {model} as {bot}: "
                                    "{{literal}} {unknown} {user",
                                    &inv, "m1", "HAI", 1767225600000LL);
    assert_string_equal(s, "42 in Cats on 2026-01-01 with m1 as HAI: {literal} {unknown} {user");
    free(s);
    snprintf(inv.user_name, sizeof(inv.user_name), "Ann");
    inv.scope = COMMAND_SCOPE_DM;
    s = persona_prompt_expand("{user}/{server}", &inv, NULL, NULL, 0);
    assert_string_equal(s, "Ann/a private chat");
    free(s);
}

static const struct CMUnitTest persona_tests[] = {
    cmocka_unit_test(test_resolution_order_and_inheritance),
    cmocka_unit_test(test_request_bodies_with_persona),
    cmocka_unit_test(test_estimate_counts_the_prompt),
    cmocka_unit_test(test_forbidden_words_while_in_use),
    cmocka_unit_test(test_persona_model_default),
    cmocka_unit_test(test_persona_command_and_buttons),
    cmocka_unit_test(test_admin_persona_set_and_clear),
    cmocka_unit_test(test_live_reload_changes_persona),
    cmocka_unit_test(test_prompt_expand),
};

TEST_GROUP_DEFINE(persona, persona_tests, gt_group_setup, lt_group_teardown)
