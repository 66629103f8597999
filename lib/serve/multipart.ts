// SPDX-License-Identifier: Apache-2.0
/**
 * A multipart/form-data parser (RFC 7578) for whole bodies already in memory: binary-safe, bounded in parts and
 * header size, and strict about what it cannot read.
 * @module
 */
import { HttpError, malformedBody } from './http-error';

/** One part of a multipart/form-data body. */
export interface MultipartPart {
  /** The `name` of its Content-Disposition. */
  name: string;
  /** The `filename` of its Content-Disposition, if any. */
  filename?: string;
  /** Its Content-Type, if any. */
  contentType?: string;
  data: Buffer;
}

/** Most parts a body may have: an image and the handful of parameters need far fewer. */
const MAX_PARTS = 16;
const MAX_PART_HEADER_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Parses a multipart/form-data body: the parts between the boundary lines. The preamble and epilogue are ignored; a
 * part without a Content-Disposition `form-data` with a `name` is malformed.
 * @param body - the whole body.
 * @param contentType - the request's Content-Type, which carries the boundary.
 * @throws HttpError 400 (code ERR_SAN_MALFORMED_BODY) naming what is wrong.
 * @example
 * ```ts
 * const parts = parseMultipart(body, req.headers['content-type']);
 * ```
 */
export function parseMultipart(body: Buffer, contentType: string): MultipartPart[] {
  const boundary = headerParameters(contentType).get('boundary');
  if (boundary === undefined || !/^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/.test(boundary)) {
    throw malformed('the Content-Type has no valid boundary (1 to 70 characters)');
  }
  const delimiter = Buffer.from(`--${boundary}`);
  const nextDelimiter = Buffer.concat([CRLF, delimiter]);
  // The first boundary line starts the body or follows the preamble's CRLF.
  let at = 0;
  if (!body.subarray(0, delimiter.length).equals(delimiter)) {
    at = body.indexOf(nextDelimiter);
    if (at < 0) throw malformed('no boundary line');
    at += 2;
  }
  const parts: MultipartPart[] = [];
  for (;;) {
    at += delimiter.length;
    if (body[at] === 0x2d && body[at + 1] === 0x2d) return parts; // "--": the closing boundary
    while (body[at] === 0x20 || body[at] === 0x09) at += 1; // transport padding
    if (body[at] !== 0x0d || body[at + 1] !== 0x0a) throw malformed('a boundary line does not end with CRLF');
    if (parts.length === MAX_PARTS) throw malformed(`more than ${MAX_PARTS} parts`);
    // From the boundary line's CRLF, so that a part without headers (CRLF CRLF at once) is found too.
    const headerEnd = body.indexOf(CRLFCRLF, at);
    if (headerEnd < 0 || headerEnd - at > MAX_PART_HEADER_BYTES) throw malformed('a part\'s headers do not end');
    const contentStart = headerEnd + 4;
    const contentEnd = body.indexOf(nextDelimiter, contentStart);
    if (contentEnd < 0) throw malformed('it ends before its closing boundary');
    parts.push(readPart(body.toString('utf8', at + 2, Math.max(at + 2, headerEnd)),
      body.subarray(contentStart, contentEnd)));
    at = contentEnd + 2;
  }
}

/**
 * The `; key=value` parameters of a header value (keys lower-cased, quoted values unescaped); the first of a
 * repeated key wins.
 * @example
 * ```ts
 * headerParameters('multipart/form-data; boundary="x y"').get('boundary'); // 'x y'
 * ```
 */
export function headerParameters(value: string): Map<string, string> {
  const parameters = new Map<string, string>();
  const pattern = /;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (const match of value.matchAll(pattern)) {
    const key = match[1].toLowerCase();
    if (!parameters.has(key)) parameters.set(key, match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3]);
  }
  return parameters;
}

function readPart(headerText: string, data: Buffer): MultipartPart {
  const headers = new Map<string, string>();
  for (const line of headerText === '' ? [] : headerText.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 1) throw malformed(`a part has a bad header line '${line.slice(0, 40)}'`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const disposition = headers.get('content-disposition');
  if (disposition === undefined || disposition.split(';')[0].trim().toLowerCase() !== 'form-data') {
    throw malformed('a part has no Content-Disposition: form-data');
  }
  const parameters = headerParameters(disposition);
  const name = parameters.get('name');
  if (name === undefined) throw malformed('a part\'s Content-Disposition has no name');
  const part: MultipartPart = { name, data };
  const filename = parameters.get('filename');
  if (filename !== undefined) part.filename = filename;
  const type = headers.get('content-type');
  if (type !== undefined) part.contentType = type;
  return part;
}

function malformed(why: string): HttpError {
  return malformedBody(`Malformed multipart/form-data body: ${why}`);
}
