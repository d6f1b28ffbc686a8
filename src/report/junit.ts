// JUnit XML as Jenkins, GitLab and GitHub test-report actions read it: one
// <testsuite> per binary, one <testcase> per test, within what the schema
// Jenkins validates JUnit reports with allows (test/report/fixtures/
// jenkins-junit.xsd says which). Test cases are spooled to a scratch file
// as results arrive, so memory does not grow with the run.
// Guest output can hold any byte; characters XML 1.0 forbids are shown as
// \xNN (or \uNNNN) so the file always parses and the bytes stay visible.
import type { Reporter, RunSummary, TestCase, TestResult } from '../runner/types.js';
import { type ListRange, NotRunTracker, notRunReason } from './not-run.js';
import { write, writeAndFlush, type ReportOutput } from './output.js';
import { Spool, type SpoolRange } from './spool.js';
import { failureReason, firstLine, normalizeNewlines, seconds } from './text.js';

// What XML 1.0's Char production leaves out (anything else cannot appear,
// even as a reference): C0 controls but tab and line breaks, lone
// surrogates, U+FFFE and U+FFFF. Matched a run at a time, so that a guest
// that prints a megabyte of NUL bytes costs one match, not a million.
const FORBIDDEN = '[^\\t\\n\\r\\x20-\\ud7ff\\ue000-\\ufffd\\u{10000}-\\u{10ffff}]+';

const shown = new Map<number, string>();
function visible(code: number): string {
  let text = shown.get(code);
  if (text === undefined) {
    text = code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    shown.set(code, text);
  }
  return text;
}

function visibleRun(run: string): string {
  const parts: string[] = [];
  for (const ch of run) parts.push(visible(ch.codePointAt(0)!));
  return parts.join('');
}

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };
// Attribute values are normalized by parsers (line breaks and tabs become
// spaces) unless written as references.
const ATTRIBUTE_ESCAPES: Record<string, string> = { ...TEXT_ESCAPES, '"': '&quot;', '\n': '&#10;', '\t': '&#9;' };

/** A pattern for the characters to replace: those with a name in `escapes`, and runs of forbidden ones. */
function specialCharacters(escapes: Record<string, string>): RegExp {
  const named = Object.keys(escapes).map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return new RegExp(named.length > 0 ? `[${named.join('')}]|${FORBIDDEN}` : FORBIDDEN, 'gu');
}

const TEXT_SPECIAL = specialCharacters(TEXT_ESCAPES);
const ATTRIBUTE_SPECIAL = specialCharacters(ATTRIBUTE_ESCAPES);
const FORBIDDEN_ONLY = specialCharacters({});

function escape(text: string, special: RegExp, escapes: Record<string, string>): string {
  return text.replace(special, (match) => escapes[match] ?? visibleRun(match));
}

export function xmlText(text: string): string {
  return escape(text, TEXT_SPECIAL, TEXT_ESCAPES);
}

export function xmlAttribute(text: string): string {
  return escape(text, ATTRIBUTE_SPECIAL, ATTRIBUTE_ESCAPES);
}

function attributes(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([key, value]) => ` ${key}="${xmlAttribute(String(value))}"`)
    .join('');
}

interface Counts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
}

function emptyCounts(): Counts {
  // Every unmet expectation is a <failure>; <error> is not used.
  return { tests: 0, failures: 0, errors: 0, skipped: 0 };
}

/**
 * A test case's classname: the binary, with every "." made "_". Jenkins
 * reads a classname as package.Class, split at the last dot, so "tests.elf"
 * would become class "elf" of package "tests", and every binary's tests
 * would land in a class named "elf".
 */
export function junitClassname(binary: string): string {
  return binary.replace(/\./g, '_');
}

function count(counts: Counts, result: TestResult): void {
  counts.tests += 1;
  if (result.status === 'failed') counts.failures += 1;
  if (result.status === 'ignored' || result.status === 'skipped') counts.skipped += 1;
}

function failureText(result: TestResult): string {
  const reason = normalizeNewlines(failureReason(result)).replace(/\n+$/, '');
  const output = normalizeNewlines(result.output).replace(/\n+$/, '');
  return output === '' ? `${reason}\n` : `${reason}\n\noutput:\n${output}\n`;
}

