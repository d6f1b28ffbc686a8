// A guest image: the bytes to place at guest-virtual addresses, where to
// start, and the symbols that name addresses. Built from an ELF executable
// or from a flat binary and its load address.
import { type ElfFile, parseElf, PF_W, PF_X, PT_LOAD } from './elf.js';
import { BinaryFileError, readBinaryFile } from './read-binary.js';
import { LineTable } from './line-table.js';
import { SymbolTable } from './symbols.js';

export interface ImageSegment {
  /** Guest-virtual start address. */
  vaddr: bigint;
  /** The physical load address the linker chose (LMA), if it differs from vaddr. */
  lma?: bigint;
  /** Initialized bytes; the rest of memSize is zero (.bss). */
  data: Uint8Array;
  memSize: bigint;
  writable: boolean;
  executable: boolean;
}

export interface GuestImage {
  /** What the image came from, for messages. */
  source: string;
  segments: ImageSegment[];
  /** Default entry point. */
  entry: bigint;
  symbols: SymbolTable;
  /** The parsed ELF, when the image came from one. */
  elf?: ElfFile;
  /** Mirror mode: the shared object, as /proc/self/maps names it, whose functions run (the image then has no segments). */
  mirroredFile?: string;
}

export type ImageSpec =
  | { elf: string }
  | { elfBytes: Uint8Array; name?: string }
  | { flat: Uint8Array; loadAddress: bigint | number };

export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

/** Loads an image from a spec; throws ImageError or ElfError with a clear message. */
export function loadImage(spec: ImageSpec): GuestImage {
  if ('elf' in spec) {
    let bytes: Uint8Array;
    try {
      bytes = readBinaryFile(spec.elf, `ELF image ${spec.elf}`);
    } catch (err) {
      if (err instanceof BinaryFileError) throw new ImageError(err.message);
      throw err;
    }
    return imageFromElf(parseElf(bytes, spec.elf));
  }
  if ('elfBytes' in spec) return imageFromElf(parseElf(spec.elfBytes, spec.name ?? '<ELF bytes>'));
  if ('flat' in spec) return flatImage(spec.flat, spec.loadAddress);
  throw new ImageError('image: give { elf: path }, { elfBytes }, or { flat: bytes, loadAddress }');
}

export function imageFromElf(elf: ElfFile): GuestImage {
  const segments = elf.segments
    .filter((ph) => ph.type === PT_LOAD && ph.memsz > 0n)
    .map((ph): ImageSegment => ({
      vaddr: ph.vaddr,
      lma: ph.paddr !== ph.vaddr ? ph.paddr : undefined,
      data: elf.bytes.subarray(ph.offset, ph.offset + ph.filesz),
      memSize: ph.memsz,
      writable: (ph.flags & PF_W) !== 0,
      executable: (ph.flags & PF_X) !== 0,
    }));
  if (segments.length === 0) throw new ImageError(`${elf.file}: no loadable (PT_LOAD) segments`);
  return { source: elf.file, segments, entry: elf.entry, symbols: new SymbolTable(elf.symbols, new LineTable(elf)), elf };
}

export function flatImage(bytes: Uint8Array, loadAddress: bigint | number): GuestImage {
  const vaddr = BigInt(loadAddress);
  if (bytes.length === 0) throw new ImageError('flat image is empty');
  return {
    source: `flat image at 0x${vaddr.toString(16)}`,
    // A flat binary carries no permissions: its code and data share pages.
    segments: [{ vaddr, data: bytes, memSize: BigInt(bytes.length), writable: true, executable: true }],
    entry: vaddr,
    symbols: new SymbolTable([]),
  };
}

/** Resolves an entry given as a symbol name or an address. */
export function resolveEntry(image: GuestImage, entry: string | bigint | number | undefined): bigint {
  if (entry === undefined) return image.entry;
  if (typeof entry !== 'string') return BigInt(entry);
  if (!image.elf) {
    throw new ImageError(`entry "${entry}" is a symbol, but a flat image has no symbols; give an address instead`);
  }
  const symbol = image.symbols.byName(entry);
  if (!symbol) {
    throw new ImageError(`entry symbol "${entry}" is not defined in ${image.source}${image.symbols.size === 0 ? ' (it has no symbol table: was it stripped?)' : ''}`);
  }
  return symbol.value;
}
