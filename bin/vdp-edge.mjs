#!/usr/bin/env node
// vdp-edge entry point. Runs the TypeScript sources through tsx for now (no build step yet);
// a bundled build (esbuild) can replace the import below without changing the CLI.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../edge/main.ts')
process.exit(await main(process.argv.slice(2)))
