/* The generation engine's limits and payers with the held provider: the
 * member's hourly limit, the token cap, the group's daily limit, funds,
 * the pool's policy and daily cap, and forgetting idle members. Every
 * test ends with uv_loop_close() == 0. */
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include "core/pool.h"
#include "core/ledger.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_limits_refuse_and_reset(void **state)
{
    (void)state;
    struct gt gt;
    /* "h" may use its prompt's bytes plus 100 output tokens. */
    struct catalog_limits l = {.user_per_hour = 1, .tokens_per_day = 150};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "one");
    held_finish(held_wait_call(&gt, 0), 0, "ok", 10, 10);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "h", "two");
    assert_has(&cap, "limit resets in 50 min");
    reply_capture_close(&cap);
    /* The next hour the member may ask again. */
    gt.wall += 60 * 60000;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "three");
    held_finish(held_wait_call(&gt, 1), 0, "ok", 20, 20);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "cost");
    reply_capture_close(&cap);
    /* 60 tokens used today, and a job that may use 104 more does not fit
     * in 150: everyone waits for tomorrow. */
    gt_run(&gt, &cap, "u2", PROVIDER_TEXT, "h", "four");
    assert_has(&cap, "up to 104 tokens");
    assert_has(&cap, "daily allowance of 150 tokens has 90 left");
    reply_capture_close(&cap);
    gt.wall += 24 * 3600000LL;
    gt_submit(&gt, &cap, "u2", PROVIDER_TEXT, "h", "five");
    held_finish(held_wait_call(&gt, 2), 0, "ok", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "cost");
    reply_capture_close(&cap);
    /* Access: the private model is refused to others. */
    gt_run(&gt, &cap, "u2", PROVIDER_TEXT, "private", "x");
    assert_has(&cap, "may not use private");
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* A group's daily limit counts every member's generations there, refuses
 * with the reset time, leaves other groups and DMs alone, and resets at
 * midnight UTC. */
static void test_group_daily_limit(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.pool_per_day = 2, .user_per_hour = 100};
    gt_init(&gt, &l, NULL, 0, 0);
    gt_run_in_group(&gt, "a", "g1", 0);
    gt_run_in_group(&gt, "b", "g1", 1);
    struct reply_capture cap;
    const char *scopes[] = {"g1", "g2", NULL};
    for (size_t i = 0; i < 3; i++) {
        struct invocation inv;
        gt_inv(&inv, &cap, "c", scopes[i]);
        struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi", .model = "h"};
        generate_submit(gt.g, &inv, &req);
        if (i == 0) {
            gt_wait(&gt, &cap.finished, 1);
            assert_has(&cap, "This group has used its 2 generations for today");
            assert_has(&cap, "resets in 23 h 50 min");
        } else {
            held_finish(held_wait_call(&gt, i + 1), 0, "fine", 1, 1);
            gt_wait(&gt, &cap.finished, 1);
            assert_has(&cap, "fine");
        }
        reply_capture_close(&cap);
    }
    /* The next UTC day the group may generate again. */
    gt.wall += 24 * 3600000LL;
    gt_run_in_group(&gt, "a", "g1", 4);
    gt_done(&gt);
}

static void test_not_enough_credits(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.welcome_bonus = 5; /* the estimate of "h" is 12 */
    struct reply_capture cap;
    gt_run(&gt, &cap, "poor", PROVIDER_TEXT, "h", "hello");
    assert_has(&cap, "Not enough credits");
    assert_has(&cap, "your balance is 5");
    assert_int_equal(gt.held.ncalls, 0);
    assert_int_equal(gt_balance(&gt, "poor"), 5);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* Refused for funds in a group: the refusal is read by everyone where the
 * platform cannot hide it (a Telegram group), so it names the price and
 * never the member's balance; the member alone hears what their wallet
 * holds, as an aside. */
static void test_not_enough_credits_in_group(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.welcome_bonus = 5; /* the estimate of "h" is 12 */
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, "poor", "g1");
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hello", .model = "h"};
    generate_submit(gt.g, &inv, &req);
    gt_wait(&gt, &cap.finished, 1);
    assert_non_null(cap.shown_text);
    assert_non_null(strstr(cap.shown_text, "Not enough credits: h costs up to 12 credits."));
    assert_null(strstr(cap.shown_text, "balance"));
    assert_null(strstr(cap.shown_text, " 5"));
    assert_int_equal(cap.nasides, 1);
    assert_non_null(cap.personal_text);
    assert_string_equal(cap.personal_text, "Your wallet: 5 credits available.");
    reply_capture_close(&cap);
    /* Wallet first, and the group's pool never funded: the same refusal,
     * not a failure to reserve. */
    gt_pool_set(&gt, "pool:console:g2", POOL_POLICY_WALLET_FIRST, 0);
    gt_inv(&inv, &cap, "poor", "g2");
    generate_submit(gt.g, &inv, &req);
    gt_wait(&gt, &cap.finished, 1);
    assert_non_null(cap.shown_text);
    assert_string_equal(cap.shown_text, "Not enough credits: h costs up to 12 credits. Nothing was "
                                        "reserved.");
    assert_non_null(cap.personal_text);
    assert_string_equal(cap.personal_text, "Your wallet: 5 credits available.");
    reply_capture_close(&cap);
    assert_int_equal(gt.held.ncalls, 0);
    assert_int_equal(gt_balance(&gt, "poor"), 5);
    gt_done(&gt);
}

