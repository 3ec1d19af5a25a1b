/* The Telegram adapter tests' fixture. See tests/adapters/test_telegram.h. */
#include "tests/adapters/test_telegram.h"

static void fx_stream_tick(uv_timer_t *t)
{
    struct fx *fx = t->data;
    char text[64];
    if (++fx->stream_step <= 20) {
        snprintf(text, sizeof(text), "part %d", fx->stream_step);
        struct reply_msg m = {.stage = REPLY_PROGRESS, .text = text};
        reply_send(fx->stream_reply, &m);
        return;
    }
    uv_timer_stop(t);
    struct reply_msg m = {.stage = REPLY_FINAL, .text = "done streaming"};
    reply_send(fx->stream_reply, &m);
    reply_finish(fx->stream_reply);
    fx->stream_reply = NULL;
}

/* Test handlers, standing in for core commands. */
static void fx_custom(struct fx *fx, struct invocation *inv, const char *args)
{
    if (inv->button_ref[0] != '\0') {
        reply_text(inv->reply, false, "pressed %s", inv->button_ref);
        reply_finish(inv->reply);
        return;
    }
    if (args != NULL && strncmp(args, "menu", 4) == 0) {
        struct reply_button b[2] = {{.label = "One"}, {.label = "Two"}};
        snprintf(b[0].ref, sizeof(b[0].ref), "t:1:abc");
        snprintf(b[1].ref, sizeof(b[1].ref), "t:2:abc");
        struct reply_msg m = {.stage = REPLY_FINAL, .text = "pick", .buttons = b, .nbuttons = 2};
        reply_send(inv->reply, &m);
    } else if (args != NULL && strncmp(args, "burst", 5) == 0) {
        for (int i = 1; i <= 8; i++)
            reply_text(inv->reply, false, "m%d", i);
    } else if (args != NULL && strncmp(args, "stream", 6) == 0) {
        fx->stream_reply = inv->reply;
        fx->stream_step = 0;
        uv_timer_start(&fx->stream_timer, fx_stream_tick, 5, 5);
        return;
    } else if (args != NULL && strncmp(args, "progimage", 9) == 0) {
        static const unsigned char png[] = {0x89, 'P', 'N', 'G', 1, 2, 3, 4, 5};
        struct reply_image img = {
            .data = png, .len = sizeof(png), .mime = "image/png", .filename = "image.png"};
        struct reply_msg p = {.stage = REPLY_PROGRESS, .text = "Generating with demo-image..."};
        reply_send(inv->reply, &p);
        struct reply_msg m = {.stage = REPLY_FINAL, .text = "a dog", .image = &img};
        reply_send(inv->reply, &m);
    } else if (args != NULL && strncmp(args, "image", 5) == 0) {
        static const unsigned char png[] = {0x89, 'P', 'N', 'G', 1, 2, 3, 4, 5};
        struct reply_image img = {
            .data = png, .len = sizeof(png), .mime = "image/png", .filename = "image.png"};
        struct reply_msg m = {.stage = REPLY_FINAL, .text = "a cat", .image = &img};
        reply_send(inv->reply, &m);
    } else if (args != NULL && strncmp(args, "long", 4) == 0) {
        char *big = malloc(9001);
        memset(big, 'x', 9000);
        big[9000] = '\0';
        reply_text(inv->reply, false, "%s", big);
        free(big);
    } else {
        reply_text(inv->reply, false, "ok %s", args != NULL ? args : "");
    }
    reply_finish(inv->reply);
}

static void fx_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct fx *fx = data;
    const char *colon = strchr(inv->event_id, ':');
    if (fx->nevents < 256 && colon != NULL)
        fx->events[fx->nevents++] = strtoll(colon + 1, NULL, 10);
    snprintf(fx->last_args, sizeof(fx->last_args), "%s", args != NULL ? args : "");
    snprintf(fx->last_ref, sizeof(fx->last_ref), "%s", inv->button_ref);
    fx->last_admin = inv->admin;
    if (fx->handler != NULL)
        fx->handler(fx, inv, args);
    else if (fx->mode == FX_ROUTER)
        router_dispatch(fx->router, inv, args);
    else
        fx_custom(fx, inv, args);
}

