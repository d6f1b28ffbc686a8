// A worker keeps nothing per test: it loads a binary once and then reads
// each test's record afresh, so its live memory does not grow with the
// number of distinct tests it runs (it once grew by kilobytes a test, to
// hundreds of megabytes over a long run). Measured on the worker's own path
// (WorkerBinaries, then BinaryExecutor.run), in a child process started with
// --expose-gc so that live memory can be read after a full collection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileTests } from '../../src/image/toolchain.js';
import { readTestTable } from '../../src/image/test-table.js';
import { loadImage } from '../../src/image/image.js';
import { getRunTimer } from '../../src/session/host.js';
import { WorkerBinaries } from '../../src/runner/worker-binaries.js';
import { guestTest } from '../helpers/kvm.js';
import { tempDir } from '../helpers/toolchain.js';

const TESTS = 20_000;
const FIRST_MEASURE = 2_000;
const PROBE_ENV = 'KVMTEST_WORKER_MEMORY_PROBE';

/** In the child: runs every test of the binary as a worker would, printing live heap bytes after FIRST_MEASURE tests and at the end. */
async function probe(binary: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const execution = { isolation: 'snapshot' as const, defaultTimeoutMs: 10_000 };
  const records = readTestTable(loadImage({ elf: binary }).elf!, binary).map((t) => t.record);
  const binaries = new WorkerBinaries();
  const live = (): number => {
    gc();
    return process.memoryUsage().heapUsed;
  };
  let early = 0;
  for (const [i, record] of records.entries()) {
    const loaded = await binaries.load(binary, execution);
    const result = await loaded.run(loaded.test(record));
    if (result.status !== 'passed') throw new Error(`${result.name}: ${result.message}`);
    if (i + 1 === FIRST_MEASURE) early = live();
  }
  const late = live();
  getRunTimer().stop();
  binaries.closeAll();
  process.stdout.write(JSON.stringify({ early, late, tests: records.length }));
}

if (process.env[PROBE_ENV]) {
  await probe(process.env[PROBE_ENV]);
} else {
  test(`a worker's live memory stays flat over ${TESTS} distinct tests`, guestTest({ timeout: 180_000 }), () => {
    const source = join(tempDir(), 'many-distinct.c');
    const lines = ['#include <kvmtest.h>'];
    for (let i = 0; i < TESTS; i++) lines.push(`KVMTEST(t${String(i).padStart(5, '0')}) {}`);
    writeFileSync(source, `${lines.join('\n')}\n`);
    const binary = join(tempDir(), 'many-distinct.elf');
    const built = compileTests(['-O1', '-o', binary, source]);
    assert.equal(built.status, 0, built.stderr);

    const child = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], {
      env: { ...process.env, [PROBE_ENV]: binary },
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    assert.equal(child.status, 0, child.stderr);
    const { early, late, tests } = JSON.parse(child.stdout) as { early: number; late: number; tests: number };
    assert.equal(tests, TESTS);
    const perTest = (late - early) / (TESTS - FIRST_MEASURE);
    // Today's figure is well under a byte a test; keeping every test's record cost about 1.5 KB.
    assert.ok(perTest < 100, `live memory grew by ${Math.round(late - early)} bytes over ${TESTS - FIRST_MEASURE} tests (${perTest.toFixed(1)} bytes a test)`);
  });
}
