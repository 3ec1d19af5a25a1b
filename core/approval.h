/* The approval queue's rules: which generations wait for an admin.
 *
 * A job is held after its credits are reserved and before its provider
 * call when the reserved cost is above `above`, when its model is listed
 * in `models`, when its member is new (a wallet younger than
 * new_member_days, or that spent less than new_member_spent), or when a
 * content filter rule with action review matched its prompt. A held job
 * keeps its reservation; admins approve it (it runs as usual), edit its
 * prompt, or reject it (the reservation is voided, nothing is charged).
 * After `timeout_ms` it is voided and the member told. The engine holds
 * the jobs (core/generate.h); the daemon copies these values from bot.conf
 * ([approval]) and swaps them in live. */
#ifndef HB_APPROVAL_H
#define HB_APPROVAL_H

#include "core/command.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define APPROVAL_LIST_MAX 1024   /* bytes of the models list and of the reasons list */
#define APPROVAL_ID_LEN 8        /* hex characters of a held job's short id */
#define APPROVAL_REASON_MAX 200  /* bytes of a typed reject reason */
#define APPROVAL_REASONS_SHOWN 4 /* reasons offered as buttons */

/** The rules, by value. */
struct approval_rules {
    bool enabled;
    int64_t above;                        /* credits; 0: no cost rule */
    char models[APPROVAL_LIST_MAX];       /* "a, b": models that always need approval */
    int64_t new_member_days;              /* 0: off */
    int64_t new_member_spent;             /* credits; 0: off */
    int64_t timeout_ms;                   /* how long a held job waits */
    char discord_channel[COMMAND_ID_MAX]; /* where Discord admins are told; "" none */
    char telegram_chat[COMMAND_ID_MAX];   /* where Telegram admins are told; "" none */
    char reasons[APPROVAL_LIST_MAX];      /* "a, b": reject reasons offered as buttons */
};

/** Does the comma-separated list name `name` (spaces around names ignored)? */
bool approval_list_has(const char *list, const char *name);

/** The i-th name of a comma-separated list, trimmed, into buf. Returns
 *  false past the end. */
bool approval_list_at(const char *list, size_t i, char *buf, size_t cap);

/** How a decision ended, for the log, the metric and a second press. */
enum approval_outcome {
    APPROVAL_APPROVED = 0,
    APPROVAL_EDITED = 1,
    APPROVAL_REJECTED = 2,
    APPROVAL_TIMED_OUT = 3,
};

/** "approved", "edited", "rejected", "timed_out". */
const char *approval_outcome_name(enum approval_outcome o);

#endif
