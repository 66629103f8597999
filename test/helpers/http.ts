// SPDX-License-Identifier: Apache-2.0
// What the server tests share: one HTTP request on its own connection, and waiting for a condition.
import * as http from 'node:http';

/** A whole HTTP answer. */
export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: () => any;
}

/** One request on its own connection (no keep-alive): resolves with the answer, rejects on a connection error. */
export function request(url: string, options: { method?: string; headers?: Record<string, string | number>;
  body?: Buffer | string | Buffer[] } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    const parts = Array.isArray(options.body) ? options.body : options.body === undefined ? [] : [options.body];
    for (const part of parts) req.write(part);
    req.end();
  });
}

/**
 * Resolves once `condition` holds, checking every 5 ms on a timer, so that I/O runs in between (a loop of awaited
 * promises alone would never yield to it). Bounded by the test's timeout.
 */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
