// Encodes a file with the npm encoders of r50k_base, one thread each, and prints one line per encoder:
// "NAME mb_s=... tokens=..." (best of `repeats` passes after a warm-up). Encoders: the native
// tiktoken-rs (tiktoken-rs-node-linux-x64-gnu; skipped where it is not installed), tiktoken's core as
// WASM (tiktoken, encode_ordinary) and the JavaScript gpt-tokenizer.
// Usage: node bench_tokenizer_node.js <node_modules dir> <file> <repeats>
const fs = require('fs');
const path = require('path');
const [modules, file, repeats] = process.argv.slice(2);
const load = (name) => require(path.join(path.resolve(modules), name));
const text = fs.readFileSync(file, 'utf8');
const bytes = Buffer.byteLength(text, 'utf8');

const encoders = [];
try {
  const native = load('tiktoken-rs-node-linux-x64-gnu').getEncoding('r50k_base');
  encoders.push(['tiktoken_rs', (t) => native.encode(t)]);
} catch {
  // Not installed on this platform.
}
const wasm = load('tiktoken').get_encoding('r50k_base');
encoders.push(['tiktoken_wasm', (t) => wasm.encode_ordinary(t)]);
const { encode } = load('gpt-tokenizer/cjs/encoding/r50k_base.js');
encoders.push(['gpt_tokenizer', (t) => encode(t, { disallowedSpecial: new Set() })]);

for (const [name, encodeText] of encoders) {
  let tokens = encodeText(text).length;  // warm-up (JIT, caches)
  let best = Infinity;
  for (let i = 0; i < Number(repeats); i++) {
    const start = process.hrtime.bigint();
    tokens = encodeText(text).length;
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  console.log(`${name} mb_s=${(bytes / 1e6 / best).toFixed(2)} tokens=${tokens}`);
}
