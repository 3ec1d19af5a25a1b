/* The daemon under a service manager (systemd, Type=notify): it says when
 * it is ready, reloading and stopping, and pings the watchdog from the
 * loop, over the notify socket systemd names in NOTIFY_SOCKET. Without
 * NOTIFY_SOCKET (a terminal, most tests) every call does nothing.
 *
 * The notify socket is one per process, so the state here is too: one
 * daemon per process uses these calls, from its loop's thread. */
#ifndef HB_SERVICE_H
#define HB_SERVICE_H

#include <uv.h>

/** Every adapter started: send READY=1, and start pinging the watchdog
 *  (WATCHDOG=1 at half of WATCHDOG_USEC) when the manager asked for it.
 *  The ping timer is a handle on loop until service_stopping(). */
void service_ready(uv_loop_t *loop);

/** A reload (SIGHUP) begins: RELOADING=1. */
void service_reloading(void);

/** A reload attempt ended (applied or refused): READY=1 again, when
 *  service_reloading() announced one. */
void service_reloaded(void);

/** The daemon is stopping: STOPPING=1, and the watchdog timer closes (the
 *  manager stops watching a stopping service). Safe to call more than
 *  once, and before service_ready(). */
void service_stopping(void);

#endif
