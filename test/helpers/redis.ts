// SPDX-License-Identifier: Apache-2.0
// A real redis-server (Debian's, installed by scripts/setup.sh) on a free loopback port, with its data in a temporary
// folder: append-only, so that a restart keeps every job, as a production Redis with persistence would.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const REDIS_SERVER = process.env.SAN_REDIS_SERVER ?? 'redis-server';

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** Stops Redis (SIGTERM: it writes its data and exits) and starts it again on the same port and folder. */
  restart(downMs?: number): Promise<void>;
  /** Stops Redis and removes its folder. */
  stop(): Promise<void>;
}

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on `port`, and answers PING. */
async function answersPing(port: number, server: ChildProcess, log: () => string): Promise<void> {
  for (let tries = 0; ; tries += 1) {
    if (server.exitCode !== null) throw new Error(`redis-server exited (${server.exitCode}):\n${log()}`);
    const pong = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('error', () => resolve(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
    });
    if (pong) return;
    if (tries > 200) throw new Error(`redis-server did not answer on port ${port}:\n${log()}`);
    await new Promise((wake) => setTimeout(wake, 50));
  }
}

/** Starts redis-server; stop it in afterAll. */
export async function startRedis(): Promise<RedisServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'san-redis-'));
  const port = await freePort();
  let child: ChildProcess;
  let log = '';
  const launch = async (): Promise<void> => {
    child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--daemonize', 'no', '--protected-mode', 'yes'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    child.once('error', (error) => { log += `\n${error.message}`; });
    child.stdout!.on('data', (chunk: Buffer) => { log += chunk.toString(); });
    child.stderr!.on('data', (chunk: Buffer) => { log += chunk.toString(); });
    await answersPing(port, child, () => log);
  };
  const halt = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async restart(downMs = 1000) {
      await halt();
      await new Promise((wake) => setTimeout(wake, downMs));
      await launch();
    },
    async stop() {
      await halt();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
