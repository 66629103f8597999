import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipTokenizer, cleanText, fixText } from '../../lib/segment/tokenizer';
import { pythonBin, repoRoot, sharedDir, testModelsDir } from '../helpers/paths';

const clipVocab = path.join(sharedDir, 'reference', 'clip', 'bpe_simple_vocab_16e6.txt.gz');
const classesDir = path.join(sharedDir, 'reference', 'classes');
const pythonTokenizer = path.join(repoRoot, 'models', 'san', 'tokenizer.py');
const tinyDir = path.join(testModelsDir, 'tiny');
const tinyManifest = path.join(tinyDir, 'manifest.json');
const describeWithClipVocab = fs.existsSync(clipVocab) ? describe : describe.skip;

/** Strings that exercise every branch of CLIP's clean-up and pre-split, beside the datasets' class names. */
const EDGE_CASES = [
  '', ' ', 'a', 'A PHOTO OF A CAT.', "it's the dog's toy, isn't it? we'll see; they'd've", 'x'.repeat(300),
  'tab\tseparated\nlines\r\nand  many   spaces', '  leading and trailing  ', 'numbers 12345 and 3.14159 and ⅔ ٣',
  'punctuation!!! ??? ... --- ((()))', 'emoji 🐈 🐕‍🦺 and flags 🇫🇷', 'Ünïcödé café naïve Ørsted', 'Straße ǅemal ΣΊΣΥΦΟΣ',
  '日本語のテキスト', 'Русский текст', 'العربية', 'हिन्दी', '&amp; &lt;tag&gt; &quot;quoted&quot; &#39;x&#39; &#x41;',
  '&amp;amp; double escaped', '&notanentity; &amp', '<start_of_text> inside <end_of_text> text', 'mixed\u00a0nbsp\u2003em',
  'controls \x1c\x1d at \x85 next', 'a/b\\c|d_e+f=g', 'door-stuff', 'wall-brick', 'tvmonitor', 'pottedplant',
  'person, individual, someone, somebody, mortal, soul', 'There is a large {} in the scene.',
  // What fixText changes, as ftfy does: curly quotes, ligatures, full-width forms, NFD.
  'don\u2019t', '\u2018a cat\u2019 and \u201ca dog\u201d', '\u201ab\u201b \u201ec\u201f', '\ufb01sh \ufb02ower \ufb03',
  '\u0132\u0133 \u01c7\u01c8\u01c9 \ufb05\ufb06', '\uff21\uff22\uff23\uff11\uff12\uff13',
  '\uff43\uff41\uff54\u3000\uff01\uff5e', 'a photo of a cafe\u0301, nai\u0308ve',
];

/** The tiny model's merges file, under the name its manifest gives (`files.bpe_vocab.name`). */
function tinyVocabFile(): string | undefined {
  if (!fs.existsSync(tinyManifest)) return undefined;
  const manifest = JSON.parse(fs.readFileSync(tinyManifest, 'utf8')) as { files: { bpe_vocab: { name: string } } };
  return path.join(tinyDir, manifest.files.bpe_vocab.name);
}

function datasetClassNames(): string[] {
  if (!fs.existsSync(classesDir)) return [];
  return fs
    .readdirSync(classesDir)
    .flatMap((file) => fs.readFileSync(path.join(classesDir, file), 'utf8').split('\n'))
    .filter((line) => line.trim() !== '');
}

/**
 * Token rows from models/san/tokenizer.py, the Python reference, for the same texts and merges file. It runs
 * without ftfy, as on Debian 12, even where ftfy is installed: its fallback, fix_text_subset, is what fixText does.
 */
