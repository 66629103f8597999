// SPDX-License-Identifier: Apache-2.0
/**
 * `startServer`: a loaded {@link SanModel} over HTTP (node:http, HTTP/1.1), as `san-seg serve` runs it.
 *
 * Routes: `POST /segment` (an image as the raw body, as multipart/form-data or as base64 in JSON; answered with
 * JSON), `GET /healthz` and `GET /metrics` (Prometheus text format). Every failure is answered with JSON
 * `{ error: { code, message } }` and a status taken from the error's code; no request can crash the process.
 * `close()` drains: it answers every request already accepted, then resolves. docs/serve.md describes the routes,
 * parameters and statuses; lib/serve/ holds the request reader, the multipart parser and the metrics text.
 * @module
 */
import * as http from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { ErrorCode } from '../errors';
import * as is from '../is';
import { SanModel } from '../segment/model';
import { ClientGone, HttpError, badRequest, ServeErrorCode } from './http-error';
import { labelsBody, LabelsBody } from './labels';
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from './prometheus';
import { readSegmentRequest } from './request';

export { ServeErrorCode } from './http-error';
export { decodeRle, encodeRle } from './labels';
export type { LabelFormat, LabelsBody } from './labels';
export { parseMultipart } from './multipart';
export type { MultipartPart } from './multipart';
export { prometheusText } from './prometheus';
export type { HttpCounters } from './prometheus';

/** Options of {@link startServer}. */
export interface ServeOptions {
  /** TCP port, 0 to 65535; 0 lets the system pick a free one (read it from `url`). @defaultValue `8080` */
  port?: number;
  /**
   * Address to listen on. The server has no authentication and no TLS: listen on another address only behind a
   * proxy that provides them. @defaultValue `'127.0.0.1'`
   */
  host?: string;
  /**
   * Largest request body, in bytes, 1 to 2³¹ − 1. A larger body is answered 413 as soon as its Content-Length or
   * the bytes read so far pass it. @defaultValue `33554432` (32 MiB)
   */
  maxBodyBytes?: number;
  /**
   * Most pixels (width × height, as the image's header declares them) an image may have, 1 to 2³¹ − 1. More is
   * answered 413 before the image is decoded. The model's own `maxInputPixels` applies as well.
   * @defaultValue `50000000`
   */
  maxImagePixels?: number;
  /**
   * Most `POST /segment` requests handled at once, from reading the body to the answer, 1 to 65536. Bounds the
   * memory that bodies and decoded images take; more are answered 503 at once. @defaultValue `64`
   */
  maxInFlight?: number;
  /** The `Retry-After` of a 503 for an overloaded server, in seconds, 0 to 3600. @defaultValue `1` */
  retryAfterSeconds?: number;
  /** Called with each error answered 500 (an unexpected one), e.g. to log it; it must not throw. */
  onError?: (error: unknown, request: http.IncomingMessage) => void;
}

/** Defaults of every option of {@link startServer} that has one. */
export const SERVE_DEFAULTS = Object.freeze({
  port: 8080,
  host: '127.0.0.1',
  maxBodyBytes: 32 * 1024 * 1024,
  maxImagePixels: 50_000_000,
  maxInFlight: 64,
  retryAfterSeconds: 1,
});

/** A running server, as {@link startServer} resolves with it. */
export interface SanServer {
  /** Where it listens, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** The port it listens on (the one the system picked for port 0). */
  readonly port: number;
  /** The node:http server, for its timeouts and events; close it through `close()`. */
  readonly server: http.Server;
  /** Requests received and not yet answered, on every route. */
  readonly inFlight: number;
  /**
   * Stops listening, answers requests that still arrive on open connections with 503, waits until every accepted
   * request has been answered, then closes the remaining connections. It does not dispose the model: the caller
   * owns it. Calling it again returns the same Promise.
   */
  close(): Promise<void>;
}

