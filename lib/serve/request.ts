// SPDX-License-Identifier: Apache-2.0
/**
 * Reads a `POST /segment` request into the image bytes, the label format and the `segment()` options, in two steps:
 * the head (query parameters, Content-Type, Content-Length) before a byte of the body is read, then the body as a
 * raw image, multipart/form-data or JSON, bounded in size and time, and the image's header checked against the
 * limits before anything is decoded. Every refusal is an {@link HttpError} or a typed API error that names what was
 * wrong and what was expected.
 * @module
 */
import * as http from 'node:http';
import sharp from 'sharp';
import { splitClassList } from '../cli/segment-args';
import { ErrorCode, SanError } from '../errors';
import * as is from '../is';
import { SegmentOptions } from '../segment/model';
import { TEMPLATE_SETS, TemplateSetName } from '../segment/prompts';
import { BodyLimits, readBody } from './body';
import { badRequest, bodyTooLarge, HttpError, malformedBody, ServeErrorCode } from './http-error';
import { LABEL_FORMATS, LabelFormat } from './labels';
import { FormReader } from './multipart';

/** What a `POST /segment` asks for. */
export interface SegmentRequest {
  /** The image's bytes; never a string, which `segment()` would read as a file path. */
  image: Buffer;
  format: LabelFormat;
  options: SegmentOptions & { classes: string[] };
}

/** The limits a request is read under. */
export interface RequestLimits {
  maxBodyBytes: number;
  maxImagePixels: number;
  /** Most pixels of the label map, whether `outputSize` asks for it or it is the image's size. */
  maxOutputPixels: number;
}

/** A `POST /segment` whose request line and headers have been checked; its body is yet to be read. */
export interface SegmentHead {
  form: 'multipart' | 'json' | 'raw';
  contentType: string;
  /** The Content-Length; 0 for a chunked body, whose size is only known as it arrives. */
  declaredBytes: number;
  parameters: Parameters;
}

/** The parameters of `POST /segment`, in the query or as form or JSON fields. */
export const SEGMENT_PARAMETERS: readonly string[] = ['classes', 'format', 'templates', 'synonyms', 'outputSize',
  'timeoutMs'];
/** The formats decoded by sharp that the server takes; text formats (SVG) and PDF are refused. */
export const IMAGE_FORMATS: readonly string[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'avif'];
/** Largest text field of a form: a list of 4096 class names fits. */
const MAX_FIELD_BYTES = 1024 * 1024;
/** What a JSON field holds when it is not a string. */
const JSON_FIELD_TYPES: Readonly<Record<string, string>> = {
  classes: 'an array of class names or a string',
  outputSize: 'an array [height, width] of integers or a string HxW',
  timeoutMs: 'a number or a string',
};

/**
 * Checks what the request line and headers say, before a byte of the body is read: the query's parameters (an
 * `outputSize` over `maxOutputPixels` included), the Content-Type and the Content-Length.
 * @throws HttpError (400, 413, 415), TypeError or RangeError with ERR_SAN_INVALID_ARG.
 */
export function readSegmentHead(req: http.IncomingMessage, url: URL, limits: RequestLimits): SegmentHead {
  const parameters = new Parameters(limits.maxOutputPixels);
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    if (values.length > 1) throw badRequest(`The query gives ${key} ${values.length} times`);
    parameters.add(key, values[0], 'query parameter');
  }
  const contentType = req.headers['content-type'] ?? '';
  const mediaType = contentType.split(';')[0].trim().toLowerCase();
  let form: SegmentHead['form'];
  if (mediaType === 'multipart/form-data') form = 'multipart';
  else if (mediaType === 'application/json') form = 'json';
  else if (mediaType.startsWith('image/') || mediaType === 'application/octet-stream') form = 'raw';
  else {
    throw new HttpError(415, ServeErrorCode.MEDIA_TYPE, 'Expected a Content-Type of image/*, ' +
      `application/octet-stream, application/json or multipart/form-data but received '${contentType.slice(0, 80)}'`);
  }
  const declaredBytes = Number(req.headers['content-length'] ?? 0) || 0;
  if (declaredBytes > limits.maxBodyBytes) throw bodyTooLarge(limits.maxBodyBytes);
  return { form, contentType, declaredBytes, parameters };
}

/**
 * Reads the body of a request whose head {@link readSegmentHead} accepted, under `bodyLimits`, then checks the
 * image's header against the limits before anything is decoded.
 * @throws HttpError (400, 408, 413, 503), TypeError or RangeError with ERR_SAN_INVALID_ARG, SanError ERR_SAN_IMAGE,
 *   or ClientGone when the client closes the connection while sending.
 */
