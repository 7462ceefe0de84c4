/*
 * cmd_config.c - `crossrec config`: every key a job config accepts, with its
 * type, default and meaning, from one table. --reference prints the Markdown
 * of docs/config-reference.md, --defaults a complete annotated YAML, --keys
 * the bare "section key" list. tests/config_keys.sh checks this table
 * against the parsers themselves (the keys they accept) and the page
 * against --reference, so neither can drift. The table describes; it never
 * parses.
 */
#include "cli.h"

#include <getopt.h>
#include <string.h>

typedef struct {
    const char *section; /* "" = top level; "features[]" = every list item */
    const char *key;
    const char *type;
    const char *def;     /* as YAML would write it; "" = required / none */
    const char *meaning;
} cfg_key;

/* Sections in the order of a config file. Keep each section's keys in the
 * order its parser lists them (the test compares sets, not order). */
static const cfg_key keys[] = {
    {"", "data", "map", "", "where the log lives and how it is split (required)"},
    {"", "features", "list", "", "the model inputs (required)"},
    {"", "tasks", "list", "", "what is predicted (required)"},
    {"", "model", "map", "", "the architecture; absent = every default below"},
    {"", "train", "map", "", "optimisation; absent = every default below"},
    {"", "eval", "map", "", "metrics"},
    {"", "distill", "map", "", "distillation from a teacher's columns (docs/distillation.md)"},
    {"", "serve", "map", "", "`crossrec serve` settings (docs/serving.md)"},

    {"data", "path", "path", "", "the CSV/TSV log, relative to this file's directory (required)"},
    {"data", "sep", "char", "by extension", "field separator: tab for .tsv, else comma"},
    {"data", "split", "map", "{by: fraction}", "how rows go to train, valid and test"},
    {"data", "group", "column", "none", "request id: ranking metrics within it; a group never straddles splits"},
    {"data", "user", "column", "the group", "user id, for GAUC"},
    {"data", "weight", "column", "none", "per-row loss weight >= 0"},
    {"data", "slices", "columns", "[]", "up to 8 0/1 columns to evaluate separately"},
    {"data", "extra", "columns", "[]", "up to 16 numeric columns carried along (soft labels)"},

    {"data.split", "by", "enum", "", "time, fraction or column (required)"},
    {"data.split", "column", "column", "", "timestamp (time) or train/valid/test column (column)"},
    {"data.split", "valid", "number", "0.1", "validation share in [0, 1) (time, fraction)"},
    {"data.split", "test", "number", "0.1", "test share in [0, 1) (time, fraction)"},
    {"data.split", "seed", "integer", "0", "mixed into the fraction hash"},

    {"features[]", "name", "name", "", "unique; names the embedding table (required)"},
    {"features[]", "type", "enum", "", "categorical, multi, numeric or bucketized (required)"},
    {"features[]", "column", "column", "the name", "the column read"},
    {"features[]", "dim", "integer", "", "embedding width 1..65536 (categorical, multi, bucketized; required unless shared)"},
    {"features[]", "hash_buckets", "integer", "none", "hash ids into this many rows instead of a vocabulary (categorical, multi)"},
    {"features[]", "min_count", "integer", "1", "vocabulary: keep values seen this often in train (categorical, multi)"},
    {"features[]", "max_vocab", "integer", "0", "vocabulary cap, most frequent first; 0 = none (categorical, multi)"},
    {"features[]", "share", "feature", "none", "use an earlier feature's vocabulary and table (categorical, multi)"},
    {"features[]", "id_dropout", "number", "0", "training: replace an id by the OOV row 0 with this probability (categorical, multi)"},
    {"features[]", "sep", "char", "\"|\"", "token separator (multi)"},
    {"features[]", "pooling", "enum", "mean", "sum or mean of the tokens (multi)"},
    {"features[]", "transform", "enum", "zscore", "none, zscore, log1p or log1p_zscore (numeric)"},
    {"features[]", "default", "number", "0", "value of an empty field, before the transform (numeric)"},
    {"features[]", "boundaries", "numbers", "", "1..64 increasing cut points (bucketized; required)"},

    {"tasks[]", "name", "name", "", "unique (required)"},
    {"tasks[]", "type", "enum", "binary", "binary (labels in [0, 1], logistic loss) or regression"},
    {"tasks[]", "label", "expression", "the name", "a column or an expression over columns"},
    {"tasks[]", "mask", "expression", "none", "where the task is defined: an earlier task, a column or an expression"},
    {"tasks[]", "weight", "number", "1", "loss weight >= 0"},

    {"model", "type", "enum", "mmoe", "shared_bottom, mmoe or ple"},
    {"model", "bottom_layers", "integers", "[128, 64]", "shared bottom widths (shared_bottom)"},
    {"model", "experts", "integer", "4", "experts 1..64 (mmoe)"},
    {"model", "expert_layers", "integers", "[64, 32]", "widths of each expert (mmoe, ple)"},
    {"model", "shared_experts", "integer", "2", "experts every task's gate sees (ple)"},
    {"model", "task_experts", "integer", "1", "experts of each task alone (ple)"},
    {"model", "tower_layers", "integers", "[32]", "widths of each task tower"},
    {"model", "loss_weighting", "enum", "fixed", "fixed (tasks[].weight) or uncertainty (learnt)"},
    {"model", "emb_init", "number", "0.05", "embedding rows start uniform in [-emb_init, emb_init]"},

    {"train", "optimizer", "enum", "adam", "dense weights: adam, adamw or sgd"},
    {"train", "lr", "number", "0.001", "dense learning rate"},
    {"train", "beta1", "number", "0.9", "Adam first-moment decay"},
    {"train", "beta2", "number", "0.999", "Adam second-moment decay"},
    {"train", "eps", "number", "1e-08", "Adam epsilon"},
    {"train", "weight_decay", "number", "0", "decoupled decay (adamw)"},
    {"train", "sparse_optimizer", "enum", "adagrad", "embedding rows: adagrad, lazy_adam or sgd"},
    {"train", "sparse_lr", "number", "0.05", "embedding learning rate"},
    {"train", "adagrad_init", "number", "0", "Adagrad's initial accumulator"},
    {"train", "batch_size", "integer", "512", "rows per step"},
    {"train", "epochs", "integer", "10", "maximum passes over train"},
    {"train", "max_steps", "integer", "0", "stop after this many steps; 0 = the epochs decide"},
    {"train", "schedule", "enum", "constant", "constant or cosine (to min_lr_frac * lr)"},
    {"train", "warmup_steps", "integer", "0", "linear warmup"},
    {"train", "min_lr_frac", "number", "0", "cosine floor as a share of lr"},
    {"train", "clip_norm", "number", "0", "global gradient-norm clip of dense weights; 0 = none"},
    {"train", "seed", "integer", "1", "initialisation, shuffling, id dropout"},
    {"train", "threads", "integer", "0", "0 = the CPUs this process may use (affinity, cgroup quota); --threads, a context's threads, take precedence"},
    {"train", "early_stopping", "map", "{mode: sum_loss}", "when to stop"},
    {"train", "checkpoint_every", "integer", "1", "evaluations between checkpoints; 0 = only at the end"},
    {"train", "max_bag_ids", "integer", "0", "ids one multi feature may put in one batch (a memory cap; training refuses data that needs more); 0 = sized from the data"},
    {"train", "precision", "enum", "fp32", "fp32 or bf16 (mixed-precision products)"},

    {"train.early_stopping", "mode", "enum", "sum_loss", "sum_loss (keep the best validation sum-loss), metric (keep the best mean validation AUC / R2 of the served tasks), per_task (freeze a task that stops improving; keep the last step) or none (keep the last step)"},
    {"train.early_stopping", "patience", "integer", "2", "evaluations without improvement"},
    {"train.early_stopping", "eval_every", "integer", "0", "steps between evaluations; 0 = once per epoch"},

    {"eval", "k", "integer", "10", "NDCG@k and Recall@k cut-off, 1..1000"},
    {"eval", "baseline", "bool", "true", "also rank by popularity_feature alone"},
    {"eval", "popularity_feature", "feature", "none", "the numeric feature whose value is the baseline's score"},

    {"distill", "tasks", "list", "[]", "per student task: a technique and its teacher column"},
    {"distill", "new_heads", "list", "[]", "never-served heads for teacher tasks without a student task"},

    {"distill.tasks[]", "task", "task", "", "a student task (required)"},
    {"distill.tasks[]", "technique", "enum", "aux_head", "aux_head, soft_label, aux_head_tempered or none"},
    {"distill.tasks[]", "column", "column", "", "the teacher's column (required unless none)"},
    {"distill.tasks[]", "head", "name", "<task>_distill", "name of the never-served head"},
    {"distill.tasks[]", "weight", "number", "0.5", "loss weight of the head"},
    {"distill.tasks[]", "lambda", "number", "0.5", "soft_label: share of the teacher in the target"},
    {"distill.tasks[]", "temperature", "number", "2", "aux_head_tempered: Hinton's temperature"},
    {"distill.tasks[]", "mask", "enum", "auto", "auto, task or none"},

    {"distill.new_heads[]", "name", "name", "", "the head (required)"},
    {"distill.new_heads[]", "column", "column", "the name", "the teacher's column"},
    {"distill.new_heads[]", "kind", "enum", "binary", "binary or regression"},
    {"distill.new_heads[]", "weight", "number", "0.5", "loss weight"},
    {"distill.new_heads[]", "tower", "task", "", "the student task whose tower it reads (required)"},
    {"distill.new_heads[]", "mask", "task", "none", "a student task whose mask it takes"},

    {"serve", "host", "string", "127.0.0.1", "address or host name to bind (localhost, ::1, 0.0.0.0 for every interface)"},
    {"serve", "port", "integer", "8080", "0 = any free port"},
    {"serve", "threads", "integer", "4", "HTTP workers"},
    {"serve", "kernel_threads", "integer", "1", "threads inside one request; 0 = all"},
    {"serve", "precision", "enum", "fp32", "fp32, bf16 or int8 dense layers"},
    {"serve", "limits", "map", "", "request limits"},
    {"serve", "ranking", "map", "", "how outputs combine into the ranking score"},
    {"serve", "timeout_s", "integer", "30", "idle connections close after this"},
    {"serve", "drain_s", "integer", "10", "on SIGTERM, wait this long for requests in flight"},
    {"serve", "header_timeout_s", "number", "10", "a client must send its whole header within this"},
    {"serve", "request_timeout_s", "number", "60", "a whole request (header and body) must arrive within this"},
    {"serve", "reload_interval_s", "number", "5", "the least time between two admin reloads"},

    {"serve.limits", "max_body_bytes", "integer", "1048576", "largest request body"},
    {"serve.limits", "max_candidates", "integer", "10000", "most candidates in one request"},
    {"serve.limits", "max_connections", "integer", "512", "open connections at once (the newest past it evicts the longest header wait)"},
    {"serve.limits", "max_per_ip", "integer", "128", "open connections from one address; 0 = no limit"},

    {"serve.ranking", "formula", "enum", "weighted_sum", "weighted_sum or product"},
    {"serve.ranking", "weights", "map", "", "output name -> weight; unlisted outputs weigh 0"},

    /* the other files crossrec reads; a section's first word names the file */
    {"study", "teacher", "map", "", "the source model: {config} to train or {model} to use (required)"},
    {"study", "map", "path", "", "the teacher map (docs/distillation.md; required)"},
    {"study", "target", "path", "", "the target log the students train on (required)"},
    {"study", "students", "list", "", "1..8 student configs and their techniques (required)"},
    {"study", "seeds", "integers", "[1]", "one run of every variant per seed"},
    {"study", "fractions", "numbers", "[1.0]", "shares of the target's training requests"},
    {"study", "epochs", "integer", "0", "> 0: every student's epochs (not the teacher's); 0 = each config's"},
    {"study", "max_steps", "integer", "0", "> 0: every student's step cap"},
    {"study", "threads", "integer", "-1", "threads of every job; -1 = each config's"},
    {"study", "bootstrap", "map", "", "confidence intervals of the differences"},
    {"study", "slice", "column", "none", "a data.slices column of the students, reported apart"},
    {"study", "min_positives", "integer", "30", "fewer positive test rows (rows, regression) = \"too few\": no metric, no test"},
    {"study", "keep_seed", "integer", "1", "which requests a fraction keeps"},
    {"study", "sweep", "map", "none", "the map of when distillation pays: the study once per cell of a grid over the generator's knobs"},

    {"study.sweep", "synth", "path", "", "the base synth YAML every cell changes (required)"},
    {"study.sweep", "student", "name", "the first", "the student whose gains the maps show"},
    {"study.sweep", "task", "task", "click", "the task whose primary metric (AUC, R2) the maps show"},
    {"study.sweep", "defaultable", "list", "[]", "map features the defaulted knob reads as the teacher's default, in order"},
    {"study.sweep", "base", "map", "the synth file's", "knobs (as in maps) every cell starts from instead of the synth file's"},
    {"study.sweep", "maps", "list", "", "1..4 grids of two knobs (required)"},

    {"study.sweep.base", "target_requests", "number", "the synth file's", "the target's requests"},
    {"study.sweep.base", "source_requests", "number", "the synth file's", "the source's requests"},
    {"study.sweep.base", "specific", "number", "the synth file's", "the target's own taste weight"},
    {"study.sweep.base", "defaulted", "number", "0", "share of defaultable read as the default"},

    {"study.sweep.maps[]", "x", "enum", "", "target_requests, source_requests, specific (the target's own taste: domain shift) or defaulted (share of defaultable)"},
    {"study.sweep.maps[]", "x_values", "numbers", "", "1..8 values of x"},
    {"study.sweep.maps[]", "y", "enum", "", "another knob, as x"},
    {"study.sweep.maps[]", "y_values", "numbers", "", "1..8 values of y"},

    {"study", "convergence", "map", "none", "one stopping rule for the control and every variant; none = each config's early_stopping"},
    {"study", "tune", "map", "none", "search the control's lr and width on validation; the pick trains every variant"},
    {"study", "control_check", "map", "{}", "regression task -> numeric feature: the control must also beat a linear fit on it"},

    {"study.convergence", "mode", "enum", "metric", "train.early_stopping.mode of every student run (metric: the mean validation AUC / R2)"},
    {"study.convergence", "patience", "integer", "3", "evaluations without improvement"},
    {"study.convergence", "max_epochs", "integer", "30", "every student run's epochs (not with study epochs)"},

    {"study.tune", "lr", "numbers", "[the config's]", "learning rates to try"},
    {"study.tune", "width", "numbers", "[1]", "scales of every hidden layer (bottom, experts, towers) to try"},
    {"study.tune", "seeds", "integers", "[first seed]", "seeds per setting; the score is their mean"},

    {"study.teacher", "config", "path", "", "a ranker YAML to train into DIR/teacher (one of config, model)"},
    {"study.teacher", "model", "path", "", "a trained checkpoint (one of config, model)"},

    {"study.students[]", "name", "name", "", "unique (required)"},
    {"study.students[]", "config", "path", "", "a ranker YAML without a distill: section (required)"},
    {"study.students[]", "distill", "list", "[]", "student task <- teacher column"},
    {"study.students[]", "new_heads", "list", "[]", "never-served heads for teacher tasks without a student task"},
    {"study.students[]", "techniques", "list", "none + what applies", "none, aux_head, soft_label, aux_head_tempered, new_head"},

    {"study.students[].distill[]", "task", "task", "", "a student task (required)"},
    {"study.students[].distill[]", "column", "column", "", "the teacher's probability or value column (required)"},
    {"study.students[].distill[]", "logit_column", "column", "none", "the teacher's logit column (aux_head_tempered)"},
    {"study.students[].distill[]", "weight", "number", "0.5", "loss weight of the distillation head"},
    {"study.students[].distill[]", "lambda", "number", "0.5", "soft_label: share of the teacher in the target"},
    {"study.students[].distill[]", "temperature", "number", "2", "aux_head_tempered: Hinton's temperature"},

    {"study.students[].new_heads[]", "name", "name", "", "the head (required)"},
    {"study.students[].new_heads[]", "column", "column", "the name", "the teacher's column"},
    {"study.students[].new_heads[]", "kind", "enum", "binary", "binary or regression"},
    {"study.students[].new_heads[]", "weight", "number", "0.5", "loss weight"},
    {"study.students[].new_heads[]", "tower", "task", "", "the student task whose tower it reads (required)"},
    {"study.students[].new_heads[]", "mask", "task", "none", "a student task whose mask it takes"},

    {"study.bootstrap", "resamples", "integer", "1000", "bootstrap resamples of the test requests"},
    {"study.bootstrap", "level", "number", "0.95", "interval level in [0.5, 0.999]"},
    {"study.bootstrap", "seed", "integer", "7", "the resampling's seed"},

    {"map", "features", "list", "", "every teacher feature: a target column, a constant or its default (required)"},
    {"map", "teacher_tasks", "list", "", "1..16 teacher heads written as columns (required)"},

    {"map.features[]", "feature", "feature", "", "a teacher feature (required)"},
    {"map.features[]", "column", "column", "", "the target column read in its place (one of column, constant, default)"},
    {"map.features[]", "constant", "string", "", "one value for every row (one of column, constant, default)"},
    {"map.features[]", "default", "bool", "", "true: the teacher's missing-value rule (one of column, constant, default)"},

    {"map.teacher_tasks[]", "name", "column", "", "the column written (required)"},
    {"map.teacher_tasks[]", "head", "name", "the name", "the teacher head read"},
    {"map.teacher_tasks[]", "form", "enum", "by head", "probability, logit or value"},

    {"lm", "corpus", "path", "", "the training text (required)"},
    {"lm", "tokenizer", "path", "", "a GPT-2 BPE directory (one of tokenizer, train_tokenizer)"},
    {"lm", "train_tokenizer", "map", "", "learn a byte-level BPE on the corpus (one of tokenizer, train_tokenizer)"},
    {"lm", "model", "map", "", "the decoder (required)"},
    {"lm", "train", "map", "", "optimisation; absent = every default below"},

    {"lm.train_tokenizer", "vocab_size", "integer", "4096", "merges + 256 bytes + end of text, 258..1048576"},

    {"lm.model", "arch", "enum", "llama", "llama or gpt2"},
    {"lm.model", "dim", "integer", "", "width 2..8192 (required)"},
    {"lm.model", "n_layers", "integer", "", "layers 1..256 (required)"},
    {"lm.model", "n_heads", "integer", "", "attention heads (required)"},
    {"lm.model", "n_kv_heads", "integer", "n_heads", "key/value heads (grouped-query attention)"},
    {"lm.model", "hidden_dim", "integer", "by arch", "MLP width: 4 dim (gpt2), 8 dim / 3 rounded up to 32 (llama)"},
    {"lm.model", "max_seq", "integer", "train.seq_len", "longest context"},
    {"lm.model", "tied", "bool", "true", "the output layer is the token embedding"},
    {"lm.model", "norm_eps", "number", "1e-05", "normalisation epsilon"},

    {"lm.train", "batch", "integer", "8", "windows per step"},
    {"lm.train", "seq_len", "integer", "128", "tokens per window"},
    {"lm.train", "steps", "integer", "1000", "optimisation steps"},
    {"lm.train", "lr", "number", "0.001", "peak learning rate (AdamW)"},
    {"lm.train", "warmup", "integer", "100", "linear warmup steps, then cosine"},
    {"lm.train", "min_lr_frac", "number", "0.1", "cosine floor as a share of lr"},
    {"lm.train", "weight_decay", "number", "0.1", "decoupled decay of matrices"},
    {"lm.train", "beta1", "number", "0.9", "AdamW first-moment decay"},
    {"lm.train", "beta2", "number", "0.95", "AdamW second-moment decay"},
    {"lm.train", "eps", "number", "1e-08", "AdamW epsilon"},
    {"lm.train", "clip", "number", "1", "global gradient-norm clip; 0 = none"},
    {"lm.train", "seed", "integer", "1", "initialisation and window order"},
    {"lm.train", "threads", "integer", "0", "0 = the CPUs this process may use; a context's threads take precedence"},
    {"lm.train", "eval_every", "integer", "200", "steps between validation losses; 0 = only at the end"},
    {"lm.train", "eval_batches", "integer", "8", "validation batches per evaluation"},
    {"lm.train", "checkpoint_every", "integer", "200", "steps between checkpoints; 0 = only at the end"},
    {"lm.train", "log_every", "integer", "10", "steps between progress lines"},
    {"lm.train", "valid_frac", "number", "0.05", "the corpus's last share held out for validation"},

    {"synth", "seed", "integer", "1", "same config and seed, same bytes"},
    {"synth", "users", "integer", "2000", "users shared by both domains"},
    {"synth", "dim", "integer", "8", "taste dimensions"},
    {"synth", "genres", "integer", "16", "genres"},
    {"synth", "days", "number", "360", "length of the logged period"},
    {"synth", "valid", "number", "0.1", "latest share of requests for validation"},
    {"synth", "test", "number", "0.1", "latest share of requests for test"},
    {"synth", "label_noise", "number", "0.5", "std of the Gaussian noise on every logit"},
    {"synth", "popularity_skew", "number", "1", "Zipf exponent of item exposure"},
    {"synth", "new_release_days", "number", "30", "an item younger than this is a new release"},
    {"synth", "new_release_boost", "number", "3", "exposure multiplier of new releases"},
    {"synth", "item_overlap", "number", "0", "share of target items that are source items"},
    {"synth", "user_signals", "integer", "2", "source-only user features (noisy views of the taste), 0..8"},
    {"synth", "source", "map", "", "the data-rich domain"},
    {"synth", "target", "map", "", "the small domain"},

    {"synth.source", "name", "name", "source", "file stem: <name>.csv"},
    {"synth.source", "requests", "integer", "100000", "requests in the whole period"},
    {"synth.source", "items", "integer", "4000", "catalogue size"},
    {"synth.source", "candidates", "integer", "5", "impressions per request"},
    {"synth.source", "click_bias", "number", "-1.5", "intercept of the click logit"},
    {"synth.source", "specific", "number", "0", "weight of the domain's own taste component"},
    {"synth.source", "catalogue", "number", "0.5", "share of items already released on day 0"},

    {"synth.target", "name", "name", "target", "file stem: <name>.csv"},
    {"synth.target", "requests", "integer", "1000", "requests in the whole period"},
    {"synth.target", "items", "integer", "400", "catalogue size"},
    {"synth.target", "candidates", "integer", "5", "impressions per request"},
    {"synth.target", "click_bias", "number", "-1.2", "intercept of the click logit"},
    {"synth.target", "specific", "number", "0.5", "weight of the domain's own taste component"},
    {"synth.target", "catalogue", "number", "0.5", "share of items already released on day 0"},

    {"impressions", "log", "map", "", "the events' file and its columns (required)"},
    {"impressions", "items", "list", "[]", "item files: the first is the catalogue, later ones join attributes by key; none = the log's items"},
    {"impressions", "users", "map", "none", "a user file whose attributes every row carries"},
    {"impressions", "protocol", "map", "", "negatives and their sampling"},
    {"impressions", "split", "map", "", "time split by quantiles of the domain's events"},
    {"impressions", "domain", "map", "", "which items' events become requests"},
    {"impressions", "labels", "list", "[]", "label columns on the positive row, as expressions"},
    {"impressions", "return_days", "integer", "30", "category_return's horizon in days, 1..3650"},
    {"impressions", "columns", "map", "{}", "fixed output columns renamed: {item_id: movie_id, ...}"},

    {"impressions.log", "path", "path", "", "the CSV/TSV of events, one per row (required)"},
    {"impressions.log", "sep", "char", "by extension", "field separator: tab for .tsv, else comma"},
    {"impressions.log", "user", "column", "", "user key (required)"},
    {"impressions.log", "item", "column", "", "item key; must be in the catalogue if there is one (required)"},
    {"impressions.log", "time", "column", "", "event time (required)"},
    {"impressions.log", "time_format", "enum", "unix", "unix (integer seconds) or date (YYYY-MM-DD[THH:MM[:SS]][Z], UTC)"},
    {"impressions.log", "rating", "column", "none", "a number per event; empty = none for that event"},
    {"impressions.log", "values", "columns", "[]", "up to 16 numeric columns that label expressions may read"},

    {"impressions.items[]", "path", "path", "", "the item file (required)"},
    {"impressions.items[]", "sep", "char", "by extension", "field separator"},
    {"impressions.items[]", "key", "column", "", "item key (required)"},
    {"impressions.items[]", "categories", "column", "none", "multi-valued categories (at most 64 distinct): domain, histories, overlap, returns"},
    {"impressions.items[]", "separator", "char", "\"|\"", "between categories"},
    {"impressions.items[]", "no_categories", "string", "none", "a value meaning no category, e.g. \"(no genres listed)\""},
    {"impressions.items[]", "year", "column", "none", "release year: item_age, new_release, no negative before release"},
    {"impressions.items[]", "year_format", "enum", "number", "number, or title (a trailing \"(1995)\")"},
    {"impressions.items[]", "attributes", "map", "{}", "output column: file column, written as read"},
    {"impressions.items[]", "optional", "bool", "false", "an absent file is skipped (not the first)"},

    {"impressions.users", "path", "path", "", "the user file (required)"},
    {"impressions.users", "sep", "char", "by extension", "field separator"},
    {"impressions.users", "key", "column", "", "user key (required); users absent from it get empty attributes"},
    {"impressions.users", "attributes", "map", "{}", "output column: file column, written as read"},

    {"impressions.protocol", "negatives", "integer", "4", "negatives per request, 0..1000"},
    {"impressions.protocol", "sampling", "enum", "popularity", "popularity, uniform or period (docs/movielens.md)"},
    {"impressions.protocol", "period", "enum", "year", "the period protocol's calendar period: year, month or day"},
    {"impressions.protocol", "seed", "integer", "1", "negatives and keep_fraction"},
    {"impressions.protocol", "keep_fraction", "number", "1", "share of training requests kept"},

    {"impressions.split", "valid", "number", "0.1", "validation share, by time"},
    {"impressions.split", "test", "number", "0.1", "test share, the latest events"},

    {"impressions.domain", "include", "string", "none", "only items with this category"},
    {"impressions.domain", "exclude", "string", "none", "only items without this category"},
    {"impressions.domain", "strict", "bool", "false", "the excluded items vanish from the input (needs exclude)"},
    {"impressions.domain", "history", "enum", "domain", "user history from the domain's events or all"},

    {"impressions.labels[]", "name", "name", "", "the column (required)"},
    {"impressions.labels[]", "expr", "expression", "", "over rating, discovery, category_return, new_release, hist_count, item_popularity and log.values; empty when a variable it reads is (required)"},

    {"impressions.columns", "request_id", "name", "request_id", "its name in the output"},
    {"impressions.columns", "user_id", "name", "user_id", "its name in the output"},
    {"impressions.columns", "item_id", "name", "item_id", "its name in the output"},
    {"impressions.columns", "timestamp", "name", "timestamp", "its name in the output"},
    {"impressions.columns", "split", "name", "split", "its name in the output"},
    {"impressions.columns", "hist_count", "name", "hist_count", "its name in the output"},
    {"impressions.columns", "hist_mean_rating", "name", "hist_mean_rating", "its name in the output"},
    {"impressions.columns", "hist_top_categories", "name", "hist_top_categories", "its name in the output"},
    {"impressions.columns", "last_items", "name", "last_items", "its name in the output"},
    {"impressions.columns", "days_since_first", "name", "days_since_first", "its name in the output"},
    {"impressions.columns", "hour_of_day", "name", "hour_of_day", "its name in the output"},
    {"impressions.columns", "day_of_week", "name", "day_of_week", "its name in the output"},
    {"impressions.columns", "categories", "name", "categories", "its name in the output"},
    {"impressions.columns", "year", "name", "year", "its name in the output"},
    {"impressions.columns", "item_popularity", "name", "item_popularity", "its name in the output"},
    {"impressions.columns", "item_mean_rating", "name", "item_mean_rating", "its name in the output"},
    {"impressions.columns", "item_age", "name", "item_age", "its name in the output"},
    {"impressions.columns", "category_overlap", "name", "category_overlap", "its name in the output"},
    {"impressions.columns", "click", "name", "click", "its name in the output"},
    {"impressions.columns", "new_release", "name", "new_release", "its name in the output"},

    {"ilm", "data", "path", "", "a MovieLens directory (ratings.csv, movies.csv; required)"},
    {"ilm", "lm", "path", "", "the frozen decoder checkpoint (required)"},
    {"ilm", "tokenizer", "path", "", "its tokenizer (required)"},
    {"ilm", "lm_text", "path", "none", "text whose perplexity shows the LM stayed frozen"},
    {"ilm", "seeds", "integers", "[1, 2]", "one run of every variant per seed"},
    {"ilm", "variants", "list", "all six", "mlp, ilm-rand, ilm, it, it+ii, it+ui"},
    {"ilm", "mf", "map", "", "the collaborative-filtering (BPR) embeddings"},
    {"ilm", "phase1", "map", "", "Q-Former pretraining"},
    {"ilm", "phase2", "map", "", "adapter training against the frozen LM"},
    {"ilm", "eval", "map", "", "next-item ranking"},

    {"ilm.mf", "dim", "integer", "32", "embedding width"},
    {"ilm.mf", "epochs", "integer", "20", "passes over the ratings"},
    {"ilm.mf", "lr", "number", "0.05", "learning rate"},
    {"ilm.mf", "seed", "integer", "1", "initialisation and sampling"},

    {"ilm.phase1", "steps", "integer", "600", "optimisation steps"},
    {"ilm.phase1", "batch", "integer", "32", "items per step (in-batch negatives)"},
    {"ilm.phase1", "queries", "integer", "8", "query tokens = soft tokens per entity"},
    {"ilm.phase1", "layers", "integer", "2", "Q-Former layers"},
    {"ilm.phase1", "width", "integer", "64", "Q-Former width (feed-forward 4x)"},
    {"ilm.phase1", "heads", "integer", "4", "attention heads"},
    {"ilm.phase1", "lr", "number", "0.001", "peak learning rate (AdamW, cosine)"},
    {"ilm.phase1", "warmup", "integer", "50", "linear warmup steps"},
    {"ilm.phase1", "bpe_vocab", "integer", "2048", "the Q-Former's own text vocabulary"},
    {"ilm.phase1", "held", "number", "0.1", "share of items held out"},

    {"ilm.phase2", "steps", "integer", "300", "optimisation steps"},
    {"ilm.phase2", "batch", "integer", "8", "prompts per step"},
    {"ilm.phase2", "hist", "integer", "3", "items of {history}"},
    {"ilm.phase2", "max_seq", "integer", "96", "longest prompt in tokens"},
    {"ilm.phase2", "lr", "number", "0.001", "peak learning rate (AdamW, cosine)"},
    {"ilm.phase2", "warmup", "integer", "20", "linear warmup steps"},
    {"ilm.phase2", "mlp_hidden", "integer", "256", "hidden width of the mlp variant's adapter"},

    {"ilm.eval", "users", "integer", "200", "users ranked; 0 = all"},
    {"ilm.eval", "negatives", "integer", "49", "negatives beside each held-out item"},
    {"ilm.eval", "items", "integer", "200", "items of the item-text tasks; 0 = all"},
    {"ilm.eval", "batch", "integer", "16", "prompts per forward"},
    {"ilm.eval", "seed", "integer", "7", "candidate sampling"},
};
enum { N_KEYS = sizeof keys / sizeof keys[0] };

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec config (--defaults | --reference | --keys)\n"
            "\n"
            "Every key of every config file crossrec reads (job, study, teacher map, LM\n"
            "recipe, synthetic log, interaction log, ILM study), from one table.\n"
            "  --defaults    a complete job config with every default, one comment per key\n"
            "  --reference   the Markdown reference (docs/config-reference.md)\n"
            "  --keys        one \"section key\" line per key\n"
            "  --help        this text\n");
}