/** The JSON of a 200 answer to `POST /segment`. */
export interface SegmentBody {
  classes: string[];
  /** [height, width] of the label map. */
  size: [number, number];
  /** Each class's fraction of the pixels, 0 to 1. */
  shares: Record<string, number>;
  labels: LabelsBody;
  /** Milliseconds from the request's arrival to its answer. */
  ms: number;
}

/** Each route and the methods it takes. */
const ROUTES: ReadonlyMap<string, string> = new Map([['/segment', 'POST'], ['/healthz', 'GET, HEAD'],
  ['/metrics', 'GET, HEAD']]);
/** How long a connection whose body was refused is still read (and discarded) so the client sees the answer. */
const LINGER_MS = 2000;
const JSON_TYPE = 'application/json; charset=utf-8';

/** {@link ServeOptions} with every default filled in. */
export type ServeSettings = Required<Omit<ServeOptions, 'onError'>> & Pick<ServeOptions, 'onError'>;

interface State {
  readonly model: SanModel;
  readonly settings: ServeSettings;
  draining: boolean;
  /** Requests received, every route. */
  received: number;
  /** Requests received and not answered, every route. */
  active: number;
  /** `POST /segment` requests being handled. */
  segmenting: number;
  /** Answers sent, by status. */
  readonly responses: Map<number, number>;
  /** Per connection, how to finish each request received on it and not yet answered. */
  readonly unanswered: WeakMap<Socket, Set<() => void>>;
  /** Called whenever `active` drops to 0. */
  onIdle: (() => void) | undefined;
}

/**
 * Serves a loaded model over HTTP until `close()` is called.
 * @param model - a loaded model; the server never disposes it.
 * @param options - address, limits and hooks; see {@link ServeOptions}.
 * @returns once listening: the URL, the port, and `close()`.
 * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG) for a bad option; the system's error (e.g. code
 *   `EADDRINUSE`) when it cannot listen.
 * @example
 * ```ts
 * const model = await SanModel.load('models/vit_b_16');
 * const { url, close } = await startServer(model, { port: 8080 });
 * process.once('SIGTERM', async () => { await close(); await model.dispose(); });
 * ```
 * @example
 * ```ts
 * const server = await startServer(model, { port: 0, maxBodyBytes: 8 * 1024 * 1024 });
 * const answer = await fetch(`${server.url}/segment?classes=sky;sea`, {
 *   method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: fs.readFileSync('beach.jpg'),
 * });
 * ```
 */
