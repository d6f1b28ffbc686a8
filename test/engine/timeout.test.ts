// Timeouts: a guest that never ends is stopped at its deadline with its
// registers, whether it spins in the CPU or keeps exiting for port I/O, and
// the process then runs the next guest as usual.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DEFAULT_TEST_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, runGuest } from '../../src/index.js';
import { describeRun, kvmtest, ROOT } from '../cli/helpers.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { flatAll, tempDir } from '../helpers/toolchain.js';

const LOAD = 0x100000n;
const TIMEOUT_MS = 200;

const SOURCES = {
  spin: `
    jmp .
  `,
  /** Reads a configured port forever: every iteration exits to the host. */
  ioLoop: `
    mov $0x80, %dx
  1:
    in %dx, %al
    jmp 1b
  `,
  answer: `
    mov $42, %eax
    ret
  `,
} as const;

let bin: Record<keyof typeof SOURCES, Uint8Array>;

before(() => {
  if (guestSkipReason()) return;
  bin = flatAll(SOURCES);
});

const image = (bytes: Uint8Array) => ({ flat: bytes, loadAddress: LOAD });

describe('timeouts', () => {
  test('jmp . stops at the deadline with rip at the jmp', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.spin), timeoutMs: TIMEOUT_MS });
    assert.equal(r.outcome, 'timeout', r.message);
    assert.equal(r.regs.rip, LOAD);
    assert.match(r.message ?? '', new RegExp(`${TIMEOUT_MS} ms`));
    assert.match(r.message ?? '', new RegExp(`0x${LOAD.toString(16)}\\b`), 'the message gives the rip');
    assert.ok(r.durationMs >= TIMEOUT_MS, `not stopped before the deadline (${r.durationMs} ms)`);
  });

  test('the process runs the next guest normally after a timeout', guestTest(), async () => {
    const spun = await runGuest({ image: image(bin.spin), timeoutMs: TIMEOUT_MS });
    assert.equal(spun.outcome, 'timeout');
    for (let i = 0; i < 3; i++) {
      const r = await runGuest({ image: image(bin.answer), timeoutMs: TIMEOUT_MS });
      assert.equal(r.outcome, 'returned', r.message);
      assert.equal(r.regs.rax, 42n);
    }
  });

  test('a guest looping on port I/O times out too', guestTest(), async () => {
    const r = await runGuest({ image: image(bin.ioLoop), ioports: { 0x80: 0x5a }, timeoutMs: TIMEOUT_MS });
    assert.equal(r.outcome, 'timeout', r.message);
    // mov (4 bytes), then the loop: in (1 byte) and jmp (2 bytes).
    assert.ok(r.regs.rip >= LOAD + 4n && r.regs.rip < LOAD + 7n, `rip 0x${r.regs.rip.toString(16)} inside the loop`);
    assert.equal(r.regs.rax & 0xffn, 0x5an, 'the loop read the configured value');
    const next = await runGuest({ image: image(bin.answer) });
    assert.equal(next.outcome, 'returned', next.message);
  });

  test('timeoutMs must be a positive number', async () => {
    for (const timeoutMs of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await assert.rejects(runGuest({ image: { flat: Uint8Array.of(0xc3), loadAddress: LOAD }, timeoutMs }), {
        name: 'OptionError',
        message: /timeoutMs must be a positive number of milliseconds/,
      });
    }
  });
});

describe('default time limits', () => {
  test('runGuest without timeoutMs stops a hung guest after DEFAULT_TIMEOUT_MS (1 s), with its rip', guestTest(), async () => {
    assert.equal(DEFAULT_TIMEOUT_MS, 1000);
    const r = await runGuest({ image: image(bin.spin) });
    assert.equal(r.outcome, 'timeout', r.message);
    assert.equal(r.message, `timed out after ${DEFAULT_TIMEOUT_MS} ms; the guest was at 0x${LOAD.toString(16)}`);
    assert.ok(r.durationMs >= DEFAULT_TIMEOUT_MS, `not stopped before the deadline (${r.durationMs} ms)`);
  });

  test("kvmtest run keeps its own default, 10 s, which its usage states", async () => {
    assert.equal(DEFAULT_TEST_TIMEOUT_MS, 10_000);
    const help = await kvmtest(['run', '--help']);
    assert.equal(help.status, 0, describeRun(help));
    assert.match(help.stdout, new RegExp(`--timeout MS .*\\(default ${DEFAULT_TEST_TIMEOUT_MS}\\)`));
  });
});

describe('threads', () => {
  test("in a worker thread, runGuest rejects before opening /dev/kvm, saying to use the main thread (Vitest: pool: 'forks')", async () => {
    const script = join(tempDir(), 'in-a-worker.mjs');
    writeFileSync(
      script,
      [
        "import { parentPort } from 'node:worker_threads';",
        `import { runGuest } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'index.js'))};`,
        'try {',
        '  const r = await runGuest({ image: { flat: Uint8Array.of(0xc3), loadAddress: 0x200000 } });',
        "  parentPort.postMessage({ outcome: r.outcome });",
        '} catch (err) {',
        '  parentPort.postMessage({ error: err.message });',
        '}',
        '',
      ].join('\n'),
    );
    const message = await new Promise<{ outcome?: string; error?: string }>((resolve, reject) => {
      const worker = new Worker(script);
      worker.once('message', (m: { outcome?: string; error?: string }) => {
        resolve(m);
        void worker.terminate();
      });
      worker.once('error', reject);
    });
    assert.equal(message.outcome, undefined);
    assert.match(message.error ?? '', /^kvmtest runs guests on a process's main thread only \(its timeouts are a signal aimed at that thread\), not in a worker thread\./);
    assert.match(message.error ?? '', /Under Vitest, set pool: 'forks' in vitest\.config/);
  });
});
