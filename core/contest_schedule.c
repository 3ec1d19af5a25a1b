/* Contest schedules (core/contest_schedule.h). */
#include "core/contest_schedule.h"

#include "base/error.h"
#include "base/text.h"
#include "core/contest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool schedule__id_ok(const char *s, size_t n)
{
    if (n == 0 || n >= COMMAND_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    }
    return true;
}

int contest_schedule_parse(const char *groups, const char *period, int64_t prize,
                           struct contest_schedule *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof(*out));
    if (period != NULL && period[0] != '\0' && strcmp(period, "week") != 0) {
        char *end = NULL;
        long days = strtol(period, &end, 10);
        if (end == period || *end != '\0' || days < 1 || days > CONTEST_DAYS_MAX) {
            snprintf(err, errcap,
                     "schedule_period: \"%s\" is neither week nor a number of days from 1 to %d",
                     period, CONTEST_DAYS_MAX);
            return HB_EINVAL;
        }
        out->days = (int)days;
    }
    if (prize < 0) {
        snprintf(err, errcap, "schedule_prize must be 0 or more");
        return HB_EINVAL;
    }
    out->prize = prize;
    const char *p = groups != NULL ? groups : "";
    char word[2 * COMMAND_ID_MAX + 16];
    size_t len = 0;
    while (text_word_next(&p, word, sizeof(word), &len)) {
        const char *w = p - len; /* the word as written, for messages */
        struct contest_schedule_group g;
        memset(&g, 0, sizeof(g));
        const char *id = NULL;
        if (strncmp(word, "telegram:", 9) == 0) {
            g.platform = COMMAND_PLATFORM_TELEGRAM;
            id = word + 9;
        } else if (strncmp(word, "discord:", 8) == 0) {
            g.platform = COMMAND_PLATFORM_DISCORD;
            id = word + 8;
        }
        /* A word too long for word[] is left "": no id, refused below. */
        size_t idlen = id != NULL ? strlen(id) : 0;
        const char *slash = id != NULL ? memchr(id, '/', idlen) : NULL;
        size_t scope_len = slash != NULL ? (size_t)(slash - id) : idlen;
        size_t chan_len = slash != NULL ? idlen - scope_len - 1 : 0;
        bool ok = id != NULL && schedule__id_ok(id, scope_len) &&
                  (slash == NULL || schedule__id_ok(slash + 1, chan_len)) &&
                  (g.platform != COMMAND_PLATFORM_DISCORD || slash != NULL);
        if (!ok) {
            snprintf(err, errcap,
                     "schedule: \"%.*s\" is not a group (telegram:<group>, "
                     "discord:<server>/<channel for the results>)",
                     (int)(len < 80 ? len : 80), w);
            return HB_EINVAL;
        }
        memcpy(g.scope_id, id, scope_len);
        if (slash != NULL)
            memcpy(g.channel_id, slash + 1, chan_len);
        else
            memcpy(g.channel_id, id, scope_len);
        for (size_t i = 0; i < out->n; i++) {
            if (out->groups[i].platform == g.platform &&
                strcmp(out->groups[i].scope_id, g.scope_id) == 0) {
                snprintf(err, errcap, "schedule: %.*s is named twice", (int)(len < 80 ? len : 80),
                         w);
                return HB_EINVAL;
            }
        }
        if (out->n == CONTEST_SCHEDULE_MAX) {
            snprintf(err, errcap, "schedule: more than %d groups", CONTEST_SCHEDULE_MAX);
            return HB_EINVAL;
        }
        out->groups[out->n++] = g;
    }
    return 0;
}

void contest_schedule_window(const struct contest_schedule *s, int64_t now_ms, int64_t *start,
                             int64_t *end)
{
    int64_t day = now_ms / CONTEST_DAY_MS;
    if (s->days <= 0) {
        int64_t monday = day - (day + 3) % 7; /* 1970-01-01 was a Thursday */
        *start = monday * CONTEST_DAY_MS;
        *end = (monday + 7) * CONTEST_DAY_MS;
        return;
    }
    int64_t first = day / s->days * s->days;
    *start = first * CONTEST_DAY_MS;
    *end = (first + s->days) * CONTEST_DAY_MS;
}
