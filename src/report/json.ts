// One JSON document for machines, written when the run ends.
// Shape: { tests: JsonTest[], summary: JsonSummary }. Every test has every
// key except "fault" (present only when an exception ended the test);
// absent values are null: "outcome" is null for ignored tests (they did not
// run), "message" is null when there is none. Hardware values are "0x..."
// strings, so there is no bigint and no precision loss. "output" is the
// guest's console text exactly as written (line ends untouched).
import type { FaultInfo, Outcome } from '../result.js';
import type { Reporter, RunSummary, TestResult, TestStatus } from '../runner/types.js';
import { writeAndFlush, type ReportOutput } from './output.js';
import { hex } from './text.js';

export interface JsonFault {
  vector: number;
  name: string;
  errorCode: number | null;
  rip: string;
  cr2: string | null;
  /** rip as "function+0x12 (0x...)" when the image has symbols. */
  location: string;
}

export interface JsonTest {
  name: string;
  binary: string;
  status: TestStatus;
  outcome: Outcome | null;
  durationMs: number;
  output: string;
  message: string | null;
  fault?: JsonFault;
}

export interface JsonSummary {
  passed: number;
  failed: number;
  ignored: number;
  durationMs: number;
}

export interface JsonReport {
  tests: JsonTest[];
  summary: JsonSummary;
}

function jsonFault(fault: FaultInfo): JsonFault {
  return {
    vector: fault.vector,
    name: fault.name,
    errorCode: fault.errorCode ?? null,
    rip: hex(fault.rip),
    cr2: fault.cr2 === undefined ? null : hex(fault.cr2),
    location: fault.location,
  };
}

function jsonTest(result: TestResult): JsonTest {
  const test: JsonTest = {
    name: result.name,
    binary: result.binary,
    status: result.status,
    outcome: result.outcome ?? null,
    durationMs: result.durationMs,
    output: result.output,
    message: result.message ?? null,
  };
  if (result.fault) test.fault = jsonFault(result.fault);
  return test;
}

export function jsonReport(results: readonly TestResult[], summary: RunSummary): JsonReport {
  return {
    tests: results.map(jsonTest),
    summary: {
      passed: summary.passed,
      failed: summary.failed,
      ignored: summary.ignored,
      durationMs: summary.durationMs,
    },
  };
}

export function jsonReporter(out: ReportOutput): Reporter {
  return {
    async onRunEnd(results, summary) {
      await writeAndFlush(out, `${JSON.stringify(jsonReport(results, summary), null, 2)}\n`);
    },
  };
}
