// Encodes a file with the npm gpt-tokenizer (r50k_base) and prints "node_mb_s=... node_tokens=...".
// Usage: node bench_tokenizer_node.js <node_modules dir holding gpt-tokenizer> <file> <repeats>
const fs = require('fs');
const path = require('path');
const [modules, file, repeats] = process.argv.slice(2);
const { encode } = require(path.join(modules, 'gpt-tokenizer', 'cjs', 'encoding', 'r50k_base.js'));
const text = fs.readFileSync(file, 'utf8');
const bytes = Buffer.byteLength(text, 'utf8');
let tokens = encode(text, { disallowedSpecial: new Set() }).length;  // warm-up (JIT, caches)
let best = Infinity;
for (let i = 0; i < Number(repeats); i++) {
  const start = process.hrtime.bigint();
  tokens = encode(text, { disallowedSpecial: new Set() }).length;
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}
console.log(`node_mb_s=${(bytes / 1e6 / best).toFixed(2)} node_tokens=${tokens}`);
