/* Images members attach on Discord: the image option of /chat (an
 * attachment the interaction resolves), an image attached to a message
 * that mentions the bot or is a DM, or the image of the message it
 * replies to. The attachment's URL is fetched only from Discord's CDN
 * (https on cdn.discordapp.com or media.discordapp.net) or the configured
 * API base's own origin (a test's fake), never from anywhere else an
 * event names: a member cannot make the bot fetch a URL of their choosing.
 * The fetch is capped and checked by its bytes (core/attach.h); then the
 * turn goes to the router with the image, or the member hears why not. */
#include "adapters/discord/discord_internal.h"

#include "core/attach.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/messages.h"
#include "base/error.h"
#include "base/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DC_IMAGE_TIMEOUT_MS 60000

/* One image on its way to a chat turn. */
struct dc_img {
    struct discord *dc;
    struct dc_img *next, *prev; /* dc->imgs: cancelled when the adapter closes */
    struct dc_reply *r;         /* the turn's reply handle */
    struct invocation inv;      /* the turn, without its reply */
    char *args;                 /* a message's command text; NULL: typed options */
    struct http_request *req;   /* the fetch in flight, or NULL */
    size_t max;                 /* the cap it was fetched under */
};

size_t dc__image_max(const struct discord *dc)
{
    const struct core *core = dc->core;
    const struct catalog *cat =
        core != NULL && core->generate != NULL ? generate_catalog(core->generate) : NULL;
    return attach_max_bytes(cat);
}

/* scheme, host and port of url (lower-case host; port "" when default),
 * and whether it has user info. Returns false when it does not parse. */
static bool dc__url_origin(const char *url, char *scheme, char *host, char *port, size_t cap,
                           bool *userinfo)
{
    CURLU *u = curl_url();
    if (u == NULL)
        return false;
    bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK;
    char *s = NULL, *h = NULL, *p = NULL, *user = NULL;
    if (ok)
        ok = curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK;
    if (ok) {
        if (curl_url_get(u, CURLUPART_PORT, &p, 0) != CURLUE_OK)
            p = NULL;
        *userinfo = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK;
        snprintf(scheme, cap, "%s", s);
        snprintf(host, cap, "%s", h);
        snprintf(port, cap, "%s", p != NULL ? p : "");
        for (char *c = host; *c != '\0'; c++)
            *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
    }
    curl_free(s);
    curl_free(h);
    curl_free(p);
    curl_free(user);
    curl_url_cleanup(u);
    return ok;
}

bool dc__image_url_allowed(const struct discord *dc, const char *url)
{
    char scheme[256], host[256], port[256];
    bool userinfo = false;
    if (url == NULL || !dc__url_origin(url, scheme, host, port, sizeof(scheme), &userinfo) ||
        userinfo)
        return false;
    if (strcmp(scheme, "https") == 0 && (port[0] == '\0' || strcmp(port, "443") == 0) &&
        (strcmp(host, "cdn.discordapp.com") == 0 || strcmp(host, "media.discordapp.net") == 0))
        return true;
    /* The configured API base's own origin: a local fake in tests. */
    char bs[256], bh[256], bp[256];
    bool bu = false;
    return dc->api_base != NULL && dc__url_origin(dc->api_base, bs, bh, bp, sizeof(bs), &bu) &&
           strcmp(scheme, bs) == 0 && strcmp(host, bh) == 0 && strcmp(port, bp) == 0;
}

/* One attachment object: 0 and its URL when it may be fetched. */
static int dc__attachment_check(const struct discord *dc, const cJSON *a, size_t max,
                                const char **url)
{
    const char *type = dc__str(a, "content_type");
    const char *u = dc__str(a, "url");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(a, "size");
    if (type != NULL && strncmp(type, "image/", 6) != 0)
        return HB_EPROTO;
    if (cJSON_IsNumber(size) && size->valuedouble > (double)max)
        return HB_EOVERFLOW;
    if (!dc__image_url_allowed(dc, u)) {
        log_warn("discord.attachment_refused", "problem=not on Discord's CDN");
        return HB_EPERM;
    }
    *url = u;
    return 0;
}