function pythonTokenize(bpeFile: string, texts: string[], contextLength: number): number[][] {
  const script = [
    'import json, sys',
    'from models.san import tokenizer as reference',
    'from models.san.tokenizer import SimpleTokenizer, tokenize',
    'reference.ftfy = None',
    'job = json.load(sys.stdin)',
    'rows = tokenize(SimpleTokenizer(job["bpe"]), job["texts"], context_length=job["ctx"])',
    'json.dump(rows.tolist(), sys.stdout)',
  ].join('\n');
  const run = spawnSync(pythonBin, ['-c', script], {
    cwd: repoRoot,
    input: JSON.stringify({ bpe: bpeFile, texts, ctx: contextLength }),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`the Python tokenizer failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as number[][];
}

function rows(tokenizer: ClipTokenizer, texts: string[], contextLength = 77): number[][] {
  const { ids } = tokenizer.tokenize(texts, contextLength);
  return texts.map((_, r) => Array.from(ids.subarray(r * contextLength, (r + 1) * contextLength), Number));
}

describeWithClipVocab('ClipTokenizer with CLIP vocabulary', () => {
  // Loaded in beforeAll: jest runs a skipped describe's body too, and the file is absent where ../shared is.
  let tokenizer: ClipTokenizer;
  beforeAll(() => {
    tokenizer = ClipTokenizer.fromFile(clipVocab);
  });

  test('has CLIP vocabulary size and special tokens', () => {
    expect(tokenizer.vocabSize).toBe(49408);
    expect(tokenizer.startToken).toBe(49406);
    expect(tokenizer.endToken).toBe(49407);
  });

  test('encodes a prompt to CLIP token ids', () => {
    expect(tokenizer.encode('a photo of a cat.')).toEqual([320, 1125, 539, 320, 2368, 269]);
    expect(tokenizer.encode('A   Photo of a CAT.')).toEqual([320, 1125, 539, 320, 2368, 269]);
  });

  test('pads with zeros after the end token', () => {
    const [row] = rows(tokenizer, ['a cat']);
    expect(row.slice(0, 4)).toEqual([49406, 320, 2368, 49407]);
    expect(row.slice(4).every((id) => id === 0)).toBe(true);
  });

  test('truncates a long text to the context and keeps the end token last', () => {
    const [row] = rows(tokenizer, ['cat '.repeat(200)]);
    expect(row).toHaveLength(77);
    expect(row[0]).toBe(49406);
    expect(row[76]).toBe(49407);
    expect(row.slice(1, 76).every((id) => id === 2368)).toBe(true);
  });

  test('maps literal special-token text to the special ids', () => {
    expect(tokenizer.encode('<start_of_text>cat<end_of_text>')).toEqual([49406, 2368, 49407]);
  });

  const pythonReady = fs.existsSync(pythonTokenizer) ? test : test.skip;
  pythonReady('equals the Python reference on every dataset class name, prompt and edge case', () => {
    const names = datasetClassNames();
    const texts = [...names, ...names.slice(0, 200).map((n) => `There is a large ${n} in the scene.`), ...EDGE_CASES];
    expect(texts.length).toBeGreaterThan(1500);
    expect(texts.filter((text) => fixText(text) !== text).length).toBeGreaterThanOrEqual(8);
    expect(rows(tokenizer, texts)).toEqual(pythonTokenize(clipVocab, texts, 77));
  });
});

describe('ClipTokenizer with a small vocabulary', () => {
  const tinyVocab = tinyVocabFile();
  const ready = tinyVocab && fs.existsSync(tinyVocab) && fs.existsSync(pythonTokenizer) ? test : test.skip;

  ready('equals the Python reference on the tiny model vocabulary', () => {
    const tokenizer = ClipTokenizer.fromFile(tinyVocab as string);
    expect(rows(tokenizer, EDGE_CASES, 16)).toEqual(pythonTokenize(tinyVocab as string, EDGE_CASES, 16));
  });

  test('numbers its vocabulary: 512 byte tokens, the merges, then start and end', () => {
    const tokenizer = new ClipTokenizer('header\nc a\nca t</w>\n');
    expect(tokenizer.vocabSize).toBe(512 + 2 + 2);
    expect(tokenizer.encode('cat')).toEqual([513]);
    expect(tokenizer.encode('ca')).toEqual([66, 256 + 64]);
  });

  test('rejects a malformed merges file naming the line', () => {
    expect(() => new ClipTokenizer('header\na b\nabc\n')).toThrow(/line 3 of the BPE merges file/);
  });

  test('rejects a context length below 2', () => {
    expect(() => new ClipTokenizer('header\n').tokenize(['x'], 1)).toThrow(RangeError);
  });
});

describe('CLIP text clean-up', () => {
  test.each([
    ['don\u2019t \u201cquote\u201d', 'don\'t "quote"'],
    ['\ufb01sh \ufb02ower', 'fish flower'],
    ['\uff43\uff41\uff54\u3000\uff11', 'cat 1'],
    ['cafe\u0301', 'caf\u00e9'],
    ['\u2018a\u2019 \u201ab\u201b \u201ec\u201f', '\'a\' \'b\' "c"'],
    ['\ufb00 \ufb03 \ufb04 \ufb05 \ufb06 \u0132\u0133 \u01c7\u01c8\u01c9', 'ff ffi ffl \u017ft st IJij LJLjlj'],
    ['\uff21\uff22\uff23\uff11\uff12\uff13', 'ABC123'],
    ['plain text', 'plain text'],
  ])('fixText(%j) is %j, as ftfy.fix_text', (input, expected) => {
    expect(fixText(input)).toBe(expected);
  });

  test.each([
    ['  Two   Words\t', 'two words'],
    ['&amp;lt;b&amp;gt;', '<b>'],
    ['\x1c edge \x1f', 'edge'],
    ['keep\x1cinner', 'keep\x1cinner'],
    ['a\ufeffb', 'a\ufeffb'],
  ])('cleanText(%j) is %j', (input, expected) => {
    expect(cleanText(input)).toBe(expected);
  });
});
