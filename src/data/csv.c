/*
 * csv.c - a streaming CSV/TSV reader and writer (RFC 4180 quoting).
 * Reads the file in large blocks, splits rows in place (no allocation per
 * field) and reports bad input as file:line:column; it never guesses a value.
 */
#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Rows are parsed out of one buffer refilled in blocks of this size; a
 * partial row at the end of a block is moved to the front and completed by
 * the next read. A row longer than the buffer doubles it. */
#define CR_CSV_BLOCK ((size_t)4 << 20)
#define CR_CSV_WBUF  ((size_t)1 << 20)

typedef struct cr_csv_fld {
    char  *s;      /* first content byte (after an opening quote) */
    char  *end;    /* one past the last content byte (closing quote, sep, CR/LF) */
    int    quoted;
    int    escapes; /* contains "" pairs to collapse */
} cr_csv_fld;

struct cr_csv {
    char       *path;
    char        sep;
    int         fd;
    int         eof;        /* read() returned 0 */
    char       *buf;        /* cap + 1 bytes: the spare one holds a final NUL */
    size_t      cap, len, pos;
    int64_t     base;       /* file offset of buf[0] */
    int64_t     stop;       /* rows starting at or after this offset are another shard's; -1 = none */
    int64_t     line;       /* line where the current row starts */
    int64_t     next_line;  /* line where the next row starts */
    int         has_row;
    int         ncols;
    char      **names;      /* (ncols) into name_blob */
    char       *name_blob;
    cr_csv_fld *f;          /* fields of the current row */
    size_t      nf, fcap;
    size_t     *flen;       /* (ncols) unquoted lengths of the current row */
};

/* ---- reading blocks ---------------------------------------------------- */

/* Move the unparsed tail to the front and fill the rest of the buffer (or
 * grow it when the tail already fills it). Sets c->eof at end of file. */
static cr_status csv_refill(cr_csv *c, cr_error *e) {
    size_t keep = c->len - c->pos;
    if (c->pos > 0 && keep > 0) memmove(c->buf, c->buf + c->pos, keep);
    c->base += (int64_t)c->pos;
    c->len = keep;
    c->pos = 0;
    if (c->len == c->cap) {
        size_t nc = c->cap * 2;
        char *nb = realloc(c->buf, nc + 1);
        if (!nb)
            return cr_err(e, CR_ERR_NOMEM, "%s:%lld: out of memory growing the row buffer to %zu bytes",
                          c->path, (long long)c->next_line, nc);
        c->buf = nb;
        c->cap = nc;
    }
    while (c->len < c->cap) {
        ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (r < 0) {
            if (errno == EINTR) continue;
            return cr_err(e, CR_ERR_IO, "%s: read failed: %s", c->path, strerror(errno));
        }
        if (r == 0) {
            c->eof = 1;
            break;
        }
        c->len += (size_t)r;
    }
    return CR_OK;
}

/* ---- splitting one row --------------------------------------------------- */

enum { ROW_DONE = 1, ROW_MORE = 0, ROW_ERROR = -1 };

static cr_status csv_add_field(cr_csv *c, char *s, char *end, int quoted, int escapes,
                               cr_error *e) {
    if (c->nf == c->fcap) {
        void *p = c->f;
        CR_TRY(cr_grow(&p, &c->fcap, c->nf + 1, sizeof *c->f, e));
        c->f = p;
    }
    /* fields are C strings to every reader after this: a NUL would cut one
     * short silently (and a NUL is the mark of UTF-16 or binary input) */
    if (memchr(s, 0, (size_t)(end - s)))
        return cr_err(e, CR_ERR_PARSE,
                      "%s:%lld:%zu: a NUL byte inside the field; the file must be UTF-8 text "
                      "(UTF-16 or binary data?)",
                      c->path, (long long)c->next_line, c->nf + 1);
    c->f[c->nf++] = (cr_csv_fld){s, end, quoted, escapes};
    return CR_OK;
}

