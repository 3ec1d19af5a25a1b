/* Images members attach on Discord, end to end against the fake gateway
 * and REST: /chat's image option (an attachment the interaction resolves)
 * and an image attached to a message are fetched, from the allowed origin
 * only, and dispatched with the turn; an attachment on any other host is
 * refused without a fetch; a file too large, or not an image, gets a clear
 * answer and is never dispatched. */
#include "tests/test.h"

#include "adapters/discord/discord.h"
#include "core/messages.h"
#include "net/http.h"
#include "tests/fake/discord_gateway.h"
#include "tests/fake/discord_rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VT_TOKEN "vision-test-token.ZZZ-123456"
#define VT_APP "4242"
#define VT_BOT "1100000000000000099" /* the fake gateway's READY user */
#define VT_GUARD_MS 15000

struct vt {
    uv_loop_t loop;
    struct fake_gateway *gw;
    struct fake_rest *rest;
    struct http_client *http;
    struct adapter *adapter;
    uv_timer_t guard;
    bool timed_out;
    bool closing;
    void (*script)(struct vt *t);
    bool (*done)(struct vt *t);
    char origin[96]; /* "http://127.0.0.1:PORT": where the fake serves attachments */
    size_t dispatched;
    bool asked_default; /* a turn "chat <the default question>" came with its image */
    bool asked_reply;   /* a turn "chat what colour" came with the replied-to image */
    char last_args[256];
    char last_prompt[256];
    size_t image_len;
    char image_mime[32];
};

static void vt_noop(void *data)
{
    (void)data;
}

static void vt_adapter_closed(void *data)
{
    struct vt *t = data;
    fake_gateway_close(t->gw);
    fake_rest_close(t->rest, vt_noop, NULL);
    http_client_close(t->http, vt_noop, NULL);
}

static void vt_finish(struct vt *t)
{
    if (t->closing)
        return;
    t->closing = true;
    uv_close((uv_handle_t *)&t->guard, NULL);
    t->adapter->ops->close(t->adapter, vt_adapter_closed, t);
}

static void vt_guard(uv_timer_t *timer)
{
    struct vt *t = timer->data;
    t->timed_out = true;
    vt_finish(t);
}

static void vt_on_request(struct fake_rest *f, const struct fake_rest_request *req, void *data)
{
    struct vt *t = data;
    (void)f;
    (void)req;
    if (!t->closing && t->done(t))
        vt_finish(t);
}

static void vt_on_seen(struct fake_gateway *f, enum fake_gateway_seen what, void *data)
{
    struct vt *t = data;
    (void)f;
    if (what == FAKE_SEEN_IDENTIFY)
        t->script(t);
}

static const unsigned char vt_png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 9, 9, 9};
static const char vt_html[] = "<html>not an image</html>";

/* The handler: note the image and answer with what was seen. */
static void vt_dispatch(void *data, struct invocation *inv, const char *args)
{
    struct vt *t = data;
    t->dispatched++;
    snprintf(t->last_args, sizeof(t->last_args), "%s", args != NULL ? args : "");
    bool image = inv->image != NULL && inv->image->len == sizeof(vt_png);
    if (strcmp(t->last_args, "chat " MSG_ATTACH_DEFAULT_PROMPT) == 0)
        t->asked_default = image;
    if (strcmp(t->last_args, "chat what colour") == 0)
        t->asked_reply = image;
    snprintf(t->last_prompt, sizeof(t->last_prompt), "%s",
             inv->opts[0].string != NULL ? inv->opts[0].string : "");
    t->image_len = inv->image != NULL ? inv->image->len : 0;
    snprintf(t->image_mime, sizeof(t->image_mime), "%s",
             inv->image != NULL ? inv->image->mime : "");
    reply_text(inv->reply, false, "seen %zu bytes of %s", t->image_len, t->image_mime);
    reply_finish(inv->reply);
    invocation_clear(inv);
}

