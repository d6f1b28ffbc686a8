// A reader for ELF64 little-endian x86-64 executables: program headers (what
// to load), section headers (where the test table is) and the symbol table
// (names for addresses in fault reports). It checks what kvmtest relies on and
// says plainly what is wrong with a file that does not fit. Shared objects
// (mirror mode) are read only where the caller asks for them.

export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
const PT_INTERP = 3;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;
const ET_EXEC = 2;
const ET_DYN = 3;
const EM_X86_64 = 62;
const SHT_SYMTAB = 2;
const SHT_NOBITS = 8;
const SHT_DYNSYM = 11;
const STT_OBJECT = 1;
const STT_FUNC = 2;

const MACHINE_NAMES: Record<number, string> = {
  3: 'i386 (32-bit x86)',
  8: 'MIPS',
  20: 'PowerPC',
  21: 'PowerPC 64',
  40: 'ARM',
  62: 'x86-64',
  183: 'AArch64 (ARM 64-bit)',
  243: 'RISC-V',
};

const utf8 = new TextDecoder();

export class ElfError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ElfError';
  }
}

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  filesz: number;
  memsz: bigint;
}

export interface SectionHeader {
  name: string;
  type: number;
  /** SHF_* bits. */
  flags: number;
  addr: bigint;
  offset: number;
  size: number;
  /** Another section's index (a symbol table's strings). */
  link: number;
  entsize: number;
}

export interface ElfSymbol {
  name: string;
  value: bigint;
  size: bigint;
  kind: 'func' | 'object' | 'other';
}

export interface ElfFile {
  file: string;
  bytes: Uint8Array;
  /** ET_EXEC, or ET_DYN without an interpreter (only with allowShared). */
  type: 'executable' | 'shared-object';
  entry: bigint;
  segments: ProgramHeader[];
  sections: SectionHeader[];
  /** From .symtab, or .dynsym where the file has no .symtab (stripped). */
  symbols: ElfSymbol[];
}

export interface ParseOptions {
  /** Accept a shared object (ET_DYN with no PT_INTERP), whose addresses are relative to its load base. */
  allowShared?: boolean;
}

