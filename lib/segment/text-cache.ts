/**
 * A least-recently-used cache of class-name text embeddings with a byte budget.
 *
 * Text embeddings do not depend on the image, so a server that sees the same vocabulary again pays for the text
 * encoder once. Entries are keyed by (model id, template set, exact class string). All the misses of one lookup are
 * encoded in one batch, and a class being encoded for one caller is awaited, not encoded again, by another.
 */
import { promises as fsp, readFileSync, statSync } from 'node:fs';
import { ErrorCode, SanError } from '../errors';

/** Options of a {@link TextEmbeddingCache}. */
export interface TextCacheOptions {
  /** Upper bound of the embeddings' memory, in bytes; least recently used entries go first. */
  readonly maxBytes: number;
  /** A file to reload the cache from at start, and to write it to with `save()`. */
  readonly file?: string;
}

/** Counters of a {@link TextEmbeddingCache}. */
export interface TextCacheStats {
  /** Class names served from the cache, or from an encoding already under way. */
  hits: number;
  /** Class names that had to be encoded. */
  misses: number;
  /** Memory the cached embeddings take, in bytes. */
  bytes: number;
  /** Number of cached embeddings. */
  entries: number;
  /** Entries dropped to stay within `maxBytes`. */
  evictions: number;
}

/**
 * A text encoder as it computes, for {@link TextCacheScope.modelId}: its weights (the sha256 of its file), its dtype
 * and the kind of device. A bfloat16 encoder's embeddings, or a GPU's, differ from a float32 CPU's, and a cache file
 * shared between them must not hand one the other's. (SanModel's text encoder is float32 whatever the model's dtype.)
 */
export function textEncoderId(sha256: string, dtype: string, device: string): string {
  return `${sha256}/${dtype}/${device === 'cpu' ? 'cpu' : 'cuda'}`;
}

/** What the embeddings of one lookup depend on besides the class name. */
export interface TextCacheScope {
  /** Identifies the text encoder as it computes, e.g. {@link textEncoderId}. */
  readonly modelId: string;
  /** Identifies the prompt templates, e.g. their joined text. */
  readonly templateKey: string;
  /** Length of one embedding. */
  readonly dim: number;
}

/** Encodes distinct class names; resolves to their embeddings, row-major [names.length, dim]. */
export type EncodeClasses = (names: string[]) => Promise<Float32Array>;

const FILE_MAGIC = 'san-node text cache v1\n';

export class TextEmbeddingCache {
  readonly #maxBytes: number;
  readonly #file: string | undefined;
  readonly #entries = new Map<string, Float32Array>();
  readonly #pending = new Map<string, Promise<Float32Array>>();
  readonly #stats: TextCacheStats = { hits: 0, misses: 0, bytes: 0, entries: 0, evictions: 0 };

