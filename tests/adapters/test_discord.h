/* The Discord adapter tests' fixture: the fake gateway delivers
 * INTERACTION_CREATE and MESSAGE_CREATE, the fake REST records what the
 * adapter answers. Each test waits for what it expects at the fake REST
 * (a predicate checked after every request), guarded by a timer, then
 * closes the adapter and everything else; the loop must close clean.
 * Shared by test_discord_adapter.c and test_discord_chat.c. */
#ifndef HB_TEST_DISCORD_H
#define HB_TEST_DISCORD_H

#include "tests/test.h"

#include "adapters/discord/discord.h"
#include "adapters/discord/gateway.h"
#include "net/http.h"
#include "base/error.h"
#include "core/core.h"
#include "core/feature.h"
#include "tests/fake/discord_gateway.h"
#include "tests/fake/discord_rest.h"
#include "adapters/demo/demo.h"
#include "core/catalog.h"
#include "core/commands.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/handlers.h"
#include "core/persona.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_TOKEN "adapter-test-token.ZZZ-123456"
#define AT_APP "4242"
#define AT_GUARD_MS 15000
#define AT_MAX_REPLIES 256
#define DC_TEST_LATE_MS 1400 /* after the adapter's personal hold (1 s) has run out */

struct at;
typedef void (*at_handler_fn)(struct at *t, struct invocation *inv);
typedef bool (*at_done_fn)(struct at *t);

struct at {
    uv_loop_t loop;
    struct fake_gateway *gw;
    struct fake_rest *rest;
    struct http_client *http;
    struct adapter *adapter;
    uv_timer_t guard;
    uv_timer_t later;
    bool timed_out;
    bool closing;
    bool identified;
    bool shard_seen; /* discord_adapter_shard reported shard 0 identified */
    at_handler_fn handler;
    at_done_fn done;
    void (*script)(struct at *t);
    struct reply *held[AT_MAX_REPLIES];
    size_t nheld;
    struct invocation last;
    char last_args[256];
    size_t dispatched;
    uint64_t first_ms;
    uint64_t acked_ms;
    struct discord_adapter_stats stats;
    unsigned rest_connections; /* the fake REST's accepted connections, at the finish */
    const char *app_id;        /* NULL: AT_APP */
};

/* Run the adapter with extra options until t->done(t) holds after a
 * request (t->script starts the test; t->handler answers dispatches),
 * then close everything; the loop must close clean. */
void at_run(struct at *t, const struct discord_options *extra);
void at_finish(struct at *t);
/* An INTERACTION_CREATE of the given type with data, as event number n. */
void at_interaction(struct at *t, unsigned n, const char *data_json, int type);
/* Requests with method whose target has substr and whose body has needle. */
size_t at_count(struct at *t, const char *method, const char *substr, const char *needle);
/* Holds the reply, then answers "working 1..3" and "result: 42" later. */
void at_slow_handler(struct at *t, struct invocation *inv);
/* Three model names, for autocomplete. */
size_t at_models(void *data, const char **names, size_t max);

#endif
