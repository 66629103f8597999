// SPDX-License-Identifier: Apache-2.0
/**
 * `san-seg worker`: loads a model folder and takes segmentation jobs from a BullMQ queue in Redis
 * (lib/queue/worker.ts) until SIGINT or SIGTERM, then drains: the jobs being run are finished, no new one is taken,
 * and the process exits 0. A second signal stops at once; the jobs it was running go back to the queue when their
 * locks expire (BullMQ's stalled-job check), as they do when a worker is killed.
 * @module
 */
import * as path from 'node:path';
import { SAN_MODEL_DEFAULTS, SanModel, SanModelOptions } from '../segment/model';
import { connectionOptions } from '../queue/connection';
import { WorkerMetrics } from '../queue/metrics';
import { SEGMENT_WORKER_DEFAULTS, SegmentWorker, SegmentWorkerOptions } from '../queue/worker';
import { SEGMENT_QUEUE_DEFAULTS } from '../queue/queue';
import { CliIo, ExitCode, parseCommandArgs, parsePositiveInteger, PROGRAM, required, UsageError } from './common';
import { parseRuntimeArgs, runtimeUsage, RUNTIME_FLAGS } from './runtime-args';
import { nextStopSignal } from './serve';

const COMMAND = 'worker';

const FLAGS = {
  redis: { type: 'string' },
  queue: { type: 'string' },
  model: { type: 'string' },
  concurrency: { type: 'string' },
  prefix: { type: 'string' },
  'input-root': { type: 'string' },
  'output-root': { type: 'string' },
  'text-cache': { type: 'string' },
  'max-image-bytes': { type: 'string' },
  'max-image-pixels': { type: 'string' },
  'max-batch-size': { type: 'string' },
  'max-delay-ms': { type: 'string' },
  'lock-duration-ms': { type: 'string' },
  'stalled-interval-ms': { type: 'string' },
  'max-stalled-count': { type: 'string' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
  ...RUNTIME_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const;

const BATCHING = SAN_MODEL_DEFAULTS.batching;
const WORKER = SEGMENT_WORKER_DEFAULTS;
const METRICS_HOST = '127.0.0.1';

export const WORKER_USAGE = `\
Usage: ${PROGRAM} worker --redis redis://HOST:PORT --queue NAME --model DIR [options]

Takes segmentation jobs (added with SegmentQueue, docs/scale-out.md) from a BullMQ queue in Redis
and runs them on the model; concurrent jobs share the model's batches. Bad input fails a job at
once with its ERR_SAN_ code; other failures are retried with back-off. On SIGINT or SIGTERM it
finishes the jobs it is running, takes no new one and exits 0; a second signal stops at once, and
the jobs it held go back to the queue (as those of a worker that dies do).

Options:
  --redis URL                redis://[user:password@]HOST:PORT[/DB] (required)
  --queue NAME               the queue to take jobs from (required)
  --model DIR                model folder, as written by '${PROGRAM} export' (required)
  --concurrency N            jobs run at once (default ${WORKER.concurrency})
  --prefix P                 prefix of the queue's Redis keys (default bull)
  --input-root DIR           jobs may name images by a path relative to DIR (default: off, image
                             bytes only)
  --output-root DIR          jobs may ask for their label map as a file, written to DIR/NAME/<job id>
                             (default: off)
  --text-cache FILE          keep the text embeddings in FILE: loaded at start, saved at exit
  --max-image-bytes N        largest encoded image a job may carry (default ${SEGMENT_QUEUE_DEFAULTS.maxImageBytes})
  --max-image-pixels N       most pixels an image may have (default ${SAN_MODEL_DEFAULTS.maxInputPixels})
  --max-batch-size N         most images the model runs as one batch (default ${BATCHING.maxBatchSize})
  --max-delay-ms N           how long a job may wait for others to fill its batch (default ${BATCHING.maxDelayMs})
  --lock-duration-ms N       a job whose worker stops renewing its lock this long is stalled and goes
                             back to the queue (default ${WORKER.lockDurationMs})
  --stalled-interval-ms N    how often to look for stalled jobs (default ${WORKER.stalledIntervalMs})
  --max-stalled-count N      redeliveries of a stalled job before it fails (default ${WORKER.maxStalledCount})
  --metrics-port N           serve GET /metrics (Prometheus) on this port; 0 picks a free one
  --metrics-host ADDR        address of the metrics server (default ${METRICS_HOST})
${runtimeUsage(29)}
  -h, --help                 show this help

Writes the metrics URL (with --metrics-port) to stdout once it takes jobs, and what it does to
stderr. Exit status: 0 after a clean stop; 1 when the model does not load; 2 for bad arguments.
`;

/** Everything `san-seg worker` does, checked as far as it can be without Redis or the model. */
export interface WorkerJob {
  readonly modelDir: string;
  readonly queue: string;
  readonly load: SanModelOptions;
  readonly worker: SegmentWorkerOptions;
  readonly metrics: { port: number; host: string } | undefined;
}

/**
 * Parses and checks the arguments after `worker`.
 * @returns the job, or `'help'` when `--help` was given.
 * @throws UsageError for a missing or malformed flag.
 */
export function parseWorkerArgs(args: string[]): WorkerJob | 'help' {
  const { values } = parseCommandArgs(COMMAND, { args, options: FLAGS });
  if (values.help) return 'help';
  const positive = (flag: keyof typeof FLAGS): number | undefined => {
    const text = values[flag];
    return typeof text === 'string' ? parsePositiveInteger(text, `--${flag}`, COMMAND) : undefined;
  };
  const whole = (flag: keyof typeof FLAGS): number | undefined => {
    const text = values[flag];
    if (typeof text !== 'string') return undefined;
    if (!/^\d{1,9}$/.test(text)) throw new UsageError(`--${flag} must be a whole number (got '${text}')`, COMMAND);
    return Number(text);
  };
  const redis = required(values.redis, '--redis', COMMAND);
  try {
    connectionOptions(redis, '--redis');
  } catch {
    throw new UsageError(`--redis must be a URL redis://HOST:PORT (got '${redis}')`, COMMAND);
  }
  const folder = (flag: 'input-root' | 'output-root'): string | undefined =>
    (values[flag] === undefined ? undefined : path.resolve(values[flag]));
  const concurrency = positive('concurrency') ?? WORKER.concurrency;
  const worker: SegmentWorkerOptions = {
    connection: redis,
    concurrency,
    inputRoot: folder('input-root'),
    outputRoot: folder('output-root'),
    maxImageBytes: positive('max-image-bytes'),
    lockDurationMs: positive('lock-duration-ms'),
    stalledIntervalMs: positive('stalled-interval-ms'),
    maxStalledCount: whole('max-stalled-count'),
    prefix: values.prefix,
  };
  const load: SanModelOptions = {
    ...parseRuntimeArgs(values, COMMAND),
    batching: {
      maxBatchSize: positive('max-batch-size') ?? BATCHING.maxBatchSize,
      maxDelayMs: whole('max-delay-ms') ?? BATCHING.maxDelayMs,
      // Every job the worker runs may wait for a batch at once: the batcher must never refuse one.
      maxQueue: Math.max(BATCHING.maxQueue, concurrency),
    },
  };
  const pixels = positive('max-image-pixels');
  if (pixels !== undefined) load.maxInputPixels = pixels;
  if (values['text-cache'] !== undefined) load.textCache = { file: path.resolve(values['text-cache']) };
  const port = whole('metrics-port');
  if (port !== undefined && port > 65535) throw new UsageError(`--metrics-port must be 0 to 65535 (got ${port})`, COMMAND);
  return {
    modelDir: path.resolve(required(values.model, '--model', COMMAND)),
    queue: required(values.queue, '--queue', COMMAND),
    load,
    // Unset options stay unset, so that the worker's defaults apply.
    worker: Object.fromEntries(Object.entries(worker).filter(([, value]) => value !== undefined)) as
      unknown as SegmentWorkerOptions,
    metrics: port === undefined ? undefined : { port, host: values['metrics-host'] ?? METRICS_HOST },
  };
}

/**
 * Runs `san-seg worker` with the arguments after the command; resolves once the worker has drained.
 * @param waitForStop - called once the worker takes jobs; the drain starts when its Promise resolves (with what to
 *   call the reason in the log). By default, the first SIGINT or SIGTERM.
 */
export async function workerCommand(args: string[], io: CliIo,
  waitForStop: (io: CliIo) => Promise<string> = nextStopSignal): Promise<number> {
  const job = parseWorkerArgs(args);
  if (job === 'help') {
    io.stdout.write(WORKER_USAGE);
    return ExitCode.OK;
  }
  let metrics: WorkerMetrics | undefined;
  const model = await SanModel.load(job.modelDir, {
    ...job.load, onBatch: job.metrics && ((info) => metrics?.recordBatch(info.size)),
  });
  try {
    // Made once the model has loaded: its connection to Redis would keep a process whose model failed alive.
    if (job.metrics !== undefined) metrics = new WorkerMetrics(job.queue, job.worker);
    const worker = await SegmentWorker.start(model, job.queue, job.worker);
    try {
      logEvents(worker, io);
      if (metrics !== undefined && job.metrics !== undefined) {
        metrics.watch(worker);
        io.stdout.write(`${await metrics.serve(job.metrics.port, job.metrics.host)}\n`);
      }
      io.stderr.write(`${PROGRAM}: worker ${worker.name} taking jobs from queue '${job.queue}' ` +
        `(${model.manifest.variant} on ${model.device}, concurrency ${job.worker.concurrency}); Ctrl-C to stop\n`);
      const reason = await waitForStop(io);
      io.stderr.write(`${PROGRAM}: ${reason}: taking no new jobs; finishing the ${worker.active} being run\n`);
      // The text cache is persisted by model.dispose() below, like every SanModel's; a failure to write it fails the
      // command, so that a supervisor sees it.
      await worker.close();
      io.stderr.write(`${PROGRAM}: stopped\n`);
      return ExitCode.OK;
    } finally {
      // Already drained after a stop; on a failure (the metrics port taken), its connections must not hold the process.
      await worker.close();
    }
  } finally {
    await metrics?.close();
    await model.dispose();
  }
}

/** One line per failed job, and per change of connection trouble (not one per reconnection attempt). */
function logEvents(worker: SegmentWorker, io: CliIo): void {
  worker.on('failed', (id: string, reason: string, willRetry: boolean) => {
    io.stderr.write(`${PROGRAM}: job ${id} failed${willRetry ? ' (will be retried)' : ''}: ${reason}\n`);
  });
  let last = '';
  worker.on('warning', (error: Error) => {
    if (error.message === last) return;
    last = error.message;
    io.stderr.write(`${PROGRAM}: ${error.message}\n`);
  });
}
