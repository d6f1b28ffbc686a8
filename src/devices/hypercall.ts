// Hypercalls: the guest hands over a whole message in one exit instead of
// one exit per byte. It writes the call number to the hypercall port with a
// 32-bit `out` and passes arguments in rdi and rsi (guest-virtual pointers,
// read through the guest's page tables). docs/abi.md describes the layout.
import type { AssertionInfo } from '../result.js';
import { type AccessSize, type GuestAccess, hex, type PortDevice, type Stop } from './device.js';
import { HYPERCALL } from './ports.js';
import { isCanonical } from '../machine/paging.js';

/** Largest single console write accepted; larger ones are cut (and say so). */
const MAX_WRITE = 1 << 20;
const utf8 = new TextEncoder();
/** struct kt_report (v1), in bytes. */
export const REPORT_SIZE = 64;
const REPORT_KIND = { assert: 1, assertEq: 2, panic: 3 } as const;
const MAX_STRING = 4096;
/** The most of a skip reason the host reads (the SDK's are at most 1023 bytes). */
const MAX_SKIP_REASON = MAX_STRING;
const utf8Decoder = new TextDecoder();
const MAX_ADDRESS = (1n << 64n) - 1n;

/** Failed checks kept per run; a guest that fails millions in a loop has the rest counted. */
export const MAX_KEPT_CHECKS = 100;
const REPORT_KIND_CHECK = { check: 4, checkEq: 5 } as const;

/** The non-fatal checks that failed during one run, in order (kexpect, report). */
export interface CheckLog {
  failed: AssertionInfo[];
  /** Failures past MAX_KEPT_CHECKS. */
  dropped: number;
}

export function newCheckLog(): CheckLog {
  return { failed: [], dropped: 0 };
}

export class HypercallPort implements PortDevice {
  readonly name = 'the hypercall port';

  constructor(private readonly checks: CheckLog = newCheckLog()) {}

  write(port: number, size: AccessSize, value: number, guest: GuestAccess): Stop | void {
    if (size !== 4) {
      return { outcome: 'unexpected-io', message: `hypercall port ${hex(port)} takes a 32-bit out, not ${size * 8}-bit` };
    }
    const regs = guest.regs();
    switch (value) {
      case HYPERCALL.write:
        return this.write_(regs.rdi, regs.rsi, guest);
      case HYPERCALL.report:
        return readReport(regs.rdi, guest);
      case HYPERCALL.skip:
        return readSkip(regs.rdi, regs.rsi, guest);
      case HYPERCALL.check:
        return this.check(regs.rdi, guest);
      default:
        return { outcome: 'unexpected-io', message: `unknown hypercall ${value} (out to port ${hex(port)})` };
    }
  }

  /** A failed kexpect or report(): kept for the verdict; the guest goes on. */
  private check(pointer: bigint, guest: GuestAccess): Stop | void {
    const assertion = readReportRecord('check', pointer, guest);
    if (!('kind' in assertion)) return assertion;
    if (assertion.kind !== 'check' && assertion.kind !== 'check-eq') {
      return { outcome: 'error', error: { kind: 'host' }, message: `check hypercall: the record at ${hex(pointer)} is not of kind KT_REPORT_CHECK or KT_REPORT_CHECK_EQ` };
    }
    if (this.checks.failed.length < MAX_KEPT_CHECKS) this.checks.failed.push(assertion);
    else this.checks.dropped++;
  }

  private write_(pointer: bigint, length: bigint, guest: GuestAccess): Stop | void {
    if (length === 0n) return;
    const notCanonical = checkCanonical('write', pointer, length);
    if (notCanonical) return notCanonical;
    // Read no more than the console will keep: a guest repeating a large
    // write (rep outsl to this port) then costs next to nothing.
    const kept = Math.min(guest.consoleRoom(), MAX_WRITE);
    const wanted = length > BigInt(kept) ? kept : Number(length);
    const bytes = readMapped('write', pointer, wanted, guest);
    if (!(bytes instanceof Uint8Array)) return bytes;
    guest.print(bytes);
    if (length > BigInt(MAX_WRITE) && wanted === MAX_WRITE) {
      guest.print(utf8.encode(`\n[kvmtest: a write of ${length} bytes was cut to its first ${MAX_WRITE}]\n`));
    } else if (length > BigInt(wanted)) {
      guest.dropOutput(Number(length - BigInt(wanted)));
    }
  }
}

/** An error Stop when the buffer [pointer, pointer + length) is not all at canonical addresses. */
function checkCanonical(call: string, pointer: bigint, length: bigint): Stop | undefined {
  const end = pointer + length - 1n;
  if (isCanonical(pointer) && end <= MAX_ADDRESS && isCanonical(end)) return undefined;
  return {
    outcome: 'error',
    error: { kind: 'host' },
    message: `${call} hypercall: the buffer at ${hex(pointer)} (${length} bytes) is not at canonical addresses`,
  };
}

/** `length` bytes at `pointer`, or an error Stop when the guest has not mapped them all. */
function readMapped(call: string, pointer: bigint, length: number, guest: GuestAccess): Uint8Array | Stop {
  const bytes = guest.readVirtual(pointer, length);
  if (bytes.length === length) return bytes;
  return {
    outcome: 'error',
    error: { kind: 'host' },
    message: `${call} hypercall: ${length} bytes at ${hex(pointer)} are not all mapped in the guest`,
  };
}

