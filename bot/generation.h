/* The daemon's side of generation: translate bot.conf's providers, models,
 * [limits] and [filter] sections into a catalog for core/generate.h, with
 * provider objects made from the adapters on the shared HTTP client. */
#ifndef HB_BOT_GENERATION_H
#define HB_BOT_GENERATION_H

#include "bot/config.h"
#include "net/http.h"
#include "core/approval.h"
#include "core/catalog.h"
#include "core/core.h"

#include <stddef.h>
#include <uv.h>

#define GENERATION_DEMO_STEP_MS 150 /* the demo provider's pause between chunks */

/** Build a catalog from cfg (borrowed). Returns NULL with a sentence in err. */
struct catalog *generation_catalog_build(const struct config *cfg, uv_loop_t *loop,
                                         struct http_client *http, char *err, size_t errcap);

/** The [approval] section as core's rules (core/approval.h), into out. */
void generation_approval_rules(const struct config *cfg, struct approval_rules *out);

/** Start the generation engine into core->generate (core's ledger open):
 *  the catalog from cfg, the approval rules, and the recovery that voids
 *  what a crash left reserved before any command arrives. On a shared
 *  ledger ([storage] backend = postgres) also join the cluster
 *  (core->cluster, core/cluster.h), whose heartbeat voids the jobs of
 *  daemons that died. Returns 0 or a negative code (logged). */
int generation_engine_start(uv_loop_t *loop, struct core *core, const struct config *cfg,
                            struct http_client *http);

/** Leave the cluster (before the engine and the ledger close). */
void generation_engine_leave(struct core *core);

#endif