static void vt_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static void vt_run(struct vt *t)
{
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(http_client_new(&t->loop, NULL, &t->http), 0);
    struct fake_gateway_options go = {.heartbeat_ms = 5000, .on_seen = vt_on_seen, .data = t};
    t->gw = fake_gateway_new(&t->loop, &go);
    assert_non_null(t->gw);
    struct fake_rest_options ro = {
        .gateway_url = fake_gateway_url(t->gw), .on_request = vt_on_request, .data = t};
    t->rest = fake_rest_new(&t->loop, &ro);
    assert_non_null(t->rest);
    const char *base = fake_rest_api_base(t->rest);
    snprintf(t->origin, sizeof(t->origin), "%.*s", (int)(strstr(base, "/api/") - base), base);
    fake_rest_file_add(t->rest, "/attachments/1/2/cat.png", "image/png", vt_png, sizeof(vt_png));
    fake_rest_file_add(t->rest, "/attachments/1/3/fake.png", "image/png", vt_html,
                       sizeof(vt_html) - 1);
    struct discord_options o = {.token = VT_TOKEN,
                                .application_id = VT_APP,
                                .api_base = base,
                                .shard_last = -1,
                                .http = t->http,
                                .identify_spacing_ms = 10,
                                .edit_interval_ms = 100};
    struct adapter_host host = {.dispatch = vt_dispatch, .ended = vt_ended, .data = t};
    t->adapter = discord_new(&t->loop, &o, &host);
    assert_non_null(t->adapter);
    uv_timer_init(&t->loop, &t->guard);
    t->guard.data = t;
    uv_timer_start(&t->guard, vt_guard, VT_GUARD_MS, 0);
    assert_int_equal(t->adapter->ops->start(t->adapter), 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    t->adapter->ops->free(t->adapter);
    fake_gateway_free(t->gw);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    assert_false(t->timed_out);
}

/* Recorded requests with this method whose target holds substr and whose
 * body holds needle (NULL: any). */
static size_t vt_count(struct vt *t, const char *method, const char *substr, const char *needle)
{
    size_t n = 0, total = fake_rest_count(t->rest);
    for (size_t i = 0; i < total; i++) {
        struct fake_rest_request *q = fake_rest_get(t->rest, i);
        if (q == NULL)
            continue;
        if (strcmp(q->method, method) == 0 && strstr(q->target, substr) != NULL &&
            (needle == NULL || strstr(q->json, needle) != NULL))
            n++;
        fake_rest_request_free(q);
    }
    return n;
}

/* /chat with the image option resolving to attachment `url`. */
static void vt_chat(struct vt *t, unsigned n, const char *url, long size)
{
    char d[2048];
    snprintf(d, sizeof(d),
             "{\"id\":\"%u\",\"application_id\":\"" VT_APP "\",\"type\":2,\"token\":\"tok%u\","
             "\"guild_id\":\"77\",\"channel_id\":\"88\",\"member\":{\"permissions\":\"0\","
             "\"user\":{\"id\":\"555\",\"username\":\"ann\"}},\"data\":{\"id\":\"9\",\"name\":"
             "\"chat\",\"type\":1,\"options\":[{\"name\":\"prompt\",\"type\":3,\"value\":"
             "\"what is it\"},{\"name\":\"image\",\"type\":11,\"value\":\"att%u\"}],"
             "\"resolved\":{\"attachments\":{\"att%u\":{\"id\":\"att%u\",\"filename\":"
             "\"cat.png\",\"size\":%ld,\"url\":\"%s\",\"proxy_url\":\"%s\",\"content_type\":"
             "\"image/png\"}}}},\"version\":1}",
             1000u + n, n, n, n, n, size, url, url);
    fake_gateway_dispatch(t->gw, "INTERACTION_CREATE", d);
}

static void vt_option_script(struct vt *t)
{
    char url[160];
    snprintf(url, sizeof(url), "%s/attachments/1/2/cat.png", t->origin);
    vt_chat(t, 1, url, (long)sizeof(vt_png));
}

static bool vt_option_done(struct vt *t)
{
    return vt_count(t, "PATCH", "/webhooks/" VT_APP "/tok1/messages/@original",
                    "seen 11 bytes of image/png") == 1;
}

/* The image option: deferred at once, the attachment fetched from the
 * allowed origin, the turn dispatched with the image and its options. */
static void test_chat_image_option(void **state)
{
    (void)state;
    struct vt t;
    memset(&t, 0, sizeof(t));
    t.script = vt_option_script;
    t.done = vt_option_done;
    vt_run(&t);
    assert_int_equal(t.dispatched, 1);
    assert_string_equal(t.last_prompt, "what is it");
    assert_int_equal(t.image_len, sizeof(vt_png));
    assert_string_equal(t.image_mime, "image/png");
    assert_int_equal(vt_count(&t, "GET", "/attachments/1/2/cat.png", NULL), 1);
    assert_int_equal(vt_count(&t, "POST", "/interactions/1001/tok1/callback", "\"type\":5"), 1);
    /* The command registration offers the option. */
    assert_int_equal(vt_count(&t, "PUT", "/commands", "\"type\":11,\"name\":\"image\""), 1);
    fake_rest_free(t.rest);
}

static void vt_foreign_script(struct vt *t)
{
    vt_chat(t, 1, "https://evil.example/cat.png", 11);
    vt_chat(t, 2, "https://cdn.discordapp.com.evil.example/cat.png", 11);
    vt_chat(t, 3, "https://cdn.discordapp.com@127.0.0.1/attachments/1/2/cat.png", 11);
    char url[160];
    /* The fake's own host on another port is another origin. */
    snprintf(url, sizeof(url), "http://127.0.0.1:1/attachments/1/2/cat.png");
    vt_chat(t, 4, url, 11);
}

static bool vt_foreign_done(struct vt *t)
{
    return vt_count(t, "POST", "/callback", "only fetch images attached on the platform") == 4;
}

/* Attachment URLs anywhere but Discord's CDN (or the configured base) are
 * refused: nothing fetched, nothing dispatched, the member told. */
static void test_foreign_host_refused(void **state)
{
    (void)state;
    struct vt t;
    memset(&t, 0, sizeof(t));
    t.script = vt_foreign_script;
    t.done = vt_foreign_done;
    vt_run(&t);
    assert_int_equal(t.dispatched, 0);
    assert_int_equal(vt_count(&t, "GET", "/attachments/", NULL), 0);
    fake_rest_free(t.rest);
}

/* A message from 555 in DM channel 99 with attachments (JSON) and text. */
static void vt_message(struct vt *t, unsigned id, const char *content, const char *atts)
{
    char d[2048];
    snprintf(d, sizeof(d),
             "{\"id\":\"%u\",\"channel_id\":\"99\",\"author\":{\"id\":\"555\",\"username\":"
             "\"ann\"},\"content\":\"%s\",\"mentions\":[],\"attachments\":%s}",
             id, content, atts);
    fake_gateway_dispatch(t->gw, "MESSAGE_CREATE", d);
}

static void vt_message_script(struct vt *t)
{
    char atts[512];
    snprintf(atts, sizeof(atts),
             "[{\"id\":\"5\",\"filename\":\"cat.png\",\"size\":11,\"url\":\"%s/attachments/1/2/"
             "cat.png\",\"content_type\":\"image/png\"}]",
             t->origin);
    vt_message(t, 801, "", atts);
    vt_message(t, 802, "look",
               "[{\"id\":\"6\",\"filename\":\"huge.png\",\"size\":6000000,\"url\":"
               "\"https://cdn.discordapp.com/attachments/1/4/huge.png\",\"content_type\":"
               "\"image/png\"}]");
    vt_message(t, 803, "read this",
               "[{\"id\":\"7\",\"filename\":\"notes.txt\",\"size\":10,\"url\":"
               "\"https://cdn.discordapp.com/attachments/1/5/notes.txt\",\"content_type\":"
               "\"text/plain\"}]");
    snprintf(atts, sizeof(atts),
             "[{\"id\":\"8\",\"filename\":\"fake.png\",\"size\":25,\"url\":\"%s/attachments/1/3/"
             "fake.png\",\"content_type\":\"image/png\"}]",
             t->origin);
    vt_message(t, 804, "and this", atts);
    /* A reply to a message with an image takes that image along. */
    char d[2048];
    snprintf(d, sizeof(d),
             "{\"id\":\"805\",\"channel_id\":\"99\",\"author\":{\"id\":\"555\",\"username\":"
             "\"ann\"},\"content\":\"what colour\",\"mentions\":[],\"attachments\":[],"
             "\"referenced_message\":{\"id\":\"801\",\"attachments\":[{\"id\":\"5\",\"filename\":"
             "\"cat.png\",\"size\":11,\"url\":\"%s/attachments/1/2/cat.png\",\"content_type\":"
             "\"image/png\"}]}}",
             t->origin);
    fake_gateway_dispatch(t->gw, "MESSAGE_CREATE", d);
}

static bool vt_message_done(struct vt *t)
{
    return vt_count(t, "POST", "/channels/99/messages", "seen 11 bytes of image/png") == 2 &&
           vt_count(t, "POST", "/channels/99/messages", "That image is too large") == 1 &&
           vt_count(t, "POST", "/channels/99/messages", "not an image I can read") == 2;
}

/* A DM with an image and no text asks the default question; a reply to
 * a message with an image takes that image along; a file too large is refused by its declared size
 * (no fetch), a text file by its type, and bytes that are no image after the fetch. */
static void test_message_attachments(void **state)
{
    (void)state;
    struct vt t;
    memset(&t, 0, sizeof(t));
    t.script = vt_message_script;
    t.done = vt_message_done;
    vt_run(&t);
    assert_int_equal(t.dispatched, 2);
    assert_true(t.asked_default);
    assert_true(t.asked_reply);
    assert_int_equal(vt_count(&t, "GET", "/attachments/1/2/cat.png", NULL), 2);
    assert_int_equal(vt_count(&t, "GET", "/attachments/1/3/fake.png", NULL), 1);
    fake_rest_free(t.rest);
}

static void vt_hostile_script(struct vt *t)
{
    char *d = test_file_read("tests/corpus/discord/discord-attachment-hostile.json", NULL);
    assert_non_null(d);
    fake_gateway_dispatch(t->gw, "MESSAGE_CREATE", d);
    free(d);
}

static bool vt_hostile_done(struct vt *t)
{
    return vt_count(t, "POST", "/channels/99/messages",
                    "only fetch images attached on the platform") == 1;
}

/* A hostile attachment (tests/corpus/discord/): a file:// URL with a
 * negative size, a gopher proxy URL, a reply whose attachment points at a
 * cloud metadata address with a size of 1e300. Refused; nothing fetched. */
static void test_hostile_attachment(void **state)
{
    (void)state;
    struct vt t;
    memset(&t, 0, sizeof(t));
    t.script = vt_hostile_script;
    t.done = vt_hostile_done;
    vt_run(&t);
    assert_int_equal(t.dispatched, 0);
    assert_int_equal(vt_count(&t, "GET", "/", NULL), 1); /* /gateway/bot alone */
    assert_int_equal(vt_count(&t, "GET", "/gateway/bot", NULL), 1);
    fake_rest_free(t.rest);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_chat_image_option),
    cmocka_unit_test(test_foreign_host_refused),
    cmocka_unit_test(test_message_attachments),
    cmocka_unit_test(test_hostile_attachment),
};

TEST_GROUP_DEFINE(discord_vision, tests, NULL, NULL)
