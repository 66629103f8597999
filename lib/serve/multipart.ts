// SPDX-License-Identifier: Apache-2.0
/**
 * multipart/form-data (RFC 7578) read as it streams in, by busboy: one file part named `image`, text fields for the
 * parameters, and busboy's own limits on parts, fields, field size and file size, so that a form is never buffered
 * beyond them and a field can be checked (and the request refused) before the image has arrived.
 * @module
 */
import busboy from 'busboy';
import { badRequest, bodyTooLarge, HttpError, malformedBody } from './http-error';

/** What a form is read under. */
export interface FormLimits {
  /** Largest image part, in bytes. */
  maxFileBytes: number;
  /** Most text fields. */
  maxFields: number;
  /** Largest text field, in bytes. */
  maxFieldBytes: number;
}

/** Header lines a part may have: Content-Disposition and Content-Type, with room to spare. */
const MAX_PART_HEADERS = 8;

/**
 * A form fed chunk by chunk (`write`), then finished (`end`) into its image. Text fields go to `onField` as they
 * arrive; what it throws refuses the form at once.
 * @example
 * ```ts
 * const form = new FormReader(req.headers['content-type'], limits, (name, value) => parameters.set(name, value));
 * await readBody(req, bodyLimits, (chunk) => form.write(chunk));
 * const image = await form.end();
 * ```
 */
export class FormReader {
  readonly #parser: busboy.Busboy;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #files = 0;
  #error: unknown;
  #closed: Promise<void>;

  /**
   * @throws HttpError 400 (ERR_SAN_MALFORMED_BODY) when the Content-Type has no boundary.
   */
  constructor(contentType: string, limits: FormLimits, onField: (name: string, value: string) => void) {
    try {
      this.#parser = busboy({
        headers: { 'content-type': contentType },
        limits: { fileSize: limits.maxFileBytes, files: 1, fields: limits.maxFields, parts: limits.maxFields + 1,
          fieldSize: limits.maxFieldBytes, headerPairs: MAX_PART_HEADERS },
      });
    } catch (error) {
      throw malformed((error as Error).message.replace(/^Multipart: /, '').toLowerCase());
    }
    const parser = this.#parser;
    parser.on('file', (name, stream) => {
      this.#files += 1;
      // A form cut short fails its file stream too: the parser's own 'error' reports it.
      stream.on('error', () => undefined);
      if (name !== 'image') {
        this.#fail(badRequest(`The form has a file part '${name.slice(0, 40)}'; only the image is sent as a file, ` +
          'parameters as text fields'));
        stream.resume();
        return;
      }
      stream.on('data', (chunk: Buffer) => {
        this.#size += chunk.length;
        this.#chunks.push(chunk);
      });
      stream.on('limit', () => this.#fail(bodyTooLarge(limits.maxFileBytes)));
    });
    parser.on('field', (name, value, info) => {
      if (name === 'image') {
        this.#fail(badRequest('The form\'s image field is text, not a file part: send it with a filename ' +
          '(curl -F image=@photo.jpg, FormData with a Blob)'));
      } else if (info.nameTruncated || info.valueTruncated) {
        this.#fail(badRequest(`The form field '${name.slice(0, 40)}' is longer than ${limits.maxFieldBytes} bytes`));
      } else {
        try {
          onField(name, value);
        } catch (error) {
          this.#fail(error);
        }
      }
    });
    parser.on('partsLimit', () => this.#fail(malformed(`more than ${limits.maxFields + 1} parts`)));
    parser.on('fieldsLimit', () => this.#fail(malformed(`more than ${limits.maxFields} text fields`)));
    parser.on('filesLimit', () => this.#fail(badRequest('The form has two file parts; it takes one, the image')));
    this.#closed = new Promise((resolve) => {
      parser.on('error', (error: Error) => {
        this.#fail(malformed(error.message.replace(/^Malformed part header$/, 'a part has a malformed header')
          .replace(/^Unexpected end of form$/, 'it ends before its closing boundary')));
        resolve();
      });
      parser.on('close', resolve);
    });
  }

  /** Parses one more chunk. @throws what refused the form so far. */
  write(chunk: Buffer): void {
    this.#throwIfFailed();
    this.#parser.write(chunk);
    this.#throwIfFailed();
  }

  /**
   * Ends the form once the body has been read whole.
   * @returns the image part's bytes.
   * @throws HttpError 400 for a malformed form, a form without an image part, or one over a limit; 413 for an image
   *   larger than `maxFileBytes`.
   */
  async end(): Promise<Buffer> {
    this.#throwIfFailed();
    this.#parser.end();
    await this.#closed;
    this.#throwIfFailed();
    if (this.#files === 0) throw badRequest('The form has no image field (a file field named image)');
    return Buffer.concat(this.#chunks, this.#size);
  }

  #fail(error: unknown): void {
    this.#error ??= error;
  }

  #throwIfFailed(): void {
    if (this.#error !== undefined) throw this.#error;
  }
}

function malformed(why: string): HttpError {
  return malformedBody(`Malformed multipart/form-data body: ${why}`);
}
