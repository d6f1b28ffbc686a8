// The work queue hands tests out lowest first, and tests put back after a
// worker died go out before any not yet handed out. Pure: no /dev/kvm.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../src/runner/work-queue.js';

describe('WorkQueue', () => {
  test('hands out every index once, in order', () => {
    const queue = new WorkQueue(4);
    const taken: number[] = [];
    while (queue.length > 0) taken.push(queue.take());
    assert.deepEqual(taken, [0, 1, 2, 3]);
  });

  test('put-back indices go first, lowest first, whatever order they come back in', () => {
    const queue = new WorkQueue(10);
    for (let i = 0; i < 6; i++) queue.take();
    queue.putBack([4, 1, 3]);
    assert.equal(queue.length, 7);
    assert.equal(queue.peek(), 1);
    const taken: number[] = [];
    while (queue.length > 0) taken.push(queue.take());
    assert.deepEqual(taken, [1, 3, 4, 6, 7, 8, 9]);
  });

  test('peek says what take returns', () => {
    const queue = new WorkQueue(3);
    queue.take();
    queue.putBack([0]);
    for (const expected of [0, 1, 2]) {
      assert.equal(queue.peek(), expected);
      assert.equal(queue.take(), expected);
    }
  });
});
