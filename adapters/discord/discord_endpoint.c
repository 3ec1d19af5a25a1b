/* The Discord adapter's HTTP interactions endpoint: POST
 * /interactions/discord on the daemon's server. Each request's Ed25519
 * signature is checked first (verify.h); a PING is answered there; a
 * verified interaction takes the gateway's path and its first response
 * becomes the HTTP answer. */
#include "adapters/discord/discord_internal.h"

#include "adapters/discord/verify.h"
#include "base/error.h"
#include "base/log.h"
#include "net/server.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#define DC_KEY_HEX 64 /* an Ed25519 public key in hex */

/* The adapter's first response, or none: the answer to the request. */
static void dc__endpoint_respond(void *data, const char *json, size_t len)
{
    struct server_request *req = data;
    if (json == NULL) {
        server_respond(req, 400, NULL, "interaction not handled\n", 24, NULL);
        return;
    }
    server_respond(req, 200, "application/json", json, len, NULL);
}

static void dc__endpoint_serve(struct adapter *a, struct server_request *req)
{
    struct discord *dc = a->impl;
    size_t len = 0;
    const char *body = server_request_body(req, &len);
    struct discord_endpoint_answer ans;
    const char *ts = server_request_header(req, "X-Signature-Timestamp");
    discord_endpoint_check(dc->public_key, server_request_header(req, "X-Signature-Ed25519"), ts,
                           body, len, &ans);
    const char *why = "bad or missing signature";
    if (ans.status != 401 && discord_timestamp_check(ts, (int64_t)time(NULL)) != 0) {
        /* Signed, but not now: a replay of a captured request. */
        ans.status = 401;
        ans.body = "stale request timestamp";
        why = "timestamp more than 5 minutes off";
    }
    if (ans.status != 0) {
        /* The body is not logged: it is unverified and may carry tokens. */
        if (ans.status == 401)
            log_warn("webhooks.discord_refused", "reason=%s bytes=%zu", why, len);
        server_respond(req, ans.status, ans.status == 200 ? "application/json" : NULL, ans.body,
                       strlen(ans.body), NULL);
        return;
    }
    discord_interaction_feed(a, body, len, dc__endpoint_respond, req);
}

static const char *const dc_endpoint_headers[] = {"X-Signature-Ed25519", "X-Signature-Timestamp",
                                                  NULL};

static const struct adapter_route dc_routes[] = {{.method = "POST",
                                                  .path = "/interactions/discord",
                                                  .headers = dc_endpoint_headers,
                                                  .serve = dc__endpoint_serve}};

int dc__routes(struct adapter *a, const struct adapter_route **routes)
{
    struct discord *dc = a->impl;
    if (dc->public_key == NULL)
        return 0;
    if (strlen(dc->public_key) != DC_KEY_HEX)
        return HB_EINVAL;
    for (size_t i = 0; i < DC_KEY_HEX; i++) {
        if (!isxdigit((unsigned char)dc->public_key[i]))
            return HB_EINVAL;
    }
    *routes = dc_routes;
    return 1;
}
