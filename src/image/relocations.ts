// A shared object's dynamic relocations, read as its loader would find them
// (through PT_DYNAMIC): what the bytes at a link-time address become once
// the object is loaded. The test table's reader needs them because a
// pointer in a position-independent object is a relocation, and the bytes
// in the file may hold 0 (lld) or the value (GNU ld) in its place.
import { hex } from '../devices/device.js';
import { ElfError, type ElfFile, PT_DYNAMIC, PT_LOAD } from './elf.js';

/** x86-64 relocation types kvmtest names in messages (the psABI's numbers). */
export const R_X86_64_64 = 1;
export const R_X86_64_RELATIVE = 8;
const RELOCATION_NAMES: Record<number, string> = {
  1: 'R_X86_64_64',
  5: 'R_X86_64_COPY',
  6: 'R_X86_64_GLOB_DAT',
  7: 'R_X86_64_JUMP_SLOT',
  8: 'R_X86_64_RELATIVE',
  16: 'R_X86_64_DTPMOD64',
  17: 'R_X86_64_DTPOFF64',
  18: 'R_X86_64_TPOFF64',
  37: 'R_X86_64_IRELATIVE',
};

const DT_NULL = 0n;
const DT_STRTAB = 5n;
const DT_SYMTAB = 6n;
const DT_RELA = 7n;
const DT_RELASZ = 8n;
const DT_RELAENT = 9n;
const DT_REL = 17n;
const DT_RELSZ = 18n;
const DT_RELENT = 19n;
const DT_JMPREL = 23n;
const DT_PLTRELSZ = 2n;
const DT_PLTREL = 20n;
const DT_RELRSZ = 35n;
const DT_RELR = 36n;
const DYN_ENTRY = 16;
const RELA_ENTRY = 24;
const REL_ENTRY = 16;
const SYM_ENTRY = 24;
const WORD = 8;

export interface Relocation {
  /** The link-time address of the 8 bytes it changes. */
  address: bigint;
  type: number;
  /** The symbol it refers to, for messages ('' for none). */
  symbol: string;
  /** RELA's addend; undefined where the addend is the bytes in place (REL, RELR). */
  addend: bigint | undefined;
}

export function relocationName(type: number): string {
  return RELOCATION_NAMES[type] ?? `relocation type ${type}`;
}

/**
 * Every dynamic relocation of a shared object (RELA, REL and the jump
 * slots, then RELR, which is RELATIVE only). None for an executable.
 */
export function dynamicRelocations(elf: ElfFile): Relocation[] {
  const dynamic = elf.segments.find((s) => s.type === PT_DYNAMIC);
  if (!dynamic) return [];
  const memory = new LinkTimeMemory(elf);
  const view = memory.view;
  const tags = new Map<bigint, bigint>();
  for (let at = dynamic.offset; at + DYN_ENTRY <= dynamic.offset + dynamic.filesz; at += DYN_ENTRY) {
    const tag = view.getBigInt64(at, true);
    if (tag === DT_NULL) break;
    tags.set(tag, view.getBigUint64(at + 8, true));
  }
  const symbolName = symbolNames(memory, tags);
  const relocations: Relocation[] = [];
  const table = (start: bigint | undefined, size: bigint | undefined, entry: number, withAddend: boolean) => {
    if (start === undefined || !size) return;
    const from = memory.offsetOf(start, Number(size), 'a relocation table');
    for (let at = from; at + entry <= from + Number(size); at += entry) {
      const info = view.getBigUint64(at + 8, true);
      const type = Number(info & 0xffffffffn);
      relocations.push({
        address: view.getBigUint64(at, true),
        type,
        symbol: symbolName(Number(info >> 32n)),
        addend: withAddend ? view.getBigInt64(at + 16, true) : undefined,
      });
    }
  };
  table(tags.get(DT_RELA), tags.get(DT_RELASZ), Number(tags.get(DT_RELAENT) ?? BigInt(RELA_ENTRY)), true);
  table(tags.get(DT_REL), tags.get(DT_RELSZ), Number(tags.get(DT_RELENT) ?? BigInt(REL_ENTRY)), false);
  const pltWithAddend = (tags.get(DT_PLTREL) ?? DT_RELA) === DT_RELA;
  table(tags.get(DT_JMPREL), tags.get(DT_PLTRELSZ), pltWithAddend ? RELA_ENTRY : REL_ENTRY, pltWithAddend);
  relocations.push(...relrRelocations(memory, tags.get(DT_RELR), tags.get(DT_RELRSZ)));
  return relocations;
}

/**
 * RELR (-z pack-relative-relocs): a list of RELATIVE relocations packed as
 * an address followed by bitmaps, each bit one of the next 63 words.
 */
function relrRelocations(memory: LinkTimeMemory, start: bigint | undefined, size: bigint | undefined): Relocation[] {
  if (start === undefined || !size) return [];
  const view = memory.view;
  const from = memory.offsetOf(start, Number(size), 'the RELR relocation table');
  const out: Relocation[] = [];
  let next = 0n;
  for (let at = from; at + WORD <= from + Number(size); at += WORD) {
    const entry = view.getBigUint64(at, true);
    if ((entry & 1n) === 0n) {
      out.push({ address: entry, type: R_X86_64_RELATIVE, symbol: '', addend: undefined });
      next = entry + BigInt(WORD);
      continue;
    }
    for (let bit = 1n; bit < 64n; bit++) {
      if ((entry >> bit) & 1n) out.push({ address: next + (bit - 1n) * BigInt(WORD), type: R_X86_64_RELATIVE, symbol: '', addend: undefined });
    }
    next += 63n * BigInt(WORD);
  }
  return out;
}

/** Symbol index -> name through DT_SYMTAB and DT_STRTAB ('' where there is none). */
function symbolNames(memory: LinkTimeMemory, tags: ReadonlyMap<bigint, bigint>): (index: number) => string {
  const symtab = tags.get(DT_SYMTAB);
  const strtab = tags.get(DT_STRTAB);
  return (index) => {
    if (index === 0 || symtab === undefined || strtab === undefined) return '';
    try {
      const at = memory.offsetOf(symtab + BigInt(index * SYM_ENTRY), SYM_ENTRY, 'a dynamic symbol');
      return memory.cString(strtab + BigInt(memory.view.getUint32(at, true)));
    } catch {
      return `symbol #${index}`;
    }
  };
}

/** The file's bytes by link-time address, through its PT_LOAD segments. */
class LinkTimeMemory {
  readonly view: DataView;

  constructor(private readonly elf: ElfFile) {
    this.view = new DataView(elf.bytes.buffer, elf.bytes.byteOffset, elf.bytes.byteLength);
  }

  /** The file offset of `size` bytes at `address`; throws ElfError where the file does not hold them. */
  offsetOf(address: bigint, size: number, what: string): number {
    const segment = this.elf.segments.find(
      (s) => s.type === PT_LOAD && address >= s.vaddr && address + BigInt(size) <= s.vaddr + BigInt(s.filesz),
    );
    if (!segment) throw new ElfError(this.elf.file, `${what} at ${hex(address)} is not in the file's loadable segments (a damaged shared object?)`);
    return segment.offset + Number(address - segment.vaddr);
  }

  cString(address: bigint): string {
    const at = this.offsetOf(address, 1, 'a symbol name');
    const end = this.elf.bytes.indexOf(0, at);
    return Buffer.from(this.elf.bytes.buffer, this.elf.bytes.byteOffset + at, (end < 0 ? this.elf.bytes.length : end) - at).toString('utf8');
  }
}
