// The reporters' scratch file (src/report/spool.ts): text goes in, ranges of
// it come out unchanged (multi-byte characters across read chunks
// included), and no file is left in the temporary directory at any time.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Spool } from '../../src/report/spool.js';
import { memorySink } from './fixtures.js';

describe('Spool', () => {
  test('gives back each range as it was appended, in any order', async () => {
    const spool = new Spool();
    const a = spool.append('first\n');
    const b = spool.append('');
    const c = spool.append('third: é ✓ 𝄞\n');
    const sink = memorySink();
    for (const range of [c, a, b, a]) await spool.copyTo(sink, range);
    assert.equal(sink.text, 'third: é ✓ 𝄞\nfirst\nfirst\n');
    spool.close();
  });

  test('multi-byte characters that straddle the 1 MiB read chunks come out whole', async () => {
    const spool = new Spool();
    // 3-byte characters: some fall across every chunk boundary.
    const text = '✓'.repeat(700_000);
    const range = spool.append(text);
    assert.equal(range.end - range.start, 2_100_000);
    const sink = memorySink();
    await spool.copyTo(sink, range);
    assert.ok(sink.chunks.length > 1, 'read back in several chunks');
    assert.ok(sink.text === text, 'the same text');
    spool.close();
  });

  test('leaves no file behind, even while open', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvmtest-spool-test-'));
    const saved = process.env['TMPDIR'];
    process.env['TMPDIR'] = dir;
    try {
      const spool = new Spool();
      spool.append('x');
      assert.deepEqual(readdirSync(dir), []);
      spool.close();
    } finally {
      if (saved === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
