/* Images members send on Telegram, against the fake Bot API: a photo (the
 * largest size within the cap) goes getFile -> GET /file/bot<token>/<path>
 * -> a generation that gets the image and charges price_per_image; an
 * image file, a reply to a photo, a caption; and the refusals: a file too
 * large (by its declared size, or by the download's cap), bytes that are
 * no image, a model that cannot see. */
#include "tests/adapters/test_telegram.h"

#include "core/catalog.h"
#include "core/generate.h"
#include "core/messages.h"

/* A provider that answers at once (from the loop) and records what it got. */
struct eye {
    struct provider provider;
    uv_timer_t timer;
    const struct provider_events *ev;
    void *data;
    int calls;
    size_t nimages;
    char mime[32];
    size_t len;
    char prompt[128];
};

struct provider_call {
    int unused;
};

static struct provider_call eye_call;

static void eye_tick(uv_timer_t *t)
{
    struct eye *e = t->data;
    e->ev->text(e->data, "I see a cat", 11);
    e->ev->usage(e->data, 10, 5);
    struct provider_result res = {.rc = 0, .retry_after_ms = -1, .error = ""};
    e->ev->done(e->data, &res);
}

static int eye_start(struct provider *p, const struct provider_request *req,
                     const struct provider_events *ev, void *data, struct provider_call **out)
{
    struct eye *e = p->impl;
    e->calls++;
    e->ev = ev;
    e->data = data;
    e->nimages = req->nimages;
    e->mime[0] = '\0';
    e->len = 0;
    if (req->nimages > 0) {
        snprintf(e->mime, sizeof(e->mime), "%s", req->images[0].mime);
        e->len = req->images[0].len;
    }
    snprintf(e->prompt, sizeof(e->prompt), "%s", req->messages[req->nmessages - 1].content);
    uv_timer_start(&e->timer, eye_tick, 1, 0);
    *out = &eye_call;
    return 0;
}

static void eye_cancel(struct provider_call *c)
{
    (void)c;
}

static void eye_free(struct provider *p)
{
    (void)p; /* the test's */
}

static const struct provider_ops eye_ops = {
    .start = eye_start, .cancel = eye_cancel, .free = eye_free};

struct vx {
    struct fx fx;
    struct eye eye;
    bool engine_closed;
};

static void vx_engine_closed(void *data)
{
    ((struct vx *)data)->engine_closed = true;
}

/* The fixture with the generation engine: "see" sees images (1 credit a
 * request, 2 an image), "blind" does not; images up to max bytes. */
static void vx_init(struct vx *vx, int64_t max)
{
    memset(vx, 0, sizeof(*vx));
    fx_init(&vx->fx, NULL);
    vx->fx.mode = FX_ROUTER;
    vx->eye.provider.ops = &eye_ops;
    vx->eye.provider.impl = &vx->eye;
    uv_timer_init(&vx->fx.lt.loop, &vx->eye.timer);
    vx->eye.timer.data = &vx->eye;
    struct catalog_provider_spec ps[] = {
        {.name = "eye", .provider = &vx->eye.provider, .timeout_ms = 5000, .max_concurrent = 4}};
    struct catalog_model_spec ms[] = {
        {.name = "see",
         .provider = "eye",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 100,
         .enabled = true,
         .vision = true,
         .price_image = 2},
        {.name = "blind",
         .provider = "eye",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 100,
         .enabled = true},
    };
    struct catalog_spec spec = {.providers = ps, .nproviders = 1, .models = ms, .nmodels = 2};
    spec.limits.image_max_bytes = max;
    char err[256] = "";
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    if (cat == NULL)
        fail_msg("catalog: %s", err);
    vx->fx.core.generate = generate_new(&vx->fx.lt.loop, &vx->fx.core, cat, NULL);
    catalog_unref(cat);
    assert_non_null(vx->fx.core.generate);
    fx_start(&vx->fx);
}

