/*
 * yaml.h - a YAML file as a read-only tree of maps, sequences and scalars,
 * every node remembering its file, line and column, plus the typed getters
 * config parsers use so each error reads "ranker.yaml:12:5: features[3].dim:
 * expected a positive integer, got 'abc'". Knows nothing of what the keys mean.
 *
 * Usage (a parser for one section):
 *
 *     cr_yaml_doc *doc;
 *     CR_TRY(cr_yaml_load(&doc, "ranker.yaml", e));
 *     const cr_yaml_node *root = cr_yaml_root(doc);
 *     const cr_yaml_node *m = cr_yaml_get(root, "model");      // NULL if absent
 *     static const char *const keys[] = {"type", "experts", NULL};
 *     if (cr_yaml_check_keys(m, keys, "model", e)) goto fail;  // typos are errors
 *     int64_t experts;
 *     if (cr_yaml_int(m, "experts", "model", 0, 4, 1, 64, &experts, e)) goto fail;
 *     ...
 *     cr_yaml_free(doc); // every node and string dies with the document
 *
 * Conventions shared by every getter below:
 *   - `path` is the field path of the map being read ("features[3]", "model",
 *     or "" at top level); the getter appends ".key" for its messages.
 *   - `required` = 1: an absent key is an error at the map's position
 *     ("ranker.yaml:3:3: features[0]: missing required key 'name'").
 *     `required` = 0: an absent key (or an explicit null: `key:`, `key: ~`,
 *     `key: null`) stores `def` in *out and returns CR_OK.
 *   - A present value of the wrong kind or outside [lo, hi] is CR_ERR_CONFIG
 *     at the value's own line:column.
 *   - A NULL map is treated as an empty map (so an absent optional section
 *     yields all defaults and required keys report "missing").
 *   - Malformed YAML is CR_ERR_PARSE with libyaml's line:column and problem.
 * Anchors, aliases and merge keys are rejected (configs stay explicit);
 * duplicate keys in one map are rejected.
 */
#ifndef CR_YAML_H
#define CR_YAML_H

#include "core.h"

typedef enum cr_yaml_kind { CR_YAML_SCALAR, CR_YAML_SEQ, CR_YAML_MAP } cr_yaml_kind;

typedef struct cr_yaml_node cr_yaml_node;
struct cr_yaml_node {
    cr_yaml_kind   kind;
    int            line, col; /* 1-based position of the node's first character */
    const char    *file;      /* the path given to cr_yaml_load (or the name given
                                 to cr_yaml_load_string) */
    /* scalars */
    const char    *value;     /* NUL-terminated text (never NULL for a scalar) */
    size_t         len;
    int            quoted;    /* written as '...' or "...": never null, always a string */
    /* sequences and maps */
    int            n;         /* number of items (SEQ) or key/value pairs (MAP) */
    cr_yaml_node **items;     /* (n) SEQ: the items; MAP: the values */
    cr_yaml_node **keys;      /* (n) MAP only: the keys (scalars, for their positions) */
};

typedef struct cr_yaml_doc cr_yaml_doc; /* owns every node and string */

/* Load one YAML document from a file (an empty file gives a null scalar root). */
cr_status cr_yaml_load(cr_yaml_doc **out, const char *path, cr_error *e);
/* Same from a string; `name` stands in for the file name in messages. */
cr_status cr_yaml_load_string(cr_yaml_doc **out, const char *text, const char *name,
                              cr_error *e);
const cr_yaml_node *cr_yaml_root(const cr_yaml_doc *d);
void cr_yaml_free(cr_yaml_doc *d);

/* ---- navigation --------------------------------------------------------------- */

/* Value of `key` in a map; NULL if map is NULL, not a map, or lacks the key. */
const cr_yaml_node *cr_yaml_get(const cr_yaml_node *map, const char *key);
/* 1 for a plain (unquoted) scalar "", "~", "null", "Null" or "NULL". */
int cr_yaml_is_null(const cr_yaml_node *n);
/* "kind" names for messages: "a mapping", "a sequence", "a string". */
const char *cr_yaml_kind_name(cr_yaml_kind k);

/* Every key of `map` must be in `allowed` (NULL-terminated). Otherwise:
 * "ranker.yaml:7:3: model: unknown key 'expert'; expected one of: type,
 * experts, ...". A NULL map passes; a non-map is an error. */
cr_status cr_yaml_check_keys(const cr_yaml_node *map, const char *const *allowed,
                             const char *path, cr_error *e);
