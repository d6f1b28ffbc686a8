// The advice for a user who cannot open /dev/kvm, for each kind of host:
// pure computation over the device's owner, group and mode and the user's
// groups, so every case can be checked here whatever this host looks like.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type AccessFacts, explainNoAccess } from '../../src/kvm/permission.js';

const KVM_GID = 108;
const base: AccessFacts = {
  path: '/dev/kvm',
  device: { uid: 0, gid: KVM_GID, mode: 0o20660 },
  ownerName: 'root',
  groupName: 'kvm',
  user: { uid: 1000, name: 'ada' },
  processGroups: [1000],
  listedGroups: [1000],
  kvmGroup: KVM_GID,
};

describe('explainNoAccess', () => {
  test('a device its group may use, and a user outside that group: join it', () => {
    assert.equal(
      explainNoAccess(base),
      'no permission to open /dev/kvm read-write: it belongs to root:kvm with mode 0660: join its group with ' +
        '`sudo usermod -aG kvm ada`, then log out and in again',
    );
  });

  test('a user who joined the group after this session started: log in again', () => {
    const message = explainNoAccess({ ...base, listedGroups: [1000, KVM_GID] });
    assert.match(message, /ada is in group kvm now, but this session started before that: log out and in again \(or start a shell in the group with `newgrp kvm`\)$/);
  });

  test('a user already in the group: something else denies access', () => {
    const message = explainNoAccess({ ...base, processGroups: [1000, KVM_GID], listedGroups: [1000, KVM_GID] });
    assert.match(message, /and ada is in group kvm, so something else denies access \(an ACL, or a security module\)/);
    assert.doesNotMatch(message, /usermod/);
  });

  test('root:root 0600 and no kvm group: joining a group cannot work, so say what can', () => {
    const message = explainNoAccess({ ...base, device: { uid: 0, gid: 0, mode: 0o20600 }, groupName: 'root', kvmGroup: undefined });
    assert.match(message, /^no permission to open \/dev\/kvm read-write: it belongs to root:root with mode 0600, so only root can open it \(there is no group to join\)/);
    assert.match(message, /Run kvmtest as root, or create a kvm group and give it the device: `sudo groupadd --system kvm && sudo chgrp kvm \/dev\/kvm && sudo chmod 660 \/dev\/kvm && sudo usermod -aG kvm ada`/);
    assert.doesNotMatch(message, /join its group/);
  });

  test('root:root 0600 where a kvm group exists: give the device to it', () => {
    const message = explainNoAccess({ ...base, device: { uid: 0, gid: 0, mode: 0o20600 }, groupName: 'root' });
    assert.match(message, /give the device to the existing kvm group: `sudo chgrp kvm \/dev\/kvm && sudo chmod 660 \/dev\/kvm`/);
  });

  test('a group that may only read: the group cannot help', () => {
    const message = explainNoAccess({ ...base, device: { uid: 0, gid: KVM_GID, mode: 0o20640 } });
    assert.match(message, /mode 0640, so only root can open it/);
  });

  test('numbers stand in for names the databases do not have', () => {
    const message = explainNoAccess({ ...base, ownerName: undefined, groupName: undefined, user: { uid: 4242 } });
    assert.match(message, /it belongs to 0:108 with mode 0660: join its group with `sudo usermod -aG 108 \$USER`/);
  });
});
