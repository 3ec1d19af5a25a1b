/* Live reload of the configuration file: fs events on the directory, a
 * debounce timer, and loads on the thread pool. See config_watch.h. */
#include "bot/config_watch.h"

#include "core/command.h"

#include "base/error.h"
#include "base/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A config_watch_reload() caller waiting for its result. */
struct config_waiter {
    config_watch_cb done;
    void *data;
    struct config_waiter *next;
};

/* What a file looked like at one moment; equal snapshots across a quiet
 * period mean the writer is done. The inode catches a rename over the file. */
struct config_snapshot {
    bool valid;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct timespec ctime;
};

struct config_watch {
    uv_loop_t *loop;
    char *path;                   /* the file */
    char *dir;                    /* its directory, watched */
    char *base;                   /* its name within dir, the events we keep */
    const struct config *current; /* baseline for diffs (borrowed) */
    config_watch_cb cb;
    void *data;
    uint64_t debounce_ms;

    uv_fs_event_t event;
    uv_timer_t timer;
    uv_work_t work;
    int open_handles; /* handles not yet closed */
    bool watching;    /* event handle started */
    bool busy;        /* a load is queued, running, or being delivered */
    bool delivering;  /* inside config__job_done: the work request is finished */
    bool again;       /* the timer fired while busy: wait again afterwards */
    bool closing;     /* config_watch_free() was called */

    struct config_waiter *waiting;  /* requests for the next load */
    struct config_waiter *inflight; /* requests the running load answers */

    /* Work item: inputs set on the loop, outputs set by the worker. */
    bool job_check_stable;       /* from a file event: require a stable file */
    struct config_snapshot snap; /* last seen snapshot (worker updates it) */
    int job_stat_rc;             /* stat failed: negative errno */
    bool job_unstable;           /* the file changed during the quiet period */
    int job_rc;                  /* config_load() result */
    struct config *job_config;   /* config_load() output */
    struct config_problems job_problems;
};

static void config__snapshot_take(struct config_snapshot *s, const struct stat *st)
{
    s->valid = true;
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    s->size = st->st_size;
    s->mtime = st->st_mtim;
    s->ctime = st->st_ctim;
}