/** kskip: the test ends as skipped, the reason (UTF-8, cut at MAX_SKIP_REASON bytes) as its message. */
function readSkip(pointer: bigint, length: bigint, guest: GuestAccess): Stop {
  const wanted = length > BigInt(MAX_SKIP_REASON) ? MAX_SKIP_REASON : Number(length);
  if (wanted === 0) return { outcome: 'skipped', message: '' };
  const notCanonical = checkCanonical('skip', pointer, BigInt(wanted));
  if (notCanonical) return notCanonical;
  const bytes = readMapped('skip', pointer, wanted, guest);
  return bytes instanceof Uint8Array ? { outcome: 'skipped', message: utf8Decoder.decode(bytes) } : bytes;
}

function readReport(pointer: bigint, guest: GuestAccess): Stop {
  const assertion = readReportRecord('report', pointer, guest);
  if (!('kind' in assertion)) return assertion;
  if (assertion.kind === 'check' || assertion.kind === 'check-eq') {
    return { outcome: 'error', error: { kind: 'host' }, message: `report hypercall: the record at ${hex(pointer)} is a check's (KT_REPORT_CHECK), which goes with the check hypercall` };
  }
  return {
    outcome: assertion.kind === 'panic' ? 'panicked' : 'assert-failed',
    assertion,
    message: formatAssertion(assertion),
  };
}

/** A struct kt_report read from the guest, or an error Stop when it is not mapped. */
function readReportRecord(call: string, pointer: bigint, guest: GuestAccess): AssertionInfo | Stop {
  const raw = guest.readVirtual(pointer, REPORT_SIZE);
  if (raw.length < REPORT_SIZE) {
    return { outcome: 'error', error: { kind: 'host' }, message: `${call} hypercall: the record at ${hex(pointer)} is not mapped` };
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const kindCode = view.getUint32(0, true);
  const line = view.getUint32(4, true);
  const str = (offset: number): string | undefined => {
    const p = view.getBigUint64(offset, true);
    return p === 0n ? undefined : guest.readCString(p, MAX_STRING) ?? `<unreadable string at ${hex(p)}>`;
  };
  const file = str(8) ?? '<unknown file>';
  const expression = str(16);
  const message = str(24);
  const assertion: AssertionInfo = {
    kind: REPORT_KINDS[kindCode] ?? 'assert',
    file,
    line,
    ...(expression !== undefined && { expression }),
    ...(message !== undefined && { message }),
  };
  if (kindCode === REPORT_KIND.assertEq || kindCode === REPORT_KIND_CHECK.checkEq) {
    assertion.left = { expression: str(32) ?? '?', value: view.getBigUint64(48, true) };
    assertion.right = { expression: str(40) ?? '?', value: view.getBigUint64(56, true) };
    // The record's "a == b" is the two texts pasted together, which misreads
    // as soon as one holds an operator: `efer & EFER_SCE == EFER_SCE`.
    assertion.expression = `${asOperand(assertion.left.expression)} == ${asOperand(assertion.right.expression)}`;
  }
  return assertion;
}

const REPORT_KINDS: Readonly<Record<number, AssertionInfo['kind']>> = {
  [REPORT_KIND.assert]: 'assert',
  [REPORT_KIND.assertEq]: 'assert-eq',
  [REPORT_KIND.panic]: 'panic',
  [REPORT_KIND_CHECK.check]: 'check',
  [REPORT_KIND_CHECK.checkEq]: 'check-eq',
};

/**
 * An expression's text as an operand of ==: in parentheses when an operator
 * outside brackets and literals would otherwise bind differently.
 */
export function asOperand(text: string): string {
  let depth = 0;
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if ('([{'.includes(c)) {
      depth++;
    } else if (')]}'.includes(c)) {
      depth--;
    } else if (depth === 0 && i > 0 && '&|^+-*/%<>=!?:,'.includes(c) && !(c === '-' && text[i + 1] === '>') && !(c === '>' && text[i - 1] === '-')) {
      return `(${text})`;
    }
  }
  return text;
}

/** The failure message the user reads: what failed, where, with which values. */
export function formatAssertion(a: AssertionInfo): string {
  const where = `${a.file}:${a.line}`;
  if (a.kind === 'panic') return `panicked at ${where}${a.message ? `: ${a.message}` : ''}`;
  const check = a.kind === 'check' || a.kind === 'check-eq';
  // A failed report() has no condition text: its message is the FAIL line.
  if (check && a.expression === undefined) return `check failed at ${where}: ${a.message ?? ''}`.trimEnd();
  const lines = [`${check ? 'check' : 'assertion'} failed at ${where}: ${a.expression ?? ''}`.trimEnd()];
  if (a.message) lines.push(`  message: ${a.message}`);
  if (a.left && a.right) {
    lines.push(`  left:  ${a.left.expression} = ${describeValue(a.left.value)}`);
    lines.push(`  right: ${a.right.expression} = ${describeValue(a.right.value)}`);
  }
  return lines.join('\n');
}

/**
 * The failure message of a run whose non-fatal checks failed: each check in
 * order, numbered, then how the run itself ended when that was wrong too.
 */
export function formatFailedChecks(checks: readonly AssertionInfo[], dropped = 0): string {
  const total = checks.length + dropped;
  const lines = [`${total} ${total === 1 ? 'check' : 'checks'} failed:`];
  checks.forEach((c, i) => {
    const [first, ...rest] = formatAssertion(c).split('\n');
    lines.push(`  ${i + 1}) ${first}`, ...rest.map((l) => `     ${l.trimStart()}`));
  });
  if (dropped > 0) lines.push(`  ... and ${dropped} more (only the first ${checks.length} are kept)`);
  return lines.join('\n');
}

/** "0xfe (254)"; negative two's-complement values also in signed decimal. */
export function describeValue(value: bigint): string {
  const signed = BigInt.asIntN(64, value);
  const decimal = signed < 0n ? `${value} or ${signed}` : `${value}`;
  return `0x${value.toString(16)} (${decimal})`;
}
