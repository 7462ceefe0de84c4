/*
 * yaml.c - libyaml's event stream folded into a tree of positioned nodes,
 * and the typed getters that turn them into config values with messages
 * naming file:line:col and the field path. Never interprets keys itself,
 * never prints, and never accepts a value it had to guess at.
 */
#include "yaml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* Deeper nesting than this is certainly not a config, and recursion over
 * hostile input must not overflow the stack. */
#define CR_YAML_MAX_DEPTH 64

/* ---- the document: a bump arena that owns every node and string ---------------- */

typedef struct cr_yaml_chunk {
    struct cr_yaml_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} cr_yaml_chunk;

struct cr_yaml_doc {
    cr_yaml_chunk *chunks;
    cr_yaml_node  *root;
    const char    *file;
};

static void *arena_alloc(cr_yaml_doc *d, size_t n) {
    n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    cr_yaml_chunk *c = d->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = d->chunks;
        c->used = 0;
        c->cap = cap;
        d->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strdup(cr_yaml_doc *d, const char *s, size_t len) {
    char *p = arena_alloc(d, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = 0;
    }
    return p;
}

void cr_yaml_free(cr_yaml_doc *d) {
    if (!d) return;
    for (cr_yaml_chunk *c = d->chunks, *nx; c; c = nx) {
        nx = c->next;
        free(c);
    }
    free(d);
}

const cr_yaml_node *cr_yaml_root(const cr_yaml_doc *d) { return d ? d->root : NULL; }

/* ---- parsing ------------------------------------------------------------------- */

typedef struct {
    yaml_parser_t p;
    cr_yaml_doc  *d;
    cr_error     *e;
} cr_yaml_ctx;

static cr_status next_event(cr_yaml_ctx *x, yaml_event_t *ev) {
    if (yaml_parser_parse(&x->p, ev)) return CR_OK;
    const yaml_parser_t *p = &x->p;
    const char *problem = p->problem ? p->problem : "unknown problem";
    if (p->context)
        return cr_err(x->e, CR_ERR_PARSE, "%s:%zu:%zu: malformed YAML: %s %s (line %zu:%zu)",
                      x->d->file, p->problem_mark.line + 1, p->problem_mark.column + 1,
                      problem, p->context, p->context_mark.line + 1,
                      p->context_mark.column + 1);
    return cr_err(x->e, CR_ERR_PARSE, "%s:%zu:%zu: malformed YAML: %s", x->d->file,
                  p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
}

static cr_yaml_node *new_node(cr_yaml_ctx *x, cr_yaml_kind kind, const yaml_event_t *ev) {
    cr_yaml_node *n = arena_alloc(x->d, sizeof *n);
    if (!n) {
        cr_err(x->e, CR_ERR_NOMEM, "%s: out of memory reading YAML", x->d->file);
        return NULL;
    }
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    n->file = x->d->file;
    return n;
}

static cr_status reject_anchor(cr_yaml_ctx *x, const yaml_event_t *ev, const void *anchor) {
    if (!anchor && ev->type != YAML_ALIAS_EVENT) return CR_OK;
    return cr_err(x->e, CR_ERR_PARSE,
                  "%s:%zu:%zu: anchors and aliases (&name, *name) are not supported; "
                  "write the value out in full",
                  x->d->file, ev->start_mark.line + 1, ev->start_mark.column + 1);
}

/* Parse the node whose first event is *ev (consumed and deleted here). */
static cr_status parse_node(cr_yaml_ctx *x, yaml_event_t *ev, int depth, cr_yaml_node **out);

static cr_status parse_children(cr_yaml_ctx *x, cr_yaml_node *n, int depth) {
    int is_map = n->kind == CR_YAML_MAP;
    yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    cr_yaml_node **items = NULL, **keys = NULL;
    size_t cap_i = 0, cap_k = 0, cnt = 0;
    cr_status s = CR_OK;
    yaml_event_t ev;
    for (;;) {
        if ((s = next_event(x, &ev))) goto fail;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            break;
        }
        cr_yaml_node *key = NULL, *val = NULL;
        if (is_map) {
            if (ev.type != YAML_SCALAR_EVENT) {
                s = cr_err(x->e, CR_ERR_PARSE, "%s:%zu:%zu: mapping keys must be plain "
                           "strings, not a sequence or mapping", x->d->file,
                           ev.start_mark.line + 1, ev.start_mark.column + 1);
                yaml_event_delete(&ev);
                goto fail;
            }
            if (ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                strcmp((const char *)ev.data.scalar.value, "<<") == 0) {
                s = cr_err(x->e, CR_ERR_PARSE, "%s:%zu:%zu: merge keys (<<) are not "
                           "supported; write the keys out in full", x->d->file,
                           ev.start_mark.line + 1, ev.start_mark.column + 1);
                yaml_event_delete(&ev);
                goto fail;
            }
            if ((s = parse_node(x, &ev, depth + 1, &key))) goto fail;
            for (size_t i = 0; i < cnt; i++)
                if (strcmp(keys[i]->value, key->value) == 0) {
                    s = cr_err(x->e, CR_ERR_PARSE, "%s:%d:%d: duplicate key '%s' (first "
                               "at line %d)", x->d->file, key->line, key->col, key->value,
                               keys[i]->line);
                    goto fail;
                }
            if ((s = next_event(x, &ev))) goto fail;
        }
        if ((s = parse_node(x, &ev, depth + 1, &val))) goto fail;
        if ((s = cr_grow((void **)&items, &cap_i, cnt + 1, sizeof *items, x->e))) goto fail;
        items[cnt] = val;
        if (is_map) {
            if ((s = cr_grow((void **)&keys, &cap_k, cnt + 1, sizeof *keys, x->e))) goto fail;
            keys[cnt] = key;
        }
        cnt++;
        if (cnt > INT_MAX / 2) {
            s = cr_err(x->e, CR_ERR_LIMIT, "%s:%d:%d: too many items", x->d->file, n->line,
                       n->col);
            goto fail;
        }
    }
    /* Move the child arrays into the arena so the tree has one owner. */
    n->n = (int)cnt;
    if (cnt) {
        n->items = arena_alloc(x->d, cnt * sizeof *items);
        if (is_map) n->keys = arena_alloc(x->d, cnt * sizeof *keys);
        if (!n->items || (is_map && !n->keys)) {
            s = cr_err(x->e, CR_ERR_NOMEM, "%s: out of memory reading YAML", x->d->file);
            goto fail;
        }
        memcpy(n->items, items, cnt * sizeof *items);
        if (is_map) memcpy(n->keys, keys, cnt * sizeof *keys);
    }
fail:
    free(items);
    free(keys);
    return s;
}

static cr_status parse_node(cr_yaml_ctx *x, yaml_event_t *ev, int depth, cr_yaml_node **out) {
    cr_status s = CR_OK;
    cr_yaml_node *n = NULL;
    if (depth > CR_YAML_MAX_DEPTH) {
        s = cr_err(x->e, CR_ERR_LIMIT, "%s:%zu:%zu: nesting deeper than %d levels",
                   x->d->file, ev->start_mark.line + 1, ev->start_mark.column + 1,
                   CR_YAML_MAX_DEPTH);
        goto done;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if ((s = reject_anchor(x, ev, ev->data.scalar.anchor))) goto done;
        if (!(n = new_node(x, CR_YAML_SCALAR, ev))) { s = CR_ERR_NOMEM; goto done; }
        n->len = ev->data.scalar.length;
        n->value = arena_strdup(x->d, (const char *)ev->data.scalar.value, n->len);
        if (!n->value) { s = cr_err(x->e, CR_ERR_NOMEM, "out of memory reading YAML"); goto done; }
        /* Block scalars (| and >) are explicit strings too: never null. */
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int map = ev->type == YAML_MAPPING_START_EVENT;
        const void *anchor = map ? (const void *)ev->data.mapping_start.anchor
                                 : (const void *)ev->data.sequence_start.anchor;
        if ((s = reject_anchor(x, ev, anchor))) goto done;
        if (!(n = new_node(x, map ? CR_YAML_MAP : CR_YAML_SEQ, ev))) { s = CR_ERR_NOMEM; goto done; }
        yaml_event_delete(ev);
        *out = n;
        return parse_children(x, n, depth);
    }
    case YAML_ALIAS_EVENT:
        s = reject_anchor(x, ev, NULL);
        goto done;
    default:
        s = cr_err(x->e, CR_ERR_INTERNAL, "%s:%zu:%zu: unexpected YAML event %d", x->d->file,
                   ev->start_mark.line + 1, ev->start_mark.column + 1, (int)ev->type);
        goto done;
    }
done:
    yaml_event_delete(ev);
    *out = n;
    return s;
}