static bool config__snapshot_same(const struct config_snapshot *s, const struct stat *st)
{
    return s->valid && s->dev == st->st_dev && s->ino == st->st_ino && s->size == st->st_size &&
           s->mtime.tv_sec == st->st_mtim.tv_sec && s->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           s->ctime.tv_sec == st->st_ctim.tv_sec && s->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* Runs on the thread pool: touches only the job fields and the path. */
static void config__job_run(uv_work_t *req)
{
    struct config_watch *w = req->data;
    struct stat st;
    w->job_stat_rc = 0;
    w->job_unstable = false;
    w->job_rc = 0;
    w->job_config = NULL;
    if (w->job_check_stable) {
        if (stat(w->path, &st) != 0) {
            w->job_stat_rc = -errno;
            w->snap.valid = false;
            return;
        }
        if (!config__snapshot_same(&w->snap, &st)) {
            config__snapshot_take(&w->snap, &st);
            w->job_unstable = true;
            return;
        }
    }
    w->job_rc = config_load(w->path, &w->job_config, &w->job_problems);
    if (w->job_check_stable) {
        /* Changed while being read: the next quiet period decides. */
        if (stat(w->path, &st) != 0 || !config__snapshot_same(&w->snap, &st)) {
            if (stat(w->path, &st) == 0)
                config__snapshot_take(&w->snap, &st);
            else
                w->snap.valid = false;
            config_free(w->job_config);
            w->job_config = NULL;
            w->job_unstable = true;
        }
    }
}

static void config__waiters_answer(struct config_waiter **list, struct config_watch *w,
                                   const struct config_watch_result *r)
{
    struct config_watch_result copy = *r;
    copy.config = NULL;
    copy.requested = true;
    struct config_waiter *it = *list;
    *list = NULL;
    while (it != NULL) {
        struct config_waiter *next = it->next;
        if (it->done != NULL)
            it->done(w, &copy, it->data);
        free(it);
        it = next;
    }
}

/* Changes collected for one result. Instance names are copied: the callback
 * may free the old config (which names removed instances) before it is done
 * reading the list. */
struct config_change_list {
    struct config_change *items;
    size_t count;
    size_t cap;
    bool restart_required;
    int rc;
};

static void config__change_collect(const struct config_change *ch, void *data)
{
    struct config_change_list *l = data;
    if (l->rc < 0)
        return;
    if (l->count == l->cap) {
        size_t cap = l->cap == 0 ? 8 : l->cap * 2;
        struct config_change *grown = realloc(l->items, cap * sizeof(*grown));
        if (grown == NULL) {
            l->rc = HB_ENOMEM;
            return;
        }
        l->items = grown;
        l->cap = cap;
    }
    struct config_change copy = *ch;
    if (ch->instance != NULL) {
        copy.instance = strdup(ch->instance);
        if (copy.instance == NULL) {
            l->rc = HB_ENOMEM;
            return;
        }
    }
    l->items[l->count++] = copy;
    if (!ch->live)
        l->restart_required = true;
}

static void config__change_list_free(struct config_change_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free((char *)(uintptr_t)l->items[i].instance);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static void config__changes_log(const struct config_change_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        const struct config_change *ch = &l->items[i];
        static const char *const kinds[] = {"changed", "added", "removed"};
        log_info("config.change", "section=%s instance=%s key=%s what=%s apply=%s", ch->section,
                 ch->instance != NULL ? ch->instance : "-", ch->key != NULL ? ch->key : "-",
                 kinds[ch->kind], ch->live ? "live" : "restart");
    }
}

/* Hands a finished load to the main callback and the waiting requesters. */
static void config__result_deliver(struct config_watch *w, bool requested)
{
    struct config_watch_result r;
    struct config_change_list changes;
    memset(&r, 0, sizeof(r));
    memset(&changes, 0, sizeof(changes));
    r.requested = requested;
    r.status = w->job_rc;
    if (w->job_rc == 0 && w->current != NULL) {
        config_diff(w->current, w->job_config, config__change_collect, &changes);
        if (changes.rc < 0) {
            r.status = changes.rc;
            config_free(w->job_config);
            w->job_config = NULL;
        }
    }
    if (r.status == 0) {
        r.config = w->job_config;
        r.changes = changes.items;
        r.nchanges = changes.count;
        r.restart_required = changes.restart_required;
        w->current = w->job_config;
        w->job_config = NULL;
        log_info("config.reload", "file=%s ok=1 changed=%zu restart_required=%d", w->path,
                 changes.count, changes.restart_required ? 1 : 0);
        config__changes_log(&changes);
    } else {
        r.problems = &w->job_problems;
        config_problems_log(&w->job_problems);
        log_error("config.reload", "file=%s ok=0 problems=%zu error=%s hint=%s", w->path,
                  w->job_problems.count, hb_strerror(r.status),
                  "keeping the current configuration");
    }
    if (w->cb != NULL)
        w->cb(w, &r, w->data);
    config__waiters_answer(&w->inflight, w, &r);
    config__change_list_free(&changes);
    config_problems_free(&w->job_problems);
}

static void config__job_done(uv_work_t *req, int status);
static void config__timer_fire(uv_timer_t *timer);

static void config__job_queue(struct config_watch *w, bool check_stable)
{
    w->job_check_stable = check_stable;
    w->work.data = w;
    int rc = uv_queue_work(w->loop, &w->work, config__job_run, config__job_done);
    if (rc < 0) {
        /* Only fails for bad arguments; report it rather than hang waiters. */
        log_error("config.reload", "file=%s error=%s", w->path, uv_strerror(rc));
        struct config_watch_result r;
        memset(&r, 0, sizeof(r));
        r.status = rc;
        config__waiters_answer(&w->inflight, w, &r);
        return;
    }
    w->busy = true;
}

/* Starts whatever was asked for while the last load ran. */
static void config__next(struct config_watch *w)
{
    if (w->closing || w->busy)
        return;
    if (w->waiting != NULL) {
        w->inflight = w->waiting;
        w->waiting = NULL;
        config__job_queue(w, false);
        return;
    }
    if (w->again) {
        w->again = false;
        uv_timer_start(&w->timer, config__timer_fire, w->debounce_ms, 0);
    }
}

static void config__maybe_release(struct config_watch *w)
{
    if (!w->closing || w->busy || w->open_handles > 0)
        return;
    config_problems_free(&w->job_problems);
    free(w->path);
    free(w->dir);
    free(w->base);
    free(w);
}

static void config__job_done(uv_work_t *req, int status)
{
    struct config_watch *w = req->data;
    bool requested = !w->job_check_stable;
    if (w->closing || status < 0) {
        w->busy = false;
        config_free(w->job_config);
        w->job_config = NULL;
        config_problems_free(&w->job_problems);
        config__maybe_release(w);
        return;
    }
    if (w->job_stat_rc < 0) {
        /* Deleted or mid-rename: the rename that ends it is another event. */
        log_warn("config.watch", "file=%s error=%s hint=%s", w->path, uv_strerror(w->job_stat_rc),
                 "keeping the current configuration");
    } else if (w->job_unstable) {
        /* Still being written: wait another quiet period (unless stopped). */
        if (w->watching)
            uv_timer_start(&w->timer, config__timer_fire, w->debounce_ms, 0);
    } else {
        /* Callbacks may ask for another reload or free the watcher: busy
         * stays set until the job fields are no longer in use. */
        w->delivering = true;
        config__result_deliver(w, requested);
        w->delivering = false;
    }
    w->busy = false;
    if (w->closing) {
        config__maybe_release(w);
        return;
    }
    config__next(w);
}

static void config__timer_fire(uv_timer_t *timer)
{
    struct config_watch *w = timer->data;
    if (w->busy) {
        w->again = true;
        return;
    }
    config__job_queue(w, true);
}

static void config__event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    struct config_watch *w = handle->data;
    (void)events;
    if (status < 0) {
        log_warn("config.watch", "dir=%s error=%s", w->dir, uv_strerror(status));
        return;
    }
    if (filename != NULL && strcmp(filename, w->base) != 0)
        return;
    /* Each event restarts the quiet period. */
    if (!w->busy)
        w->snap.valid = false; /* a running load owns the snapshot */
    uv_timer_start(&w->timer, config__timer_fire, w->debounce_ms, 0);
}

