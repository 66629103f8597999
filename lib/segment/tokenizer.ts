/**
 * CLIP's text tokenizer: byte-level BPE over a merges file, as open_clip 2.16's `SimpleTokenizer` and `tokenize`.
 *
 * Text is fixed (the ftfy subset below), HTML-unescaped twice, stripped, whitespace-collapsed and lower-cased,
 * pre-split with CLIP's regular expression, encoded byte by byte into CLIP's printable alphabet and merged by BPE
 * rank. `tokenize` wraps each text in the start and end tokens and pads with 0 to the context length; a text too
 * long keeps its first tokens and ends with the end token.
 */
import { readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { decodeHTML } from 'entities';

const START_OF_TEXT = '<start_of_text>';
const END_OF_TEXT = '<end_of_text>';
const END_OF_WORD = '</w>';
/** CLIP reads at most this many merges from its file; a smaller vocabulary file is used whole. */
const MAX_MERGES = 49152 - 256 - 2;
/** The largest merges file read, compressed or decompressed: CLIP's own is about 1.3 MB gzipped. */
const MAX_VOCAB_BYTES = 32 * 1024 * 1024;
/** CLIP's context length. */
export const CLIP_CONTEXT_LENGTH = 77;
/** Past this many distinct words the BPE memo is dropped, so a long-running server's memory stays bounded. */
const MAX_CACHED_WORDS = 50_000;

// Python's str.isspace(), which str.strip() uses: wider than JS's trim() (\x1c-\x1f, \x85) and without \ufeff.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
// The `regex` module's \s is the White_Space property, which JS's \s is not (it adds \ufeff, drops \x85).
const WHITESPACE_RUN = /\p{White_Space}+/gu;
const PRE_SPLIT = new RegExp(
  `${START_OF_TEXT}|${END_OF_TEXT}|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\p{White_Space}\\p{L}\\p{N}]+`,
  'giu',
);

// The part of ftfy.fix_text (CLIP's first step) that changes class names and prompts: curly quotes, Latin
// ligatures and full-width ASCII, then NFC. Mojibake repair is not reproduced.
const CURLY_SINGLE = /[\u2018\u2019\u201a\u201b]/g;
const CURLY_DOUBLE = /[\u201c\u201d\u201e\u201f]/g;
const LIGATURES: Readonly<Record<string, string>> = {
  '\u0132': 'IJ', '\u0133': 'ij', '\u0149': '\u02bcn', '\u01c7': 'LJ', '\u01c8': 'Lj', '\u01c9': 'lj',
  '\u01ca': 'NJ', '\u01cb': 'Nj', '\u01cc': 'nj', '\ufb00': 'ff', '\ufb01': 'fi', '\ufb02': 'fl', '\ufb03': 'ffi',
  '\ufb04': 'ffl', '\ufb05': '\u017ft', '\ufb06': 'st',
};
const LIGATURE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');
const FULL_WIDTH = /[\uff01-\uff5e\u3000]/g;

/** ftfy's fixes that matter for short English labels; see the note above. */
export function fixText(text: string): string {
  return text
    .replace(CURLY_SINGLE, "'")
    .replace(CURLY_DOUBLE, '"')
    .replace(LIGATURE, (c) => LIGATURES[c])
    .replace(FULL_WIDTH, (c) => (c === '\u3000' ? ' ' : String.fromCharCode(c.charCodeAt(0) - 0xfee0)))
    .normalize('NFC');
}

/** CLIP's clean-up before pre-splitting: fix, unescape HTML twice, strip, collapse whitespace, lower-case. */
export function cleanText(text: string): string {
  const unescaped = decodeHTML(decodeHTML(fixText(text))).replace(PY_STRIP, '');
  return unescaped.replace(WHITESPACE_RUN, ' ').replace(PY_STRIP, '').toLowerCase();
}

/**
 * CLIP's map from the 256 byte values to printable characters, so that BPE works on text, never on raw bytes.
 * Its order is the order of the base vocabulary: the bytes that print as themselves first, then the others.
 */
function byteAlphabet(): Map<number, string> {
  const range = (from: string, to: string): number[] =>
    Array.from({ length: to.charCodeAt(0) - from.charCodeAt(0) + 1 }, (_, i) => from.charCodeAt(0) + i);
  const direct = [...range('!', '~'), ...range('\u00a1', '\u00ac'), ...range('\u00ae', '\u00ff')];
  const alphabet = new Map(direct.map((byte) => [byte, String.fromCharCode(byte)]));
  let shifted = 0;
  for (let byte = 0; byte < 256; byte += 1) {
    if (!alphabet.has(byte)) alphabet.set(byte, String.fromCharCode(256 + shifted++));
  }
  return alphabet;
}

/** The token ids of a batch of texts, row-major [texts.length, contextLength], ready for the text encoder. */
export interface TokenBatch {
  readonly ids: BigInt64Array;
  readonly dims: readonly [number, number];
}

export class ClipTokenizer {
  /** Number of token ids: 512 byte tokens, one per merge, then the start and end tokens. */
  readonly vocabSize: number;
  readonly startToken: number;
  readonly endToken: number;
  readonly #alphabet = byteAlphabet();
  readonly #encoder = new Map<string, number>();
  readonly #ranks = new Map<string, number>();
  readonly #words = new Map<string, string[]>();

  /** Reads a merges file as CLIP ships it (`bpe_simple_vocab_16e6.txt.gz`), gzip or plain text. */
  static fromFile(file: string): ClipTokenizer {
    const size = statSync(file).size;
    if (size > MAX_VOCAB_BYTES) throw new Error(`${file} has ${size} bytes, more than a merges file's ${MAX_VOCAB_BYTES}`);
    const bytes = readFileSync(file);
    const isGzip = bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
    // Bounded: a gzip bomb would otherwise inflate to gigabytes before anything could check it.
    const text = isGzip ? gunzipSync(bytes, { maxOutputLength: MAX_VOCAB_BYTES }) : bytes;
    return new ClipTokenizer(text.toString('utf8'));
  }

  /** @param mergesText - the merges file's text: a header line, then one merge ("a b") per line, best first. */
  constructor(mergesText: string) {
    const merges = mergesText
      .split('\n')
      .slice(1)
      .filter((line) => line.trim() !== '')
      .slice(0, MAX_MERGES)
      .map((line) => line.split(/\s+/).filter(Boolean));
    const bad = merges.findIndex((pair) => pair.length !== 2);
    if (bad >= 0) throw new Error(`Expected "left right" on line ${bad + 2} of the BPE merges file`);
    const base = [...this.#alphabet.values()];
    const vocab = [...base, ...base.map((c) => c + END_OF_WORD)];
    merges.forEach(([left, right], rank) => {
      vocab.push(left + right);
      this.#ranks.set(`${left} ${right}`, rank);
    });
    vocab.push(START_OF_TEXT, END_OF_TEXT);
    vocab.forEach((token, id) => this.#encoder.set(token, id));
    this.vocabSize = vocab.length;
    this.startToken = this.vocabSize - 2;
    this.endToken = this.vocabSize - 1;
  }

  /** The BPE token ids of one text, without the start and end tokens. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const [piece] of cleanText(text).matchAll(PRE_SPLIT)) {
      if (piece === START_OF_TEXT || piece === END_OF_TEXT) {
        ids.push(this.#encoder.get(piece) as number);
        continue;
      }
      const word = Array.from(Buffer.from(piece, 'utf8'), (byte) => this.#alphabet.get(byte) as string).join('');
      for (const token of this.#bpe(word)) ids.push(this.#encoder.get(token) as number);
    }
    return ids;
  }

  /**
   * Encodes each text between the start and end tokens, truncated to `contextLength` and zero-padded to it, or with
   * `padToLongest` only to the longest row: CLIP's text mask is causal, so the padding columns change no embedding.
   */
  tokenize(texts: readonly string[], contextLength: number = CLIP_CONTEXT_LENGTH,
    { padToLongest = false }: { padToLongest?: boolean } = {}): TokenBatch {
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new RangeError(`Expected an integer of at least 2 for contextLength but received ${contextLength}`);
    }
    const rows = texts.map((text) => [this.startToken, ...this.encode(text)].slice(0, contextLength - 1)
      .concat(this.endToken));
    const width = padToLongest ? Math.max(2, ...rows.map((tokens) => tokens.length)) : contextLength;
    const ids = new BigInt64Array(texts.length * width);
    rows.forEach((tokens, row) => {
      tokens.forEach((id, col) => {
        ids[row * width + col] = BigInt(id);
      });
    });
    return { ids, dims: [texts.length, width] };
  }

  /** Merges the symbols of one pre-split word (its last symbol marked end-of-word) by rank, best pair first. */
  #bpe(word: string): string[] {
    const known = this.#words.get(word);
    if (known) return known;
    let symbols = [...word.slice(0, -1), word.slice(-1) + END_OF_WORD];
    while (symbols.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i += 1) {
        const rank = this.#ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) [best, bestRank] = [i, rank];
      }
      if (best < 0) break;
      const [left, right] = [symbols[best], symbols[best + 1]];
      // Like CLIP, merge every occurrence of the best pair in one left-to-right pass.
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i += 1) {
        if (symbols[i] === left && symbols[i + 1] === right) {
          merged.push(left + right);
          i += 1;
        } else {
          merged.push(symbols[i]);
        }
      }
      symbols = merged;
    }
    if (this.#words.size >= MAX_CACHED_WORDS) this.#words.clear();
    this.#words.set(word, symbols);
    return symbols;
  }
}