static int64_t csv_count_nl(const char *s, const char *end) {
    int64_t n = 0;
    while (s < end && (s = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        n++;
        s++;
    }
    return n;
}

/* Split the row at p (up to end) into c->f without modifying it. Returns
 * ROW_DONE with *used (bytes including the line end) and *lines (newlines
 * consumed), ROW_MORE when the row continues past end and more input may
 * come, or ROW_ERROR. The fast path handles rows without quotes. */
static int csv_split(cr_csv *c, char *p, char *end, size_t *used, int64_t *lines,
                     cr_status *st, cr_error *e) {
    const char sep = c->sep;
    c->nf = 0;
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl && !memchr(p, '"', (size_t)(nl - p))) {
        char *rend = (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
        char *s = p;
        for (;;) {
            char *q = memchr(s, sep, (size_t)(rend - s));
            if (!q) break;
            if ((*st = csv_add_field(c, s, q, 0, 0, e)) != CR_OK) return ROW_ERROR;
            s = q + 1;
        }
        if ((*st = csv_add_field(c, s, rend, 0, 0, e)) != CR_OK) return ROW_ERROR;
        *used = (size_t)(nl + 1 - p);
        *lines = 1;
        return ROW_DONE;
    }
    if (!nl && !c->eof) return ROW_MORE;

    /* General path: quoted fields may hold separators, quotes and newlines. */
    int64_t nls = 0;
    char *q = p;
    for (;;) {
        if (q < end && *q == '"') {
            char *s = q + 1, *r = s;
            int esc = 0;
            for (;;) {
                r = memchr(r, '"', (size_t)(end - r));
                if (!r) {
                    if (!c->eof) return ROW_MORE;
                    *st = cr_err(e, CR_ERR_PARSE,
                           "%s:%lld:%zu: unterminated quoted field: the quote opened here is never "
                           "closed (a quote inside a quoted field must be doubled as \"\")",
                           c->path, (long long)(c->next_line + nls), c->nf + 1);
                    return ROW_ERROR;
                }
                if (r + 1 == end && !c->eof) return ROW_MORE; /* "" split by the block */
                if (r + 1 < end && r[1] == '"') {
                    esc = 1;
                    r += 2;
                    continue;
                }
                break;
            }
            nls += csv_count_nl(s, r);
            if ((*st = csv_add_field(c, s, r, 1, esc, e)) != CR_OK) return ROW_ERROR;
            q = r + 1;
            if (q == end) {
                if (!c->eof) return ROW_MORE;
                *used = (size_t)(q - p);
                break;
            }
            if (*q == sep) {
                q++;
                continue;
            }
            if (*q == '\n') {
                *used = (size_t)(q + 1 - p);
                nls++;
                break;
            }
            if (*q == '\r') {
                if (q + 1 == end && !c->eof) return ROW_MORE;
                if (q + 1 == end) {
                    *used = (size_t)(q + 1 - p);
                    break;
                }
                if (q[1] == '\n') {
                    *used = (size_t)(q + 2 - p);
                    nls++;
                    break;
                }
            }
            *st = cr_err(e, CR_ERR_PARSE,
                   "%s:%lld:%zu: expected a separator or the end of the line after a closing "
                   "quote, got '%c' (a quote inside a quoted field must be doubled as \"\")",
                   c->path, (long long)(c->next_line + nls), c->nf,
                   (*q >= 32 && *q < 127) ? *q : '?');
            return ROW_ERROR;
        }
        /* Unquoted: a quote in the middle is kept as a literal character. */
        char *r = q;
        while (r < end && *r != sep && *r != '\n') r++;
        if (r == end) {
            if (!c->eof) return ROW_MORE;
            if ((*st = csv_add_field(c, q, r, 0, 0, e)) != CR_OK) return ROW_ERROR;
            *used = (size_t)(r - p);
            break;
        }
        char *fe = (*r == '\n' && r > q && r[-1] == '\r') ? r - 1 : r;
        if ((*st = csv_add_field(c, q, fe, 0, 0, e)) != CR_OK) return ROW_ERROR;
        if (*r == sep) {
            q = r + 1;
            continue;
        }
        *used = (size_t)(r + 1 - p);
        nls++;
        break;
    }
    *lines = nls;
    return ROW_DONE;
}

/* NUL-terminate every field in place and collapse "" escapes. Each write
 * lands on a byte of the row already read (a separator, a quote, a line
 * end) or on the spare byte after the buffer. */
static void csv_terminate(cr_csv *c) {
    for (size_t i = 0; i < c->nf; i++) {
        cr_csv_fld *f = &c->f[i];
        if (f->escapes) {
            char *w = f->s;
            for (char *r = f->s; r < f->end; r++) {
                *w++ = *r;
                if (*r == '"') r++; /* skip the second quote of the pair */
            }
            f->end = w;
        }
        *f->end = 0;
    }
}

/* Read the next non-blank row into c->f (not yet terminated). *done = 1 at
 * end of file. */
static cr_status csv_read_row(cr_csv *c, int *done, cr_error *e) {
    *done = 0;
    for (;;) {
        /* Skip blank lines (a lone LF or CRLF): trailing newlines at the end
         * of a file are common and carry no row. */
        while (c->pos < c->len) {
            char ch = c->buf[c->pos];
            if (ch == '\n') {
                c->pos++;
                c->next_line++;
            } else if (ch == '\r' && c->pos + 1 < c->len && c->buf[c->pos + 1] == '\n') {
                c->pos += 2;
                c->next_line++;
            } else if (ch == '\r' && c->pos + 1 == c->len && !c->eof) {
                break; /* need the next byte to decide */
            } else {
                break;
            }
        }
        if (c->pos == c->len || (c->buf[c->pos] == '\r' && c->pos + 1 == c->len && !c->eof)) {
            if (c->eof) {
                *done = 1;
                return CR_OK;
            }
            CR_TRY(csv_refill(c, e));
            continue;
        }
        if (c->stop >= 0 && c->base + (int64_t)c->pos >= c->stop) {
            *done = 1; /* the next row starts in the next shard */
            return CR_OK;
        }
        size_t used = 0;
        int64_t lines = 0;
        cr_status st = CR_OK;
        int r = csv_split(c, c->buf + c->pos, c->buf + c->len, &used, &lines, &st, e);
        if (r == ROW_ERROR) return st;
        if (r == ROW_MORE) {
            CR_TRY(csv_refill(c, e));
            continue;
        }
        c->line = c->next_line;
        c->next_line += lines;
        c->pos += used;
        csv_terminate(c);
        return CR_OK;
    }
}

/* "a,b,c" for error messages, cut short for wide files. */
static void csv_header_list(const cr_csv *c, char *out, size_t n) {
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < c->ncols; i++) {
        int w = snprintf(out + k, n - k, "%s%s", i ? "," : "", c->names[i]);
        if (w < 0 || (size_t)w >= n - k) {
            if (n > 4) memcpy(out + n - 4, "...", 4);
            return;
        }
        k += (size_t)w;
    }
}

