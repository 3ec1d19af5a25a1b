/* A thin VFS over SQLite's default one that gathers the WAL's writes.
 *
 * SQLite writes each frame of a commit with two pwrite calls (its 24-byte
 * header, then the page), so a group commit of a few hundred pages makes
 * hundreds of system calls before its one fsync; on a virtual machine they
 * cost the store's thread more than the SQL does. Here the frames that
 * follow one another in the WAL are copied into a buffer and written with
 * one call when SQLite syncs the WAL, reads it, asks its size, truncates or
 * closes it, or writes elsewhere in it. Nothing reaches the disk later
 * than the sync that makes it durable, so crash safety is SQLite's own.
 *
 * Only with synchronous=FULL (store.c opens through this VFS then and only
 * then): every commit syncs the WAL before SQLite publishes it to readers
 * in the wal-index, so no reader, in this process or another, can look for
 * a frame still in the buffer. With synchronous=NORMAL a commit is
 * published without a sync, and the buffer would hide it from readers.
 *
 * Every other file (the database, its shared memory, journals) is opened
 * by the default VFS directly into the same slot, untouched.
 *
 * A commit's sync put off (sqlite_walbuf_defer): the store's thread may
 * answer the jobs that do not need durability (a generation's reservation)
 * between the commit and its sync. Within the COMMIT that asked, the WAL's
 * first sync is only noted, unless a WAL header was written since the last
 * sync (SQLite syncs a new header before the frames that follow it); any
 * later sync in it (a checkpoint's, before it copies frames into the
 * database) is real and covers the noted one. The store's thread then
 * makes the noted sync itself (sqlite_walbuf_sync_owed) before it starts
 * another transaction, so nothing is read from or written over frames
 * whose sync is still owed, and the next commit's sync is after it. */
#include "storage/sqlite_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WALBUF_VFS "haibot-walbuf"
/* The default VFS writes at most 0x1ffff bytes in one call (it masks the
 * length: os_unix.c, seekAndWriteFd), so a write is at most that. */
#define WALBUF_MAX 0x1ffff

struct walbuf_file {
    sqlite3_file base;  /* pMethods: walbuf_io */
    sqlite3_file *real; /* the default VFS's file, right after this struct */
    unsigned char *buf; /* frames not yet written, from offset `off` */
    size_t len;
    sqlite3_int64 off;
    bool header; /* a WAL header was written since the last sync */
    int owed;    /* flags of the sync put off, when this file is walbuf_owed */
};

/* The store's thread: a COMMIT may put its sync off (walbuf_defer), and the
 * WAL whose sync it put off. */
static _Thread_local bool walbuf_defer;
static _Thread_local struct walbuf_file *walbuf_owed;

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *walbuf_root;
static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;
static int walbuf_registered;
static atomic_ulong walbuf_writes; /* writes that reached the default VFS */

static struct walbuf_file *walbuf__of(sqlite3_file *f)
{
    return (struct walbuf_file *)f;
}