export interface JunitOptions {
  /**
   * Give each <testcase> `file` and `line` attributes, where its KVMTEST is
   * (GitLab and GitHub test-report actions show them). Off by default: the
   * schema Jenkins validates with allows no such attribute, and its xUnit
   * plugin refuses a report that has one.
   */
  fileAttributes?: boolean;
}

/** A <testcase> start tag without its ">" or "/>". */
function testcaseStart(test: Pick<TestResult, 'name' | 'binary' | 'file' | 'line'>, timeMs: number, options: JunitOptions): string {
  const where: Record<string, string | number> = {};
  if (options.fileAttributes && test.file !== '') {
    where.file = test.file;
    if (test.line > 0) where.line = test.line;
  }
  return `    <testcase${attributes({ name: test.name, classname: junitClassname(test.binary), ...where, time: seconds(timeMs, 3) })}`;
}

/** One <testcase> element, as lines ending in "\n". */
function testcase(result: TestResult, options: JunitOptions): string {
  const open = testcaseStart(result, result.durationMs, options);
  const children: string[] = [];
  if (result.status === 'failed') {
    const reason = failureReason(result);
    const type = result.outcome ?? 'failed';
    children.push(
      `      <failure${attributes({ message: firstLine(reason), type })}>${xmlText(failureText(result))}</failure>\n`,
    );
  } else if (result.status === 'ignored' || result.status === 'skipped') {
    const reason = result.message === undefined ? '' : firstLine(result.message);
    children.push(`      <skipped${reason === '' ? '' : attributes({ message: reason })}/>\n`);
  }
  if (result.output !== '') {
    children.push(`      <system-out>${xmlText(normalizeNewlines(result.output))}</system-out>\n`);
  }
  if (children.length === 0) return `${open}/>\n`;
  return `${open}>\n${children.join('')}    </testcase>\n`;
}

/**
 * What a run that stopped early says about itself: "interrupted by SIGINT;
 * 3 of 10 tests did not run". `reported`: the results written.
 */
function incompleteNote(summary: RunSummary, reported: number): string | undefined {
  if (summary.incomplete === undefined) return undefined;
  return `${firstLine(summary.incomplete)}; ${summary.notRun} of ${reported + summary.notRun} tests did not run`;
}

/** A comment's text: no "--" inside, no "-" at the end, nothing XML forbids. */
function xmlComment(text: string): string {
  return `<!-- ${escape(text, FORBIDDEN_ONLY, {}).replace(/-(?=-|$)/g, '- ')} -->`;
}

function documentStart(total: Counts, summary: RunSummary, note: string | undefined): string {
  // Jenkins' schema allows no "skipped" here (each <testsuite> has its own).
  const { tests, failures, errors } = total;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    (note === undefined ? '' : `${xmlComment(`kvmtest: incomplete run: ${note}`)}\n`) +
    `<testsuites${attributes({ name: 'kvmtest', tests, failures, errors, time: seconds(summary.durationMs, 3) })}>\n`
  );
}

/** Per binary: the counts and total time of its tests (the <testsuite> start tag's attributes). */
interface Suite {
  counts: Counts;
  timeMs: number;
}

function suiteStart(binary: string, suite: Suite, note: string | undefined): string {
  const start = `  <testsuite${attributes({ name: binary, ...suite.counts, time: seconds(suite.timeMs, 3) })}>\n`;
  // A property is what JUnit readers keep of a suite besides its test cases.
  if (note === undefined) return start;
  return `${start}    <properties>\n      <property${attributes({ name: 'kvmtest.incomplete', value: note })}/>\n    </properties>\n`;
}

const SUITE_END = '  </testsuite>\n';
const DOCUMENT_END = '</testsuites>\n';

/** Positions [from, to) in the announced list, or bytes [start, end) of the store. */
type Part = ListRange | SpoolRange;

interface PlannedSuite extends Suite {
  /** Its test cases in report order: results' elements where the store keeps them, and runs of tests without a result. */
  parts: Part[];
}

/**
 * The document's layout, built as results arrive: the suites in order of
 * first appearance, their counts, and where each test case is. A result's
 * <testcase> goes to the store at once; the tests without a result are
 * kept as positions in the announced list, and written at the end, when
 * the reason is known.
 */
class JunitPlan {
  /** Counts of every <testcase> written, results and tests without one. */
  readonly total = emptyCounts();
  /** The results among them. */
  reported = 0;
  readonly suites = new Map<string, PlannedSuite>();
  private readonly tracker = new NotRunTracker();