/* The node must exist and be of `kind` ("model: expected a mapping, got a
 * sequence"). A NULL node is reported as missing (without a position). */
cr_status cr_yaml_expect(const cr_yaml_node *n, cr_yaml_kind kind, const char *path,
                         cr_error *e);

/* Path helpers for messages: "features" + 3 -> "features[3]", "model" + "type"
 * -> "model.type" ("" + "type" -> "type"). Always NUL-terminate; truncate. */
void cr_yaml_path_index(char *buf, size_t cap, const char *parent, int64_t index);
void cr_yaml_path_key(char *buf, size_t cap, const char *parent, const char *key);

/* Report an error at a node: "<file>:<line>:<col>: <path>: <message>" (path
 * omitted when "" or NULL; position omitted when n is NULL). Returns s. */
cr_status cr_yaml_err(cr_error *e, cr_status s, const cr_yaml_node *n, const char *path,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- converting one node (path = the node's own field path) --------------------- */

/* Any scalar; copied into out (cap bytes). Longer than cap-1 is an error. */
cr_status cr_yaml_as_str(const cr_yaml_node *n, const char *path, char *out, size_t cap,
                         cr_error *e);
/* A decimal integer in [lo, hi] ("1000", "-3"; "1e3", "3.0", "0x10" are errors). */
cr_status cr_yaml_as_int(const cr_yaml_node *n, const char *path, int64_t lo, int64_t hi,
                         int64_t *out, cr_error *e);
/* A finite number in [lo, hi] (pass -INFINITY/INFINITY for no bound). */
cr_status cr_yaml_as_double(const cr_yaml_node *n, const char *path, double lo, double hi,
                            double *out, cr_error *e);
/* true/false, yes/no, on/off (any case). */
cr_status cr_yaml_as_bool(const cr_yaml_node *n, const char *path, int *out, cr_error *e);
/* One of names[] (NULL-terminated, exact match); *out = its index. The
 * message lists the choices: "expected one of: sum, mean; got 'avg'". */
cr_status cr_yaml_as_enum(const cr_yaml_node *n, const char *path, const char *const *names,
                          int *out, cr_error *e);

/* ---- reading a key of a map (see the conventions above) ------------------------- */

cr_status cr_yaml_str(const cr_yaml_node *map, const char *key, const char *path,
                      int required, const char *def, char *out, size_t cap, cr_error *e);
cr_status cr_yaml_int(const cr_yaml_node *map, const char *key, const char *path,
                      int required, int64_t def, int64_t lo, int64_t hi, int64_t *out,
                      cr_error *e);
/* Convenience for int-typed fields: same as cr_yaml_int, range within int
 * (INT_MIN / INT_MAX as a bound read as "no bound" in messages). */
cr_status cr_yaml_int32(const cr_yaml_node *map, const char *key, const char *path,
                        int required, int def, int lo, int hi, int *out, cr_error *e);
cr_status cr_yaml_double(const cr_yaml_node *map, const char *key, const char *path,
                         int required, double def, double lo, double hi, double *out,
                         cr_error *e);
cr_status cr_yaml_bool(const cr_yaml_node *map, const char *key, const char *path,
                       int required, int def, int *out, cr_error *e);
cr_status cr_yaml_enum(const cr_yaml_node *map, const char *key, const char *path,
                       int required, int def, const char *const *names, int *out,
                       cr_error *e);

/* Lists: the value must be a sequence of at most `cap` items (a single
 * scalar is NOT accepted as a one-item list); *n = count. Absent and not
 * required: *n = 0. Each item is range-checked as above; messages name the
 * item ("features[5].boundaries[2]: expected a number, got 'x'"). */
cr_status cr_yaml_ints(const cr_yaml_node *map, const char *key, const char *path,
                       int required, int64_t lo, int64_t hi, int64_t *out, int cap, int *n,
                       cr_error *e);
cr_status cr_yaml_doubles(const cr_yaml_node *map, const char *key, const char *path,
                          int required, double lo, double hi, double *out, int cap, int *n,
                          cr_error *e);
/* Strings into a flat array of cap slots of `width` bytes each, i.e. a
 * `char out[cap][width]` passed as &out[0][0]. */
cr_status cr_yaml_strs(const cr_yaml_node *map, const char *key, const char *path,
                       int required, char *out, size_t width, int cap, int *n, cr_error *e);

#endif /* CR_YAML_H */
