// onnx_io.js - what the node scripts that run crossrec's exported ONNX
// graphs (tests/onnx_check.js, bench/serve_onnx.js) share: the inputs
// `crossrec encode` writes (safetensors) as ONNX Runtime tensors, the first
// rows of a batch, random inputs drawn from a graph's vocabulary file, and
// `crossrec score`'s CSV. Reads files; scores nothing.
'use strict';
const fs = require('fs');

const TYPES = {
  I64: ['int64', BigInt64Array],
  F64: ['float64', Float64Array],
  F32: ['float32', Float32Array],
};

// A safetensors file as {name: ort.Tensor}: an 8-byte little-endian header
// length, the JSON header, then the tensors' bytes.
function readSafetensors(ort, path) {
  const buf = fs.readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const hdr = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [name, t] of Object.entries(hdr)) {
    if (name === '__metadata__') continue;
    if (!TYPES[t.dtype]) throw new Error(`${path}: tensor ${name} has dtype ${t.dtype}`);
    const [type, Arr] = TYPES[t.dtype];
    const [a, b] = t.data_offsets;
    const copy = new Uint8Array(buf.subarray(8 + n + a, 8 + n + b)).buffer; // aligned
    out[name] = new ort.Tensor(type, new Arr(copy), t.shape);
  }
  return out;
}

// The first B rows of a tensor whose first dimension is the batch.
function firstRows(ort, t, B) {
  const per = t.dims.slice(1).reduce((x, y) => x * y, 1);
  return new ort.Tensor(t.type, t.data.slice(0, B * per), [B, ...t.dims.slice(1)]);
}

// B random rows for every input a vocabulary file (crossrec.onnx.vocab)
// lists: ids uniform over each table, bags of 3, values in [0, 10).
function randomInputs(ort, vocab, B, seed) {
  let s = seed >>> 0 || 1;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const ids = (n, rows) => BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rnd() * rows)));
  const feeds = {};
  for (const f of vocab.features) {
    const i = f.inputs;
    if (f.type === 'categorical') feeds[i.ids] = new ort.Tensor('int64', ids(B, f.rows), [B]);
    else if (f.type === 'multi') {
      feeds[i.ids] = new ort.Tensor('int64', ids(B * 3, f.rows), [B, 3]);
      feeds[i.mask] = new ort.Tensor('float32', new Float32Array(B * 3).fill(1), [B, 3]);
    } else feeds[i.value] = new ort.Tensor('float64', Float64Array.from({ length: B }, () => 10 * rnd()), [B]);
  }
  return feeds;
}

// A CSV without quoted fields (`crossrec score` output, the MovieLens
// impressions) as {column: [numbers]}; an empty field is NaN.
function readCsv(path) {
  const lines = fs.readFileSync(path, 'utf8').split('\n').filter((l) => l.length);
  const cols = lines[0].split(',');
  const data = cols.map(() => []);
  for (const l of lines.slice(1)) l.split(',').forEach((v, i) => data[i].push(v === '' ? NaN : Number(v)));
  return Object.fromEntries(cols.map((c, i) => [c, data[i]]));
}

// ROC AUC of scores against 0/1 labels over the rows whose label is not
// NaN (a masked task), ties counted half; NaN when one class is absent.
function auc(scores, labels) {
  const idx = [];
  for (let i = 0; i < labels.length; i++) if (!Number.isNaN(labels[i])) idx.push(i);
  idx.sort((a, b) => scores[a] - scores[b]);
  let pos = 0, rankSum = 0;
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j < idx.length && scores[idx[j]] === scores[idx[i]]) j++;
    const mid = (i + j + 1) / 2; // 1-based mean rank of the tie group
    for (let k = i; k < j; k++) if (labels[idx[k]] > 0) pos++, rankSum += mid;
    i = j;
  }
  const neg = idx.length - pos;
  return pos && neg ? (rankSum - pos * (pos + 1) / 2) / (pos * neg) : NaN;
}

// Largest |got - want| over the first n values and where (NaN counts as worst).
function maxAbsDiff(got, want, n) {
  let diff = 0, at = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= diff)) diff = d, at = i;
  }
  return { diff, at };
}

module.exports = { readSafetensors, firstRows, randomInputs, readCsv, maxAbsDiff, auc };
