// SPDX-License-Identifier: Apache-2.0
// A request's deadline and the text encoder's fair gate, without a model.
import { ErrorCode } from '../../lib/errors';
import { Deadline } from '../../lib/segment/deadline';
import { FairGate } from '../../lib/segment/fair-gate';

const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('Deadline', () => {
  test('settles a stuck call with ERR_SAN_TIMEOUT and makes check() throw', async () => {
    const deadline = new Deadline(undefined, 20);
    const stuck = new Promise<never>(() => undefined);
    await expect(deadline.race(stuck)).rejects.toMatchObject({
      name: 'SanError', code: ErrorCode.TIMEOUT, message: 'The call timed out after 20 ms (options.timeoutMs)',
    });
    expect(() => deadline.check()).toThrow('timed out');
    expect(deadline.signal.aborted).toBe(true);
    deadline.dispose();
  });

  test("follows the caller's signal with an AbortError carrying its reason", async () => {
    const controller = new AbortController();
    const deadline = new Deadline(controller.signal, undefined);
    expect(() => deadline.check()).not.toThrow();
    const race = deadline.race(new Promise<never>(() => undefined));
    controller.abort('client gone');
    await expect(race).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'client gone' });
    deadline.dispose();
  });

  test('passes the work through while the deadline holds', async () => {
    const deadline = new Deadline(undefined, 10_000);
    await expect(deadline.race(Promise.resolve(7))).resolves.toBe(7);
    await expect(deadline.race(Promise.reject(new Error('own failure')))).rejects.toThrow('own failure');
    deadline.dispose();
  });
});

describe('FairGate', () => {
  test('admits in arrival order, one slot at a time', async () => {
    const gate = new FairGate(1);
    const order: string[] = [];
    const job = (name: string) => gate.run(async () => {
      order.push(`${name} in`);
      await tick(5);
      order.push(`${name} out`);
    });
    await Promise.all([job('a'), job('b'), job('c')]);
    expect(order).toEqual(['a in', 'a out', 'b in', 'b out', 'c in', 'c out']);
  });

  test('a waiter whose signal aborts leaves the line and never runs', async () => {
    const gate = new FairGate(1);
    let release: () => void = () => undefined;
    const first = gate.run(() => new Promise<void>((resolve) => {
      release = resolve;
    }));
    const controller = new AbortController();
    const ran = jest.fn(async () => undefined);
    const waiting = gate.run(ran, controller.signal);
    expect(gate.waiting).toBe(1);
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(gate.waiting).toBe(0);
    release();
    await first;
    await expect(gate.run(async () => 'next')).resolves.toBe('next');
    expect(ran).not.toHaveBeenCalled();
  });
});
