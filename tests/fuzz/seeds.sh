#!/usr/bin/env bash
# seeds.sh DIR BIN - the seed corpora of the fuzz harnesses, from the
# repository's own files, under DIR/<harness>/ (a first byte selects the
# harness's mode where it has several), plus tests/fuzz/regress/<harness>/:
# inputs that once failed. BIN (the normal crossrec build)
# trains a tiny ranker for the model harness's seed.
set -eu
cd "$(dirname "$0")/../.."
DIR=$1
BIN=$2
mkdir -p "$DIR"/{fuzz_csv,fuzz_yaml,fuzz_model,fuzz_lm,fuzz_bpe,fuzz_http,fuzz_map}
# with a selector byte: seed NAME HARNESS BYTE FILE [HEAD_BYTES]
seed() {
    { printf "\\x$3"; if [ $# -ge 5 ]; then head -c "$5" "$4"; else cat "$4"; fi; } >"$DIR/$2/$1"
}
# CSV in the harness's schema, and the repository's CSVs as they are
printf 'request_id,user_id,item_id,tags,year,pop,split,click,stay\n1,u1,i1,a|b,1995,12.5,train,1,0.5\n1,u2,i2,,1960,,valid,0,\n2,u1,i3,"c|""d""",,3,test,1,2\n' \
    >"$DIR/fuzz_csv/valid.csv"
cp tests/fixtures/ml_tiny/ratings.csv tests/fixtures/ml_tiny/movies.csv "$DIR/fuzz_csv/"
# YAML: 0 ranker, 1 study, 2 map, 3 serve, 4 LM
for f in examples/*/*.yaml; do
    case $(basename "$f") in
    study.yaml) seed "$(basename "$(dirname "$f")")_study" fuzz_yaml 01 "$f" ;;
    map.yaml) seed "$(basename "$(dirname "$f")")_map" fuzz_yaml 02 "$f"
        cp "$f" "$DIR/fuzz_map/$(basename "$(dirname "$f")").yaml" ;;
    austen.yaml) seed austen fuzz_yaml 04 "$f" ;;
    *) seed "$(basename "$(dirname "$f")")_$(basename "$f" .yaml)" fuzz_yaml 00 "$f" ;;
    esac
done
tmp=$(mktemp)
printf 'serve:\n  host: ::1\n  port: 0\n  header_timeout_s: 2\n  limits: {max_body_bytes: 1024, max_connections: 8}\n  ranking: {formula: product, weights: {click: 1}}\n' >"$tmp"
seed serve fuzz_yaml 03 "$tmp"
cat >"$DIR/fuzz_map/tiny.yaml" <<'YAML'
features:
  - {feature: user, column: user}
  - {feature: item, column: item}
  - {feature: tags, column: tags}
  - {feature: hist, column: hist}
  - {feature: age, default: true}
  - {feature: pop, column: pop}
teacher_tasks:
  - {name: t_click, head: click, form: logit}
  - {name: t_stay, head: stay}
YAML
# checkpoints: a trained tiny ranker and the repository's safetensors files
"$BIN" movielens --in tests/fixtures/ml_tiny --out "$tmp.csv" --negatives 2 >/dev/null
cat >"$tmp.yaml" <<YAML
data: {path: $tmp.csv, split: {by: column, column: split}, group: request_id}
features:
  - {name: user, type: categorical, column: user_id, dim: 2}
  - {name: genres, type: multi, column: genres, dim: 2}
  - {name: item_popularity, type: numeric, column: item_popularity, transform: log1p_zscore}
tasks:
  - {name: click, type: binary, label: click}
model: {type: mmoe, experts: 2, expert_layers: [4], tower_layers: [2]}
train: {batch_size: 8, epochs: 1, threads: 1}
YAML
"$BIN" train --config "$tmp.yaml" --out "$tmp.out" --quiet >/dev/null
cp "$tmp.out/model.safetensors" "$DIR/fuzz_model/tiny_ranker.safetensors"
cp tests/fixtures/st_reference.safetensors tests/fixtures/rank_mmoe.safetensors "$DIR/fuzz_model/"
# LM: 0 llama2.c mapped, 1 copied, 2 by content
seed stories_head fuzz_lm 00 data/models/stories260K.bin 65536
seed stories fuzz_lm 01 data/models/stories260K.bin
# a tiny well-formed llama2.c model (dim 8, hidden 12, 1 layer, 2 heads, 1 kv
# head, vocab 10, seq 4: 600 floats), tied and untied (80 more)
perl -e 'print pack("l<7", 8, 12, 1, 2, 1, $ARGV[0], 4), pack("f<*", map { 0.01 * ($_ % 13) - 0.05 } 0 .. $ARGV[1])' \
    10 599 >"$tmp.l2c"
seed tiny_l2c fuzz_lm 00 "$tmp.l2c"
seed tiny_l2c_copy fuzz_lm 01 "$tmp.l2c"
seed tiny_l2c_open fuzz_lm 02 "$tmp.l2c"
perl -e 'print pack("l<7", 8, 12, 1, 2, 1, -10, 4), pack("f<*", map { 0.01 * ($_ % 7) } 0 .. 679)' >"$tmp.l2c"
seed tiny_l2c_untied fuzz_lm 00 "$tmp.l2c"
seed dec_llama fuzz_lm 02 tests/fixtures/dec_llama.safetensors
seed dec_stories fuzz_lm 02 tests/fixtures/dec_stories.safetensors
# BPE: 0 text, 1 tokenizer files (encoder.json NUL vocab.bpe)
seed austen fuzz_bpe 00 data/text/austen.txt 4096
{ printf '\x00'; printf 'caf\xc3\xa9 \xf0\x9f\x98\x80 <|endoftext|>\r\n\t  x'; } >"$DIR/fuzz_bpe/utf8"
{ printf '\x01'; head -c 3000 data/tokenizers/gpt2/encoder.json; printf '\x00'; head -n 50 data/tokenizers/gpt2/vocab.bpe; } \
    >"$DIR/fuzz_bpe/files"
# HTTP: 0 /v1/score, 1 /v2 infer (the tiny log's columns)
printf '\x00{"context":{"user":"u1","hist":["u2","u3"],"age":35},"candidates":[{"item":"i1","tags":["a","b"],"pop":12.5},{"item":"i2"}]}' \
    >"$DIR/fuzz_http/v1"
printf '\x01{"id":"r","inputs":[{"name":"user","datatype":"BYTES","shape":[1],"data":["u1"]},{"name":"item","datatype":"BYTES","shape":[2,1],"data":[["i1"],["i2"]]},{"name":"pop","datatype":"FP32","shape":[2],"data":[1.5,3]},{"name":"age","datatype":"INT64","shape":[1],"data":[35]}],"outputs":[{"name":"click"}]}' \
    >"$DIR/fuzz_http/v2"
# inputs that once broke a property, kept as seeds so a regression shows at once
for d in tests/fuzz/regress/*/; do cp "$d"* "$DIR/$(basename "$d")/"; done
rm -rf "$tmp" "$tmp.csv" "$tmp.yaml" "$tmp.out" "$tmp.l2c"
