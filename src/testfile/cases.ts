// A test file's declarations as the runner's test cases: plain data that
// crosses to the runner (names, lines, expectations, whether each runs) and
// the plan for the file: which tests are ignored (skip, or another test is
// marked only) and which cannot run at all (a mistake in the declaration,
// a snippet that did not build).
import type { TestCase } from '../runner/types.js';
import type { FileBuild } from './build.js';
import type { LoadedTestFile } from './load.js';
import { displayPath } from './location.js';
import type { TestDeclaration } from './registry.js';

/** The runner's case for the test at `index` of `file` (`record` holds the index). */
export function testCaseFor(file: string, index: number, declaration: TestDeclaration | undefined): TestCase {
  const options = declaration?.options;
  const test: TestCase = {
    name: declaration?.name ?? `<test ${index}>`,
    binary: file,
    file: displayPath(declaration?.at.file ?? file),
    line: declaration?.at.line ?? 0,
    fn: 0n,
    record: BigInt(index),
    expect: options?.expect ?? { kind: 'return' },
    ioports: new Map(),
    ram: [],
    timeoutMs: options?.timeoutMs ?? 0,
    ignore: options?.skip !== undefined,
  };
  if (typeof options?.skip === 'string') test.ignoreReason = options.skip;
  return test;
}

/** Every test of a loaded file, with what its build and `only` decide. */
export function planTestFile(file: string, loaded: LoadedTestFile, build: FileBuild, ci: boolean): TestCase[] {
  const anyOnly = loaded.tests.some((d) => d.options?.only);
  return loaded.tests.map((declaration, index) => {
    const test = testCaseFor(file, index, declaration);
    const guest = declaration.guest;
    const buildError = guest && (guest.kind === 'c' || guest.kind === 'c-unit' || guest.kind === 'asm') ? build.errors.get(guest) : undefined;
    const setupError = declaration.error ?? buildError;
    if (setupError !== undefined) test.setupError = setupError;
    else if (declaration.options?.only && ci) {
      test.setupError = 'only is refused when CI is set: it would leave the rest of the file untested there without a word; remove it';
    } else if (anyOnly && !ci && !declaration.options?.only && !test.ignore) {
      test.ignore = true;
      test.ignoreReason = 'another test in this file is marked only';
    }
    if (build.elf) test.guestElf = build.elf;
    return test;
  });
}
