// The progress line: shown on a terminal only after the first second, at
// most ten times a second, and cleared before other output. Pure unit tests
// with a fake clock and stream (runs in the project's tests are never on a
// terminal, so nothing else exercises it).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inCi, ProgressLine } from '../../src/runner/progress.js';

function fakeTerminal() {
  const writes: string[] = [];
  return { writes, stream: { isTTY: true, write: (s: string | Uint8Array) => (writes.push(String(s)), true) } };
}

describe('ProgressLine', () => {
  test('stays silent for the first second, then draws the counts', () => {
    let clock = 0;
    const { writes, stream } = fakeTerminal();
    const line = new ProgressLine(stream, true, () => clock);
    clock = 500;
    line.update({ done: 10, total: 100, failed: 0 });
    assert.deepEqual(writes, []);
    clock = 1500;
    line.update({ done: 60, total: 100, failed: 2 });
    assert.equal(writes.length, 1);
    assert.match(writes[0]!, /^\r\x1b\[K\[60\/100\] tests done, 2 failed, 1\.5 s$/);
  });

  test('redraws at most every 100 ms, and clear() erases the line once', () => {
    let clock = 0;
    const { writes, stream } = fakeTerminal();
    const line = new ProgressLine(stream, true, () => clock);
    clock = 2000;
    line.update({ done: 1, total: 3, failed: 0 });
    clock = 2050;
    line.update({ done: 2, total: 3, failed: 0 });
    assert.equal(writes.length, 1, 'a second draw within 100 ms');
    clock = 2150;
    line.update({ done: 3, total: 3, failed: 0 });
    assert.equal(writes.length, 2);
    line.clear();
    line.clear();
    assert.deepEqual(writes.slice(2), ['\r\x1b[K']);
  });

  test('never draws when disabled (not a terminal, or CI set)', () => {
    let clock = 0;
    const { writes, stream } = fakeTerminal();
    const line = new ProgressLine(stream, false, () => clock);
    clock = 5000;
    line.update({ done: 1, total: 2, failed: 1 });
    line.clear();
    assert.deepEqual(writes, []);
  });

  test('is off by default when CI is set, even on a terminal', () => {
    const saved = process.env.CI;
    process.env.CI = 'true';
    try {
      let clock = 0;
      const { writes, stream } = fakeTerminal();
      const line = new ProgressLine(stream, undefined, () => clock);
      clock = 5000;
      line.update({ done: 1, total: 2, failed: 0 });
      assert.deepEqual(writes, []);
    } finally {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    }
  });
});

describe('inCi', () => {
  test('CI set to anything but empty, 0 or false means a CI run', () => {
    assert.equal(inCi({}), false);
    assert.equal(inCi({ CI: '' }), false);
    assert.equal(inCi({ CI: 'false' }), false);
    assert.equal(inCi({ CI: 'FALSE' }), false);
    assert.equal(inCi({ CI: '0' }), false);
    assert.equal(inCi({ CI: 'true' }), true);
    assert.equal(inCi({ CI: '1' }), true);
    assert.equal(inCi({ CI: 'woodpecker' }), true);
  });
});
