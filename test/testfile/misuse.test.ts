// Mistakes in test files, each with the message that says what was wrong:
// in a callback or a check (that test fails, the worker and the file's
// other tests carry on), in a declaration or a snippet (that test fails),
// and in the file itself (the run stops, exit status 2, naming the file).
// fixtures/misuse.kvmtest.ts holds one test per mistake, run once here.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { JsonTest } from '../../src/report/json.js';
import { buildFixture, CAN_BUILD, describeRun, runCommand, ROOT } from '../cli/helpers.js';
import { guestTest } from '../helpers/kvm.js';
import { assertPassed, failureOf, fixture, lineOf, resultOf, runJsonFile, runKvmtest } from './helpers.js';

const NAME = 'misuse.kvmtest.ts';
const FILE = fixture(NAME);
const URL_OF_FILE = new URL(FILE, `file://${ROOT}`).href;
/** A snippet's or a callback's place in the fixture, found by its text. */
const at = (text: string) => `${FILE}:${lineOf(NAME, text)}`;
const frameAt = (text: string) => `${URL_OF_FILE}:${lineOf(NAME, text)}:`;
/** rip as the messages show it: "SYMBOL (0x...)" or "SYMBOL+0x12 at FILE:LINE (0x...)". */
const RIP = String.raw`at \S+( at \S+:\d+)? \(0x[0-9a-f]+\)`;

/** The stack lines ("    at ...") of a message. */
const frames = (message: string) => message.split('\n').filter((line) => /^\s+at /.test(line));