static void test_pool_policy_chooses_payer(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt_pool_fund(&gt, "pool:console:g1", 1000);
    struct lt_res res;
    /* The default policy: the pool pays. */
    gt_run_in_group(&gt, "m", "g1", 0);
    int64_t cost = 1000 - lt_balance(&gt.lt, "pool:console:g1").posted;
    assert_true(cost > 0 && cost < 20);
    assert_int_equal(gt_balance(&gt, "m"), 100);
    /* Wallet first: the member pays. */
    gt_pool_set(&gt, "pool:console:g1", POOL_POLICY_WALLET_FIRST, 0);
    gt_run_in_group(&gt, "m", "g1", 1);
    assert_int_equal(gt_balance(&gt, "m"), 100 - cost);
    assert_int_equal(lt_balance(&gt.lt, "pool:console:g1").posted, 1000 - cost);
    /* Pool first, but the pool reached its daily cap: the member pays. */
    gt_pool_set(&gt, "pool:console:g1", POOL_POLICY_POOL_FIRST, cost);
    gt_run_in_group(&gt, "m", "g1", 2);
    assert_int_equal(gt_balance(&gt, "m"), 100 - 2 * cost);
    assert_int_equal(lt_balance(&gt.lt, "pool:console:g1").posted, 1000 - cost);
    /* A group whose pool was never funded: the member pays. */
    gt_run_in_group(&gt, "m", "g2", 3);
    assert_int_equal(gt_balance(&gt, "m"), 100 - 3 * cost);
    /* Wallet first with an empty wallet: the pool covers it. */
    gt_pool_set(&gt, "pool:console:g1", POOL_POLICY_WALLET_FIRST, 0);
    assert_int_equal(lt_plain(&gt.lt, "drain", "console:m", LEDGER_SYSTEM_GRANTS, 100 - 3 * cost,
                              LEDGER_KIND_REVERSAL, &res),
                     0);
    gt_run_in_group(&gt, "m", "g1", 4);
    assert_int_equal(lt_balance(&gt.lt, "pool:console:g1").posted, 1000 - 2 * cost);
    assert_int_equal(gt_balance(&gt, "m"), 0);
    assert_int_equal(lt_verify(gt.lt.path, NULL), 0);
    gt_done(&gt);
}

