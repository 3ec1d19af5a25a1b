/* /trending and /profile through the real engine and router: generations
 * charged in a group count on its boards in the charge's own transaction
 * (once: a replayed settlement counts nothing again), upvotes count for
 * their creator, /trending shows this group's week beside the whole
 * bot's (from the ledger's usage), and /profile a member's counts and
 * rank. Counts only: no prompt reaches a board or a reply. */
#include "tests/test.h"

#include "base/error.h"
#include "bot/router.h"
#include "core/ledger.h"
#include "core/member.h"
#include "core/standing.h"
#include "core/votes.h"
#include "tests/core/test_generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One held job of model by user in scope (NULL: a DM), settled. */
static void job(struct gt *gt, const char *user, const char *scope, const char *model, size_t call)
{
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, user, scope);
    inv.platform = COMMAND_PLATFORM_TELEGRAM;
    struct generate_request req = {
        .modality = PROVIDER_TEXT, .prompt = "a secret prompt", .model = model};
    generate_submit(gt->g, &inv, &req);
    held_finish(held_wait_call(gt, call), 0, "fine", 5, 5);
    gt_wait(gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_settle(gt, 10);
}

struct sx {
    struct gt *gt;
    struct router *router;
    struct reply_capture cap;
};

static const char *run(struct sx *x, const char *user, const char *scope, const char *line)
{
    reply_capture_close(&x->cap);
    struct invocation inv;
    gt_inv(&inv, &x->cap, user, scope);
    inv.platform = COMMAND_PLATFORM_TELEGRAM;
    snprintf(inv.user_name, sizeof(inv.user_name), "%s", user);
    router_dispatch(x->router, &inv, line);
    gt_wait(x->gt, &x->cap.finished, 1);
    return x->cap.text != NULL ? x->cap.text : "";
}

static void voted(int rc, void *data)
{
    *(int *)data = rc == 0 || rc == HB_EEXISTS ? 1 : -1;
}

static void vote(struct gt *gt, const char *image, const char *voter, const char *creator)
{
    int done = 0;
    struct votes_cast v = {.scope = "telegram:g1",
                           .image = image,
                           .voter = voter,
                           .creator = creator,
                           .model = "img",
                           .now_ms = gt->wall};
    assert_int_equal(votes_cast(ledger_store(gt->lt.ledger), &v, voted, &done), 0);
    gt_wait(gt, &done, 1);
}

