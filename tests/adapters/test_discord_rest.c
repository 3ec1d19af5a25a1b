/* Discord REST rate limiting against the fake REST API, on a real loop.
 * Each test queues requests, waits for their callbacks (guarded by a
 * timer), then closes everything and checks the loop closes clean. Time
 * assertions are lower bounds the limits guarantee, or upper bounds with
 * a wide margin. */
#include "tests/test.h"

#include "adapters/discord/rest.h"
#include "net/http.h"
#include "base/error.h"
#include "tests/fake/discord_rest.h"
#include "tests/fake/httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_TOKEN "rest-test-token-XYZ.abcdef"
#define RT_GUARD_MS 10000
#define RT_MAX 64

struct rt {
    uv_loop_t loop;
    struct http_client *http;
    struct fake_rest *fake;
    struct discord_rest *rest;
    uv_timer_t guard;
    bool timed_out;
    size_t expected;
    size_t done;
    int status[RT_MAX];
    int rc[RT_MAX];
    unsigned tries[RT_MAX];
    uint64_t done_ms[RT_MAX];
    uint64_t start_ms;
    struct discord_rest_stats stats;
};

static void rt_guard(uv_timer_t *t)
{
    struct rt *r = t->data;
    r->timed_out = true;
    uv_stop(t->loop);
}

static void rt_setup(struct rt *r, const struct discord_rest_options *ropt,
                     const struct fake_rest_options *fopt)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(http_client_new(&r->loop, NULL, &r->http), 0);
    struct fake_rest_options fo;
    memset(&fo, 0, sizeof(fo));
    if (fopt != NULL)
        fo = *fopt;
    r->fake = fake_rest_new(&r->loop, &fo);
    assert_non_null(r->fake);
    struct discord_rest_options ro;
    memset(&ro, 0, sizeof(ro));
    if (ropt != NULL)
        ro = *ropt;
    ro.api_base = fake_rest_api_base(r->fake);
    ro.token = RT_TOKEN;
    r->rest = discord_rest_new(&r->loop, r->http, &ro);
    assert_non_null(r->rest);
    uv_timer_init(&r->loop, &r->guard);
    r->guard.data = r;
    uv_timer_start(&r->guard, rt_guard, RT_GUARD_MS, 0);
    /* Times on the loop's own clock, the one the limits are kept on: the
     * test's monotonic clock read apart from it could see a second of the
     * limiter's as 999 ms. */
    uv_update_time(&r->loop);
    r->start_ms = uv_now(&r->loop);
}

/* Each request's callback data is a slot pointing back at the test. */
struct rt_slot {
    struct rt *r;
    size_t index;
};

static struct rt_slot rt_slots[RT_MAX];

static void rt_cb(const struct discord_rest_result *res, void *data)
{
    struct rt_slot *s = data;
    struct rt *r = s->r;
    r->status[s->index] = res->status;
    r->rc[s->index] = res->rc;
    r->tries[s->index] = res->tries;
    uv_update_time(&r->loop);
    r->done_ms[s->index] = uv_now(&r->loop) - r->start_ms;
    r->done++;
    if (r->done == r->expected)
        uv_stop(&r->loop);
}

static void rt_request(struct rt *r, const char *method, const char *path, const char *json)
{
    size_t i = r->expected++;
    assert_true(i < RT_MAX);
    rt_slots[i].r = r;
    rt_slots[i].index = i;
    assert_int_equal(
        discord_rest_request(r->rest, method, path, json, NULL, 0, rt_cb, &rt_slots[i]), 0);
}

static void rt_run(struct rt *r)
{
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_false(r->timed_out);
    assert_int_equal(r->done, r->expected);
}

static void rt_poll(uv_timer_t *t)
{
    struct rt *r = t->data;
    struct discord_rest_stats st;
    discord_rest_stats(r->rest, &st);
    if (st.global_limited > 0)
        uv_stop(t->loop);
}

static void rt_poll_closed(uv_handle_t *h)
{
    (void)h;
}

