import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { junitClassname, junitDocument, junitReporter } from '../../src/report/junit.js';
import type { RunSummary, TestResult } from '../../src/runner/types.js';
import { BIN, OTHER_BIN, assertFailed, caseFor, drive, hostile, ignored, memorySink, pageFault, passed, skipped, summarize } from './fixtures.js';
import { schemaErrors, withXmllint } from '../helpers/consumers.js';
import { parseXml, type XmlElement } from './xml.js';

function child(node: XmlElement, name: string): XmlElement | undefined {
  return node.children.find((c) => c.name === name);
}

/** The streamed report, checked against the document built in memory at once. */
async function report(
  results: readonly TestResult[],
  options: { durationMs?: number; summary?: Partial<RunSummary> } = {},
): Promise<string> {
  const sink = memorySink();
  await drive(junitReporter(sink), results, options);
  const summary = { ...summarize(results, options.durationMs ?? 20), ...options.summary };
  assert.equal(sink.text, junitDocument(results, summary, results.map(caseFor)), 'the same document as building it at once');
  return sink.text;
}

describe('JUnit reporter', () => {
  test('one testsuite per binary, one testcase per test, with counts and times', async () => {
    const xml = await report(
      [passed('p', BIN, 'hello\n'), pageFault('pf'), ignored('skipped', 'needs a real APIC\nand more'), passed('q', OTHER_BIN)],
      { durationMs: 1234.5678 },
    );
    assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites '));
    const root = parseXml(xml);
    assert.equal(root.name, 'testsuites');
    assert.deepEqual(root.attributes, {
      name: 'kvmtest',
      tests: '4',
      failures: '1',
      errors: '0',
      time: '1.235',
    });
    assert.deepEqual(
      root.children.map((s) => [s.name, s.attributes.name, s.attributes.tests, s.attributes.failures, s.attributes.skipped, s.attributes.time]),
      [
        ['testsuite', BIN, '3', '1', '1', '0.005'],
        ['testsuite', OTHER_BIN, '1', '0', '0', '0.003'],
      ],
    );

    const [p, pf, skipped] = root.children[0]!.children;
    assert.deepEqual(p!.attributes, { name: 'p', classname: 'build/tests_elf', time: '0.003' });
    assert.equal(child(p!, 'system-out')?.text, 'hello\n');
    assert.equal(child(p!, 'failure'), undefined);

    const failure = child(pf!, 'failure')!;
    assert.equal(failure.attributes.type, 'fault');
    assert.equal(failure.attributes.message, pageFault('pf').message);
    assert.equal(failure.text, `${pageFault('pf').message}\n`);
    assert.equal(child(pf!, 'system-out'), undefined, 'no system-out without output');

    assert.deepEqual(skipped!.children.map((c) => [c.name, c.attributes]), [['skipped', { message: 'needs a real APIC' }]]);

    const q = root.children[1]!.children[0]!;
    assert.deepEqual([q.attributes.name, q.attributes.classname, q.children.length], ['q', 'build/more_elf', 0]);
  });

  test('a test that skipped itself: <skipped> with its reason, its output kept, counted as skipped', async () => {
    const root = parseXml(await report([skipped('needs_x2apic', 'no x2APIC here\nreally'), passed('p')]));
    const suite = root.children[0]!;
    assert.deepEqual([suite.attributes.tests, suite.attributes.failures, suite.attributes.skipped], ['2', '0', '1']);
    const testcase = suite.children[0]!;
    assert.deepEqual(testcase.children.map((c) => [c.name, c.attributes, c.text]), [
      ['skipped', { message: 'no x2APIC here' }, ''],
      ['system-out', {}, 'probing\n'],
    ]);
  });

  test('a multi-line reason: first line as the message, all of it and the output as text', async () => {
    const root = parseXml(await report([assertFailed('broken')]));
    const testcase = root.children[0]!.children[0]!;
    const failure = child(testcase, 'failure')!;
    assert.equal(failure.attributes.message, 'assertion failed at tests.c:12: x == 2');
    assert.equal(failure.attributes.type, 'assert-failed');
    assert.equal(
      failure.text,
      'assertion failed at tests.c:12: x == 2\n  left: x = 1\n  right: 2\n\noutput:\nbooting\nstep 1 done\n',
    );
    assert.equal(child(testcase, 'system-out')!.text, 'booting\nstep 1 done');
  });

  test('escapes markup and shows characters XML 1.0 forbids as \\xNN', async () => {
    const xml = await report([{ ...hostile('h<"&">'), binary: 'dir/a&b "c".elf' }]);
    assert.ok(xml.includes('&lt;b&gt; &amp; "c"'), 'markup escaped in text');
    assert.ok(!xml.includes(']]>'));
    const root = parseXml(xml);
    const suite = root.children[0]!;
    assert.equal(suite.attributes.name, 'dir/a&b "c".elf');
    const testcase = suite.children[0]!;
    assert.equal(testcase.attributes.name, 'h<"&">');
    assert.equal(testcase.attributes.classname, 'dir/a&b "c"_elf');
    const shown = 'a <b> & "c" \'d\' ]]> \\x00\\x07\\x1b[31mred\\x1b[0m \\ufffe\tend\n';
    assert.equal(child(testcase, 'system-out')!.text, shown);
    const failure = child(testcase, 'failure')!;
    assert.equal(failure.attributes.message, 'kpanic("<&> \\"quoted\\" #3")');
    assert.equal(failure.text, `kpanic("<&> \\"quoted\\" #3")\nsecond line\\x01\n\noutput:\n${shown}`);
  });

  test('keeps tabs, line breaks and lone CRs in attributes and text', async () => {
    const odd = { ...ignored('tabbed', 'a\tb'), output: 'x\ry\n' };
    const root = parseXml(await report([odd]));
    const testcase = root.children[0]!.children[0]!;
    assert.equal(child(testcase, 'skipped')!.attributes.message, 'a\tb');
    assert.equal(child(testcase, 'system-out')!.text, 'x\ry\n');
  });

  test('an empty run is still a valid document', async () => {
    const root = parseXml(await report([], { durationMs: 0 }));
    assert.deepEqual(root.attributes, { name: 'kvmtest', tests: '0', failures: '0', errors: '0', time: '0.000' });
    assert.deepEqual(root.children, []);
  });

  test('the checker itself rejects what a parser would', () => {
    const head = '<?xml version="1.0" encoding="UTF-8"?>\n';
    assert.throws(() => parseXml(`${head}<a>x & y</a>`));
    assert.throws(() => parseXml(`${head}<a>\x1b</a>`));
    assert.throws(() => parseXml(`${head}<a><b></a>`));
    assert.throws(() => parseXml(`${head}<a x="1" x="2"/>`));
    assert.doesNotThrow(() => parseXml(`${head}<a x="&lt;&#10;"><b/>t&amp;t</a>`));
    assert.throws(() => parseXml(`${head}<!-- a -- b --><a/>`));
    assert.throws(() => parseXml(`${head}<!-- a --->\n<a/>`));
    assert.doesNotThrow(() => parseXml(`${head}<!-- a - b -->\n<a><!-- c --></a>`));
  });

  test('test cases of one binary stay together even when results alternate between binaries', async () => {
    const root = parseXml(await report([passed('a1'), passed('b1', OTHER_BIN), passed('a2'), passed('b2', OTHER_BIN)]));
    assert.deepEqual(
      root.children.map((suite) => [suite.attributes.name, suite.children.map((c) => c.attributes.name)]),
      [
        [BIN, ['a1', 'a2']],
        [OTHER_BIN, ['b1', 'b2']],
      ],
    );
  });

  test('nothing is written before the end: the start tags need the final counts', async () => {
    const sink = memorySink();
    const reporter = junitReporter(sink);
    await reporter.onRunStart?.({ tests: [], binaries: [BIN] });
    await reporter.onTestResult?.(passed('p', BIN, 'output\n'));
    assert.equal(sink.text, '');
  });

  test('an incomplete run: a comment at the top and a property in each suite, with the counts of what ran', async () => {
    const xml = await report([passed('p'), pageFault('pf'), passed('q', OTHER_BIN)], {
      summary: { incomplete: 'interrupted by SIGINT', notRun: 4 },
    });
    assert.match(xml, /^<\?xml [^\n]*\n<!-- kvmtest: incomplete run: interrupted by SIGINT; 4 of 7 tests did not run -->\n<testsuites /);
    const root = parseXml(xml);
    assert.deepEqual([root.attributes.tests, root.attributes.failures], ['3', '1']);
    for (const suite of root.children) {
      const properties = child(suite, 'properties')!;
      assert.deepEqual(properties.children.map((p) => p.attributes), [
        { name: 'kvmtest.incomplete', value: 'interrupted by SIGINT; 4 of 7 tests did not run' },
      ]);
    }
    assert.deepEqual(
      root.children.map((s) => s.children.filter((c) => c.name === 'testcase').length),
      [2, 1],
    );
  });

  test('a classname Jenkins does not split: it reads package.Class at the last dot, and there is none', () => {
    for (const binary of ['tests.elf', 'build/v1.2/tests.elf', '../out/x.y.z', 'plain']) {
      const classname = junitClassname(binary);
      assert.ok(!classname.includes('.'), classname);
      assert.equal(classname.replace(/_/g, '.'), binary.replace(/_/g, '.'), 'only the dots changed');
    }
    // Two binaries stay two classes.
    assert.notEqual(junitClassname(BIN), junitClassname(OTHER_BIN));
  });

  test('valid against the Jenkins JUnit schema, whatever the results (xmllint)', withXmllint(), async () => {
    const documents = {
      'every kind of result': await report(
        [passed('p', BIN, 'hello\n'), pageFault('pf'), assertFailed('broken'), ignored('i', 'why'), skipped('s', 'no x2APIC'), passed('q', OTHER_BIN)],
        { durationMs: 1234567.891 },
      ),
      'hostile text': await report([{ ...hostile('h<"&">'), binary: 'dir/a&b "c".elf' }]),
      'an empty run': await report([], { durationMs: 0 }),
      'an incomplete run': await report([passed('p'), pageFault('pf')], { summary: { incomplete: 'interrupted by SIGINT', notRun: 4 } }),
    };
    for (const [what, xml] of Object.entries(documents)) assert.deepEqual(schemaErrors(xml), [], what);
  });

  test('the schema check is not vacuous: it refuses what Jenkins refuses', withXmllint(), () => {
    const head = '<?xml version="1.0" encoding="UTF-8"?>\n';
    const suite = (attrs: string, body = '') => `<testsuite name="s" tests="1" failures="0" errors="0"${attrs}>${body}</testsuite>`;
    assert.deepEqual(schemaErrors(`${head}<testsuites name="kvmtest" tests="1" failures="0" errors="0" time="0.5">${suite(' skipped="0"', '<testcase name="t"/>')}</testsuites>`), []);
    assert.match(schemaErrors(`${head}<testsuites skipped="1">${suite('')}</testsuites>`).join('\n'), /attribute 'skipped': The attribute 'skipped' is not allowed/);
    assert.match(schemaErrors(`${head}<testsuites>${suite('', '<testcase name="t" file="a.c" line="3"/>')}</testsuites>`).join('\n'), /attribute 'file': The attribute 'file' is not allowed/);
    assert.match(schemaErrors(`${head}<testsuites><testsuite name="s" tests="1"/></testsuites>`).join('\n'), /attribute 'failures' is required/);
    assert.match(schemaErrors(`${head}<testsuites time="1s"/>`).join('\n'), /attribute 'time'/);
  });

  /** A run of `announced` that reported only `results` (--bail, or a stop): the streamed report, checked against the one built at once. */
  async function leftOut(announced: readonly TestResult[], results: readonly TestResult[], summary: Partial<RunSummary> = {}): Promise<string> {
    const sink = memorySink();
    const reporter = junitReporter(sink);
    await reporter.onRunStart?.({ tests: announced.map(caseFor), binaries: [...new Set(announced.map((r) => r.binary))] });
    for (const result of results) await reporter.onTestResult?.(result);
    const full = { ...summarize(results, 20), notRun: announced.length - results.length, ...summary };
    await reporter.onRunEnd?.(full);
    assert.equal(sink.text, junitDocument(results, full, announced.map(caseFor)), 'the same document as building it at once');
    return sink.text;
  }

  test('tests that --bail left out are skipped test cases, where they are in the list, counted in their suites', async () => {
    const [a, b, c, d, e] = [passed('a'), pageFault('b'), passed('c'), passed('d', OTHER_BIN), passed('e', OTHER_BIN)];
    const root = parseXml(await leftOut([a!, b!, c!, d!, e!], [b!, d!]));
    assert.deepEqual([root.attributes.tests, root.attributes.failures], ['5', '1']);
    assert.deepEqual(
      root.children.map((suite) => [
        suite.attributes.name,
        suite.attributes.tests,
        suite.attributes.skipped,
        suite.children.map((c) => [c.attributes.name, c.children.map((k) => `${k.name}${k.attributes.message ? ` ${k.attributes.message}` : ''}`).join()]),
      ]),
      [
        [BIN, '3', '2', [['a', 'skipped not run: --bail stopped the run'], ['b', `failure ${pageFault('b').message}`], ['c', 'skipped not run: --bail stopped the run']]],
        [OTHER_BIN, '2', '1', [['d', ''], ['e', 'skipped not run: --bail stopped the run']]],
      ],
    );
    const notRun = root.children[0]!.children[0]!;
    assert.deepEqual(notRun.attributes, { name: 'a', classname: 'build/tests_elf', time: '0.000' });
  });

  test('a binary none of whose tests ran still gets its suite, in list order', async () => {
    const root = parseXml(await leftOut([passed('a', OTHER_BIN), passed('b')], [passed('b')]));
    assert.deepEqual(root.children.map((s) => [s.attributes.name, s.attributes.tests, s.attributes.skipped]), [[OTHER_BIN, '1', '1'], [BIN, '1', '0']]);
  });

  test('an interrupted run gives its reason to the tests without a result; the note counts the results', async () => {
    const xml = await leftOut([passed('a'), passed('b'), passed('c')], [passed('b')], { incomplete: 'interrupted by SIGINT\nmore' });
    assert.match(xml, /<!-- kvmtest: incomplete run: interrupted by SIGINT; 2 of 3 tests did not run -->/);
    const root = parseXml(xml);
    assert.deepEqual(
      root.children[0]!.children.filter((c) => c.name === 'testcase').map((c) => c.children[0]?.attributes.message ?? ''),
      ['not run: interrupted by SIGINT', '', 'not run: interrupted by SIGINT'],
    );
  });

  test('with tests left out, still valid against the Jenkins JUnit schema (xmllint)', withXmllint(), async () => {
    assert.deepEqual(schemaErrors(await leftOut([passed('a'), passed('b'), passed('c', OTHER_BIN)], [passed('b')])), []);
  });

  test('file and line attributes when asked for, on results and on tests without one; none by default', async () => {
    const announced = [pageFault('pf'), { ...passed('nowhere'), file: '', line: 0 }, hostile('h'), passed('later')];
    const results = announced.slice(0, 3);
    const summary = { ...summarize(results, 20), notRun: 1 };
    const sink = memorySink();
    const reporter = junitReporter(sink, { fileAttributes: true });
    await reporter.onRunStart?.({ tests: announced.map(caseFor), binaries: [BIN] });
    for (const result of results) await reporter.onTestResult?.(result);
    await reporter.onRunEnd?.(summary);
    assert.equal(sink.text, junitDocument(results, summary, announced.map(caseFor), { fileAttributes: true }));
    const cases = parseXml(sink.text).children[0]!.children;
    assert.deepEqual(
      cases.map((c) => [c.attributes.name, c.attributes.file, c.attributes.line]),
      [
        ['pf', 'src/poke.c', '20'],
        ['nowhere', undefined, undefined],
        ['h', 'dir/h<"&">.c', '30'],
        ['later', 'tests.c', '3'],
      ],
    );
    assert.ok(!junitDocument(results, summary, announced.map(caseFor)).includes(' file='), 'off by default');
  });

  test("file and line are what Jenkins' schema refuses, and all it refuses (xmllint)", withXmllint(), () => {
    const results = [passed('p'), pageFault('pf'), skipped('s', 'why')];
    const xml = junitDocument(results, summarize(results, 20), results.map(caseFor), { fileAttributes: true });
    const errors = schemaErrors(xml);
    assert.equal(errors.length, 6, errors.join('\n'));
    for (const error of errors) assert.match(error, /attribute '(file|line)': The attribute '(file|line)' is not allowed/);
  });

  test('a reason with "--" in it cannot end the comment early', async () => {
    const xml = await report([], { summary: { incomplete: 'worker died -- twice-', notRun: 1 } });
    assert.doesNotThrow(() => parseXml(xml));
    assert.match(xml, /<!-- kvmtest: incomplete run: worker died - - twice-; 1 of 1 tests did not run -->/);
  });
});
