// The pure parts of mirror mode: reading /proc/PID/maps and naming an
// address by the file it is in. No /dev/kvm needed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeProcessAddress, mappingAt, neverMirrored, parseProcessMaps, processMappingIn, readProcessMaps } from '../../src/mirror/process-maps.js';

const MAPS = `00400000-00b6f000 r--p 00000000 fe:00 262293                             /usr/bin/node
41058000-4131d000 rw-p 00000000 00:00 0                                  [heap]
7f7b2e257000-7f7b2e258000 r--p 00000000 fe:00 2147905                    /tmp/a dir/lib.so
7f7b2e258000-7f7b2e259000 r-xp 00001000 fe:00 2147905                    /tmp/a dir/lib.so
7f7b2e260000-7f7b2e270000 ---p 00000000 00:00 0 
7f7b2e270000-7f7b2e271000 rw-s 00000000 00:0e 1068                       anon_inode:kvm-vcpu:0
7f7b2e418000-7f7b2e41c000 r--p 00000000 00:00 0                          [vvar]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
`;

describe('mirror mode: /proc/self/maps', () => {
  const maps = parseProcessMaps(MAPS);

  test('every line, with its range, permissions, offset and path (spaces kept, none for anonymous memory)', () => {
    assert.equal(maps.length, 8);
    assert.deepEqual(maps[3], { start: 0x7f7b2e258000n, end: 0x7f7b2e259000n, read: true, write: false, execute: true, offset: 0x1000n, path: '/tmp/a dir/lib.so' });
    assert.deepEqual(maps[4], { start: 0x7f7b2e260000n, end: 0x7f7b2e270000n, read: false, write: false, execute: false, offset: 0n, path: '' });
    assert.equal(maps[7]!.start, 0xffffffffff600000n, 'addresses past 2^53 stay exact');
  });

  test('the lookup by address, and what is never shown to a guest', () => {
    assert.equal(mappingAt(maps, 0x41058000n)?.path, '[heap]');
    assert.equal(mappingAt(maps, 0x4131d000n), undefined);
    assert.deepEqual(maps.filter(neverMirrored).map((m) => m.path), ['anon_inode:kvm-vcpu:0', '[vvar]', '[vsyscall]']);
    assert.equal(processMappingIn(maps, 0x30000000n, 0x31000000n), undefined);
    assert.equal(processMappingIn(maps, 0x41000000n, 0x41100000n)?.path, '[heap]');
  });

  test('an address named by its file and offset from the file\'s load base', () => {
    assert.equal(describeProcessAddress(maps, 0x7f7b2e258123n), 'lib.so+0x1123 (0x7f7b2e258123)');
    assert.equal(describeProcessAddress(maps, 0x41058010n), '0x41058010 in [heap]');
    assert.equal(describeProcessAddress(maps, 0x1000n), undefined);
  });

  test('this process\'s own maps parse, and show its executable', () => {
    const own = readProcessMaps();
    assert.ok(own.length > 10);
    assert.ok(own.some((m) => m.path === process.execPath || m.path.endsWith('/node')));
    assert.ok(own.every((m, i) => i === 0 || m.start >= own[i - 1]!.end), 'sorted, disjoint');
  });
});
