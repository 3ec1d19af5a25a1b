/* The generation engine with the real provider adapters against fake
 * OpenAI-compatible and Anthropic servers on loopback: streaming and usage,
 * errors, retries and fallbacks, images with their Regenerate and Upvote
 * buttons, and the leaderboard of upvotes. Every test ends with
 * uv_loop_close() == 0. */
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include "core/commands.h"
#include "core/handlers.h"
#include "base/error.h"
#include "base/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- providers: the real adapters against the fakes ---------------------- */

static void test_openai_stream_settles_by_usage(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "ok", "hi there");
    assert_has(&cap, "Hello, world");
    /* usage 10 in, 20 out: 1 + ceil(10*100/1000) + ceil(20*100/1000) = 4 */
    assert_has(&cap, "cost 4 credits");
    assert_has(&cap, "balance 96");
    assert_true(cap.nprogress >= 1);
    assert_int_equal(gt_balance(&gt, "u1"), 96);
    assert_string_equal(gt.seen_auth, "Bearer sk-test-123456");
    assert_string_equal(gt.seen_extra, "yes");
    assert_true(gt.seen_stream && gt.seen_include_usage && gt.seen_max_tokens);
    struct generate_stats st;
    generate_stats_get(gt.g, &st);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.tokens_today, 30);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* In a group the answer is public: its footer shows the cost and never the
 * member's wallet balance, which goes to the member alone as a personal
 * aside. In a DM (above) the footer keeps the balance. */
static void test_group_footer_shows_cost_not_balance(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, "u1", "g1");
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi", .model = "ok"};
    generate_submit(gt.g, &inv, &req);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "Hello, world");
    assert_non_null(cap.public_text);
    assert_non_null(strstr(cap.public_text, "cost 4 credits"));
    assert_null(strstr(cap.public_text, "balance"));
    assert_null(strstr(cap.public_text, "96"));
    assert_int_equal(cap.npersonal, 1);
    assert_int_equal(cap.nasides, 1);
    assert_non_null(cap.personal_text);
    assert_non_null(strstr(cap.personal_text, "96"));
    assert_int_equal(gt_balance(&gt, "u1"), 96);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* The price is shown before the work runs: the first thing the member
 * sees names the most the job may cost (its reservation) and that the
 * charge is what it uses. */
static void test_price_shown_before_it_runs(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_submit(&gt, &cap, "u1", PROVIDER_TEXT, "h", "hi");
    struct provider_call *call = held_wait_call(&gt, 0);
    assert_true(cap.nprogress >= 1);
    assert_int_equal(cap.finished, 0);
    /* The held model: 1 per request + 100 per 1,000 tokens of at most 100
     * output tokens and the prompt: reserved up front. */
    int64_t reserved = lt_balance(&gt.lt, "console:u1").pending_debits;
    assert_true(reserved > 0);
    char want[96];
    snprintf(want, sizeof(want), "up to %lld credit", (long long)reserved);
    assert_has(&cap, want);
    assert_has(&cap, "you are charged what it uses");
    held_finish(call, 0, "fine", 5, 5);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_anthropic_stream(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "claude", "salut");
    assert_has(&cap, "Bonjour le monde");
    assert_has(&cap, "cost 4 credits");
    assert_string_equal(gt.seen_key, "ak-test-987654");
    assert_string_equal(gt.seen_version, "2023-06-01");
    assert_true(gt.seen_max_tokens && gt.seen_stream);
    assert_string_equal(gt.seen_auth, "");
    reply_capture_close(&cap);

    /* overloaded_error inside the stream is retried and then succeeds. */
    gt_run(&gt, &cap, "u2", PROVIDER_TEXT, "overloaded", "salut");
    assert_has(&cap, "Bonjour le monde");
    assert_int_equal(gt.tries_overloaded, 2);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* A model's generation parameters reach the wire as the catalog holds
 * them, on both wires, and its system prompt counts in the estimate. */
static void test_model_parameters_sent(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "tuned", "salut");
    assert_has(&cap, "Hello, world");
    assert_string_equal(gt.seen_body,
                        "{\"model\":\"ok\",\"messages\":[{\"role\":\"system\",\"content\":"
                        "\"Be brief.\"},{\"role\":\"user\",\"content\":\"salut\"}],\"stream\":"
                        "true,\"stream_options\":{\"include_usage\":true},"
                        "\"max_completion_tokens\":100,\"temperature\":0.5,\"stop\":[\"END\"],"
                        "\"reasoning_effort\":\"low\"}");
    reply_capture_close(&cap);

    gt_run(&gt, &cap, "u2", PROVIDER_TEXT, "tunedc", "salut");
    assert_has(&cap, "Bonjour le monde");
    assert_string_equal(gt.seen_body,
                        "{\"model\":\"tunedc\",\"max_tokens\":100,\"stream\":true,\"system\":"
                        "\"Be brief.\",\"messages\":[{\"role\":\"user\",\"content\":\"salut\"}],"
                        "\"top_p\":0.5}");
    reply_capture_close(&cap);

    const struct catalog_model *m = catalog_model_find(generate_catalog(gt.g), "tuned");
    assert_non_null(m);
    assert_int_equal(m->system_bytes, strlen("Be brief."));
    gt_done(&gt);
}

