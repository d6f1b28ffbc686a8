// `kvmtest run --list`: the selected tests, as cargo prints them (`name: test`
// lines, then a count) or as one JSON document for machines.
import type { TestCase } from '../runner/types.js';
import { write, writeAndFlush, type ReportOutput } from './output.js';

export const LIST_FORMATS = ['pretty', 'json'] as const;
export type ListFormat = (typeof LIST_FORMATS)[number];

/** One listed test in the JSON list. */
export interface JsonListedTest {
  name: string;
  binary: string;
  file: string;
  line: number;
  ignored: boolean;
}

/** The JSON list: { tests, count, filteredOut }. */
export interface JsonTestList {
  tests: JsonListedTest[];
  count: number;
  /** Tests of the binaries that filters, --skip or --shard left out. */
  filteredOut: number;
}

export async function writeTestList(out: ReportOutput, tests: readonly TestCase[], format: ListFormat, filteredOut: number): Promise<void> {
  if (format === 'json') {
    await write(out, '{\n  "tests": [');
    for (let i = 0; i < tests.length; i++) {
      const t = tests[i]!;
      const entry: JsonListedTest = { name: t.name, binary: t.binary, file: t.file, line: t.line, ignored: t.ignore };
      await write(out, `${i > 0 ? ',' : ''}\n    ${JSON.stringify(entry)}`);
    }
    await writeAndFlush(out, `${tests.length > 0 ? '\n  ' : ''}],\n  "count": ${tests.length},\n  "filteredOut": ${filteredOut}\n}\n`);
    return;
  }
  const binaries = [...new Set(tests.map((t) => t.binary))];
  for (const binary of binaries) {
    if (binaries.length > 1) await write(out, `${binary}:\n`);
    for (const t of tests) if (t.binary === binary) await write(out, `${t.name}: test${t.ignore ? ' (ignored)' : ''}\n`);
  }
  await writeAndFlush(out, `${tests.length > 0 ? '\n' : ''}${tests.length} test${tests.length === 1 ? '' : 's'}\n`);
}
