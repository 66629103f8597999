// SPDX-License-Identifier: Apache-2.0
/**
 * Reads a `POST /segment` request into the image bytes, the label format and the `segment()` options: the body as
 * a raw image, multipart/form-data or JSON, parameters from the query or the body, and the image's header checked
 * against the limits before anything is decoded. Every refusal is an {@link HttpError} or a typed API error that
 * names what was wrong and what was expected.
 * @module
 */
import * as http from 'node:http';
import sharp from 'sharp';
import { splitClassList } from '../cli/segment-args';
import { ErrorCode, SanError } from '../errors';
import * as is from '../is';
import { SegmentOptions } from '../segment/model';
import { TEMPLATE_SETS, TemplateSetName } from '../segment/prompts';
import { badRequest, bodyTooLarge, ClientGone, HttpError, malformedBody, ServeErrorCode } from './http-error';
import { LABEL_FORMATS, LabelFormat } from './labels';
import { parseMultipart } from './multipart';

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
}

/** The parameters of `POST /segment`, in the query or as form or JSON fields. */
export const SEGMENT_PARAMETERS: readonly string[] = ['classes', 'format', 'templates', 'synonyms', 'outputSize',
  'timeoutMs'];
/** The formats decoded by sharp that the server takes; text formats (SVG) and PDF are refused. */
export const IMAGE_FORMATS: readonly string[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'avif'];
/** What a JSON field holds when it is not a string. */
const JSON_FIELD_TYPES: Readonly<Record<string, string>> = {
  classes: 'an array of class names or a string',
  outputSize: 'an array [height, width] of integers or a string HxW',
  timeoutMs: 'a number or a string',
};

/**
 * Reads the body and parameters of a `POST /segment` request.
 * @throws HttpError (400, 413, 415), TypeError or RangeError with ERR_SAN_INVALID_ARG, SanError ERR_SAN_IMAGE, or
 *   ClientGone when the client closes the connection while sending.
 */
export async function readSegmentRequest(req: http.IncomingMessage, url: URL,
  limits: RequestLimits): Promise<SegmentRequest> {
  const declared = Number(req.headers['content-length']);
  if (declared > limits.maxBodyBytes) throw bodyTooLarge(limits.maxBodyBytes);
  const parameters = queryParameters(url);
  const contentType = req.headers['content-type'] ?? '';
  const mediaType = contentType.split(';')[0].trim().toLowerCase();
  let image: Buffer;
  if (mediaType === 'multipart/form-data') {
    image = formImage(await readBody(req, limits.maxBodyBytes), contentType, parameters);
  } else if (mediaType === 'application/json') {
    image = jsonImage(await readBody(req, limits.maxBodyBytes), parameters);
  } else if (mediaType.startsWith('image/') || mediaType === 'application/octet-stream') {
    image = await readBody(req, limits.maxBodyBytes);
  } else {
    throw new HttpError(415, ServeErrorCode.MEDIA_TYPE, 'Expected a Content-Type of image/*, ' +
      `application/octet-stream, application/json or multipart/form-data but received '${contentType.slice(0, 80)}'`);
  }
  const { format, options } = segmentParameters(parameters);
  await checkImage(image, limits.maxImagePixels);
  return { image, format, options };
}

function queryParameters(url: URL): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    if (values.length > 1) throw badRequest(`The query gives ${key} ${values.length} times`);
    parameters.set(key, values[0]);
  }
  checkParameterNames(parameters.keys(), 'query parameter');
  return parameters;
}

/** The `image` part of a form; its other fields go into `parameters`. */
function formImage(body: Buffer, contentType: string, parameters: Map<string, string>): Buffer {
  let image: Buffer | undefined;
  for (const part of parseMultipart(body, contentType)) {
    if (part.name === 'image') {
      if (image !== undefined) throw badRequest('The form has two image fields');
      image = part.data;
    } else {
      addBodyParameter(parameters, part.name, part.data.toString('utf8'), 'form field');
    }
  }
  if (image === undefined) throw badRequest('The form has no image field (a file field named image)');
  return image;
}

/** The base64 `image` of a JSON object; its other fields go into `parameters`. */
function jsonImage(body: Buffer, parameters: Map<string, string>): Buffer {
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
    if (name === 'image') image = decodeBase64(value);
    else addBodyParameter(parameters, name, jsonFieldText(name, value), 'JSON field');
  }
  if (image === undefined) throw badRequest('The JSON body has no image field (the image as base64)');
  return image;
}

function addBodyParameter(parameters: Map<string, string>, name: string, value: string, kind: string): void {
  checkParameterNames([name], kind);
  if (parameters.has(name)) throw badRequest(`${name} is given twice (in the query and the body)`);
  parameters.set(name, value);
}

