/* Contest schedules ([contest] schedule, schedule_period, schedule_prize):
 * contests that start and end by themselves in the listed groups.
 *
 * Time is cut into windows: ISO weeks (Monday 00:00 UTC to the next
 * Monday) for "week", or runs of N days counted from 1970-01-01 for "N".
 * In a listed group with no contest running, the daemon starts the
 * window's contest (id: the window's start, end: its end) at its minute
 * tick, at start, and right after the previous one ended. A mark per group
 * (state namespace CONTEST_NS_SCHEDULE, the last window started) is
 * written in the same store transaction as the contest, so a window's
 * contest starts once: not again after it ended or an admin stopped it,
 * after a restart, or on a second daemon. A daemon down across a window's
 * end ends that contest at its next start (core/contest.h, exactly once)
 * and starts the current window's; windows it missed entirely are not
 * run. */
#ifndef HB_CONTEST_SCHEDULE_H
#define HB_CONTEST_SCHEDULE_H

#include "core/command.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTEST_NS_SCHEDULE "contest.schedule" /* "<platform>:<group>" -> window start, ms */
#define CONTEST_SCHEDULE_MAX 64                /* groups */

struct contest_schedule_group {
    enum command_platform platform;
    char scope_id[COMMAND_ID_MAX];   /* the group */
    char channel_id[COMMAND_ID_MAX]; /* where results are posted */
};

/** [contest] schedule: the groups, the window and the prize. */
struct contest_schedule {
    struct contest_schedule_group groups[CONTEST_SCHEDULE_MAX];
    size_t n;
    int days;      /* 0: ISO weeks; else windows of this many days */
    int64_t prize; /* credits; 0: the prize account's balance at the end */
};

/** Parse groups ("telegram:<group>, discord:<guild>/<channel>, ..."; a
 *  Discord server needs the channel where results are posted), period
 *  ("week" or NULL, or days "N" 1..CONTEST_DAYS_MAX) and prize (>= 0).
 *  Returns 0 or HB_EINVAL with one sentence in err. */
int contest_schedule_parse(const char *groups, const char *period, int64_t prize,
                           struct contest_schedule *out, char *err, size_t errcap);

/** The window holding now_ms: [*start, *end). */
void contest_schedule_window(const struct contest_schedule *s, int64_t now_ms, int64_t *start,
                             int64_t *end);

#endif
