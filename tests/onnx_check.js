#!/usr/bin/env node
// onnx_check.js - scores the inputs `crossrec encode` wrote with an exported
// graph in ONNX Runtime (onnxruntime-node, CPU, one thread) and compares
// every output with the column of the same name in `crossrec score`'s CSV.
// Prints one line per output with its max absolute difference; exits 1 if
// any exceeds --tol, an output or column is missing, or a value is not a
// number.
//
//   NODE_PATH=build/node/node_modules node tests/onnx_check.js \
//       model.onnx inputs.safetensors scores.csv [--tol 1e-5]
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

// A safetensors file as {name: ort.Tensor}: an 8-byte little-endian header
// length, the JSON header, then the tensors' bytes.
function readSafetensors(path) {
  const buf = fs.readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const hdr = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const types = {
    I64: ['int64', BigInt64Array],
    F64: ['float64', Float64Array],
    F32: ['float32', Float32Array],
  };
  const out = {};
  for (const [name, t] of Object.entries(hdr)) {
    if (name === '__metadata__') continue;
    if (!types[t.dtype]) throw new Error(`${path}: tensor ${name} has dtype ${t.dtype}`);
    const [type, Arr] = types[t.dtype];
    const [a, b] = t.data_offsets;
    const copy = new Uint8Array(buf.subarray(8 + n + a, 8 + n + b)).buffer; // aligned
    out[name] = new ort.Tensor(type, new Arr(copy), t.shape);
  }
  return out;
}

function readCsv(path) {
  const lines = fs.readFileSync(path, 'utf8').split('\n').filter((l) => l.length);
  const cols = lines[0].split(',');
  const data = cols.map(() => []);
  for (const l of lines.slice(1)) l.split(',').forEach((v, i) => data[i].push(Number(v)));
  return Object.fromEntries(cols.map((c, i) => [c, data[i]]));
}

async function main() {
  const args = process.argv.slice(2);
  let tol = 1e-5;
  const ti = args.indexOf('--tol');
  if (ti >= 0) {
    tol = Number(args[ti + 1]);
    args.splice(ti, 2);
  }
  if (args.length !== 3) {
    console.error('usage: onnx_check.js MODEL.onnx INPUTS.safetensors SCORES.csv [--tol T]');
    process.exit(2);
  }
  const [model, inputs, scores] = args;
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const all = readSafetensors(inputs);
  const feeds = {};
  for (const name of session.inputNames) {
    if (!all[name]) throw new Error(`${inputs} has no tensor for the graph input '${name}'`);
    feeds[name] = all[name];
  }
  const want = readCsv(scores);
  const got = await session.run(feeds);
  let bad = 0;
  for (const name of session.outputNames) {
    const g = got[name].data, w = want[name];
    if (!w) {
      console.log(`${name}: no column in ${scores}`);
      bad++;
      continue;
    }
    if (g.length !== w.length) {
      console.log(`${name}: ${g.length} values, ${scores} has ${w.length}`);
      bad++;
      continue;
    }
    let diff = 0, at = 0;
    for (let i = 0; i < g.length; i++) {
      const d = Math.abs(g[i] - w[i]);
      if (!(d <= diff)) diff = d, at = i; // NaN is taken as the worst
    }
    const ok = diff <= tol;
    console.log(`${name}: ${g.length} rows, max abs diff ${diff.toExponential(2)} ` +
                `(row ${at}: onnx ${g[at]}, crossrec ${w[at]}) ${ok ? 'ok' : 'ABOVE ' + tol}`);
    if (!ok) bad++;
  }
  console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version}`);
  process.exit(bad ? 1 : 0);
}

main().catch((err) => {
  console.error(`onnx_check: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