static void pref_saved(int rc, void *data)
{
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

static size_t gt_members(struct gt *gt)
{
    struct generate_stats st;
    generate_stats_get(gt->g, &st);
    return st.members;
}

/* What the engine holds for a member or a group leaves memory once they
 * are idle for a day, unless one of their jobs is still alive; the model
 * of choice comes back from the state table, the conversation is gone. */
static void test_idle_members_pruned(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct invocation inv;
    struct reply_capture cap;
    gt_inv(&inv, &cap, "u1", "g1");
    int saved = 0;
    assert_int_equal(generate_preference_set(gt.g, &inv, "h2", pref_saved, &saved), 0);
    gt_wait(&gt, &saved, 1);
    reply_capture_close(&cap);
    gt_run_in_group(&gt, "u1", "g1", 0);
    /* u1's counters, g1's counters, u1's conversation in g1, u1's model. */
    assert_int_equal(gt_members(&gt), 4);
    gt_inv(&inv, &cap, "u1", "g1");
    assert_string_equal(generate_preference_cached(gt.g, &inv), "h2");
    reply_capture_close(&cap);

    /* u3's job is still running when the day has passed. */
    struct reply_capture c3;
    gt_submit(&gt, &c3, "u3", PROVIDER_TEXT, "h", "slow");
    struct provider_call *slow = held_wait_call(&gt, 1);
    assert_int_equal(gt_members(&gt), 5);

    gt.wall += 25 * 3600000LL;
    struct reply_capture c2;
    gt_submit(&gt, &c2, "u2", PROVIDER_TEXT, "h", "hello");
    gt_inv(&inv, &cap, "u1", "g1");
    assert_string_equal(generate_preference_cached(gt.g, &inv), "");
    reply_capture_close(&cap);
    held_finish(slow, 0, "late", 1, 1);
    gt_wait(&gt, &c3.finished, 1);
    assert_has(&c3, "late");
    held_finish(held_wait_call(&gt, 2), 0, "hi", 1, 1);
    gt_wait(&gt, &c2.finished, 1);
    reply_capture_close(&c2);
    reply_capture_close(&c3);
    /* u1 and g1 are gone; u3 (kept by its job) and u2 remain, each with
     * counters and a conversation. */
    assert_int_equal(gt_members(&gt), 4);

    /* u1 again: the model of choice reloads, the conversation starts anew. */
    gt_inv(&inv, &cap, "u1", "g1");
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "remember me?"};
    generate_submit(gt.g, &inv, &req);
    struct provider_call *call = held_wait_call(&gt, 3);
    assert_string_equal(call->model, "h2");
    assert_int_equal(call->nmessages, 1);
    held_finish(call, 0, "no", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static uint64_t gt_refused(struct gt *gt)
{
    struct generate_stats st;
    generate_stats_get(gt->g, &st);
    return st.refused;
}

static int64_t gt_tokens_today(struct gt *gt)
{
    struct generate_stats st;
    generate_stats_get(gt->g, &st);
    return st.tokens_today;
}

/* The daily token cap is a reservation: jobs admitted at once each hold
 * their upper bound (the prompt's bytes plus 100 for "h"), so together they
 * never pass the cap; each settles to what it used, and what it did not use
 * is free again for the next job. */
static void test_token_cap_reserved_at_admission(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.tokens_per_day = 250};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture cap[4];
    const char *users[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++)
        gt_submit(&gt, &cap[i], users[i], PROVIDER_TEXT, "h", "four"); /* up to 104 each */
    /* 2 x 104 fit in 250, a third does not. */
    while (gt_refused(&gt) < 2 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    assert_false(gt.guard_fired);
    /* The held provider runs one call at a time: the other admitted job
     * waits in the queue, its tokens held. */
    struct provider_call *c0 = held_wait_call(&gt, 0);
    assert_int_equal(gt_refused(&gt), 2);
    assert_int_equal(gt_tokens_today(&gt), 208);
    size_t refused = 0;
    for (size_t i = 0; i < 4; i++) {
        if (cap[i].finished == 1) {
            assert_has(&cap[i], "up to 104 tokens");
            assert_has(&cap[i], "daily allowance of 250 tokens has 42 left");
            refused++;
        }
    }
    assert_int_equal(refused, 2);
    /* They use 49 and 98 tokens: the tally is what was used. */
    held_finish(c0, 0, "ok", 20, 29);
    held_finish(held_wait_call(&gt, 1), 0, "ok", 40, 58);
    for (size_t i = 0; i < 4; i++) {
        gt_wait(&gt, &cap[i].finished, 1);
        reply_capture_close(&cap[i]);
    }
    assert_int_equal(gt_tokens_today(&gt), 147);
    /* 103 are left: a job that may use 101 fits, and then one of 104 does not. */
    struct reply_capture c;
    gt_submit(&gt, &c, "e", PROVIDER_TEXT, "h", "x");
    held_finish(held_wait_call(&gt, 2), 0, "ok", 1, 1);
    gt_wait(&gt, &c.finished, 1);
    assert_has(&c, "cost");
    reply_capture_close(&c);
    assert_int_equal(gt_tokens_today(&gt), 149);
    gt_run(&gt, &c, "f", PROVIDER_TEXT, "h", "four");
    assert_has(&c, "daily allowance of 250 tokens has 101 left");
    reply_capture_close(&c);
    assert_int_equal(gt_tokens_today(&gt), 149);
    assert_int_equal(gt.held.ncalls, 3);
    gt_done(&gt);
}

/* A job that delivers nothing gives its count and its tokens back. */
static void test_failed_job_gives_limits_back(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.user_per_hour = 1, .tokens_per_day = 110};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "four");
    held_finish(held_wait_call(&gt, 0), HB_EPROTO, NULL, -1, -1);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    while (gt_tokens_today(&gt) != 0 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    assert_int_equal(gt_tokens_today(&gt), 0);
    /* The member may ask again this hour, and the tokens are there. */
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "four");
    held_finish(held_wait_call(&gt, 1), 0, "fine", 2, 3);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "fine");
    reply_capture_close(&cap);
    assert_int_equal(gt_tokens_today(&gt), 5);
    gt_done(&gt);
}

