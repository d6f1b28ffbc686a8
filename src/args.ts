// Command-line parsing from a table of options: long and short names,
// aliases, values given as `--name value`, `--name=value`, `-n value` or
// `-nvalue`, an optional value where the option allows one, `--` to end the
// options, and for a mistake the nearest known option ("did you mean
// --filter?"). The same table renders the command's help, so the two never
// disagree.

/** A mistake in the command line: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {}

export interface OptionSpec<T> {
  /** "--filter". */
  long: string;
  /** "-f". */
  short?: string;
  /** Other names that mean the same ("--nocapture" for --show-output). */
  aliases?: readonly string[];
  /** The value's name in the help ("PATTERN"); absent for a flag. */
  value?: string;
  /** The value may be left out, when the next argument does not look like one (--bail [N]). */
  optionalValue?: RegExp;
  help: string;
  apply(options: T, value: string | undefined, name: string): void;
}

/**
 * Parses `args` against `specs` into `options`; every argument that is not
 * an option goes to `positional`, in order. Throws UsageError.
 */
export function parseOptions<T>(args: readonly string[], specs: readonly OptionSpec<T>[], options: T, positional: (arg: string) => void): void {
  const byName = new Map<string, OptionSpec<T>>();
  for (const spec of specs) {
    for (const name of [spec.long, ...(spec.short ? [spec.short] : []), ...(spec.aliases ?? [])]) byName.set(name, spec);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      args.slice(i + 1).forEach(positional);
      return;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq >= 0 ? arg.slice(0, eq) : arg;
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    } else {
      // -j4 is -j 4.
      name = arg.slice(0, 2);
      inline = arg.length > 2 ? arg.slice(2) : undefined;
    }
    const spec = byName.get(name);
    if (!spec) throw new UsageError(`unknown option ${name}${suggestion(name, [...byName.keys()])}`);
    if (spec.value === undefined) {
      if (inline !== undefined) throw new UsageError(`${name} takes no value`);
      spec.apply(options, undefined, name);
      continue;
    }
    if (inline !== undefined) {
      spec.apply(options, inline, name);
      continue;
    }
    const next = args[i + 1];
    if (spec.optionalValue) {
      if (next !== undefined && spec.optionalValue.test(next)) {
        i++;
        spec.apply(options, next, name);
      } else {
        spec.apply(options, undefined, name);
      }
      continue;
    }
    if (next === undefined || next === '--' || (next.startsWith('--') && byName.has(next.split('=')[0]!))) {
      throw new UsageError(`${name} needs a value (${spec.value})`);
    }
    i++;
    spec.apply(options, next, name);
  }
}

/** " (did you mean --filter?)" when a known name is close to `name`, else "". */
export function suggestion(name: string, known: readonly string[]): string {
  const best = closest(name, known);
  return best ? `; did you mean ${best}?` : '';
}

/** The known word nearest to `word`, if one is near enough to be what was meant. */
export function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    // A unique-looking prefix ("--filt") is as good as a typo.
    const distance = candidate.startsWith(word) && word.length >= 3 ? 1 : editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const allowed = Math.max(1, Math.min(3, Math.floor(word.replace(/^-+/, '').length / 3)));
  return bestDistance <= allowed ? best : undefined;
}

/** Edits (insert, delete, replace, or swap two neighbours) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The options part of a command's help: one entry per option, aligned, wrapped at 80 columns. */
export function renderOptions<T>(specs: readonly OptionSpec<T>[]): string {
  const entries = specs.map((spec) => {
    const names = [spec.short, spec.long].filter(Boolean).join(', ');
    const value = spec.value === undefined ? '' : spec.optionalValue ? ` [${spec.value}]` : ` ${spec.value}`;
    const aliases = spec.aliases?.length ? ` (also ${spec.aliases.join(', ')})` : '';
    return { head: `  ${spec.short ? '' : '    '}${names}${value}`, help: `${spec.help}${aliases}` };
  });
  return entries
    .map(({ head, help }) => {
      const lines = wrap(help, HELP_WIDTH - HELP_COLUMN);
      const first = head.length + 2 > HELP_COLUMN ? `${head}\n${' '.repeat(HELP_COLUMN)}${lines[0]}` : `${head.padEnd(HELP_COLUMN)}${lines[0]}`;
      return [first, ...lines.slice(1).map((line) => `${' '.repeat(HELP_COLUMN)}${line}`)].join('\n');
    })
    .join('\n');
}

const HELP_WIDTH = 80;
const HELP_COLUMN = 30;

/** Words of `text` in lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}