/* ---- opening ---------------------------------------------------------------- */

static char csv_sep_for(const char *path, char sep) {
    if (sep) return sep;
    size_t n = strlen(path);
    return (n >= 4 && strcmp(path + n - 4, ".tsv") == 0) ? '\t' : ',';
}

cr_status cr_csv_open(cr_csv **out, const char *path, char sep, cr_error *e) {
    *out = NULL;
    cr_status s = CR_OK;
    sep = csv_sep_for(path, sep);
    if (sep == '"' || sep == '\n' || sep == '\r')
        return cr_err(e, CR_ERR_ARG, "%s: a quote or line end cannot be the field separator", path);
    cr_csv *c = calloc(1, sizeof *c);
    if (!c) return cr_err(e, CR_ERR_NOMEM, "%s: out of memory", path);
    c->fd = -1;
    c->sep = sep;
    c->next_line = 1;
    c->stop = -1;
    c->path = strdup(path);
    if (!c->path) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    c->fd = open(path, O_RDONLY);
    if (c->fd < 0) {
        s = cr_err(e, CR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(c->fd, &st) != 0) {
        s = cr_err(e, CR_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    /* Small files get a buffer just big enough; large ones stream. */
    c->cap = CR_CSV_BLOCK;
    if (S_ISREG(st.st_mode) && (size_t)st.st_size + 64 < c->cap)
        c->cap = (size_t)st.st_size + 64;
    c->buf = malloc(c->cap + 1);
    if (!c->buf) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory for a %zu-byte read buffer", path, c->cap);
        goto fail;
    }
    if ((s = csv_refill(c, e)) != CR_OK) goto fail;
    if (c->len >= 3 && memcmp(c->buf, "\xEF\xBB\xBF", 3) == 0) c->pos = 3; /* UTF-8 BOM */
    /* A CR before the first LF and not followed by one: the line ends are
     * CR alone (classic Mac), which would read as one enormous header. */
    const char *cr = memchr(c->buf + c->pos, '\r', c->len - c->pos);
    const char *lf = memchr(c->buf + c->pos, '\n', c->len - c->pos);
    if (cr && (!lf || cr < lf) && cr + 1 < c->buf + c->len && cr[1] != '\n') {
        s = cr_err(e, CR_ERR_PARSE,
                   "%s:1: the lines end with a lone CR (classic Mac line ends); convert them to "
                   "LF or CRLF, e.g. tr '\\r' '\\n'",
                   path);
        goto fail;
    }

    int done = 0;
    if ((s = csv_read_row(c, &done, e)) != CR_OK) goto fail;
    if (done) {
        s = cr_err(e, CR_ERR_PARSE,
                   "%s: the file is empty: expected a header row naming the columns", path);
        goto fail;
    }
    if (c->nf > 65536) {
        s = cr_err(e, CR_ERR_LIMIT, "%s:1: the header has %zu columns (at most 65536)", path, c->nf);
        goto fail;
    }
    c->ncols = (int)c->nf;
    size_t blob = 0;
    for (size_t i = 0; i < c->nf; i++) blob += (size_t)(c->f[i].end - c->f[i].s) + 1;
    c->names = calloc((size_t)c->ncols, sizeof *c->names);
    c->name_blob = malloc(blob);
    c->flen = calloc((size_t)c->ncols, sizeof *c->flen);
    if (!c->names || !c->name_blob || !c->flen) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: out of memory reading the header", path);
        goto fail;
    }
    char *w = c->name_blob;
    for (int i = 0; i < c->ncols; i++) {
        size_t n = (size_t)(c->f[i].end - c->f[i].s);
        memcpy(w, c->f[i].s, n + 1);
        c->names[i] = w;
        w += n + 1;
    }
    for (int i = 0; i < c->ncols; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(c->names[i], c->names[j]) == 0) {
                s = cr_err(e, CR_ERR_PARSE,
                           "%s:%lld: duplicate column name '%.200s' (columns %d and %d); "
                           "column names must be unique",
                           path, (long long)c->line, c->names[i], j + 1, i + 1);
                goto fail;
            }
    *out = c;
    return CR_OK;
fail:
    cr_csv_close(c);
    return s;
}

void cr_csv_close(cr_csv *c) {
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    free(c->path);
    free(c->buf);
    free(c->names);
    free(c->name_blob);
    free(c->f);
    free(c->flen);
    free(c);
}

int cr_csv_ncols(const cr_csv *c) { return c->ncols; }

const char *cr_csv_colname(const cr_csv *c, int col) {
    CR_ASSERT(col >= 0 && col < c->ncols);
    return c->names[col];
}

int cr_csv_find(const cr_csv *c, const char *name) {
    for (int i = 0; i < c->ncols; i++)
        if (strcmp(c->names[i], name) == 0) return i;
    return -1;
}

const char *cr_csv_path(const cr_csv *c) { return c->path; }

int64_t cr_csv_line(const cr_csv *c) { return c->line; }

int64_t cr_csv_offset(const cr_csv *c) { return c->base + (int64_t)c->pos; }

int64_t cr_csv_size(const cr_csv *c) {
    struct stat st;
    return fstat(c->fd, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
}

cr_status cr_csv_next(cr_csv *c, int *done, cr_error *e) {
    c->has_row = 0;
    CR_TRY(csv_read_row(c, done, e));
    if (*done) return CR_OK;
    if (c->nf != (size_t)c->ncols) {
        char hdr[400];
        csv_header_list(c, hdr, sizeof hdr);
        return cr_err(e, CR_ERR_PARSE, "%s:%lld: expected %d fields (%s), got %zu", c->path,
                      (long long)c->line, c->ncols, hdr, c->nf);
    }
    for (int i = 0; i < c->ncols; i++) c->flen[i] = (size_t)(c->f[i].end - c->f[i].s);
    c->has_row = 1;
    return CR_OK;
}

cr_status cr_csv_shard(cr_csv *c, int index, int count, cr_error *e) {
    if (count <= 1) return CR_OK;
    CR_ASSERT(index >= 0 && index < count && c->line == 1 && c->stop < 0);
    struct stat sb;
    if (fstat(c->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        return cr_err(e, CR_ERR_ARG, "%s: only a regular file can be read in shards", c->path);
    int64_t start = c->base + (int64_t)c->pos, span = (int64_t)sb.st_size - start;
    int64_t lo = start + span * index / count;
    c->stop = start + span * (index + 1) / count;
    if (index == 0 || lo <= start) return CR_OK;
    /* The shard's first row starts after the first newline at or after
     * lo - 1; count the newlines before it so messages keep file lines. */
    if (lseek(c->fd, 0, SEEK_SET) != 0)
        return cr_err(e, CR_ERR_IO, "%s: cannot seek: %s", c->path, strerror(errno));
    int64_t off = 0, nl = 0, first = -1;
    while (first < 0) {
        ssize_t r = read(c->fd, c->buf, c->cap);
        if (r < 0) {
            if (errno == EINTR) continue;
            return cr_err(e, CR_ERR_IO, "%s: read failed: %s", c->path, strerror(errno));
        }
        if (r == 0) break;
        const char *b = c->buf, *end = c->buf + r;
        if (off + r > lo - 1) { /* count up to lo - 1, then look for the newline */
            const char *mid = b + (lo - 1 > off ? lo - 1 - off : 0);
            nl += csv_count_nl(b, mid);
            const char *q = memchr(mid, '\n', (size_t)(end - mid));
            if (q) first = off + (q - b) + 1, nl++;
        } else {
            nl += csv_count_nl(b, end);
        }
        off += r;
    }
    if (first < 0) first = (int64_t)sb.st_size; /* no row starts in this shard */
    if (lseek(c->fd, (off_t)first, SEEK_SET) != (off_t)first)
        return cr_err(e, CR_ERR_IO, "%s: cannot seek: %s", c->path, strerror(errno));
    c->base = first;
    c->pos = c->len = 0;
    c->eof = 0;
    c->next_line = 1 + nl;
    return CR_OK;
}

const char *cr_csv_field(const cr_csv *c, int col, size_t *len) {
    CR_ASSERT(c->has_row && col >= 0 && col < c->ncols);
    if (len) *len = c->flen[col];
    return c->f[col].s;
}

/* ---- numbers ----------------------------------------------------------------- */

static const double cr_csv_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Plain decimals ("3.5", "-12", "1260759144") with at most 15 significant
 * digits convert exactly: an integer below 2^53 divided by an exact power
 * of ten is one correctly rounded operation, so this agrees with strtod
 * bit for bit. Returns 0 when the text needs the general path. */
static int csv_fast_double(const char *s, const char *end, double *out) {
    int neg = 0;
    if (s < end && (*s == '-' || *s == '+')) neg = *s++ == '-';
    uint64_t m = 0;
    int digits = 0, frac = 0, seen_dot = 0;
    for (; s < end; s++) {
        if (*s >= '0' && *s <= '9') {
            m = m * 10 + (uint64_t)(*s - '0');
            if (++digits > 15) return 0;
            frac += seen_dot;
        } else if (*s == '.' && !seen_dot) {
            seen_dot = 1;
        } else {
            return 0;
        }
    }
    if (digits == 0) return 0;
    double v = (double)m / cr_csv_pow10[frac];
    *out = neg ? -v : v;
    return 1;
}

static int csv_is_space(char ch) { return ch == ' ' || ch == '\t'; }

int cr_parse_number(const char *s, size_t n, double *out, int *empty, const char **why) {
    const char *end = s + n;
    *empty = 0;
    *why = "expected a number";
    while (s < end && csv_is_space(*s)) s++;
    while (end > s && csv_is_space(end[-1])) end--;
    if (s == end) {
        *empty = 1;
        *out = 0;
        return 1;
    }
    if (csv_fast_double(s, end, out)) return 1;
    /* Only decimal notation: strtod would also take hex and "infinity". */
    for (const char *p = s; p < end; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '+' || *p == 'e' ||
              *p == 'E')) {
            char low[4] = {0};
            for (int i = 0; i < 3 && s + i < end; i++) low[i] = (char)(s[i] | 0x20);
            if (strcmp(low, "nan") == 0 || strcmp(low, "inf") == 0 ||
                (end - s > 1 && (*s == '-' || *s == '+') && ((s[1] | 0x20) == 'n' || (s[1] | 0x20) == 'i')))
                *why = "expected a finite number (NaN and infinity are not allowed)";
            return 0;
        }
    char tmp[128];
    if ((size_t)(end - s) >= sizeof tmp) return 0;
    memcpy(tmp, s, (size_t)(end - s));
    tmp[end - s] = 0;
    char *stop;
    errno = 0;
    double v = strtod(tmp, &stop);
    if (stop != tmp + (end - s)) return 0;
    if (errno == ERANGE && fabs(v) > 1.0) {
        *why = "expected a number that fits a double (overflow)";
        return 0;
    }
    if (!isfinite(v)) {
        *why = "expected a finite number";
        return 0;
    }
    *out = v; /* an underflow to 0 or a denormal is kept */
    return 1;
}

cr_status cr_csv_double(const cr_csv *c, int col, double *out, int *missing, cr_error *e) {
    size_t n;
    const char *s = cr_csv_field(c, col, &n), *why;
    int empty;
    if (missing) *missing = 0;
    if (cr_parse_number(s, n, out, &empty, &why)) {
        if (!empty) return CR_OK;
        if (missing) {
            *missing = 1;
            return CR_OK;
        }
        return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: expected a number in column '%.100s', got an empty field",
                      c->path, (long long)c->line, col + 1, c->names[col]);
    }
    return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: %s in column '%.100s', got '%.60s'%s", c->path,
                  (long long)c->line, col + 1, why, c->names[col], s, n > 60 ? "..." : "");
}

cr_status cr_csv_int64(const cr_csv *c, int col, int64_t *out, cr_error *e) {
    size_t n;
    const char *s0 = cr_csv_field(c, col, &n);
    const char *s = s0, *end = s0 + n;
    const char *why = "expected an integer";
    while (s < end && csv_is_space(*s)) s++;
    while (end > s && csv_is_space(end[-1])) end--;
    if (s == end)
        return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: expected an integer in column '%.100s', got an empty field",
                      c->path, (long long)c->line, col + 1, c->names[col]);
    int neg = 0;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    if (s == end) goto bad;
    /* Accumulate as a negative number so INT64_MIN parses too. */
    int64_t v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9') goto bad;
        int d = *s - '0';
        if (v < (INT64_MIN + d) / 10) {
            why = "expected an integer in the 64-bit range (overflow)";
            goto bad;
        }
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN) {
            why = "expected an integer in the 64-bit range (overflow)";
            goto bad;
        }
        v = -v;
    }
    *out = v;
    return CR_OK;
