// `kvmtest doctor`, and what the commands do for a user who cannot open
// /dev/kvm (run as an unprivileged user where this process is root).
import assert from 'node:assert/strict';
import { chmodSync, existsSync, statSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { closingAdvice } from '../../src/commands/doctor.js';
import { guestTest, isSoftwareKvm, kvmUnavailableReason, toolchainTest } from '../helpers/kvm.js';
import { buildFixture, BIN, CAN_BUILD, describeRun, kvmtest, lines, runCommand, tempDir, type CommandResult } from './helpers.js';

/** The "  ok   GROUP" / "  no   GROUP: why" lines: group -> why (undefined when it works). */
function instructionGroups(stdout: string): Map<string, string | undefined> {
  const groups = new Map<string, string | undefined>();
  for (const line of lines(stdout)) {
    const ok = /^ {2}ok {3}(.+)$/.exec(line);
    const no = /^ {2}no {3}(.+?): (.+)$/.exec(line);
    if (ok) groups.set(ok[1]!, undefined);
    else if (no) groups.set(no[1]!, no[2]!);
  }
  return groups;
}

describe('kvmtest doctor', () => {
  let doctor: CommandResult;

  before(async () => {
    if (!guestTest().skip) doctor = await kvmtest(['doctor']);
  });

  test('exit status 0; says /dev/kvm opens', guestTest(), () => {
    assert.equal(doctor.status, 0, describeRun(doctor));
    assert.equal(doctor.stderr, '');
    assert.match(doctor.stdout, /^\/dev\/kvm +ok: opens read-write/m);
  });

  test("says whether the guest's CPUID is the table KVM reports", guestTest(), () => {
    const cpuid = /^cpuid +(.+)$/m.exec(doctor.stdout);
    assert.ok(cpuid, doctor.stdout);
    // PVM answers leaves 1 and 7 from the host, whatever KVM_SET_CPUID2 installed.
    if (isSoftwareKvm()) assert.match(cpuid[1]!, /^DIFFERS: the guest reads leaf 1 ecx 0x[0-9a-f]+ \(KVM's table: 0x[0-9a-f]+\)/);
    else assert.match(cpuid[1]!, /^(ok: the guest sees the table KVM reports as supported|DIFFERS: )/);
  });

  test('names the kind of KVM', guestTest(), () => {
    const kind = /^virtualization +(.+)$/m.exec(doctor.stdout);
    assert.ok(kind, doctor.stdout);
    if (isSoftwareKvm()) assert.match(kind[1]!, /software-assisted KVM \(kvm_pvm\)/);
    else assert.match(kind[1]!, /hardware-virtualized KVM|KVM of an unknown kind/);
  });

  test('lists instruction groups with ok and no lines', guestTest(), () => {
    assert.match(doctor.stdout, /^instruction groups, each probed with a one-instruction guest:$/m);
    const groups = instructionGroups(doctor.stdout);
    assert.ok(groups.size >= 20, `about two dozen groups (got ${groups.size}):\n${doctor.stdout}`);
    // What every KVM runs.
    for (const group of ['port I/O (in, out)', 'cpuid', 'rdmsr, wrmsr', 'hlt', 'exceptions through the IDT (ud2 -> #UD)']) {
      assert.ok(groups.has(group), group);
      assert.equal(groups.get(group), undefined, `${group} works`);
    }
    assert.ok(groups.has('int3 (-> #BP)'));
    for (const group of ['clac, stac (SMAP)', 'invpcid', 'clwb', 'rdpru', 'icebp (int1 -> #DB)', 'vmcall (KVM hypercall)', 'an undefined opcode (0f 04 -> #UD)']) {
      assert.ok(groups.has(group), `probes ${group}`);
    }
    if (isSoftwareKvm()) {
      assert.match(groups.get('int3 (-> #BP)') ?? 'works', /emulation failure/);
      assert.match(doctor.stdout, /\d+ group\(s\) cannot run on this host/);
    } else {
      assert.equal(groups.get('int3 (-> #BP)'), undefined, 'int3 raises #BP on a hardware KVM');
    }
  });

  test('ends with the advice for the groups that cannot run here', guestTest(), () => {
    const missing = [...instructionGroups(doctor.stdout).values()].filter((why) => why !== undefined).length;
    assert.ok(doctor.stdout.endsWith(`\n${closingAdvice(missing, isSoftwareKvm() ? 'software' : 'hardware')}`), doctor.stdout);
  });
});

describe("doctor's advice about groups that cannot run", () => {
  test('names the two ways kvmtest run has to keep such tests from failing, and not --filter, which only includes', () => {
    for (const kind of ['software', 'hardware', 'unknown'] as const) {
      const advice = closingAdvice(3, kind);
      assert.match(advice, /^3 group\(s\) /, kind);
      assert.match(advice, /--skip PATTERN/, kind);
      assert.match(advice, /kskip\("reason"\)/, kind);
      assert.doesNotMatch(advice, /--filter/, kind);
    }
    // CPUID tells the truth about a hardware vCPU, not about PVM's emulator.
    assert.match(closingAdvice(3, 'hardware'), /check CPUID and call kskip/);
    assert.match(closingAdvice(3, 'software'), /cannot\s+catch an emulation failure, but it can check first/);
    assert.equal(closingAdvice(0, 'software'), 'Everything probed works here.\n');
  });
});

describe('without access to /dev/kvm', () => {
  // Root can always open /dev/kvm: drop to "nobody" with setpriv to be a user who cannot.
  const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
  let passing = '';
  let nobodyReason: string | undefined;

  const asNobody = (args: readonly string[]) => runCommand(process.execPath, [BIN, ...args], { prefix: NOBODY });

  before(async () => {
    if (process.getuid?.() !== 0) nobodyReason = 'runs only as root (it drops to user nobody with setpriv)';
    else if (!existsSync('/usr/bin/setpriv') && !existsSync('/bin/setpriv')) nobodyReason = 'setpriv is not installed';
    else if (kvmUnavailableReason()) nobodyReason = `${kvmUnavailableReason()}`;
    if (nobodyReason || !CAN_BUILD) return;
    passing = await buildFixture('passing.elf', ['passing.c']);
    // mkdtemp makes the directory private to root.
    chmodSync(tempDir(), 0o755);
    const probe = await asNobody(['doctor']);
    if (probe.status === 0) nobodyReason = 'user nobody can open /dev/kvm here';
  });

  test('run: exit status 2 and a message about /dev/kvm', toolchainTest(), async (t) => {
    if (nobodyReason) return t.skip(nobodyReason);
    const result = await asNobody(['run', passing]);
    assert.equal(result.status, 2, describeRun(result));
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^kvmtest: no permission to open \/dev\/kvm read-write/);
    // The message describes this host's device as it is.
    const device = statSync('/dev/kvm');
    const mode = (device.mode & 0o777).toString(8).padStart(4, '0');
    assert.match(result.stderr, new RegExp(`: it belongs to \\S+:\\S+ with mode ${mode}`));
    if (device.gid === 0 && (device.mode & 0o060) !== 0o060) assert.doesNotMatch(result.stderr, /join its group/);
    assert.ok(!result.stderr.includes('internal error'));
  });

  test('run --list needs no KVM', toolchainTest(), async (t) => {
    if (nobodyReason) return t.skip(nobodyReason);
    const result = await asNobody(['run', '--list', passing]);
    assert.equal(result.status, 0, describeRun(result));
    assert.equal(result.stderr, '');
    assert.deepEqual(lines(result.stdout).slice(-2), ['', '8 tests']);
  });

  test('doctor: exit status 2, /dev/kvm NOT USABLE and why', toolchainTest(), async (t) => {
    if (nobodyReason) return t.skip(nobodyReason);
    const result = await asNobody(['doctor']);
    assert.equal(result.status, 2, describeRun(result));
    assert.match(result.stdout, /^\/dev\/kvm +NOT USABLE: no permission to open \/dev\/kvm/m);
  });
});
