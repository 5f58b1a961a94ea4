#!/usr/bin/env node
// Builds the shipped artefacts with esbuild:
//   dist/vdp-agent/vdp-agent.mjs   the agent, one file, with af_packet.node and better_sqlite3.node beside it
//   dist/vdp-agent/vdpctl.mjs      the CLI
// The folder runs on its own (no node_modules): `node dist/vdp-agent/vdp-agent.mjs --help`.
// Usage: node scripts/build.mjs [--arch x64|arm64]
import { build } from 'esbuild'
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const arch = process.argv.includes('--arch') ? process.argv[process.argv.indexOf('--arch') + 1] : process.arch
const out = 'dist/vdp-agent'
rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })

// CommonJS dependencies inside an ESM bundle need a real `require`.
const banner = {
  js: "import { createRequire as __vdpCreateRequire } from 'node:module'; const require = __vdpCreateRequire(import.meta.url);",
}
const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  banner,
  // Optional native accelerators with pure-JS fallbacks; never on a switch.
  external: ['cbor-extract', 'bufferutil', 'utf-8-validate'],
  logLevel: 'warning',
  outExtension: { '.js': '.mjs' },
}
const agent = await build({ ...common, entryPoints: { 'vdp-agent': 'agent/main.ts' }, outdir: out, define: { 'process.env.VDP_AGENT_MAIN': '"1"' }, metafile: true })
await build({ ...common, entryPoints: { vdpctl: 'agent/cli/vdpctl.ts' }, outdir: out, define: { 'process.env.VDPCTL_MAIN': '"1"' } })

const addon = [`prebuilds/linux-${arch}/af_packet.node`, 'build/Release/af_packet.node'].find((p) => existsSync(p))
if (!addon) throw new Error(`Cannot build: no af_packet.node for linux-${arch} (run npm ci or firmware-scripts/build-addon.sh)`)
copyFileSync(addon, join(out, 'af_packet.node'))
if (arch === process.arch) {
  const sqlite = join(dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')), 'build/Release/better_sqlite3.node')
  copyFileSync(sqlite, join(out, 'better_sqlite3.node'))
} else {
  console.warn(`note: better_sqlite3.node for ${arch} is not cross-built here; the MQTT outbox needs it on the switch`)
}
writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module', private: true }) + '\n')
const size = (f) => statSync(join(out, f)).size
console.log(`${out}/vdp-agent.mjs ${(size('vdp-agent.mjs') / 1024).toFixed(0)} KiB, vdpctl.mjs ${(size('vdpctl.mjs') / 1024).toFixed(0)} KiB, af_packet.node ${(size('af_packet.node') / 1024).toFixed(0)} KiB (${arch})`)
if (process.argv.includes('--analyze')) {
  const { analyzeMetafile } = await import('esbuild')
  console.log(await analyzeMetafile(agent.metafile))
}
