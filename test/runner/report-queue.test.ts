// The runner's hand-over of results to reporters (src/runner/report-queue.ts):
// report order whatever the completion order, one result at a time to a
// reporter that asks to wait, nothing kept once handed over, and a signal to
// hold back work while too much waits. Plain data, no KVM.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ReportQueue } from '../../src/runner/report-queue.js';
import type { Reporter, TestResult } from '../../src/runner/types.js';
import { passed } from '../report/fixtures.js';

/** A reporter that records the names it gets, and waits for `release()` after each when `slow`. */
function recorder(slow = false) {
  const names: string[] = [];
  let release: (() => void) | undefined;
  const reporter: Reporter = {
    onTestResult(result) {
      names.push(result.name);
      if (slow) return new Promise<void>((resolve) => (release = resolve));
    },
  };
  return {
    reporter,
    names,
    release() {
      const r = release;
      release = undefined;
      r?.();
    },
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const big = (name: string, bytes: number): TestResult => passed(name, undefined, 'x'.repeat(bytes));

describe('ReportQueue', () => {
  test('hands results over in report order, each as soon as every earlier one is there', () => {
    const { reporter, names } = recorder();
    const queue = new ReportQueue(4, [reporter]);
    queue.add(2, passed('c'));
    queue.add(1, passed('b'));
    assert.deepEqual(names, [], 'nothing before the first result');
    queue.add(0, passed('a'));
    assert.deepEqual(names, ['a', 'b', 'c']);
    queue.add(3, passed('d'));
    assert.deepEqual(names, ['a', 'b', 'c', 'd']);
    assert.equal(queue.nextIndex, 4);
  });

  test('waits for a reporter that returns a promise before handing over the next result', async () => {
    const slow = recorder(true);
    const quick = recorder();
    const queue = new ReportQueue(3, [slow.reporter, quick.reporter]);
    queue.add(0, passed('a'));
    queue.add(1, passed('b'));
    queue.add(2, passed('c'));
    assert.deepEqual([slow.names, quick.names], [['a'], ['a']]);
    slow.release();
    await tick();
    assert.deepEqual([slow.names, quick.names], [['a', 'b'], ['a', 'b']]);
    slow.release();
    await tick();
    slow.release();
    const finished = queue.finish();
    await finished;
    assert.deepEqual(slow.names, ['a', 'b', 'c']);
    assert.deepEqual(queue.counts, { passed: 3, failed: 0, ignored: 0, skipped: 0, delivered: 3 });
  });

  test('counts tests that skipped themselves apart from ignored ones', async () => {
    const { reporter } = recorder();
    const queue = new ReportQueue(3, [reporter]);
    queue.add(0, { ...passed('a'), status: 'skipped', outcome: 'skipped', message: 'no x2APIC' });
    queue.add(1, { ...passed('b'), status: 'ignored', outcome: undefined });
    queue.add(2, passed('c'));
    await queue.finish();
    assert.deepEqual(queue.counts, { passed: 1, failed: 0, ignored: 1, skipped: 1, delivered: 3 });
  });

  test('finish() skips tests that never got a result and hands over the rest in order', async () => {
    const { reporter, names } = recorder();
    const queue = new ReportQueue(5, [reporter]);
    queue.add(1, passed('b'));
    queue.add(3, passed('d'));
    await queue.finish();
    assert.deepEqual(names, ['b', 'd']);
    assert.equal(queue.counts.delivered, 2);
  });

  test('congested while much output waits, for an earlier test or for a slow reporter; relieved once it has gone', async () => {
    const slow = recorder(true);
    let reliefs = 0;
    const queue = new ReportQueue(3, [slow.reporter], { onRelief: () => reliefs++ });
    // Waiting for test 0: two big results pile up.
    queue.add(1, big('b', 20 << 20));
    queue.add(2, big('c', 20 << 20));
    assert.equal(queue.congested, true);
    queue.add(0, passed('a'));
    slow.release();
    await tick();
    // 'b' is being written, so its text is still held.
    assert.deepEqual([slow.names, queue.congested], [['a', 'b'], true]);
    reliefs = 0;
    slow.release();
    await tick();
    // Only 'c' is held now.
    assert.deepEqual([slow.names, queue.congested], [['a', 'b', 'c'], false]);
    assert.ok(reliefs > 0, 'told the scheduler');
    slow.release();
    await queue.finish();
  });

  test('a reporter that fails stops the hand-over; finish() rejects with its error', async () => {
    const failure = new Error('ENOSPC');
    const errors: unknown[] = [];
    const seen: string[] = [];
    const queue = new ReportQueue(3, [
      {
        onTestResult(result) {
          seen.push(result.name);
          if (result.name === 'b') return Promise.reject(failure);
        },
      },
    ], { onError: (err) => errors.push(err) });
    queue.add(0, passed('a'));
    queue.add(1, passed('b'));
    await tick();
    queue.add(2, passed('c'));
    await assert.rejects(queue.finish(), failure);
    assert.deepEqual(seen, ['a', 'b']);
    assert.deepEqual(errors, [failure]);
  });
});
