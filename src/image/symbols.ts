// Symbol lookup both ways: a name's address (entry points), and the function
// an address falls in (fault reports say "my_test+0x1c").
import { displayPath } from '../paths.js';
import type { ElfSymbol } from './elf.js';
import type { LineTable } from './line-table.js';
import { lastAtOrBelow } from './sorted.js';

export class SymbolTable {
  // The address index is built on first use: a test binary has a symbol
  // per test, and most runs never look an address up.
  private byAddressCache: ElfSymbol[] | undefined;

  constructor(
    private readonly symbols: readonly ElfSymbol[],
    /** The image's source lines, for describe(); none for images without debug information. */
    private readonly lines?: LineTable,
  ) {}

  private get byAddress(): ElfSymbol[] {
    return (this.byAddressCache ??= this.symbols
      .filter((s) => s.kind !== 'other' || s.size > 0n)
      .sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0)));
  }

  get size(): number {
    return this.symbols.length;
  }

  /** The first symbol with this name (a scan: names are looked up once per image, for its entry). */
  byName(name: string): ElfSymbol | undefined {
    return this.symbols.find((s) => s.name === name);
  }

  /** The names of the function symbols, sorted (for messages that list what there is). */
  functionNames(): string[] {
    return [...new Set(this.symbols.filter((s) => s.kind === 'func').map((s) => s.name))].sort();
  }

  /** The symbol containing `address` (or the nearest one below it, if sizeless). */
  lookup(address: bigint): { symbol: ElfSymbol; offset: bigint } | undefined {
    const byAddress = this.byAddress;
    const best = lastAtOrBelow(byAddress, address, (s) => s.value);
    if (best < 0) return undefined;
    // Prefer a function among symbols at the same address.
    let symbol = byAddress[best]!;
    for (let i = best; i >= 0 && byAddress[i]!.value === symbol.value; i--) {
      if (byAddress[i]!.kind === 'func') symbol = byAddress[i]!;
    }
    const offset = address - symbol.value;
    if (symbol.size > 0n && offset >= symbol.size) return undefined;
    return { symbol, offset };
  }

  /**
   * "name+0x1c at file.c:12 (0x200290)" (the source line where the image
   * has one), "name+0x1c (0x200290)", or the bare hex address when no
   * symbol covers it.
   */
  describe(address: bigint): string {
    const hit = this.lookup(address);
    const hex = `0x${address.toString(16)}`;
    if (!hit) return hex;
    const source = this.lines?.lookup(address, hit.symbol.value);
    const at = source ? ` at ${displayPath(source.file)}:${source.line}` : '';
    return `${hit.symbol.name}${hit.offset === 0n ? '' : `+0x${hit.offset.toString(16)}`}${at} (${hex})`;
  }
}