static cr_status load(cr_yaml_doc **out, const char *text, size_t len, const char *name,
                      cr_error *e) {
    *out = NULL;
    cr_yaml_doc *d = calloc(1, sizeof *d);
    if (!d) return cr_err(e, CR_ERR_NOMEM, "out of memory reading %s", name);
    cr_yaml_ctx x = {.d = d, .e = e};
    cr_status s = CR_OK;
    yaml_event_t ev;
    int parser_ok = 0;
    if (!(d->file = arena_strdup(d, name, strlen(name)))) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory reading %s", name);
        goto fail;
    }
    if (!yaml_parser_initialize(&x.p)) {
        s = cr_err(e, CR_ERR_NOMEM, "%s: could not initialise the YAML parser", name);
        goto fail;
    }
    parser_ok = 1;
    yaml_parser_set_input_string(&x.p, (const unsigned char *)text, len);
    if ((s = next_event(&x, &ev))) goto fail; /* STREAM_START */
    yaml_event_delete(&ev);
    if ((s = next_event(&x, &ev))) goto fail;
    if (ev.type == YAML_STREAM_END_EVENT) {
        /* An empty file is a null document: sections then report as missing. */
        yaml_event_delete(&ev);
        yaml_event_t fake = {.type = YAML_SCALAR_EVENT};
        if (!(d->root = new_node(&x, CR_YAML_SCALAR, &fake))) { s = CR_ERR_NOMEM; goto fail; }
        d->root->value = "";
        goto done;
    }
    CR_ASSERT(ev.type == YAML_DOCUMENT_START_EVENT);
    yaml_event_delete(&ev);
    if ((s = next_event(&x, &ev))) goto fail;
    if ((s = parse_node(&x, &ev, 0, &d->root))) goto fail;
    if ((s = next_event(&x, &ev))) goto fail; /* DOCUMENT_END */
    yaml_event_delete(&ev);
    if ((s = next_event(&x, &ev))) goto fail;
    if (ev.type != YAML_STREAM_END_EVENT) {
        s = cr_err(e, CR_ERR_PARSE, "%s:%zu:%zu: expected a single YAML document, found a "
                   "second one (---)", name, ev.start_mark.line + 1, ev.start_mark.column + 1);
        yaml_event_delete(&ev);
        goto fail;
    }
    yaml_event_delete(&ev);
