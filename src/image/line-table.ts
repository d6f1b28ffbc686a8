// Source lines of guest addresses, from the DWARF line table (.debug_line)
// that `kvmtest cc` and test files' snippets are built with (-g): a fault
// report can then say "at failing.c:22", and for a c`` snippet the line of
// the test file itself, since each snippet starts with a #line directive.
//
// Only the line-number program is read (DWARF 2 to 5), not .debug_info, so
// inlining is not known as such. Code inlined from the SDK's headers (inb,
// wrmsr, pause) or the compiler's is reported at the line of the function
// it was inlined into that comes just before it, which is the statement
// that called the helper: a test's author wants "failing.c:25", not
// "x86.h:237". Code from the user's own headers keeps its own line. A table
// this reader does not understand gives no lines, never an error: lines
// are a convenience of the report.
import { inflateSync } from 'node:zlib';
import { type ElfFile, findSection, type SectionHeader } from './elf.js';
import { lastAtOrBelow } from './sorted.js';

export interface SourceLine {
  file: string;
  line: number;
}

/** One row of a line-number program: code from `address` on is at `file:line`, up to the next row. */
interface Row {
  address: bigint;
  file: string;
  line: number;
  /** Ends its sequence: nothing is at this address. */
  end: boolean;
}

const SHF_COMPRESSED = 0x800;
const ELFCOMPRESS_ZLIB = 1;

// DWARF 5 forms and content types of the directory and file tables.
const DW_FORM = { block: 0x09, data1: 0x0b, data2: 0x05, data4: 0x06, data8: 0x07, data16: 0x1e, string: 0x08, strp: 0x0e, lineStrp: 0x1f, udata: 0x0f, strx: 0x1a, strx1: 0x25, strx2: 0x26, strx3: 0x27, strx4: 0x28 } as const;
const DW_LNCT_PATH = 1;
const DW_LNCT_DIRECTORY_INDEX = 2;

class LineTableError extends Error {}

/** A cursor over a section's bytes, little-endian, with DWARF's variable-length integers. */
class Reader {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    public at = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number): void {
    if (this.at + n > this.bytes.length) throw new LineTableError('truncated');
  }
  u8(): number {
    this.need(1);
    return this.bytes[this.at++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.at, true);
    this.at += 8;
    return v;
  }
  uleb(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = this.u8();
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if ((byte & 0x80) === 0) return result;
      if (shift > 70n) throw new LineTableError('LEB128 too long');
    }
  }
  ulebNumber(): number {
    return Number(this.uleb());
  }
  sleb(): bigint {
    let result = 0n;
    let shift = 0n;
    let byte: number;
    do {
      byte = this.u8();
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if (shift > 70n) throw new LineTableError('LEB128 too long');
    } while (byte & 0x80);
    if (byte & 0x40) result -= 1n << shift;
    return result;
  }
  cstring(): string {
    const end = this.bytes.indexOf(0, this.at);
    if (end < 0) throw new LineTableError('unterminated string');
    const text = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.at, end - this.at).toString('utf8');
    this.at = end + 1;
    return text;
  }
  skip(n: number): void {
    this.need(n);
    this.at += n;
  }
}

/** A section's contents, inflated if the linker compressed it (SHF_COMPRESSED, zlib). */
function sectionBytes(elf: ElfFile, section: SectionHeader | undefined): Uint8Array | undefined {
  if (!section || section.size === 0) return undefined;
  const raw = elf.bytes.subarray(section.offset, section.offset + section.size);
  if ((section.flags & SHF_COMPRESSED) === 0) return raw;
  const header = new Reader(raw);
  if (header.u32() !== ELFCOMPRESS_ZLIB) return undefined;
  header.skip(4 + 8 + 8); // reserved, ch_size, ch_addralign
  return new Uint8Array(inflateSync(raw.subarray(header.at)));
}

function stringAt(bytes: Uint8Array | undefined, offset: number): string {
  if (!bytes || offset >= bytes.length) throw new LineTableError('string offset outside its section');
  return new Reader(bytes, offset).cstring();
}

/**
 * A file's name as the compiler was given it: joined to its directory, but
 * not to the compilation directory (entry 0), so that `kvmtest cc
 * examples/x.c` reads "examples/x.c" as the compiler's messages do.
 */