/* Run until the client has seen a global 429 (checked every 2 ms). */
static void rt_wait_global_429(struct rt *r)
{
    uv_timer_t poll;
    uv_timer_init(&r->loop, &poll);
    poll.data = r;
    uv_timer_start(&poll, rt_poll, 2, 2);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_false(r->timed_out);
    uv_close((uv_handle_t *)&poll, rt_poll_closed);
    uv_run(&r->loop, UV_RUN_NOWAIT);
}

static void rt_closed(void *data)
{
    (void)data;
}

static void rt_guard_closed(uv_handle_t *h)
{
    (void)h;
}

static void rt_teardown(struct rt *r)
{
    discord_rest_stats(r->rest, &r->stats);
    discord_rest_close(r->rest, rt_closed, NULL);
    http_client_close(r->http, rt_closed, NULL);
    fake_rest_close(r->fake, rt_closed, NULL);
    uv_close((uv_handle_t *)&r->guard, rt_guard_closed);
    while (uv_run(&r->loop, UV_RUN_DEFAULT) != 0) {
    }
    fake_rest_free(r->fake);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

/* ---- tests --------------------------------------------------------------- */

static void test_route_keys(void **state)
{
    (void)state;
    char route[256], major[128];
    assert_int_equal(discord_rest_route_key("PATCH", "/channels/123/messages/456", route,
                                            sizeof(route), major, sizeof(major)),
                     0);
    assert_string_equal(route, "PATCH /channels/:major/messages/:id");
    assert_string_equal(major, "channels/123");
    discord_rest_route_key("POST", "/webhooks/11/tok-en_x/messages/@original?wait=true", route,
                           sizeof(route), major, sizeof(major));
    assert_string_equal(route, "POST /webhooks/:major/:major/messages/@original");
    assert_string_equal(major, "webhooks/11/tok-en_x");
    discord_rest_route_key("PUT", "/applications/77/guilds/88/commands", route, sizeof(route),
                           major, sizeof(major));
    assert_string_equal(route, "PUT /applications/:id/guilds/:id/commands");
    assert_string_equal(major, "");
    discord_rest_route_key("GET", "/gateway/bot", route, sizeof(route), major, sizeof(major));
    assert_string_equal(route, "GET /gateway/bot");
    assert_true(discord_rest_is_interaction_callback("/interactions/5/aW50ZXJhY3Rpb24/callback"));
    assert_false(discord_rest_is_interaction_callback("/webhooks/5/tok"));
}

/* Two requests per 300 ms window, seven requests: the client must wait out
 * each exhausted window; the fake counts any request that comes too soon. */
static void test_bucket_exhausted_holds(void **state)
{
    (void)state;
    struct rt r;
    struct fake_rest_options fo = {.bucket_limit = 2, .bucket_reset_ms = 300};
    rt_setup(&r, NULL, &fo);
    for (int i = 0; i < 7; i++)
        rt_request(&r, "POST", "/channels/1/messages", "{\"content\":\"x\"}");
    rt_run(&r);
    for (size_t i = 0; i < r.expected; i++)
        assert_int_equal(r.status[i], 200);
    assert_int_equal(fake_rest_violations(r.fake), 0);
    assert_int_equal(fake_rest_matching(r.fake, "POST", "/channels/1/messages"), 7);
    /* Windows: 2 + 2 + 2 + 1 -> at least three resets of 300 ms. */
    assert_true(r.done_ms[6] >= 900);
    rt_teardown(&r);
    assert_true(r.stats.held_by_bucket >= 3);
    assert_int_equal(r.stats.rate_limited, 0);
}

/* Another channel is another bucket: it does not wait behind the first. */
static void test_major_parameter_separates(void **state)
{
    (void)state;
    struct rt r;
    struct fake_rest_options fo = {.bucket_limit = 1, .bucket_reset_ms = 2000};
    rt_setup(&r, NULL, &fo);
    rt_request(&r, "POST", "/channels/1/messages", "{}");
    rt_request(&r, "POST", "/channels/1/messages", "{}"); /* waits 2 s */
    rt_request(&r, "POST", "/channels/2/messages", "{}");
    rt_run(&r);
    assert_int_equal(fake_rest_violations(r.fake), 0);
    assert_true(r.done_ms[1] >= 2000);
    assert_true(r.done_ms[2] < r.done_ms[1]);
    rt_teardown(&r);
}

/* A 429 for one bucket: wait retry_after, send again, succeed. */
static void test_429_bucket_retry(void **state)
{
    (void)state;
    struct rt r;
    rt_setup(&r, NULL, NULL);
    fake_rest_script_429(r.fake, "/channels/5/", 0.25, false);
    rt_request(&r, "POST", "/channels/5/messages", "{}");
    rt_request(&r, "POST", "/channels/5/messages", "{}");
    rt_run(&r);
    assert_int_equal(r.status[0], 200);
    assert_int_equal(r.status[1], 200);
    assert_int_equal(r.tries[0], 2);
    assert_true(r.done_ms[0] >= 250);
    assert_int_equal(fake_rest_violations(r.fake), 0);
    /* Requeued at the head: the first request still completes first. */
    assert_true(r.done_ms[0] <= r.done_ms[1]);
    rt_teardown(&r);
    assert_int_equal(r.stats.rate_limited, 1);
    assert_int_equal(r.stats.invalid, 1);
}

/* A global 429 holds every bucket. */
static void test_429_global_holds_all(void **state)
{
    (void)state;
    struct rt r;
    rt_setup(&r, NULL, NULL);
    fake_rest_script_429(r.fake, "/channels/1/", 0.3, true);
    rt_request(&r, "POST", "/channels/1/messages", "{}");
    rt_wait_global_429(&r);
    rt_request(&r, "POST", "/channels/2/messages", "{}");
    rt_request(&r, "GET", "/guilds/3/roles", NULL);
    rt_run(&r);
    assert_int_equal(fake_rest_violations(r.fake), 0);
    assert_int_equal(r.status[0], 200);
    assert_true(r.done_ms[0] >= 300);
    rt_teardown(&r);
    assert_int_equal(r.stats.global_limited, 1);
}

/* The global limit is enforced before sending: 2 per second, 3 requests to
 * three buckets -> the third goes a second after the first. */
static void test_global_limit_before_sending(void **state)
{
    (void)state;
    struct rt r;
    struct discord_rest_options ro = {.global_per_s = 2};
    rt_setup(&r, &ro, NULL);
    rt_request(&r, "POST", "/channels/1/messages", "{}");
    rt_request(&r, "POST", "/channels/2/messages", "{}");
    rt_request(&r, "POST", "/channels/3/messages", "{}");
    rt_run(&r);
    uint64_t last = 0;
    for (int i = 0; i < 3; i++)
        last = r.done_ms[i] > last ? r.done_ms[i] : last;
    assert_true(last >= 1000);
    assert_int_equal(fake_rest_violations(r.fake), 0);
    rt_teardown(&r);
    assert_true(r.stats.held_by_global >= 1);
    assert_int_equal(r.stats.rate_limited, 0);
}

/* Interaction callbacks are not bound by the global limit and never queue:
 * twenty slow callbacks (300 ms each) with a global limit of 1/s finish
 * together, not one after another. */
static void test_callbacks_parallel(void **state)
{
    (void)state;
    struct rt r;
    struct discord_rest_options ro = {.global_per_s = 1};
    rt_setup(&r, &ro, NULL);
    fake_rest_delay(r.fake, "/callback", 300);
    char path[128];
    for (int i = 0; i < 20; i++) {
        snprintf(path, sizeof(path), "/interactions/%d/token%d/callback", 1000 + i, i);
        rt_request(&r, "POST", path, "{\"type\":5}");
    }
    rt_run(&r);
    for (int i = 0; i < 20; i++)
        assert_int_equal(r.status[i], 204);
    uint64_t last = 0;
    for (int i = 0; i < 20; i++)
        last = r.done_ms[i] > last ? r.done_ms[i] : last;
    assert_true(last < 3000); /* serial would be 6 s (delay) or 19 s (global) */
    rt_teardown(&r);
}

/* With a pool of its own (4 connections), calls take turns on it: a burst
 * of 60 callbacks with a slow one among them all finish, the slow one
 * holding only its own connection, a channel message goes too, and the
 * fake sees no more connections than the pool. A callback's 429 waits
 * what it says, then goes again. */
static void test_callbacks_pooled(void **state)
{
    (void)state;
    struct rt r;
    struct discord_rest_options ro = {.global_per_s = 1000, .connections = 4};
    rt_setup(&r, &ro, NULL);
    fake_rest_delay(r.fake, "/interactions/999/", 300);
    fake_rest_script_429(r.fake, "/interactions/1001/", 0.2, false);
    rt_request(&r, "POST", "/interactions/999/slow/callback", "{\"type\":5}");
    char path[128];
    for (int i = 1; i < 60; i++) {
        snprintf(path, sizeof(path), "/interactions/%d/token%d/callback", 1000 + i, i);
        rt_request(&r, "POST", path, "{\"type\":5}");
    }
    rt_request(&r, "POST", "/channels/1/messages", "{}");
    rt_run(&r);
    for (int i = 0; i < 60; i++)
        assert_int_equal(r.status[i], 204);
    assert_int_equal(r.status[60], 200);
    assert_true(r.done_ms[0] >= 300);
    assert_true(r.done_ms[1] >= 200); /* its 429's wait */
    assert_int_equal(r.tries[1], 2);
    uint64_t fast = 0;
    for (int i = 2; i < 60; i++)
        fast = r.done_ms[i] > fast ? r.done_ms[i] : fast;
    assert_true(fast < 300); /* not behind the slow one */
    assert_true(fake_rest_connections(r.fake) <= 4);
    rt_teardown(&r);
}

/* Past the invalid-request budget everything waits for the window. */
static void test_invalid_budget_backs_off(void **state)
{
    (void)state;
    struct rt r;
    struct discord_rest_options ro = {.invalid_budget = 2, .invalid_window_ms = 500};
    rt_setup(&r, &ro, NULL);
    fake_rest_script_status(r.fake, "/channels/1/", 403);
    fake_rest_script_status(r.fake, "/channels/2/", 403);
    rt_request(&r, "POST", "/channels/1/messages", "{}");
    rt_request(&r, "POST", "/channels/2/messages", "{}");
    rt_run(&r);
    assert_int_equal(r.status[0], 403);
    assert_int_equal(r.status[1], 403);
    uint64_t first_bad = r.done_ms[0] < r.done_ms[1] ? r.done_ms[0] : r.done_ms[1];
    rt_request(&r, "POST", "/channels/3/messages", "{}");
    rt_run(&r);
    assert_int_equal(r.status[2], 200);
    assert_true(r.done_ms[2] >= first_bad + 450);
    rt_teardown(&r);
    assert_int_equal(r.stats.invalid, 2);
}

/* Files go as multipart: payload_json and files[0]. */
static void test_multipart_file(void **state)
{
    (void)state;
    struct rt r;
    rt_setup(&r, NULL, NULL);
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', 0, 1, 2, 3, 4, 5};
    struct discord_rest_file file = {
        .filename = "image.png", .mime = "image/png", .data = png, .len = sizeof(png)};
    rt_slots[0].r = &r;
    rt_slots[0].index = 0;
    r.expected = 1;
    assert_int_equal(discord_rest_request(r.rest, "PATCH", "/webhooks/9/tok/messages/@original",
                                          "{\"content\":\"here\",\"attachments\":[{\"id\":0}]}",
                                          &file, 1, rt_cb, &rt_slots[0]),
                     0);
    rt_run(&r);
    assert_int_equal(r.status[0], 200);
    struct fake_rest_request *q = fake_rest_get(r.fake, 0);
    assert_non_null(q);
    assert_int_equal(q->nfiles, 1);
    assert_int_equal(q->file_len, sizeof(png));
    assert_string_equal(q->file_name, "image.png");
    assert_string_equal(q->file_type, "image/png");
    assert_non_null(strstr(q->json, "\"content\":\"here\""));
    assert_string_equal(q->auth, "Bot " RT_TOKEN);
    fake_rest_request_free(q);
    rt_teardown(&r);
}

/* Closing fails what waits with HB_ECANCELED. */
static void test_close_cancels_queued(void **state)
{
    (void)state;
    struct rt r;
    struct fake_rest_options fo = {.bucket_limit = 1, .bucket_reset_ms = 5000};
    rt_setup(&r, NULL, &fo);
    rt_request(&r, "POST", "/channels/1/messages", "{}");
    rt_request(&r, "POST", "/channels/1/messages", "{}");
    r.expected = 1;
    rt_run(&r);
    assert_int_equal(r.status[0], 200);
    r.expected = 2;
    rt_teardown(&r);
    assert_int_equal(r.done, 2);
    assert_int_equal(r.rc[1], HB_ECANCELED);
}

/* A server whose X-RateLimit-* headers hold numbers no integer holds. */
static void rt_huge_handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    unsigned *calls = data;
    (void)req;
    (*calls)++;
    httpd_response_header_add(res, "X-RateLimit-Bucket", "huge");
    if (*calls == 1) {
        httpd_response_header_add(res, "X-RateLimit-Limit", "1e300");
        httpd_response_header_add(res, "X-RateLimit-Remaining", "99999999999999999999");
        httpd_response_header_add(res, "X-RateLimit-Reset-After", "1.5");
    } else {
        httpd_response_header_add(res, "X-RateLimit-Limit", "5");
        httpd_response_header_add(res, "X-RateLimit-Remaining", "0");
        httpd_response_header_add(res, "X-RateLimit-Reset-After", "1e300");
    }
    httpd_response_send(res, 200, "application/json", "{}", 2);
}

