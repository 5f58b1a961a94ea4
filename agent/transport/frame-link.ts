/**
 * The only view of a network port the rest of the agent has: send a frame, receive frames.
 * Implementations: `af-packet.ts` (Linux raw socket, the real one) and `memory-link.ts`
 * (in-process, for tests and the demonstration fleet when not root).
 *
 * @module
 */
import type { Mac } from '../../shared/ethernet/mac.ts'

export interface FrameLinkStats {
  rxFrames: number
  txFrames: number
  /** Frames the kernel dropped before we read them (PACKET_STATISTICS) or that failed to send. */
  drops: number
  txErrors: number
}

export interface FrameLink {
  /** Interface name. */
  readonly name: string
  /** The port's own MAC address. */
  readonly mac: Mac
  /** Sends one complete Ethernet frame (destination, source, ethertype, payload). */
  send(frame: Uint8Array): void
  /** Registers the receiver; one per link. Frames are whole Ethernet frames. */
  onFrame(handler: (frame: Uint8Array) => void): void
  stats(): FrameLinkStats
  close(): void
}
