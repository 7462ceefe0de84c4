/*
 * config.h - the data:, features: and tasks: sections of a job's YAML, and
 * the feature encoder that training, scoring and serving share so a value
 * maps to the same row everywhere. Parsing only: nothing here reads data.
 */
#ifndef CR_DATA_CONFIG_H
#define CR_DATA_CONFIG_H

#include "../core/yaml.h"
#include "data.h"

/* Parse data:, features: and tasks: from a loaded config (see docs/config.md).
 * Other top-level sections (model, train, eval, distill, serve) are left to
 * their own parsers; any other top-level key is an error. Relative paths are
 * resolved against the directory of config_path (NULL = the working
 * directory). On success the schema holds the features and tasks with their
 * derived slots (cr_schema_finish has run; vocabulary sizes are fitted later
 * by cr_dataset_load) and the caller frees it with cr_schema_free; on failure
 * nothing needs freeing. Every error names file:line:col and the field path. */
cr_status cr_data_config_parse(const cr_yaml_node *root, const char *config_path,
                               cr_data_cfg *data, cr_schema *schema, cr_error *e);

/* rel resolved against the directory of config_path (NULL = the working
 * directory) into out; too long is an error at node n naming field. */
cr_status cr_config_resolve_path(const cr_yaml_node *n, const char *config_path, const char *rel,
                                 const char *field, char *out, size_t cap, cr_error *e);

/* The required key `name` of map m (field path `path`): letters, digits and
 * '_', not starting with a digit, so expressions can name it. */
cr_status cr_config_name(const cr_yaml_node *m, const char *path, char *out, size_t cap,
                         cr_error *e);

/* The names the config uses for enums, NULL-terminated, indexed by the enum. */
extern const char *const cr_feat_kind_names[];  /* categorical, multi, numeric, bucketized */
extern const char *const cr_transform_names[];  /* none, zscore, log1p, log1p_zscore */
extern const char *const cr_pooling_names[];    /* sum, mean */
extern const char *const cr_task_kind_names[];  /* binary, regression */
extern const char *const cr_split_kind_names[]; /* time, fraction, column */

/* ---- encoding one value (shared by cr_dataset_load and serving) -------------- */

/* FNV-1a 64-bit hash of a byte string. Stable forever: hashed features and
 * fraction splits depend on it, and saved models on those. */
uint64_t cr_hash64(const char *s, size_t len);

/* Counting phase of a vocabulary: count s n times and return its 0-based
 * first-appearance index (= cr_vocab_key(v, index + 1) until finalized).
 * The dataset loader uses it to intern every value in one pass over a file. */
cr_status cr_vocab_intern(cr_vocab *v, const char *s, size_t len, int64_t n, int32_t *index,
                          cr_error *e);

/* Row of a categorical/multi value (one token): vocabulary id (0 = OOV, and
 * the empty string is always 0) or 1 + hash % buckets. For a feature with
 * `share`, pass the owner feature (schema->features[cr_feature_owner(...)]). */
int32_t cr_feature_id(const cr_feature *owner, const char *s, size_t len);
/* Index of the feature whose vocabulary/table f reads (itself if unshared). */
int cr_feature_owner(const cr_schema *s, int feature);
/* Bucket feature: 1 + index of the first boundary greater than x. */
int32_t cr_feature_bucket(const cr_feature *f, double x);
/* Numeric feature: log1p and/or z-score as configured. The caller checks
 * the value first with cr_feature_value_ok. */
float cr_feature_transform(const cr_feature *f, double x);
/* The z-score alone, of a value already past the log1p (= the whole
 * transform without one): the last step of cr_feature_transform, and what
 * the dataset applies once the training statistics are known. */
float cr_feature_zscore(const cr_feature *f, double v);
int   cr_feature_takes_log(const cr_feature *f);
/* Whether a numeric feature can take the finite value x: at least -1 when
 * the transform takes log1p, and (after the log1p) no farther outside the
 * training range than CR_FEATURE_RANGE_WIDTHS times its width, so 1e300 is
 * refused instead of scored; the transformed value must be a finite float.
 * Returns 1, or 0 with what was expected in why ("expected a number ..."). */
#define CR_FEATURE_RANGE_WIDTHS 10.0
int   cr_feature_value_ok(const cr_feature *f, double x, char *why, size_t cap);

/* ---- the feature encoder (encode.c) ------------------------------------------
 * One value of one feature -> an id, a bucket, a bag of ids or a number,
 * from text, a number or a list of single values. The dataset loader, the
 * teacher's labelling and the serving encoder all go through these, so a
 * value maps to the same thing everywhere. On a bad value the status is
 * CR_ERR_PARSE with "what was expected, got what came" in e (and what was
 * expected alone in v->why); the caller prefixes where (file:line:column,
 * a row or a candidate, the column). */
enum { CR_VALUE_BAD = 1, CR_VALUE_LOG1P, CR_VALUE_RANGE }; /* cr_value.fail */

typedef struct cr_value {
    const char        *s;        /* text (missing if empty), or NULL: a number or a list */
    size_t             len;
    double             x;        /* a number (NaN = missing); after a bucket or number
                                    encoding, the number read from the text */
    int64_t            k;        /* an int64's exact value (is_i64) */
    int                is_i64;
    const char *const *items;    /* a list (is_list) of n single values; "" or NULL skipped */
    int64_t            n;
    int                is_list;
    int                missing;  /* "" text, NaN, an empty list (or blank text read as a number) */
    int                fail;     /* after an error: CR_VALUE_* */
    char               why[200]; /* after an error: what was expected */
    char               buf[32];  /* an integral number as its digits */
} cr_value;

void cr_value_text(cr_value *v, const char *s, size_t len); /* s NULL = missing */
void cr_value_number(cr_value *v, double x);
void cr_value_int(cr_value *v, int64_t k);
void cr_value_list(cr_value *v, const char *const *items, int64_t n);

typedef struct cr_encoder {
    const cr_feature *f;    /* kind, separator, boundaries, transform, default */
    const cr_feature *own;  /* whose vocabulary or hash gives ids (f unless shared) */
    cr_vocab         *fit;  /* non-NULL while fitting: an id is 1 + the value's index in this
                               first-appearance dictionary (remapped once the vocabulary is
                               fitted) instead of a lookup */
    int               check_range; /* numbers: refuse values far outside the training
                                      range (cr_feature_value_ok); serving does, reading
                                      a data file does not */
} cr_encoder;

void cr_encoder_init(cr_encoder *c, const cr_schema *s, int fi, cr_vocab *fit, int check_range);
/* Categorical: the row (0 = missing or unknown); an integral number is
 * looked up as its decimal digits. */
cr_status cr_encode_id(const cr_encoder *c, cr_value *v, int32_t *id, cr_error *e);
/* Bucketized: 1 + the first boundary above the number; missing = 0. */
cr_status cr_encode_bucket(const cr_encoder *c, cr_value *v, int32_t *id, cr_error *e);
/* Multi-valent: the bag's ids appended at ids[*n...], growing the array and its capacity.
 * Text is split at the feature's separator; a list is taken item by item
 * (an item holding the separator is an error); empty tokens are skipped. */
cr_status cr_encode_bag(const cr_encoder *c, cr_value *v, int32_t **ids, size_t *cap, int64_t *n,
                        cr_error *e);
/* Numeric: the default when missing, >= -1 under log1p, then the value
 * after the log1p (cr_feature_zscore finishes the transform). */
cr_status cr_encode_number(const cr_encoder *c, cr_value *v, double *out, cr_error *e);

#endif /* CR_DATA_CONFIG_H */
