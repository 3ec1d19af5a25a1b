/* /gallery [day|week|month|all] [top|new]: a server's or group's
 * generated images, page by page, from the stored results
 * (core/gallery.h): each image an upload of its own with its creator, its
 * model, its upvotes in the period and an Upvote button (the same button
 * a generation carries, so the vote counts on the boards and in a running
 * contest), then Previous and Next buttons for the one who asked. No
 * prompt is ever shown: members have no way to publish one today.
 *
 * new: the images made in the period (today, since Monday, this month,
 * all time; UTC), newest first. top: the images most upvoted in the
 * period, as /leaderboard ranks them. A page is one store job: an indexed
 * walk of the images (or of the votes) that reads the bytes of its own
 * rows only. */
#include "core/core.h"
#include "base/error.h"
#include "base/log.h"
#include "core/button.h"
#include "core/gallery.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/votes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GALLERY_PAGE 4        /* images per page: one upload each */
#define GALLERY_PAGES_MAX 500 /* the deepest page a button leads to */
#define GALLERY_DAY_MS 86400000LL

static const char gallery__span_chars[] = "dwma"; /* day, week, month, all, as votes_span */

struct gallery_ctx {
    struct core *core;
    struct invocation *inv; /* the router's, alive until its reply finishes */
    enum votes_span span;
    bool top;
    long long page; /* from 1 */
};

static const char *gallery__period_words(enum votes_span span)
{
    return span == VOTES_DAY     ? MSG_BOARD_PERIOD_DAY
           : span == VOTES_WEEK  ? MSG_BOARD_PERIOD_WEEK
           : span == VOTES_MONTH ? MSG_BOARD_PERIOD_MONTH
                                 : MSG_BOARD_PERIOD_ALL;
}

/* The first instant (ms) of the period of span that holds now_ms. */
static int64_t gallery__since(enum votes_span span, int64_t now_ms)
{
    int64_t day = now_ms / GALLERY_DAY_MS - (now_ms % GALLERY_DAY_MS < 0 ? 1 : 0);
    switch (span) {
    case VOTES_DAY:
        return day * GALLERY_DAY_MS;
    case VOTES_WEEK: /* day 0 was a Thursday: Monday is 3 days before */
        return (day - ((day + 3) % 7 + 7) % 7) * GALLERY_DAY_MS;
    case VOTES_MONTH: {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL)
            return 0;
        return (day - (tm.tm_mday - 1)) * GALLERY_DAY_MS;
    }
    case VOTES_ALL:
    default:
        return INT64_MIN;
    }
}

static void gallery__end(struct gallery_ctx *ctx, bool ephemeral, const char *text)
{
    if (text != NULL)
        reply_text(ctx->inv->reply, ephemeral, "%s", text);
    reply_finish(ctx->inv->reply);
    free(ctx);
}

/* A navigation button for the asker: page p of the same gallery. */
static bool gallery__nav(const struct gallery_ctx *ctx, long long p, const char *label,
                         struct reply_button *b)
{
    char payload[24];
    snprintf(payload, sizeof(payload), "%c%c.%lld", gallery__span_chars[ctx->span],
             ctx->top ? 't' : 'n', p);
    b->label = label;
    return button_ref_make(b->ref, ctx->core->button_key, "gal", payload, ctx->inv) == 0;
}

