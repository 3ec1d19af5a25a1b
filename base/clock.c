/* The wall clock. See base/clock.h. */
#include "base/clock.h"

#include <time.h>

int64_t clock_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_now_ms(const struct clock *c)
{
    if (c != NULL && c->now_ms != NULL)
        return c->now_ms(c->data);
    return clock_real_ms();
}

int64_t clock_manual_read(void *data)
{
    return ((const struct clock_manual *)data)->ms;
}
