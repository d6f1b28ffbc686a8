// One JSON document for machines, written as results arrive: the opening
// and each test as it comes, the tests that got no result and the summary
// at the end, so its memory does not grow with the run (a document of
// gigabytes is never one string).
// Shape: { tests: JsonTest[], notRun: JsonNotRun[], summary: JsonSummary }.
// Every test has every key except "fault" (present only when an exception ended the test);
// absent values are null: "outcome" is null for ignored tests (they did not
// run), "message" is null when there is none (a skipped test's is its reason). Hardware values are "0x..."
// strings, so there is no bigint and no precision loss. "output" is the
// guest's console text exactly as written (line ends untouched). A run that
// stopped early (a signal, a worker problem) says so in the summary.
import type { FaultInfo, Outcome } from '../result.js';
import type { Reporter, RunSummary, TestCase, TestResult, TestStatus } from '../runner/types.js';
import { type ListRange, NotRunTracker, notRunReason } from './not-run.js';
import { write, writeAndFlush, type ReportOutput } from './output.js';
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
  /** Where the test is declared (its KVMTEST line). */
  file: string;
  line: number;
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
  /** Tests that skipped themselves at run time (kskip). */
  skipped: number;
  /** Tests of the binaries that filters, --skip or --shard left out. */
  filteredOut: number;
  durationMs: number;
  /** Present, and true, only when the run stopped before its end (not for --bail). */
  incomplete?: true;
  /** Why it stopped ("interrupted by SIGINT", a worker problem); only with `incomplete`. */
  incompleteReason?: string;
  /** Selected tests without a result; only with `incomplete`. */
  notRun?: number;
}

/** A selected test that got no result: never started (--bail), or cut off (an interrupted run). */
export interface JsonNotRun {
  name: string;
  binary: string;
  file: string;
  line: number;
  /** "--bail stopped the run", or why the run stopped ("interrupted by SIGINT"). */
  reason: string;
}

export interface JsonReport {
  tests: JsonTest[];
  notRun: JsonNotRun[];
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
    file: result.file,
    line: result.line,
    status: result.status,
    outcome: result.outcome ?? null,
    durationMs: result.durationMs,
    output: result.output,
    message: result.message ?? null,
  };
  if (result.fault) test.fault = jsonFault(result.fault);
  return test;
}

function jsonSummary(summary: RunSummary): JsonSummary {
  const json: JsonSummary = {
    passed: summary.passed,
    failed: summary.failed,
    ignored: summary.ignored,
    skipped: summary.skipped,
    filteredOut: summary.filteredOut,
    durationMs: summary.durationMs,
  };
  if (summary.incomplete !== undefined) {
    json.incomplete = true;
    json.incompleteReason = summary.incomplete;
    json.notRun = summary.notRun;
  }
  return json;
}

function jsonNotRun(test: TestCase, reason: string): JsonNotRun {
  return { name: test.name, binary: test.binary, file: test.file, line: test.line, reason };
}

/**
 * The whole document in memory, for programs that hold their results
 * anyway. `tests` is the announced list (onRunStart's), from which the
 * tests without a result are found; without it, `notRun` is empty.
 */
export function jsonReport(results: readonly TestResult[], summary: RunSummary, tests: readonly TestCase[] = []): JsonReport {
  const tracker = new NotRunTracker();
  tracker.start(tests);
  const gaps: ListRange[] = [];
  for (const result of results) {
    const gap = tracker.before(result);
    if (gap) gaps.push(gap);
  }
  const rest = tracker.rest();
  if (rest) gaps.push(rest);
  const reason = notRunReason(summary);
  const notRun = gaps.flatMap(({ from, to }) => tests.slice(from, to).map((t) => jsonNotRun(t, reason)));
  return { tests: results.map(jsonTest), notRun, summary: jsonSummary(summary) };
}

/** `value` as JSON.stringify(value, null, 2) would show it `depth` levels down. */
function indented(value: unknown, depth: number): string {
  // Raw line breaks in JSON text are only those between its lines.
  return JSON.stringify(value, null, 2).replace(/\n/g, `\n${'  '.repeat(depth)}`);
}

/**
 * Streams the text of JSON.stringify(jsonReport(...), null, 2) plus a final
 * newline: the same bytes as building the document at the end would give.
 */
export function jsonReporter(out: ReportOutput): Reporter {
  let started = false;
  let count = 0;
  // The tests without a result are written after the tests; until then only
  // where they are in the announced list is kept.
  const tracker = new NotRunTracker();
  const gaps: ListRange[] = [];
  // Written by whichever event comes first: a caller may skip onRunStart.
  const opening = () => {
    if (started) return '';
    started = true;
    return '{\n  "tests": [';
  };
  return {
    onRunStart({ tests }) {
      tracker.start(tests);
      return write(out, opening());
    },

    onTestResult(result) {
      const gap = tracker.before(result);
      if (gap) gaps.push(gap);
      const text = opening() + (count === 0 ? '\n    ' : ',\n    ') + indented(jsonTest(result), 2);
      count += 1;
      return write(out, text);
    },

    async onRunEnd(summary) {
      await write(out, `${opening()}${count === 0 ? ']' : '\n  ]'},\n  "notRun": [`);
      const rest = tracker.rest();
      if (rest) gaps.push(rest);
      const reason = notRunReason(summary);
      let written = 0;
      for (const { from, to } of gaps) {
        for (let i = from; i < to; i++, written++) {
          await write(out, (written === 0 ? '\n    ' : ',\n    ') + indented(jsonNotRun(tracker.test(i), reason), 2));
        }
      }
      const close = written === 0 ? ']' : '\n  ]';
      await writeAndFlush(out, `${close},\n  "summary": ${indented(jsonSummary(summary), 1)}\n}\n`);
    },
  };
}