  /**
   * @throws SanError ERR_SAN_INVALID_ARG when `file` exists but is not a readable san-node text cache (another
   *   file, a truncated cache, a FIFO or a folder), naming the file and what is wrong with it.
   */
  constructor(options: TextCacheOptions) {
    this.#maxBytes = options.maxBytes;
    this.#file = options.file;
    if (this.#file !== undefined) this.#loadIfPresent(this.#file);
  }

  /** The file the cache was loaded from and `save()` writes, if any. */
  get file(): string | undefined {
    return this.#file;
  }

  /**
   * The embeddings of `names` in the caller's order, duplicates included, row-major [names.length, scope.dim].
   * Names neither cached nor being encoded are passed to `encode` in one call.
   */
  async lookup(scope: TextCacheScope, names: readonly string[], encode: EncodeClasses): Promise<Float32Array> {
    const keyOf = (name: string): string => JSON.stringify([scope.modelId, scope.templateKey, name]);
    const rows = new Map<string, Float32Array | Promise<Float32Array>>();
    const missing: string[] = [];
    for (const name of new Set(names)) {
      const key = keyOf(name);
      const cached = this.#touch(key);
      const pending = this.#pending.get(key);
      if (cached !== undefined || pending !== undefined) {
        this.#stats.hits += 1;
        rows.set(name, (cached ?? pending) as Float32Array | Promise<Float32Array>);
      } else {
        missing.push(name);
      }
    }
    if (missing.length > 0) {
      this.#stats.misses += missing.length;
      const batch = encode(missing).then((matrix) => {
        if (matrix.length !== missing.length * scope.dim) {
          throw new Error(`The text encoder returned ${matrix.length} values for ${missing.length}×${scope.dim}`);
        }
        return matrix;
      });
      missing.forEach((name, i) => {
        const key = keyOf(name);
        const row = batch.then((matrix) => matrix.slice(i * scope.dim, (i + 1) * scope.dim));
        this.#pending.set(key, row);
        // Whatever the outcome, the pending entry goes, in the first handler to run, so a waiter that retries after
        // a failure finds it gone; a failed encoding is not cached and can be retried.
        row.then((embedding) => {
          this.#pending.delete(key);
          this.#insert(key, embedding);
        }, () => this.#pending.delete(key));
        rows.set(name, row);
      });
    }
    const out = new Float32Array(names.length * scope.dim);
    const resolved = new Map<string, Float32Array>();
    // Another caller's encoding fails with that caller's abort or timeout too: those names are encoded again, for
    // this caller, in one more lookup. A failure of this caller's own encoding is its own.
    const retry: string[] = [];
    const own = new Set(missing);
    for (const [name, row] of rows) {
      try {
        resolved.set(name, await row);
      } catch (error) {
        if (own.has(name)) throw error;
        retry.push(name);
      }
    }
    if (retry.length > 0) {
      const again = await this.lookup(scope, retry, encode);
      retry.forEach((name, i) => resolved.set(name, again.subarray(i * scope.dim, (i + 1) * scope.dim)));
    }
    names.forEach((name, i) => out.set(resolved.get(name) as Float32Array, i * scope.dim));
    return out;
  }

  /** A snapshot of the counters. */
  stats(): TextCacheStats {
    return { ...this.#stats };
  }

  /** Writes every entry to the `file` given at construction, atomically (a temporary file, then a rename). */
  async save(): Promise<void> {
    if (this.#file === undefined) throw new Error('This text cache was created without a file to save to');
    const keys = [...this.#entries.keys()];
    const dims = keys.map((key) => (this.#entries.get(key) as Float32Array).length);
    const header = Buffer.from(JSON.stringify({ keys, dims }));
    const body = keys.map((key) => {
      const row = this.#entries.get(key) as Float32Array;
      return Buffer.from(row.buffer, row.byteOffset, row.byteLength);
    });
    const length = Buffer.alloc(4);
    length.writeUInt32LE(header.length);
    const temporary = `${this.#file}.${process.pid}.tmp`;
    await fsp.writeFile(temporary, Buffer.concat([Buffer.from(FILE_MAGIC), length, header, ...body]));
    await fsp.rename(temporary, this.#file);
  }

  #touch(key: string): Float32Array | undefined {
    const row = this.#entries.get(key);
    if (row !== undefined) {
      // Re-inserting moves the key to the young end of the Map's order.
      this.#entries.delete(key);
      this.#entries.set(key, row);
    }
    return row;
  }

  #insert(key: string, row: Float32Array): void {
    const bytes = TextEmbeddingCache.#sizeOf(key, row);
    if (bytes > this.#maxBytes) return;
    if (this.#entries.has(key)) return;
    this.#entries.set(key, row);
    this.#stats.bytes += bytes;
    for (const [oldKey, oldRow] of this.#entries) {
      if (this.#stats.bytes <= this.#maxBytes) break;
      this.#entries.delete(oldKey);
      this.#stats.bytes -= TextEmbeddingCache.#sizeOf(oldKey, oldRow);
      this.#stats.evictions += 1;
    }
    this.#stats.entries = this.#entries.size;
  }

  #loadIfPresent(file: string): void {
    const refuse = (problem: string): SanError =>
      new SanError(ErrorCode.INVALID_ARG, `The text cache file ${file} ${problem}; remove it or give another file`);
    let bytes: Buffer;
    try {
      // A FIFO or a device would block the JS thread in readFileSync: only regular files are read.
      const stats = statSync(file, { throwIfNoEntry: false });
      if (stats === undefined) return;
      if (!stats.isFile()) throw refuse('is not a regular file');
      bytes = readFileSync(file);
    } catch (error) {
      throw error instanceof SanError ? error : refuse(`cannot be read: ${(error as Error).message}`);
    }
    const magic = bytes.subarray(0, FILE_MAGIC.length).toString();
    if (magic !== FILE_MAGIC) throw refuse(`is not a san-node text cache (its first line is not "${FILE_MAGIC.trim()}")`);
    try {
      this.#load(bytes);
    } catch (error) {
      throw refuse(`is damaged: ${(error as Error).message}`);
    }
  }

  #load(bytes: Buffer): void {
    const headerStart = FILE_MAGIC.length + 4;
    const headerEnd = headerStart + bytes.readUInt32LE(FILE_MAGIC.length);
    if (headerEnd > bytes.length) throw new Error(`its header runs past the end of the file`);
    const { keys, dims } = JSON.parse(bytes.subarray(headerStart, headerEnd).toString()) as { keys: string[]; dims: number[] };
    if (!Array.isArray(keys) || !Array.isArray(dims) || keys.length !== dims.length ||
      !keys.every((key) => typeof key === 'string') || !dims.every((dim) => Number.isInteger(dim) && dim > 0)) {
      throw new Error('its header is not { keys, dims } of equal lengths');
    }
    const total = dims.reduce((sum, dim) => sum + dim * 4, 0);
    if (headerEnd + total !== bytes.length) {
      throw new Error(`it holds ${bytes.length - headerEnd} bytes of embeddings where its header lists ${total}`);
    }
    let offset = headerEnd;
    keys.forEach((key, i) => {
      // Copied into its own aligned buffer: the file's layout gives no 4-byte alignment guarantee.
      const row = new Float32Array(dims[i]);
      Buffer.from(row.buffer).set(bytes.subarray(offset, offset + dims[i] * 4));
      offset += dims[i] * 4;
      this.#insert(key, row);
    });
  }

  /** The memory an entry is charged: its floats and its key. */
  static #sizeOf(key: string, row: Float32Array): number {
    return row.byteLength + key.length * 2;
  }
}
