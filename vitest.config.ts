import { defineConfig } from 'vitest/config'

// Two projects: `unit` is pure and runs anywhere; `integration` needs root, network
// namespaces and the Debian packages that .ci/run installs (lldpad, tshark, mosquitto,
// redis-server, qemu-system-arm). Integration files run one at a time: they share the
// machine's kernel.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**', 'node_modules/**'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