done:
    yaml_parser_delete(&x.p);
    *out = d;
    return CR_OK;
fail:
    if (parser_ok) yaml_parser_delete(&x.p);
    cr_yaml_free(d);
    return s;
}

cr_status cr_yaml_load_string(cr_yaml_doc **out, const char *text, const char *name,
                              cr_error *e) {
    return load(out, text, strlen(text), name ? name : "<string>", e);
}

cr_status cr_yaml_load(cr_yaml_doc **out, const char *path, cr_error *e) {
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    CR_TRY(cr_read_file(path, &buf, &len, e));
    cr_status s = load(out, buf, len, path, e);
    cr_free(buf);
    return s;
}

/* ---- navigation and messages ------------------------------------------------------ */

const cr_yaml_node *cr_yaml_get(const cr_yaml_node *map, const char *key) {
    if (!map || map->kind != CR_YAML_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->value, key) == 0) return map->items[i];
    return NULL;
}

int cr_yaml_is_null(const cr_yaml_node *n) {
    if (!n || n->kind != CR_YAML_SCALAR || n->quoted) return 0;
    const char *v = n->value;
    return v[0] == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

const char *cr_yaml_kind_name(cr_yaml_kind k) {
    switch (k) {
    case CR_YAML_SCALAR: return "a string";
    case CR_YAML_SEQ: return "a sequence";
    case CR_YAML_MAP: return "a mapping";
    }
    return "an unknown node";
}

void cr_yaml_path_index(char *buf, size_t cap, const char *parent, int64_t index) {
    snprintf(buf, cap, "%s[%lld]", parent ? parent : "", (long long)index);
}

void cr_yaml_path_key(char *buf, size_t cap, const char *parent, const char *key) {
    if (parent && *parent) snprintf(buf, cap, "%s.%s", parent, key);
    else snprintf(buf, cap, "%s", key);
}

cr_status cr_yaml_err(cr_error *e, cr_status s, const cr_yaml_node *n, const char *path,
                      const char *fmt, ...) {
    if (!e) return s;
    char pos[600] = "", body[900];
    if (n) snprintf(pos, sizeof pos, "%.500s:%d:%d: ", n->file, n->line, n->col);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (path && *path) return cr_err(e, s, "%s%.200s: %s", pos, path, body);
    return cr_err(e, s, "%s%s", pos, body);
}

/* "'abc'" for scalars (shortened), "a mapping" otherwise: the "got" of messages. */
static const char *describe(const cr_yaml_node *n, char *buf, size_t cap) {
    if (n->kind != CR_YAML_SCALAR) return cr_yaml_kind_name(n->kind);
    if (cr_yaml_is_null(n)) return "nothing";
    if (n->len > 60) snprintf(buf, cap, "'%.57s...'", n->value);
    else snprintf(buf, cap, "'%s'", n->value);
    return buf;
}

cr_status cr_yaml_check_keys(const cr_yaml_node *map, const char *const *allowed,
                             const char *path, cr_error *e) {
    if (!map) return CR_OK;
    CR_TRY(cr_yaml_expect(map, CR_YAML_MAP, path, e));
    for (int i = 0; i < map->n; i++) {
        const char *k = map->keys[i]->value;
        int ok = 0;
        for (int j = 0; allowed[j] && !ok; j++) ok = strcmp(allowed[j], k) == 0;
        if (ok) continue;
        char list[700];
        size_t used = 0;
        list[0] = 0;
        for (int j = 0; allowed[j] && used < sizeof list; j++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "",
                                     allowed[j]);
        return cr_yaml_err(e, CR_ERR_CONFIG, map->keys[i], path,
                           "unknown key '%.100s'; expected one of: %s", k, list);
    }
    return CR_OK;
}

cr_status cr_yaml_expect(const cr_yaml_node *n, cr_yaml_kind kind, const char *path,
                         cr_error *e) {
    char buf[80];
    if (!n) return cr_yaml_err(e, CR_ERR_CONFIG, NULL, path, "missing (expected %s)",
                               cr_yaml_kind_name(kind));
    if (n->kind == kind) return CR_OK;
    return cr_yaml_err(e, CR_ERR_CONFIG, n, path, "expected %s, got %s",
                       cr_yaml_kind_name(kind), describe(n, buf, sizeof buf));
}

/* ---- scalar conversions ----------------------------------------------------------- */

cr_status cr_yaml_as_str(const cr_yaml_node *n, const char *path, char *out, size_t cap,
                         cr_error *e) {
    CR_TRY(cr_yaml_expect(n, CR_YAML_SCALAR, path, e));
    if (n->len >= cap)
        return cr_yaml_err(e, CR_ERR_CONFIG, n, path, "expected at most %zu characters, got %zu",
                           cap - 1, n->len);
    memcpy(out, n->value, n->len + 1);
    return CR_OK;
}

static void describe_int_range(char *buf, size_t cap, int64_t lo, int64_t hi) {
    /* INT_MIN / INT_MAX as bounds mean "no bound" for int-typed fields. */
    int open_hi = hi == INT64_MAX || hi == INT_MAX;
    int open_lo = lo == INT64_MIN || lo == INT_MIN;
    if (open_lo && open_hi) snprintf(buf, cap, "an integer");
    else if (lo == 1 && open_hi) snprintf(buf, cap, "a positive integer");
    else if (lo == 0 && open_hi) snprintf(buf, cap, "a non-negative integer");
    else if (open_hi) snprintf(buf, cap, "an integer >= %lld", (long long)lo);
    else if (open_lo) snprintf(buf, cap, "an integer <= %lld", (long long)hi);
    else snprintf(buf, cap, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
}

cr_status cr_yaml_as_int(const cr_yaml_node *n, const char *path, int64_t lo, int64_t hi,
                         int64_t *out, cr_error *e) {
    char want[96], got[80];
    describe_int_range(want, sizeof want, lo, hi);
    if (!n || n->kind != CR_YAML_SCALAR || cr_yaml_is_null(n))
        return n ? cr_yaml_err(e, CR_ERR_CONFIG, n, path, "expected %s, got %s", want,
                               describe(n, got, sizeof got))
                 : cr_yaml_err(e, CR_ERR_CONFIG, NULL, path, "missing (expected %s)", want);
    const char *s = n->value;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    int digits = s[i] != 0;
    for (; s[i]; i++) digits &= s[i] >= '0' && s[i] <= '9';
    errno = 0;
    long long v = digits ? strtoll(s, NULL, 10) : 0;
    if (!digits || errno == ERANGE || v < lo || v > hi)
        return cr_yaml_err(e, CR_ERR_CONFIG, n, path, "expected %s, got %s", want,
                           describe(n, got, sizeof got));
    *out = v;
    return CR_OK;
}

cr_status cr_yaml_as_double(const cr_yaml_node *n, const char *path, double lo, double hi,
                            double *out, cr_error *e) {
    char want[128], got[80];
    if (isinf(lo) && isinf(hi)) snprintf(want, sizeof want, "a number");
    else if (isinf(hi)) snprintf(want, sizeof want, "a number >= %g", lo);
    else if (isinf(lo)) snprintf(want, sizeof want, "a number <= %g", hi);
    else snprintf(want, sizeof want, "a number in [%g, %g]", lo, hi);
    if (!n || n->kind != CR_YAML_SCALAR || cr_yaml_is_null(n))
        return n ? cr_yaml_err(e, CR_ERR_CONFIG, n, path, "expected %s, got %s", want,
                               describe(n, got, sizeof got))
                 : cr_yaml_err(e, CR_ERR_CONFIG, NULL, path, "missing (expected %s)", want);
    const char *s = n->value;
    /* strtod also takes "inf", "nan" and hex floats; a config number starts
     * with a digit or a point after an optional sign. */
    const char *t = (s[0] == '-' || s[0] == '+') ? s + 1 : s;
    int ok = (t[0] >= '0' && t[0] <= '9') || (t[0] == '.' && t[1] >= '0' && t[1] <= '9');
    ok = ok && !(t[0] == '0' && (t[1] == 'x' || t[1] == 'X'));
    char *end = NULL;
    double v = ok ? strtod(s, &end) : 0;
    if (!ok || *end || !isfinite(v) || v < lo || v > hi)
        return cr_yaml_err(e, CR_ERR_CONFIG, n, path, "expected %s, got %s", want,
                           describe(n, got, sizeof got));
    *out = v;
    return CR_OK;
}

cr_status cr_yaml_as_bool(const cr_yaml_node *n, const char *path, int *out, cr_error *e) {
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    char got[80];
    if (n && n->kind == CR_YAML_SCALAR)
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(n->value, yes[i]) == 0) { *out = 1; return CR_OK; }
            if (strcasecmp(n->value, no[i]) == 0) { *out = 0; return CR_OK; }
        }
    if (!n) return cr_yaml_err(e, CR_ERR_CONFIG, NULL, path, "missing (expected true or false)");
    return cr_yaml_err(e, CR_ERR_CONFIG, n, path, "expected true or false, got %s",
                       describe(n, got, sizeof got));
}

