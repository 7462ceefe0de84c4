#!/usr/bin/env node
// serve_onnx.js - the ONNX Runtime side of the in-process serving
// comparison: the twin that bench/export_onnx.py exported, run from node
// with onnxruntime-node (CPU execution provider, intra-op threads set
// explicitly, inter-op 1, sequential), p50/p99 of one session.run per
// request of 10, 100 and 1000 candidates, under the names
// build/bench/serve_latency prints. Before timing a size it checks the
// outputs against PyTorch's on the same inputs (exported beside the graph).
//
//   NODE_PATH=/tmp/ort/node_modules node bench/serve_onnx.js \
//       --onnx build/bench/onnx/reference --threads 1 --seconds 1
// onnxruntime-node ships its CPU binaries inside the npm package
// (install with ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = { onnx: null, threads: 1, seconds: 1 };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (k === '--onnx') a.onnx = v, i++;
    else if (k === '--threads') a.threads = Number(v), i++;
    else if (k === '--seconds') a.seconds = Number(v), i++;
    else if (k === '--help') {
      console.log('usage: serve_onnx.js --onnx STEM [--threads N] [--seconds S]');
      process.exit(0);
    } else {
      console.error(`serve_onnx: unknown argument '${k}'`);
      process.exit(2);
    }
  }
  if (!a.onnx || !(a.threads >= 1) || !(a.seconds > 0)) {
    console.error('serve_onnx: --onnx STEM is required; --threads >= 1; --seconds > 0');
    process.exit(2);
  }
  return a;
}

// A tensor of the manifest, copied out of the shared file (typed arrays
// need aligned offsets).
function tensor(buf, item) {
  const n = item.shape.reduce((x, y) => x * y, 1);
  const bytes = buf.subarray(item.offset, item.offset + n * (item.dtype === 'int64' ? 8 : 4));
  const copy = new Uint8Array(bytes).buffer;
  const data = item.dtype === 'int64' ? new BigInt64Array(copy) : new Float32Array(copy);
  return new ort.Tensor(item.dtype, data, item.shape);
}

async function main() {
  const a = parseArgs(process.argv);
  const man = JSON.parse(fs.readFileSync(a.onnx + '.json', 'utf8'));
  const buf = fs.readFileSync(a.onnx + '.bin');
  const session = await ort.InferenceSession.create(a.onnx + '.onnx', {
    executionProviders: ['cpu'],
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const out = [];
  const put = (k, v) => out.push(`${k}: ${v}`);
  put('impl', 'onnxruntime');
  put('model', man.model);
  put('threads', a.threads);
  put('onnxruntime_version', require('onnxruntime-node/package.json').version);
  put('input_width', man.input_width);
  let wall = 0, cpu = 0;
  for (const B of Object.keys(man.sizes).map(Number).sort((x, y) => x - y)) {
    const ent = man.sizes[String(B)];
    const feeds = {};
    for (const it of ent.inputs) feeds[it.name] = tensor(buf, it);
    const want = tensor(buf, ent.expected).data;
    const got = (await session.run(feeds)).pred.data;
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
    put(`n${B}_gflop_per_call`, ent.gflop_per_call.toFixed(6));
    put(`ort_n${B}_max_abs_diff`, diff.toPrecision(3));
    if (!(diff < 1e-4)) {
      console.error(`serve_onnx: ${B} candidates: outputs differ from PyTorch's by ${diff}`);
      process.exit(1);
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
    put(`ort_n${B}_gflops`, (ent.gflop_per_call / (p50 * 1e-3)).toFixed(2));
  }
  put('cpu_util', (cpu / wall).toFixed(2));
  console.log(out.join('\n'));
}

main().catch((err) => {
  console.error(`serve_onnx: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