export async function readSegmentBody(req: http.IncomingMessage, head: SegmentHead, limits: RequestLimits,
  bodyLimits: BodyLimits): Promise<SegmentRequest> {
  const { parameters } = head;
  let image: Buffer;
  if (head.form === 'multipart') {
    const form = new FormReader(head.contentType, { maxFileBytes: limits.maxBodyBytes,
      maxFields: SEGMENT_PARAMETERS.length, maxFieldBytes: MAX_FIELD_BYTES },
    (name, value) => parameters.add(name, value, 'form field'));
    await readBody(req, bodyLimits, (chunk) => form.write(chunk));
    image = await form.end();
  } else {
    const chunks: Buffer[] = [];
    await readBody(req, bodyLimits, (chunk) => chunks.push(chunk));
    const body = Buffer.concat(chunks);
    image = head.form === 'json' ? jsonImage(body, parameters, bodyLimits.admit) : body;
  }
  const { format, options } = parameters.finish();
  await checkImage(image, limits, options.outputSize);
  return { image, format, options };
}

/**
 * The parameters of a request, each checked as it is added, so that a bad one refuses the request before the rest
 * of the body arrives.
 */
export class Parameters {
  readonly #maxOutputPixels: number;
  /** Where each parameter given came from. */
  readonly #given = new Map<string, string>();
  #format: LabelFormat = 'png';
  readonly #options: Omit<SegmentRequest['options'], 'classes'> & { classes?: string[] } = {};

  constructor(maxOutputPixels: number) {
    this.#maxOutputPixels = maxOutputPixels;
  }

  /** @throws HttpError 400 or 413 (ERR_SAN_TOO_LARGE), TypeError or RangeError, naming the parameter. */
  add(name: string, value: string, kind: 'query parameter' | 'form field' | 'JSON field'): void {
    if (!SEGMENT_PARAMETERS.includes(name)) {
      throw badRequest(`Unknown ${kind} '${name.slice(0, 40)}'; expected one of: ${SEGMENT_PARAMETERS.join(', ')}` +
        (kind === 'query parameter' ? '' : ', image'));
    }
    const before = this.#given.get(name);
    if (before !== undefined) {
      throw badRequest(`${name} is given twice (${before === kind ? `as a ${kind}` : `as a ${before} and a ${kind}`})`);
    }
    this.#given.set(name, kind);
    const options = this.#options;
    switch (name) {
      case 'classes':
        options.classes = parseClasses(value);
        break;
      case 'format':
        if (!is.inArray(value, LABEL_FORMATS)) throw rangeError('format', `one of: ${LABEL_FORMATS.join(', ')}`, value);
        this.#format = value;
        break;
      case 'templates': {
        const names = Object.keys(TEMPLATE_SETS);
        if (!names.includes(value)) throw rangeError('templates', `one of: ${names.join(', ')}`, value);
        options.templates = value as TemplateSetName;
        break;
      }
      case 'synonyms':
        if (value !== 'whole' && value !== 'average') throw rangeError('synonyms', 'one of: whole, average', value);
        options.synonyms = value;
        break;
      case 'outputSize': {
        const match = /^(\d{1,5})x(\d{1,5})$/i.exec(value);
        if (match === null) throw rangeError('outputSize', 'HxW, e.g. 480x640', value);
        options.outputSize = [Number(match[1]), Number(match[2])];
        const pixels = options.outputSize[0] * options.outputSize[1];
        if (pixels > this.#maxOutputPixels) {
          throw outputTooLarge(`outputSize ${options.outputSize.join('x')} is ${pixels} pixels`, this.#maxOutputPixels);
        }
        break;
      }
      default: // timeoutMs
        if (!/^\d{1,10}$/.test(value) || !is.inRange(Number(value), 1, 2 ** 31 - 1)) {
          throw rangeError('timeoutMs', 'an integer between 1 and 2147483647', value);
        }
        options.timeoutMs = Number(value);
    }
  }

  /** The segment() options and the label format. @throws HttpError 400 when no classes were given. */
  finish(): Pick<SegmentRequest, 'format' | 'options'> {
    const { classes } = this.#options;
    if (classes === undefined) {
      throw badRequest('No classes: give classes=sky;sea;sand in the query, or a classes field in the body');
    }
    return { format: this.#format, options: { ...this.#options, classes } };
  }
}

/** 413 with ERR_SAN_TOO_LARGE: a label map larger than `maxOutputPixels`, refused before any work. */
function outputTooLarge(what: string, maxPixels: number): HttpError {
  return new HttpError(413, ErrorCode.TOO_LARGE, `${what}, more than the ${maxPixels} allowed (maxOutputPixels)`);
}

/**
 * The base64 `image` of a JSON object; its other fields go into `parameters`. The decoded image is held with the
 * body, so its size is passed to `admit` (the server's byte budget) before it is made.
 */
function jsonImage(body: Buffer, parameters: Parameters, admit: (bytes: number) => void): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw malformedBody(`Malformed JSON body: ${(error as Error).message}`);
  }
  if (!is.plainObject(parsed)) {
    throw malformedBody('Malformed JSON body: expected an object { "image": "<base64>", "classes": [...] }');
  }
  let image: Buffer | undefined;
  for (const [name, value] of Object.entries(parsed)) {
    if (name === 'image') image = decodeBase64(value, admit);
    else parameters.add(name, jsonFieldText(name, value), 'JSON field');
  }
  if (image === undefined) throw badRequest('The JSON body has no image field (the image as base64)');
  return image;
}