/* A fallback that may use more tokens than the job reserved reserves the
 * difference against the cap first; when that does not fit, the job fails
 * and gives everything back. */
static void test_fallback_reserves_more_tokens(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.tokens_per_day = 1100};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "hfb", "four"); /* 104, then 1004 */
    held_finish(held_wait_call(&gt, 0), HB_EPROTO, NULL, -1, -1);
    struct provider_call *c = held_wait_call(&gt, 1);
    assert_string_equal(c->model, "hbig");
    assert_int_equal(gt_tokens_today(&gt), 1004);
    /* Meanwhile another job that may use 104 does not fit. */
    struct reply_capture other;
    gt_run(&gt, &other, "u2", PROVIDER_TEXT, "h", "four");
    assert_has(&other, "has 96 left");
    reply_capture_close(&other);
    held_finish(c, 0, "big", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "big");
    reply_capture_close(&cap);
    assert_int_equal(gt_tokens_today(&gt), 10);

    gt_done(&gt);

    /* Under a cap of 1000 the fallback's 1004 does not fit. */
    l.tokens_per_day = 1000;
    gt_init(&gt, &l, NULL, 0, 0);
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "hfb", "four");
    held_finish(held_wait_call(&gt, 0), HB_EPROTO, NULL, -1, -1);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "The fallback model hbig could use more tokens than the bot's daily "
                     "allowance of 1000 has left.");
    assert_has(&cap, "Nothing was charged.");
    reply_capture_close(&cap);
    assert_int_equal(gt.held.ncalls, 1);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    while (gt_tokens_today(&gt) != 0 && !gt.guard_fired)
        uv_run(&gt.lt.loop, UV_RUN_ONCE);
    assert_int_equal(gt_tokens_today(&gt), 0);
    gt_done(&gt);
}

/* ---- the limits against a model, under random traffic ----------------------
 * Members submit jobs of random length (each in its own group, so no
 * conversation grows the prompt), the held provider finishes or fails them
 * in random order, and the clock moves on by the hour. One step at a time,
 * the model says whether each job is admitted, and after every step the
 * engine's token count must equal the model's: the live jobs' bounds plus
 * what the delivered ones used (at most their bound), never past the cap. */

#define RM_JOBS 150
#define RM_MEMBERS 4
#define RM_CAP 2000
#define RM_PER_HOUR 3

struct rm_job {
    struct reply_capture cap;
    char prompt[64];
    int member;
    int64_t bound;
    int64_t hour;
    bool live;
};

static uint64_t rm_live_count(struct gt *gt)
{
    struct generate_stats st;
    generate_stats_get(gt->g, &st);
    return st.queued + st.running;
}

static void rm_wait_tokens(struct gt *gt, int64_t want)
{
    while (gt_tokens_today(gt) != want && !gt->guard_fired)
        uv_run(&gt->lt.loop, UV_RUN_ONCE);
    assert_int_equal(gt_tokens_today(gt), want);
}

