// Command-line parsing from an option table (src/args.ts): values in every
// spelling, optional values, --, and the nearest-name suggestion. Pure: no
// /dev/kvm, no subprocess.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closest, editDistance, type OptionSpec, parseOptions, renderOptions, UsageError } from '../src/args.js';

interface Seen {
  filters: string[];
  jobs?: string;
  quiet: boolean;
  bail?: string | 'default';
  positional: string[];
}

const SPECS: readonly OptionSpec<Seen>[] = [
  { long: '--filter', short: '-f', value: 'PATTERN', help: 'a filter', apply: (o, v) => o.filters.push(v!) },
  { long: '--jobs', short: '-j', aliases: ['--test-threads'], value: 'N', help: 'workers', apply: (o, v) => (o.jobs = v) },
  { long: '--quiet', short: '-q', help: 'terse', apply: (o) => (o.quiet = true) },
  { long: '--bail', value: 'N', optionalValue: /^\d+$/, help: 'stop early', apply: (o, v) => (o.bail = v ?? 'default') },
];

function parse(...args: string[]): Seen {
  const seen: Seen = { filters: [], quiet: false, positional: [] };
  parseOptions(args, SPECS, seen, (arg) => seen.positional.push(arg));
  return seen;
}

describe('parseOptions', () => {
  test('values as --name value, --name=value, -n value and -nvalue; aliases; positionals in order', () => {
    const seen = parse('a.elf', '--filter', 'x', '--filter=y', '-f', 'z', '-fw', '--test-threads', '3', 'b.elf');
    assert.deepEqual(seen.filters, ['x', 'y', 'z', 'w']);
    assert.equal(seen.jobs, '3');
    assert.deepEqual(seen.positional, ['a.elf', 'b.elf']);
  });

  test('an optional value is taken only when it looks like one', () => {
    assert.equal(parse('--bail', '3', 'a.elf').bail, '3');
    assert.equal(parse('--bail', 'a.elf').bail, 'default');
    assert.deepEqual(parse('--bail', 'a.elf').positional, ['a.elf']);
    assert.equal(parse('--bail=5').bail, '5');
  });

  test('-- ends the options', () => {
    assert.deepEqual(parse('-q', '--', '--filter', '-x').positional, ['--filter', '-x']);
  });

  test('mistakes are UsageErrors that say what is wrong', () => {
    assert.throws(() => parse('--filter'), (e: unknown) => e instanceof UsageError && e.message === '--filter needs a value (PATTERN)');
    assert.throws(() => parse('--filter', '--quiet'), /--filter needs a value/);
    assert.throws(() => parse('--quiet=yes'), /--quiet takes no value/);
    assert.throws(() => parse('--fliter', 'x'), /unknown option --fliter; did you mean --filter\?/);
    assert.throws(() => parse('-x'), /^Error: unknown option -x$|unknown option -x/);
    assert.doesNotThrow(() => parse('--filter', '-x'), 'a value may start with one dash');
  });
});

describe('closest and editDistance', () => {
  test('counts a swap of neighbours as one edit', () => {
    assert.equal(editDistance('rnu', 'run'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
  });

  test('suggests near names and prefixes, never far ones', () => {
    assert.equal(closest('--fitler', ['--filter', '--list']), '--filter');
    assert.equal(closest('--incl', ['--include-ignored', '--list']), '--include-ignored');
    assert.equal(closest('--frobnicate', ['--filter', '--list']), undefined);
    assert.equal(closest('jsn', ['pretty', 'tap', 'json', 'junit']), 'json');
  });
});

describe('renderOptions', () => {
  test('one entry per option, short names first, wrapped within 80 columns', () => {
    const text = renderOptions(SPECS);
    assert.match(text, /^ {2}-f, --filter PATTERN +a filter$/m);
    assert.match(text, /^ {6}--bail \[N\] +stop early$/m);
    assert.match(text, /^ {2}-j, --jobs N +workers \(also --test-threads\)$/m);
    for (const line of text.split('\n')) assert.ok(line.length <= 80, line);
  });
});
