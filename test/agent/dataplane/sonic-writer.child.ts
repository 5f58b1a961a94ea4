/**
 * Child process for the kill test (test/integration/dataplane-sonic.test.ts): applies batches
 * of data-plane ops through the SONiC driver forever, printing one line per batch, until the
 * parent SIGKILLs it. argv: <redis url> <ownership file> <seed>
 */
import { OwnershipRecord } from '../../../agent/dataplane/ownership.ts'
import { openSonicDriver } from '../../../agent/dataplane/sonic.ts'
import type { DataplaneOp } from '../../../agent/resources/dataplane-ops.ts'
import { portName } from '../../../shared/ids.ts'

const [url, path, seedText] = process.argv.slice(2) as [string, string, string]
let seed = Number(seedText) || 1
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed % n
}

const ownership = await OwnershipRecord.load(path, 'sonic', url)
const dp = await openSonicDriver({ redis: url, vxlanTunnel: 'vtep', ownership })
const live = new Set<number>()
for (let batch = 0; ; batch++) {
  const vid = 100 + rand(20)
  const ops: DataplaneOp[] = live.has(vid)
    ? [
        { op: 'member-del', vid, port: portName('Ethernet0') },
        { op: 'member-del', vid, port: portName('Ethernet4') },
        { op: 'vlan-del', vid, vni: 5000 + vid },
      ]
    : [
        { op: 'vlan-add', vid, vni: 5000 + vid },
        { op: 'member-add', vid, port: portName('Ethernet0') },
        { op: 'member-add', vid, port: portName('Ethernet4') },
      ]
  await dp.apply(ops)
  if (live.has(vid)) live.delete(vid)
  else live.add(vid)
  process.stdout.write(`batch ${batch}\n`)
}
