/* Conversation memory in the store (core/generate_conversation.c): a
 * conversation survives a restart of the engine and its store, reply
 * chains and forum topics are conversations of their own, an idle
 * conversation starts over, retention and /forget delete the rows for
 * real, and the token budget trims the oldest turns, in memory and in the
 * store alike. */
#include "core/cluster.h"
#include "core/state.h"
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include "core/handlers.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One /chat turn of user: in group scope (NULL: a DM), replying to message
 * reply_to (NULL: none), in forum topic thread (NULL: none). The held
 * provider's call index is returned through *call after the answer; the
 * answer lands as bot message landed_id (NULL: not reported). */
static void ct_barrier_cb(int rc, const char *value, void *data)
{
    (void)rc;
    (void)value;
    (*(int *)data)++;
}

/* Wait until every store job queued so far has committed: jobs complete in
 * order, so a read queued now answers only after them. */
static void ct_barrier(struct gt *gt)
{
    int done = 0;
    assert_int_equal(
        state_get(ledger_store(gt->lt.ledger), "test", "barrier", ct_barrier_cb, &done), 0);
    gt_wait(gt, &done, 1);
}

static struct provider_call *ct_turn(struct gt *gt, size_t index, const char *user,
                                     const char *scope, const char *reply_to, const char *thread,
                                     const char *prompt, const char *answer, const char *landed_id)
{
    struct invocation inv;
    struct reply_capture cap;
    gt_inv(&inv, &cap, user, scope);
    if (reply_to != NULL)
        snprintf(inv.reply_to_id, sizeof(inv.reply_to_id), "%s", reply_to);
    if (thread != NULL)
        snprintf(inv.thread_id, sizeof(inv.thread_id), "%s", thread);
    char channel[COMMAND_ID_MAX];
    snprintf(channel, sizeof(channel), "%s", inv.channel_id);
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = prompt, .model = "h"};
    generate_submit(gt->g, &inv, &req);
    struct provider_call *call = held_wait_call(gt, index);
    held_finish(call, 0, answer, 1, 1);
    gt_wait(gt, &cap.finished, 1);
    assert_has(&cap, answer);
    if (landed_id != NULL)
        reply_landed(&cap.reply, channel, landed_id);
    reply_capture_close(&cap);
    gt_settle(gt, 5); /* the turn's batched write is queued (its flush timer ran) */
    ct_barrier(gt);   /* and committed, however slow the store is under load */
    return call;
}

struct ct_done {
    int done;
    int rc;
    int64_t n;
};

static void ct_done_cb(int rc, int64_t n, void *data)
{
    struct ct_done *d = data;
    d->rc = rc;
    d->n = n;
    d->done++;
}

static void ct_init(struct gt *gt, int64_t memory_tokens)
{
    struct catalog_limits limits = {.retry_max = 2,
                                    .memory_tokens = memory_tokens,
                                    .conversation_idle_ms = 3600000,
                                    .conversation_retention_ms = 3 * 3600000};
    gt_init(gt, &limits, NULL, 0, 0);
}

static void test_conversation_survives_restart(void **state)
{
    (void)state;
    struct gt gt;
    ct_init(&gt, 0);
    ct_turn(&gt, 0, "u1", NULL, NULL, NULL, "my name is Ada", "hello Ada", NULL);
    ct_turn(&gt, 1, "u1", NULL, NULL, NULL, "what is 2+2", "4", NULL);
    gt_restart(&gt);
    struct provider_call *c =
        ct_turn(&gt, 2, "u1", NULL, NULL, NULL, "what is my name?", "Ada", NULL);
    assert_int_equal(c->nmessages, 5); /* two questions and answers, then the prompt */
    assert_string_equal(c->first_prompt, "my name is Ada");
    /* Another member has nothing of it. */
    c = ct_turn(&gt, 3, "u2", NULL, NULL, NULL, "what is my name?", "no idea", NULL);
    assert_int_equal(c->nmessages, 1);
    /* /new starts over, and that holds across a restart too. */
    struct invocation inv;
    struct reply_capture cap;
    gt_inv(&inv, &cap, "u1", NULL);
    generate_conversation_reset(gt.g, &inv);
    reply_capture_close(&cap);
    gt_restart(&gt);
    c = ct_turn(&gt, 4, "u1", NULL, NULL, NULL, "hello again", "hi", NULL);
    assert_int_equal(c->nmessages, 1);
    gt_done(&gt);
}

static uint64_t ct_loads(struct gt *gt)
{
    struct generate_stats st;
    generate_stats_get(gt->g, &st);
    return st.conversation_loads;
}

