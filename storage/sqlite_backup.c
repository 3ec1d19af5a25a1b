/* A consistent copy of a live database through SQLite's online backup API.
 * See store_backup_file in storage/store.h.
 *
 * Copying the file while the daemon runs misses whatever sits in the WAL
 * and may catch a page mid-write. The backup API reads every page inside
 * one read transaction, so the copy is one committed state, and it writes
 * the copy beside its final name first so a reader never sees half. */
#include "storage/store.h"

#include "base/error.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Flush a finished file to disk; fsync on a read-only descriptor is enough. */
static int store__fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return HB_EIO;
    int rc = fsync(fd) == 0 ? 0 : HB_EIO;
    close(fd);
    return rc;
}

int store_backup_file(const char *src_path, const char *dst_path)
{
    sqlite3 *src = NULL;
    sqlite3 *dst = NULL;
    sqlite3_backup *bk = NULL;
    char *tmp = NULL;
    int rc = 0;
    if (src_path == NULL || dst_path == NULL || *dst_path == '\0')
        return HB_EINVAL;
    if (access(dst_path, F_OK) == 0)
        return HB_EEXISTS;
    size_t n = strlen(dst_path) + sizeof(".partial");
    tmp = malloc(n);
    if (tmp == NULL)
        return HB_ENOMEM;
    snprintf(tmp, n, "%s.partial", dst_path);
    unlink(tmp);
    if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = HB_ESTORAGE;
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = HB_EIO;
        goto out;
    }
    bk = sqlite3_backup_init(dst, "main", src, "main");
    if (bk == NULL) {
        rc = HB_ESTORAGE;
        goto out;
    }
    /* All pages in one step: one read transaction, one consistent state.
     * BUSY or LOCKED means a writer holds a lock for a moment; try again. */
    int step;
    for (int tries = 0;; tries++) {
        step = sqlite3_backup_step(bk, -1);
        if ((step != SQLITE_BUSY && step != SQLITE_LOCKED) || tries >= 100)
            break;
        sqlite3_sleep(50);
    }
    if (sqlite3_backup_finish(bk) != SQLITE_OK || step != SQLITE_DONE) {
        bk = NULL;
        rc = step == SQLITE_NOTADB ? HB_ESTORAGE : HB_EIO;
        goto out;
    }
    bk = NULL;
    /* The copy is a plain file on its own: no WAL beside it. */
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = HB_EIO;
        goto out;
    }
    if (sqlite3_close(dst) != SQLITE_OK) {
        rc = HB_EIO;
        goto out;
    }
    dst = NULL;
    rc = store__fsync_path(tmp);
    if (rc == 0 && rename(tmp, dst_path) != 0)
        rc = HB_EIO;
out:
    if (bk != NULL)
        sqlite3_backup_finish(bk);
    if (dst != NULL)
        sqlite3_close(dst);
    if (src != NULL)
        sqlite3_close(src);
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    return rc;
}
