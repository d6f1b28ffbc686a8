// The default reporter, in cargo test's format: one line per test as results
// arrive (or, with --quiet, one character), then the successes' output (with
// --show-output), the failures (output and reason) and a one-line summary.
// Each failure's (and success's) output goes to a spool file when it
// arrives, so a run with many noisy tests does not hold it all in memory.
import type { Reporter, RunSummary, TestResult } from '../runner/types.js';
import { colorEnabled, write, writeAndFlush, type ReportOutput } from './output.js';
import { Spool, type SpoolRange } from './spool.js';
import { failureReason, firstLine, normalizeNewlines, oneLine, qualifiedName, seconds, spansBinaries } from './text.js';

export interface PrettyOptions {
  /** Force color on or off; by default only for a TTY without NO_COLOR. */
  color?: boolean;
  /** Show passing tests' output too, in a successes section (cargo's --show-output). */
  showOutput?: boolean;
  /** A character per test (. F i) instead of a line, as cargo's --quiet. */
  quiet?: boolean;
}

/** cargo wraps the characters of --quiet at this width. */
const QUIET_WIDTH = 88;

type Paint = (text: string) => string;
interface Palette {
  green: Paint;
  red: Paint;
  yellow: Paint;
}

const plain: Paint = (text) => text;
const sgr =
  (code: number): Paint =>
  (text) =>
    `\x1b[${code}m${text}\x1b[0m`;

function palette(color: boolean): Palette {
  return color ? { green: sgr(32), red: sgr(31), yellow: sgr(33) } : { green: plain, red: plain, yellow: plain };
}

/** "1 test", "5 tests": cargo's wording. */
function countTests(n: number): string {
  return `${n} ${n === 1 ? 'test' : 'tests'}`;
}

/** Text ends with exactly one newline (none added to empty text). */
function asBlock(text: string): string {
  const trimmed = text.replace(/\n+$/, '');
  return trimmed === '' ? '' : `${trimmed}\n`;
}

/** The tests of a successes or failures section; `details` is their output (and reason) in the spool. */
type Section = Array<{ name: string; binary: string; details: SpoolRange | undefined }>;

export function prettyReporter(out: ReportOutput, options: PrettyOptions = {}): Reporter {
  const paint = palette(options.color ?? colorEnabled(out));
  let multipleBinaries = false;
  const testsPerBinary = new Map<string, number>();
  const announced = new Set<string>();
  let currentBinary: string | undefined;

  function statusText(result: TestResult): string {
    if (result.status === 'passed') return paint.green('ok');
    if (result.status === 'failed') return paint.red('FAILED');
    // Ignored and skipped alike, in cargo's wording for an ignored test: "ignored, REASON".
    const reason = result.message === undefined ? '' : oneLine(result.message);
    return reason === '' ? paint.yellow('ignored') : `${paint.yellow('ignored')}, ${reason}`;
  }

  // cargo prints one "Running" header per binary, each with its own count.
  function binaryHeader(binary: string): string {
    let text = currentBinary === undefined ? '' : '\n';
    text += `     Running ${binary}\n`;
    const count = testsPerBinary.get(binary);
    if (!announced.has(binary) && count !== undefined) text += `\nrunning ${countTests(count)}\n`;
    announced.add(binary);
    return text;
  }

  // cargo's line, "0 measured" included: kvmtest has no benchmarks either.
  function summaryLine(summary: RunSummary, anyFailed: boolean): string {
    const verdict = anyFailed ? paint.red('FAILED') : paint.green('ok');
    return (
      `test result: ${verdict}. ${summary.passed} passed; ${summary.failed} failed; ` +
      `${summary.ignored + summary.skipped} ignored; 0 measured; ${summary.filteredOut} filtered out; ` +
      `finished in ${seconds(summary.durationMs, 2)}s\n`
    );
  }

  function quietMark(result: TestResult): string {
    const mark = result.status === 'passed' ? '.' : result.status === 'failed' ? paint.red('F') : paint.yellow('i');
    quietColumn++;
    if (quietColumn < QUIET_WIDTH) return mark;
    quietColumn = 0;
    return `${mark}\n`;
  }
  let quietColumn = 0;

  // What the failures section needs: each failure's name, and its output and
  // reason in the spool.
  const spool = new Spool();
  const failures: Section = [];
  const successes: Section = [];
  const reportedBinaries = new Set<string>();

  /** "successes:" or "failures:", each test's output (and reason) under its name, then the names. */
  async function section(title: string, entries: Section, qualify: boolean): Promise<void> {
    if (entries.length === 0) return;
    await write(out, `\n${title}:\n\n`);
    for (const entry of entries) {
      if (!entry.details) continue;
      await write(out, `---- ${qualifiedName(entry, qualify)} stdout ----\n`);
      await spool.copyTo(out, entry.details);
    }
    let names = `${title}:\n`;
    for (const entry of entries) names += `    ${qualifiedName(entry, qualify)}\n`;
    await write(out, names);
  }

  return {
    onRunStart({ tests, binaries }) {
      multipleBinaries = spansBinaries([...binaries, ...tests.map((t) => t.binary)]);
      for (const test of tests) testsPerBinary.set(test.binary, (testsPerBinary.get(test.binary) ?? 0) + 1);
      if (!multipleBinaries) return write(out, `running ${countTests(tests.length)}\n`);
    },

    onTestResult(result) {
      let text = '';
      if (multipleBinaries && result.binary !== currentBinary) {
        if (options.quiet && quietColumn > 0) text += '\n';
        quietColumn = 0;
        text += binaryHeader(result.binary);
        currentBinary = result.binary;
      }
      text += options.quiet ? quietMark(result) : `test ${result.name} ... ${statusText(result)}\n`;
      reportedBinaries.add(result.binary);
      if (result.status === 'failed') {
        const details = asBlock(normalizeNewlines(result.output)) + asBlock(normalizeNewlines(failureReason(result))) + '\n';
        failures.push({ name: result.name, binary: result.binary, details: spool.append(details) });
      } else if (result.status === 'passed' && options.showOutput) {
        const output = asBlock(normalizeNewlines(result.output));
        successes.push({ name: result.name, binary: result.binary, details: output === '' ? undefined : spool.append(`${output}\n`) });
      }
      return write(out, text);
    },

    async onRunEnd(summary) {
      try {
        const qualify = multipleBinaries || reportedBinaries.size > 1;
        if (options.quiet && quietColumn > 0) await write(out, '\n');
        await section('successes', successes, qualify);
        await section('failures', failures, qualify);
        let text = '\n' + summaryLine(summary, summary.failed > 0 || failures.length > 0);
        if (summary.incomplete !== undefined) {
          const total = summary.passed + summary.failed + summary.ignored + summary.skipped + summary.notRun;
          text += `test run incomplete: ${firstLine(summary.incomplete)}; ${summary.notRun} of ${countTests(total)} did not run\n`;
        }
        await writeAndFlush(out, text);
      } finally {
        spool.close();
      }
    },
  };
}