/** A JSON field as the text the query would carry: the same checks then apply to both. */
function jsonFieldText(name: string, value: unknown): string {
  if (is.string(value)) return value;
  if (name === 'classes' && Array.isArray(value)) return JSON.stringify(value);
  if (name === 'outputSize' && Array.isArray(value) && value.length === 2 && value.every(is.integer)) {
    return `${value[0]}x${value[1]}`;
  }
  if (name === 'timeoutMs' && typeof value === 'number') return String(value);
  // An unknown field is refused by its name, whatever it holds.
  if (!SEGMENT_PARAMETERS.includes(name)) return '';
  throw is.invalidParameterError(name, JSON_FIELD_TYPES[name] ?? 'a string', value);
}

/**
 * Base64 (standard or URL-safe alphabet, whitespace ignored) or a `data:…;base64,` URL, decoded once `admit` has
 * taken its size.
 */
function decodeBase64(value: unknown, admit: (bytes: number) => void): Buffer {
  const text = is.string(value) ? value.replace(/^data:[^,]*;base64,/, '').replace(/\s+/g, '') : undefined;
  if (text === undefined || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw is.invalidParameterError('image', 'the image as a base64 string or a data: URL', value,
      is.string(value) ? 'range' : 'type');
  }
  // The exact decoded size, known without decoding.
  admit(Buffer.byteLength(text, 'base64'));
  return Buffer.from(text, 'base64');
}

/** Classes as the CLI's --classes takes them (`sky;sea;sand`, or `sky,sea` without a ';'), or a JSON array. */
function parseClasses(value: string): string[] {
  if (value.trim() === '') {
    throw badRequest('No classes: give classes=sky;sea;sand in the query, or a classes field in the body');
  }
  let classes: string[];
  if (value.trim().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw rangeError('classes', 'a JSON array of strings', value);
    }
    if (!Array.isArray(parsed) || !parsed.every(is.string)) throw rangeError('classes', 'a JSON array of strings', value);
    classes = parsed.map((name) => name.trim());
  } else {
    classes = splitClassList(value);
  }
  if (classes.length === 0) throw badRequest('No classes: the classes parameter names none');
  // The answer's shares are keyed by class name.
  const repeated = classes.find((name, i) => classes.indexOf(name) !== i);
  if (repeated !== undefined) throw rangeError('classes', 'distinct class names', repeated);
  return classes;
}

/**
 * Refuses an empty body, a format other than IMAGE_FORMATS, an image over `maxImagePixels`, and a label map over
 * `maxOutputPixels` when it is to be the image's size, from the image's header alone.
 */
async function checkImage(image: Buffer, limits: RequestLimits,
  outputSize: readonly [number, number] | undefined): Promise<void> {
  if (image.length === 0) throw badRequest('The request has no image: its body (or image field) is empty');
  let width: number | undefined;
  let height: number | undefined;
  let format: string | undefined;
  try {
    ({ width, height, format } = await sharp(image, { limitInputPixels: false }).metadata());
  } catch (error) {
    throw new SanError(ErrorCode.IMAGE, `Could not read the image: ${(error as Error).message.split('\n')[0]}`);
  }
  if (format === undefined || !IMAGE_FORMATS.includes(format)) {
    throw new SanError(ErrorCode.IMAGE, `Expected an image in one of: ${IMAGE_FORMATS.join(', ')} but received ` +
      `${format ?? 'an unknown format'}`);
  }
  const pixels = (width ?? 0) * (height ?? 0);
  if (pixels > limits.maxImagePixels) {
    throw new HttpError(413, ErrorCode.IMAGE, `The image has ${width}×${height} pixels, more than the ` +
      `${limits.maxImagePixels} allowed (maxImagePixels)`);
  }
  if (outputSize === undefined && pixels > limits.maxOutputPixels) {
    throw outputTooLarge(`The label map would have the image's ${width}×${height} pixels (ask for a smaller ` +
      'outputSize)', limits.maxOutputPixels);
  }
}

function rangeError(name: string, expected: string, value: string): RangeError {
  return is.invalidParameterError(name, expected, value, 'range') as RangeError;
}