export async function startServer(model: SanModel, options: ServeOptions = {}): Promise<SanServer> {
  if (!(model instanceof SanModel)) throw is.invalidParameterError('model', 'a loaded SanModel', model);
  const settings = checkServeOptions(options);
  const state: State = {
    model, settings, draining: false, received: 0, active: 0, segmenting: 0, responses: new Map(), unanswered: new WeakMap(),
    onIdle: undefined,
  };
  const server = http.createServer((req, res) => {
    handle(state, req, res).catch((error: unknown) => {
      // handle() answers its own errors; this is the last guard against a crash.
      settings.onError?.(error, req);
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    server,
    get inFlight() {
      return state.active;
    },
    close() {
      closing ??= drain(state, server);
      return closing;
    },
  };
}

async function drain(state: State, server: http.Server): Promise<void> {
  state.draining = true;
  // Stops listening and closes idle keep-alive connections; busy ones stay until their answer is sent.
  const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  if (state.active > 0) await new Promise<void>((resolve) => { state.onIdle = resolve; });
  // Every accepted request is answered: what is left is idle or has not finished sending its headers.
  server.closeAllConnections();
  await closed;
}

async function handle(state: State, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const started = performance.now();
  state.received += 1;
  state.active += 1;
  let done = false;
  const controller = new AbortController();
  const unanswered = unansweredOn(state, req.socket);
  const finish = (): void => {
    if (done) return;
    done = true;
    unanswered.delete(finish);
    if (!res.writableFinished) controller.abort(new ClientGone('The client closed the connection'));
    state.active -= 1;
    if (state.active === 0) state.onIdle?.();
  };
  res.once('close', finish);
  unanswered.add(finish);
  try {
    if (state.draining) {
      if (parseTarget(req)?.pathname === '/healthz') return send(state, req, res, 503, { status: 'draining' });
      throw new HttpError(503, ServeErrorCode.SHUTTING_DOWN, 'The server is shutting down');
    }
    await route(state, req, res, started, controller.signal);
  } catch (error) {
    answerError(state, req, res, error);
  }
}

/**
 * The requests received on a connection and not yet answered. A request queued behind another on its connection
 * gets no 'close' of its own when the connection drops: the connection's one 'close' listener finishes them all.
 */
function unansweredOn(state: State, socket: Socket): Set<() => void> {
  let requests = state.unanswered.get(socket);
  if (requests === undefined) {
    const created = new Set<() => void>();
    socket.once('close', () => created.forEach((finish) => finish()));
    state.unanswered.set(socket, created);
    requests = created;
  }
  return requests;
}

async function route(state: State, req: http.IncomingMessage, res: http.ServerResponse, started: number,
  signal: AbortSignal): Promise<void> {
  const url = parseTarget(req);
  if (url === undefined) throw badRequest(`The request target '${String(req.url).slice(0, 80)}' is not a URL`);
  const allow = ROUTES.get(url.pathname);
  if (allow === undefined) throw new HttpError(404, ServeErrorCode.NOT_FOUND, `No route ${url.pathname}`);
  if (!allow.split(', ').includes(req.method ?? '')) {
    throw new HttpError(405, ServeErrorCode.METHOD_NOT_ALLOWED, `${url.pathname} takes ${allow}, not ${req.method}`,
      { Allow: allow });
  }
  if (url.pathname === '/healthz') return send(state, req, res, 200, { status: 'ok' });
  if (url.pathname === '/metrics') {
    const text = prometheusText(state.model.metrics(),
      { received: state.received, inFlight: state.active, responses: state.responses });
    return send(state, req, res, 200, text, PROMETHEUS_CONTENT_TYPE);
  }
  if (state.segmenting >= state.settings.maxInFlight) {
    throw new HttpError(503, ErrorCode.OVERLOADED, `The server is handling ${state.settings.maxInFlight} ` +
      'requests (maxInFlight); retry later', { 'Retry-After': String(state.settings.retryAfterSeconds) });
  }
  state.segmenting += 1;
  try {
    send(state, req, res, 200, await segment(state, req, url, started, signal));
  } finally {
    state.segmenting -= 1;
  }
}

async function segment(state: State, req: http.IncomingMessage, url: URL, started: number,
  signal: AbortSignal): Promise<SegmentBody> {
  const { image, format, options } = await readSegmentRequest(req, url, state.settings);
  const result = await state.model.segment(image, { ...options, signal });
  return {
    classes: [...result.classes],
    size: [result.height, result.width],
    // fromEntries defines own properties: a class named __proto__ is kept as a key like any other.
    shares: Object.fromEntries(result.shares().map(({ name, share }) => [name, share])),
    labels: await labelsBody(result, format),
    ms: Math.round((performance.now() - started) * 10) / 10,
  };
}

/** Sends a JSON (or text) answer; a no-op once the client is gone. */
function send(state: State, req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown,
  type = JSON_TYPE, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  state.responses.set(status, (state.responses.get(status) ?? 0) + 1);
  // While draining, or with a request body left unread, the connection is not reused.
  const unread = bodyPending(req);
  if (state.draining || unread) res.shouldKeepAlive = false;
  res.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': payload.length,
    'Cache-Control': 'no-store' });
  res.end(payload);
  if (unread) linger(req);
}

function answerError(state: State, req: http.IncomingMessage, res: http.ServerResponse, error: unknown): void {
  // Aborted because the client went away: there is nobody to answer.
  if (error instanceof ClientGone || (error as Error | undefined)?.name === 'AbortError') return;
  const { status, code, headers } = classify(error, state.settings.retryAfterSeconds);
  if (status === 500) state.settings.onError?.(error, req);
  send(state, req, res, status, { error: { code, message: firstLine(error) } }, JSON_TYPE, headers);
}

/** The status, code and headers an error is answered with. */
function classify(error: unknown, retryAfterSeconds: number): { status: number; code: string;
  headers: Record<string, string> } {
  if (error instanceof HttpError) return { status: error.status, code: error.code, headers: error.headers };
  const { name, code } = (error ?? {}) as { name?: unknown; code?: unknown };
  const sanCode = typeof code === 'string' && code.startsWith('ERR_SAN_') ? code : undefined;
  if ((name === 'TypeError' || name === 'RangeError') && sanCode !== undefined) {
    return { status: 400, code: sanCode, headers: {} };
  }
  switch (sanCode) {
    case ErrorCode.IMAGE:
      return { status: 400, code: sanCode, headers: {} };
    case ErrorCode.OVERLOADED:
      return { status: 503, code: sanCode, headers: { 'Retry-After': String(retryAfterSeconds) } };
    case ErrorCode.TIMEOUT:
      return { status: 504, code: sanCode, headers: {} };
    case ErrorCode.DISPOSED:
      return { status: 503, code: sanCode, headers: {} };
    default:
      return { status: 500, code: sanCode ?? ErrorCode.RUNTIME, headers: {} };
  }
}

/** Does the request announce a body that has not been read to its end? */
function bodyPending(req: http.IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * After an answer sent before the body was read: the rest is read and dropped for up to LINGER_MS, so that the
 * client, still sending, is not reset before it reads the answer; then the connection is closed.
 */
function linger(req: http.IncomingMessage): void {
  req.resume();
  const { socket } = req;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  socket.once('close', () => clearTimeout(timer));
}

/** The request target as a URL: origin-form (`/segment?…`, `//x` included) or absolute-form. */
function parseTarget(req: http.IncomingMessage): URL | undefined {
  const target = req.url ?? '/';
  try {
    return new URL(target.startsWith('/') ? `http://localhost${target}` : target);
  } catch {
    return undefined;
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0];
}

/**
 * Checks {@link startServer}'s options and fills in the defaults, without listening: `san-seg serve` refuses a bad
 * flag before it loads the model.
 * @throws TypeError or RangeError (ERR_SAN_INVALID_ARG) naming the option, what it got and what it takes.
 * @example
 * ```ts
 * checkServeOptions({ port: 70000 }); // RangeError: Expected an integer between 0 and 65535 for options.port …
 * ```
 */
export function checkServeOptions(options: ServeOptions): ServeSettings {
  if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
  type IntegerOption = 'port' | 'maxBodyBytes' | 'maxImagePixels' | 'maxInFlight' | 'retryAfterSeconds';
  const integer = (name: IntegerOption, min: number, max: number): number => {
    const value = options[name] ?? SERVE_DEFAULTS[name];
    if (!is.integer(value) || !is.inRange(value, min, max)) {
      throw is.invalidParameterError(`options.${name}`, `an integer between ${min} and ${max}`, options[name],
        is.integer(value) || typeof value === 'number' ? 'range' : 'type');
    }
    return value;
  };
  const host = options.host ?? SERVE_DEFAULTS.host;
  if (!is.string(host) || host.length === 0) throw is.invalidParameterError('options.host', 'an address', options.host);
  const { onError } = options as ServeOptions;
  if (onError !== undefined && typeof onError !== 'function') {
    throw is.invalidParameterError('options.onError', 'a function', onError);
  }
  return {
    port: integer('port', 0, 65535),
    host,
    maxBodyBytes: integer('maxBodyBytes', 1, 2 ** 31 - 1),
    maxImagePixels: integer('maxImagePixels', 1, 2 ** 31 - 1),
    maxInFlight: integer('maxInFlight', 1, 65536),
    retryAfterSeconds: integer('retryAfterSeconds', 0, 3600),
    onError,
  };
}
