#!/usr/bin/env node
// onnx_check.js - scores the inputs `crossrec encode` wrote with an exported
// graph in ONNX Runtime (onnxruntime-node, CPU, one thread) and compares
// every output with the column of the same name in `crossrec score`'s CSV.
// Prints one line per output with its max absolute difference; exits 1 if
// any exceeds --tol, an output or column is missing, or a value is not a
// number. With --labels (the scored rows with their label columns) it also
// prints, per binary output with a label column of its name, the AUC of
// both sides (rows with an empty label are masked out): what bf16 weights
// cost.
//
//   NODE_PATH=build/node/node_modules node tests/onnx_check.js \
//       model.onnx inputs.safetensors scores.csv [--tol 1e-5] [--labels rows.csv]
'use strict';
const ort = require('onnxruntime-node');
const { readSafetensors, readCsv, maxAbsDiff, auc } = require('../tools/onnx_io.js');

async function main() {
  const args = process.argv.slice(2);
  let tol = 1e-5;
  const ti = args.indexOf('--tol');
  if (ti >= 0) {
    tol = Number(args[ti + 1]);
    args.splice(ti, 2);
  }
  let labels = null;
  const li = args.indexOf('--labels');
  if (li >= 0) {
    labels = readCsv(args[li + 1]);
    args.splice(li, 2);
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
  const all = readSafetensors(ort, inputs);
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
    const { diff, at } = maxAbsDiff(g, w, g.length);
    const ok = diff <= tol;
    console.log(`${name}: ${g.length} rows, max abs diff ${diff.toExponential(2)} ` +
                `(row ${at}: onnx ${g[at]}, crossrec ${w[at]}) ${ok ? 'ok' : 'ABOVE ' + tol}`);
    const y = labels && labels[name];
    if (y && y.every((v) => Number.isNaN(v) || v === 0 || v === 1)) {
      const a = auc(g, y), b = auc(w, y);
      console.log(`${name}: AUC onnx ${a.toFixed(5)}, crossrec ${b.toFixed(5)} (${(a - b >= 0 ? '+' : '') + (a - b).toFixed(5)})`);
    }
    if (!ok) bad++;
  }
  console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version}`);
  process.exit(bad ? 1 : 0);
}

main().catch((err) => {
  console.error(`onnx_check: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
