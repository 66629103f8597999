// SPDX-License-Identifier: Apache-2.0
// deploy/: every manifest validates against its kind's schema (deploy/validate.mjs), and the manifests agree with
// the code: the containers' arguments are flags the commands take, and KEDA watches the list the workers take from.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseServeArgs } from '../../lib/cli/serve';
import { parseWorkerArgs } from '../../lib/cli/worker';
import { repoRoot } from '../helpers/paths';

const DEPLOY = path.join(repoRoot, 'deploy');

interface Manifest {
  kind: string;
  metadata: { name: string };
  spec: Record<string, any>;
}

function manifests(file: string): Manifest[] {
  return parseAllDocuments(fs.readFileSync(path.join(DEPLOY, file), 'utf8')).map((document) => document.toJS());
}

function container(file: string): { command: string[]; args: string[]; env?: Array<{ name: string; value: string }> } {
  const deployment = manifests(file).find((object) => object.kind === 'Deployment')!;
  return deployment.spec.template.spec.containers[0];
}

test('every manifest validates against its schema', () => {
  const run = spawnSync(process.execPath, [path.join(DEPLOY, 'validate.mjs')], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expect(run.stdout.trim().split('\n').sort()).toEqual([
    'ok models.yaml: PersistentVolumeClaim/san-models',
    'ok redis.yaml: Deployment/san-redis',
    'ok redis.yaml: PersistentVolumeClaim/san-redis-data',
    'ok redis.yaml: Service/san-redis',
    'ok serve.yaml: Deployment/san-serve',
    'ok serve.yaml: Service/san-serve',
    'ok worker-autoscaling.yaml: ScaledObject/san-worker',
    'ok worker.yaml: Deployment/san-worker',
  ]);
});

test('a manifest with a wrong type is refused', () => {
  const broken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'san-deploy-')), 'broken.yaml');
  fs.writeFileSync(broken, fs.readFileSync(path.join(DEPLOY, 'worker.yaml'), 'utf8')
    .replace('containerPort: 9464', 'containerPort: metrics'));
  const run = spawnSync(process.execPath, [path.join(DEPLOY, 'validate.mjs'), broken], { encoding: 'utf8' });
  expect(run.status).toBe(1);
  expect(run.stderr).toMatch(/containerPort must be integer/);
  fs.rmSync(path.dirname(broken), { recursive: true });
});

test('kustomization.yaml lists every manifest', () => {
  const [kustomization] = parseAllDocuments(fs.readFileSync(path.join(DEPLOY, 'kustomization.yaml'), 'utf8'))
    .map((document) => document.toJS());
  const files = fs.readdirSync(DEPLOY).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml');
  expect([...kustomization.resources].sort()).toEqual(files.sort());
});

test('the containers run flags the commands take; KEDA counts the wait list of the workers\' queue', () => {
  const serve = container('serve.yaml');
  expect(serve.command).toEqual(['san-seg']);
  expect(serve.args[0]).toBe('serve');
  expect(parseServeArgs(serve.args.slice(1))).toMatchObject({ modelDir: '/models/default', serve: { host: '0.0.0.0' } });

  const worker = container('worker.yaml');
  expect(worker.args[0]).toBe('worker');
  const redisUrl = worker.env!.find(({ name }) => name === 'REDIS_URL')!.value;
  // Kubernetes expands $(REDIS_URL) in args from the container's env.
  const args = worker.args.slice(1).map((arg) => arg.replace('$(REDIS_URL)', redisUrl));
  const job = parseWorkerArgs(args);
  if (job === 'help') throw new Error('--help in the worker manifest');
  expect(job).toMatchObject({ queue: 'san', metrics: { port: 9464, host: '0.0.0.0' } });

  const [scaledObject] = manifests('worker-autoscaling.yaml');
  const [trigger] = scaledObject.spec.triggers;
  expect(trigger.type).toBe('redis');
  // BullMQ's default prefix is "bull": waiting jobs are the list bull:<queue>:wait.
  expect(trigger.metadata.listName).toBe(`bull:${job.queue}:wait`);
  expect(`redis://${trigger.metadata.address}`).toBe(redisUrl);
  expect(scaledObject.spec.scaleTargetRef.name).toBe('san-worker');
  // The grace period covers the drain.
  const deployment = manifests('worker.yaml').find((object) => object.kind === 'Deployment')!;
  expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
});
