// lm_llamacpp.mjs - the llama.cpp anchor of scripts/bench_lm.sh: loads a
// random-weight GGUF that bench/lm_gguf.py writes (the austen-small or the
// llama134m shape) through node-llama-cpp's prebuilt CPU binaries and
// prints, as bench/lm.c does, `name: value` lines: greedy generation
// tokens/s after a one-token prompt (128 new tokens) and the time of one
// forward over a 256-token prompt (prefill, no backward: llama.cpp does not
// train). The shape's name comes from the file name (lm_SHAPE_random.gguf).
//
// Usage (node-llama-cpp 3.21.1 installed outside the repository):
//   cd /tmp/x && npm install node-llama-cpp@3.21.1
//   NODE_PATH=/tmp/x/node_modules node bench/lm_llamacpp.mjs MODEL.gguf THREADS [SECONDS]
import { createRequire } from "node:module";
import path from "node:path";

const [modelPath, threadsArg, secondsArg] = process.argv.slice(2);
if (!modelPath || !threadsArg) {
    console.error("usage: node bench/lm_llamacpp.mjs MODEL.gguf THREADS [SECONDS]");
    process.exit(2);
}
const threads = Number(threadsArg), seconds = Number(secondsArg ?? 2), GEN = 128, T = 256;
// ES modules ignore NODE_PATH, so resolve the package through it explicitly
const req = createRequire(path.join(process.env.NODE_PATH ?? process.cwd(), "noop.js"));
const { getLlama, LlamaLogLevel } = await import(req.resolve("node-llama-cpp"));

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const ctx = await model.createContext({ contextSize: T, batchSize: T, threads });
const seq = ctx.getSequence();

async function median(fn, secs) {
    await fn(); // warm up
    const ts = [];
    let total = 0;
    while (ts.length < 3 || (total < secs && ts.length < 256)) {
        const t0 = performance.now();
        await fn();
        const dt = (performance.now() - t0) / 1e3;
        ts.push(dt);
        total += dt;
    }
    ts.sort((a, b) => a - b);
    return ts[Math.floor(ts.length / 2)];
}

async function generate() {
    await seq.clearHistory();
    let n = 0;
    // temperature 0 is greedy; the sequence never stops at EOS on its own
    for await (const tok of seq.evaluate([1], { temperature: 0 })) {
        if (++n >= GEN) break;
    }
}

const prompt = Array.from({ length: T }, (_, i) => 259 + ((i * 7919) % 3800));
async function prefill() {
    await seq.clearHistory();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
}

const genS = await median(generate, seconds / 2);
const preS = await median(prefill, seconds / 2);
const shape = path.basename(modelPath).replace(/^lm_/, "").replace(/_random\.gguf$|\.gguf$/, "");
console.log(`model: ${shape} (random weights, GGUF f32)`);
console.log(`threads: ${threads}`);
console.log(`gen_tokens_per_s: ${(GEN / genS).toFixed(1)}`);
console.log(`prefill_${T}_ms: ${(preS * 1e3).toFixed(2)}`);
await ctx.dispose();
await model.dispose();
await llama.dispose();