static void test_trending_and_profile(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.clock = (struct clock){.now_ms = gt_clock, .data = &gt}; /* as the engine's */
    struct sx x = {.gt = &gt, .router = router_new(&gt.core)};
    assert_non_null(x.router);
    reply_capture_init(&x.cap);

    const char *t = run(&x, "u1", "g1", "trending");
    assert_string_equal(t, "Trending models this week (since Monday, UTC), by generations:\n"
                           "Here:\n  none yet\nOn the whole bot:\n  none yet");

    job(&gt, "u1", "g1", "h", 0);
    job(&gt, "u1", "g1", "h2", 1);
    job(&gt, "u2", "g1", "h2", 2);
    job(&gt, "u3", "g2", "h", 3);
    job(&gt, "u3", NULL, "h", 4); /* a DM: the whole bot's usage only */
    t = run(&x, "u1", "g1", "trending");
    assert_string_equal(t, "Trending models this week (since Monday, UTC), by generations:\n"
                           "Here:\n  1. h2: 2 generations\n  2. h: 1 generation\n"
                           "On the whole bot:\n  1. h: 3 generations\n  2. h2: 2 generations");
    assert_false(x.cap.last_ephemeral);
    t = run(&x, "u3", NULL, "trending");
    assert_string_equal(t, "Trending models this week (since Monday, UTC), by generations:\n"
                           "On the whole bot:\n  1. h: 3 generations\n  2. h2: 2 generations");
    assert_null(strstr(t, "secret"));

    /* Upvotes count for their creator, once per voter and image. */
    vote(&gt, "img1", "telegram:u2", "u1");
    vote(&gt, "img1", "telegram:u3", "u1");
    vote(&gt, "img1", "telegram:u3", "u1"); /* the same voter again: not counted */
    vote(&gt, "img2", "telegram:u1", "u2");
    t = run(&x, "u1", "g1", "profile");
    assert_string_equal(t, "u1 in this group:\n"
                           "Generations made: 2 this week, 2 in all.\n"
                           "Upvotes received: 2 this week, 2 in all.\n"
                           "Rank by upvotes: #1 of 2 this week, #1 of 2 in all.\n"
                           "Contest wins: 0 in all. Prizes won: 0 credits in all.");
    member_seen(&gt.core, COMMAND_PLATFORM_TELEGRAM, "u2", "bob");
    gt_settle(&gt, 10);
    t = run(&x, "u1", "g1", "profile @bob");
    assert_string_equal(t, "@bob in this group:\n"
                           "Generations made: 1 this week, 1 in all.\n"
                           "Upvotes received: 1 this week, 1 in all.\n"
                           "Rank by upvotes: #2 of 2 this week, #2 of 2 in all.\n"
                           "Contest wins: 0 in all. Prizes won: 0 credits in all.");
    t = run(&x, "u3", "g1", "profile");
    assert_string_equal(t, "u3 in this group:\n"
                           "Generations made: 0 this week, 0 in all.\n"
                           "Upvotes received: 0 this week, 0 in all.\n"
                           "Rank by upvotes: none yet this week, none yet in all.\n"
                           "Contest wins: 0 in all. Prizes won: 0 credits in all.");
    t = run(&x, "u1", "g1", "profile @nobody");
    assert_string_equal(t, "I know no member @nobody here; nothing was looked up or moved.");
    t = run(&x, "u1", NULL, "profile");
    assert_string_equal(t, "Standing is kept per server or group: run /profile there.");

    /* A week later this week's boards are empty; all time stays. */
    gt.wall += 7 * 86400000LL;
    t = run(&x, "u1", "g1", "profile");
    assert_non_null(strstr(t, "Generations made: 0 this week, 2 in all."));
    assert_non_null(strstr(t, "Rank by upvotes: none yet this week, #1 of 2 in all."));

    reply_capture_close(&x.cap);
    router_free(x.router);
    gt_done(&gt);
}

/* The boards move with the post that charged: a replay counts nothing. */
static void test_tally_moves_with_the_post(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, false);
    struct lt_res res;
    assert_int_equal(lt_open(&t, "console:u1", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    assert_int_equal(lt_reserve(&t, "r1", "console:u1", LEDGER_SYSTEM_REVENUE, 9, 60000, &res), 0);
    struct standing_tally tally;
    assert_int_equal(standing_tally_init(&tally, COMMAND_PLATFORM_CONSOLE, "g1", "u1", "m", t.now),
                     0);
    assert_int_equal(standing_tally_init(&tally, COMMAND_PLATFORM_CONSOLE, "", "u1", "m", t.now),
                     HB_EINVAL); /* a DM counts on no board */
    assert_int_equal(standing_tally_init(&tally, COMMAND_PLATFORM_CONSOLE, "g1", "u1", "m", t.now),
                     0);
    struct ledger_transfer post = {.id = "p1",
                                   .pending_id = "r1",
                                   .amount = 7,
                                   .guard = standing_tally_guard,
                                   .guard_data = &tally};
    for (int round = 0; round < 2; round++) {
        memset(&res, 0, sizeof(res));
        assert_int_equal(ledger_transfer_post_split(t.ledger, &post, NULL, 0, NULL, lt_cb, &res),
                         0);
        lt_wait(&t, &res);
        assert_int_equal(res.rc, round == 0 ? 0 : HB_EEXISTS);
    }
    assert_int_equal(test_sql_int(t.path, "SELECT SUM(count) FROM votes WHERE scope = "
                                          "'console:g1#made' AND period = 'all'"),
                     1);
    assert_int_equal(test_sql_int(t.path, "SELECT COUNT(*) FROM votes WHERE scope = "
                                          "'console:g1#models' AND image = 'm'"),
                     1);
    assert_int_equal(lt_balance(&t, "console:u1").posted, 93);
    lt_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tally_moves_with_the_post),
    cmocka_unit_test(test_trending_and_profile),
};

TEST_GROUP_DEFINE(standing, tests, gt_group_setup, lt_group_teardown)