bad:
    return cr_err(e, CR_ERR_PARSE, "%s:%lld:%d: %s in column '%.100s', got '%.60s'%s", c->path,
                  (long long)c->line, col + 1, why, c->names[col], s0, n > 60 ? "..." : "");
}

/* ---- writer --------------------------------------------------------------------- */

struct cr_csv_writer {
    cr_atomic_file a;
    char           sep;
    char          *buf;
    size_t         len;
};

cr_status cr_csv_writer_open(cr_csv_writer **out, const char *path, char sep, cr_error *e) {
    *out = NULL;
    sep = csv_sep_for(path, sep);
    if (sep == '"' || sep == '\n' || sep == '\r')
        return cr_err(e, CR_ERR_ARG, "%s: a quote or line end cannot be the field separator", path);
    cr_csv_writer *w = calloc(1, sizeof *w);
    if (!w) return cr_err(e, CR_ERR_NOMEM, "%s: out of memory", path);
    w->sep = sep;
    w->buf = malloc(CR_CSV_WBUF);
    if (!w->buf) {
        free(w);
        return cr_err(e, CR_ERR_NOMEM, "%s: out of memory for the write buffer", path);
    }
    cr_status s = cr_atomic_open(&w->a, path, e);
    if (s != CR_OK) {
        free(w->buf);
        free(w);
        return s;
    }
    *out = w;
    return CR_OK;
}

