// The test process's own address space as /proc/self/maps lists it: the
// ranges mirror mode may show the guest, with their permissions, and the
// names that symbolize addresses outside the mirrored library
// ("libc.so.6+0x1234").
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface ProcessMapping {
  start: bigint;
  end: bigint;
  read: boolean;
  write: boolean;
  execute: boolean;
  /** Offset into the mapped file (0 for anonymous memory). */
  offset: bigint;
  /** The file, or a pseudo-name such as [heap], [stack], anon_inode:kvm-vcpu:0; '' for anonymous memory. */
  path: string;
}

/**
 * Parses the text of /proc/PID/maps ("start-end perms offset dev inode
 * path" per line). By hand rather than with a regular expression: mirror
 * mode reads the maps in every run, and this halves what that costs.
 */
export function parseProcessMaps(text: string): ProcessMapping[] {
  const mappings: ProcessMapping[] = [];
  for (let at = 0; at < text.length; ) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    const dash = text.indexOf('-', at);
    const perms = text.indexOf(' ', dash) + 1;
    const offset = text.indexOf(' ', perms) + 1;
    const device = text.indexOf(' ', offset) + 1;
    const inode = text.indexOf(' ', device) + 1;
    const afterInode = text.indexOf(' ', inode);
    if (dash > at && dash < end && perms > 0 && offset > 0 && device > 0 && inode > 0 && afterInode > 0 && afterInode <= end) {
      let path = afterInode;
      while (path < end && text.charCodeAt(path) === 0x20) path++;
      mappings.push({
        start: hexNumber(text, at, dash),
        end: hexNumber(text, dash + 1, perms - 1),
        read: text[perms] === 'r',
        write: text[perms + 1] === 'w',
        execute: text[perms + 2] === 'x',
        offset: hexNumber(text, offset, device - 1),
        path: text.slice(path, end),
      });
    } else if (end > at) {
      throw new Error(`internal: /proc/self/maps has a line kvmtest cannot read: ${JSON.stringify(text.slice(at, end))}`);
    }
    at = end + 1;
  }
  return mappings;
}

/** The hex number text[from, to) as a bigint; through a double when it fits in 52 bits (all of user space). */
function hexNumber(text: string, from: number, to: number): bigint {
  const digits = text.slice(from, to);
  return digits.length <= 13 ? BigInt(parseInt(digits, 16)) : BigInt(`0x${digits}`);
}

/** This process's mappings, now. */
export function readProcessMaps(): ProcessMapping[] {
  return parseProcessMaps(readFileSync('/proc/self/maps', 'utf8'));
}

/**
 * Mappings a guest must never see even though the process has them: the
 * kernel's pseudo-mappings (vvar, vsyscall, vDSO data) and the mappings of
 * device files and anonymous inodes (a vCPU's kvm_run, a VM's memory
 * behind a file descriptor): they are the engine's, or not memory at all.
 */
export function neverMirrored(mapping: ProcessMapping): boolean {
  const path = mapping.path;
  return path.startsWith('[vvar') || path === '[vsyscall]' || path.startsWith('anon_inode:') || path.startsWith('/dev/') || path.startsWith('/memfd:kvm');
}

/** The mapping holding `address`, if any (mappings sorted by address, as the kernel lists them). */
export function mappingAt(mappings: readonly ProcessMapping[], address: bigint): ProcessMapping | undefined {
  let lo = 0;
  let hi = mappings.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = mappings[mid]!;
    if (address < m.start) hi = mid - 1;
    else if (address >= m.end) lo = mid + 1;
    else return m;
  }
  return undefined;
}

/**
 * "libc.so.6+0x1234 (0x7f...)": an address in a mapped file, as an offset
 * from where the file's first mapping starts (its load base); "[heap]
 * 0x..." style names for the rest, or undefined when nothing is mapped there.
 */
export function describeProcessAddress(mappings: readonly ProcessMapping[], address: bigint): string | undefined {
  const hit = mappingAt(mappings, address);
  if (!hit) return undefined;
  const hex = `0x${address.toString(16)}`;
  if (!hit.path.startsWith('/')) return hit.path ? `${hex} in ${hit.path}` : undefined;
  const first = mappings.find((m) => m.path === hit.path);
  const base = first ? first.start - first.offset : hit.start - hit.offset;
  return `${basename(hit.path)}+0x${(address - base).toString(16)} (${hex})`;
}

/**
 * The first mapping of the process that [start, end) overlaps, if any: in
 * mirror mode the guest sees the process at its own addresses, so guest
 * RAM or MMIO placed there would hide the process's memory.
 */
export function processMappingIn(mappings: readonly ProcessMapping[], start: bigint, end: bigint): ProcessMapping | undefined {
  return mappings.find((m) => m.start < end && start < m.end && !neverMirrored(m));
}

