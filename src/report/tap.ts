// TAP version 13 (testanything.org/tap-version-13-specification), streamed:
// the plan first when the test list is known, one line per result, and a
// YAML block (indented "  ---" ... "  ...") under each failure.
import type { FaultInfo } from '../result.js';
import type { Reporter, TestResult } from '../runner/types.js';
import { write, writeAndFlush, type ReportOutput } from './output.js';
import { failureReason, firstLine, hex, normalizeNewlines, oneLine, qualifiedName, spansBinaries } from './text.js';

// ---- YAML scalars -----------------------------------------------------------
// Guest text can hold any character, so a text value is a double-quoted
// string with escapes, which every YAML reader, TAP::Parser's included,
// reads back exactly; words that cannot be mistaken for anything else
// (outcomes, exception names) go plain.

/** YAML's c-printable set: anything else must be escaped. */
function yamlPrintable(code: number): boolean {
  return (
    code === 0x09 ||
    code === 0x0a ||
    code === 0x0d ||
    (code >= 0x20 && code <= 0x7e) ||
    code === 0x85 ||
    (code >= 0xa0 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    code >= 0x10000
  );
}

const YAML_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function quoted(text: string): string {
  let result = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    const named = YAML_ESCAPES[ch];
    if (named !== undefined) result += named;
    // A BOM inside a value is printable, but some parsers drop it.
    else if (yamlPrintable(code) && code !== 0xfeff) result += ch;
    else if (code <= 0xff) result += `\\x${code.toString(16).padStart(2, '0')}`;
    else result += `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return `${result}"`;
}

const YAML_KEYWORDS = new Set(['true', 'false', 'yes', 'no', 'on', 'off', 'y', 'n', 'null']);

/** A word that YAML reads back as the same string (outcomes, names). */
function isPlainSafe(text: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_-]*$/.test(text) && !YAML_KEYWORDS.has(text.toLowerCase());
}

function scalar(text: string): string {
  return isPlainSafe(text) ? text : quoted(text);
}

/**
 * `key: "text"`. Multi-line text is one double-quoted line too, not a
 * literal block (`|`): the YAMLish that TAP::Parser (prove) reads takes
 * `|` only with no chomping or indentation indicator and stops at a blank
 * line inside it, so a block could not keep trailing newlines, leading
 * spaces or empty lines, and prove would reject the stream.
 */
function entry(key: string, text: string, indent: string): string[] {
  return [`${indent}${key}: ${quoted(text)}`];
}

function faultEntries(fault: FaultInfo, indent: string): string[] {
  const lines = [`${indent}fault:`];
  const inner = `${indent}  `;
  lines.push(`${inner}vector: ${fault.vector}`);
  lines.push(`${inner}name: ${scalar(fault.name)}`);
  if (fault.errorCode !== undefined) lines.push(`${inner}errorCode: ${fault.errorCode}`);
  lines.push(`${inner}rip: ${quoted(hex(fault.rip))}`);
  if (fault.cr2 !== undefined) lines.push(`${inner}cr2: ${quoted(hex(fault.cr2))}`);
  lines.push(`${inner}location: ${scalar(fault.location)}`);
  return lines;
}

function diagnostics(result: TestResult): string {
  const indent = '  ';
  const lines = [`${indent}---`];
  lines.push(...entry('message', normalizeNewlines(failureReason(result)), indent));
  if (result.outcome !== undefined) lines.push(`${indent}outcome: ${scalar(result.outcome)}`);
  if (result.fault) lines.push(...faultEntries(result.fault, indent));
  if (result.output !== '') lines.push(...entry('output', normalizeNewlines(result.output), indent));
  lines.push(`${indent}...`);
  return lines.map((line) => `${line}\n`).join('');
}

// ---- test lines -------------------------------------------------------------

/** A description on one line, with "#" escaped so it cannot start a directive. */
function description(name: string): string {
  return oneLine(name).replace(/\\/g, '\\\\').replace(/#/g, '\\#');
}

function testPoint(result: TestResult, number: number, qualify: boolean): string {
  const name = description(qualifiedName(result, qualify));
  if (result.status === 'passed') return `ok ${number} - ${name}\n`;
  // Not run (ignored) or skipped at run time (kskip): both are TAP's SKIP.
  if (result.status === 'ignored' || result.status === 'skipped') {
    const reason = result.message === undefined ? '' : oneLine(result.message);
    return `ok ${number} - ${name} # SKIP${reason === '' ? '' : ` ${reason}`}\n`;
  }
  return `not ok ${number} - ${name}\n${diagnostics(result)}`;
}

export function tapReporter(out: ReportOutput): Reporter {
  let started = false;
  let planned: number | undefined;
  let count = 0;
  let qualify = false;

  function header(): string {
    if (started) return '';
    started = true;
    return 'TAP version 13\n';
  }

  return {
    onRunStart({ tests, binaries }) {
      qualify = spansBinaries([...binaries, ...tests.map((t) => t.binary)]);
      planned = tests.length;
      return write(out, `${header()}1..${tests.length}\n`);
    },

    onTestResult(result) {
      count += 1;
      return write(out, header() + testPoint(result, count, qualify));
    },

    async onRunEnd(summary) {
      // Without a known test list up front, the plan goes last (the spec allows either).
      let text = header() + (planned === undefined ? `1..${count}\n` : '');
      // Fewer results than planned: the run stopped early, which TAP says with "Bail out!".
      const total = planned ?? count + summary.notRun;
      if (summary.incomplete !== undefined) {
        text += `Bail out! ${firstLine(summary.incomplete)}; ${total - count} of ${total} tests not run\n`;
      } else if (count < total) {
        text += `Bail out! ${total - count} of ${total} tests not run\n`;
      }
      text += `# pass ${summary.passed}\n# fail ${summary.failed}\n# skip ${summary.ignored + summary.skipped}\n`;
      text += `# duration_ms ${Number(summary.durationMs.toFixed(3))}\n`;
      await writeAndFlush(out, text);
    },
  };
}