/* The files a table section belongs to: the job config (train, eval, score,
 * serve), then the others by the first word of their sections. */
static const struct { const char *prefix, *title; } files[] = {
    {"", "Job config (`crossrec train`, `eval`, `score`, `serve`)"},
    {"study", "Study (`crossrec experiment --config`, docs/experiment.md)"},
    {"map", "Teacher map (`crossrec label --map`, docs/distillation.md)"},
    {"lm", "Language-model recipe (`crossrec lm train --config`, docs/lm.md)"},
    {"synth", "Synthetic two-domain log (`crossrec synth --config`, docs/experiment.md)"},
    {"impressions", "Interaction log (`crossrec impressions --config`, docs/impressions.md)"},
    {"ilm", "ILM study (`crossrec ilm study --config`, docs/ilm.md)"},
};
enum { N_FILES = sizeof files / sizeof files[0] };

static int file_of(const char *section) {
    size_t n = strcspn(section, ".");
    for (int f = 1; f < N_FILES; f++)
        if (strlen(files[f].prefix) == n && !strncmp(section, files[f].prefix, n)) return f;
    return 0;
}

static void reference(void) {
    printf("# Config reference: every key, its type, default and meaning\n\n"
           "Generated by `crossrec config --reference` from the table in\n"
           "`cli/cmd_config.c`; `tests/config_keys.sh` checks that this page equals that\n"
           "output and that the table holds exactly the keys each parser accepts. The\n"
           "rules (paths, expressions, splits, vocabularies) are explained in\n"
           "docs/config.md, docs/ranker.md, docs/distillation.md and docs/serving.md;\n"
           "`crossrec config --defaults` prints a complete job config to start from.\n"
           "An empty default means required (or nothing); `[]` marks a list item.\n"
           "Every file's relative paths are relative to the file itself.\n");
    for (int f = 0; f < N_FILES; f++) {
        printf("\n## %s\n", files[f].title);
        const char *sec = NULL;
        for (int i = 0; i < N_KEYS; i++) {
            const cfg_key *k = &keys[i];
            if (file_of(k->section) != f) continue;
            if (!sec || strcmp(sec, k->section)) {
                sec = k->section;
                const char *name = sec;
                if (f && !strcmp(sec, files[f].prefix)) name = "";
                else if (f) name = sec + strlen(files[f].prefix) + 1;
                printf("\n### `%s`\n\n| key | type | default | meaning |\n|---|---|---|---|\n",
                       name[0] ? name : "(top level)");
            }
            printf("| `%s` | %s | %s | %s |\n", k->key, k->type, k->def[0] ? k->def : "",
                   k->meaning);
        }
    }
}

