/* sd_notify for the daemon (see service.h). libsystemd speaks the notify
 * protocol; this file decides when to speak. */
#include "bot/service.h"

#include "base/log.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static struct {
    uv_timer_t watchdog; /* WATCHDOG=1 at half the manager's interval */
    bool watchdog_open;  /* the timer needs a uv_close */
    bool ready;          /* READY=1 went out */
    bool reloading;      /* RELOADING=1 went out; READY=1 ends it */
    bool stopping;       /* STOPPING=1 went out */
} service;

static void service__send(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        log_warn("service.notify_failed", "error=%s", uv_strerror(rc));
}

static void service__watchdog_ping(uv_timer_t *t)
{
    (void)t;
    service__send("WATCHDOG=1");
}

static void service__watchdog_closed(uv_handle_t *h)
{
    (void)h;
    service.watchdog_open = false;
}

void service_ready(uv_loop_t *loop)
{
    if (service.ready || service.stopping)
        return;
    service.ready = true;
    service__send("READY=1\nSTATUS=running");
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return;
    /* Pings from the loop itself: a loop that stops turning stops them,
     * and the manager restarts the daemon. */
    uint64_t every_ms = usec / 2000u > 0 ? usec / 2000u : 1;
    if (uv_timer_init(loop, &service.watchdog) != 0)
        return;
    service.watchdog_open = true;
    uv_unref((uv_handle_t *)&service.watchdog);
    uv_timer_start(&service.watchdog, service__watchdog_ping, every_ms, every_ms);
    log_info("service.watchdog", "ping_ms=%llu", (unsigned long long)every_ms);
}

void service_reloading(void)
{
    if (!service.ready || service.stopping)
        return;
    /* systemd 253 and later want the monotonic time of the request too. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
    service.reloading = true;
    service__send(msg);
}

void service_reloaded(void)
{
    if (!service.reloading || service.stopping)
        return;
    service.reloading = false;
    service__send("READY=1\nSTATUS=running");
}

void service_stopping(void)
{
    if (service.stopping)
        return;
    service.stopping = true;
    if (service.ready)
        service__send("STOPPING=1\nSTATUS=stopping");
    if (service.watchdog_open && !uv_is_closing((uv_handle_t *)&service.watchdog))
        uv_close((uv_handle_t *)&service.watchdog, service__watchdog_closed);
}
