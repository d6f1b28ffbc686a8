// Why this user cannot open /dev/kvm, and what will work on this host: read
// off the device's real owner, group and mode, the groups this process has,
// and the group database, since the usual advice ("join the kvm group") is
// wrong where no such group owns the device, and useless to someone who
// already joined it.
import { readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';

/** What the advice depends on, gathered from the host (see hostAccessFacts). */
export interface AccessFacts {
  path: string;
  device: { uid: number; gid: number; mode: number };
  /** The owner's and group's names, when the databases have them. */
  ownerName?: string;
  groupName?: string;
  user: { uid: number; name?: string };
  /** The groups this process has now. */
  processGroups: readonly number[];
  /** The groups /etc/group lists the user in (takes effect at the next login). */
  listedGroups: readonly number[];
  /** Whether a group named "kvm" exists, and its gid. */
  kvmGroup?: number;
}

const GROUP_READ_WRITE = 0o060;
const OTHER_READ_WRITE = 0o006;

/** The advice, as one message that starts with what is wrong. */
export function explainNoAccess(facts: AccessFacts): string {
  const { path, device, user } = facts;
  const mode = (device.mode & 0o777).toString(8).padStart(4, '0');
  const owner = facts.ownerName ?? String(device.uid);
  const group = facts.groupName ?? String(device.gid);
  const what = `no permission to open ${path} read-write: it belongs to ${owner}:${group} with mode ${mode}`;
  const me = user.name ?? `uid ${user.uid}`;
  const groupCanUse = (device.mode & GROUP_READ_WRITE) === GROUP_READ_WRITE && device.gid !== 0;
  if (groupCanUse && facts.processGroups.includes(device.gid)) {
    return `${what}, and ${me} is in group ${group}, so something else denies access (an ACL, or a security module): ` +
      `check \`getfacl ${path}\` and the system log`;
  }
  if (groupCanUse && facts.listedGroups.includes(device.gid)) {
    return `${what}. ${me} is in group ${group} now, but this session started before that: log out and in again ` +
      `(or start a shell in the group with \`newgrp ${group}\`)`;
  }
  if (groupCanUse) {
    return `${what}: join its group with \`sudo usermod -aG ${group} ${user.name ?? '$USER'}\`, then log out and in again`;
  }
  if ((device.mode & OTHER_READ_WRITE) === OTHER_READ_WRITE) {
    return `${what}, which should let anyone open it: something else denies access (an ACL, or a security module)`;
  }
  // Only the owner can open it: no group to join.
  const grant = facts.kvmGroup !== undefined
    ? `give the device to the existing kvm group: \`sudo chgrp kvm ${path} && sudo chmod 660 ${path}\`, ` +
      `then \`sudo usermod -aG kvm ${user.name ?? '$USER'}\` and log in again`
    : `create a kvm group and give it the device: \`sudo groupadd --system kvm && sudo chgrp kvm ${path} && ` +
      `sudo chmod 660 ${path} && sudo usermod -aG kvm ${user.name ?? '$USER'}\`, then log in again`;
  return `${what}, so only ${owner} can open it (there is no group to join). Run kvmtest as ${owner}, or ${grant} ` +
    '(a udev rule such as KERNEL=="kvm", GROUP="kvm", MODE="0660" keeps it across reboots)';
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function readGroups(): GroupEntry[] {
  try {
    return readFileSync('/etc/group', 'utf8')
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => {
        const [name = '', , gid = '', members = ''] = line.split(':');
        return { name, gid: Number(gid), members: members ? members.split(',') : [] };
      });
  } catch {
    return [];
  }
}

function userName(uid: number): string | undefined {
  try {
    return userInfo().uid === uid ? userInfo().username : undefined;
  } catch {
    return undefined; // no passwd entry
  }
}

function ownerNameOf(uid: number): string | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && Number(id) === uid) return name;
    }
  } catch {
    // no passwd database
  }
  return undefined;
}

/** The facts of this host and this process, for `path` (which must exist). */
export function hostAccessFacts(path: string): AccessFacts {
  const stats = statSync(path);
  const groups = readGroups();
  const uid = process.getuid?.() ?? -1;
  const name = userName(uid);
  const processGroups = [...(process.getgroups?.() ?? []), ...(process.getegid ? [process.getegid()] : [])];
  const listedGroups = groups.filter((g) => name !== undefined && g.members.includes(name)).map((g) => g.gid);
  return {
    path,
    device: { uid: stats.uid, gid: stats.gid, mode: stats.mode },
    ownerName: ownerNameOf(stats.uid),
    groupName: groups.find((g) => g.gid === stats.gid)?.name,
    user: { uid, name },
    processGroups,
    listedGroups,
    kvmGroup: groups.find((g) => g.name === 'kvm')?.gid,
  };
}
