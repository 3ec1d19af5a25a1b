/* The daemon: one libuv loop that owns the configuration, its watcher, the
 * signals, the router, the core services and the adapters, and that stops
 * gracefully: refuse new commands, let work in flight finish up to the
 * configured grace, close every handle, and return with the loop closed. */
#ifndef HB_DAEMON_H
#define HB_DAEMON_H

/** Run the daemon on the config file at `path` until it is stopped (SIGTERM,
 *  SIGINT, or every adapter ended). Returns the process exit code: 0 after a
 *  clean stop, 1 when it could not start. */
int daemon_run(const char *config_path);

#endif
