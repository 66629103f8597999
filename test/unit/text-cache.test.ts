import * as fs from 'node:fs';
import * as path from 'node:path';
import { TextEmbeddingCache, TextCacheScope } from '../../lib/segment/text-cache';
import { useTempDir } from '../helpers/temp-dir';

const scope: TextCacheScope = { modelId: 'model-a', templateKey: 'vild', dim: 2 };

/** A fake text encoder: the embedding of a name is [its length, its first char code]; it records every batch. */
function recordingEncoder(): { encode: (names: string[]) => Promise<Float32Array>; batches: string[][] } {
  const batches: string[][] = [];
  const encode = async (names: string[]): Promise<Float32Array> => {
    batches.push([...names]);
    await new Promise((resolve) => setImmediate(resolve));
    return Float32Array.from(names.flatMap((n) => [n.length, n.charCodeAt(0)]));
  };
  return { encode, batches };
}

const rowsOf = (matrix: Float32Array): number[][] =>
  Array.from({ length: matrix.length / 2 }, (_, i) => [matrix[2 * i], matrix[2 * i + 1]]);

describe('TextEmbeddingCache', () => {
  const tmp = useTempDir('san-cache-');
  test('encodes all misses of a call in one batch and keeps caller order and duplicates', async () => {
    const cache = new TextEmbeddingCache({ maxBytes: 1 << 20 });
    const { encode, batches } = recordingEncoder();
    const out = await cache.lookup(scope, ['sky', 'tree', 'sky', 'road'], encode);
    expect(rowsOf(out)).toEqual([[3, 115], [4, 116], [3, 115], [4, 114]]);
    expect(batches).toEqual([['sky', 'tree', 'road']]);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 3, entries: 3, evictions: 0 });
  });

  test('serves repeated names from the cache', async () => {
    const cache = new TextEmbeddingCache({ maxBytes: 1 << 20 });
    const { encode, batches } = recordingEncoder();
    await cache.lookup(scope, ['sky', 'tree'], encode);
    const out = await cache.lookup(scope, ['tree', 'car'], encode);
    expect(rowsOf(out)).toEqual([[4, 116], [3, 99]]);
    expect(batches).toEqual([['sky', 'tree'], ['car']]);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 3 });
  });

  test('keys by model and template set as well as by name', async () => {
    const cache = new TextEmbeddingCache({ maxBytes: 1 << 20 });
    const { encode, batches } = recordingEncoder();
    await cache.lookup(scope, ['sky'], encode);
    await cache.lookup({ ...scope, templateKey: 'single' }, ['sky'], encode);
    await cache.lookup({ ...scope, modelId: 'model-b' }, ['sky'], encode);
    expect(batches).toHaveLength(3);
  });

  test('shares one encoding between concurrent lookups of the same names', async () => {
    const cache = new TextEmbeddingCache({ maxBytes: 1 << 20 });
    const { encode, batches } = recordingEncoder();
    const [a, b] = await Promise.all([
      cache.lookup(scope, ['sky', 'tree'], encode),
      cache.lookup(scope, ['tree', 'sky', 'car'], encode),
    ]);
    expect(batches).toEqual([['sky', 'tree'], ['car']]);
    expect(rowsOf(a)).toEqual([[3, 115], [4, 116]]);
    expect(rowsOf(b)).toEqual([[4, 116], [3, 115], [3, 99]]);
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 3 });
  });

  test('evicts the least recently used entries at the byte budget', async () => {
    const keyBytes = (name: string): number => JSON.stringify([scope.modelId, scope.templateKey, name]).length * 2;
    const entryBytes = 2 * 4 + keyBytes('aa'); // every name below has two characters
    const cache = new TextEmbeddingCache({ maxBytes: 3 * entryBytes });
    const { encode, batches } = recordingEncoder();
    await cache.lookup(scope, ['aa', 'bb', 'cc'], encode);
    await cache.lookup(scope, ['aa'], encode); // aa is now the most recently used
    await cache.lookup(scope, ['dd'], encode); // evicts bb
    expect(cache.stats()).toMatchObject({ entries: 3, evictions: 1, bytes: 3 * entryBytes });
    await cache.lookup(scope, ['aa', 'cc', 'dd'], encode);
    await cache.lookup(scope, ['bb'], encode);
    expect(batches).toEqual([['aa', 'bb', 'cc'], ['dd'], ['bb']]);
  });

  test('does not cache a failed encoding, and a later call retries it', async () => {
    const cache = new TextEmbeddingCache({ maxBytes: 1 << 20 });
    const failing = async (): Promise<Float32Array> => {
      throw new Error('encoder down');
    };
    await expect(cache.lookup(scope, ['sky'], failing)).rejects.toThrow('encoder down');
    const { encode, batches } = recordingEncoder();
    await cache.lookup(scope, ['sky'], encode);
    expect(batches).toEqual([['sky']]);
  });

  test('rejects an encoder that returns the wrong number of values', async () => {
    const cache = new TextEmbeddingCache({ maxBytes: 1 << 20 });
    await expect(cache.lookup(scope, ['sky', 'sea'], async () => new Float32Array(3))).rejects.toThrow(
      /returned 3 values for 2×2/,
    );
  });

  test('saves to a file and reloads from it at start', async () => {
    const file = path.join(tmp(), 'text.cache');
    const first = new TextEmbeddingCache({ maxBytes: 1 << 20, file });
    const { encode } = recordingEncoder();
    await first.lookup(scope, ['sky', 'tree'], encode);
    await first.save();
    const second = new TextEmbeddingCache({ maxBytes: 1 << 20, file });
    const refuse = async (): Promise<Float32Array> => {
      throw new Error('should have been cached');
    };
    expect(rowsOf(await second.lookup(scope, ['tree', 'sky'], refuse))).toEqual([[4, 116], [3, 115]]);
    expect(second.stats()).toMatchObject({ entries: 2, hits: 2, misses: 0 });
  });

  test('refuses a file that is not a text cache', () => {
    const file = path.join(tmp(), 'bogus');
    fs.writeFileSync(file, 'hello');
    expect(() => new TextEmbeddingCache({ maxBytes: 100, file })).toThrow(/is not a san-node text cache/);
  });
});

describe('a file that is not a cache', () => {
  const tmp = useTempDir('san-cache-damaged-');
  test('a damaged cache file is refused with ERR_SAN_INVALID_ARG, naming the problem', () => {
    const file = path.join(tmp(), 'damaged.bin');
    const header = Buffer.from(JSON.stringify({ keys: ['k'], dims: [4] }));
    const length = Buffer.alloc(4);
    length.writeUInt32LE(header.length);
    // The header lists 16 bytes of embeddings; the file holds 8.
    fs.writeFileSync(file, Buffer.concat([Buffer.from('san-node text cache v1\n'), length, header, Buffer.alloc(8)]));
    expect(() => new TextEmbeddingCache({ maxBytes: 1024, file })).toThrow(expect.objectContaining({
      code: 'ERR_SAN_INVALID_ARG', message: expect.stringMatching(/is damaged: it holds 8 bytes of embeddings where its header lists 16/),
    }));
  });
});