cr_status cr_yaml_as_enum(const cr_yaml_node *n, const char *path, const char *const *names,
                          int *out, cr_error *e) {
    char list[600], got[80];
    if (n && n->kind == CR_YAML_SCALAR)
        for (int i = 0; names[i]; i++)
            if (strcmp(n->value, names[i]) == 0) {
                *out = i;
                return CR_OK;
            }
    size_t used = 0;
    list[0] = 0;
    for (int j = 0; names[j] && used < sizeof list; j++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "",
                                 names[j]);
    if (!n) return cr_yaml_err(e, CR_ERR_CONFIG, NULL, path, "missing (expected one of: %s)", list);
    return cr_yaml_err(e, CR_ERR_CONFIG, n, path, "expected one of: %s; got %s", list,
                       describe(n, got, sizeof got));
}

/* ---- keyed getters -------------------------------------------------------------------- */

/* Find `key`; 1 = present (*v set, *kp = "path.key"), 0 = use the default,
 * <0 never: errors are returned through *s. */
static int lookup(const cr_yaml_node *map, const char *key, const char *path, int required,
                  const cr_yaml_node **v, char *kp, size_t kpcap, cr_status *s, cr_error *e) {
    cr_yaml_path_key(kp, kpcap, path, key);
    *s = CR_OK;
    if (map && map->kind != CR_YAML_MAP) {
        *s = cr_yaml_expect(map, CR_YAML_MAP, path, e);
        return 0;
    }
    *v = cr_yaml_get(map, key);
    if (*v && !cr_yaml_is_null(*v)) return 1;
    if (required) {
        if (*v) *s = cr_yaml_err(e, CR_ERR_CONFIG, *v, kp, "a value is required");
        else *s = cr_yaml_err(e, CR_ERR_CONFIG, map, path, "missing required key '%s'", key);
    }
    return 0;
}

