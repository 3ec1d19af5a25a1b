/* Images members send with a chat turn: a photo (the largest size within
 * [limits] image_max_bytes), an image file sent as a document, with or
 * without a caption, or the image of the message a chat turn replies to.
 * The file is fetched the Bot API's way, getFile for its path and then
 * GET <api_base>/file/bot<token>/<file_path> (the token is secret: the URL
 * is never logged), capped and checked by its bytes (core/attach.h), and
 * handed to the router on the invocation. A refusal (too large, not an
 * image, the fetch failed) answers the member and costs nothing.
 *
 * The reply handle is made when the update is read, so the update is not
 * confirmed before its answer is safe, as for any other command; and it
 * says at once that the image is being fetched, which settles it, so a
 * slow download never holds the polling of other updates. The answer
 * replaces that message. */
#include "adapters/telegram/telegram_internal.h"

#include "core/attach.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/messages.h"
#include "base/error.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_FILE_TIMEOUT_MS 60000

/* One image on its way to a chat turn. */
struct tg_img {
    struct tg *tg;
    struct tg_img *next, *prev; /* tg->imgs: cancelled when the adapter closes */
    struct invocation inv;      /* the turn, without its reply */
    char *args;                 /* the command text for the router */
    struct tg_reply *r;         /* the turn's reply handle (its reference) */
    struct http_request *req;   /* the download in flight, or NULL */
    size_t max;                 /* the cap it was fetched under */
    char file_id[256];
};

/* The largest size the cap allows, by the file_size Telegram gives:
 * "photo" lists the sizes smallest first. A size without file_size is
 * taken only when no size says it fits; the download's cap still holds.
 * Returns 0, HB_EOVERFLOW when every size is too large, or HB_EPROTO. */
static int tg__photo_pick(const cJSON *photo, size_t max, char *id, size_t cap)
{
    const cJSON *best = NULL, *unknown = NULL, *p = NULL;
    bool too_large = false;
    cJSON_ArrayForEach(p, photo)
    {
        const char *fid = tg_json_str(p, "file_id");
        int64_t size = tg_json_int(p, "file_size", -1);
        if (fid == NULL || fid[0] == '\0')
            continue;
        if (size < 0)
            unknown = p;
        else if ((uint64_t)size <= max)
            best = p;
        else
            too_large = true;
    }
    if (best == NULL)
        best = unknown;
    if (best == NULL)
        return too_large ? HB_EOVERFLOW : HB_EPROTO;
    snprintf(id, cap, "%s", tg_json_str(best, "file_id"));
    return 0;
}

int tg_image_source(const cJSON *m, size_t max, char *file_id, size_t cap)
{
    file_id[0] = '\0';
    const cJSON *photo = cJSON_GetObjectItemCaseSensitive(m, "photo");
    if (cJSON_IsArray(photo) && cJSON_GetArraySize(photo) > 0)
        return tg__photo_pick(photo, max, file_id, cap);
    const cJSON *doc = cJSON_GetObjectItemCaseSensitive(m, "document");
    if (!cJSON_IsObject(doc))
        return HB_ENOTFOUND;
    /* A file: its declared kind says whether to fetch it at all; its bytes
     * decide after the fetch. */
    const char *mime = tg_json_str(doc, "mime_type");
    const char *fid = tg_json_str(doc, "file_id");
    if (mime == NULL || strncmp(mime, "image/", 6) != 0 || fid == NULL || fid[0] == '\0')
        return HB_EPROTO;
    int64_t size = tg_json_int(doc, "file_size", -1);
    if (size >= 0 && (uint64_t)size > max)
        return HB_EOVERFLOW;
    snprintf(file_id, cap, "%s", fid);
    return 0;
}

size_t tg_image_max(const struct tg *tg)
{
    const struct catalog *cat = tg->core != NULL && tg->core->generate != NULL
                                    ? generate_catalog(tg->core->generate)
                                    : NULL;
    return attach_max_bytes(cat);
}

static void tg__img_free(struct tg_img *im)
{
    struct tg *tg = im->tg;
    if (im->prev != NULL)
        im->prev->next = im->next;
    else
        tg->imgs = im->next;
    if (im->next != NULL)
        im->next->prev = im->prev;
    invocation_clear(&im->inv);
    free(im->args);
    free(im);
    tg_unref(tg);
}

/* The end: the turn goes to the router with its image, or the member hears
 * why not. */
static void tg__img_end(struct tg_img *im, int rc, struct invocation_image *img)
{
    struct tg *tg = im->tg;
    struct reply *reply = &im->r->reply;
    if (rc == 0) {
        im->inv.image = img;
        im->inv.reply = reply;
        tg->host.dispatch(tg->host.data, &im->inv, im->args);
    } else {
        if (rc != HB_ECANCELED) {
            char text[256];
            attach_refusal(rc, im->max, text, sizeof(text));
            reply_text(reply, true, "%s", text);
        }
        reply_finish(reply);
    }
    tg__img_free(im);
}