/* Limits that do not fit are refused, not converted: the bucket learns
 * nothing from them and every request still goes out and completes. */
static void test_ratelimit_headers_out_of_range(void **state)
{
    (void)state;
    struct rt r;
    memset(&r, 0, sizeof(r));
    unsigned calls = 0;
    assert_int_equal(uv_loop_init(&r.loop), 0);
    assert_int_equal(http_client_new(&r.loop, NULL, &r.http), 0);
    struct httpd *srv = httpd_new(&r.loop, rt_huge_handler, &calls);
    assert_non_null(srv);
    struct discord_rest_options ro;
    memset(&ro, 0, sizeof(ro));
    ro.api_base = httpd_base_url(srv);
    ro.token = RT_TOKEN;
    r.rest = discord_rest_new(&r.loop, r.http, &ro);
    assert_non_null(r.rest);
    uv_timer_init(&r.loop, &r.guard);
    r.guard.data = &r;
    uv_timer_start(&r.guard, rt_guard, RT_GUARD_MS, 0);
    r.start_ms = test_now_ms();
    for (int i = 0; i < 3; i++)
        rt_request(&r, "POST", "/channels/1/messages", "{}");
    rt_run(&r);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(r.status[i], 200);
    assert_int_equal(calls, 3);
    assert_true(r.done_ms[2] < 5000);
    discord_rest_close(r.rest, rt_closed, NULL);
    http_client_close(r.http, rt_closed, NULL);
    httpd_close(srv, rt_closed, NULL);
    uv_close((uv_handle_t *)&r.guard, rt_guard_closed);
    while (uv_run(&r.loop, UV_RUN_DEFAULT) != 0) {
    }
    assert_int_equal(uv_loop_close(&r.loop), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_route_keys),
    cmocka_unit_test(test_bucket_exhausted_holds),
    cmocka_unit_test(test_major_parameter_separates),
    cmocka_unit_test(test_429_bucket_retry),
    cmocka_unit_test(test_429_global_holds_all),
    cmocka_unit_test(test_global_limit_before_sending),
    cmocka_unit_test(test_callbacks_parallel),
    cmocka_unit_test(test_callbacks_pooled),
    cmocka_unit_test(test_invalid_budget_backs_off),
    cmocka_unit_test(test_multipart_file),
    cmocka_unit_test(test_close_cancels_queued),
    cmocka_unit_test(test_ratelimit_headers_out_of_range),
};

TEST_GROUP_DEFINE(discord_rest, tests, NULL, NULL)
