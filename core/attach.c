/* Attached images: the kind by magic bytes, the capped fetch, the member's
 * sentence when it fails. See attach.h. */
#include "core/attach.h"

#include "core/catalog.h"
#include "core/messages.h"
#include "base/error.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *attach_sniff(const unsigned char *d, size_t len)
{
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (d == NULL)
        return NULL;
    if (len >= sizeof(png) && memcmp(d, png, sizeof(png)) == 0)
        return "image/png";
    if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return "image/jpeg";
    if (len >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
        return "image/gif";
    if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return "image/webp";
    return NULL;
}

size_t attach_max_bytes(const struct catalog *cat)
{
    int64_t max = cat != NULL ? catalog_limits_get(cat)->image_max_bytes : 0;
    return max > 0 ? (size_t)max : (size_t)CATALOG_IMAGE_MAX_BYTES_DEFAULT;
}

struct attach_op {
    attach_done_fn done;
    void *data;
};

static void attach__done(struct http_request *req, int rc, void *data)
{
    struct attach_op *op = data;
    struct invocation_image *img = NULL;
    int status = rc == 0 ? http_request_status(req) : 0;
    if (rc == 0 && (status < 200 || status > 299))
        rc = HB_EHTTP;
    size_t len = 0;
    const char *body = rc == 0 ? http_request_body(req, &len) : NULL;
    const char *mime = rc == 0 ? attach_sniff((const unsigned char *)body, len) : NULL;
    if (rc == 0 && mime == NULL)
        rc = HB_EPROTO;
    if (rc == 0) {
        img = calloc(1, sizeof(*img));
        if (img != NULL)
            img->data = malloc(len);
        if (img == NULL || img->data == NULL) {
            invocation_image_free(img);
            img = NULL;
            rc = HB_ENOMEM;
        } else {
            memcpy(img->data, body, len);
            img->len = len;
            snprintf(img->mime, sizeof(img->mime), "%s", mime);
        }
    }
    /* Never the URL: Telegram's holds the bot's token. */
    if (rc < 0 && rc != HB_ECANCELED)
        log_info("attach.fetch_failed", "status=%d bytes=%zu error=%s", status, len,
                 hb_strerror(rc));
    op->done(rc, img, op->data);
    free(op);
}

int attach_fetch(struct http_client *http, const char *url, size_t max_bytes, uint64_t timeout_ms,
                 attach_done_fn done, void *data, struct http_request **out)
{
    if (http == NULL || url == NULL || done == NULL)
        return HB_EINVAL;
    struct attach_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->done = done;
    op->data = data;
    struct http_request *req = http_request_new(http, "GET", url);
    if (req == NULL) {
        free(op);
        return HB_ENOMEM;
    }
    http_request_max_body_set(req, max_bytes);
    http_request_timeout_set(req, timeout_ms, 0);
    int rc = http_request_start(req, attach__done, op);
    if (rc < 0) {
        free(op);
        return rc;
    }
    if (out != NULL)
        *out = req;
    return 0;
}

void attach_refusal(int rc, size_t max_bytes, char *buf, size_t cap)
{
    if (rc == HB_EOVERFLOW)
        snprintf(buf, cap, MSG_ATTACH_TOO_LARGE, max_bytes / 1024);
    else if (rc == HB_EPROTO)
        snprintf(buf, cap, MSG_ATTACH_NOT_IMAGE);
    else if (rc == HB_EPERM)
        snprintf(buf, cap, MSG_ATTACH_HOST_REFUSED);
    else
        snprintf(buf, cap, MSG_ATTACH_FETCH_FAILED, hb_strerror(rc));
}
