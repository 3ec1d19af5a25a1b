/* The adapters' notify operation: a message no command asked for. The
 * console prints it marked as a notice; Telegram sends it through its
 * paced per-chat queue to the fake Bot API (the user id is a private
 * chat's id; a group's chat when one is named); Discord opens the member's
 * DM at the fake REST and posts there, or posts in a named channel. Every
 * test closes the adapter and its fakes and ends with a clean loop. */
#include "tests/test.h"

#include "adapters/console/console.h"
#include "adapters/discord/discord.h"
#include "adapters/telegram/telegram.h"
#include "net/http.h"
#include "storage/store.h"
#include "core/cluster.h"
#include "core/core.h"
#include "base/error.h"
#include "core/notify.h"
#include "core/outbox.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/discord_rest.h"
#include "tests/fake/telegram_api.h"
#include "tests/storage/store_db.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT_GUARD_MS 10000

static void nt_count(void *data)
{
    (*(int *)data)++;
}

static void nt_dispatch(void *data, struct invocation *inv, const char *args)
{
    (void)data;
    (void)args;
    reply_finish(inv->reply);
    invocation_clear(inv);
}

static void nt_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static void nt_guard(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Run loop until cond(arg) holds, failing after NT_GUARD_MS. */
static void nt_until(uv_loop_t *loop, bool (*cond)(void *arg), void *arg)
{
    uv_timer_t guard;
    bool fired = false;
    uv_timer_init(loop, &guard);
    guard.data = &fired;
    uv_timer_start(&guard, nt_guard, NT_GUARD_MS, 0);
    while (!cond(arg) && !fired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_false(fired);
}

static bool nt_count_reached(void *arg)
{
    return *(int *)arg > 0;
}

/* ---- console --------------------------------------------------------------- */

/* A started console adapter on pipes (the test reads what it prints from
 * out[0]), saving images in image_dir (may be NULL: "."). */
struct nt_console {
    uv_loop_t loop;
    int in[2], out[2];
    struct adapter *a;
    struct notify_target to; /* its member */
};

static void nt_console_open(struct nt_console *c, const char *image_dir)
{
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(pipe(c->in), 0);
    assert_int_equal(pipe(c->out), 0);
    struct console_options o = {
        .user = "operator", .image_dir = image_dir, .in_fd = c->in[0], .out_fd = c->out[1]};
    struct adapter_host host = {.dispatch = nt_dispatch, .ended = nt_ended, .data = NULL};
    c->a = console_new(&c->loop, &o, &host);
    assert_non_null(c->a);
    assert_non_null(c->a->ops->notify);
    assert_int_equal(c->a->ops->start(c->a), 0);
    assert_int_equal(notify_target_from_account(&c->to, "console:operator"), 0);
}

static void nt_console_close(struct nt_console *c)
{
    int closed = 0;
    c->a->ops->close(c->a, nt_count, &closed);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    for (int i = 0; i < 2; i++) {
        close(c->in[i]);
        close(c->out[i]);
    }
}

static void test_console_notify_prints(void **state)
{
    (void)state;
    struct nt_console c;
    nt_console_open(&c, NULL);
    struct reply_msg m = {.stage = REPLY_FINAL,
                          .text = "Your card payment arrived: 1,000 credits."};
    assert_int_equal(c.a->ops->notify(c.a, &c.to, &m), 0);
    /* Nothing to say is refused. */
    struct reply_msg empty = {.stage = REPLY_FINAL, .text = ""};
    assert_int_equal(c.a->ops->notify(c.a, &c.to, &empty), HB_EINVAL);
    char buf[256] = "";
    ssize_t n = read(c.out[0], buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "[notice] Your card payment arrived: 1,000 credits.\n");
    nt_console_close(&c);
}

/* A notice with an image and buttons (a held image generation approved):
 * the image is saved as a reply's is and its path printed, the buttons are
 * numbered for /press; an image alone is a notice too. */
static void test_console_notify_image_and_buttons(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    struct nt_console c;
    nt_console_open(&c, dir);
    static const unsigned char png[] = "\x89PNG\r\n\x1a\n-the-picture";
    struct reply_image img = {
        .data = png, .len = sizeof(png) - 1, .mime = "image/png", .filename = "image.png"};
    struct reply_button buttons[2] = {{.label = "Regenerate"}, {.label = "Upvote"}};
    struct reply_msg m = {.stage = REPLY_FINAL,
                          .text = "Approved: your image.",
                          .image = &img,
                          .buttons = buttons,
                          .nbuttons = 2};
    assert_int_equal(c.a->ops->notify(c.a, &c.to, &m), 0);
    struct reply_msg alone = {.stage = REPLY_FINAL, .image = &img};
    assert_int_equal(c.a->ops->notify(c.a, &c.to, &alone), 0);
    char buf[2048] = "";
    size_t got = 0;
    /* Both were written before notify returned; read until the second's
     * line ends. */
    while (strstr(buf, "(/press N)\n[notice] [image saved to ") == NULL || buf[got - 1] != '\n') {
        ssize_t n = read(c.out[0], buf + got, sizeof(buf) - 1 - got);
        assert_true(n > 0);
        got += (size_t)n;
        buf[got] = '\0';
    }
    const char *text = strstr(buf, "[notice] Approved: your image.\n[image saved to ");
    assert_non_null(text);
    char path[1024];
    assert_int_equal(
        sscanf(text, "[notice] Approved: your image.\n[image saved to %1023[^,]", path), 1);
    assert_non_null(strstr(text, ", 20 bytes]\nbuttons: [1] Regenerate [2] Upvote   (/press N)\n"));
    size_t len = 0;
    char *saved = test_file_read(path, &len);
    assert_non_null(saved);
    assert_int_equal(len, sizeof(png) - 1);
    assert_memory_equal(saved, png, len);
    free(saved);
    assert_non_null(strstr(text, "(/press N)\n[notice] [image saved to "));
    nt_console_close(&c);
    test_tmpdir_remove(dir);
    free(dir);
}

/* ---- telegram -------------------------------------------------------------- */

#define TG_TOKEN "123456:TEST-token-abcdef"

struct tgn {
    struct lt lt;
    struct http_client *http;
    struct tgapi *api;
    struct core core;
    struct adapter *tg;
    const char *method;
    size_t want;
};

static bool tgn_has(void *arg)
{
    struct tgn *t = arg;
    return tgapi_count(t->api, t->method) >= t->want;
}

/* The n-th recorded call of method (0-based), or NULL. */
static const struct tgapi_call *tgn_call(struct tgn *t, const char *method, size_t n)
{
    for (size_t i = 0; i < tgapi_ncalls(t->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(t->api, i);
        if (strcmp(c->method, method) == 0 && n-- == 0)
            return c;
    }
    return NULL;
}

static void tgn_expect_send(struct tgn *t, size_t n, double chat_id, const char *text)
{
    const struct tgapi_call *c = tgn_call(t, "sendMessage", n);
    assert_non_null(c);
    cJSON *j = cJSON_Parse(c->body);
    assert_non_null(j);
    assert_true(cJSON_GetObjectItem(j, "chat_id")->valuedouble == chat_id);
    assert_string_equal(cJSON_GetObjectItem(j, "text")->valuestring, text);
    assert_null(cJSON_GetObjectItem(j, "reply_markup"));
    cJSON_Delete(j);
}

static void test_telegram_notify_sends_message(void **state)
{
    (void)state;
    struct tgn t;
    memset(&t, 0, sizeof(t));
    lt_init(&t.lt, true, false);
    assert_int_equal(http_client_new(&t.lt.loop, NULL, &t.http), 0);
    t.api = tgapi_new(&t.lt.loop, TG_TOKEN);
    assert_non_null(t.api);
    t.core.bot_name = "HAI Bot";
    t.core.ledger = t.lt.ledger;
    struct telegram_options o = {.token = TG_TOKEN,
                                 .api_base = tgapi_base(t.api),
                                 .chat_interval_ms = 20,
                                 .group_interval_ms = 30,
                                 .global_per_s = 1000,
                                 .retry_after_unit_ms = 20,
                                 .backoff_min_ms = 20,
                                 .backoff_max_ms = 100};
    struct adapter_host host = {.dispatch = nt_dispatch, .ended = nt_ended, .data = NULL};
    t.tg = telegram_new(&t.lt.loop, t.http, &t.core, &o, &host);
    assert_non_null(t.tg);
    assert_int_equal(t.tg->ops->start(t.tg), 0);

    /* A member's DM: the chat id is their user id. */
    struct notify_target to;
    assert_int_equal(notify_target_from_account(&to, "telegram:777"), 0);
    struct reply_msg m = {.stage = REPLY_FINAL, .text = "Your card payment arrived."};
    assert_int_equal(t.tg->ops->notify(t.tg, &to, &m), 0);
    /* Where the member started, when known: the group's chat. */
    snprintf(to.channel_id, sizeof(to.channel_id), "-100123");
    struct reply_msg g = {.stage = REPLY_FINAL, .text = "In the group."};
    assert_int_equal(t.tg->ops->notify(t.tg, &to, &g), 0);
    /* Not a Telegram chat: refused, nothing queued. */
    struct notify_target bad;
    assert_int_equal(notify_target_from_account(&bad, "discord:5"), 0);
    assert_int_equal(t.tg->ops->notify(t.tg, &bad, &m), HB_EINVAL);

    t.method = "sendMessage";
    t.want = 2;
    nt_until(&t.lt.loop, tgn_has, &t);
    tgn_expect_send(&t, 0, 777, "Your card payment arrived.");
    tgn_expect_send(&t, 1, -100123, "In the group.");
    assert_int_equal(tgapi_count(t.api, "sendMessage"), 2);

    int closed = 0;
    t.tg->ops->close(t.tg, nt_count, &closed);
    nt_until(&t.lt.loop, nt_count_reached, &closed);
    closed = 0;
    http_client_close(t.http, nt_count, &closed);
    tgapi_close(t.api, nt_count, &closed);
    while (closed < 2)
        uv_run(&t.lt.loop, UV_RUN_ONCE);
    lt_done(&t.lt); /* asserts uv_loop_close == 0 */
}

/* ---- discord --------------------------------------------------------------- */

struct dcn {
    uv_loop_t loop;
    struct http_client *http;
    struct fake_rest *rest;
    struct adapter *dc;
    size_t want;
};

static bool dcn_has(void *arg)
{
    struct dcn *t = arg;
    return fake_rest_count(t->rest) >= t->want;
}

static void dcn_expect(struct dcn *t, size_t i, const char *method, const char *target,
                       const char *json_has)
{
    struct fake_rest_request *q = fake_rest_get(t->rest, i);
    assert_non_null(q);
    assert_string_equal(q->method, method);
    if (target != NULL)
        assert_string_equal(q->target, target);
    assert_int_equal(q->status, 200);
    if (json_has != NULL && strstr(q->json, json_has) == NULL)
        fail_msg("request %zu body %s lacks %s", i, q->json, json_has);
    fake_rest_request_free(q);
}

static void test_discord_notify_dm_and_channel(void **state)
{
    (void)state;
    struct dcn t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(uv_loop_init(&t.loop), 0);
    assert_int_equal(http_client_new(&t.loop, NULL, &t.http), 0);
    struct fake_rest_options ro = {.gateway_url = "ws://127.0.0.1:1"};
    t.rest = fake_rest_new(&t.loop, &ro);
    assert_non_null(t.rest);
    struct discord_options o;
    memset(&o, 0, sizeof(o));
    o.token = "notify-test-token.ZZZ-123456";
    o.application_id = "4242";
    o.api_base = fake_rest_api_base(t.rest);
    o.shard_last = -1;
    o.http = t.http;
    struct adapter_host host = {.dispatch = nt_dispatch, .ended = nt_ended, .data = NULL};
    t.dc = discord_new(&t.loop, &o, &host);
    assert_non_null(t.dc);

    /* No channel known: open the member's DM, then post there. */
    struct notify_target to;
    assert_int_equal(notify_target_from_account(&to, "discord:555"), 0);
    struct reply_msg m = {.stage = REPLY_FINAL, .text = "Your card payment arrived, @everyone."};
    assert_int_equal(t.dc->ops->notify(t.dc, &to, &m), 0);
    t.want = 2;
    nt_until(&t.loop, dcn_has, &t);
    dcn_expect(&t, 0, "POST", "/api/v10/users/@me/channels", "\"recipient_id\":\"555\"");
    dcn_expect(&t, 1, "POST", NULL, "\"content\":\"Your card payment arrived, @everyone.\"");
    /* Posted in the DM channel the open answered (the fake's first id),
     * with no mentions parsed. */
    struct fake_rest_request *post = fake_rest_get(t.rest, 1);
    assert_non_null(strstr(post->target, "/api/v10/channels/900000000000000001/messages"));
    assert_non_null(strstr(post->json, "\"allowed_mentions\":{\"parse\":[]}"));
    fake_rest_request_free(post);

    /* A known channel: one post there, no DM. */
    snprintf(to.channel_id, sizeof(to.channel_id), "88");
    assert_int_equal(t.dc->ops->notify(t.dc, &to, &m), 0);
    t.want = 3;
    nt_until(&t.loop, dcn_has, &t);
    dcn_expect(&t, 2, "POST", "/api/v10/channels/88/messages", "\"content\":");

    /* With an image (a contest's winning one): one multipart post, the
     * caption as content and the image as files[0], named in attachments. */
    static const unsigned char png[] = "\x89PNG\r\n\x1a\nwinner";
    struct reply_image img = {
        .data = png, .len = sizeof(png) - 1, .mime = "image/png", .filename = "winner.png"};
    struct reply_msg pic = {
        .stage = REPLY_FINAL, .text = "Winning image 1: by <@7>, 3 upvotes", .image = &img};
    assert_int_equal(t.dc->ops->notify(t.dc, &to, &pic), 0);
    t.want = 4;
    nt_until(&t.loop, dcn_has, &t);
    struct fake_rest_request *up = fake_rest_get(t.rest, 3);
    assert_non_null(up);
    assert_string_equal(up->target, "/api/v10/channels/88/messages");
    assert_int_equal(up->nfiles, 1);
    assert_int_equal(up->file_len, sizeof(png) - 1);
    assert_string_equal(up->file_name, "winner.png");
    assert_non_null(strstr(up->json, "\"content\":\"Winning image 1: by <@7>, 3 upvotes\""));
    assert_non_null(strstr(up->json, "\"filename\":\"winner.png\""));
    fake_rest_request_free(up);

    /* A guild pool names no channel: refused, for the caller to log. */
    assert_int_equal(notify_target_from_account(&to, "pool:discord:9"), 0);
    assert_int_equal(t.dc->ops->notify(t.dc, &to, &m), HB_EINVAL);
    assert_int_equal(fake_rest_count(t.rest), 4);

    int closed = 0;
    t.dc->ops->close(t.dc, nt_count, &closed);
    nt_until(&t.loop, nt_count_reached, &closed);
    fake_rest_close(t.rest, NULL, NULL);
    http_client_close(t.http, NULL, NULL);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    t.dc->ops->free(t.dc);
    fake_rest_free(t.rest);
    assert_int_equal(uv_loop_close(&t.loop), 0);
}

/* ---- discord: the outbox ---------------------------------------------------- */

struct dco {
    struct lt lt;
    struct http_client *http;
    struct fake_rest *rest;
    struct adapter *dc;
    struct adapter *old[2]; /* closed: freed once the loop ran them out */
    size_t nold;
};

static struct adapter *dco_adapter(struct dco *t)
{
    struct discord_options o;
    memset(&o, 0, sizeof(o));
    o.token = "notify-test-token.ZZZ-123456";
    o.application_id = "4242";
    o.api_base = fake_rest_api_base(t->rest);
    o.shard_last = -1;
    o.http = t->http;
    o.store = ledger_store(t->lt.ledger);
    o.notice_backoff_ms = 10;
    struct adapter_host host = {.dispatch = nt_dispatch, .ended = nt_ended, .data = NULL};
    struct adapter *a = discord_new(&t->lt.loop, &o, &host);
    assert_non_null(a);
    return a;
}

static void dco_close(struct dco *t)
{
    int closed = 0;
    t->dc->ops->close(t->dc, nt_count, &closed);
    nt_until(&t->lt.loop, nt_count_reached, &closed);
    t->old[t->nold++] = t->dc;
    t->dc = NULL;
}

struct dco_rows {
    bool done;
    size_t n;
};

static void dco_listed(int rc, const struct outbox_row *rows, size_t n, void *data)
{
    (void)rows;
    struct dco_rows *r = data;
    assert_int_equal(rc, 0);
    r->done = true;
    r->n = n;
}

static bool dco_rows_done(void *arg)
{
    return ((struct dco_rows *)arg)->done;
}

/* Deliverable rows of the Discord outbox. */
static size_t dco_rows(struct dco *t)
{
    struct dco_rows r = {0};
    assert_int_equal(outbox_list(ledger_store(t->lt.ledger), "discord", 100, dco_listed, &r), 0);
    nt_until(&t->lt.loop, dco_rows_done, &r);
    return r.n;
}

struct dco_wait {
    struct fake_rest *rest;
    const char *substr;
    size_t n;
};

static bool dco_matching(void *arg)
{
    struct dco_wait *w = arg;
    return fake_rest_matching(w->rest, "POST", w->substr) >= w->n;
}

/* The ledger, the HTTP client and the fake REST, with no adapter yet. */
static void dco_rig(struct dco *t)
{
    memset(t, 0, sizeof(*t));
    lt_init(&t->lt, true, true);
    assert_int_equal(http_client_new(&t->lt.loop, NULL, &t->http), 0);
    struct fake_rest_options ro = {.gateway_url = "ws://127.0.0.1:1"};
    t->rest = fake_rest_new(&t->lt.loop, &ro);
    assert_non_null(t->rest);
}

static void dco_init(struct dco *t)
{
    dco_rig(t);
    t->dc = dco_adapter(t);
}

static void dco_done(struct dco *t)
{
    if (t->dc != NULL)
        dco_close(t);
    int closed = 0;
    fake_rest_close(t->rest, nt_count, &closed);
    http_client_close(t->http, nt_count, &closed);
    while (closed < 2)
        uv_run(&t->lt.loop, UV_RUN_ONCE);
    lt_ledger_close(&t->lt);
    uv_run(&t->lt.loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < t->nold; i++)
        t->old[i]->ops->free(t->old[i]);
    fake_rest_free(t->rest);
    lt_done(&t->lt);
}

/* Notify m to channel 88 while its posts hang: the row is written before
 * the post, and stays when the adapter closes. A new adapter sends it at
 * start and removes the row. Returns the post that went through. */
static struct fake_rest_request *dco_kept_then_sent(struct dco *t, const struct reply_msg *m)
{
    fake_rest_delay(t->rest, "/channels/88/", 60000);
    struct notify_target to;
    assert_int_equal(notify_target_from_account(&to, "discord:555"), 0);
    snprintf(to.channel_id, sizeof(to.channel_id), "88");
    assert_int_equal(t->dc->ops->notify(t->dc, &to, m), 0);
    assert_int_equal(dco_rows(t), 1); /* written before the post */
    dco_close(t);                     /* the post never answered */
    assert_int_equal(dco_rows(t), 1);

    fake_rest_delay(t->rest, "/channels/88/", 0);
    t->dc = dco_adapter(t);
    assert_int_equal(t->dc->ops->start(t->dc), 0);
    struct dco_wait w = {.rest = t->rest, .substr = "/channels/88/messages", .n = 2};
    nt_until(&t->lt.loop, dco_matching, &w);
    assert_int_equal(dco_rows(t), 0); /* sent: removed */
    struct fake_rest_request *sent = NULL;
    for (size_t i = 0; i < fake_rest_count(t->rest); i++) {
        struct fake_rest_request *q = fake_rest_get(t->rest, i);
        if (q != NULL && q->status == 200 && strstr(q->target, "/channels/88/messages") != NULL) {
            fake_rest_request_free(sent);
            sent = q;
        } else {
            fake_rest_request_free(q);
        }
    }
    assert_non_null(sent);
    return sent;
}

/* A notice is a row of the outbox before it goes: one the adapter could
 * not send before it closed stays, and the next start sends it and removes
 * the row. One Discord keeps refusing (the member closed their DMs: 403)
 * is tried again with back-off, then kept marked undeliverable. */
static void test_discord_notice_kept_in_outbox(void **state)
{
    (void)state;
    struct dco t;
    dco_init(&t);
    /* With buttons (an approval notice's): kept with it in the row. */
    struct reply_button buttons[] = {{.label = "Approve", .ref = "appr.a1"},
                                     {.label = "Reject", .ref = "appr.r1"}};
    struct reply_msg m = {
        .stage = REPLY_FINAL, .text = "Your deposit arrived.", .buttons = buttons, .nbuttons = 2};
    struct fake_rest_request *sent = dco_kept_then_sent(&t, &m);
    assert_non_null(strstr(sent->json, "\"custom_id\":\"appr.a1\""));
    assert_non_null(strstr(sent->json, "\"label\":\"Reject\""));
    fake_rest_request_free(sent);
    m.buttons = NULL;
    m.nbuttons = 0;

    /* Refused five times: kept, marked undeliverable. */
    for (int i = 0; i < 5; i++)
        fake_rest_script_status(t.rest, "/channels/99/", 403);
    struct notify_target to;
    assert_int_equal(notify_target_from_account(&to, "discord:555"), 0);
    snprintf(to.channel_id, sizeof(to.channel_id), "99");
    assert_int_equal(t.dc->ops->notify(t.dc, &to, &m), 0);
    struct dco_wait w = {.rest = t.rest, .substr = "/channels/99/messages", .n = 5};
    nt_until(&t.lt.loop, dco_matching, &w);
    size_t rows = 1;
    for (int i = 0; i < 50 && rows != 0; i++)
        rows = dco_rows(&t);
    assert_int_equal(rows, 0); /* no longer deliverable */
    assert_int_equal(fake_rest_matching(t.rest, "POST", "/channels/99/messages"), 5);
    assert_int_equal(test_sql_int(t.lt.path, "SELECT COUNT(*) FROM outbox WHERE channel = "
                                             "'discord' AND failed_at != 0 AND error LIKE '%403%'"),
                     1);
    dco_done(&t);
}

/* A notice with an image (a contest's winning one) is a row of the outbox
 * too, its image kept with it: one the adapter could not send before it
 * closed is posted whole at the next start, image and all. */
static void test_discord_image_notice_kept_in_outbox(void **state)
{
    (void)state;
    struct dco t;
    dco_init(&t);
    static const unsigned char png[] = "\x89PNG\r\n\x1a\nwinner\0and more";
    struct reply_image img = {
        .data = png, .len = sizeof(png) - 1, .mime = "image/png", .filename = "winner.png"};
    struct reply_msg pic = {
        .stage = REPLY_FINAL, .text = "Winning image 1: by <@7>, 3 upvotes", .image = &img};
    struct fake_rest_request *sent = dco_kept_then_sent(&t, &pic);
    assert_int_equal(sent->nfiles, 1);
    assert_int_equal(sent->file_len, sizeof(png) - 1);
    assert_string_equal(sent->file_name, "winner.png");
    assert_non_null(strstr(sent->json, "\"content\":\"Winning image 1: by <@7>, 3 upvotes\""));
    fake_rest_request_free(sent);
    dco_done(&t);
}

/* ---- discord: the outbox of a shared ledger ----------------------------------
 * Each daemon sends the notice rows it wrote, and takes over those of a
 * daemon that is gone (its run's lease ran out), never those of one that
 * lives. Two adapters on one ledger stand for two daemons, each with a
 * cluster of its own (core/cluster.h, on SQLite here: the rules are the
 * store's, whichever backend), posting to one fake Discord REST (the
 * group `discord_outbox`). */

#define DOB_LEASE_MS 3000

struct dob {
    struct dco d;        /* the ledger, the fakes, the closed adapters */
    struct core core[2]; /* one per daemon: its cluster */
    struct adapter *dc[2];
};

/* Run the loop until cond(arg) holds (nt_until), or for ms when cond is
 * NULL. */
static void dob_run(struct dob *t, bool (*cond)(void *arg), void *arg, uint64_t ms)
{
    if (cond != NULL)
        nt_until(&t->d.lt.loop, cond, arg);
    else
        test_run_for(&t->d.lt.loop, ms);
}

static void dob_init(struct dob *t)
{
    memset(t, 0, sizeof(*t));
    dco_rig(&t->d);
}

/* Daemon i: its cluster (run "run-a" or "run-b") and its adapter, trying
 * a failed notice again after backoff_ms; started (its gateway, and the
 * outbox's rows taken over) when start. One adapter at most is started in
 * a test, as in a daemon: each start makes a websocket context, and with
 * two in one process LeakSanitizer finds a TLS context left at exit. */
static void dob_daemon(struct dob *t, int i, uint64_t backoff_ms, bool start)
{
    struct store *store = ledger_store(t->d.lt.ledger);
    t->core[i].ledger = t->d.lt.ledger;
    t->core[i].cluster = cluster_new(&t->d.lt.loop, store, i == 0 ? "run-a" : "run-b", DOB_LEASE_MS,
                                     NULL, NULL, NULL);
    assert_non_null(t->core[i].cluster);
    struct discord_options o;
    memset(&o, 0, sizeof(o));
    o.token = "outbox-test-token.ZZZ-123456";
    o.application_id = "4242";
    o.api_base = fake_rest_api_base(t->d.rest);
    o.shard_last = -1;
    o.http = t->d.http;
    o.store = store;
    o.core = &t->core[i];
    o.notice_backoff_ms = backoff_ms;
    struct adapter_host host = {.dispatch = nt_dispatch, .ended = nt_ended, .data = NULL};
    t->dc[i] = discord_new(&t->d.lt.loop, &o, &host);
    assert_non_null(t->dc[i]);
    if (start)
        assert_int_equal(t->dc[i]->ops->start(t->dc[i]), 0);
}

/* Daemon i goes: its adapter closes (a notice still on its way keeps its
 * row) and its heartbeat stops, so its run's lease runs out a lease later. */
static void dob_daemon_gone(struct dob *t, int i)
{
    int closed = 0;
    t->dc[i]->ops->close(t->dc[i], nt_count, &closed);
    dob_run(t, nt_count_reached, &closed, 0);
    t->d.old[t->d.nold++] = t->dc[i];
    t->dc[i] = NULL;
    cluster_free(t->core[i].cluster);
    t->core[i].cluster = NULL;
}

static void dob_done(struct dob *t)
{
    for (int i = 0; i < 2; i++) {
        if (t->dc[i] != NULL)
            dob_daemon_gone(t, i);
    }
    dco_done(&t->d);
}

static void dob_notify(struct dob *t, int i, const char *text)
{
    struct notify_target to;
    assert_int_equal(notify_target_from_account(&to, "discord:555"), 0);
    snprintf(to.channel_id, sizeof(to.channel_id), "88");
    struct reply_msg m = {.stage = REPLY_FINAL, .text = text};
    assert_int_equal(t->dc[i]->ops->notify(t->dc[i], &to, &m), 0);
}

/* Posts of text to channel 88 that Discord took (status 200), from the
 * fake's request number since on. */
static size_t dob_posted(struct dob *t, const char *text, size_t since)
{
    size_t n = 0;
    for (size_t i = since; i < fake_rest_count(t->d.rest); i++) {
        struct fake_rest_request *q = fake_rest_get(t->d.rest, i);
        if (q != NULL && q->status == 200 && strstr(q->target, "/channels/88/messages") != NULL &&
            strstr(q->json, text) != NULL)
            n++;
        fake_rest_request_free(q);
    }
    return n;
}

struct dob_wait {
    struct dob *t;
    const char *text;
    size_t since, n;
};

static bool dob_posted_enough(void *arg)
{
    struct dob_wait *w = arg;
    return dob_posted(w->t, w->text, w->since) >= w->n;
}

static bool dob_tried(void *arg)
{
    struct dob *t = arg;
    return fake_rest_matching(t->d.rest, "POST", "/channels/88/messages") > 0;
}

/* Rows of the outbox still to send, whichever daemon wrote them. */
static int dob_rows(struct dob *t)
{
    return (int)test_sql_int(t->d.lt.path, "SELECT COUNT(*) FROM outbox WHERE failed_at = 0");
}

/* A daemon that starts while another lives leaves that one's rows alone:
 * the other is still sending them (here: trying a refused post again
 * after its back-off). Before, the starting daemon sent every row of the
 * outbox, and the member got the notice twice. */
static void test_live_run_keeps_its_rows(void **state)
{
    (void)state;
    struct dob t;
    dob_init(&t);
    dob_daemon(&t, 0, 1500, false);
    fake_rest_script_status(t.d.rest, "/channels/88/", 500);
    dob_notify(&t, 0, "From the first daemon.");
    dob_run(&t, dob_tried, &t, 0); /* refused: tried again in 1.5 s */
    assert_int_equal(dob_rows(&t), 1);

    dob_daemon(&t, 1, 1500, true);
    struct dob_wait w = {.t = &t, .text = "From the first daemon.", .n = 1};
    dob_run(&t, dob_posted_enough, &w, 0);
    dob_run(&t, NULL, NULL, 2000); /* a second post would come by now */
    assert_int_equal(dob_posted(&t, "From the first daemon.", 0), 1);
    assert_int_equal(dob_rows(&t), 0);
    dob_done(&t);
}

/* The rows of a daemon that is gone (a post in flight when it stopped)
 * are sent once by a daemon that lives, and only once the gone one's run
 * lease ran out: until then it may still be sending them. */
static void test_gone_run_rows_sent_once(void **state)
{
    (void)state;
    struct dob t;
    dob_init(&t);
    dob_daemon(&t, 0, 1000, false);
    fake_rest_delay(t.d.rest, "/channels/88/", 60000);
    dob_notify(&t, 0, "Kept when it stopped.");
    dob_run(&t, dob_tried, &t, 0);
    dob_daemon_gone(&t, 0); /* the post never answered: its row stays */
    assert_int_equal(dob_rows(&t), 1);
    fake_rest_delay(t.d.rest, "/channels/88/", 0);
    size_t since = fake_rest_count(t.d.rest); /* the post in flight is counted */

    dob_daemon(&t, 1, 1000, true);
    dob_run(&t, NULL, NULL, 1000); /* the first run's lease has 2 s to go */
    assert_int_equal(dob_posted(&t, "Kept when it stopped.", since), 0);
    assert_int_equal(dob_rows(&t), 1);
    struct dob_wait w = {.t = &t, .text = "Kept when it stopped.", .since = since, .n = 1};
    dob_run(&t, dob_posted_enough, &w, 0);
    dob_run(&t, NULL, NULL, 1500);
    assert_int_equal(dob_posted(&t, "Kept when it stopped.", since), 1);
    assert_int_equal(dob_rows(&t), 0);
    dob_done(&t);
}

/* ---- payment notices ------------------------------------------------------- */

struct nt_told {
    struct notify_target to;
    char text[256];
    int n;
};

static int nt_record(void *data, const struct notify_target *to, const char *text)
{
    struct nt_told *t = data;
    t->to = *to;
    snprintf(t->text, sizeof(t->text), "%s", text);
    t->n++;
    return 0;
}

/* A payment notice with a wallet's balance goes to the member privately,
 * even when the payment names the chat it was started in; a pool's notice
 * (its balance is the group's) goes to that chat. */
static void test_payment_notice_private_for_a_wallet(void **state)
{
    (void)state;
    struct nt_told t;
    memset(&t, 0, sizeof(t));
    notify_payment(nt_record, &t, "telegram:77", "-100", "card", 500, 600);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.to.scope, COMMAND_SCOPE_DM);
    assert_string_equal(t.to.user_id, "77");
    assert_string_equal(t.to.channel_id, "");
    assert_non_null(strstr(t.text, "Your wallet now has 600 credits available."));
    notify_payment(nt_record, &t, "pool:telegram:-100", "-100", "card", 500, 900);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.to.scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(t.to.channel_id, "-100");
    assert_non_null(strstr(t.text, "This group's pool now has 900 credits available."));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_console_notify_prints),
    cmocka_unit_test(test_console_notify_image_and_buttons),
    cmocka_unit_test(test_payment_notice_private_for_a_wallet),
    cmocka_unit_test(test_telegram_notify_sends_message),
    cmocka_unit_test(test_discord_notify_dm_and_channel),
    cmocka_unit_test(test_discord_notice_kept_in_outbox),
    cmocka_unit_test(test_discord_image_notice_kept_in_outbox),
};

TEST_GROUP_DEFINE(notify, tests, lt_group_setup, lt_group_teardown)

struct dob_taken {
    bool done;
    int rc;
    size_t n;
};

static void dob_taken(int rc, const struct outbox_row *rows, size_t n, void *data)
{
    (void)rows;
    struct dob_taken *t = data;
    t->done = true;
    t->rc = rc;
    t->n = n;
}

static bool dob_taken_done(void *arg)
{
    return ((struct dob_taken *)arg)->done;
}

static void dob_stored(int rc, void *data)
{
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

/* A take whose rows cannot move (a row of the same number in the channel
 * they would go to) fails alone: none of its rows is given to send, they
 * stay where they were, and what the same transaction wrote besides
 * stands. Before, on PostgreSQL, the duplicate key's answer read as "no
 * write, no failure": the transaction, aborted by the server, failed at
 * its commit with every job in it. */
static void test_take_that_cannot_move_gives_nothing(void **state)
{
    (void)state;
    struct dob t;
    dob_init(&t);
    struct store *store = ledger_store(t.d.lt.ledger);
    int stored = 0;
    assert_int_equal(
        outbox_put(store, "discord/run-x", 7, 88, "{\"t\":\"x\"}", dob_stored, &stored), 0);
    assert_int_equal(
        outbox_put(store, "discord/run-y", 7, 88, "{\"t\":\"y\"}", dob_stored, &stored), 0);
    while (stored < 2)
        uv_run(&t.d.lt.loop, UV_RUN_ONCE);
    /* With a row written in the same transaction, which must stand. */
    struct store_gate gate;
    store_gate_hold(store, &gate);
    struct dob_taken taken = {0};
    assert_int_equal(outbox_take(store, "discord/run-x", "discord/run-y", 10, dob_taken, &taken),
                     0);
    assert_int_equal(
        outbox_put(store, "discord/run-z", 8, 88, "{\"t\":\"z\"}", dob_stored, &stored), 0);
    store_gate_release(&gate, &t.d.lt.loop);
    dob_run(&t, dob_taken_done, &taken, 0);
    assert_true(taken.rc < 0);
    assert_int_equal(taken.n, 0);
    while (stored < 3)
        uv_run(&t.d.lt.loop, UV_RUN_ONCE);
    const char *left = "SELECT COUNT(*) FROM outbox WHERE channel = 'discord/run-x'";
    assert_int_equal(
        t.d.lt.url[0] != '\0' ? test_pg_int(t.d.lt.url, left) : test_sql_int(t.d.lt.path, left), 1);
    dob_done(&t);
}

static const struct CMUnitTest outbox_tests[] = {
    cmocka_unit_test(test_live_run_keeps_its_rows),
    cmocka_unit_test(test_gone_run_rows_sent_once),
    cmocka_unit_test(test_take_that_cannot_move_gives_nothing),
};

TEST_GROUP_DEFINE(discord_outbox, outbox_tests, NULL, NULL)

/* The store's part on PostgreSQL, whose duplicate key has an answer of
 * its own. */
static const struct CMUnitTest outbox_pg_tests[] = {
    cmocka_unit_test(test_take_that_cannot_move_gives_nothing),
};

TEST_GROUP_DEFINE(discord_outbox_pg, outbox_pg_tests, lt_group_setup_pg, lt_group_teardown)
