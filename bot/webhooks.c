#include "bot/webhooks.h"

#include "adapters/adapter.h"
#include "adapters/discord/discord.h"
#include "adapters/discord/verify.h"
#include "adapters/telegram/telegram.h"
#include "net/server.h"
#include "base/error.h"
#include "base/log.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WEBHOOKS_KEY_HEX 64 /* an Ed25519 public key in hex */

struct webhooks {
    struct server *srv;
    struct adapter *discord; /* NULL: no endpoint, or closed */
    char discord_key[WEBHOOKS_KEY_HEX + 1];
    struct adapter *telegram; /* NULL: no webhook, or closed */
    char *telegram_secret;    /* X-Telegram-Bot-Api-Secret-Token */
    bool closed;
};

static const char *const webhooks_discord_headers[] = {"X-Signature-Ed25519",
                                                       "X-Signature-Timestamp", NULL};

struct webhooks *webhooks_new(struct server *srv)
{
    struct webhooks *wh = calloc(1, sizeof(*wh));
    if (wh == NULL)
        return NULL;
    wh->srv = srv;
    return wh;
}

/* The adapter's first response, or none: the answer to the request. */
static void webhooks__discord_respond(void *data, const char *json, size_t len)
{
    struct server_request *req = data;
    if (json == NULL) {
        server_respond(req, 400, NULL, "interaction not handled\n", 24, NULL);
        return;
    }
    server_respond(req, 200, "application/json", json, len, NULL);
}

static void webhooks__discord(struct server_request *req, void *data)
{
    struct webhooks *wh = data;
    if (wh->closed || wh->discord == NULL) {
        server_respond(req, 503, NULL, "shutting down\n", 14, NULL);
        return;
    }
    size_t len = 0;
    const char *body = server_request_body(req, &len);
    struct discord_endpoint_answer ans;
    const char *ts = server_request_header(req, "X-Signature-Timestamp");
    discord_endpoint_check(wh->discord_key, server_request_header(req, "X-Signature-Ed25519"), ts,
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
    discord_interaction_feed(wh->discord, body, len, webhooks__discord_respond, req);
}

int webhooks_discord_add(struct webhooks *wh, struct adapter *discord, const char *public_key_hex)
{
    if (discord == NULL || public_key_hex == NULL || strlen(public_key_hex) != WEBHOOKS_KEY_HEX)
        return HB_EINVAL;
    for (size_t i = 0; i < WEBHOOKS_KEY_HEX; i++) {
        if (!isxdigit((unsigned char)public_key_hex[i]))
            return HB_EINVAL;
    }
    if (wh->discord != NULL)
        return HB_EEXISTS;
    int rc = server_route_add(wh->srv, "POST", "/interactions/discord", webhooks_discord_headers,
                              webhooks__discord, wh);
    if (rc < 0)
        return rc;
    memcpy(wh->discord_key, public_key_hex, WEBHOOKS_KEY_HEX + 1);
    wh->discord = discord;
    log_info("webhooks.discord", "path=%s", "/interactions/discord");
    return 0;
}

static const char *const webhooks_telegram_headers[] = {"X-Telegram-Bot-Api-Secret-Token", NULL};

/* Constant time over the expected length, so the secret does not leak
 * through timing (only its length may). */
static bool webhooks__secret_ok(const char *expected, const char *given)
{
    size_t n = strlen(expected);
    if (given == NULL || strlen(given) != n)
        return false;
    return CRYPTO_memcmp(expected, given, n) == 0;
}

static void webhooks__telegram(struct server_request *req, void *data)
{
    struct webhooks *wh = data;
    if (wh->closed || wh->telegram == NULL) {
        server_respond(req, 503, NULL, "shutting down\n", 14, NULL);
        return;
    }
    if (!webhooks__secret_ok(wh->telegram_secret,
                             server_request_header(req, "X-Telegram-Bot-Api-Secret-Token"))) {
        log_warn("webhooks.telegram_refused", "reason=%s", "wrong or missing secret token");
        server_respond(req, 401, NULL, "unauthorized\n", 13, NULL);
        return;
    }
    size_t len = 0;
    const char *body = server_request_body(req, &len);
    /* The update is dispatched (or known as a repeat) when this returns;
     * only then does Telegram hear 200 and forget it. */
    int rc = telegram_update_feed(wh->telegram, body, len);
    if (rc < 0) {
        server_respond(req, 400, NULL, "malformed update\n", 17, NULL);
        return;
    }
    server_respond(req, 200, "application/json", "{}", 2, NULL);
}

int webhooks_telegram_add(struct webhooks *wh, struct adapter *telegram, const char *secret)
{
    if (telegram == NULL || secret == NULL || secret[0] == '\0')
        return HB_EINVAL;
    if (wh->telegram != NULL)
        return HB_EEXISTS;
    char *copy = strdup(secret);
    if (copy == NULL)
        return HB_ENOMEM;
    int rc = server_route_add(wh->srv, "POST", "/webhooks/telegram", webhooks_telegram_headers,
                              webhooks__telegram, wh);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    wh->telegram_secret = copy;
    wh->telegram = telegram;
    log_info("webhooks.telegram", "path=%s", "/webhooks/telegram");
    return 0;
}

void webhooks_close(struct webhooks *wh)
{
    if (wh == NULL)
        return;
    wh->closed = true;
    wh->discord = NULL;
    wh->telegram = NULL;
}

void webhooks_free(struct webhooks *wh)
{
    if (wh == NULL)
        return;
    if (wh->telegram_secret != NULL) {
        OPENSSL_cleanse(wh->telegram_secret, strlen(wh->telegram_secret));
        free(wh->telegram_secret);
    }
    free(wh);
}
