#!/usr/bin/env node
// serve_onnx.js - the ONNX Runtime side of the in-process serving
// comparison: a graph `crossrec export --format onnx` wrote, run from node
// with onnxruntime-node (CPU execution provider, intra-op threads set
// explicitly, inter-op 1, sequential), p50/p99 of one session.run per
// request of 10, 100 and 1000 candidates, under the names
// build/bench/serve_latency prints. The candidates are the first rows of
// --inputs (`crossrec encode` of real rows), checked before timing against
// --expected (`crossrec score` of the same rows), or random rows drawn from
// the graph's vocabulary file (--random, for a shape with no data).
//
//   NODE_PATH=build/node/node_modules node bench/serve_onnx.js \
//       --onnx model.onnx (--inputs in.safetensors --expected scores.csv | --random) \
//       [--threads N] [--seconds S]
// onnxruntime-node ships its CPU binaries inside the npm package
// (`make ort` installs it with ONNXRUNTIME_NODE_INSTALL=skip).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');
const io = require('../tools/onnx_io.js');

const SIZES = [10, 100, 1000];

function parseArgs(argv) {
  const a = { onnx: null, inputs: null, expected: null, random: false, threads: 1, seconds: 1 };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (k === '--onnx') a.onnx = v, i++;
    else if (k === '--inputs') a.inputs = v, i++;
    else if (k === '--expected') a.expected = v, i++;
    else if (k === '--random') a.random = true;
    else if (k === '--threads') a.threads = Number(v), i++;
    else if (k === '--seconds') a.seconds = Number(v), i++;
    else if (k === '--help') {
      console.log('usage: serve_onnx.js --onnx FILE (--inputs ST --expected CSV | --random) ' +
                  '[--threads N] [--seconds S]');
      process.exit(0);
    } else {
      console.error(`serve_onnx: unknown argument '${k}'`);
      process.exit(2);
    }
  }
  if (!a.onnx || !(a.threads >= 1) || !(a.seconds > 0) || !(a.random || (a.inputs && a.expected))) {
    console.error('serve_onnx: --onnx and either --inputs with --expected or --random are ' +
                  'required; --threads >= 1; --seconds > 0');
    process.exit(2);
  }
  return a;
}

async function main() {
  const a = parseArgs(process.argv);
  const session = await ort.InferenceSession.create(a.onnx, {
    executionProviders: ['cpu'],
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const vocab = JSON.parse(fs.readFileSync(a.onnx.replace(/\.onnx$/, '') + '.vocab.json', 'utf8'));
  const all = a.random ? null : io.readSafetensors(ort, a.inputs);
  const want = a.random ? null : io.readCsv(a.expected);
  const out = [];
  const put = (k, v) => out.push(`${k}: ${v}`);
  put('impl', 'onnxruntime');
  put('model', a.onnx);
  put('threads', a.threads);
  put('onnxruntime_version', require('onnxruntime-node/package.json').version);
  put('inputs', a.random ? 'random' : a.inputs);
  let wall = 0, cpu = 0;
  for (const B of SIZES) {
    let feeds = {};
    if (a.random) feeds = io.randomInputs(ort, vocab, B, 1234 + B);
    else for (const name of session.inputNames) feeds[name] = io.firstRows(ort, all[name], B);
    if (want) {
      const got = await session.run(feeds);
      let diff = 0;
      for (const name of session.outputNames) diff = Math.max(diff, io.maxAbsDiff(got[name].data, want[name], B).diff);
      put(`ort_n${B}_max_abs_diff`, diff.toPrecision(3));
      if (!(diff <= 1e-5)) {
        console.error(`serve_onnx: ${B} candidates: outputs differ from crossrec score by ${diff}`);
        process.exit(1);
      }
    }
    // warm-up: 10 calls and 5% of the time
    const w0 = performance.now();
    for (let i = 0; i < 10 || performance.now() - w0 < 50 * a.seconds; i++) await session.run(feeds);
    const lat = [];
    const s0 = performance.now(), c0 = process.cpuUsage();
    while (performance.now() - s0 < 1e3 * a.seconds || lat.length < 20) {
      const t0 = performance.now();
      await session.run(feeds);
      lat.push(performance.now() - t0);
    }
    wall += (performance.now() - s0) / 1e3;
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1e6;
    lat.sort((x, y) => x - y);
    const p50 = lat[Math.floor((lat.length - 1) / 2)], p99 = lat[Math.floor((lat.length - 1) * 0.99)];
    put(`ort_n${B}_p50_ms`, p50.toFixed(4));
    put(`ort_n${B}_p99_ms`, p99.toFixed(4));
  }
  put('cpu_util', (cpu / wall).toFixed(2));
  console.log(out.join('\n'));
}

main().catch((err) => {
  console.error(`serve_onnx: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
