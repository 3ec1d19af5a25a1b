/* Which regular expressions a filter rule may use: the ones glibc's
 * compiler and matcher handle in bounded time. See filter_pattern_check in
 * core/filter.h. */
#include "core/filter.h"
#include "core/filter_internal.h"

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define FILTER_PATTERN_DEPTH 32 /* nested groups */

/* Skip a bracket expression starting at p ('['); returns the byte after
 * its ']' or NULL when it never closes. A ']' first (after an optional
 * '^') is a member, and [:class:], [.coll.] and [=equiv=] nest. */
static const char *filter_pattern_bracket(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    for (; *p != '\0'; p++) {
        if (*p == ']')
            return p + 1;
        if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            char kind = p[1];
            const char *q = p + 2;
            while (*q != '\0' && !(q[0] == kind && q[1] == ']'))
                q++;
            if (*q == '\0')
                return NULL;
            p = q + 1;
        }
    }
    return NULL;
}

int filter_pattern_check(const char *pattern, char *err, size_t errcap)
{
    if (pattern == NULL || pattern[0] == '\0') {
        filter__err(err, errcap, "no pattern");
        return HB_EINVAL;
    }
    size_t len = strlen(pattern);
    if (len > FILTER_PATTERN_MAX) {
        filter__err(err, errcap, "pattern is %zu bytes, more than %d", len, FILTER_PATTERN_MAX);
        return HB_EINVAL;
    }
    /* One pass over the ERE. For the item before a quantifier we know
     * whether it is there at all, whether it is itself a quantifier, and
     * whether it is a group that holds one. */
    bool holds[FILTER_PATTERN_DEPTH + 1] = {false}; /* group at each depth holds a quantifier */
    int depth = 0;
    long repeats = 0; /* the largest counts of all {n,m} bounds so far, added up */
    enum { PAT_NONE, PAT_ATOM, PAT_GROUP_QUANTIFIED, PAT_QUANT } prev = PAT_NONE;
    for (const char *p = pattern; *p != '\0';) {
        size_t at = (size_t)(p - pattern) + 1; /* 1-based, for the message */
        char c = *p;
        if (c == '*' || c == '+' || c == '?' || c == '{') {
            const char *q = p + 1;
            if (c == '{') {
                /* {n}, {n,}, {,m} or {n,m}: digits and one comma up to '}'.
                 * Anything else is no bound (regcomp refuses it or reads
                 * a literal '{'). */
                long n = 0, most = 0;
                bool comma = false;
                for (; (*q >= '0' && *q <= '9') || (*q == ',' && !comma); q++) {
                    if (*q == ',') {
                        comma = true;
                        n = 0;
                        continue;
                    }
                    if (n <= FILTER_PATTERN_REPEAT_MAX)
                        n = n * 10 + (*q - '0');
                    if (n > most)
                        most = n;
                }
                if (*q != '}') {
                    prev = PAT_ATOM;
                    p++;
                    continue;
                }
                q++;
                /* Each bound copies its item up to `most` times, in the
                 * compiled form and in the matcher's states. */
                repeats += most;
                if (repeats > FILTER_PATTERN_REPEAT_MAX) {
                    filter__err(err, errcap, "bounds add up to more than %d (at byte %zu)",
                                FILTER_PATTERN_REPEAT_MAX, at);
                    return HB_EINVAL;
                }
            }
            if (prev == PAT_NONE) {
                filter__err(err, errcap, "quantifier '%c' at byte %zu repeats nothing", c, at);
                return HB_EINVAL;
            }
            if (prev == PAT_QUANT) {
                filter__err(err, errcap,
                            "stacked quantifier '%c' at byte %zu (a quantifier of a quantifier)", c,
                            at);
                return HB_EINVAL;
            }
            if (prev == PAT_GROUP_QUANTIFIED && c != '?') {
                filter__err(err, errcap,
                            "nested quantifier '%c' at byte %zu repeats a group that repeats "
                            "(write it without the inner or the outer repetition)",
                            c, at);
                return HB_EINVAL;
            }
            holds[depth] = true;
            prev = PAT_QUANT;
            p = q;
            continue;
        }
        switch (c) {
        case '\\':
            if (p[1] >= '1' && p[1] <= '9') {
                filter__err(err, errcap, "back-reference at byte %zu", at);
                return HB_EINVAL;
            }
            if (p[1] == '\0')
                return 0; /* regcomp says what is wrong with it */
            p += 2;
            prev = PAT_ATOM;
            continue;
        case '[': {
            const char *q = filter_pattern_bracket(p);
            if (q == NULL)
                return 0; /* regcomp says what is wrong with it */
            p = q;
            prev = PAT_ATOM;
            continue;
        }
        case '(':
            if (depth == FILTER_PATTERN_DEPTH) {
                filter__err(err, errcap, "groups nest deeper than %d", FILTER_PATTERN_DEPTH);
                return HB_EINVAL;
            }
            holds[++depth] = false;
            prev = PAT_NONE;
            break;
        case ')':
            if (depth == 0) {
                prev = PAT_ATOM; /* regcomp refuses it, or reads a literal */
                break;
            }
            prev = holds[depth] ? PAT_GROUP_QUANTIFIED : PAT_ATOM;
            if (holds[depth])
                holds[depth - 1] = true;
            depth--;
            break;
        case '|':
            prev = PAT_NONE;
            break;
        default:
            prev = PAT_ATOM;
            break;
        }
        p++;
    }
    return 0; /* an unclosed '(' is for regcomp to report */
}
