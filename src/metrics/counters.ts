// The server's counters. Plain numeric fields on one object, so the hot path pays one add per event;
// `snapshot()` names them for the `stats` table and the stop summary.

import { FramingCounters } from '../framing/framer.js'

export class Counters {
  /** Plain TCP connections' frames. */
  readonly framing = new FramingCounters()
  /** TLS connections' frames, apart, so /metrics and the stats table count them as transport "tls". */
  readonly framingTls = new FramingCounters()
  receivedUdp = 0
  bytesUdp = 0
  /** Times a connection crossed its threshold and started spilling. */
  spillEpisodes = 0
  /** Connections that spilled before their memory records were committed: the journal could not commit. */
  spillsUnordered = 0
  connectionsOpened = 0
  connectionsClosed = 0
  connectionErrors = 0
  idleTimeouts = 0
  /** Connections closed because a frame stayed unfinished past limits.frameTimeoutSeconds. */
  frameTimeouts = 0
  tlsHandshakeFailures = 0
  /** Records dropped because the spool was full (policy "drop", or UDP). */
  droppedSpoolFull = 0
  /** Connections paused because the spool was full (policy "block"). */
  pausedForSpool = 0
  /** Connections paused because spooled bytes waiting for the disk passed spool.maxUnwrittenBytes. */
  pausedForDisk = 0
  /** Connections paused to read in a later event-loop turn because the turn had read enough (a burst). */
  turnYields = 0
  udpEmpty = 0
  udpTruncated = 0
  /** Datagrams the UDP receive thread dropped because the socket thread had kMaxBatches to catch up on. */
  udpQueueDrops = 0

  snapshot(): Record<string, number> {
    const f = this.framing
    const s = this.framingTls
    return {
      received_tcp_total: f.lfFrames + f.nulFrames + f.octetFrames,
      received_tls_total: s.lfFrames + s.nulFrames + s.octetFrames,
      received_udp_total: this.receivedUdp,
      received_bytes_udp_total: this.bytesUdp,
      frames_lf_total: f.lfFrames + s.lfFrames,
      frames_nul_total: f.nulFrames + s.nulFrames,
      frames_octet_counted_total: f.octetFrames + s.octetFrames,
      truncated_total: f.truncated + s.truncated + this.udpTruncated,
      empty_frames_total: f.emptyLines + s.emptyLines + this.udpEmpty,
      partial_frames_dropped_at_stop_total: f.partialDropped + s.partialDropped,
      spill_episodes_total: this.spillEpisodes,
      spills_unordered_total: this.spillsUnordered,
      connections_opened_total: this.connectionsOpened,
      connections_closed_total: this.connectionsClosed,
      connection_errors_total: this.connectionErrors,
      idle_timeouts_total: this.idleTimeouts,
      frame_timeouts_total: this.frameTimeouts,
      tls_handshake_failures_total: this.tlsHandshakeFailures,
      dropped_spool_full_total: this.droppedSpoolFull,
      dropped_udp_queue_total: this.udpQueueDrops,
      paused_spool_full_total: this.pausedForSpool,
      paused_disk_behind_total: this.pausedForDisk,
      read_turn_yields_total: this.turnYields,
    }
  }
}
