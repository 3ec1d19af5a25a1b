/* Live reload of the configuration file.
 *
 * The watcher listens for file-system events on the file's directory (so an
 * editor that writes a temporary file and renames it over the original, which
 * changes the inode, is still seen), keeps only events for the file's name,
 * and waits until the file's size and modification time have stayed the same
 * for one debounce period. Then it loads and validates the whole file on the
 * libuv thread pool, off the loop. Only a file that passes every check is
 * handed over; a broken, half-written or vanished file is logged (every
 * problem with its line) and the running configuration stays as it was. */
#ifndef HB_CONFIG_WATCH_H
#define HB_CONFIG_WATCH_H

#include "bot/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CONFIG_WATCH_DEBOUNCE_MS 250 /* default quiet period before a reload */

struct config_watch;

/** The outcome of one reload attempt. Everything in it is valid only during
 *  the callback, except config, whose ownership passes as described. */
struct config_watch_result {
    int status;                          /* 0 accepted; HB_ECONFIG refused (see problems); HB_EIO
                                            unreadable; HB_ECANCELED the watch was freed first */
    struct config *config;               /* status 0, main callback only: the new config;
                                            the callback owns it from now on */
    const struct config_change *changes; /* status 0: what differs from the
                                            previous config, in schema order */
    size_t nchanges;
    bool restart_required;                  /* some change applies only after a restart */
    const struct config_problems *problems; /* status HB_ECONFIG / HB_EIO: why */
    bool requested; /* started by config_watch_reload(), not by a file change */
};

typedef void (*config_watch_cb)(struct config_watch *w, const struct config_watch_result *r,
                                void *data);

/** Create a watcher for the file at path (copied). current is the config in
 *  use (borrowed): changes are computed against it. cb runs on the loop after
 *  every reload attempt, successful or not; on success it receives the new
 *  config and owns it. The watcher then compares later reloads with that new
 *  config, so the owner must keep each config it received alive until the
 *  next successful result or until config_watch_free(). Returns NULL when
 *  out of memory. Nothing is watched before config_watch_start(). */
struct config_watch *config_watch_new(uv_loop_t *loop, const char *path,
                                      const struct config *current, config_watch_cb cb, void *data);

/** Change the quiet period (default CONFIG_WATCH_DEBOUNCE_MS). */
void config_watch_debounce_set(struct config_watch *w, uint64_t ms);

/** Start watching the file's directory. Returns 0 or a libuv error. */
int config_watch_start(struct config_watch *w);

/** Stop watching; a load already running still completes and is reported.
 *  config_watch_start() may be called again. */
void config_watch_stop(struct config_watch *w);

/** Reload now, without waiting for a file event (SIGHUP, /admin reload).
 *  The main callback runs as for a file change (with requested set); then
 *  done, when not NULL, runs with the same result except that config is NULL
 *  (it belongs to the main callback). A request made while a load is running
 *  is served by a fresh load after it. Returns 0, or HB_ENOMEM. */
int config_watch_reload(struct config_watch *w, config_watch_cb done, void *data);

/** Stop and free the watcher. Pending config_watch_reload() callbacks run at
 *  once with HB_ECANCELED; the main callback is not called again. Handles
 *  close and memory is released as the loop runs on (after a load in flight
 *  finishes), so run the loop before uv_loop_close(). NULL is fine. */
void config_watch_free(struct config_watch *w);

struct reply;

/** Render a reload result for an admin (ephemeral): what changed, or every
 *  problem. */
void config_watch_result_reply(struct reply *r, const struct config_watch_result *res);

#endif