  constructor(
    private readonly store: (text: string) => SpoolRange,
    readonly options: JunitOptions,
  ) {}

  start(tests: readonly TestCase[]): void {
    this.tracker.start(tests);
  }

  add(result: TestResult): void {
    const gap = this.tracker.before(result);
    if (gap) this.addNotRun(gap);
    const suite = this.suite(result.binary);
    count(this.total, result);
    count(suite.counts, result);
    suite.timeMs += result.durationMs;
    this.reported += 1;
    const range = this.store(testcase(result, this.options));
    const last = suite.parts[suite.parts.length - 1];
    if (last && 'end' in last && last.end === range.start) last.end = range.end;
    else suite.parts.push(range);
  }

  /** After the last result: the tests after it got none. */
  finish(): void {
    const rest = this.tracker.rest();
    if (rest) this.addNotRun(rest);
  }

  test(position: number): TestCase {
    return this.tracker.test(position);
  }

  private addNotRun({ from, to }: ListRange): void {
    for (let i = from; i < to; i++) {
      const suite = this.suite(this.tracker.test(i).binary);
      for (const counts of [this.total, suite.counts]) {
        counts.tests += 1;
        counts.skipped += 1;
      }
      const last = suite.parts[suite.parts.length - 1];
      if (last && 'to' in last && last.to === i) last.to = i + 1;
      else suite.parts.push({ from: i, to: i + 1 });
    }
  }

  private suite(binary: string): PlannedSuite {
    let suite = this.suites.get(binary);
    if (!suite) this.suites.set(binary, (suite = { counts: emptyCounts(), timeMs: 0, parts: [] }));
    return suite;
  }
}

/** A test without a result: skipped, saying why ("not run: --bail stopped the run"). */
function notRunCase(test: TestCase, reason: string, options: JunitOptions): string {
  const open = testcaseStart(test, 0, options);
  return `${open}>\n      <skipped${attributes({ message: `not run: ${reason}` })}/>\n    </testcase>\n`;
}

/** The document but its end tag, in order: text, or a range of the store to copy. */
function* documentPieces(plan: JunitPlan, summary: RunSummary): Generator<string | SpoolRange> {
  const note = incompleteNote(summary, plan.reported);
  const reason = notRunReason(summary);
  yield documentStart(plan.total, summary, note);
  for (const [binary, suite] of plan.suites) {
    yield suiteStart(binary, suite, note);
    for (const part of suite.parts) {
      if ('end' in part) yield part;
      else for (let i = part.from; i < part.to; i++) yield notRunCase(plan.test(i), reason, plan.options);
    }
    yield SUITE_END;
  }
}

/**
 * The whole document in memory, for programs that hold their results
 * anyway. `tests` is the announced list (onRunStart's), from which the tests
 * without a result are found; without it, none are listed.
 */
export function junitDocument(
  results: readonly TestResult[],
  summary: RunSummary,
  tests: readonly TestCase[] = [],
  options: JunitOptions = {},
): string {
  const cases: string[] = [];
  const plan = new JunitPlan((text) => ({ start: cases.push(text) - 1, end: cases.length }), options);
  plan.start(tests);
  for (const result of results) plan.add(result);
  plan.finish();
  let text = '';
  for (const piece of documentPieces(plan, summary)) {
    text += typeof piece === 'string' ? piece : cases.slice(piece.start, piece.end).join('');
  }
  return text + DOCUMENT_END;
}

/**
 * Streams the same document as junitDocument: each <testcase> goes to a
 * spool file as its result arrives, and at the end the file is assembled
 * from the spool under start tags whose counts are known by then.
 */
export function junitReporter(out: ReportOutput, options: JunitOptions = {}): Reporter {
  const spool = new Spool();
  const plan = new JunitPlan((text) => spool.append(text), options);
  return {
    onRunStart({ tests }) {
      plan.start(tests);
    },

    onTestResult(result) {
      plan.add(result);
    },

    async onRunEnd(summary) {
      try {
        plan.finish();
        for (const piece of documentPieces(plan, summary)) {
          await (typeof piece === 'string' ? write(out, piece) : spool.copyTo(out, piece));
        }
        await writeAndFlush(out, DOCUMENT_END);
      } finally {
        spool.close();
      }
    },
  };
}
