/* The daemon: one libuv loop that owns the configuration, its watcher, the
 * signals, the router, the core services and the adapters, and that stops
 * gracefully: refuse new commands, let work in flight finish up to the
 * configured grace, close every handle, and return with the loop closed. */
#ifndef HB_DAEMON_H
#define HB_DAEMON_H

/* The exit code when a platform refused the bot's token (EX_CONFIG of
 * sysexits.h): waiting does not help, so the unit's
 * RestartPreventExitStatus names it and a supervisor sees the failure. */
#define DAEMON_EXIT_CONFIG 78

/** Run the daemon on the config file at `path` until it is stopped (SIGTERM,
 *  SIGINT, or every adapter ended). Returns the process exit code: 0 after a
 *  clean stop, 1 when it could not start, DAEMON_EXIT_CONFIG when a platform
 *  refused the bot's token. */
int daemon_run(const char *config_path);

#endif
