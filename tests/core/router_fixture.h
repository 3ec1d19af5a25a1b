/* The fixture of the core command tests that go through the router: a real
 * ledger on a loop (ledger_helpers.h), a core with a welcome bonus of 100
 * and a fixed button key, the router over it, and a reply capture. */
#ifndef HB_TEST_ROUTER_FIXTURE_H
#define HB_TEST_ROUTER_FIXTURE_H

#include "bot/router.h"
#include "core/core.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/reply_capture.h"

struct rfx {
    struct lt lt;
    struct core core;
    struct router *router;
    struct reply_capture cap;
    int event; /* the last event id handed out */
};

/** cmocka setup and teardown: *state is a struct rfx. */
int rfx_setup(void **state);
int rfx_teardown(void **state);

/** An invocation by user on platform: in group scope (its channel the
 *  group's) when scope is not NULL, else a direct chat. */
void rfx_inv(struct invocation *inv, enum command_platform platform, const char *user,
             const char *scope);

/** Dispatch line as inv (a fresh event id, the fixture's capture as its
 *  reply) and run the loop until the reply ends; returns what it said. */
const char *rfx_run(struct rfx *f, struct invocation *inv, const char *line);

#endif