/* The hot path: once the engine knows which places the store holds, a
 * message in a new place (a first message in a channel) waits for no
 * store lookup; one in a place with a stored conversation reads it once,
 * then the cache answers. */
static void test_new_place_needs_no_lookup(void **state)
{
    (void)state;
    struct gt gt;
    ct_init(&gt, 0);
    ct_turn(&gt, 0, "u1", NULL, NULL, NULL, "stored before", "ok", NULL);
    gt_restart(&gt);
    /* Store jobs complete in order: once a pass queued now is done, so is
     * the reading of the places queued at start. */
    struct ct_done d = {0};
    assert_int_equal(generate_conversation_maintain(gt.g, ct_done_cb, &d), 0);
    gt_wait(&gt, &d.done, 1);
    uint64_t loads = ct_loads(&gt);
    struct provider_call *c = ct_turn(&gt, 1, "u1", "g9", NULL, NULL, "a new place", "ok", NULL);
    assert_int_equal(c->nmessages, 1);
    assert_int_equal(ct_loads(&gt), loads);
    c = ct_turn(&gt, 2, "u1", "g9", NULL, NULL, "the new place again", "ok", NULL);
    assert_int_equal(c->nmessages, 3);
    assert_int_equal(ct_loads(&gt), loads);
    c = ct_turn(&gt, 3, "u1", NULL, NULL, NULL, "the stored place", "ok", NULL);
    assert_int_equal(c->nmessages, 3);
    assert_int_equal(ct_loads(&gt), loads + 1);
    c = ct_turn(&gt, 4, "u1", NULL, NULL, NULL, "and again", "ok", NULL);
    assert_int_equal(c->nmessages, 5);
    assert_int_equal(ct_loads(&gt), loads + 1);
    gt_done(&gt);
}

/* Two reply chains in one channel are two conversations; a plain message
 * continues the member's current one in the channel; a reply to another
 * member's answer starts the replier's own. */
