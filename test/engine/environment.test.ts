// What the engine's tests need from the machine: /dev/kvm and the guest
// toolchain. Elsewhere they are skipped with a reason; under CI (CI set) a
// missing piece fails here, so that a broken CI machine cannot pass by skipping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IN_CI, KVM_PATH, kvmUnavailableReason, toolchainUnavailableReason } from '../helpers/kvm.js';

test(`${KVM_PATH} opens read-write (required when CI is set)`, (t) => {
  const reason = kvmUnavailableReason();
  if (reason === undefined) return;
  if (IN_CI) assert.fail(`CI is set but ${reason}: the KVM tests cannot run, and CI must not pass by skipping them`);
  t.skip(reason);
});

test('gcc, as, ld, objcopy, nm and readelf are on PATH (required when CI is set)', (t) => {
  const reason = toolchainUnavailableReason();
  if (reason === undefined) return;
  if (IN_CI) assert.fail(`CI is set but ${reason}`);
  t.skip(reason);
});
