#!/usr/bin/env node
// Builds the shipped artefacts with esbuild:
//   dist/vdp-agent/vdp-agent.mjs   the agent, one file, with af_packet.node and better_sqlite3.node beside it
//   dist/vdp-agent/vdpctl.mjs      the CLI
//   dist/vdp-edge/vdp-edge.mjs     the fleet edge, one file, with better_sqlite3.node beside it
// Each folder runs on its own (no node_modules): `node dist/vdp-agent/vdp-agent.mjs --help`,
// `node dist/vdp-edge/vdp-edge.mjs --help`.
// Usage: node scripts/build.mjs [--arch x64|arm64] [--only agent|edge] [--out DIR] [--analyze]
//   --out DIR puts the folders in DIR instead of dist/ (tests build into a temporary directory).
import { build } from 'esbuild'
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const arg = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined)
const arch = arg('--arch') ?? process.arch
const only = arg('--only')
if (only !== undefined && only !== 'agent' && only !== 'edge') throw new Error(`Cannot build --only "${only}": expected agent or edge`)
const dist = arg('--out') ?? 'dist'
const version = JSON.parse(readFileSync('package.json', 'utf8')).version

// CommonJS dependencies inside an ESM bundle need a real `require`.
const banner = {
  js: "import { createRequire as __vdpCreateRequire } from 'node:module'; const require = __vdpCreateRequire(import.meta.url);",
}
// better-sqlite3 finds its addon through the `bindings` package, which searches build/…
// folders above the calling file (and needs __filename, absent in ESM). In a bundle the addon
// sits beside the .mjs file: load it from there, through the banner's `require`.
const nativeBesideBundle = {
  name: 'native-beside-bundle',
  setup(b) {
    b.onResolve({ filter: /^bindings$/ }, () => ({ path: 'bindings', namespace: 'native-beside-bundle' }))
    b.onLoad({ filter: /.*/, namespace: 'native-beside-bundle' }, () => ({
      contents: "module.exports = (name) => { const load = require; return load('./' + name) }",
      loader: 'js',
    }))
  },
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
  plugins: [nativeBesideBundle],
  // Optional native accelerators with pure-JS fallbacks; never on a switch.
  external: ['cbor-extract', 'bufferutil', 'utf-8-validate'],
  logLevel: 'warning',
  outExtension: { '.js': '.mjs' },
}

const sqliteAddon = join(dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')), 'build/Release/better_sqlite3.node')
const kib = (path) => `${(statSync(path).size / 1024).toFixed(0)} KiB`
const metafiles = []

if (only !== 'edge') {
  const out = join(dist, 'vdp-agent')
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const agent = await build({ ...common, entryPoints: { 'vdp-agent': 'agent/main.ts' }, outdir: out, define: { 'process.env.VDP_AGENT_MAIN': '"1"' }, metafile: true })
  metafiles.push(agent.metafile)
  await build({ ...common, entryPoints: { vdpctl: 'agent/cli/vdpctl.ts' }, outdir: out, define: { 'process.env.VDPCTL_MAIN': '"1"' } })

  const addon = [`prebuilds/linux-${arch}/af_packet.node`, 'build/Release/af_packet.node'].find((p) => existsSync(p))
  if (!addon) throw new Error(`Cannot build: no af_packet.node for linux-${arch} (run npm ci or firmware-scripts/build-addon.sh)`)
  copyFileSync(addon, join(out, 'af_packet.node'))
  if (arch === process.arch) {
    copyFileSync(sqliteAddon, join(out, 'better_sqlite3.node'))
  } else {
    console.warn(`note: better_sqlite3.node for ${arch} is not cross-built here; the MQTT outbox needs it on the switch`)
  }
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module', private: true }) + '\n')
  console.log(`${out}/vdp-agent.mjs ${kib(join(out, 'vdp-agent.mjs'))}, vdpctl.mjs ${kib(join(out, 'vdpctl.mjs'))}, af_packet.node ${kib(join(out, 'af_packet.node'))} (${arch})`)
}

if (only !== 'agent') {
  const out = join(dist, 'vdp-edge')
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const edge = await build({
    ...common,
    entryPoints: { 'vdp-edge': 'edge/main.ts' },
    outdir: out,
    define: { 'process.env.VDP_EDGE_VERSION': JSON.stringify(version) },
    metafile: true,
  })
  metafiles.push(edge.metafile)
  if (arch === process.arch) {
    copyFileSync(sqliteAddon, join(out, 'better_sqlite3.node'))
  } else {
    console.warn(`note: better_sqlite3.node for ${arch} is not cross-built here; vdp-edge needs it for its store`)
  }
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module', private: true }) + '\n')
  console.log(`${out}/vdp-edge.mjs ${kib(join(out, 'vdp-edge.mjs'))}${arch === process.arch ? `, better_sqlite3.node ${kib(join(out, 'better_sqlite3.node'))}` : ''} (${arch})`)
}

if (process.argv.includes('--analyze')) {
  const { analyzeMetafile } = await import('esbuild')
  for (const m of metafiles) console.log(await analyzeMetafile(m))
}