/** A JSON field as the text the query would carry: the same checks then apply to both. */
function jsonFieldText(name: string, value: unknown): string {
  if (is.string(value)) return value;
  if (name === 'classes' && Array.isArray(value)) return JSON.stringify(value);
  if (name === 'outputSize' && Array.isArray(value) && value.length === 2 && value.every(is.integer)) {
    return `${value[0]}x${value[1]}`;
  }
  if (name === 'timeoutMs' && typeof value === 'number') return String(value);
  throw is.invalidParameterError(name, JSON_FIELD_TYPES[name] ?? 'a string', value);
}

/** Base64 (standard or URL-safe alphabet, whitespace ignored) or a `data:…;base64,` URL. */
function decodeBase64(value: unknown): Buffer {
  const text = is.string(value) ? value.replace(/^data:[^,]*;base64,/, '').replace(/\s+/g, '') : undefined;
  if (text === undefined || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw is.invalidParameterError('image', 'the image as a base64 string or a data: URL', value,
      is.string(value) ? 'range' : 'type');
  }
  return Buffer.from(text, 'base64');
}

function checkParameterNames(names: Iterable<string>, kind: string): void {
  for (const name of names) {
    if (!SEGMENT_PARAMETERS.includes(name)) {
      throw badRequest(`Unknown ${kind} '${name.slice(0, 40)}'; expected one of: ${SEGMENT_PARAMETERS.join(', ')}` +
        (kind === 'query parameter' ? '' : ', image'));
    }
  }
}

/** The segment() options and the label format from the parameters. */
function segmentParameters(parameters: Map<string, string>): Pick<SegmentRequest, 'format' | 'options'> {
  const options: SegmentRequest['options'] = { classes: parseClasses(parameters.get('classes')) };
  const format = parameters.get('format') ?? 'png';
  if (!is.inArray(format, LABEL_FORMATS)) throw rangeError('format', `one of: ${LABEL_FORMATS.join(', ')}`, format);
  const templates = parameters.get('templates');
  if (templates !== undefined) {
    const names = Object.keys(TEMPLATE_SETS);
    if (!names.includes(templates)) throw rangeError('templates', `one of: ${names.join(', ')}`, templates);
    options.templates = templates as TemplateSetName;
  }
  const synonyms = parameters.get('synonyms');
  if (synonyms !== undefined) {
    if (synonyms !== 'whole' && synonyms !== 'average') throw rangeError('synonyms', 'one of: whole, average', synonyms);
    options.synonyms = synonyms;
  }
  const outputSize = parameters.get('outputSize');
  if (outputSize !== undefined) {
    const match = /^(\d{1,5})x(\d{1,5})$/i.exec(outputSize);
    if (match === null) throw rangeError('outputSize', 'HxW, e.g. 480x640', outputSize);
    options.outputSize = [Number(match[1]), Number(match[2])];
  }
  const timeoutMs = parameters.get('timeoutMs');
  if (timeoutMs !== undefined) {
    if (!/^\d{1,10}$/.test(timeoutMs) || !is.inRange(Number(timeoutMs), 1, 2 ** 31 - 1)) {
      throw rangeError('timeoutMs', 'an integer between 1 and 2147483647', timeoutMs);
    }
    options.timeoutMs = Number(timeoutMs);
  }
  return { format, options };
}

/** Classes as the CLI's --classes takes them (`sky;sea;sand`, or `sky,sea` without a ';'), or a JSON array. */
function parseClasses(value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') {
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

/** Refuses an empty body, a format other than IMAGE_FORMATS, and more than `maxPixels`, from the header alone. */
async function checkImage(image: Buffer, maxPixels: number): Promise<void> {
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
  if ((width ?? 0) * (height ?? 0) > maxPixels) {
    throw new HttpError(413, ErrorCode.IMAGE, `The image has ${width}×${height} pixels, more than the ` +
      `${maxPixels} allowed (maxImagePixels)`);
  }
}

/** The whole body, refused with 413 as soon as it passes `maxBytes`. */
function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error: Error | undefined): void => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (error !== undefined) reject(error);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) settle(bodyTooLarge(maxBytes));
      else chunks.push(chunk);
    };
    const onEnd = (): void => settle(undefined);
    const onError = (): void => settle(new ClientGone('The client closed the connection while sending'));
    const onClose = (): void => {
      if (!req.complete) onError();
    };
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

function rangeError(name: string, expected: string, value: string): RangeError {
  return is.invalidParameterError(name, expected, value, 'range') as RangeError;
}