function joinPath(dirs: readonly string[], dir: number, name: string): string {
  const base = dir === 0 ? undefined : dirs[dir];
  if (name.startsWith('/') || !base) return name;
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

/** Reads one value of `form` from a DWARF 5 directory or file entry: a string, a number, or undefined. */
function readForm(r: Reader, form: number, offset64: boolean, strings: { line?: Uint8Array; str?: Uint8Array }): string | number | undefined {
  const offset = () => (offset64 ? Number(r.u64()) : r.u32());
  switch (form) {
    case DW_FORM.string:
      return r.cstring();
    case DW_FORM.lineStrp:
      return stringAt(strings.line, offset());
    case DW_FORM.strp:
      return stringAt(strings.str, offset());
    case DW_FORM.udata:
      return r.ulebNumber();
    case DW_FORM.data1:
      return r.u8();
    case DW_FORM.data2:
      return r.u16();
    case DW_FORM.data4:
      return r.u32();
    case DW_FORM.data8:
      return Number(r.u64());
    case DW_FORM.data16:
      r.skip(16);
      return undefined;
    case DW_FORM.block:
      r.skip(r.ulebNumber());
      return undefined;
    default:
      // strx forms need .debug_str_offsets and a unit's base: not worth it for file names.
      throw new LineTableError(`unsupported form 0x${form.toString(16)}`);
  }
}

/** The DWARF 5 directory or file table: for each entry, its path and directory index. */
function readEntryTable(r: Reader, offset64: boolean, strings: { line?: Uint8Array; str?: Uint8Array }): Array<{ path: string; dir: number }> {
  const formatCount = r.u8();
  const format: Array<[number, number]> = [];
  for (let i = 0; i < formatCount; i++) format.push([r.ulebNumber(), r.ulebNumber()]);
  const count = r.ulebNumber();
  const entries: Array<{ path: string; dir: number }> = [];
  for (let i = 0; i < count; i++) {
    let path = '';
    let dir = 0;
    for (const [type, form] of format) {
      const value = readForm(r, form, offset64, strings);
      if (type === DW_LNCT_PATH && typeof value === 'string') path = value;
      else if (type === DW_LNCT_DIRECTORY_INDEX && typeof value === 'number') dir = value;
    }
    entries.push({ path, dir });
  }
  return entries;
}

/** Runs one unit's line-number program (at r.at) and appends its rows. */
function readUnit(r: Reader, strings: { line?: Uint8Array; str?: Uint8Array }, rows: Row[]): number {
  let length: number = r.u32();
  let offset64 = false;
  if (length === 0xffffffff) {
    length = Number(r.u64());
    offset64 = true;
  }
  const unitEnd = r.at + length;
  if (unitEnd > r.bytes.length) throw new LineTableError('unit past the end of the section');
  const version = r.u16();
  if (version < 2 || version > 5) throw new LineTableError(`version ${version}`);
  if (version >= 5) {
    const addressSize = r.u8();
    r.u8(); // segment selector size
    if (addressSize !== 8) throw new LineTableError(`address size ${addressSize}`);
  }
  const headerLength = offset64 ? Number(r.u64()) : r.u32();
  const programStart = r.at + headerLength;
  const minInstructionLength = r.u8();
  if (version >= 4) r.u8(); // maximum operations per instruction (1 on x86)
  const defaultIsStmt = r.u8() !== 0;
  void defaultIsStmt;
  const lineBase = (r.u8() << 24) >> 24;
  const lineRange = r.u8();
  const opcodeBase = r.u8();
  if (lineRange === 0) throw new LineTableError('line range 0');
  const argCounts = [0];
  for (let i = 1; i < opcodeBase; i++) argCounts.push(r.u8());

  let files: string[];
  if (version >= 5) {
    const dirs = readEntryTable(r, offset64, strings).map((d) => d.path);
    files = readEntryTable(r, offset64, strings).map((f) => joinPath(dirs, f.dir, f.path));
  } else {
    // DWARF 2-4: directory 0 and file 0 are implicit (the unit's), files count from 1.
    const dirs = [''];
    for (let dir = r.cstring(); dir !== ''; dir = r.cstring()) dirs.push(dir);
    files = [''];
    for (let name = r.cstring(); name !== ''; name = r.cstring()) {
      const dir = r.ulebNumber();
      r.uleb();
      r.uleb(); // mtime, length
      files.push(joinPath(dirs, dir, name));
    }
  }
  r.at = programStart;

  let address = 0n;
  let file = 1;
  let line = 1;
  const emit = (end: boolean) => rows.push({ address, file: files[file] ?? '', line, end });
  const reset = () => {
    address = 0n;
    file = 1;
    line = 1;
  };
  while (r.at < unitEnd) {
    const op = r.u8();
    if (op >= opcodeBase) {
      const adjusted = op - opcodeBase;
      address += BigInt(Math.floor(adjusted / lineRange) * minInstructionLength);
      line += lineBase + (adjusted % lineRange);
      emit(false);
      continue;
    }
    switch (op) {
      case 0: {
        const length = r.ulebNumber();
        const next = r.at + length;
        const sub = length > 0 ? r.u8() : 0;
        if (sub === 1) {
          emit(true);
          reset();
        } else if (sub === 2) {
          address = r.u64();
        }
        // define_file (DWARF 2-4) and discriminators do not change what we report.
        r.at = next;
        break;
      }
      case 1:
        emit(false);
        break;
      case 2:
        address += r.uleb() * BigInt(minInstructionLength);
        break;
      case 3:
        line += Number(r.sleb());
        break;
      case 4:
        file = r.ulebNumber();
        break;
      case 8:
        address += BigInt(Math.floor((255 - opcodeBase) / lineRange) * minInstructionLength);
        break;
      case 9:
        address += BigInt(r.u16());
        break;
      default:
        // set_column, negate_stmt and the others: skip their arguments.
        for (let i = 0; i < (argCounts[op] ?? 0); i++) r.uleb();
    }
  }
  return unitEnd;
}

/** kvmtest's own headers (kvmtest.h, kvmtest/*.h) and the system's, whose inline helpers a test calls. */
function isLibraryHeader(file: string): boolean {
  return file.endsWith('.h') && (file.startsWith('/usr/') || /(^|\/)kvmtest(\/[^/]+)?\.h$/.test(file));
}

/** The source line of addresses in one ELF file; built on the first lookup. */
export class LineTable {
  private rows: Row[] | undefined;

  constructor(private readonly elf: ElfFile) {}

  /**
   * Where `address` comes from, or undefined when the file has no line for
   * it (or no line table). `functionStart` bounds the search for the caller
   * of a library header's inlined code.
   */
  lookup(address: bigint, functionStart = address): SourceLine | undefined {
    const rows = (this.rows ??= this.read());
    const best = lastAtOrBelow(rows, address, (row) => row.address);
    // Rows at the same address: the last one describes the code there.
    const row = rows[best];
    if (!row || row.end || row.line === 0 || row.file === '') return undefined;
    if (isLibraryHeader(row.file)) {
      for (let i = best - 1; i >= 0 && rows[i]!.address >= functionStart && !rows[i]!.end; i--) {
        const caller = rows[i]!;
        if (caller.line !== 0 && caller.file !== '' && !isLibraryHeader(caller.file)) return { file: caller.file, line: caller.line };
      }
    }
    return { file: row.file, line: row.line };
  }

  private read(): Row[] {
    const rows: Row[] = [];
    try {
      const section = sectionBytes(this.elf, findSection(this.elf, '.debug_line'));
      if (!section) return rows;
      const strings = {
        line: sectionBytes(this.elf, findSection(this.elf, '.debug_line_str')),
        str: sectionBytes(this.elf, findSection(this.elf, '.debug_str')),
      };
      const r = new Reader(section);
      while (r.at < section.length) r.at = readUnit(r, strings, rows);
    } catch {
      // A table this reader cannot follow (a malformed file, a form it does
      // not know, a bad zlib stream) gives no lines rather than wrong ones.
      rows.length = 0;
    }
    // Sequences may come in any order: sort by address, an end row before a start at the same address.
    rows.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.end === b.end ? 0 : a.end ? -1 : 1));
    return rows;
  }
}
