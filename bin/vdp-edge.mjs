#!/usr/bin/env node
// vdp-edge entry point. Runs the TypeScript sources through tsx (installed with the project).
// A deployment runs the esbuild bundle instead: `npm run build`, dist/vdp-edge/vdp-edge.mjs.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../edge/main.ts')
process.exit(await main(process.argv.slice(2)))
