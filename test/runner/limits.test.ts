// The bound on --jobs (src/runner/limits.ts): the fewer of 4 workers per CPU
// and one per 256 MiB of memory, never below one, with a reason that gives
// both numbers. Pure arithmetic, no KVM.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jobLimit } from '../../src/runner/limits.js';

const GiB = 2 ** 30;

describe('jobLimit', () => {
  test('4 workers per CPU, when memory allows', () => {
    const limit = jobLimit(2, 24 * GiB);
    assert.equal(limit.max, 8);
    assert.equal(
      limit.reason,
      '4 worker processes per CPU (2 CPUs: 8) and 256 MiB of memory for each (24.0 GiB: 96), whichever is fewer',
    );
  });

  test('one worker per 256 MiB of memory, when that is fewer', () => {
    assert.equal(jobLimit(64, 4 * GiB).max, 16);
  });

  test('never fewer than one', () => {
    assert.equal(jobLimit(1, 100 * 2 ** 20).max, 1);
    assert.match(jobLimit(1, 100 * 2 ** 20).reason, /\(1 CPU: 4\)/);
  });
});
