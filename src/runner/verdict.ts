// Decides whether a test passed: compares what the guest did (a GuestResult)
// with what the test expected (return, panic, halt or a given fault), and
// says both when they differ.
import { vectorName } from '../machine/descriptors.js';
import type { GuestResult } from '../result.js';
import { formatFailedChecks } from '../devices/hypercall.js';
import { TEST_FILE } from '../testfile/file-name.js';
import type { Expectation, TestCase, TestResult } from './types.js';

/** Where a test said what it expects: a C test's record, or a test file's options. */
export type Declared = 'c' | 'test-file';

/** What the test expected, with the option it was declared by, in the test's own language. */
export function describeExpectation(expect: Expectation, declared: Declared = 'c'): string {
  const file = declared === 'test-file';
  switch (expect.kind) {
    case 'return':
      return 'return';
    case 'panic':
      return `panic (${file ? 'shouldPanic' : 'should_panic'})`;
    case 'halt':
      return `halt (${file ? 'shouldHalt' : 'should_halt'})`;
    case 'fault':
      return `raise ${vectorName(expect.vector)} (${file ? `shouldFault: '${vectorName(expect.vector)}'` : `should_fault = ${expect.vector}`})`;
  }
}

/** What judging needs of a run: a GuestResult without the register dumps. */
export type RunForJudging = Pick<GuestResult, 'outcome' | 'output' | 'message' | 'fault' | 'error' | 'durationMs' | 'failedChecks' | 'failedChecksDropped'>;

/** A short account of what the guest did. */
export function describeOutcome(result: RunForJudging): string {
  switch (result.outcome) {
    case 'returned':
      return 'it returned';
    case 'halted':
      return 'it halted';
    case 'assert-failed':
      return 'an assertion failed';
    case 'panicked':
      return 'it panicked';
    case 'fault':
      return result.fault ? `it raised ${result.fault.name}` : 'it raised an exception';
    case 'triple-fault':
      return 'it triple-faulted';
    case 'unexpected-io':
      return 'it made an unexpected I/O access';
    case 'timeout':
      return 'it timed out';
    case 'error':
      return result.error?.kind === 'emulation-failure' ? 'it hit an emulation failure' : 'KVM stopped it with an error';
    case 'skipped':
      return 'it skipped itself';
  }
}

function passes(expect: Expectation, result: RunForJudging): boolean {
  switch (expect.kind) {
    case 'return':
      return result.outcome === 'returned';
    case 'panic':
      return result.outcome === 'panicked' || result.outcome === 'assert-failed';
    case 'halt':
      return result.outcome === 'halted';
    case 'fault':
      return result.outcome === 'fault' && result.fault?.vector === expect.vector;
  }
}

/**
 * The test's result: passed, or failed with a reason that says what was
 * expected and what happened. Failed non-fatal checks (kexpect, report)
 * fail the test whatever else it did, skipping itself included, and come
 * first in the message, in order.
 */
export function judge(test: TestCase, result: RunForJudging): TestResult {
  const verdict = judgeOutcome(test, result);
  const checks = result.failedChecks ?? [];
  if (checks.length === 0 && !result.failedChecksDropped) return verdict;
  const listed = formatFailedChecks(checks, result.failedChecksDropped);
  const after = verdict.status === 'passed' ? '' : `\nand then ${verdict.status === 'skipped' ? `it skipped itself${verdict.message ? `: ${verdict.message}` : ''}` : verdict.message ?? describeOutcome(result)}`;
  return { ...verdict, status: 'failed', message: `${listed}${after}` };
}

function judgeOutcome(test: TestCase, result: RunForJudging): TestResult {
  const base = {
    name: test.name,
    binary: test.binary,
    file: test.file,
    line: test.line,
    outcome: result.outcome,
    durationMs: result.durationMs,
    output: result.output,
    ...(result.fault && { fault: result.fault }),
  };
  // A test that skipped itself (kskip) said it cannot run here: that holds
  // whatever it expected, so a .should_panic test is skipped, not failed.
  if (result.outcome === 'skipped') return { ...base, status: 'skipped', ...(result.message !== undefined && { message: result.message }) };
  if (passes(test.expect, result)) return { ...base, status: 'passed' };
  const what = `${describeOutcome(result)}${result.message ? `: ${result.message}` : ''}`;
  const message = test.expect.kind === 'return'
    ? result.message ?? what
    : `expected the test to ${describeExpectation(test.expect, TEST_FILE.test(test.binary) ? 'test-file' : 'c')}, but ${what}`;
  return { ...base, status: 'failed', message };
}

/** A test the host could not run to the end (its worker died, an internal error): failed, with why. */
export function hostFailure(test: TestCase, message: string): TestResult {
  return { ...identity(test), status: 'failed', outcome: 'error', durationMs: 0, output: '', message };
}

/** What every result carries of its test: which one it is, and where it is declared. */
export function identity(test: TestCase): Pick<TestResult, 'name' | 'binary' | 'file' | 'line'> {
  return { name: test.name, binary: test.binary, file: test.file, line: test.line };
}
