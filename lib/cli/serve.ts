// SPDX-License-Identifier: Apache-2.0
/**
 * `san-seg serve`: loads a model folder and serves it over HTTP (lib/serve/server.ts) until SIGINT or SIGTERM, then
 * drains: every request already accepted is answered before the process exits 0, up to the drain deadline, after
 * which the connections left are closed and reported on stderr. A second signal stops at once.
 * @module
 */
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { SAN_MODEL_DEFAULTS, SanModel, SanModelOptions } from '../segment/model';
import { checkServeOptions, SERVE_DEFAULTS, ServeOptions, startServer } from '../serve/server';
import { CliIo, ExitCode, parseCommandArgs, PROGRAM, required, UsageError } from './common';
import { parseRuntimeArgs, runtimeUsage, RUNTIME_FLAGS } from './runtime-args';

const COMMAND = 'serve';
const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** How often `serve` checks that the process which started it is still there (see nextStopSignal). */
const PARENT_CHECK_MS = 500;

const FLAGS = {
  model: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'max-body-bytes': { type: 'string' },
  'max-image-pixels': { type: 'string' },
  'max-in-flight': { type: 'string' },
  'max-output-pixels': { type: 'string' },
  'max-bytes-in-flight': { type: 'string' },
  'max-connections': { type: 'string' },
  'headers-timeout-ms': { type: 'string' },
  'body-timeout-ms': { type: 'string' },
  'request-timeout-ms': { type: 'string' },
  'keep-alive-timeout-ms': { type: 'string' },
  'drain-timeout-ms': { type: 'string' },
  'max-batch-size': { type: 'string' },
  'max-delay-ms': { type: 'string' },
  'max-queue': { type: 'string' },
  ...RUNTIME_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const;

const BATCHING = SAN_MODEL_DEFAULTS.batching;

export const SERVE_USAGE = `\
Usage: ${PROGRAM} serve --model DIR [--port N] [--host ADDR] [options]

Serves a model over HTTP until SIGINT (Ctrl-C) or SIGTERM, then stops accepting, answers every
request already accepted (for up to --drain-timeout-ms, then closes what is left) and exits 0; a
second signal stops at once. Routes (docs/serve.md):
  POST /segment?classes=sky;sea   an image (raw body, multipart/form-data or JSON) -> JSON with the
                                  label map (format=png|rle) and each class's share
  GET  /healthz                   200 {"status":"ok"}; 503 while draining
  GET  /metrics                   Prometheus text: queue depth, batch sizes, latency, images/s, text cache

Options:
  --model DIR              model folder, as written by '${PROGRAM} export' (required)
  --port N                 TCP port; 0 picks a free one (default ${SERVE_DEFAULTS.port})
  --host ADDR              address to listen on (default ${SERVE_DEFAULTS.host}, this machine only); the
                           server has no authentication or TLS: put a proxy in front for others
  --max-body-bytes N       largest request body; more is answered 413 (default ${SERVE_DEFAULTS.maxBodyBytes})
  --max-image-pixels N     most pixels (width x height) an image may have; more is answered 413
                           (default ${SERVE_DEFAULTS.maxImagePixels})
  --max-output-pixels N    most pixels of the label map (outputSize, or the image's size); more is
                           answered 413 (default ${SERVE_DEFAULTS.maxOutputPixels})
  --max-in-flight N        most POST /segment requests decoded and segmented at once (a body still
                           arriving holds no slot); more are answered 503 (default ${SERVE_DEFAULTS.maxInFlight})
  --max-bytes-in-flight N  most bytes of request bodies, and of images decoded from JSON bodies,
                           held at once; more is answered 503 (default ${SERVE_DEFAULTS.maxBytesInFlight}, or
                           --max-body-bytes if larger)
  --max-connections N      most open connections; at the cap the longest idle one is closed for a new
                           one (default ${SERVE_DEFAULTS.maxConnections})
  --headers-timeout-ms N   time to send a request's headers, and how long a silent connection stays
                           open; later: 408 (default ${SERVE_DEFAULTS.headersTimeoutMs})
  --body-timeout-ms N      time for a POST /segment body to arrive whole; later: 408 (default ${SERVE_DEFAULTS.bodyTimeoutMs})
  --request-timeout-ms N   time for any request to arrive whole (default ${SERVE_DEFAULTS.requestTimeoutMs})
  --keep-alive-timeout-ms N  idle time allowed between keep-alive requests (default ${SERVE_DEFAULTS.keepAliveTimeoutMs})
  --drain-timeout-ms N     on a stop, how long to wait for the requests in flight before closing their
                           connections (default ${SERVE_DEFAULTS.drainTimeoutMs})
  --max-batch-size N       most images the model runs as one batch (default ${BATCHING.maxBatchSize})
  --max-delay-ms N         how long a request may wait for others to fill its batch (default ${BATCHING.maxDelayMs})
  --max-queue N            requests waiting for a batch; more are answered 503 (default ${BATCHING.maxQueue})
${runtimeUsage(27)}
  -h, --help               show this help

Writes the server's URL to stdout once it listens, and what it does to stderr. Exit status: 0 after
a clean stop; 1 when the model does not load or the address cannot be used; 2 for bad arguments.
`;

/** Everything `san-seg serve` does, checked as far as it can be without loading the model. */
export interface ServeJob {
  readonly modelDir: string;
  readonly load: SanModelOptions;
  readonly serve: ServeOptions;
}

/**
 * Parses and checks the arguments after `serve`.
 * @returns the job, or `'help'` when `--help` was given.
 * @throws UsageError for a missing or malformed flag; TypeError or RangeError (ERR_SAN_INVALID_ARG) for a server
 *   option out of range.
 */
export function parseServeArgs(args: string[]): ServeJob | 'help' {
  const { values } = parseCommandArgs(COMMAND, { args, options: FLAGS });
  if (values.help) return 'help';
  const integer = (flag: keyof typeof FLAGS): number | undefined => {
    const text = values[flag];
    if (text === undefined || typeof text !== 'string') return undefined;
    if (!/^\d{1,15}$/.test(text)) throw new UsageError(`--${flag} must be a whole number (got '${text}')`, COMMAND);
    return Number(text);
  };
  const serve: ServeOptions = {
    port: integer('port'),
    host: values.host,
    maxBodyBytes: integer('max-body-bytes'),
    maxImagePixels: integer('max-image-pixels'),
    maxOutputPixels: integer('max-output-pixels'),
    maxInFlight: integer('max-in-flight'),
    maxBytesInFlight: integer('max-bytes-in-flight'),
    maxConnections: integer('max-connections'),
    headersTimeoutMs: integer('headers-timeout-ms'),
    bodyTimeoutMs: integer('body-timeout-ms'),
    requestTimeoutMs: integer('request-timeout-ms'),
    keepAliveTimeoutMs: integer('keep-alive-timeout-ms'),
    drainTimeoutMs: integer('drain-timeout-ms'),
  };
  checkServeOptions(serve);
  const load: SanModelOptions = {
    ...parseRuntimeArgs(values, COMMAND),
    batching: {
      maxBatchSize: integer('max-batch-size') ?? BATCHING.maxBatchSize,
      maxDelayMs: integer('max-delay-ms') ?? BATCHING.maxDelayMs,
      maxQueue: integer('max-queue') ?? BATCHING.maxQueue,
    },
  };
  return { modelDir: path.resolve(required(values.model, '--model', COMMAND)), load, serve };
}

/**
 * Runs `san-seg serve` with the arguments after the command; resolves once the server has drained.
 * @param waitForStop - called once the server listens; the drain starts when its Promise resolves (with what to
 *   call the reason in the log). By default, the first SIGINT or SIGTERM.
 */
export async function serveCommand(args: string[], io: CliIo,
  waitForStop: (io: CliIo) => Promise<string> = nextStopSignal): Promise<number> {
  const job = parseServeArgs(args);
  if (job === 'help') {
    io.stdout.write(SERVE_USAGE);
    return ExitCode.OK;
  }
  const model = await SanModel.load(job.modelDir, job.load);
  try {
    const server = await startServer(model, {
      ...job.serve, onError: (error, request) => logUnexpected(io, error, request),
    });
    io.stdout.write(`${server.url}\n`);
    io.stderr.write(`${PROGRAM}: serving ${job.modelDir} (${model.manifest.variant} on ${model.device}) at ` +
      `${server.url}: POST /segment, GET /healthz, GET /metrics; Ctrl-C to stop\n`);
    const reason = await waitForStop(io);
    io.stderr.write(`${PROGRAM}: ${reason}: stopped accepting; answering the ${server.inFlight} request` +
      `${server.inFlight === 1 ? '' : 's'} in flight\n`);
    const drained = await server.close();
    if (drained.timedOut) {
      const { requestsUnanswered: requests, connectionsClosed: connections } = drained;
      io.stderr.write(`${PROGRAM}: the drain deadline (${server.settings.drainTimeoutMs} ms) passed: closed ` +
        `${connections} connection${connections === 1 ? '' : 's'} with ${requests} request` +
        `${requests === 1 ? '' : 's'} unanswered\n`);
    }
    io.stderr.write(`${PROGRAM}: stopped\n`);
    return ExitCode.OK;
  } finally {
    await model.dispose();
  }
}

/**
 * Resolves with the first SIGINT or SIGTERM, or when the process that started this one exits. From then on, a
 * signal exits the process at once (status 128 + the signal's number), for a user who will not wait for the drain.
 *
 * The parent matters under `npx san-seg serve`: npm runs `sh -c 'san-seg …'` and passes a SIGTERM to that shell
 * only, which (Debian's dash) dies of it without passing it on; this process, re-parented, would serve on.
 */
export function nextStopSignal(io: CliIo): Promise<string> {
  return new Promise((resolve) => {
    const parent = process.ppid;
    const stop = (reason: string): void => {
      clearInterval(parentCheck);
      for (const name of STOP_SIGNALS) process.off(name, stop);
      for (const name of STOP_SIGNALS) {
        process.once(name, (again: NodeJS.Signals) => {
          io.stderr.write(`${PROGRAM}: ${again} again: stopping without waiting for the requests in flight\n`);
          process.exit(128 + os.constants.signals[again]);
        });
      }
      resolve(reason);
    };
    const parentCheck = setInterval(() => {
      if (process.ppid !== parent) stop(`the parent process (${parent}) exited`);
    }, PARENT_CHECK_MS).unref();
    for (const name of STOP_SIGNALS) process.on(name, stop);
  });
}

/** An error answered 500: a bug or a runtime failure, logged whole so that it can be reported. */
function logUnexpected(io: CliIo, error: unknown, request: http.IncomingMessage): void {
  const detail = error instanceof Error ? error.stack ?? error.message : String(error);
  io.stderr.write(`${PROGRAM}: 500 on ${request.method} ${request.url?.split('?')[0]}: ${detail}\n`);
}
