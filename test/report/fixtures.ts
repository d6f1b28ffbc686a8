// Hand-made results and a memory sink for the reporter tests: plain data
// only, so these tests need no KVM.
import type { Reporter, RunSummary, TestCase, TestResult } from '../../src/runner/types.js';

export interface MemorySink {
  chunks: string[];
  write(s: string): void;
  readonly text: string;
}

export function memorySink(): MemorySink {
  const chunks: string[] = [];
  return {
    chunks,
    write(s: string) {
      chunks.push(s);
    },
    get text() {
      return chunks.join('');
    },
  };
}

/** The TestCase a runner would have discovered for a result. */
export function caseFor(result: TestResult): TestCase {
  return {
    name: result.name,
    binary: result.binary,
    file: result.file,
    line: result.line,
    fn: 0x1000n,
    record: 0x2000n,
    expect: { kind: 'return' },
    ioports: new Map(),
    ram: [],
    timeoutMs: 0,
    ignore: result.status === 'ignored',
  };
}

export function summarize(results: readonly TestResult[], durationMs: number): RunSummary {
  return {
    passed: results.filter((r) => r.status === 'passed').length,
    failed: results.filter((r) => r.status === 'failed').length,
    ignored: results.filter((r) => r.status === 'ignored').length,
    skipped: results.filter((r) => r.status === 'skipped').length,
    filteredOut: 0,
    durationMs,
    notRun: 0,
  };
}

/**
 * Drives a reporter the way the runner does: start, each result, end,
 * waiting whenever the reporter asks to. `summary` overrides parts of the
 * summary computed from the results (an incomplete run, say).
 */
export async function drive(
  reporter: Reporter,
  results: readonly TestResult[],
  options: { durationMs?: number; binaries?: string[]; start?: boolean; summary?: Partial<RunSummary> } = {},
): Promise<void> {
  const binaries = options.binaries ?? [...new Set(results.map((r) => r.binary))];
  if (options.start !== false) await reporter.onRunStart?.({ tests: results.map(caseFor), binaries });
  for (const result of results) await reporter.onTestResult?.(result);
  await reporter.onRunEnd?.({ ...summarize(results, options.durationMs ?? 20), ...options.summary });
}

export const BIN = 'build/tests.elf';
export const OTHER_BIN = 'build/more.elf';

export function passed(name: string, binary = BIN, output = ''): TestResult {
  return { name, binary, file: 'tests.c', line: 3, status: 'passed', outcome: 'returned', durationMs: 3, output };
}

export function ignored(name: string, reason?: string, binary = BIN): TestResult {
  const result: TestResult = { name, binary, file: 'tests.c', line: 7, status: 'ignored', durationMs: 0, output: '' };
  if (reason !== undefined) result.message = reason;
  return result;
}

/** A test that ran and skipped itself (kskip) with `reason`. */
export function skipped(name: string, reason: string, binary = BIN): TestResult {
  return { name, binary, file: 'tests.c', line: 9, status: 'skipped', outcome: 'skipped', durationMs: 1.5, output: 'probing\n', message: reason };
}

/** A failure with a multi-line message and output that lacks a final newline. */
export function assertFailed(name: string, binary = BIN): TestResult {
  return {
    name,
    binary,
    file: 'tests.c',
    line: 11,
    status: 'failed',
    outcome: 'assert-failed',
    durationMs: 4.5,
    output: 'booting\r\nstep 1 done',
    message: 'assertion failed at tests.c:12: x == 2\n  left: x = 1\n  right: 2',
  };
}

/** A failure from an unhandled #PF above 2^53 (the address must survive). */
export function pageFault(name: string, binary = BIN): TestResult {
  return {
    name,
    binary,
    file: 'src/poke.c',
    line: 20,
    status: 'failed',
    outcome: 'fault',
    durationMs: 2,
    output: '',
    message:
      '#PF (page fault) at poke+0x3 (0xffffffff80001234): write to a not-present page (error code 0x2) at 0xdead0000',
    fault: {
      vector: 14,
      name: '#PF',
      errorCode: 2,
      rip: 0xffffffff80001234n,
      cr2: 0xdead0000n,
      location: 'poke+0x3 (0xffffffff80001234)',
    },
  };
}

/** Output no markup format can carry raw: markup, quotes, NUL, BEL, ESC, U+FFFE. */
export const HOSTILE_OUTPUT = 'a <b> & "c" \'d\' ]]> \x00\x07\x1b[31mred\x1b[0m \ufffe\tend\n';

export function hostile(name: string, binary = BIN): TestResult {
  return {
    name,
    binary,
    file: 'dir/h<"&">.c',
    line: 30,
    status: 'failed',
    outcome: 'panicked',
    durationMs: 1,
    output: HOSTILE_OUTPUT,
    message: 'kpanic("<&> \\"quoted\\" #3")\nsecond line\x01',
  };
}
