/* The adapter table: every platform adapter the daemon can run, one row
 * each, keyed by its config section. A row turns its section of the
 * configuration into the adapter's options, both when the adapter is made
 * and on a reload. This file (bot/adapters.c) is the only place in bot/
 * that knows an adapter by its own header; everything else reaches
 * adapters through adapters/adapter.h. Adding an adapter is one row. */
#ifndef HB_BOT_ADAPTERS_H
#define HB_BOT_ADAPTERS_H

#include "adapters/adapter.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct config;
struct core;
struct http_client;
struct store;

/** What the daemon lends every adapter it makes (all borrowed; they
 *  outlive the adapters). */
struct adapters_env {
    uv_loop_t *loop;
    struct http_client *http; /* outgoing requests */
    struct core *core;        /* ledger and services */
    struct store *store;      /* the state table */
    const struct adapter_host *host;
    /** Enabled model names (autocomplete): at most max borrowed names. */
    size_t (*models)(void *data, const char **names, size_t max);
    void *models_data;
};

struct adapters_kind {
    const char *section; /* the config section, and the adapter's name */
    /** Is the section enabled in cfg. */
    bool (*enabled)(const struct config *cfg);
    /** Make the adapter from its section (not started). Returns 0 with
     *  *out set, or a negative code (problems in the section are logged). */
    int (*make)(const struct config *cfg, const struct adapters_env *env, struct adapter **out);
    /** Apply the live settings of cfg through the adapter's reload
     *  operation. Returns 0 or a negative code (nothing changed). */
    int (*reload)(struct adapter *a, const struct config *cfg);
};

/** Whether a part of the n adapters in list (a Discord shard reconnecting
 *  or stopped, the Telegram poller failing) is not up; when so, its name
 *  goes into name (cap bytes). For the platform-down alert. */
bool adapters_part_down(struct adapter *const *list, size_t n, char *name, size_t cap);

/** The table, in the order the daemon makes the adapters. */
extern const struct adapters_kind adapters_kinds[];
extern const size_t adapters_nkinds;

#endif