describe('test files: mistakes in one test fail that test, with a message that says what was wrong', () => {
  let byName = new Map<string, JsonTest>();
  let tests: JsonTest[] = [];
  let status: number | null = null;

  before(async () => {
    if (!CAN_BUILD) return;
    const elf = await buildFixture('elf-guest.elf', ['../../testfile/fixtures/elf-guest.c']);
    // One worker: the tests after each mistake ran in the process the mistake happened in.
    const run = await runJsonFile(['--jobs', '1', FILE], { env: { KVMTEST_FIXTURE_ELF: elf } });
    ({ byName } = run);
    tests = run.report.tests;
    status = run.result.status;
  });

  test('the run ends with exit status 1, and every test after a mistake passes', guestTest(), () => {
    assert.equal(status, 1);
    assert.equal(tests.length, 37);
    const fine = tests.filter((t) => t.name.startsWith('fine '));
    assert.equal(fine.length, 9);
    for (const t of fine) assertPassed(byName, t.name);
  });

  test('a callback that throws: the callback, the access, rip, and the user\'s stack without kvmtest\'s frames', guestTest(), () => {
    const message = failureOf(byName, 'a port read callback throws');
    assert.match(message, new RegExp(`^ports\\[0x60\\]\\.read threw during the guest's 8-bit in from port 0x60 ${RIP}: Error: the keyboard is broken\n`));
    assert.deepEqual(frames(message).map((f) => f.trim()), [
      `at brokenDevice (${frameAt("throw new Error('the keyboard is broken')")}9)`,
      `at read (${frameAt("kvmtest('a port read callback throws'")}71)`,
    ]);
    assert.equal(resultOf(byName, 'a port read callback throws').outcome, 'error');
  });

  test('a callback whose Promise rejects: as a throw', guestTest(), () => {
    const message = failureOf(byName, 'an async callback rejects');
    assert.match(message, new RegExp(`^ports\\[0x60\\]\\.read threw during the guest's 8-bit in from port 0x60 ${RIP}: RangeError: no data yet\n`));
    assert.ok(frames(message).every((f) => f.includes(URL_OF_FILE)), message);
  });

  test('a callback that answers the wrong type or too wide a value', guestTest(), () => {
    assert.match(failureOf(byName, 'a port read answers a string'), new RegExp(`^ports\\[0x60\\]\\.read answered the guest's 8-bit in from port 0x60 ${RIP} with "x"; a read must give a whole number or a bigint$`));
    assert.match(failureOf(byName, 'a port read answers too wide a value'), new RegExp(`^ports\\[0x60\\]\\.read answered the guest's 8-bit in from port 0x60 ${RIP} with 256, which does not fit 8 bits \\(0 to 0xff\\)$`));
    assert.match(failureOf(byName, 'a port write callback returns a value'), new RegExp(`^ports\\[0x60\\]\\.write answered the guest's 8-bit out of 0x2 to port 0x60 ${RIP} with 1; a write handler returns nothing \\(or a Promise of nothing\\)$`));
    assert.match(failureOf(byName, 'an MSR read answers a negative value'), new RegExp(`^msrs\\[0x4b564d20\\]\\.read answered the guest's rdmsr of MSR 0x4b564d20 ${RIP} with -1n, which does not fit 64 bits \\(0 to 0xffffffffffffffff\\)$`));
  });

  test('an unhandled rejection in a callback fails the test it happened in, naming it; the next test runs', guestTest(), () => {
    const message = failureOf(byName, 'a callback leaves a rejected Promise unhandled');
    assert.ok(message.startsWith('an error reached no handler while this test ran: an unhandled Promise rejection: Error: stray\n'), message);
    assert.ok(frames(message)[0]!.includes(frameAt("void Promise.reject(new Error('stray'))")), message);
    assertPassed(byName, 'fine after the stray rejection');
    const fromCheck = failureOf(byName, 'a check leaves a rejected Promise unhandled');
    assert.ok(fromCheck.startsWith('an error reached no handler while this test ran: an unhandled Promise rejection: Error: stray from the check\n'), fromCheck);
  });

  test('an exception thrown from a timer a callback set fails that test', guestTest(), () => {
    const message = failureOf(byName, 'a callback\'s timer throws');
    assert.ok(message.startsWith('an error reached no handler while this test ran: an uncaught exception: Error: thrown from a timer\n'), message);
    assert.ok(frames(message)[0]!.includes(frameAt("throw new Error('thrown from a timer')")), message);
  });

  test('a check that throws, that rejects, that never settles', guestTest(), () => {
    assert.equal(failureOf(byName, 'a check throws'), `the check failed: TypeError: the check is wrong\n    at Object.check (${frameAt("throw new TypeError('the check is wrong')")}9)`);
    assert.equal(failureOf(byName, 'a check rejects'), `the check failed: Error: rejected later\n    at Object.check (${frameAt("throw new Error('rejected later')")}9)`);
    assert.equal(failureOf(byName, 'a check never settles'), 'the check did not settle within 200 ms (the test\'s time limit)');
    assert.equal(resultOf(byName, 'a check never settles').outcome, 'returned');
  });

  test('a guest context used after its callback answered: an error, in a later callback or in the check', guestTest(), () => {
    const stale = 'this guest context belongs to an exit that is over: a callback may use it only until it answers';
    assert.match(failureOf(byName, 'a guest context used after its callback returned'), new RegExp(`^ports\\[0x61\\]\\.read threw during the guest's 8-bit in from port 0x61 ${RIP}: Error: ${stale}\n`));
    assert.ok(failureOf(byName, 'a guest context used by the check').startsWith(`the check failed: Error: ${stale}\n`));
    assertPassed(byName, 'fine after the kept contexts');
  });

  test('a device whose Promise never settles: the test times out, and the next one\'s device answers', guestTest(), () => {
    assert.equal(resultOf(byName, 'a Promise device that never settles').outcome, 'timeout');
    assert.match(failureOf(byName, 'a Promise device that never settles'), /^timed out after 200 ms; the guest was at /);
    assertPassed(byName, 'fine after the device that never answered');
  });

  test('an unknown option, or an unknown key in a handler object, lists the known ones', guestTest(), () => {
    assert.equal(
      failureOf(byName, 'an unknown option'),
      'unknown option "ioport"; known: ioports, ports, mmio, msrs, cpuid, ram, memory, regs, args, apic, cpus, shouldPanic, shouldHalt, shouldFault, timeoutMs, stackSize, skip, only',
    );
    assert.equal(failureOf(byName, 'a port handler with a misspelt key'), 'ports[0x60]: unknown key "reed"; known: read, write');
  });

  test('an MMIO region in the engine\'s first megabyte, over RAM, or over the image', guestTest(), () => {
    assert.equal(
      failureOf(byName, 'an mmio region in the first megabyte'),
      'mmio[0] at 0xb8000 lies in the first megabyte, which kvmtest reserves for its own tables and stacks (0x0-0x100000); put the device at 0x100000 or above',
    );
    assert.match(failureOf(byName, 'an mmio region over RAM'), /^cannot build this test's machine: mmio\[0\] \[0x401000, 0x402000\) shares memory or a 4 KiB page with RAM range 0 \[0x400000, 0x500000\): an MMIO region needs pages of its own/);
    assert.match(failureOf(byName, 'an mmio region over the image'), /^cannot build this test's machine: mmio\[0\] \[0x200000, 0x201000\) shares memory or a 4 KiB page with flat image at 0x200000/);
  });

  test('kvmtest() with something that is not a guest, and a name used twice', guestTest(), () => {
    assert.equal(
      failureOf(byName, 'a guest that is not one'),
      'kvmtest("a guest that is not one", ...): the guest must be c`...`, c.unit`...`, asm`...`, elf(path, symbol), bytes(data) or mirror(path).fn(name) (got "inb(0x60);")',
    );
    const twice = tests.filter((t) => t.name === 'a duplicated name');
    assert.deepEqual(twice.map((t) => t.status), ['passed', 'failed']);
    assert.equal(twice[1]!.message, `another test is named "a duplicated name" (line ${twice[0]!.line}); names must be unique in a file`);
  });

  test('C that does not compile: that test fails with the compiler\'s message at the .ts file and line', guestTest(), () => {
    const message = failureOf(byName, 'C that does not compile');
    const line = lineOf(NAME, 'int x = ;');
    assert.ok(message.startsWith(`c\`...\` at ${at("kvmtest('C that does not compile'")} failed to compile:\n`), message);
    assert.match(message, new RegExp(`\n${FILE}:${line}:\\d+: error: expected expression`));
  });

  test('assembly that does not assemble: the same, at the .ts line of the instruction', guestTest(), () => {
    const message = failureOf(byName, 'assembly that does not assemble');
    assert.ok(message.startsWith(`asm\`...\` at ${at("kvmtest('assembly that does not assemble'")} failed to assemble:\n`), message);
    assert.ok(message.includes(`\n${at('movv rbx, 2')}: Error: no such instruction: \`movv rbx,2'`), message);
  });

  test('a c.unit with no test function', guestTest(), () => {
    assert.equal(failureOf(byName, 'a c.unit without test()'), `c.unit\`...\` at ${at("kvmtest('a c.unit without test()'")} defines no \`void test(void)\`: a c.unit's entry is its function named test`);
  });

  test('elf() with a file that does not exist, or a symbol it does not define', guestTest(), () => {
    assert.equal(
      failureOf(byName, 'an elf() file that does not exist'),
      'cannot read ELF image no/such/file.elf: no such file (elf() paths are relative to the directory kvmtest run runs in; build it with `kvmtest cc`)',
    );
    assert.match(failureOf(byName, 'an elf() symbol that does not exist'), /^elf\(".*elf-guest\.elf", "no_such_function"\): entry symbol "no_such_function" is not defined in /);
  });
});

describe('test files: mistakes in the file itself stop the run (exit status 2), naming the file', () => {
  test('a file that throws at its top level: the error and where, without kvmtest\'s frames', guestTest(), async () => {
    const file = fixture('bad-top-level.kvmtest.ts');
    const result = await runKvmtest(['run', file]);
    assert.equal(result.status, 2, describeRun(result));
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, `kvmtest: cannot load test file ${file}: Error: this file refuses to load\n    at ${new URL(file, `file://${ROOT}`).href}:5:7\n`);
  });

  test('a file with a syntax error, TypeScript or JavaScript: the file, line and column', guestTest(), async () => {
    for (const [name, where, what] of [['bad-syntax.kvmtest.ts', '4:32', 'Unexpected token, expected ","'], ['bad-syntax.kvmtest.mjs', '5:7', "Unexpected token '='"]]) {
      const file = fixture(name!);
      const result = await runKvmtest(['run', file]);
      assert.equal(result.status, 2, describeRun(result));
      assert.equal(result.stderr, `kvmtest: cannot load test file ${file}: SyntaxError: ${file}:${where}: ${what}\n`);
    }
  });

  test('describe with an async function', guestTest(), async () => {
    const file = fixture('bad-describe.kvmtest.ts');
    const result = await runKvmtest(['run', file]);
    assert.equal(result.status, 2, describeRun(result));
    assert.equal(
      result.stderr,
      `kvmtest: cannot load test file ${file}: OptionError: describe("an async group", fn): fn returned a Promise; declare the group's tests synchronously ` +
        `(an async fn would declare them after the file has loaded)\n    at ${new URL(file, `file://${ROOT}`).href}:6:1\n`,
    );
  });

  test('several files that do not load: each one\'s error', guestTest(), async () => {
    const result = await runKvmtest(['run', fixture('bad-describe.kvmtest.ts'), fixture('bad-top-level.kvmtest.ts'), fixture('runner.kvmtest.ts')]);
    assert.equal(result.status, 2, describeRun(result));
    assert.match(result.stderr, /cannot load test file test\/testfile\/fixtures\/bad-describe\.kvmtest\.ts: /);
    assert.match(result.stderr, /cannot load test file test\/testfile\/fixtures\/bad-top-level\.kvmtest\.ts: /);
  });

  test('a test file run by node instead of kvmtest run: the error says to run it with kvmtest run', async () => {
    const result = await runCommand(process.execPath, [fixture('plain.kvmtest.mjs')]);
    assert.equal(result.status, 1, describeRun(result));
    assert.match(result.stderr, /Error: kvmtest\(\): tests in a kvmtest test file are run by the kvmtest runner \(`kvmtest run FILE`\), which loads the file; declare them at the top level/);
  });
});
