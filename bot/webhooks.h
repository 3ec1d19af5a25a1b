/* The platforms' inbound HTTP endpoints on the daemon's server: Discord's
 * interactions endpoint (POST /interactions/discord), which checks each
 * request's Ed25519 signature and hands verified interactions to the
 * Discord adapter, whose first response becomes the HTTP answer; and
 * Telegram's webhook (POST /webhooks/telegram), which checks the secret
 * token header and answers 200 once the update is handed to the adapter.
 *
 * Ownership: the server and the adapters are borrowed. The webhooks object
 * is route data of the server, so it is freed only after server_free();
 * webhooks_close() (inside the loop, before the adapters close) makes the
 * routes answer 503 from then on, so no request reaches a closed adapter. */
#ifndef HB_WEBHOOKS_H
#define HB_WEBHOOKS_H

struct adapter;
struct server;
struct webhooks;

/** An object for the endpoints on srv (none registered yet), or NULL when
 *  out of memory. */
struct webhooks *webhooks_new(struct server *srv);

/** Serve POST /interactions/discord for the Discord adapter discord,
 *  checking signatures with public_key_hex (the application's public key,
 *  64 hex digits; copied). Returns 0, HB_EINVAL (bad key), HB_EEXISTS
 *  (added twice) or HB_ENOMEM. */
int webhooks_discord_add(struct webhooks *wh, struct adapter *discord, const char *public_key_hex);

/** Serve POST /webhooks/telegram for the Telegram adapter telegram (in
 *  webhook mode), accepting requests whose X-Telegram-Bot-Api-Secret-Token
 *  equals secret (required; copied). Returns 0, HB_EINVAL, HB_EEXISTS or
 *  HB_ENOMEM. */
int webhooks_telegram_add(struct webhooks *wh, struct adapter *telegram, const char *secret);

/** From now on answer 503 and forget the adapters (they are closing). */
void webhooks_close(struct webhooks *wh);

/** Free, after server_free(). NULL is fine. */
void webhooks_free(struct webhooks *wh);

#endif