static void tg__img_fetched(int rc, struct invocation_image *img, void *data)
{
    struct tg_img *im = data;
    im->req = NULL;
    tg__img_end(im, rc, img);
}

/* A file_path goes into the download URL: only the characters Telegram's
 * paths use ("photos/file_12.jpg"), never a way out of /file/. */
static bool tg__file_path_ok(const char *p)
{
    if (p == NULL || p[0] == '\0' || p[0] == '/' || strstr(p, "..") != NULL || strlen(p) > 512)
        return false;
    for (const char *c = p; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-' || *c == '.' || *c == '/'))
            return false;
    }
    return true;
}

static void tg__img_file(struct tg *tg, void *data, const struct tg_result *res)
{
    struct tg_img *im = data;
    if (res->rc < 0 || !res->ok) {
        int rc = res->rc < 0 ? res->rc : HB_EHTTP;
        if (rc != HB_ECANCELED)
            log_warn("telegram.get_file_failed", "status=%d description=%.80s error=%s",
                     res->status, res->description, hb_strerror(rc));
        tg__img_end(im, rc, NULL);
        return;
    }
    const char *path = tg_json_str(res->result, "file_path");
    int64_t size = tg_json_int(res->result, "file_size", -1);
    if (size >= 0 && (uint64_t)size > im->max) {
        tg__img_end(im, HB_EOVERFLOW, NULL);
        return;
    }
    if (!tg__file_path_ok(path) || tg->closing) {
        if (!tg->closing)
            log_warn("telegram.get_file_failed", "problem=no usable file_path");
        tg__img_end(im, tg->closing ? HB_ECANCELED : HB_EINVAL, NULL);
        return;
    }
    /* tg->base is "<api_base>/bot<token>/": the file lives at
     * "<api_base>/file/bot<token>/<file_path>". */
    size_t blen = strlen(tg->base);
    size_t cut = blen;
    while (cut > 0 && tg->base[cut - 1] == '/')
        cut--;
    while (cut > 0 && tg->base[cut - 1] != '/')
        cut--;
    char *url = NULL;
    int rc = HB_ENOMEM;
    if (cut > 0 && asprintf(&url, "%.*sfile/%s%s", (int)cut, tg->base, tg->base + cut, path) > 0)
        rc =
            attach_fetch(tg->http, url, im->max, TG_FILE_TIMEOUT_MS, tg__img_fetched, im, &im->req);
    free(url);
    if (rc < 0)
        tg__img_end(im, rc, NULL);
}

void tg_image_dispatch(struct tg *tg, struct invocation *inv, const char *args, int64_t chat_id,
                       bool group, int64_t reply_to, const char *file_id)
{
    struct tg_reply *r = tg_reply_new(tg, chat_id, group, reply_to);
    struct tg_img *im = r != NULL ? calloc(1, sizeof(*im)) : NULL;
    char *copy = im != NULL ? strdup(args) : NULL;
    if (copy == NULL) {
        log_warn("telegram.update_dropped", "event=%s reason=out_of_memory", inv->event_id);
        free(im);
        if (r != NULL)
            reply_finish(&r->reply);
        return;
    }
    r->user_id = strtoll(inv->user_id, NULL, 10);
    im->tg = tg;
    im->inv = *inv;
    memset(inv->opts, 0, sizeof(inv->opts));
    inv->image = NULL;
    im->inv.reply = NULL;
    im->args = copy;
    im->r = r;
    im->max = tg_image_max(tg);
    snprintf(im->file_id, sizeof(im->file_id), "%s", file_id);
    im->next = tg->imgs;
    if (tg->imgs != NULL)
        tg->imgs->prev = im;
    tg->imgs = im;
    tg_ref(tg);
    struct reply_msg note = {.stage = REPLY_PROGRESS, .text = MSG_ATTACH_FETCHING};
    reply_send(&r->reply, &note);
    cJSON *body = cJSON_CreateObject();
    int rc = body != NULL && cJSON_AddStringToObject(body, "file_id", file_id) != NULL
                 ? tg_call_json(tg, "getFile", body, tg__img_file, im)
                 : HB_ENOMEM;
    cJSON_Delete(body);
    if (rc < 0)
        tg__img_end(im, rc, NULL);
}

void tg_image_refuse(struct tg *tg, int rc, int64_t chat_id, bool group, int64_t reply_to)
{
    struct tg_reply *r = tg_reply_new(tg, chat_id, group, reply_to);
    if (r == NULL)
        return;
    char text[256];
    attach_refusal(rc, tg_image_max(tg), text, sizeof(text));
    reply_text(&r->reply, true, "%s", text);
    reply_finish(&r->reply);
}

void tg_images_cancel(struct tg *tg)
{
    for (struct tg_img *im = tg->imgs; im != NULL; im = im->next) {
        if (im->req != NULL)
            http_request_cancel(im->req);
    }
}