static void fx_ended(void *data, struct adapter *a)
{
    struct fx *fx = data;
    (void)a;
    fx->ended++;
}

static void fx_closed(void *data)
{
    int *n = data;
    (*n)++;
}

void fx_init(struct fx *fx, const char *api_token)
{
    memset(fx, 0, sizeof(*fx));
    lt_init(&fx->lt, true, true);
    assert_int_equal(http_client_new(&fx->lt.loop, NULL, &fx->http), 0);
    fx->api = tgapi_new(&fx->lt.loop, api_token != NULL ? api_token : TOKEN);
    assert_non_null(fx->api);
    fx->core.bot_name = "HAI Bot";
    fx->core.ledger = fx->lt.ledger;
    fx->core.welcome_bonus = 100;
    fx->router = router_new(&fx->core);
    uv_timer_init(&fx->lt.loop, &fx->stream_timer);
    fx->stream_timer.data = fx;
    fx->opts.token = TOKEN;
    fx->opts.api_base = tgapi_base(fx->api);
    fx->opts.poll_timeout_s = 30;
    fx->opts.chat_interval_ms = 20;
    fx->opts.group_interval_ms = 30;
    fx->opts.global_per_s = 1000;
    fx->opts.retry_after_unit_ms = 20;
    fx->opts.backoff_min_ms = 20;
    fx->opts.backoff_max_ms = 100;
}

struct adapter *fx_adapter_open(struct fx *fx)
{
    struct adapter_host host = {.dispatch = fx_dispatch, .ended = fx_ended, .data = fx};
    struct adapter *a = telegram_new(&fx->lt.loop, fx->http, &fx->core, &fx->opts, &host);
    assert_non_null(a);
    assert_int_equal(a->ops->start(a), 0);
    return a;
}

void fx_start(struct fx *fx)
{
    fx->tg = fx_adapter_open(fx);
}

static void fx_guard(uv_timer_t *t)
{
    bool *fired = t->data;
    *fired = true;
}

/* Run the loop until cond(fx) holds; fail after GUARD_MS. */
void fx_until(struct fx *fx, bool (*cond)(struct fx *fx, void *arg), void *arg)
{
    uv_timer_t guard;
    bool fired = false;
    uv_timer_init(&fx->lt.loop, &guard);
    guard.data = &fired;
    uv_timer_start(&guard, fx_guard, GUARD_MS, 0);
    while (!cond(fx, arg) && !fired)
        uv_run(&fx->lt.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&fx->lt.loop, UV_RUN_NOWAIT);
    assert_false(fired);
}

/* Run the loop for ms (only where time itself is what is tested). */
void fx_run_for(struct fx *fx, uint64_t ms)
{
    test_run_for(&fx->lt.loop, ms);
}

static bool fx_has_count(struct fx *fx, void *arg)
{
    const char *spec = arg; /* "method=N" */
    char method[40];
    size_t n = strcspn(spec, "=");
    snprintf(method, sizeof(method), "%.*s", (int)n, spec);
    return tgapi_count(fx->api, method) >= (size_t)atoi(spec + n + 1);
}

void fx_wait_count(struct fx *fx, const char *method, size_t n)
{
    char spec[64];
    snprintf(spec, sizeof(spec), "%s=%zu", method, n);
    fx_until(fx, fx_has_count, spec);
}

static bool fx_is_closed(struct fx *fx, void *arg)
{
    (void)arg;
    return fx->closed > 0;
}

void fx_adapter_close_one(struct fx *fx, struct adapter *a)
{
    fx->closed = 0;
    a->ops->close(a, fx_closed, &fx->closed);
    fx_until(fx, fx_is_closed, NULL);
}

void fx_adapter_close(struct fx *fx)
{
    if (fx->tg == NULL)
        return;
    fx_adapter_close_one(fx, fx->tg);
    fx->tg = NULL;
}

