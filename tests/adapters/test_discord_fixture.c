/* The Discord adapter tests' fixture (tests/adapters/test_discord.h). */
#include "tests/adapters/test_discord.h"

static double at_jitter(void *data)
{
    (void)data;
    return 0.0;
}

static void at_closed_noop(void *data)
{
    (void)data;
}

static void at_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void at_adapter_closed(void *data)
{
    struct at *t = data;
    fake_gateway_close(t->gw);
    fake_rest_close(t->rest, at_closed_noop, NULL);
    http_client_close(t->http, at_closed_noop, NULL);
}

void at_finish(struct at *t)
{
    if (t->closing)
        return;
    t->closing = true;
    discord_adapter_stats(t->adapter, &t->stats);
    t->rest_connections = fake_rest_connections(t->rest);
    uv_close((uv_handle_t *)&t->guard, at_handle_closed);
    uv_close((uv_handle_t *)&t->later, at_handle_closed);
    /* Replies a test still holds are finished first: the adapter waits
     * for them. */
    for (size_t i = 0; i < t->nheld; i++) {
        if (t->held[i] != NULL)
            reply_finish(t->held[i]);
        t->held[i] = NULL;
    }
    t->adapter->ops->close(t->adapter, at_adapter_closed, t);
}

static void at_guard(uv_timer_t *timer)
{
    struct at *t = timer->data;
    t->timed_out = true;
    at_finish(t);
}

static void at_on_request(struct fake_rest *f, const struct fake_rest_request *req, void *data)
{
    struct at *t = data;
    (void)f;
    (void)req;
    if (!t->closing && t->done != NULL && t->done(t))
        at_finish(t);
}

static void at_on_seen(struct fake_gateway *f, enum fake_gateway_seen what, void *data)
{
    struct at *t = data;
    (void)f;
    if (what == FAKE_SEEN_IDENTIFY && !t->identified) {
        t->identified = true;
        t->first_ms = test_now_ms();
        if (t->script != NULL)
            t->script(t);
    }
}

static void at_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct at *t = data;
    t->dispatched++;
    invocation_clear(&t->last);
    t->last = *inv;
    for (size_t i = 0; i < COMMAND_MAX_OPTIONS; i++) {
        if (inv->opts[i].string != NULL)
            t->last.opts[i].string = strdup(inv->opts[i].string);
    }
    snprintf(t->last_args, sizeof(t->last_args), "%s", args != NULL ? args : "");
    /* Events flow, so the shard reports itself identified (for /healthz). */
    struct discord_gateway_status gs;
    unsigned shard = 99;
    t->shard_seen = discord_adapter_shard(t->adapter, 0, &shard, &gs) && shard == 0 &&
                    gs.state == DISCORD_GW_IDENTIFIED &&
                    !discord_adapter_shard(t->adapter, 1, &shard, &gs);
    if (t->handler != NULL)
        t->handler(t, inv);
    else
        reply_finish(inv->reply);
    invocation_clear(inv);
}

static void at_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

void at_run(struct at *t, const struct discord_options *extra)
{
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(http_client_new(&t->loop, NULL, &t->http), 0);
    struct fake_gateway_options go = {.heartbeat_ms = 5000, .on_seen = at_on_seen, .data = t};
    t->gw = fake_gateway_new(&t->loop, &go);
    assert_non_null(t->gw);
    struct fake_rest_options ro = {
        .gateway_url = fake_gateway_url(t->gw), .on_request = at_on_request, .data = t};
    t->rest = fake_rest_new(&t->loop, &ro);
    assert_non_null(t->rest);
    struct discord_options o;
    memset(&o, 0, sizeof(o));
    if (extra != NULL)
        o = *extra;
    o.token = AT_TOKEN;
    o.application_id = t->app_id != NULL ? t->app_id : AT_APP;
    o.api_base = fake_rest_api_base(t->rest);
    o.shard_last = -1;
    o.http = t->http;
    o.jitter = at_jitter;
    o.identify_spacing_ms = 10;
    if (o.edit_interval_ms == 0)
        o.edit_interval_ms = 100;
    struct adapter_host host = {.dispatch = at_dispatch, .ended = at_ended, .data = t};
    t->adapter = discord_new(&t->loop, &o, &host);
    assert_non_null(t->adapter);
    uv_timer_init(&t->loop, &t->guard);
    uv_timer_init(&t->loop, &t->later);
    t->guard.data = t;
    t->later.data = t;
    uv_timer_start(&t->guard, at_guard, AT_GUARD_MS, 0);
    assert_int_equal(t->adapter->ops->start(t->adapter), 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    t->adapter->ops->free(t->adapter);
    fake_gateway_free(t->gw);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    assert_false(t->timed_out);
}

/* An INTERACTION_CREATE for /help from a member with Manage Server. */
void at_interaction(struct at *t, unsigned n, const char *data_json, int type)
{
    char d[1024];
    snprintf(d, sizeof(d),
             "{\"id\":\"%u\",\"application_id\":\"" AT_APP "\",\"type\":%d,\"token\":\"tok%u\","
             "\"guild_id\":\"77\",\"channel_id\":\"88\",\"member\":{\"permissions\":\"32\","
             "\"roles\":[\"901\",\"18446744073709551615\"],"
             "\"user\":{\"id\":\"555\",\"username\":\"ann\"}},\"data\":%s,\"version\":1}",
             1000u + n, type, n, data_json);
    fake_gateway_dispatch(t->gw, "INTERACTION_CREATE", d);
}

/* Count recorded requests whose target contains substr and whose body
 * contains needle (NULL: any). */
size_t at_count(struct at *t, const char *method, const char *substr, const char *needle)
{
    size_t n = 0, total = fake_rest_count(t->rest);
    for (size_t i = 0; i < total; i++) {
        struct fake_rest_request *q = fake_rest_get(t->rest, i);
        if (q == NULL)
            continue;
        if ((method == NULL || strcmp(q->method, method) == 0) &&
            strstr(q->target, substr) != NULL &&
            (needle == NULL || strstr(q->json, needle) != NULL))
            n++;
        fake_rest_request_free(q);
    }
    return n;
}

static void at_slow_step(uv_timer_t *timer)
{
    struct at *t = timer->data;
    struct reply *r = t->held[0];
    struct reply_msg m = {.stage = REPLY_PROGRESS, .text = "working 1"};
    reply_send(r, &m);
    m.text = "working 2";
    reply_send(r, &m);
    m.text = "working 3";
    reply_send(r, &m);
    m.stage = REPLY_FINAL;
    m.text = "result: 42";
    reply_send(r, &m);
    reply_finish(r);
    t->held[0] = NULL;
}

void at_slow_handler(struct at *t, struct invocation *inv)
{
    t->held[t->nheld++] = inv->reply;
    uv_timer_start(&t->later, at_slow_step, 20, 0);
}

size_t at_models(void *data, const char **names, size_t max)
{
    (void)data;
    static const char *const all[] = {"gpt-4o-mini", "claude-haiku", "gpt-image"};
    size_t n = 0;
    for (; n < 3 && n < max; n++)
        names[n] = all[n];
    return n;
}