static void test_limits_follow_model(void **state)
{
    (void)state;
    static struct rm_job jobs[RM_JOBS];
    struct gt gt;
    struct catalog_limits l = {.user_per_hour = RM_PER_HOUR, .tokens_per_day = RM_CAP};
    gt_init(&gt, &l, NULL, 0, 0);
    gt.core.welcome_bonus = 1000000;
    int64_t tokens = 0;                      /* the model's count for today */
    int64_t counted[RM_MEMBERS][24] = {{0}}; /* admitted per member and hour of today */
    unsigned live[RM_MEMBERS] = {0};
    size_t njobs = 0, admitted = 0, refused = 0;
    srand(1301);
    for (int step = 0; step < 600 && njobs < RM_JOBS && !gt.guard_fired; step++) {
        int r = rand() % 10;
        int64_t hour_of_day = (gt.wall / 3600000) % 24;
        if (r == 0 && hour_of_day < 22) {
            gt.wall += 3600000;
        } else if (r <= 5) {
            int m = rand() % RM_MEMBERS;
            if (live[m] >= 2 || rm_live_count(&gt) >= 6)
                continue;
            struct rm_job *j = &jobs[njobs];
            char user[8], scope[16];
            snprintf(user, sizeof(user), "m%d", m);
            snprintf(scope, sizeof(scope), "s%zu", njobs);
            int pad = rand() % 40;
            snprintf(j->prompt, sizeof(j->prompt), "p%zu %.*s", njobs, pad,
                     "........................................");
            j->member = m;
            j->bound = (int64_t)strlen(j->prompt) + 100;
            j->hour = hour_of_day;
            bool want = counted[m][hour_of_day] < RM_PER_HOUR && tokens + j->bound <= RM_CAP;
            uint64_t refused_before = gt_refused(&gt), live_before = rm_live_count(&gt);
            struct invocation inv;
            gt_inv(&inv, &j->cap, user, scope);
            struct generate_request req = {
                .modality = PROVIDER_TEXT, .prompt = j->prompt, .model = "h"};
            generate_submit(gt.g, &inv, &req);
            njobs++;
            while (gt_refused(&gt) == refused_before && rm_live_count(&gt) == live_before &&
                   !gt.guard_fired)
                uv_run(&gt.lt.loop, UV_RUN_ONCE);
            bool got = gt_refused(&gt) == refused_before;
            assert_int_equal(got, want);
            if (got) {
                j->live = true;
                live[m]++;
                counted[m][hour_of_day]++;
                tokens += j->bound;
                admitted++;
            } else {
                gt_wait(&gt, &j->cap.finished, 1);
                reply_capture_close(&j->cap);
                refused++;
            }
        } else {
            /* Finish the running call, if any. */
            struct provider_call *c = NULL;
            for (size_t i = 0; i < gt.held.ncalls; i++)
                if (gt.held.calls[i].active)
                    c = &gt.held.calls[i];
            if (c == NULL)
                continue;
            struct rm_job *j = NULL;
            for (size_t i = 0; i < njobs; i++)
                if (jobs[i].live && strcmp(jobs[i].prompt, c->last_prompt) == 0)
                    j = &jobs[i];
            assert_non_null(j);
            if (rand() % 10 < 7) {
                long in = rand() % 20, out = rand() % 40;
                if (rand() % 20 == 0)
                    out = 100 + rand() % 100; /* past the bound: counted as the bound */
                held_finish(c, 0, "ok", in, out);
                int64_t used = in + out < j->bound ? in + out : j->bound;
                tokens -= j->bound - used;
            } else {
                held_finish(c, HB_EPROTO, NULL, -1, -1);
                tokens -= j->bound;
                counted[j->member][j->hour]--;
            }
            gt_wait(&gt, &j->cap.finished, 1);
            reply_capture_close(&j->cap);
            j->live = false;
            live[j->member]--;
        }
        /* The invariants, after every step. */
        assert_true(tokens <= RM_CAP);
        rm_wait_tokens(&gt, tokens);
        for (int m = 0; m < RM_MEMBERS; m++)
            for (int h = 0; h < 24; h++)
                assert_true(counted[m][h] <= RM_PER_HOUR);
    }
    /* Let the jobs still live finish, and check the tally once more. */
    for (size_t i = 0; i < gt.held.ncalls || rm_live_count(&gt) > 0; i++) {
        struct provider_call *c = held_wait_call(&gt, i);
        if (!c->active)
            continue;
        struct rm_job *j = NULL;
        for (size_t k = 0; k < njobs; k++)
            if (jobs[k].live && strcmp(jobs[k].prompt, c->last_prompt) == 0)
                j = &jobs[k];
        assert_non_null(j);
        held_finish(c, 0, "ok", 1, 1);
        tokens -= j->bound - 2;
        gt_wait(&gt, &j->cap.finished, 1);
        reply_capture_close(&j->cap);
        j->live = false;
    }
    rm_wait_tokens(&gt, tokens);
    assert_true(admitted > 20 && refused > 5);
    gt_done(&gt);
}

static const struct CMUnitTest quota_tests[] = {
    cmocka_unit_test(test_limits_refuse_and_reset),
    cmocka_unit_test(test_group_daily_limit),
    cmocka_unit_test(test_not_enough_credits),
    cmocka_unit_test(test_not_enough_credits_in_group),
    cmocka_unit_test(test_pool_policy_chooses_payer),
    cmocka_unit_test(test_idle_members_pruned),
    cmocka_unit_test(test_token_cap_reserved_at_admission),
    cmocka_unit_test(test_failed_job_gives_limits_back),
    cmocka_unit_test(test_fallback_reserves_more_tokens),
    cmocka_unit_test(test_limits_follow_model),
};

TEST_GROUP_DEFINE(generate_quota, quota_tests, gt_group_setup, lt_group_teardown)
