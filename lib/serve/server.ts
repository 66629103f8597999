// SPDX-License-Identifier: Apache-2.0
/**
 * `startServer`: a loaded {@link SanModel} over HTTP (node:http, HTTP/1.1), as `san-seg serve` runs it.
 *
 * Routes: `POST /segment` (an image as the raw body, as multipart/form-data or as base64 in JSON; answered with
 * JSON), `GET /healthz` and `GET /metrics` (Prometheus text format). Every failure is answered with JSON
 * `{ error: { code, message } }` and a status taken from the error's code; no request can crash the process, and no
 * client can hold memory, a slot or a connection beyond the limits (docs/reliability.md lists the hostile cases).
 * `close()` drains: it answers every request already accepted, up to a deadline, then resolves. docs/serve.md
 * describes the routes, parameters, limits and statuses; lib/serve/ holds the request and body readers, the form
 * reader, the connection cap and the metrics.
 * @module
 */
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ErrorCode } from '../errors';
import * as is from '../is';
import { SanModel } from '../segment/model';
import { Connections } from './connections';
import { ClientGone, errorAnswer, HttpError, badRequest, overloaded, ServeErrorCode } from './http-error';
import { labelsBody, LabelsBody } from './labels';
import { HttpMetrics, PROMETHEUS_CONTENT_TYPE, registerModelMetrics } from './prometheus';
import { readSegmentBody, readSegmentHead } from './request';

export { ServeErrorCode } from './http-error';
export { decodeRle, encodeRle } from './labels';
export type { LabelFormat, LabelsBody } from './labels';
export { registerModelMetrics } from './prometheus';

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
   * Most pixels the label map may have, 1 to 2³¹ − 1: the `outputSize` asked for or, without one, the image's size.
   * More is answered 413 ERR_SAN_TOO_LARGE before any work (an `outputSize` in the query before the body is read).
   * @defaultValue `33554432` (e.g. 8192 × 4096; 16384 × 16384 is refused)
   */
  maxOutputPixels?: number;
  /**
   * Most `POST /segment` requests decoded and segmented at once, from their last body byte to their answer, 1 to
   * 65536. More are answered 503 at once. A body still arriving holds no slot. @defaultValue `64`
   */
  maxInFlight?: number;
  /**
   * Most bytes of request bodies held in memory at once, from their first byte to their answer, 1 to 2⁴⁸; the image
   * decoded from a JSON body's base64 counts too, from its decoding. A request that would pass it is answered 503 at
   * once (by its Content-Length), or as soon as its bytes (or its decoded image) do; 413 ERR_SAN_TOO_LARGE when a
   * JSON body and its decoded image pass it alone.
   * @defaultValue `268435456` (256 MiB), or `maxBodyBytes` when that is larger
   */
  maxBytesInFlight?: number;
  /**
   * Most connections open at once, 1 to 1 000 000. At the cap a new connection closes the one idle the longest (no
   * request sent yet, or between keep-alive requests); when every one is busy, the new one is closed.
   * @defaultValue `1024`
   */
  maxConnections?: number;
  /**
   * Milliseconds a connection has to send a request's headers, 1 to 2³¹ − 1: also how long a connection that sends
   * nothing stays open. Later is answered 408 and closed. @defaultValue `20000`
   */
  headersTimeoutMs?: number;
  /**
   * Milliseconds a `POST /segment` body has to arrive whole after its headers, 1 to 2³¹ − 1. Later is answered 408
   * ERR_SAN_BODY_TIMEOUT and the connection closed. @defaultValue `60000`
   */
  bodyTimeoutMs?: number;
  /**
   * Milliseconds any request has to arrive whole, headers and body, `headersTimeoutMs` to 2³¹ − 1: node:http's own
   * limit, behind `bodyTimeoutMs`, for every route. Later is answered 408 and closed. @defaultValue `120000`
   */
  requestTimeoutMs?: number;
  /** Milliseconds a keep-alive connection may stay idle between requests, 1 to 2³¹ − 1. @defaultValue `5000` */
  keepAliveTimeoutMs?: number;
  /**
   * Milliseconds `close()` waits for the requests already accepted, 0 to 2³¹ − 1; then it closes the connections
   * left and reports them. @defaultValue `30000`
   */
  drainTimeoutMs?: number;
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
  maxOutputPixels: 2 ** 25,
  maxInFlight: 64,
  maxBytesInFlight: 256 * 1024 * 1024,
  maxConnections: 1024,
  headersTimeoutMs: 20_000,
  bodyTimeoutMs: 60_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 5_000,
  drainTimeoutMs: 30_000,
  retryAfterSeconds: 1,
});

