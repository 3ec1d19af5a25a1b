/* The metered API on the daemon's HTTP server ([api] enabled = true),
 * paid from the ledger under the same rules as chat commands.
 *
 * OpenAI-compatible: GET /v1/models, POST /v1/chat/completions (streamed
 * as server-sent events or not), POST /v1/images/generations. Account:
 * GET /api/v1/me, GET /api/v1/usage?period=, GET /api/v1/history?cursor=.
 * Every route takes `Authorization: Bearer <key>`, a member's API key
 * (core/apikey.h); docs/openapi.yaml describes them, with the error
 * statuses. A generation goes through core/generate.h like /chat: model,
 * access, filter, limits and the fair queue, a reservation of its upper
 * bound, settlement of what the provider reports, fallbacks and refunds.
 * `Idempotency-Key` makes a retried request name the same ledger
 * transfers, so it is charged once. */
#ifndef HB_API_H
#define HB_API_H

#include <stdint.h>

struct core;
struct server;
struct api;

/** Register the routes on srv (borrowed; it must outlive the API) for
 *  core's generation engine and ledger, and make core->apikeys, the API
 *  keys (core/apikey.h), which start loading now. max_body: the largest
 *  request body in bytes (413 beyond; 0: 64 KiB). Returns NULL when out of
 *  memory or a route is taken. */
struct api *api_new(struct server *srv, struct core *core, int64_t max_body);

/** Free after uv_run() returned (the store has stopped), with the API keys
 *  it made. NULL is fine. */
void api_free(struct api *a);

#endif