static int walbuf__flush(struct walbuf_file *f)
{
    if (f->len == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
    atomic_fetch_add(&walbuf_writes, 1);
    f->len = 0;
    return rc;
}

/* The buffer, made at the first write. */
static bool walbuf__ready(struct walbuf_file *f)
{
    if (f->buf == NULL)
        f->buf = malloc(WALBUF_MAX);
    return f->buf != NULL;
}

static int walbuf_write(sqlite3_file *pf, const void *data, int amt, sqlite3_int64 off)
{
    struct walbuf_file *f = walbuf__of(pf);
    if (off == 0)
        f->header = true;
    size_t n = (size_t)amt;
    bool append = f->len > 0 && off == f->off + (sqlite3_int64)f->len;
    if (!append || f->len + n > WALBUF_MAX) {
        /* Elsewhere in the file (a rewritten frame, a new header), or full:
         * what is gathered goes first, in order. */
        int rc = walbuf__flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (n > WALBUF_MAX || !walbuf__ready(f)) {
        /* Nothing is gathered here (see above): this one goes as it is. */
        atomic_fetch_add(&walbuf_writes, 1);
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    }
    if (f->len == 0)
        f->off = off;
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return SQLITE_OK;
}

static int walbuf_read(sqlite3_file *pf, void *data, int amt, sqlite3_int64 off)
{
    struct walbuf_file *f = walbuf__of(pf);
    int rc = walbuf__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, data, amt, off);
}

static int walbuf_sync(sqlite3_file *pf, int flags)
{
    struct walbuf_file *f = walbuf__of(pf);
    int rc = walbuf__flush(f);
    if (rc != SQLITE_OK)
        return rc;
    if (walbuf_defer && walbuf_owed == NULL && !f->header) {
        walbuf_owed = f; /* the first sync of the COMMIT: made after it */
        f->owed = flags;
        return SQLITE_OK;
    }
    rc = f->real->pMethods->xSync(f->real, flags);
    if (rc == SQLITE_OK) {
        f->header = false;
        if (walbuf_owed == f)
            walbuf_owed = NULL; /* covered */
    }
    return rc;
}

void sqlite_walbuf_defer(bool on)
{
    walbuf_defer = on;
}

bool sqlite_walbuf_owes(void)
{
    return walbuf_owed != NULL;
}

int sqlite_walbuf_sync_owed(void)
{
    struct walbuf_file *f = walbuf_owed;
    if (f == NULL)
        return SQLITE_OK;
    walbuf_owed = NULL;
    return f->real->pMethods->xSync(f->real, f->owed);
}

static int walbuf_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    struct walbuf_file *f = walbuf__of(pf);
    int rc = walbuf__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int walbuf_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
    struct walbuf_file *f = walbuf__of(pf);
    int rc = walbuf__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int walbuf_close(sqlite3_file *pf)
{
    struct walbuf_file *f = walbuf__of(pf);
    int rc = walbuf__flush(f);
    if (rc == SQLITE_OK && walbuf_owed == f)
        rc = sqlite_walbuf_sync_owed();
    int crc = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : crc;
}

static int walbuf_lock(sqlite3_file *pf, int level)
{
    struct walbuf_file *f = walbuf__of(pf);
    return f->real->pMethods->xLock(f->real, level);
}

static int walbuf_unlock(sqlite3_file *pf, int level)
{
    struct walbuf_file *f = walbuf__of(pf);
    return f->real->pMethods->xUnlock(f->real, level);
}

static int walbuf_check_reserved(sqlite3_file *pf, int *out)
{
    struct walbuf_file *f = walbuf__of(pf);
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int walbuf_file_control(sqlite3_file *pf, int op, void *arg)
{
    /* Some controls look at the file (its size hint, whether it moved):
     * they see what SQLite wrote. */
    struct walbuf_file *f = walbuf__of(pf);
    int rc = walbuf__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int walbuf_sector_size(sqlite3_file *pf)
{
    struct walbuf_file *f = walbuf__of(pf);
    return f->real->pMethods->xSectorSize(f->real);
}

static int walbuf_device(sqlite3_file *pf)
{
    struct walbuf_file *f = walbuf__of(pf);
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* Version 1: SQLite maps and shares memory only through the database file,
 * never through its WAL. */
static const sqlite3_io_methods walbuf_io = {
    .iVersion = 1,
    .xClose = walbuf_close,
    .xRead = walbuf_read,
    .xWrite = walbuf_write,
    .xTruncate = walbuf_truncate,
    .xSync = walbuf_sync,
    .xFileSize = walbuf_file_size,
    .xLock = walbuf_lock,
    .xUnlock = walbuf_unlock,
    .xCheckReservedLock = walbuf_check_reserved,
    .xFileControl = walbuf_file_control,
    .xSectorSize = walbuf_sector_size,
    .xDeviceCharacteristics = walbuf_device,
};

static int walbuf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *pf, int flags,
                       int *out_flags)
{
    (void)vfs;
    if ((flags & SQLITE_OPEN_WAL) == 0)
        return walbuf_root->xOpen(walbuf_root, name, pf, flags, out_flags);
    struct walbuf_file *f = walbuf__of(pf);
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    int rc = walbuf_root->xOpen(walbuf_root, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods != NULL)
            f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return rc;
    }
    f->base.pMethods = &walbuf_io;
    return SQLITE_OK;
}

/* The rest is the default VFS's. */
static int walbuf_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return walbuf_root->xDelete(walbuf_root, name, sync_dir);
}

static int walbuf_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return walbuf_root->xAccess(walbuf_root, name, flags, out);
}

static int walbuf_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return walbuf_root->xFullPathname(walbuf_root, name, n, out);
}

static void *walbuf_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return walbuf_root->xDlOpen(walbuf_root, name);
}

static void walbuf_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    walbuf_root->xDlError(walbuf_root, n, msg);
}

static void (*walbuf_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return walbuf_root->xDlSym(walbuf_root, h, sym);
}

static void walbuf_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    walbuf_root->xDlClose(walbuf_root, h);
}

static int walbuf_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return walbuf_root->xRandomness(walbuf_root, n, out);
}

static int walbuf_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return walbuf_root->xSleep(walbuf_root, us);
}

static int walbuf_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return walbuf_root->xCurrentTime(walbuf_root, out);
}

static int walbuf_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return walbuf_root->xGetLastError(walbuf_root, n, out);
}

static int walbuf_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return walbuf_root->xCurrentTimeInt64(walbuf_root, out);
}

static void walbuf__register(void)
{
    walbuf_root = sqlite3_vfs_find(NULL);
    if (walbuf_root == NULL || walbuf_root->iVersion < 2)
        return;
    walbuf_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct walbuf_file) + walbuf_root->szOsFile,
        .mxPathname = walbuf_root->mxPathname,
        .zName = WALBUF_VFS,
        .xOpen = walbuf_open,
        .xDelete = walbuf_delete,
        .xAccess = walbuf_access,
        .xFullPathname = walbuf_full_pathname,
        .xDlOpen = walbuf_dlopen,
        .xDlError = walbuf_dlerror,
        .xDlSym = walbuf_dlsym,
        .xDlClose = walbuf_dlclose,
        .xRandomness = walbuf_randomness,
        .xSleep = walbuf_sleep,
        .xCurrentTime = walbuf_current_time,
        .xGetLastError = walbuf_last_error,
        .xCurrentTimeInt64 = walbuf_current_time64,
    };
    walbuf_registered = sqlite3_vfs_register(&walbuf_vfs, 0) == SQLITE_OK;
}

const char *sqlite_walbuf_vfs(void)
{
    pthread_once(&walbuf_once, walbuf__register);
    return walbuf_registered ? WALBUF_VFS : NULL;
}

unsigned long sqlite_walbuf_writes(void)
{
    return atomic_load(&walbuf_writes);
}