static void vx_done(struct vx *vx)
{
    fx_adapter_close(&vx->fx);
    generate_close(vx->fx.core.generate, vx_engine_closed, vx);
    while (!vx->engine_closed)
        uv_run(&vx->fx.lt.loop, UV_RUN_ONCE);
    vx->fx.core.generate = NULL;
    uv_close((uv_handle_t *)&vx->eye.timer, NULL);
    fx_done(&vx->fx);
}

/* A private message from user 501 with more members ("photo", "caption"...). */
static void vx_dm(struct vx *vx, const char *members)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "\"message\":{\"message_id\":11,\"date\":1700000000,\"chat\":{\"id\":501,\"type\":"
             "\"private\",\"first_name\":\"Ann\"},\"from\":{\"id\":501,\"is_bot\":false,"
             "\"first_name\":\"Ann\"},%s}",
             members);
    tgapi_push(vx->fx.api, buf);
}

/* A sendMessage whose text holds arg arrived. */
static bool vx_sent(struct fx *fx, void *arg)
{
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if ((strcmp(c->method, "sendMessage") == 0 || strcmp(c->method, "editMessageText") == 0) &&
            strstr(c->body, arg) != NULL)
            return true;
    }
    return false;
}

/* How many sends and edits say needle. */
static size_t vx_said(struct fx *fx, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if ((strcmp(c->method, "sendMessage") == 0 || strcmp(c->method, "editMessageText") == 0) &&
            strstr(c->body, needle) != NULL)
            n++;
    }
    return n;
}

static bool vx_too_large_twice(struct fx *fx, void *arg)
{
    (void)arg;
    return vx_said(fx, "That image is too large") >= 2;
}

static bool vx_not_image_twice(struct fx *fx, void *arg)
{
    (void)arg;
    return vx_said(fx, "That file is not an image I can read") >= 2;
}

/* The provider was called at least arg times. */
static bool vx_calls(struct fx *fx, void *arg)
{
    return ((struct vx *)fx)->eye.calls >= (int)(intptr_t)arg;
}

static const unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1};

/* A photo without a caption: the largest size within the cap is fetched
 * (getFile, then the file path under /file/bot<token>/), the model sees it
 * with the default question, and the answer costs the request and the
 * image. */
static void test_photo_to_generation(void **state)
{
    (void)state;
    struct vx vx;
    vx_init(&vx, 4096);
    tgapi_file_add(vx.fx.api, "ph-m", "photos/file_1.jpg", jpeg, sizeof(jpeg));
    vx_dm(&vx, "\"photo\":[{\"file_id\":\"ph-s\",\"file_unique_id\":\"a\",\"file_size\":100,"
               "\"width\":90,\"height\":90},{\"file_id\":\"ph-m\",\"file_unique_id\":\"b\","
               "\"file_size\":2000,\"width\":320,\"height\":320},{\"file_id\":\"ph-l\","
               "\"file_unique_id\":\"c\",\"file_size\":90000,\"width\":1280,\"height\":1280}]");
    fx_until(&vx.fx, vx_sent, "cost 3 credits");
    const struct tgapi_call *gf = fx_call(&vx.fx, "getFile", 0);
    assert_non_null(gf);
    assert_string_equal(gf->body, "{\"file_id\":\"ph-m\"}");
    const struct tgapi_call *dl = fx_call(&vx.fx, "file", 0);
    assert_non_null(dl);
    assert_string_equal(dl->body, "\"photos/file_1.jpg\"");
    assert_int_equal(dl->status, 200);
    assert_int_equal(vx.eye.calls, 1);
    assert_int_equal(vx.eye.nimages, 1);
    assert_string_equal(vx.eye.mime, "image/jpeg");
    assert_int_equal(vx.eye.len, sizeof(jpeg));
    assert_string_equal(vx.eye.prompt, MSG_ATTACH_DEFAULT_PROMPT);
    assert_true(vx_sent(&vx.fx, "I see a cat"));
    /* The ledger charged 1 + 2. */
    assert_int_equal(lt_balance(&vx.fx.lt, "telegram:501").posted, 97);
    vx_done(&vx);
}

/* A caption is the prompt; a text replying to a photo takes the photo; a
 * model that cannot see says so and names one that can, charging nothing. */
