#!/usr/bin/env node
// `npm start`: the edge on its embedded defaults with a demonstration fleet (edge/demo.ts).
import { register } from 'tsx/esm/api'
process.env.VDP_DEMO_MAIN = '1'
register()
await import('../edge/demo.ts')