#define CR_YAML_LOOKUP()                                                            \
    const cr_yaml_node *v = NULL;                                                   \
    char kp[256];                                                                   \
    cr_status s;                                                                    \
    int present = lookup(map, key, path, required, &v, kp, sizeof kp, &s, e);       \
    if (s) return s

cr_status cr_yaml_str(const cr_yaml_node *map, const char *key, const char *path,
                      int required, const char *def, char *out, size_t cap, cr_error *e) {
    CR_YAML_LOOKUP();
    if (present) return cr_yaml_as_str(v, kp, out, cap, e);
    snprintf(out, cap, "%s", def ? def : "");
    return CR_OK;
}

cr_status cr_yaml_int(const cr_yaml_node *map, const char *key, const char *path,
                      int required, int64_t def, int64_t lo, int64_t hi, int64_t *out,
                      cr_error *e) {
    CR_YAML_LOOKUP();
    if (present) return cr_yaml_as_int(v, kp, lo, hi, out, e);
    *out = def;
    return CR_OK;
}

cr_status cr_yaml_int32(const cr_yaml_node *map, const char *key, const char *path,
                        int required, int def, int lo, int hi, int *out, cr_error *e) {
    int64_t x;
    CR_TRY(cr_yaml_int(map, key, path, required, def, lo, hi, &x, e));
    *out = (int)x;
    return CR_OK;
}

