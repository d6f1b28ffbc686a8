// JUnit XML as Jenkins, GitLab and GitHub test-report actions read it: one
// <testsuite> per binary, one <testcase> per test, written when the run ends.
// Guest output can hold any byte; characters XML 1.0 forbids are shown as
// \xNN (or \uNNNN) so the file always parses and the bytes stay visible.
import type { Reporter, RunSummary, TestResult } from '../runner/types.js';
import { writeAndFlush, type ReportOutput } from './output.js';
import { failureReason, firstLine, groupByBinary, normalizeNewlines, seconds } from './text.js';

/** XML 1.0's Char production: anything else cannot appear, even as a reference. */
function xmlAllowed(code: number): boolean {
  return (
    code === 0x09 ||
    code === 0x0a ||
    code === 0x0d ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

function visible(code: number): string {
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };
// Attribute values are normalized by parsers (line breaks and tabs become
// spaces) unless written as references.
const ATTRIBUTE_ESCAPES: Record<string, string> = { ...TEXT_ESCAPES, '"': '&quot;', '\n': '&#10;', '\t': '&#9;' };

function escape(text: string, escapes: Record<string, string>): string {
  let result = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    const named = escapes[ch];
    if (named !== undefined) result += named;
    else if (xmlAllowed(code)) result += ch;
    else result += visible(code);
  }
  return result;
}

export function xmlText(text: string): string {
  return escape(text, TEXT_ESCAPES);
}

export function xmlAttribute(text: string): string {
  return escape(text, ATTRIBUTE_ESCAPES);
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

function counts(results: readonly TestResult[]): Counts {
  return {
    tests: results.length,
    failures: results.filter((r) => r.status === 'failed').length,
    // Every unmet expectation is a <failure>; <error> is not used.
    errors: 0,
    skipped: results.filter((r) => r.status === 'ignored').length,
  };
}

function failureText(result: TestResult): string {
  const reason = normalizeNewlines(failureReason(result)).replace(/\n+$/, '');
  const output = normalizeNewlines(result.output).replace(/\n+$/, '');
  return output === '' ? `${reason}\n` : `${reason}\n\noutput:\n${output}\n`;
}

function testcase(result: TestResult): string[] {
  const open = `    <testcase${attributes({ name: result.name, classname: result.binary, time: seconds(result.durationMs, 3) })}`;
  const children: string[] = [];
  if (result.status === 'failed') {
    const reason = failureReason(result);
    const type = result.outcome ?? 'failed';
    children.push(
      `      <failure${attributes({ message: firstLine(reason), type })}>${xmlText(failureText(result))}</failure>`,
    );
  } else if (result.status === 'ignored') {
    const reason = result.message === undefined ? '' : firstLine(result.message);
    children.push(`      <skipped${reason === '' ? '' : attributes({ message: reason })}/>`);
  }
  if (result.output !== '') {
    children.push(`      <system-out>${xmlText(normalizeNewlines(result.output))}</system-out>`);
  }
  if (children.length === 0) return [`${open}/>`];
  return [`${open}>`, ...children, '    </testcase>'];
}

function testsuite(binary: string, results: readonly TestResult[]): string[] {
  const time = results.reduce((sum, r) => sum + r.durationMs, 0);
  return [
    `  <testsuite${attributes({ name: binary, ...counts(results), time: seconds(time, 3) })}>`,
    ...results.flatMap(testcase),
    '  </testsuite>',
  ];
}

export function junitDocument(results: readonly TestResult[], summary: RunSummary): string {
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attributes({ name: 'kvmtest', ...counts(results), time: seconds(summary.durationMs, 3) })}>`,
  ];
  for (const [binary, group] of groupByBinary(results)) lines.push(...testsuite(binary, group));
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}

export function junitReporter(out: ReportOutput): Reporter {
  return {
    async onRunEnd(results, summary) {
      await writeAndFlush(out, junitDocument(results, summary));
    },
  };
}