/* A map section's scalar keys as "key: default  # meaning"; keys without a
 * literal default are commented out. skip: a key already written. */
static void section(const char *sec, int indent, const char *skip) {
    for (int i = 0; i < N_KEYS; i++) {
        const cfg_key *k = &keys[i];
        if (strcmp(k->section, sec) || !strcmp(k->type, "map") || !strcmp(k->type, "list") ||
            (skip && !strcmp(k->key, skip)))
            continue;
        const char *d = k->def;
        int literal = d[0] && strcmp(d, "none") && strcmp(d, "the name") &&
                      strcmp(d, "the group") && strcmp(d, "by extension") && d[0] != '<';
        printf("%*s%s%s:%s%s  # %s%s%s\n", indent, "", literal ? "" : "# ", k->key,
               literal ? " " : "", literal ? d : "", k->meaning, literal ? "" : "; default: ",
               literal ? "" : (d[0] ? d : "none"));
    }
}

static void defaults(void) {
    printf("# A complete job config: every key with its default (crossrec config --defaults).\n"
           "# Commented keys have no literal default; the reference is\n"
           "# docs/config-reference.md.\n"
           "data:\n"
           "  path: impressions.csv  # the CSV/TSV log, relative to this file (required)\n"
           "  # sep: \",\"  # default: tab for .tsv, else comma\n"
           "  # group: request_id  # request id; default: none\n"
           "  # user: user_id  # default: the group\n"
           "  # weight: w  # default: none\n"
           "  slices: []  # up to 8 0/1 columns to evaluate separately\n"
           "  extra: []  # up to 16 numeric columns carried along\n"
           "  split:\n"
           "    by: fraction  # time, fraction or column\n");
    section("data.split", 4, "by");
    printf("features:  # one item per input; keys by type in the reference\n"
           "  - {name: item, type: categorical, column: movie_id, dim: 16, min_count: 1, max_vocab: 0,\n"
           "     id_dropout: 0}\n"
           "  - {name: genres, type: multi, column: genres, dim: 8, sep: \"|\", pooling: mean}\n"
           "  - {name: age, type: numeric, column: age, transform: zscore, default: 0}\n"
           "  - {name: year, type: bucketized, column: year, dim: 4, boundaries: [1990, 2000]}\n"
           "tasks:\n"
           "  - {name: click, type: binary, label: click, weight: 1}\n");
    static const struct { const char *head, *sec; int indent; } maps[] = {
        {"model:\n", "model", 2},
        {"train:\n", "train", 2},
        {"  early_stopping:\n", "train.early_stopping", 4},
        {"eval:\n", "eval", 2},
        {"# distill: {tasks: [], new_heads: []}  # docs/distillation.md\nserve:\n", "serve", 2},
        {"  limits:\n", "serve.limits", 4},
        {"  ranking:\n", "serve.ranking", 4},
    };
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        fputs(maps[i].head, stdout);
        section(maps[i].sec, maps[i].indent, NULL);
    }
}

int cr_cli_config(int argc, char **argv) {
    static const struct option opts[] = {{"defaults", no_argument, 0, 'd'},
                                         {"reference", no_argument, 0, 'r'},
                                         {"keys", no_argument, 0, 'k'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch, what = 0;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'd': case 'r': case 'k': what = ch; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !what) {
        usage(stderr);
        return 2;
    }
    if (what == 'r') reference();
    else if (what == 'd') defaults();
    else
        for (int i = 0; i < N_KEYS; i++)
            printf("%s %s\n", keys[i].section[0] ? keys[i].section : "-", keys[i].key);
    return 0;
}