static void test_midstream_error_falls_back(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "midstream", "hi there");
    assert_has(&cap, "trying ok");
    assert_has(&cap, "Hello, world");
    assert_has(&cap, "— ok ·");
    assert_int_equal(gt_balance(&gt, "u1"), 96); /* charged as the fallback, once */
    reply_capture_close(&cap);

    /* Every model fails: nothing is charged and the member is told. */
    gt_run(&gt, &cap, "u2", PROVIDER_TEXT, "allfail", "hi there");
    assert_has(&cap, "Nothing was charged");
    assert_int_equal(gt_balance(&gt, "u2"), 100);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_timeout_refunds(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.job_timeout_ms = 600};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "never", "hello?");
    assert_has(&cap, "did not answer in time");
    assert_has(&cap, "Nothing was charged");
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_429_retry_after_honoured(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "r429", "hi there");
    assert_has(&cap, "Hello, world");
    assert_int_equal(gt.tries_429, 2);
    assert_true(gt.req_ms[1] - gt.req_ms[0] >= 990);
    assert_int_equal(gt_balance(&gt, "u1"), 96);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* A retry-after-ms that does not parse is no hint at all, not "at once":
 * the Retry-After beside it is honoured. */
static void test_429_bad_retry_after_ms(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "r429ms", "hi there");
    assert_has(&cap, "Hello, world");
    assert_int_equal(gt.tries_429, 2);
    assert_true(gt.req_ms[1] - gt.req_ms[0] >= 990);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* From adapters/llm/llm.h, whose struct provider_call differs from this
 * file's held provider. */
int64_t llm_retry_after_ms(const char *value);

/* Retry-After in seconds, fractions, or as an HTTP date. */
static void test_retry_after_forms(void **state)
{
    (void)state;
    assert_int_equal(llm_retry_after_ms("2"), 2000);
    assert_int_equal(llm_retry_after_ms("0.25"), 250);
    assert_int_equal(llm_retry_after_ms(NULL), -1);
    assert_int_equal(llm_retry_after_ms("soon"), -1);
    assert_int_equal(llm_retry_after_ms("-3"), -1);
    char date[64];
    time_t later = time(NULL) + 30;
    struct tm tm;
    gmtime_r(&later, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int64_t ms = llm_retry_after_ms(date);
    assert_true(ms >= 28000 && ms <= 30000);
    assert_int_equal(llm_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), 0); /* past */
    /* Numbers no integer holds are no hint (tests/corpus/llm/). */
    char *huge = test_file_read("tests/corpus/llm/retry-after-1e300.txt", NULL);
    assert_non_null(huge);
    assert_int_equal(llm_retry_after_ms(huge), -1);
    free(huge);
    assert_int_equal(llm_retry_after_ms("inf"), -1);
    assert_int_equal(llm_retry_after_ms("nan"), -1);
    assert_int_equal(llm_retry_after_ms("99999999999999999999"), -1);
}

