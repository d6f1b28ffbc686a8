// A shared object loaded into this process for mirror mode: dlopen'd
// through koffi (so its code, data and the libraries it needs are mapped
// here, at addresses of the dynamic loader's choosing), found again in
// /proc/self/maps for its load base, and its ELF symbols moved by that
// base, so that "function+0x12" names the guest's rip. Loaded once per
// path for the life of the process: it is never dlclose'd, since guests and
// host code may hold pointers into it.
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import koffi from 'koffi';
import { ElfError, type ElfSymbol, parseElf, PT_LOAD } from '../image/elf.js';
import type { GuestImage } from '../image/image.js';
import { BinaryFileError, readBinaryFile } from '../image/read-binary.js';
import { SymbolTable } from '../image/symbols.js';
import { describeProcessAddress, readProcessMaps } from './process-maps.js';

export class MirrorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MirrorError';
  }
}

export interface MirrorLibrary {
  /** The path as given, for messages. */
  path: string;
  /** The file the dynamic loader mapped. */
  realPath: string;
  /** Where the library's address 0 lies in this process. */
  base: bigint;
  /** A guest image with no segments (nothing is copied) whose symbols are the library's, at their addresses here. */
  image: GuestImage;
}

const loaded = new Map<string, MirrorLibrary>();
/** koffi's handles: kept so that the libraries stay loaded. */
const handles: unknown[] = [];

/** Loads (once) the shared object at `path` into this process. Throws MirrorError saying what is wrong. */
export function loadMirrorLibrary(path: string): MirrorLibrary {
  if (typeof path !== 'string' || path === '') throw new MirrorError(`mirror: the library path must be a non-empty string (got ${String(path)})`);
  let realPath: string;
  try {
    realPath = realpathSync(resolve(path));
  } catch (err) {
    throw new MirrorError(`mirror: cannot open the library ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message} ` +
      '(a relative path is from the current directory; build it with `gcc -shared -fPIC` or `kvmtest cc -shared`)');
  }
  const known = loaded.get(realPath);
  if (known) return known;

  let elfSymbols: ElfSymbol[];
  let firstSegmentVaddr: bigint;
  try {
    const elf = parseElf(readBinaryFile(realPath, `library ${path}`), path, { allowShared: true });
    if (elf.type !== 'shared-object') {
      throw new ElfError(path, 'an executable, not a shared object: mirror mode runs functions of a library built with -shared -fPIC ' +
        '(or `kvmtest cc -shared`); an executable built with kvmtest cc runs with elf()');
    }
    const first = elf.segments.find((s) => s.type === PT_LOAD && s.offset === 0);
    if (!first) throw new ElfError(path, 'no loadable segment starts at file offset 0');
    firstSegmentVaddr = first.vaddr & ~0xfffn;
    elfSymbols = elf.symbols;
  } catch (err) {
    if (err instanceof ElfError || err instanceof BinaryFileError) throw new MirrorError(`mirror: ${err.message}`);
    throw err;
  }
  try {
    handles.push(koffi.load(realPath));
  } catch (err) {
    throw new MirrorError(`mirror: the dynamic loader refused ${path}: ${(err as Error).message} ` +
      '(a library it needs may be missing: `ldd` lists them; it must be built for x86-64 Linux with -shared -fPIC)');
  }
  const mapping = readProcessMaps().find((m) => m.path === realPath && m.offset === 0n);
  if (!mapping) throw new MirrorError(`mirror: ${path} was loaded, but /proc/self/maps does not show it at file offset 0; cannot find its load base`);
  const base = mapping.start - firstSegmentVaddr;
  const symbols = elfSymbols
    .filter((s) => s.kind !== 'other' && s.value !== 0n)
    .map((s): ElfSymbol => ({ ...s, value: s.value + base }));
  const library: MirrorLibrary = {
    path,
    realPath,
    base,
    image: { source: path, segments: [], entry: 0n, symbols: new MirroredSymbols(symbols), mirroredFile: realPath },
  };
  loaded.set(realPath, library);
  return library;
}

/** Functions the compiler's start files put in every shared object: not worth listing. */
const CRT_FUNCTIONS = new Set(['deregister_tm_clones', 'register_tm_clones', 'frame_dummy']);

/** The address of function `name` of the library; throws MirrorError naming what the library has instead. */
export function mirrorEntry(library: MirrorLibrary, name: string): bigint {
  const symbol = library.image.symbols.byName(name);
  if (symbol?.kind === 'func') return symbol.value;
  const functions = library.image.symbols.functionNames().filter((n) => !n.startsWith('_') && !CRT_FUNCTIONS.has(n));
  const known = functions.length === 0
    ? 'it has no function symbols (stripped? keep them, or export the function)'
    : `its functions: ${functions.slice(0, 12).join(', ')}${functions.length > 12 ? `, and ${functions.length - 12} more` : ''}`;
  const what = symbol ? `"${name}" in ${library.path} is not a function` : `no function "${name}" in ${library.path}`;
  throw new MirrorError(`mirror: ${what}; ${known}`);
}

/**
 * The library's symbols, and the rest of the process by /proc/self/maps:
 * "fill+0x1c (0x7f...)" in the library, "libc.so.6+0x9a1b0 (0x7f...)"
 * elsewhere.
 */
export class MirroredSymbols extends SymbolTable {
  override describe(address: bigint): string {
    if (this.lookup(address)) return super.describe(address);
    return describeProcessAddress(readProcessMaps(), address) ?? super.describe(address);
  }
}
