/* Upvotes for leaderboards: a member's upvote of an image counts once, in
 * every calendar period it falls in (the UTC day, the ISO week from Monday,
 * the month, all time) of the server or group where the image was made.
 * The counts live in the store's votes table, so a board is one indexed
 * top-N read however many votes a group holds. */
#ifndef HB_VOTES_H
#define HB_VOTES_H

#include "storage/store.h"

#include <stddef.h>
#include <stdint.h>

/** State namespace of the marks that make an upvote count once: keys
 *  "<image>/<voter account>", value "1". */
#define VOTES_NS_VOTER "gen.upvote"

#define VOTES_PERIOD_MAX 16 /* a period key, NUL included */
#define VOTES_TOP_MAX 100   /* most rows a board read returns */

/** The calendar periods a board covers. */
enum votes_span {
    VOTES_DAY,   /* the UTC day */
    VOTES_WEEK,  /* the ISO week, Monday to Sunday, UTC */
    VOTES_MONTH, /* the calendar month, UTC */
    VOTES_ALL,   /* all time */
};

/** Write the key of the period of span that holds the instant now_ms (ms
 *  since the epoch) into buf: "d2026-12-05", "w2026-W49", "m2026-12" or
 *  "all". Returns 0, or HB_EINVAL when it does not fit. */
int votes_period(enum votes_span span, int64_t now_ms, char *buf, size_t cap);

/** One upvote. Strings are borrowed for the call. */
struct votes_cast {
    const char *scope;      /* "<platform>:<group>" whose boards count it; NULL or "": none */
    const char *image;      /* the image's id */
    const char *voter;      /* the voter's wallet account */
    const char *creator;    /* who made the image (shown on the board) */
    const char *model;      /* which model made it (shown on the board) */
    int64_t now_ms;         /* when, ms since the epoch */
    const char *contest;    /* the period of a contest running in scope ("c<id>",
                               core/contest.h), counted there too; NULL or "": none */
    int64_t contest_weight; /* what the vote counts in the contest (contests_vote_weight);
                               0 or less: 1. The other boards count it once. */
};

/** Completion of votes_cast: rc is 0 (counted), HB_EEXISTS (this voter
 *  already upvoted this image; nothing changed) or an error (nothing
 *  changed). */
typedef void (*votes_cast_cb)(int rc, void *data);

/** Record an upvote: in one store job (so in one group commit, all or
 *  nothing) check and set the voter's mark and add one to the image's count
 *  in each period of its scope. cb may be NULL. Returns 0 (cb follows) or a
 *  negative code (no callback). */
int votes_cast(struct store *store, const struct votes_cast *v, votes_cast_cb cb, void *data);

/** Completion of votes_top: the rows, highest count first, borrowed for the
 *  callback. */
typedef void (*votes_top_cb)(int rc, const struct store_vote *rows, size_t n, void *data);

/** Read the board of scope for the period of span that holds now_ms: at
 *  most max (<= VOTES_TOP_MAX) images. Returns 0 (cb follows) or a negative
 *  code (no callback). */
int votes_top(struct store *store, const char *scope, enum votes_span span, int64_t now_ms,
              size_t max, votes_top_cb cb, void *data);

#endif