/** How a drain ended, as `close()` resolves with it. */
export interface DrainReport {
  /** Whether `drainTimeoutMs` passed with requests still unanswered. */
  timedOut: boolean;
  /** Requests unanswered at the deadline (their connections closed); 0 when it did not pass. */
  requestsUnanswered: number;
  /** Connections closed at the deadline; 0 when it did not pass. */
  connectionsClosed: number;
}

/** A running server, as {@link startServer} resolves with it. */
export interface SanServer {
  /** Where it listens, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** The port it listens on (the one the system picked for port 0). */
  readonly port: number;
  /** The node:http server, for its events; close it through `close()`. */
  readonly server: http.Server;
  /** Requests received and not yet answered, on every route. */
  readonly inFlight: number;
  /** The prom-client registry `GET /metrics` answers from, e.g. to add your own metrics. */
  readonly registry: Registry;
  /** The options in force, every default filled in. */
  readonly settings: Readonly<ServeSettings>;
  /**
   * Stops listening, answers requests that still arrive on open connections with 503, waits until every accepted
   * request has been answered or `drainTimeoutMs` has passed, then closes the remaining connections. It does not
   * dispose the model: the caller owns it. Calling it again returns the same Promise.
   * @returns what was left at the deadline, if it passed.
   */
  close(): Promise<DrainReport>;
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
/** How often node:http looks for connections past `headersTimeoutMs` or `requestTimeoutMs`, at most. */
const TIMEOUT_CHECK_MS = 1000;
const JSON_TYPE = 'application/json; charset=utf-8';

/** {@link ServeOptions} with every default filled in. */
export type ServeSettings = Required<Omit<ServeOptions, 'onError'>> & Pick<ServeOptions, 'onError'>;

interface State {
  readonly model: SanModel;
  readonly settings: ServeSettings;
  readonly registry: Registry;
  readonly metrics: HttpMetrics;
  readonly connections: Connections;
  draining: boolean;
  /** Requests received and not answered, every route. */
  active: number;
  /** `POST /segment` requests with a whole body, being decoded and segmented. */
  segmenting: number;
  /**
   * Bytes of request bodies held, and of the images decoded from JSON bodies, from their arrival (or decoding) to
   * their request's answer.
   */
  bodyBytes: number;
  /** Called whenever `active` drops to 0. */
  onIdle: (() => void) | undefined;
}

/**
 * Serves a loaded model over HTTP until `close()` is called.
 * @param model - a loaded model; the server never disposes it.
 * @param options - address, limits, timeouts and hooks; see {@link ServeOptions}.
 * @returns once listening: the URL, the port, the metrics registry and `close()`.
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
  const registry = new Registry();
  registerModelMetrics(registry, () => model.metrics());
  // The closures below run only once the server works, after `state` is made.
  const metrics = new HttpMetrics(registry, { inFlight: () => state.active, connections: () => connections.size,
    bodyBytes: () => state.bodyBytes });
  const connections = new Connections(settings.maxConnections, (reason) => metrics.connectionsClosed.inc({ reason }));
  const state: State = {
    model, settings, registry, metrics, connections, draining: false, active: 0, segmenting: 0, bodyBytes: 0,
    onIdle: undefined,
  };
  const server = http.createServer({
    headersTimeout: settings.headersTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, settings.headersTimeoutMs),
  }, (req, res) => {
    handle(state, req, res).catch((error: unknown) => {
      // handle() answers its own errors; this is the last guard against a crash.
      settings.onError?.(error, req);
      res.destroy();
    });
  });
  server.keepAliveTimeout = settings.keepAliveTimeoutMs;
  server.on('connection', (socket) => state.connections.accept(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  let closing: Promise<DrainReport> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    server,
    registry,
    settings,
    get inFlight() {
      return state.active;
    },
    close() {
      closing ??= drain(state, server);
      return closing;
    },
  };
}

async function drain(state: State, server: http.Server): Promise<DrainReport> {
  state.draining = true;
  // Stops listening and closes idle keep-alive connections; busy ones stay until their answer is sent.
  const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  const report: DrainReport = { timedOut: false, requestsUnanswered: 0, connectionsClosed: 0 };
  if (state.active > 0) {
    const idle = new Promise<void>((resolve) => { state.onIdle = resolve; });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), state.settings.drainTimeoutMs);
    });
    if (await Promise.race([idle, deadline]) === 'deadline') {
      // Closing a connection finishes every request on it: `idle` follows.
      report.timedOut = true;
      report.requestsUnanswered = state.active;
      report.connectionsClosed = state.connections.closeAll('drain_deadline');
      await idle;
    }
    clearTimeout(timer);
  }
  // Every accepted request is answered: what is left is idle or has not finished sending its headers.
  server.closeAllConnections();
  await closed;
  return report;
}

async function handle(state: State, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const started = performance.now();
  state.metrics.requests.inc();
  state.active += 1;
  let done = false;
  const controller = new AbortController();
  /** Body bytes (and decoded image bytes) this request holds, given back with its answer. */
  const held = { bytes: 0 };
  const { socket } = req;
  const finish = (): void => {
    if (done) return;
    done = true;
    state.connections.end(socket, finish);
    // The client went away before its answer: its queued work is dropped.
    if (!res.writableFinished) controller.abort(new ClientGone('The client closed the connection'));
    state.bodyBytes -= held.bytes;
    state.active -= 1;
    if (state.active === 0) state.onIdle?.();
  };
  res.once('close', finish);
  state.connections.begin(socket, finish);
  try {
    if (state.draining) {
      if (parseTarget(req)?.pathname === '/healthz') return send(state, req, res, { status: 'draining' }, 503);
      throw new HttpError(503, ServeErrorCode.SHUTTING_DOWN, 'The server is shutting down');
    }
    await route(state, req, res, started, controller.signal, held);
  } catch (error) {
    answerError(state, req, res, error);
  }
}

