/* One wall clock that tests can move. A service takes a `struct clock`
 * in its options; the zero value reads the real clock, and a test sets
 * now_ms to a function of its own to step time without sleeping. */
#ifndef HB_CLOCK_H
#define HB_CLOCK_H

#include <stdint.h>

struct clock {
    int64_t (*now_ms)(void *data); /* ms since the epoch; NULL: the real clock */
    void *data;                    /* passed to now_ms */
};

/** Milliseconds since the epoch by c (NULL or zero value: the real clock). */
int64_t clock_now_ms(const struct clock *c);

/** The real wall clock, in milliseconds since the epoch. */
int64_t clock_real_ms(void);

/** A clock a test moves by hand: point struct clock at clock_manual_read
 *  with data = &manual, then add to manual.ms. */
struct clock_manual {
    int64_t ms; /* the time it reads, ms since the epoch */
};

/** now_ms for a struct clock_manual passed as data. */
int64_t clock_manual_read(void *data);

#endif