static cr_status csv_flush(cr_csv_writer *w, cr_error *e) {
    cr_status s = cr_atomic_write(&w->a, w->buf, w->len, e);
    w->len = 0;
    return s;
}

static cr_status csv_put(cr_csv_writer *w, const char *p, size_t n, cr_error *e) {
    if (w->len + n > CR_CSV_WBUF) {
        CR_TRY(csv_flush(w, e));
        if (n > CR_CSV_WBUF) return cr_atomic_write(&w->a, p, n, e);
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return CR_OK;
}

/* A field is quoted only when it must be: it holds the separator, a quote
 * or a line end. A row of one empty field is written as "" so that it does
 * not read back as a blank line (which readers skip). */
cr_status cr_csv_write_row(cr_csv_writer *w, int n, const char *const *fields, cr_error *e) {
    for (int i = 0; i < n; i++) {
        const char *f = fields[i] ? fields[i] : "";
        size_t len = strlen(f);
        if (i) CR_TRY(csv_put(w, &w->sep, 1, e));
        int quote = n == 1 && len == 0;
        for (size_t k = 0; k < len && !quote; k++)
            quote = f[k] == w->sep || f[k] == '"' || f[k] == '\r' || f[k] == '\n';
        if (!quote) {
            CR_TRY(csv_put(w, f, len, e));
            continue;
        }
        CR_TRY(csv_put(w, "\"", 1, e));
        const char *p = f, *q;
        while ((q = memchr(p, '"', len - (size_t)(p - f))) != NULL) {
            CR_TRY(csv_put(w, p, (size_t)(q + 1 - p), e));
            CR_TRY(csv_put(w, "\"", 1, e)); /* double the quote */
            p = q + 1;
        }
        CR_TRY(csv_put(w, p, len - (size_t)(p - f), e));
        CR_TRY(csv_put(w, "\"", 1, e));
    }
    return csv_put(w, "\n", 1, e);
}

cr_status cr_csv_writer_commit(cr_csv_writer *w, cr_error *e) {
    cr_status s = csv_flush(w, e);
    if (s == CR_OK)
        s = cr_atomic_commit(&w->a, e);
    else
        cr_atomic_abort(&w->a);
    free(w->buf);
    free(w);
    return s;
}

void cr_csv_writer_abort(cr_csv_writer *w) {
    if (!w) return;
    cr_atomic_abort(&w->a);
    free(w->buf);
    free(w);
}