static int config__path_split(struct config_watch *w, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        w->dir = strdup(".");
        w->base = strdup(path);
    } else if (slash == path) {
        w->dir = strdup("/");
        w->base = strdup(slash + 1);
    } else {
        w->dir = strndup(path, (size_t)(slash - path));
        w->base = strdup(slash + 1);
    }
    if (w->dir == NULL || w->base == NULL)
        return HB_ENOMEM;
    return w->base[0] == '\0' ? HB_EINVAL : 0;
}

struct config_watch *config_watch_new(uv_loop_t *loop, const char *path,
                                      const struct config *current, config_watch_cb cb, void *data)
{
    struct config_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->loop = loop;
    w->current = current;
    w->cb = cb;
    w->data = data;
    w->debounce_ms = CONFIG_WATCH_DEBOUNCE_MS;
    config_problems_init(&w->job_problems);
    w->path = strdup(path);
    if (w->path == NULL || config__path_split(w, path) < 0)
        goto fail;
    /* Both handles are initialised up front so that free always has the same
     * two handles to close. */
    if (uv_fs_event_init(loop, &w->event) < 0)
        goto fail;
    w->event.data = w;
    w->open_handles++;
    if (uv_timer_init(loop, &w->timer) < 0) {
        config_watch_free(w);
        return NULL;
    }
    w->timer.data = w;
    w->open_handles++;
    return w;
fail:
    free(w->path);
    free(w->dir);
    free(w->base);
    free(w);
    return NULL;
}

void config_watch_debounce_set(struct config_watch *w, uint64_t ms)
{
    w->debounce_ms = ms;
}

int config_watch_start(struct config_watch *w)
{
    if (w->watching)
        return 0;
    int rc = uv_fs_event_start(&w->event, config__event, w->dir, 0);
    if (rc < 0) {
        log_error("config.watch", "dir=%s error=%s", w->dir, uv_strerror(rc));
        return rc;
    }
    w->watching = true;
    return 0;
}

void config_watch_stop(struct config_watch *w)
{
    if (w->watching)
        uv_fs_event_stop(&w->event);
    w->watching = false;
    w->again = false;
    uv_timer_stop(&w->timer);
}

int config_watch_reload(struct config_watch *w, config_watch_cb done, void *data)
{
    struct config_waiter *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return HB_ENOMEM;
    it->done = done;
    it->data = data;
    struct config_waiter **tail = &w->waiting;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = it;
    config__next(w);
    return 0;
}

static void config__handle_closed(uv_handle_t *handle)
{
    struct config_watch *w = handle->data;
    w->open_handles--;
    config__maybe_release(w);
}

void config_watch_free(struct config_watch *w)
{
    if (w == NULL || w->closing)
        return;
    config_watch_stop(w);
    w->closing = true;
    struct config_watch_result r;
    memset(&r, 0, sizeof(r));
    r.status = HB_ECANCELED;
    config__waiters_answer(&w->inflight, w, &r);
    config__waiters_answer(&w->waiting, w, &r);
    /* A queued load that has not started yet is dropped; a running one
     * completes and its result is discarded in config__job_done. */
    if (w->busy && !w->delivering)
        uv_cancel((uv_req_t *)&w->work);
    int handles = w->open_handles;
    if (handles >= 1)
        uv_close((uv_handle_t *)&w->event, config__handle_closed);
    if (handles >= 2)
        uv_close((uv_handle_t *)&w->timer, config__handle_closed);
}

/* Render a reload result for an admin: what changed, or every problem. */
void config_watch_result_reply(struct reply *r, const struct config_watch_result *res)
{
    if (res->status == 0) {
        if (res->nchanges == 0) {
            reply_text(r, true, "bot.conf reloaded: nothing changed.");
            return;
        }
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (mem == NULL)
            return;
        fprintf(mem, "bot.conf reloaded: %zu change(s).", res->nchanges);
        for (size_t i = 0; i < res->nchanges; i++) {
            const struct config_change *c = &res->changes[i];
            fprintf(mem, "\n  [%s%s%s%s] %s: %s", c->section, c->instance != NULL ? " \"" : "",
                    c->instance != NULL ? c->instance : "", c->instance != NULL ? "\"" : "",
                    c->key != NULL                   ? c->key
                    : c->kind == CONFIG_CHANGE_ADDED ? "(added)"
                                                     : "(removed)",
                    c->live ? "applied" : "takes effect after a restart");
        }
        fclose(mem);
        reply_text(r, true, "%s", text);
        free(text);
        return;
    }
    if (res->status == HB_ECANCELED) {
        reply_text(r, true, "The reload was cancelled: the bot is stopping.");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (mem == NULL)
        return;
    if (res->problems != NULL)
        config_problems_print(res->problems, mem);
    fclose(mem);
    reply_text(r, true, "bot.conf has problems; still running on the previous settings:\n%s", text);
    free(text);
}
