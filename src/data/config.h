/*
 * config.h - the data:, features: and tasks: sections of a job's YAML, and
 * the per-value encoders that training, scoring and serving must share so a
 * value maps to the same row everywhere. Parsing only: nothing here reads data.
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
int   cr_feature_takes_log(const cr_feature *f);
/* Whether a numeric feature can take the finite value x: at least -1 when
 * the transform takes log1p, and (after the log1p) no farther outside the
 * training range than CR_FEATURE_RANGE_WIDTHS times its width, so 1e300 is
 * refused instead of scored; the transformed value must be a finite float.
 * Returns 1, or 0 with what was expected in why ("expected a number ..."). */
#define CR_FEATURE_RANGE_WIDTHS 10.0
int   cr_feature_value_ok(const cr_feature *f, double x, char *why, size_t cap);

#endif /* CR_DATA_CONFIG_H */