async function route(state: State, req: http.IncomingMessage, res: http.ServerResponse, started: number,
  signal: AbortSignal, held: { bytes: number }): Promise<void> {
  const url = parseTarget(req);
  if (url === undefined) throw badRequest(`The request target '${String(req.url).slice(0, 80)}' is not a URL`);
  const allow = ROUTES.get(url.pathname);
  if (allow === undefined) throw new HttpError(404, ServeErrorCode.NOT_FOUND, `No route ${url.pathname}`);
  if (!allow.split(', ').includes(req.method ?? '')) {
    throw new HttpError(405, ServeErrorCode.METHOD_NOT_ALLOWED, `${url.pathname} takes ${allow}, not ${req.method}`,
      { Allow: allow });
  }
  if (url.pathname === '/healthz') return send(state, req, res, { status: 'ok' });
  if (url.pathname === '/metrics') {
    return send(state, req, res, await state.registry.metrics(), 200, PROMETHEUS_CONTENT_TYPE);
  }
  const { settings } = state;
  const head = readSegmentHead(req, url, settings);
  // Admission before a byte of the body is read. A slot is taken only once the body is whole, and the byte budget
  // counts bytes received, so clients that send headers and then stall hold neither.
  checkSlot(state);
  if (state.bodyBytes + head.declaredBytes > settings.maxBytesInFlight) throw bytesOverloaded(state);
  const admit = (bytes: number): void => {
    // Only a JSON body and the image decoded from it can pass the budget alone (a body is at most maxBodyBytes, and
    // maxBytesInFlight is at least that): waiting would not help, so it is not a 503.
    if (held.bytes + bytes > settings.maxBytesInFlight) throw decodedTooLarge(held.bytes, bytes, settings);
    if (state.bodyBytes + bytes > settings.maxBytesInFlight) throw bytesOverloaded(state);
    state.bodyBytes += bytes;
    held.bytes += bytes;
  };
  const { image, format, options } = await readSegmentBody(req, head, settings,
    { maxBytes: settings.maxBodyBytes, timeoutMs: settings.bodyTimeoutMs, admit });
  checkSlot(state);
  state.segmenting += 1;
  try {
    const submitted = performance.now();
    const result = await state.model.segment(image, { ...options, signal });
    state.metrics.segmentSeconds.observe((performance.now() - submitted) / 1000);
    const body: SegmentBody = {
      classes: [...result.classes],
      size: [result.height, result.width],
      // fromEntries defines own properties: a class named __proto__ is kept as a key like any other.
      shares: Object.fromEntries(result.shares().map(({ name, share }) => [name, share])),
      labels: await labelsBody(result, format),
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    send(state, req, res, body);
  } finally {
    state.segmenting -= 1;
  }
}

/** @throws a 503 when every `maxInFlight` slot is taken. */
function checkSlot(state: State): void {
  if (state.segmenting >= state.settings.maxInFlight) {
    throw overloaded(`The server is segmenting ${state.settings.maxInFlight} requests (maxInFlight); retry later`,
      state.settings.retryAfterSeconds);
  }
}

function bytesOverloaded(state: State): HttpError {
  return overloaded(`The server holds ${state.bodyBytes} bytes of request bodies and decoded images, near its ` +
    `${state.settings.maxBytesInFlight} (maxBytesInFlight); retry later`, state.settings.retryAfterSeconds);
}

/** 413 with ERR_SAN_TOO_LARGE: a JSON body and its decoded image that together pass `maxBytesInFlight` alone. */
function decodedTooLarge(bodyBytes: number, imageBytes: number, settings: ServeSettings): HttpError {
  return new HttpError(413, ErrorCode.TOO_LARGE, `The ${bodyBytes}-byte body and the ${imageBytes}-byte image ` +
    `decoded from its base64 would pass the ${settings.maxBytesInFlight} bytes allowed in memory ` +
    '(maxBytesInFlight); send the image as the raw body or in multipart/form-data, which need no decoded copy');
}

/** Sends a JSON (or text) answer; a no-op once the client is gone. */
function send(state: State, req: http.IncomingMessage, res: http.ServerResponse, body: unknown, status = 200,
  type = JSON_TYPE, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  state.metrics.responses.inc({ code: String(status) });
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
  const { status, code, headers } = errorAnswer(error, state.settings.retryAfterSeconds);
  if (status === 500) state.settings.onError?.(error, req);
  send(state, req, res, { error: { code, message: firstLine(error) } }, status, JSON_TYPE, headers);
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
  const known = [...Object.keys(SERVE_DEFAULTS), 'onError'];
  const unknown = Object.keys(options).find((name) => !known.includes(name));
  if (unknown !== undefined) {
    throw is.invalidParameterError('options', `only the options ${known.join(', ')}`, unknown, 'range');
  }
  type IntegerOption = Exclude<keyof typeof SERVE_DEFAULTS, 'host'>;
  const integer = (name: IntegerOption, min: number, max: number, fallback: number = SERVE_DEFAULTS[name]): number => {
    const value = options[name] ?? fallback;
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
  const MAX_MS = 2 ** 31 - 1;
  const maxBodyBytes = integer('maxBodyBytes', 1, MAX_MS);
  const headersTimeoutMs = integer('headersTimeoutMs', 1, MAX_MS);
  return {
    port: integer('port', 0, 65535),
    host,
    maxBodyBytes,
    maxImagePixels: integer('maxImagePixels', 1, MAX_MS),
    maxOutputPixels: integer('maxOutputPixels', 1, MAX_MS),
    maxInFlight: integer('maxInFlight', 1, 65536),
    // A budget below one body would refuse every body of the largest size allowed.
    maxBytesInFlight: integer('maxBytesInFlight', maxBodyBytes, 2 ** 48,
      Math.max(SERVE_DEFAULTS.maxBytesInFlight, maxBodyBytes)),
    maxConnections: integer('maxConnections', 1, 1_000_000),
    headersTimeoutMs,
    bodyTimeoutMs: integer('bodyTimeoutMs', 1, MAX_MS),
    // node:http refuses a request timeout shorter than the headers'.
    requestTimeoutMs: integer('requestTimeoutMs', headersTimeoutMs, MAX_MS,
      Math.max(SERVE_DEFAULTS.requestTimeoutMs, headersTimeoutMs)),
    keepAliveTimeoutMs: integer('keepAliveTimeoutMs', 1, MAX_MS),
    drainTimeoutMs: integer('drainTimeoutMs', 0, MAX_MS),
    retryAfterSeconds: integer('retryAfterSeconds', 0, 3600),
    onError,
  };
}
