/* The daemon's state, shared by its files (private to bot/daemon*.c):
 * daemon.c runs the loop, starts and stops everything; daemon_server.c
 * keeps the HTTP server and what hangs on it, and the deposit poller. */
#ifndef HB_DAEMON_INTERNAL_H
#define HB_DAEMON_INTERNAL_H

#include "bot/config.h"
#include "bot/config_watch.h"
#include "bot/adapters.h"
#include "core/core.h"
#include "core/notify.h"

#include <stddef.h>
#include <uv.h>

#define DAEMON_MAX_ADAPTERS 4
/* SQLite: one connection beside the writer for the pages that only read
 * (history, usage, gallery, standings): WAL lets it read while the writer
 * writes, so a long page holds up no money movement. */
#define DAEMON_SQLITE_READERS 1u

enum daemon_state {
    DAEMON_RUNNING = 0,
    DAEMON_DRAINING = 1, /* refusing new commands, waiting for work in flight */
    DAEMON_CLOSING = 2,  /* closing handles; uv_run returns when all are closed */
};

struct daemon {
    uv_loop_t loop;
    enum daemon_state state;
    char *config_path;
    struct config *config; /* the running configuration */
    struct config_watch *watch;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;
    uv_timer_t grace;  /* bounds the drain */
    uv_timer_t health; /* refreshes shard states for /healthz */
    struct core core;
    struct router *router;
    struct http_client *http; /* every outgoing request (adapters, providers) */
    struct ledger *ledger;
    struct generate *generate; /* generation jobs; made after the ledger */
    struct server *server;     /* HTTP: webhooks, /healthz, /metrics; NULL when off */
    struct status *status;     /* /healthz and /metrics on the server */
    struct payments *payments; /* card webhooks on the server; NULL when none */
    struct webhooks *webhooks; /* platform endpoints on the server; NULL when off */
    struct api *api;           /* the metered API and API keys on the server; NULL when off */
    struct mirror *mirror;     /* Hedera deposit poller; NULL when off */
    struct operator* operator; /* feature switches, notices, alerts */
    char *deposit_text;        /* /deposit without member links (heap); NULL: none */
    struct adapter *adapters[DAEMON_MAX_ADAPTERS];
    const struct adapters_kind *kinds[DAEMON_MAX_ADAPTERS]; /* the table row of each */
    size_t nadapters;
    struct adapter *closed[DAEMON_MAX_ADAPTERS]; /* closed; freed after uv_run */
    size_t nclosed;
    size_t adapters_live;  /* started and not ended */
    size_t closing;        /* close operations still under way */
    unsigned stop_signals; /* SIGTERM/SIGINT received */
    size_t draining;       /* adapters still sending what they queued */
    int exit_code;
};

/* ---- daemon.c ---- */

/** A close operation under way ended (d->closing counts them). */
void daemon__closed_one(void *data);
/** Tell someone something: through the adapter of their platform. */
int daemon__notify(void *data, const struct notify_target *to, const char *text);

/* ---- daemon_server.c ---- */

/** Start the server when [server] enabled. Returns 0 or a negative code. */
int daemon__server_start(struct daemon *d);
/** Inside the loop: stop listening. */
void daemon__server_close(struct daemon *d);
/** After uv_run() returned. */
void daemon__server_free(struct daemon *d);
/** Poll the mirror node when [hedera] enabled. Returns 0 or a negative code. */
int daemon__mirror_start(struct daemon *d);

#endif
