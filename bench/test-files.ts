// The cost of a test written in TypeScript against the same test in C,
// through the full CLI: a c`` body that reads port 0x60 once, served by a
// TypeScript callback, beside a KVMTEST() doing the same read of a port
// configured with .ioport. Both marginal costs come from a small and a
// large run, so start-up (Node, the workers, loading and building the test
// file) cancels out; the caches are warmed first, so no compiler runs
// during the rounds.
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median, timeKvmtest } from './measure.js';

export interface TestFileCosts {
  /** Microseconds per TypeScript test, per C test, and their ratio: medians over rounds. */
  typescript: number;
  c: number;
  ratio: number;
}

const PORT_TEST = 'kassert(inb(0x60) == 0xfa);';

/** A TypeScript test file of `count` port-reading tests (one snippet, shared: it is built once). */
function typescriptSuite(dir: string, count: number): string {
  const file = join(dir, `ports-${count}.kvmtest.ts`);
  writeFileSync(
    file,
    [
      "import { kvmtest, c } from 'kvmtest';",
      `const body = c\`${PORT_TEST}\`;`,
      `for (let i = 0; i < ${count}; i++) kvmtest(\`port_read_\${i}\`, { ports: { 0x60: { read: () => 0xfa } } }, body);`,
      '',
    ].join('\n'),
  );
  return file;
}

/** The same tests in C, as a test binary. */
function cSuite(root: string, dir: string, count: number): string {
  const source = join(dir, `ports-${count}.c`);
  const binary = join(dir, `ports-${count}.elf`);
  const lines = ['#include <kvmtest.h>'];
  for (let i = 0; i < count; i++) lines.push(`KVMTEST(port_read_${i}, .ioport = { 0x60, 0xfa }) { ${PORT_TEST} }`);
  writeFileSync(source, `${lines.join('\n')}\n`);
  timeKvmtest(root, ['cc', '-o', binary, source], dir);
  return binary;
}

export function measureTestFiles(root: string, out: string, small: number, large: number, rounds: number): TestFileCosts {
  const dir = join(out, 'test-files');
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  // The test files import 'kvmtest' as a user's would: this checkout is the package.
  const link = join(dir, 'node_modules', 'kvmtest');
  if (!existsSync(link)) symlinkSync(root, link);
  const report = ['--reporter', 'json'];
  const ts = { small: typescriptSuite(dir, small), large: typescriptSuite(dir, large) };
  const c = { small: cSuite(root, dir, small), large: cSuite(root, dir, large) };
  // Warm the build cache (and the page cache): the rounds measure running, not compiling.
  for (const file of [ts.small, ts.large, c.small, c.large]) timeKvmtest(root, ['run', ...report, file], dir);
  const perTest = { typescript: [] as number[], c: [] as number[], ratio: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const typescript = ((timeKvmtest(root, ['run', ...report, ts.large], dir) - timeKvmtest(root, ['run', ...report, ts.small], dir)) * 1e3) / (large - small);
    const cTest = ((timeKvmtest(root, ['run', ...report, c.large], dir) - timeKvmtest(root, ['run', ...report, c.small], dir)) * 1e3) / (large - small);
    perTest.typescript.push(typescript);
    perTest.c.push(cTest);
    perTest.ratio.push(typescript / cTest);
  }
  return { typescript: median(perTest.typescript), c: median(perTest.c), ratio: median(perTest.ratio) };
}