static void gallery__listed(int rc, const struct store_image *rows, size_t n, void *data)
{
    struct gallery_ctx *ctx = data;
    char text[512];
    if (rc < 0) {
        snprintf(text, sizeof(text), MSG_GALLERY_FAILED, hb_strerror(rc));
        gallery__end(ctx, true, text);
        return;
    }
    const char *period = gallery__period_words(ctx->span);
    if (n == 0) {
        if (ctx->page > 1)
            snprintf(text, sizeof(text), MSG_GALLERY_NO_PAGE, ctx->page);
        else
            snprintf(text, sizeof(text), ctx->top ? MSG_GALLERY_EMPTY_TOP : MSG_GALLERY_EMPTY_NEW,
                     period);
        gallery__end(ctx, ctx->page > 1, text);
        return;
    }
    struct reply *reply = ctx->inv->reply;
    bool more = n > GALLERY_PAGE; /* one row past the page was read to know */
    if (more)
        n = GALLERY_PAGE;
    snprintf(text, sizeof(text), MSG_GALLERY_HEADER, period,
             ctx->top ? MSG_GALLERY_ORDER_TOP : MSG_GALLERY_ORDER_NEW, ctx->page);
    struct reply_msg head = {.stage = REPLY_FINAL, .text = text};
    reply_send(reply, &head);
    for (size_t i = 0; i < n; i++) {
        const struct store_image *img = &rows[i];
        /* The Upvote button as the generation made it: bound to the
         * creator, checked against the image's stored owner when pressed. */
        struct invocation owner;
        memset(&owner, 0, sizeof(owner));
        owner.platform = (enum command_platform)img->platform;
        owner.scope = COMMAND_SCOPE_GROUP;
        snprintf(owner.user_id, sizeof(owner.user_id), "%s", img->user_id);
        snprintf(owner.scope_id, sizeof(owner.scope_id), "%s", img->scope_id);
        char payload[STORE_TAG_SIZE + 4];
        snprintf(payload, sizeof(payload), "u.%s", img->id);
        struct reply_button up = {.label = MSG_GEN_BUTTON_UPVOTE};
        bool has_up = button_ref_make(up.ref, ctx->core->button_key, "gen", payload, &owner) == 0;
        char caption[384];
        snprintf(caption, sizeof(caption), MSG_GALLERY_ROW,
                 (size_t)((ctx->page - 1) * GALLERY_PAGE) + i + 1,
                 img->user_id[0] != '\0' ? img->user_id : "-", img->model, (long long)img->upvotes,
                 img->upvotes == 1 ? "" : "s");
        struct reply_image image = {.data = img->data,
                                    .len = img->len,
                                    .mime = img->mime,
                                    .filename = strcmp(img->mime, "image/png") == 0 ? "image.png"
                                                                                    : "image.jpg"};
        struct reply_msg msg = {.stage = REPLY_FINAL,
                                .text = caption,
                                .image = &image,
                                .buttons = has_up ? &up : NULL,
                                .nbuttons = has_up ? 1 : 0};
        reply_send(reply, &msg);
    }
    struct reply_button nav[2];
    size_t nb = 0;
    if (ctx->page > 1 && gallery__nav(ctx, ctx->page - 1, MSG_GALLERY_PREV, &nav[nb]))
        nb++;
    if (more && ctx->page < GALLERY_PAGES_MAX &&
        gallery__nav(ctx, ctx->page + 1, MSG_GALLERY_NEXT, &nav[nb]))
        nb++;
    if (nb > 0) {
        snprintf(text, sizeof(text), MSG_GALLERY_PAGES, ctx->page);
        struct reply_msg pages = {
            .stage = REPLY_FINAL, .text = text, .buttons = nav, .nbuttons = nb};
        reply_send(reply, &pages);
    }
    gallery__end(ctx, false, NULL);
}

static void gallery__show(struct core *core, struct invocation *inv, enum votes_span span, bool top,
                          long long page)
{
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0') {
        reply_text(inv->reply, true, "%s", MSG_GALLERY_NOT_HERE);
        reply_finish(inv->reply);
        return;
    }
    if (core->ledger == NULL) {
        reply_text(inv->reply, true, "%s", MSG_ROUTER_SHUTTING_DOWN);
        reply_finish(inv->reply);
        return;
    }
    struct gallery_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_GALLERY_FAILED, hb_strerror(HB_ENOMEM));
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    ctx->span = span;
    ctx->top = top;
    ctx->page = page;
    char scope[GALLERY_SCOPE_MAX], period[VOTES_PERIOD_MAX];
    gallery_scope(inv, scope, sizeof(scope));
    int64_t now = core_now_ms(core);
    int rc = votes_period(span, now, period, sizeof(period));
    if (rc == 0)
        rc =
            gallery_page(ledger_store(core->ledger), scope, period, top, gallery__since(span, now),
                         (size_t)(page - 1) * GALLERY_PAGE, GALLERY_PAGE + 1, gallery__listed, ctx);
    if (rc < 0)
        gallery__listed(rc, NULL, 0, ctx);
}

void cmd_gallery(struct core *core, struct invocation *inv)
{
    const char *period = inv->opts[0].set ? inv->opts[0].string : "week";
    const char *order = inv->opts[1].set ? inv->opts[1].string : "new";
    enum votes_span span = strcmp(period, "day") == 0     ? VOTES_DAY
                           : strcmp(period, "month") == 0 ? VOTES_MONTH
                           : strcmp(period, "all") == 0   ? VOTES_ALL
                                                          : VOTES_WEEK;
    gallery__show(core, inv, span, strcmp(order, "top") == 0, 1);
}

/* Previous / Next: "<span><order>.<page>", the asker's own. */
void cmd_gallery_button(struct core *core, struct invocation *inv)
{
    char payload[32];
    int rc = button_ref_check(inv, core->button_key, payload, sizeof(payload));
    const char *span = rc == 0 ? strchr(gallery__span_chars, payload[0]) : NULL;
    char order = rc == 0 ? payload[1] : '\0';
    char *end = NULL;
    long long page = rc == 0 && payload[0] != '\0' && payload[1] != '\0' && payload[2] == '.'
                         ? strtoll(payload + 3, &end, 10)
                         : 0;
    if (rc == 0 && (span == NULL || payload[0] == '\0' || (order != 'n' && order != 't') ||
                    end == NULL || *end != '\0' || page < 1 || page > GALLERY_PAGES_MAX))
        rc = HB_EINVAL;
    if (rc < 0) {
        reply_text(inv->reply, true, "%s",
                   rc == HB_EPERM ? MSG_GALLERY_BUTTON_NOT_YOURS : MSG_GALLERY_BUTTON_EXPIRED);
        reply_finish(inv->reply);
        return;
    }
    gallery__show(core, inv, (enum votes_span)(span - gallery__span_chars), order == 't', page);
}