int dc__attachment_pick(const struct discord *dc, const cJSON *atts, size_t max, const char **url)
{
    /* The first image; a list of files none of which is an image is
     * refused as such. */
    const cJSON *a = NULL, *pick = NULL;
    bool any = false;
    cJSON_ArrayForEach(a, atts)
    {
        any = true;
        const char *type = dc__str(a, "content_type");
        if (pick == NULL && (type == NULL || strncmp(type, "image/", 6) == 0))
            pick = a;
    }
    if (pick == NULL)
        return any ? HB_EPROTO : HB_ENOTFOUND;
    return dc__attachment_check(dc, pick, max, url);
}

int dc__attachment_option(const struct discord *dc, const cJSON *data, const cJSON *opts,
                          size_t max, const char **url)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, opts)
    {
        const char *name = dc__str(o, "name");
        const char *id = dc__str(o, "value");
        if (name == NULL || strcmp(name, DC_IMAGE_OPTION) != 0 || id == NULL)
            continue;
        const cJSON *resolved = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(data, "resolved"), "attachments");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(resolved, id);
        if (!cJSON_IsObject(a))
            return HB_EPROTO;
        return dc__attachment_check(dc, a, max, url);
    }
    return HB_ENOTFOUND;
}

static void dc__img_free(struct dc_img *im)
{
    struct discord *dc = im->dc;
    if (im->prev != NULL)
        im->prev->next = im->next;
    else
        dc->imgs = im->next;
    if (im->next != NULL)
        im->next->prev = im->prev;
    invocation_clear(&im->inv);
    free(im->args);
    free(im);
    dc->refs--;
    dc__maybe_closed(dc);
}

static void dc__img_fetched(int rc, struct invocation_image *img, void *data)
{
    struct dc_img *im = data;
    struct discord *dc = im->dc;
    struct reply *reply = &im->r->reply;
    im->req = NULL;
    if (rc == 0 && !dc->closing) {
        im->inv.image = img;
        im->inv.reply = reply;
        dc->host.dispatch(dc->host.data, &im->inv, im->args);
    } else {
        invocation_image_free(img);
        if (rc != HB_ECANCELED && !dc->closing)
            dc__image_refuse(reply, rc, im->max);
        reply_finish(reply);
    }
    dc__img_free(im);
}

void dc__image_refuse(struct reply *reply, int rc, size_t max)
{
    char text[256];
    attach_refusal(rc, max, text, sizeof(text));
    reply_text(reply, true, "%s", text);
}

void dc__image_dispatch(struct discord *dc, struct dc_reply *r, struct invocation *inv,
                        const char *args, const char *url)
{
    struct dc_img *im = calloc(1, sizeof(*im));
    char *copy = im != NULL && args != NULL ? strdup(args) : NULL;
    if (im == NULL || (args != NULL && copy == NULL)) {
        free(im);
        invocation_clear(inv);
        reply_text(&r->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(&r->reply);
        return;
    }
    im->dc = dc;
    im->r = r;
    im->inv = *inv;
    memset(inv->opts, 0, sizeof(inv->opts)); /* the fetch owns them now */
    inv->image = NULL;
    im->inv.reply = NULL;
    im->args = copy;
    im->max = dc__image_max(dc);
    im->next = dc->imgs;
    if (dc->imgs != NULL)
        dc->imgs->prev = im;
    dc->imgs = im;
    dc->refs++;
    int rc =
        attach_fetch(dc->http, url, im->max, DC_IMAGE_TIMEOUT_MS, dc__img_fetched, im, &im->req);
    if (rc < 0) {
        /* Answered from here: the caller's dispatch step is still to come,
         * and the reply waits for it. */
        dc__image_refuse(&r->reply, rc, im->max);
        reply_finish(&r->reply);
        dc__img_free(im);
    }
}

void dc__images_cancel(struct discord *dc)
{
    for (struct dc_img *im = dc->imgs; im != NULL; im = im->next) {
        if (im->req != NULL)
            http_request_cancel(im->req);
    }
}