static void test_caption_reply_and_blind_model(void **state)
{
    (void)state;
    struct vx vx;
    vx_init(&vx, 4096);
    tgapi_file_add(vx.fx.api, "ph-1", "photos/file_2.jpg", jpeg, sizeof(jpeg));
    vx_dm(&vx, "\"photo\":[{\"file_id\":\"ph-1\",\"file_unique_id\":\"a\",\"width\":90,"
               "\"height\":90}],\"caption\":\"what breed\"");
    fx_until(&vx.fx, vx_sent, "cost 3 credits");
    assert_string_equal(vx.eye.prompt, "what breed");
    assert_int_equal(vx.eye.nimages, 1);

    vx_dm(&vx, "\"text\":\"and its colour\",\"reply_to_message\":{\"message_id\":3,\"date\":"
               "1700000000,\"chat\":{\"id\":501,\"type\":\"private\"},\"from\":{\"id\":501,"
               "\"is_bot\":false,\"first_name\":\"Ann\"},\"photo\":[{\"file_id\":\"ph-1\","
               "\"file_unique_id\":\"a\",\"file_size\":12,\"width\":90,\"height\":90}]}");
    fx_until(&vx.fx, vx_calls, (void *)(intptr_t)2);
    fx_until(&vx.fx, fx_handled, (void *)(intptr_t)2);
    assert_int_equal(tgapi_count(vx.fx.api, "file"), 2);
    assert_string_equal(vx.eye.prompt, "and its colour");
    assert_int_equal(vx.eye.nimages, 1);

    vx_dm(&vx, "\"photo\":[{\"file_id\":\"ph-1\",\"file_unique_id\":\"a\",\"width\":90,"
               "\"height\":90}],\"caption\":\"/chat model:blind what is it\"");
    fx_until(&vx.fx, vx_sent, "blind cannot see images. see can");
    assert_int_equal(vx.eye.calls, 2);
    fx_until(&vx.fx, fx_handled, (void *)(intptr_t)3);
    assert_int_equal(lt_balance(&vx.fx.lt, "telegram:501").posted, 100 - 3 - 3);
    vx_done(&vx);
}

/* Refusals, each a clear answer and nothing charged: a file declared
 * larger than the cap (never fetched), one that turns out larger at the
 * download, bytes that are no image, a file that is not an image at all. */
static void test_image_refusals(void **state)
{
    (void)state;
    struct vx vx;
    vx_init(&vx, 1024);
    vx_dm(&vx, "\"document\":{\"file_id\":\"doc-big\",\"file_unique_id\":\"d\",\"file_name\":"
               "\"big.png\",\"mime_type\":\"image/png\",\"file_size\":5000000}");
    fx_until(&vx.fx, vx_sent, "That image is too large: the limit is 1 KiB.");
    assert_null(fx_call(&vx.fx, "getFile", 0));

    static unsigned char big[2048];
    memcpy(big, jpeg, sizeof(jpeg));
    tgapi_file_add(vx.fx.api, "ph-big", "photos/file_3.jpg", big, sizeof(big));
    vx_dm(&vx, "\"photo\":[{\"file_id\":\"ph-big\",\"file_unique_id\":\"a\",\"width\":900,"
               "\"height\":900}]");
    fx_until(&vx.fx, vx_too_large_twice, NULL);
    assert_int_equal(tgapi_count(vx.fx.api, "getFile"), 1);

    static const char html[] = "<html><body>not a picture</body></html>";
    tgapi_file_add(vx.fx.api, "doc-html", "documents/file_4.png", html, sizeof(html) - 1);
    vx_dm(&vx, "\"document\":{\"file_id\":\"doc-html\",\"file_unique_id\":\"e\",\"file_name\":"
               "\"x.png\",\"mime_type\":\"image/png\",\"file_size\":40},\"caption\":\"look\"");
    fx_until(&vx.fx, vx_sent, "That file is not an image I can read");

    vx_dm(&vx, "\"document\":{\"file_id\":\"doc-pdf\",\"file_unique_id\":\"f\",\"file_name\":"
               "\"x.pdf\",\"mime_type\":\"application/pdf\",\"file_size\":40}");
    fx_until(&vx.fx, vx_not_image_twice, NULL);
    assert_int_equal(tgapi_count(vx.fx.api, "getFile"), 2);
    assert_int_equal(vx.eye.calls, 0);
    assert_int_equal(fx_account_rc(&vx.fx, "telegram:501"), HB_ENOTFOUND); /* no wallet opened */
    vx_done(&vx);
}

