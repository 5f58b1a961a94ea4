#!/usr/bin/env node
// Runs vdpctl from the TypeScript sources through tsx (installed with the project).
// The switch image ships the esbuild bundle instead (firmware-scripts/).
import { register } from 'tsx/esm/api'
process.env.VDPCTL_MAIN = '1'
register()
await import('../agent/cli/vdpctl.ts')