static void test_reply_chains_kept_apart(void **state)
{
    (void)state;
    struct gt gt;
    ct_init(&gt, 0);
    /* Chain A starts with a plain message; its answer is bot message m1. */
    ct_turn(&gt, 0, "u1", "g1", NULL, NULL, "A: about cats", "cats purr", "m1");
    /* Chain B starts as a reply to a member's message the bot never saw. */
    struct provider_call *c =
        ct_turn(&gt, 1, "u1", "g1", "x9", NULL, "B: about ships", "ships float", "m2");
    assert_int_equal(c->nmessages, 1);
    /* A reply to m1 continues A, a reply to m2 continues B. */
    c = ct_turn(&gt, 2, "u1", "g1", "m1", NULL, "A: and kittens?", "kittens too", "m3");
    assert_int_equal(c->nmessages, 3);
    assert_string_equal(c->first_prompt, "A: about cats");
    c = ct_turn(&gt, 3, "u1", "g1", "m2", NULL, "B: and boats?", "boats too", "m4");
    assert_int_equal(c->nmessages, 3);
    assert_string_equal(c->first_prompt, "B: about ships");
    /* Replying to any bot message of a chain continues it: m3 is A's. */
    c = ct_turn(&gt, 4, "u1", "g1", "m3", NULL, "A: and lions?", "big cats", NULL);
    assert_int_equal(c->nmessages, 5);
    assert_string_equal(c->first_prompt, "A: about cats");
    /* A plain message continues the channel's current one: A. */
    c = ct_turn(&gt, 5, "u1", "g1", NULL, NULL, "A: plain again", "still cats", NULL);
    assert_int_equal(c->nmessages, 7);
    assert_string_equal(c->first_prompt, "A: about cats");
    /* Another member replying to the bot's answer in u1's chain starts
     * their own conversation: u1's turns are never theirs. */
    c = ct_turn(&gt, 6, "u2", "g1", "m2", NULL, "what did they say?", "a new talk", NULL);
    assert_int_equal(c->nmessages, 1);
    /* The chains are kept apart across a restart as well. */
    gt_restart(&gt);
    c = ct_turn(&gt, 7, "u1", "g1", "m4", NULL, "B: after restart", "ships again", NULL);
    assert_int_equal(c->nmessages, 5);
    assert_string_equal(c->first_prompt, "B: about ships");
    assert_int_equal(
        test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM conversations WHERE owner='console:u1'"), 2);
    gt_done(&gt);
}

/* A forum topic is a place of its own: a plain message there does not
 * continue the channel's conversation, and the other way round. */
static void test_topic_is_its_own_conversation(void **state)
{
    (void)state;
    struct gt gt;
    ct_init(&gt, 0);
    ct_turn(&gt, 0, "u1", "g1", NULL, NULL, "in the channel", "ok", NULL);
    struct provider_call *c = ct_turn(&gt, 1, "u1", "g1", NULL, "7", "in topic 7", "ok 7", NULL);
    assert_int_equal(c->nmessages, 1);
    c = ct_turn(&gt, 2, "u1", "g1", NULL, "8", "in topic 8", "ok 8", NULL);
    assert_int_equal(c->nmessages, 1);
    c = ct_turn(&gt, 3, "u1", "g1", NULL, "7", "topic 7 again", "ok 7 again", NULL);
    assert_int_equal(c->nmessages, 3);
    assert_string_equal(c->first_prompt, "in topic 7");
    c = ct_turn(&gt, 4, "u1", "g1", NULL, NULL, "channel again", "ok again", NULL);
    assert_int_equal(c->nmessages, 3);
    assert_string_equal(c->first_prompt, "in the channel");
    gt_done(&gt);
}

/* A conversation silent for conversation_idle starts over by itself,
 * the next message beginning a new one. */
static void test_idle_conversation_starts_over(void **state)
{
    (void)state;
    struct gt gt;
    ct_init(&gt, 0);
    ct_turn(&gt, 0, "u1", NULL, NULL, NULL, "first", "one", NULL);
    gt.wall += 59 * 60000; /* within the hour */
    struct provider_call *c = ct_turn(&gt, 1, "u1", NULL, NULL, NULL, "second", "two", NULL);
    assert_int_equal(c->nmessages, 3);
    gt.wall += 60 * 60000; /* an hour of silence */
    c = ct_turn(&gt, 2, "u1", NULL, NULL, NULL, "third", "three", NULL);
    assert_int_equal(c->nmessages, 1);
    c = ct_turn(&gt, 3, "u1", NULL, NULL, NULL, "fourth", "four", NULL);
    assert_int_equal(c->nmessages, 3);
    assert_string_equal(c->first_prompt, "third");
    /* So does one loaded from the store after a restart. */
    gt_restart(&gt);
    gt.wall += 61 * 60000;
    c = ct_turn(&gt, 4, "u1", NULL, NULL, NULL, "fifth", "five", NULL);
    assert_int_equal(c->nmessages, 1);
    gt_done(&gt);
}

/* Rows older than conversation_retention are deleted by the scheduled
 * pass; newer ones stay. */
static void test_retention_deletes_old_conversations(void **state)
{
    (void)state;
    struct gt gt;
    ct_init(&gt, 0);
    ct_turn(&gt, 0, "u1", NULL, NULL, NULL, "old talk", "old answer", "m1");
    gt.wall += 2 * 3600000;
    ct_turn(&gt, 1, "u2", NULL, NULL, NULL, "newer talk", "newer answer", "m2");
    gt.wall += 3600000 + 1; /* u1's is past the three hours, u2's is not */
    struct ct_done d = {0};
    assert_int_equal(generate_conversation_maintain(gt.g, ct_done_cb, &d), 0);
    gt_wait(&gt, &d.done, 1);
    assert_int_equal(d.rc, 0);
    assert_true(d.n >= 4); /* two turns, the conversation, the place (and the message) */
    assert_int_equal(
        test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM conversations WHERE owner='console:u1'"), 0);
    assert_int_equal(test_sql_int(gt.lt.path,
                                  "SELECT COUNT(*) FROM conversation_turns WHERE conv IN"
                                  " (SELECT id FROM conversations WHERE owner='console:u2')"),
                     2);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM conversation_turns"), 2);
    assert_int_equal(
        test_sql_int(gt.lt.path,
                     "SELECT COUNT(*) FROM conversation_places WHERE owner='console:u1'"),
        0);
    assert_int_equal(
        test_sql_int(gt.lt.path,
                     "SELECT COUNT(*) FROM conversation_messages WHERE owner='console:u1'"),
        0);
    gt_done(&gt);
}

/* Retention is an age limit on turns, not on a conversation in use: its
 * old turns go, its place stays, and it goes on after a restart. */
static void test_retention_keeps_a_conversation_in_use(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits limits = {.retry_max = 2,
                                    .conversation_idle_ms = 10 * 3600000LL,
                                    .conversation_retention_ms = 3 * 3600000LL};
    gt_init(&gt, &limits, NULL, 0, 0);
    ct_turn(&gt, 0, "u3", NULL, NULL, NULL, "early turn", "early answer", NULL);
    gt.wall += 2 * 3600000;
    ct_turn(&gt, 1, "u3", NULL, NULL, NULL, "later turn", "later answer", NULL);
    gt.wall += 3600000 + 1; /* the first turn is past the three hours */
    struct ct_done d = {0};
    assert_int_equal(generate_conversation_maintain(gt.g, ct_done_cb, &d), 0);
    gt_wait(&gt, &d.done, 1);
    assert_int_equal(d.rc, 0);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM conversation_turns"), 2);
    assert_int_equal(
        test_sql_int(gt.lt.path,
                     "SELECT COUNT(*) FROM conversation_places WHERE owner='console:u3'"),
        1);
    gt_restart(&gt);
    struct provider_call *c = ct_turn(&gt, 2, "u3", NULL, NULL, NULL, "go on", "going", NULL);
    assert_int_equal(c->nmessages, 3);
    assert_string_equal(c->first_prompt, "later turn");
    gt_done(&gt);
}

/* Does the file at path hold needle anywhere (as raw bytes)? */
static bool ct_file_has(const char *path, const char *needle)
{
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    fclose(f);
    char *data = test_file_read(path, &len);
    bool found = false;
    size_t n = strlen(needle);
    for (size_t i = 0; data != NULL && i + n <= len && !found; i++)
        found = memcmp(data + i, needle, n) == 0;
    free(data);
    return found;
}

static bool ct_db_has(struct gt *gt, const char *needle)
{
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", gt->lt.path);
    return ct_file_has(gt->lt.path, needle) || ct_file_has(wal, needle);
}

/* /forget deletes the member's conversations everywhere, at once, and the
 * next maintenance pass vacuums: the text is in neither the database nor
 * its WAL any more. Other members' conversations stay. */
static void test_forget_erases_rows(void **state)
{
    (void)state;
    struct gt gt;
    ct_init(&gt, 0);
    ct_turn(&gt, 0, "u1", NULL, NULL, NULL, "secret-zebra-4711 in a DM", "noted", "m1");
    ct_turn(&gt, 1, "u1", "g1", NULL, NULL, "secret-zebra-4711 in a group", "noted", "m2");
    ct_turn(&gt, 2, "u2", "g1", NULL, NULL, "public-llama-0815", "fine", "m3");
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM conversation_turns"), 6);
    assert_true(ct_db_has(&gt, "secret-zebra-4711"));

    struct invocation inv;
    struct reply_capture cap;
    gt_inv(&inv, &cap, "u1", "g1");
    cmd_forget(&gt.core, &inv);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "Erased: 4 stored message(s)");
    reply_capture_close(&cap);
    assert_int_equal(
        test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM conversations WHERE owner='console:u1'"), 0);
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM conversation_turns"), 2);
    assert_int_equal(
        test_sql_int(gt.lt.path,
                     "SELECT COUNT(*) FROM conversation_places WHERE owner='console:u1'"),
        0);
    assert_int_equal(
        test_sql_int(gt.lt.path,
                     "SELECT COUNT(*) FROM conversation_messages WHERE owner='console:u1'"),
        0);

    struct ct_done d = {0};
    assert_int_equal(generate_conversation_maintain(gt.g, ct_done_cb, &d), 0);
    gt_wait(&gt, &d.done, 1);
    assert_int_equal(d.rc, 0);
    assert_false(ct_db_has(&gt, "secret-zebra-4711"));
    assert_true(ct_db_has(&gt, "public-llama-0815"));

    /* u1 starts afresh, also in reply to a bot message of the old chain. */
    struct provider_call *c = ct_turn(&gt, 3, "u1", NULL, NULL, NULL, "remember?", "no", NULL);
    assert_int_equal(c->nmessages, 1);
    c = ct_turn(&gt, 4, "u1", "g1", "m2", NULL, "and this?", "no", NULL);
    assert_int_equal(c->nmessages, 1);
    c = ct_turn(&gt, 5, "u2", "g1", NULL, NULL, "still there?", "yes", NULL);
    assert_int_equal(c->nmessages, 3);
    gt_done(&gt);
}

/* The token budget trims the oldest turns, in memory and in the store. */
static void test_budget_trims_oldest_turns(void **state)
{
    (void)state;
    struct gt gt;
    ct_init(&gt, 15); /* about 60 bytes */
    ct_turn(&gt, 0, "u1", NULL, NULL, NULL, "turn-one-aaaaaaaaaaaaaaaaaaaa", "answer-one", NULL);
    ct_turn(&gt, 1, "u1", NULL, NULL, NULL, "turn-two-bbbbbbbbbbbbbbbbbbbb", "answer-two", NULL);
    struct provider_call *c = ct_turn(&gt, 2, "u1", NULL, NULL, NULL,
                                      "turn-three-cccccccccccccccccc", "answer-three", NULL);
    /* 40 bytes a turn: the first went when the second came, the second
     * when the third came. */
    assert_int_equal(c->nmessages, 3);
    assert_string_equal(c->first_prompt, "turn-two-bbbbbbbbbbbbbbbbbbbb");
    assert_int_equal(test_sql_int(gt.lt.path, "SELECT COUNT(*) FROM conversation_turns"), 2);
    gt_restart(&gt);
    c = ct_turn(&gt, 3, "u1", NULL, NULL, NULL, "after", "ok", NULL);
    assert_int_equal(c->nmessages, 3);
    assert_string_equal(c->first_prompt, "turn-three-cccccccccccccccccc");
    gt_done(&gt);
}

/* Several daemons on one ledger: a conversation moved on through one
 * daemon (the Telegram poller before a failover) goes on through the
 * other with every turn, both ways; before, each answered from its own
 * cache and start-time view of the store, and lost the other's turns. */
static void test_conversation_across_daemons(void **state)
{
    (void)state;
    struct gt gt;
    ct_init(&gt, 0);
    struct store *store = ledger_store(gt.lt.ledger);
    gt.core.cluster = cluster_new(&gt.lt.loop, store, generate_run(gt.g), 15000, NULL, NULL, NULL);
    assert_non_null(gt.core.cluster);
    struct core other = gt.core;
    other.cluster = cluster_new(&gt.lt.loop, store, "run-other", 15000, NULL, NULL, NULL);
    assert_non_null(other.cluster);
    struct generate_options opts = {.clock = {.now_ms = gt_clock, .data = &gt}};
    struct generate *mine = gt.g;
    other.generate = generate_new(&gt.lt.loop, &other, generate_catalog(mine), &opts);
    assert_non_null(other.generate);
    ct_barrier(&gt); /* both read what the store held at their start: nothing */

    ct_turn(&gt, 0, "u1", NULL, NULL, NULL, "my name is Ada", "hello Ada", NULL);
    gt.g = other.generate;
    struct provider_call *c = ct_turn(&gt, 1, "u1", NULL, NULL, NULL, "what is 2+2", "4", NULL);
    assert_int_equal(c->nmessages, 3);
    assert_string_equal(c->first_prompt, "my name is Ada");
    gt.g = mine;
    c = ct_turn(&gt, 2, "u1", NULL, NULL, NULL, "what is my name?", "Ada", NULL);
    assert_int_equal(c->nmessages, 5);
    /* /new through the other: this one starts over too. */
    struct invocation inv;
    struct reply_capture cap;
    gt_inv(&inv, &cap, "u1", NULL);
    generate_conversation_reset(other.generate, &inv);
    reply_capture_close(&cap);
    gt_settle(&gt, 5); /* its write is queued (its flush timer ran) */
    ct_barrier(&gt);
    c = ct_turn(&gt, 3, "u1", NULL, NULL, NULL, "hello again", "hi", NULL);
    assert_int_equal(c->nmessages, 1);

    gt.closed = 0;
    generate_close(other.generate, gt_closed, &gt);
    gt_wait(&gt, &gt.closed, 1);
    cluster_free(other.cluster);
    cluster_free(gt.core.cluster);
    gt.core.cluster = NULL;
    gt_done(&gt);
}

static const struct CMUnitTest conversation_tests[] = {
    cmocka_unit_test(test_conversation_survives_restart),
    cmocka_unit_test(test_new_place_needs_no_lookup),
    cmocka_unit_test(test_reply_chains_kept_apart),
    cmocka_unit_test(test_topic_is_its_own_conversation),
    cmocka_unit_test(test_idle_conversation_starts_over),
    cmocka_unit_test(test_retention_deletes_old_conversations),
    cmocka_unit_test(test_retention_keeps_a_conversation_in_use),
    cmocka_unit_test(test_forget_erases_rows),
    cmocka_unit_test(test_budget_trims_oldest_turns),
    cmocka_unit_test(test_conversation_across_daemons),
};

TEST_GROUP_DEFINE(conversation, conversation_tests, gt_group_setup, lt_group_teardown)
