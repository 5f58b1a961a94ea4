#!/usr/bin/env node
// npm "install" lifecycle step for the AF_PACKET addon: use the committed prebuilt binary
// for this platform and architecture when it loads, otherwise build native/af_packet.c from
// source with node-gyp. `npm ci --build-from-source` (or VDP_AF_PACKET_BUILD_FROM_SOURCE=1)
// always builds. Other platforms get no addon: the agent then runs only on memory links.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const target = `${process.platform}-${process.arch}`
const prebuilt = join(root, 'prebuilds', target, 'af_packet.node')
const force =
  process.env.npm_config_build_from_source === 'true' ||
  ['1', 'true'].includes(process.env.VDP_AF_PACKET_BUILD_FROM_SOURCE ?? '')

if (process.platform !== 'linux') {
  console.log(`af_packet: skipped, AF_PACKET needs Linux (this is ${process.platform})`)
  process.exit(0)
}

if (!force && existsSync(prebuilt)) {
  try {
    process.dlopen({ exports: {} }, prebuilt)
    console.log(`af_packet: using prebuilt ${join('prebuilds', target, 'af_packet.node')}`)
    process.exit(0)
  } catch (e) {
    console.warn(`af_packet: prebuilt ${target} does not load (${e.message}); building from source`)
  }
}

// The project's own node-gyp (a devDependency) first, then the one bundled with npm.
const candidates = [join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), process.env.npm_config_node_gyp]
const gyp = candidates.find((p) => p && existsSync(p))
if (!gyp) {
  console.error('Cannot build the AF_PACKET addon: node-gyp not found; install dev dependencies or use a prebuilt')
  process.exit(1)
}
// Headers of the running Node (<prefix>/include/node, as Debian and the official tarballs
// install them) avoid a download; npm passes its own nodedir setting through the environment.
const args = [gyp, 'rebuild']
const prefix = join(dirname(process.execPath), '..')
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`)
}
const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
if (run.status !== 0) {
  console.error(`Cannot build the AF_PACKET addon: node-gyp exited with ${run.status ?? run.signal}; needs python3, make and a C compiler`)
  process.exit(1)
}
console.log('af_packet: built build/Release/af_packet.node')
