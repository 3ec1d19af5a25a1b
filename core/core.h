/* struct core: the services command handlers reach, filled in by the daemon.
 *
 * Core code sees settings as plain values the daemon copies from bot.conf,
 * so nothing in core/ depends on how the configuration is parsed. */
#ifndef HB_CORE_H
#define HB_CORE_H

#include "core/button.h"
#include "base/clock.h"

#include <stdbool.h>
#include <stdint.h>

struct access_rules;
struct apikeys;
struct contests;
struct features;
struct generate;
struct ledger;
struct link_dir;
struct member_dir;
struct notices;
struct notify_target;
struct persona_dir;
struct reply;
struct reply_msg;
struct revenue;

/** What the daemon offers handlers that reach outside core/. */
struct core_host_ops {
    /** Reload the configuration now and report the result through r (which
     *  the callee finishes). */
    void (*reload)(void *host, struct reply *r);
    /** How this member tops up: deposit_text with their own checkout links
     *  and memos for their wallet and, when not NULL, the group's pool.
     *  Returns a heap string the caller frees, or NULL (then use
     *  deposit_text). May be NULL. */
    char *(*deposit_text_for)(void *host, const char *wallet, const char *pool);
    /** A provider answered (ok) or failed (detail says why, no secrets):
     *  for health reporting. May be NULL. */
    void (*provider_state)(void *host, const char *provider, bool ok, const char *detail);
    /** Tell someone something no command asked for (core/notify.h), through
     *  the running adapter of to->platform. to and text are borrowed for the
     *  call. Returns 0 once the message is queued there (delivery is then
     *  best effort), HB_ENOTFOUND when no adapter of that platform is
     *  running or it cannot post unprompted, or another negative code.
     *  May be NULL. */
    int (*notify)(void *host, const struct notify_target *to, const char *text);
    /** notify with a whole message: buttons go along where the platform's
     *  notices carry them (Telegram). Same returns. May be NULL: use
     *  notify with the text. */
    int (*notify_msg)(void *host, const struct notify_target *to, const struct reply_msg *msg);
};

struct core {
    struct clock clock;    /* wall clock in ms; the zero value: the real one (tests set it) */
    const char *bot_name;  /* shown in replies ("HAI Bot") */
    struct ledger *ledger; /* credits; NULL while stopping */
    int64_t welcome_bonus; /* credits a new wallet receives once */
    int64_t reservation_timeout_ms;      /* how long a reservation may stay open */
    uint8_t button_key[BUTTON_KEY_SIZE]; /* signs button refs; kept in the state table */
    const char *deposit_text; /* how to top up here, from the payment setup; may be NULL */
    const struct core_host_ops *host_ops; /* may be NULL in tests */
    void *host;                           /* passed back to host_ops */
    struct generate *generate;            /* generation jobs; NULL when not running */
    struct member_dir *members;           /* cache of seen usernames (core/member.h); may be NULL */
    const struct access_rules *access;    /* who may use the bot (core/access.h), owned by the
                                             router; for paths that do not pass it; NULL: all */
    struct persona_dir *personas; /* personas and plain talk chosen in chats (core/persona.h);
                                     NULL: none can be chosen */
    struct features *features;    /* feature switches (core/feature.h); NULL: every feature on */
    struct notices *notices;      /* low-balance and upvote notices (core/notice.h); NULL: none */
    struct link_dir *links;    /* identities sharing one wallet (core/link.h); NULL: none linked */
    struct apikeys *apikeys;   /* API keys (core/apikey.h); NULL: none can be made */
    struct cluster *cluster;   /* the daemons sharing this ledger (core/cluster.h); NULL: alone */
    struct revenue *revenue;   /* [revenue] shares and the groups' overrides (core/revenue.h);
                                  NULL: every charge stays in system:revenue */
    struct contests *contests; /* the groups' contests (core/contest.h); NULL: none run */
    struct holders *holders;   /* [revenue] holders and their payouts (core/holders.h); NULL:
                                  none */
};

/** The wall clock handlers use for periods ("the last 7 days"), in ms. */
int64_t core_now_ms(const struct core *core);

#endif