static void test_bad_key_fails_fast(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits l = {.retry_max = 3};
    gt_init(&gt, &l, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "badkey", "hi there");
    /* One request to badkey (no retries), then the fallback. */
    assert_int_equal(gt.requests, 2);
    struct generate_stats st;
    generate_stats_get(gt.g, &st);
    assert_int_equal(st.retries, 0);
    assert_has(&cap, "Hello, world");
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* An OpenAI-compatible rate-limit error inside a 200 stream (type
 * "requests", code "rate_limit_exceeded") is retried like a 429: the job
 * succeeds on the second request and is charged once, for what that
 * request used. */
static void test_midstream_rate_limit_retried(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "rlmid", "hi there");
    assert_has(&cap, "Hello, world");
    assert_has(&cap, "cost 4 credits");
    assert_int_equal(gt.tries_rl_mid, 2);
    struct generate_stats st;
    generate_stats_get(gt.g, &st);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.completed, 1);
    assert_int_equal(gt_balance(&gt, "u1"), 96);
    reply_capture_close(&cap);
    gt_done(&gt);
}

static char seen_provider_detail[512];

static void capture_provider_state(void *host, const char *provider, bool ok, const char *detail)
{
    (void)host;
    (void)provider;
    if (!ok)
        snprintf(seen_provider_detail, sizeof(seen_provider_detail), "%s",
                 detail != NULL ? detail : "");
}

/* A key refused inside a 200 stream fails at once: no retry, nothing
 * charged, and what the operator hears says which setting to check. */
static void test_midstream_bad_key_fails_at_once(void **state)
{
    (void)state;
    static const struct core_host_ops host = {.provider_state = capture_provider_state};
    struct gt gt;
    struct catalog_limits l = {.retry_max = 3};
    gt_init(&gt, &l, NULL, 0, 0);
    gt.core.host_ops = &host;
    seen_provider_detail[0] = '\0';
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "keymid", "hi there");
    assert_has(&cap, "Nothing was charged");
    assert_int_equal(gt.tries_key_mid, 1);
    struct generate_stats st;
    generate_stats_get(gt.g, &st);
    assert_int_equal(st.retries, 0);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    assert_non_null(strstr(seen_provider_detail, "invalid_api_key"));
    assert_non_null(strstr(seen_provider_detail, "check api_key in [provider \"fakeai\"]"));
    assert_null(strstr(seen_provider_detail, "sk-test-123456"));
    reply_capture_close(&cap);
    gt_done(&gt);
}

static void test_malformed_and_truncated_streams(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "malformed", "hi");
    assert_has(&cap, "broken stream");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u1", PROVIDER_TEXT, "truncated", "hi");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    assert_int_equal(gt_balance(&gt, "u1"), 100);
    gt_done(&gt);
}

static void test_images_b64_url_and_limit(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 1000);
    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_IMAGE, "img-b64", "a red cat");
    assert_int_equal(cap.image_bytes, sizeof(png_bytes) - 1);
    assert_int_equal(cap.nbuttons, 2);
    assert_has(&cap, "cost 7 credits");
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u1", PROVIDER_IMAGE, "img-url", "a red cat");
    assert_int_equal(cap.image_bytes, sizeof(png_bytes) - 1);
    reply_capture_close(&cap);
    gt_run(&gt, &cap, "u1", PROVIDER_IMAGE, "img-big", "a red cat");
    assert_int_equal(cap.image_bytes, 0);
    assert_has(&cap, "larger than allowed");
    assert_has(&cap, "Nothing was charged");
    reply_capture_close(&cap);
    assert_int_equal(gt_balance(&gt, "u1"), 86);
    gt_done(&gt);
}

