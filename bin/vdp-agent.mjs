#!/usr/bin/env node
// Runs vdp-agent from the TypeScript sources through tsx (installed with the project).
// A switch runs the esbuild bundle instead (`npm run build`, firmware-scripts/).
import { register } from 'tsx/esm/api'
process.env.VDP_AGENT_MAIN = '1'
register()
await import('../agent/main.ts')
