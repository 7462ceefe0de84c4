/*
 * io.c - checked file I/O: whole-file reads, read-only maps, atomic writes.
 * Every writer goes through a temporary name and a rename, so a crash or a
 * kill never leaves half a file where a good one was. Messages name the path.
 */
#define _GNU_SOURCE
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

cr_status cr_read_file(const char *path, char **out, size_t *len, cr_error *e) {
    if (out) *out = NULL;
    if (len) *len = 0;
    if (!path || !out) return cr_err(e, CR_ERR_ARG, "cr_read_file: path and out must not be NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return cr_err(e, CR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return cr_err(e, CR_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    size_t n = (size_t)st.st_size;
    char *buf = cr_alloc(n + 1);
    if (!buf) {
        fclose(f);
        return cr_err(e, CR_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    if (n && fread(buf, 1, n, f) != n) {
        int err = errno;
        fclose(f);
        cr_free(buf);
        return cr_err(e, CR_ERR_IO, "%s: read failed: %s", path,
                      err ? strerror(err) : "short read");
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return CR_OK;
}

cr_status cr_mmap_open(cr_mmap *m, const char *path, cr_error *e) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return cr_err(e, CR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return cr_err(e, CR_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cr_err(e, CR_ERR_IO, "%s: not a regular file", path);
    }
    m->size = (size_t)st.st_size;
    if (m->size == 0) {
        close(fd);
        return CR_OK; /* callers check sizes; an empty map has data == NULL */
    }
    void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        m->size = 0;
        return cr_err(e, CR_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    }
    m->data = p;
    return CR_OK;
}

void cr_mmap_close(cr_mmap *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

/* Crash-consistency test hook: with CROSSREC_CRASH_AT=k in the
 * environment, the process kills itself with SIGKILL at the k-th step of
 * any atomic write (create, each write, flush+fsync, rename, directory
 * fsync), so a test can stop a run between every pair of file operations.
 * Unset (always, outside tests) it costs one branch. */
static void cr_crash_point(void) {
    static _Atomic long at = -1, n = 0;
    long k = atomic_load(&at);
    if (k < 0) {
        const char *v = getenv("CROSSREC_CRASH_AT");
        k = v && *v ? strtol(v, NULL, 10) : 0;
        atomic_store(&at, k);
    }
    if (k > 0 && atomic_fetch_add(&n, 1) + 1 == k) raise(SIGKILL);
}

/* "-" is standard output: written in place (a stream has nothing to rename
 * over), and a->tmp stays empty to say so. Anything else must be absent or
 * a regular file: a rename onto /dev/stdout (a symlink), a device or a FIFO
 * would replace the node itself, so that is an error, never done. */
cr_status cr_atomic_open(cr_atomic_file *a, const char *path, cr_error *e) {
    memset(a, 0, sizeof *a);
    if (strlen(path) >= sizeof a->path)
        return cr_err(e, CR_ERR_ARG, "%s: path too long", path);
    snprintf(a->path, sizeof a->path, "%s", path);
    if (!strcmp(path, "-")) {
        a->f = stdout;
        return CR_OK;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return cr_err(e, CR_ERR_IO, "%s: exists and is not a regular file (%s); files are "
                      "written to a new name and renamed over the old, so give a file path, "
                      "or - for standard output", path,
                      S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory"
                                                                                   : "a device, pipe or socket");
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f)
        return cr_err(e, CR_ERR_IO, "%s: cannot create: %s", a->tmp, strerror(errno));
    cr_crash_point();
    return CR_OK;
}

cr_status cr_atomic_write(cr_atomic_file *a, const void *buf, size_t n, cr_error *e) {
    if (!a->f) return cr_err(e, CR_ERR_ARG, "%s: write after close", a->path);
    if (n && fwrite(buf, 1, n, a->f) != n)
        return cr_err(e, CR_ERR_IO, "%s: write failed: %s", a->tmp[0] ? a->tmp : "standard output",
                      strerror(errno));
    cr_crash_point();
    return CR_OK;
}

cr_status cr_atomic_commit(cr_atomic_file *a, cr_error *e) {
    if (!a->f) return cr_err(e, CR_ERR_ARG, "%s: commit after close", a->path);
    if (!a->tmp[0]) { /* standard output */
        a->f = NULL;
        if (fflush(stdout) != 0 || ferror(stdout))
            return cr_err(e, CR_ERR_IO, "standard output: write failed: %s", strerror(errno));
        return CR_OK;
    }
    int bad = fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int err = errno;
    bad |= fclose(a->f) != 0;
    a->f = NULL;
    if (bad) {
        unlink(a->tmp);
        return cr_err(e, CR_ERR_IO, "%s: write failed: %s", a->tmp, strerror(err));
    }
    cr_crash_point();
    if (rename(a->tmp, a->path) != 0) {
        err = errno;
        unlink(a->tmp);
        return cr_err(e, CR_ERR_IO, "%s: rename failed: %s", a->path, strerror(err));
    }
    cr_crash_point();
    /* the rename itself survives a power cut only once the directory is synced */
    char dir[sizeof a->path];
    snprintf(dir, sizeof dir, "%s", a->path);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return CR_OK;
}

void cr_atomic_abort(cr_atomic_file *a) {
    if (a->f && !a->tmp[0]) { /* standard output: what was written stays written */
        fflush(stdout);
        a->f = NULL;
    } else if (a->f) {
        fclose(a->f);
        a->f = NULL;
        unlink(a->tmp);
    }
}

cr_status cr_write_file_atomic(const char *path, const void *buf, size_t n, cr_error *e) {
    if (!path || (!buf && n))
        return cr_err(e, CR_ERR_ARG, "cr_write_file_atomic: path (and buf when n > 0) must not be NULL");
    cr_atomic_file a;
    CR_TRY(cr_atomic_open(&a, path, e));
    cr_status s = cr_atomic_write(&a, buf, n, e);
    if (s != CR_OK) {
        cr_atomic_abort(&a);
        return s;
    }
    return cr_atomic_commit(&a, e);
}

cr_status cr_mkdirs(const char *path, cr_error *e) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return cr_err(e, CR_ERR_ARG, "%s: path too long", path);
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return cr_err(e, CR_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return cr_err(e, CR_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    return CR_OK;
}

bool cr_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

double cr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