cr_status cr_yaml_double(const cr_yaml_node *map, const char *key, const char *path,
                         int required, double def, double lo, double hi, double *out,
                         cr_error *e) {
    CR_YAML_LOOKUP();
    if (present) return cr_yaml_as_double(v, kp, lo, hi, out, e);
    *out = def;
    return CR_OK;
}

cr_status cr_yaml_bool(const cr_yaml_node *map, const char *key, const char *path,
                       int required, int def, int *out, cr_error *e) {
    CR_YAML_LOOKUP();
    if (present) return cr_yaml_as_bool(v, kp, out, e);
    *out = def;
    return CR_OK;
}

cr_status cr_yaml_enum(const cr_yaml_node *map, const char *key, const char *path,
                       int required, int def, const char *const *names, int *out,
                       cr_error *e) {
    CR_YAML_LOOKUP();
    if (present) return cr_yaml_as_enum(v, kp, names, out, e);
    *out = def;
    return CR_OK;
}

/* The sequence under `key`, checked against cap; NULL with *n = 0 if absent. */
static cr_status list_node(const cr_yaml_node *map, const char *key, const char *path,
                           int required, int cap, const cr_yaml_node **seq, char *kp,
                           size_t kpcap, int *n, cr_error *e) {
    cr_status s;
    *seq = NULL;
    *n = 0;
    const cr_yaml_node *v = NULL;
    if (!lookup(map, key, path, required, &v, kp, kpcap, &s, e)) return s;
    CR_TRY(cr_yaml_expect(v, CR_YAML_SEQ, kp, e));
    if (v->n > cap)
        return cr_yaml_err(e, CR_ERR_CONFIG, v, kp, "expected at most %d items, got %d", cap,
                           v->n);
    *seq = v;
    return CR_OK;
}

