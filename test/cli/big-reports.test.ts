// Reports far larger than the runner may hold: 100 tests that each print
// 1 MiB (fixtures/big-output.c), reported as JSON, JUnit and pretty into
// files. The runner runs with a small fixed heap, so a runner or reporter
// that kept every test's output, or built a report as one string, would die
// of heap exhaustion; its peak resident set size is bounded as well.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { JsonReport } from '../../src/report/json.js';
import { guestTest } from '../helpers/kvm.js';
import { PEAK_RSS_FILE_ENV } from '../helpers/peak-rss.js';
import { parseXml } from '../report/xml.js';
import { BIN, buildFixture, CAN_BUILD, type CommandResult, describeRun, runCommand, tempDir } from './helpers.js';

/** The runner's V8 heap: about a third of the 144 MB JSON report it writes (it needs about 64). */
const HEAP_MIB = 128;
/** Generous: the runner peaks near 230 MiB here (worker messages, buffers and garbage between collections). */
const PEAK_RSS_MIB = 400;
const PASSING = 100;
const FAILING = 20;
/** What each test prints (fixtures/big-output.c). */
const OUTPUT = '0123456789abcd\0\n'.repeat(65536);

const PEAK_RSS_PROBE = fileURLToPath(new URL('../helpers/peak-rss.js', import.meta.url));
const numbered = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`);

let elf = '';
before(async () => {
  if (CAN_BUILD) elf = await buildFixture('big-output.elf', ['big-output.c']);
});

/** `kvmtest run ARGS` with a small heap; resolves to the result and the peak RSS in MiB. */
async function boundedRun(name: string, args: readonly string[]): Promise<{ result: CommandResult; peakMib: number }> {
  const peakFile = join(tempDir(), `${name}.peak`);
  const result = await runCommand(process.execPath, [`--max-old-space-size=${HEAP_MIB}`, '--import', PEAK_RSS_PROBE, BIN, 'run', '--jobs', '2', ...args], {
    env: { ...process.env, [PEAK_RSS_FILE_ENV]: peakFile },
  });
  let peak = NaN;
  try {
    peak = Number(readFileSync(peakFile, 'utf8')) / 1024;
  } catch {
    // No exit handler ran: the process died (heap exhaustion aborts it).
  }
  return { result, peakMib: peak };
}

function assertPeak(peakMib: number, result: CommandResult): void {
  assert.ok(peakMib < PEAK_RSS_MIB, `the runner's peak RSS was ${peakMib.toFixed(0)} MiB (bound ${PEAK_RSS_MIB}); ${describeRun(result)}`);
}

describe('reports of 100 MiB of output, in bounded memory', () => {
  test('--reporter json: exit status 0, one document with every test and its whole output', guestTest({ timeout: 120_000 }), async () => {
    const file = join(tempDir(), 'big.json');
    const { result, peakMib } = await boundedRun('json', ['--reporter', 'json', '--output', file, '--filter', 'pass_', elf]);
    assert.equal(result.status, 0, describeRun(result));
    const report = JSON.parse(readFileSync(file, 'utf8')) as JsonReport;
    assert.deepEqual(report.tests.map((t) => t.name), numbered('pass_', PASSING));
    for (const t of report.tests) assert.ok(t.status === 'passed' && t.output === OUTPUT, `${t.name}: ${t.status}, ${t.output.length} characters of output`);
    assert.deepEqual([report.summary.passed, report.summary.failed], [PASSING, 0]);
    assertPeak(peakMib, result);
  });

  test('--reporter junit: exit status 0, well-formed XML with every test case and its output', guestTest({ timeout: 120_000 }), async () => {
    const file = join(tempDir(), 'big.xml');
    const { result, peakMib } = await boundedRun('junit', ['--reporter', 'junit', '--output', file, '--filter', 'pass_', elf]);
    assert.equal(result.status, 0, describeRun(result));
    const root = parseXml(readFileSync(file, 'utf8'));
    assert.equal(root.attributes.tests, String(PASSING));
    const [suite] = root.children;
    assert.deepEqual(suite!.children.map((c) => c.attributes.name), numbered('pass_', PASSING));
    const shown = OUTPUT.replaceAll('\0', '\\x00');
    for (const testcase of suite!.children) {
      const out = testcase.children.find((c) => c.name === 'system-out');
      assert.ok(out?.text === shown, `${testcase.attributes.name}: ${out?.text.length} characters of output`);
    }
    assertPeak(peakMib, result);
  });

  test('--reporter pretty: exit status 1, the failures section with each failure\'s whole output', guestTest({ timeout: 120_000 }), async () => {
    const file = join(tempDir(), 'big.txt');
    const { result, peakMib } = await boundedRun('pretty', ['--output', file, elf]);
    assert.equal(result.status, 1, describeRun(result));
    const text = readFileSync(file, 'utf8');
    const failures = numbered('fail_', FAILING);
    for (const name of failures) {
      const header = `\n---- ${name} stdout ----\n`;
      const at = text.indexOf(header);
      assert.ok(at >= 0, `a failures section entry for ${name}`);
      const body = text.slice(at + header.length, at + header.length + OUTPUT.length);
      assert.ok(body === OUTPUT, `${name}'s whole output under its header`);
    }
    assert.match(text, new RegExp(`\\ntest result: FAILED\\. ${PASSING} passed; ${FAILING} failed; 0 ignored; 0 measured; 0 filtered out; finished in \\S+s\\n$`));
    assertPeak(peakMib, result);
  });
});