static void gt_press(struct gt *gt, struct reply_capture *cap, const char *user, const char *ref)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, NULL);
    snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", ref);
    cmd_generate_button(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
}

/* Regenerate is the owner's and charged again; Upvote is anyone else's,
 * once. */
static void test_image_buttons(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    struct reply_capture cap, p;
    gt_run(&gt, &cap, "u1", PROVIDER_IMAGE, "img-b64", "a red cat");
    assert_int_equal(cap.nbuttons, 2);
    assert_string_equal(cap.buttons[0].label, "Regenerate");
    assert_string_equal(cap.buttons[1].label, "Upvote");
    char regen[COMMAND_BUTTON_REF_MAX + 1], up[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(regen, sizeof(regen), "%s", cap.buttons[0].ref);
    snprintf(up, sizeof(up), "%s", cap.buttons[1].ref);
    reply_capture_close(&cap);

    gt_press(&gt, &p, "u2", up);
    assert_has(&p, "Upvoted");
    reply_capture_close(&p);
    gt_press(&gt, &p, "u2", up);
    assert_has(&p, "already upvoted");
    reply_capture_close(&p);
    gt_press(&gt, &p, "u1", up);
    assert_has(&p, "your own");
    reply_capture_close(&p);
    gt_press(&gt, &p, "u2", regen);
    assert_has(&p, "not yours");
    reply_capture_close(&p);
    gt_press(&gt, &p, "u1", regen);
    assert_int_equal(p.image_bytes, sizeof(png_bytes) - 1);
    assert_has(&p, "cost 7 credits");
    reply_capture_close(&p);
    assert_int_equal(gt_balance(&gt, "u1"), 86);
    gt_done(&gt);
}

/* An image made in group g9; its Upvote ref goes to up. */
static void gt_image_in_group(struct gt *gt, const char *user, char *up)
{
    struct reply_capture cap;
    struct invocation inv;
    gt_inv(&inv, &cap, user, "g9");
    struct generate_request req = {
        .modality = PROVIDER_IMAGE, .prompt = "a cat", .model = "img-b64"};
    generate_submit(gt->g, &inv, &req);
    gt_wait(gt, &cap.finished, 1);
    assert_int_equal(cap.nbuttons, 2);
    snprintf(up, COMMAND_BUTTON_REF_MAX + 1, "%s", cap.buttons[1].ref);
    reply_capture_close(&cap);
}

static const char *gt_leaderboard_period(struct gt *gt, struct reply_capture *cap,
                                         const char *scope, const char *period)
{
    struct invocation inv;
    gt_inv(&inv, cap, "viewer", scope);
    inv.opts[0].set = true;
    inv.opts[0].type = COMMAND_OPT_STRING;
    inv.opts[0].string = strdup(period);
    cmd_leaderboard(&gt->core, &inv);
    gt_wait(gt, &cap->finished, 1);
    free(inv.opts[0].string);
    return cap->text != NULL ? cap->text : "";
}

static const char *gt_leaderboard(struct gt *gt, struct reply_capture *cap, const char *scope)
{
    return gt_leaderboard_period(gt, cap, scope, "all");
}

static void test_leaderboard_counts_upvotes(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    char up1[COMMAND_BUTTON_REF_MAX + 1], up2[COMMAND_BUTTON_REF_MAX + 1];
    struct reply_capture p;
    assert_non_null(strstr(gt_leaderboard(&gt, &p, "g9"), "No upvoted generations"));
    reply_capture_close(&p);
    gt_image_in_group(&gt, "u1", up1);
    gt_image_in_group(&gt, "u3", up2);
    const char *voters1[] = {"u2", "u4", "u2"}; /* u2 twice: counted once */
    for (size_t i = 0; i < 3; i++) {
        gt_press(&gt, &p, voters1[i], up1);
        reply_capture_close(&p);
    }
    gt_press(&gt, &p, "u2", up2);
    reply_capture_close(&p);
    gt_press(&gt, &p, "u3", up2); /* one's own: not counted */
    reply_capture_close(&p);
    const char *t = gt_leaderboard(&gt, &p, "g9");
    if (strstr(t,
               "1. 2 upvotes: an image by u1 (img-b64)\n2. 1 upvote: an image by u3 (img-b64)") ==
        NULL)
        fail_msg("unexpected leaderboard:\n%s", t);
    reply_capture_close(&p);
    /* Another group sees nothing of g9's; a DM has no leaderboard. */
    assert_non_null(strstr(gt_leaderboard(&gt, &p, "g10"), "No upvoted generations"));
    reply_capture_close(&p);
    assert_non_null(strstr(gt_leaderboard(&gt, &p, NULL), "belong to servers and groups"));
    reply_capture_close(&p);
    gt_done(&gt);
}

/* A leaderboard with a board's worth of older votes still counts the
 * newest: 1,000 votes a month ago on one image, then two this week on
 * another. This week's board has the new image alone; all time has both. */
static void test_leaderboard_newest_votes_count(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.clock = (struct clock){.now_ms = gt_clock, .data = &gt};
    int64_t now = gt.wall;
    gt.wall = now - 30LL * 86400000;
    char old_up[COMMAND_BUTTON_REF_MAX + 1], new_up[COMMAND_BUTTON_REF_MAX + 1];
    struct reply_capture p;
    gt_image_in_group(&gt, "u1", old_up);
    for (int i = 0; i < 1000; i++) {
        char voter[16];
        snprintf(voter, sizeof(voter), "v%d", i);
        gt_press(&gt, &p, voter, old_up);
        assert_has(&p, "Upvoted");
        reply_capture_close(&p);
    }
    gt.wall = now;
    gt_image_in_group(&gt, "u3", new_up);
    gt_press(&gt, &p, "u2", new_up);
    reply_capture_close(&p);
    gt_press(&gt, &p, "u4", new_up);
    reply_capture_close(&p);
    const char *t = gt_leaderboard_period(&gt, &p, "g9", "week");
    if (strstr(t, "1. 2 upvotes: an image by u3 (img-b64)") == NULL || strstr(t, "by u1") != NULL)
        fail_msg("unexpected board for the week:\n%s", t);
    reply_capture_close(&p);
    t = gt_leaderboard(&gt, &p, "g9");
    if (strstr(t, "1. 1000 upvotes: an image by u1 (img-b64)\n"
                  "2. 2 upvotes: an image by u3 (img-b64)") == NULL)
        fail_msg("unexpected board for all time:\n%s", t);
    reply_capture_close(&p);
    gt_done(&gt);
}

static const struct CMUnitTest provider_tests[] = {
    cmocka_unit_test(test_openai_stream_settles_by_usage),
    cmocka_unit_test(test_group_footer_shows_cost_not_balance),
    cmocka_unit_test(test_price_shown_before_it_runs),
    cmocka_unit_test(test_anthropic_stream),
    cmocka_unit_test(test_model_parameters_sent),
    cmocka_unit_test(test_midstream_error_falls_back),
    cmocka_unit_test(test_timeout_refunds),
    cmocka_unit_test(test_429_retry_after_honoured),
    cmocka_unit_test(test_429_bad_retry_after_ms),
    cmocka_unit_test(test_retry_after_forms),
    cmocka_unit_test(test_bad_key_fails_fast),
    cmocka_unit_test(test_midstream_rate_limit_retried),
    cmocka_unit_test(test_midstream_bad_key_fails_at_once),
    cmocka_unit_test(test_malformed_and_truncated_streams),
    cmocka_unit_test(test_images_b64_url_and_limit),
    cmocka_unit_test(test_image_buttons),
    cmocka_unit_test(test_leaderboard_counts_upvotes),
    cmocka_unit_test(test_leaderboard_newest_votes_count),
};

TEST_GROUP_DEFINE(providers, provider_tests, gt_group_setup, lt_group_teardown)
