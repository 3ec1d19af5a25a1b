#include "adapters/demo/demo.h"

#include "base/error.h"
#include "adapters/demo/png.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_CHUNKS 4

struct demo {
    struct provider provider;
    uv_loop_t *loop;
    uint64_t step_ms;
};

struct provider_call {
    uv_timer_t timer;
    const struct provider_events *ev;
    void *data;
    enum provider_modality modality;
    char *text; /* the whole answer */
    size_t len, off;
    unsigned step;
    long input_tokens;
    unsigned width, height;
    char *prompt;
    bool cancelled;
    bool ended;
};

static void demo__closed(uv_handle_t *h)
{
    struct provider_call *call = h->data;
    free(call->text);
    free(call->prompt);
    free(call);
}

static void demo__end(struct provider_call *call, const struct provider_result *res)
{
    call->ended = true;
    uv_timer_stop(&call->timer);
    call->ev->done(call->data, res);
    uv_close((uv_handle_t *)&call->timer, demo__closed);
}

static void demo__tick(uv_timer_t *t)
{
    struct provider_call *call = t->data;
    if (call->cancelled) {
        struct provider_result res = {
            .rc = HB_ECANCELED, .retry_after_ms = -1, .error = "cancelled"};
        demo__end(call, &res);
        return;
    }
    if (call->modality == PROVIDER_IMAGE) {
        unsigned char *png = NULL;
        size_t len = 0;
        unsigned w = call->width > PNG_SIDE_MAX ? PNG_SIDE_MAX : call->width;
        unsigned h = call->height > PNG_SIDE_MAX ? PNG_SIDE_MAX : call->height;
        int rc = png_demo_render(call->prompt, w, h, &png, &len);
        struct provider_result res = {.rc = rc,
                                      .retry_after_ms = -1,
                                      .error = rc == 0 ? "" : "the demo picture could not be drawn",
                                      .image = png,
                                      .image_len = len,
                                      .image_mime = "image/png"};
        demo__end(call, &res);
        free(png);
        return;
    }
    if (call->off < call->len) {
        size_t left = call->len - call->off;
        size_t piece = call->len / DEMO_CHUNKS + 1;
        if (piece > left)
            piece = left;
        /* Never split a UTF-8 character between chunks. */
        while (call->off + piece < call->len &&
               ((unsigned char)call->text[call->off + piece] & 0xC0) == 0x80)
            piece++;
        call->ev->text(call->data, call->text + call->off, piece);
        call->off += piece;
        return;
    }
    call->ev->usage(call->data, call->input_tokens, (long)(call->len / 4 + 1));
    struct provider_result res = {.rc = 0, .retry_after_ms = -1, .error = ""};
    demo__end(call, &res);
}

static int demo__start(struct provider *p, const struct provider_request *req,
                       const struct provider_events *ev, void *data, struct provider_call **out)
{
    struct demo *d = p->impl;
    struct provider_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return HB_ENOMEM;
    call->ev = ev;
    call->data = data;
    call->modality = req->modality;
    if (req->modality == PROVIDER_IMAGE) {
        call->prompt = strdup(req->prompt != NULL ? req->prompt : "");
        call->width = req->width > 0 ? req->width : 256;
        call->height = req->height > 0 ? req->height : 256;
        if (call->prompt == NULL) {
            free(call);
            return HB_ENOMEM;
        }
    } else {
        const char *prompt = req->nmessages > 0 ? req->messages[req->nmessages - 1].content : "";
        size_t in = 0;
        for (size_t i = 0; i < req->nmessages; i++)
            in += strlen(req->messages[i].content);
        call->input_tokens = (long)(in / 4 + 1);
        size_t turn = req->nmessages / 2 + 1;
        int n = asprintf(&call->text,
                         "[demo] This is the offline demo model, not a real AI. You wrote %zu "
                         "characters (turn %zu of this conversation), beginning \"%.40s\". "
                         "Configure a real provider in bot.conf for real answers.",
                         strlen(prompt), turn, prompt);
        if (n < 0) {
            free(call);
            return HB_ENOMEM;
        }
        call->len = (size_t)n;
    }
    int rc = uv_timer_init(d->loop, &call->timer);
    if (rc < 0) {
        free(call->text);
        free(call->prompt);
        free(call);
        return rc;
    }
    call->timer.data = call;
    uv_timer_start(&call->timer, demo__tick, d->step_ms, d->step_ms > 0 ? d->step_ms : 1);
    *out = call;
    return 0;
}

static void demo__cancel(struct provider_call *call)
{
    if (call->ended)
        return;
    call->cancelled = true;
    uv_timer_start(&call->timer, demo__tick, 0, 0);
}

static void demo__free(struct provider *p)
{
    free(p->impl);
}

static const struct provider_ops demo_ops = {
    .start = demo__start, .cancel = demo__cancel, .free = demo__free};

struct provider *demo_provider_new(uv_loop_t *loop, uint64_t step_ms)
{
    struct demo *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->loop = loop;
    d->step_ms = step_ms;
    d->provider.ops = &demo_ops;
    d->provider.impl = d;
    d->provider.demo = true;
    return &d->provider;
}