void fx_done(struct fx *fx)
{
    fx_adapter_close(fx);
    int closed = 0;
    http_client_close(fx->http, fx_closed, &closed);
    tgapi_close(fx->api, fx_closed, &closed);
    uv_close((uv_handle_t *)&fx->stream_timer, NULL);
    while (closed < 2)
        uv_run(&fx->lt.loop, UV_RUN_ONCE);
    router_free(fx->router);
    lt_done(&fx->lt); /* asserts uv_loop_close == 0 */
}

/* The n-th recorded call of method (0-based), or NULL. */
const struct tgapi_call *fx_call(struct fx *fx, const char *method, size_t n)
{
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (strcmp(c->method, method) == 0 && n-- == 0)
            return c;
    }
    return NULL;
}

void fx_dm(struct fx *fx, int64_t user, const char *text)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "\"message\":{\"message_id\":7,\"date\":1700000000,\"chat\":{\"id\":%" PRId64
             ",\"type\":\"private\",\"first_name\":\"Ann\"},\"from\":{\"id\":%" PRId64
             ",\"is_bot\":false,\"first_name\":\"Ann\",\"username\":\"ann\",\"language_code\":"
             "\"en\"},\"text\":\"%s\",\"future_field\":{\"x\":1}}",
             user, user, text);
    tgapi_push(fx->api, buf);
}

void fx_group(struct fx *fx, int64_t chat, int64_t user, const char *text)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "\"message\":{\"message_id\":9,\"date\":1700000000,\"chat\":{\"id\":%" PRId64
             ",\"type\":\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":%" PRId64
             ",\"is_bot\":false,\"first_name\":\"Bob\"},\"text\":\"%s\"}",
             chat, user, text);
    tgapi_push(fx->api, buf);
}

/* ---- tests ---------------------------------------------------------- */

/* One message of user (with a username) in a group; reply_to: the JSON of
 * reply_to_message, or NULL; extra: more members of the message, or "". */
void fx_group_from(struct fx *fx, int64_t chat, int64_t user, const char *username, int64_t msg_id,
                   const char *text, const char *reply_to, const char *extra)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "\"message\":{\"message_id\":%" PRId64 ",\"date\":1700000000,\"chat\":{\"id\":%" PRId64
             ",\"type\":\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":%" PRId64
             ",\"is_bot\":false,\"first_name\":\"%s\",\"username\":\"%s\"},\"text\":\"%s\"%s%s%s}",
             msg_id, chat, user, username, username, text,
             reply_to != NULL ? ",\"reply_to_message\":" : "", reply_to != NULL ? reply_to : "",
             extra);
    tgapi_push(fx->api, buf);
}

/* The host dispatched n updates and every command has finished. */
bool fx_handled(struct fx *fx, void *arg)
{
    return fx->nevents >= (size_t)(intptr_t)arg && router_in_flight(fx->router) == 0;
}

/* Some recorded call's body holds the text arg. */
bool fx_some_call_says(struct fx *fx, void *arg)
{
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (c->body != NULL && strstr(c->body, arg) != NULL)
            return true;
    }
    return false;
}

/* rc of reading an account's balance: 0, or HB_ENOTFOUND when never opened. */
int fx_account_rc(struct fx *fx, const char *account)
{
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    int rc = ledger_balance_get(fx->lt.ledger, account, lt_cb, &res);
    if (rc < 0)
        return rc;
    lt_wait(&fx->lt, &res);
    return res.rc;
}

/* The sendMessage calls to chat (in order), as a NULL-ended list of
 * borrowed bodies in out (at most n-1). Returns how many. */
size_t fx_sends_to(struct fx *fx, int64_t chat, const char **out, size_t n)
{
    char key[40];
    snprintf(key, sizeof(key), "\"chat_id\":%" PRId64 ",", chat);
    char last[40];
    snprintf(last, sizeof(last), "\"chat_id\":%" PRId64 "}", chat);
    size_t k = 0;
    for (size_t i = 0; i < tgapi_ncalls(fx->api) && k + 1 < n; i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (strcmp(c->method, "sendMessage") == 0 &&
            (strstr(c->body, key) != NULL || strstr(c->body, last) != NULL))
            out[k++] = c->body;
    }
    out[k] = NULL;
    return k;
}
