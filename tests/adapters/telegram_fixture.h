/* The Telegram adapter tests' fixture: a loop with a ledger, the fake Bot
 * API on loopback, the router, and the adapter under test; waits for events
 * bounded by a guard timer. Shared by the Telegram test files. */
#ifndef HB_TEST_TELEGRAM_FIXTURE_H
#define HB_TEST_TELEGRAM_FIXTURE_H

#include "adapters/telegram/telegram.h"
#include "bot/router.h"
#include "core/core.h"
#include "net/http.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/telegram_api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN "123456:TEST-token-abcdef"
#define GUARD_MS 10000

enum fx_mode { FX_ROUTER, FX_CUSTOM };

struct fx {
    struct lt lt;
    struct http_client *http;
    struct tgapi *api;
    struct core core;
    struct router *router;
    struct adapter *tg;
    struct telegram_options opts;
    enum fx_mode mode;
    int ended;
    int closed;
    /* what the host saw */
    int64_t events[256];
    size_t nevents;
    char last_args[512];
    char last_ref[80];
    bool last_admin;
    /* the streaming handler */
    uv_timer_t stream_timer;
    struct reply *stream_reply;
    int stream_step;
};

/** Prepare the fixture (api_token: the fake's token; NULL: TOKEN). */
void fx_init(struct fx *fx, const char *api_token);
/** Start the adapter with fx->opts. */
void fx_start(struct fx *fx);
/** Run the loop until cond(fx) holds; fail after GUARD_MS. */
void fx_until(struct fx *fx, bool (*cond)(struct fx *fx, void *arg), void *arg);
/** Run the loop for ms (only where time itself is what is tested). */
void fx_run_for(struct fx *fx, uint64_t ms);
/** Run the loop until the fake saw n calls of method. */
void fx_wait_count(struct fx *fx, const char *method, size_t n);
/** Close the adapter and wait for it. */
void fx_adapter_close(struct fx *fx);
/** Close everything; asserts uv_loop_close == 0. */
void fx_done(struct fx *fx);
/** The n-th recorded call of method (0-based), or NULL. */
const struct tgapi_call *fx_call(struct fx *fx, const char *method, size_t n);
/** A private message from user. */
void fx_dm(struct fx *fx, int64_t user, const char *text);
/** A message from user in a supergroup chat. */
void fx_group(struct fx *fx, int64_t chat, int64_t user, const char *text);
/** One message of user (with a username) in a group; reply_to: the JSON of
 *  reply_to_message, or NULL; extra: more members of the message, or "". */
void fx_group_from(struct fx *fx, int64_t chat, int64_t user, const char *username, int64_t msg_id,
                   const char *text, const char *reply_to, const char *extra);
/** The host dispatched (intptr_t)arg updates and every command has finished. */
bool fx_handled(struct fx *fx, void *arg);
/** Some recorded call's body holds the text arg. */
bool fx_some_call_says(struct fx *fx, void *arg);
/** rc of reading an account's balance: 0, or HB_ENOTFOUND when never opened. */
int fx_account_rc(struct fx *fx, const char *account);
/** The sendMessage calls to chat (in order), as a NULL-ended list of
 *  borrowed bodies in out (at most n-1). Returns how many. */
size_t fx_sends_to(struct fx *fx, int64_t chat, const char **out, size_t n);

#endif