/** Parses and validates an ELF64 x86-64 executable (or, if allowed, shared object) held in memory. */
export function parseElf(bytes: Uint8Array, file: string, options: ParseOptions = {}): ElfFile {
  const fail = (problem: string): never => {
    throw new ElfError(file, problem);
  };
  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    const start = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    fail(`not an ELF file (it starts with ${start || 'nothing: the file is empty'}; an ELF file starts with 7f 45 4c 46)`);
  }
  if (bytes.length < 64) fail('truncated ELF header');
  if (bytes[4] === 1) fail('a 32-bit ELF (ELFCLASS32); kvmtest runs 64-bit x86-64 executables: build with -m64');
  if (bytes[4] !== 2) fail(`unknown ELF class ${bytes[4]}`);
  if (bytes[5] !== 1) fail('a big-endian ELF; kvmtest runs little-endian x86-64 executables');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint16(16, true);
  const machine = view.getUint16(18, true);
  if (machine !== EM_X86_64) {
    fail(`an ELF for ${MACHINE_NAMES[machine] ?? `machine ${machine}`}, not x86-64`);
  }
  if (type === ET_DYN && !options.allowShared) {
    fail('a position-independent executable or shared object (ET_DYN); link a static executable with -static -no-pie (kvmtest cc does)');
  }
  if (type !== ET_EXEC && type !== ET_DYN) fail(`ELF type ${type} is not an executable (ET_EXEC); link the objects into an executable`);

  const entry = view.getBigUint64(24, true);
  const phoff = Number(view.getBigUint64(32, true));
  const shoff = Number(view.getBigUint64(40, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  const shentsize = view.getUint16(58, true);
  const shnum = view.getUint16(60, true);
  const shstrndx = view.getUint16(62, true);

  if (phnum > 0 && (phentsize < 56 || phoff + phnum * phentsize > bytes.length)) fail('program headers lie outside the file (truncated?)');
  const segments: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const ph: ProgramHeader = {
      type: view.getUint32(at, true),
      flags: view.getUint32(at + 4, true),
      offset: Number(view.getBigUint64(at + 8, true)),
      vaddr: view.getBigUint64(at + 16, true),
      paddr: view.getBigUint64(at + 24, true),
      filesz: Number(view.getBigUint64(at + 32, true)),
      memsz: view.getBigUint64(at + 40, true),
    };
    if (ph.type === PT_LOAD && ph.offset + ph.filesz > bytes.length) {
      fail(`segment ${i} (at 0x${ph.vaddr.toString(16)}) extends past the end of the file (truncated?)`);
    }
    if (ph.type === PT_LOAD && BigInt(ph.filesz) > ph.memsz) fail(`segment ${i} has a file size larger than its memory size`);
    segments.push(ph);
  }
  if (type === ET_DYN && segments.some((s) => s.type === PT_INTERP)) {
    fail('a position-independent executable (ET_DYN with an interpreter); link a static executable with -static -no-pie, ' +
      'or a shared object with `kvmtest cc -shared` (kvmtest cc does either)');
  }
  const kind = type === ET_DYN ? 'shared-object' : 'executable';

  const sections: SectionHeader[] = [];
  if (shnum > 0 && shoff > 0) {
    if (shentsize < 64 || shoff + shnum * shentsize > bytes.length) fail('section headers lie outside the file (truncated?)');
    const raw = Array.from({ length: shnum }, (_, i) => {
      const at = shoff + i * shentsize;
      return {
        nameOffset: view.getUint32(at, true),
        type: view.getUint32(at + 4, true),
        flags: Number(view.getBigUint64(at + 8, true)),
        addr: view.getBigUint64(at + 16, true),
        offset: Number(view.getBigUint64(at + 24, true)),
        size: Number(view.getBigUint64(at + 32, true)),
        link: view.getUint32(at + 40, true),
        entsize: Number(view.getBigUint64(at + 56, true)),
      };
    });
    const names = raw[shstrndx];
    for (const s of raw) {
      if (s.type !== SHT_NOBITS && s.offset + s.size > bytes.length) fail('a section extends past the end of the file (truncated?)');
      sections.push({
        name: names ? readCString(bytes, names.offset + s.nameOffset) : '',
        type: s.type,
        flags: s.flags,
        addr: s.addr,
        offset: s.offset,
        size: s.size,
        link: s.link,
        entsize: s.entsize,
      });
    }
    const symtab = raw.find((s) => s.type === SHT_SYMTAB) ?? raw.find((s) => s.type === SHT_DYNSYM);
    if (symtab && raw[symtab.link]) {
      return { file, bytes, type: kind, entry, segments, sections, symbols: readSymbols(bytes, symtab, raw[symtab.link]!) };
    }
  }
  return { file, bytes, type: kind, entry, segments, sections, symbols: [] };
}

/** The defined symbols of a symbol table section of `elf` (.symtab or .dynsym). */
export function symbolsIn(elf: ElfFile, section: SectionHeader): ElfSymbol[] {
  const strings = elf.sections[section.link];
  return strings ? readSymbols(elf.bytes, section, strings) : [];
}

function readSymbols(
  bytes: Uint8Array,
  symtab: { offset: number; size: number; entsize: number },
  strtab: { offset: number },
): ElfSymbol[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entsize = symtab.entsize || 24;
  const symbols: ElfSymbol[] = [];
  for (let at = symtab.offset; at + entsize <= symtab.offset + symtab.size; at += entsize) {
    const nameOffset = view.getUint32(at, true);
    const info = view.getUint8(at + 4);
    const shndx = view.getUint16(at + 6, true);
    if (nameOffset === 0 || shndx === 0) continue; // unnamed or undefined
    const stt = info & 0xf;
    symbols.push({
      name: readCString(bytes, strtab.offset + nameOffset),
      value: view.getBigUint64(at + 8, true),
      size: view.getBigUint64(at + 16, true),
      kind: stt === STT_FUNC ? 'func' : stt === STT_OBJECT ? 'object' : 'other',
    });
  }
  return symbols;
}

function readCString(bytes: Uint8Array, at: number): string {
  let end = at;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return utf8.decode(bytes.subarray(at, end));
}

export function findSection(elf: ElfFile, name: string): SectionHeader | undefined {
  return elf.sections.find((s) => s.name === name);
}