cr_status cr_yaml_ints(const cr_yaml_node *map, const char *key, const char *path,
                       int required, int64_t lo, int64_t hi, int64_t *out, int cap, int *n,
                       cr_error *e) {
    const cr_yaml_node *seq;
    char kp[256], ip[300];
    CR_TRY(list_node(map, key, path, required, cap, &seq, kp, sizeof kp, n, e));
    for (int i = 0; seq && i < seq->n; i++) {
        cr_yaml_path_index(ip, sizeof ip, kp, i);
        CR_TRY(cr_yaml_as_int(seq->items[i], ip, lo, hi, &out[i], e));
    }
    *n = seq ? seq->n : 0;
    return CR_OK;
}

cr_status cr_yaml_doubles(const cr_yaml_node *map, const char *key, const char *path,
                          int required, double lo, double hi, double *out, int cap, int *n,
                          cr_error *e) {
    const cr_yaml_node *seq;
    char kp[256], ip[300];
    CR_TRY(list_node(map, key, path, required, cap, &seq, kp, sizeof kp, n, e));
    for (int i = 0; seq && i < seq->n; i++) {
        cr_yaml_path_index(ip, sizeof ip, kp, i);
        CR_TRY(cr_yaml_as_double(seq->items[i], ip, lo, hi, &out[i], e));
    }
    *n = seq ? seq->n : 0;
    return CR_OK;
}

cr_status cr_yaml_strs(const cr_yaml_node *map, const char *key, const char *path,
                       int required, char *out, size_t width, int cap, int *n, cr_error *e) {
    const cr_yaml_node *seq;
    char kp[256], ip[300];
    CR_TRY(list_node(map, key, path, required, cap, &seq, kp, sizeof kp, n, e));
    for (int i = 0; seq && i < seq->n; i++) {
        cr_yaml_path_index(ip, sizeof ip, kp, i);
        CR_TRY(cr_yaml_as_str(seq->items[i], ip, out + (size_t)i * width, width, e));
    }
    *n = seq ? seq->n : 0;
    return CR_OK;
}