/* A hostile photo (tests/corpus/telegram/): sizes that are no objects,
 * an empty file_id, sizes of 1e300 and below zero, a caption that is no
 * text, a reply whose photo is a string and whose document's id is a
 * number. The one usable size is taken, the image still asks something;
 * and a getFile answer whose file_path climbs out of /file/ is refused
 * without a download. */
static void test_hostile_photo(void **state)
{
    (void)state;
    struct vx vx;
    vx_init(&vx, 4096);
    tgapi_file_add(vx.fx.api, "ph-1", "photos/file_5.jpg", jpeg, sizeof(jpeg));
    char *json = test_file_read("tests/corpus/telegram/telegram-photo-hostile.json", NULL);
    assert_non_null(json);
    tgapi_push_raw(vx.fx.api, 1, json);
    free(json);
    fx_until(&vx.fx, vx_sent, "cost 3 credits");
    assert_string_equal(fx_call(&vx.fx, "getFile", 0)->body, "{\"file_id\":\"ph-1\"}");
    assert_string_equal(vx.eye.prompt, MSG_ATTACH_DEFAULT_PROMPT);

    tgapi_file_add(vx.fx.api, "ph-evil", "../bot" TOKEN "/getMe", jpeg, sizeof(jpeg));
    vx_dm(&vx, "\"photo\":[{\"file_id\":\"ph-evil\",\"file_unique_id\":\"z\",\"width\":9,"
               "\"height\":9}]");
    fx_until(&vx.fx, vx_sent, "I could not fetch your image");
    assert_int_equal(tgapi_count(vx.fx.api, "file"), 1);
    assert_int_equal(vx.eye.calls, 1);
    vx_done(&vx);
}

/* A sendMessage to chat 502 arrived. */
static bool vx_answered_502(struct fx *fx, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < tgapi_ncalls(fx->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(fx->api, i);
        if (strcmp(c->method, "sendMessage") == 0 && strstr(c->body, "\"chat_id\":502") != NULL)
            return true;
    }
    return false;
}

/* A slow download holds nobody else: the member hears at once that the
 * image is being fetched (which settles the update), polling goes on and
 * another member's command is answered before the download is done; then
 * the answer replaces the note. */
static void test_slow_download_holds_nobody(void **state)
{
    (void)state;
    struct vx vx;
    vx_init(&vx, 4096);
    tgapi_file_add(vx.fx.api, "ph-1", "photos/file_6.jpg", jpeg, sizeof(jpeg));
    tgapi_files_slow(vx.fx.api, 1500);
    vx_dm(&vx, "\"photo\":[{\"file_id\":\"ph-1\",\"file_unique_id\":\"a\",\"width\":90,"
               "\"height\":90}]");
    fx_until(&vx.fx, vx_sent, MSG_ATTACH_FETCHING);
    fx_dm(&vx.fx, 502, "/help");
    fx_until(&vx.fx, vx_answered_502, NULL);
    assert_int_equal(vx.eye.calls, 0); /* the image is still on its way */
    fx_until(&vx.fx, vx_sent, "cost 3 credits");
    assert_int_equal(vx.eye.nimages, 1);
    /* The answer edits the note in place rather than adding a message. */
    assert_true(vx_said(&vx.fx, "cost 3 credits") >= 1);
    assert_non_null(fx_call(&vx.fx, "editMessageText", 0));
    vx_done(&vx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_photo_to_generation),
    cmocka_unit_test(test_caption_reply_and_blind_model),
    cmocka_unit_test(test_image_refusals),
    cmocka_unit_test(test_hostile_photo),
    cmocka_unit_test(test_slow_download_holds_nobody),
};

TEST_GROUP_DEFINE(telegram_vision, tests, NULL, NULL)
