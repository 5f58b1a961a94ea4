/*
 * Linux AF_PACKET link for the VDP agent: one raw socket bound to one interface, which sees
 * only ECP (0x8940) and LLDP (0x88CC) frames, untagged or behind one 802.1Q/802.1ad tag.
 *
 * Why these choices (DESIGN.md section 3, "Raw L2"):
 * - ETH_P_ALL, not 0x8940: on a Linux bridge port the bridge's rx_handler consumes frames to
 *   01-80-C2-00-00-00 before protocol-specific packet sockets are asked; only ETH_P_ALL taps
 *   run before it. A classic BPF filter then keeps the socket's queue free of other traffic.
 * - The socket is created with protocol 0 (it receives nothing) and gets its filter before it
 *   is bound with ETH_P_ALL; otherwise frames of every interface and Ethertype could queue up
 *   between socket() and bind().
 * - The kernel strips a VLAN tag into skb metadata before packet taps run, so the tag is put
 *   back from PACKET_AUXDATA, as libpcap does: callers see the frame as it was on the wire.
 * - Reads are non-blocking on the libuv loop (uv_poll, level-triggered) with recvmmsg, a batch
 *   per call, and a cap per wakeup so one busy port cannot starve the loop.
 * - A batch reaches JS in one call. Given a receive area at start(), recvmmsg writes into it
 *   and the call gets only the frame count (offsets and lengths in a second array): no copy,
 *   and no Buffer, array or backing store per frame for the GC (each keep-alive costs the
 *   bridge two received frames).
 *
 * Lifetime rules:
 * - While reading, the JS object is strongly referenced (like a Node handle): it cannot be
 *   collected and its callbacks stay valid. close() drops that reference.
 * - Memory is freed only when both the JS object is finalized and the uv handle is closed
 *   (or was never started), whichever comes last. The fd is closed in the uv close callback.
 * - No callback runs after close(): the read loop checks the closing flag between batches.
 *
 * JS API (wrapped by agent/transport/af-packet.ts):
 *   new AfPacketSocket(ifname, { rcvBufBytes?, multicast?: Buffer[], batch? })
 *     throws Error with .code = 'EPERM' | 'ENODEV' | ... and .syscall
 *   .ifindex, .mtu, .mac (Buffer, 6 bytes)
 *   .batch (frames per recvmmsg), .rxBytesMax (bytes one batch can need in a receive area)
 *   .start(onFrames(frames: Buffer[]), onError(code, syscall, fatal))
 *   .start(onFrames(count: number), onError, rxData: Uint8Array, rxSpans: Uint32Array)
 *     frame i is rxData[rxSpans[2i] .. rxSpans[2i] + rxSpans[2i+1]); the bytes are valid until
 *     onFrames returns (the next batch overwrites them). rxData must hold .rxBytesMax bytes
 *     and rxSpans 2 * .batch entries; both are kept (referenced) until close.
 *   .send(frame: Uint8Array) -> 0 or a negative errno
 *   .setEcpAck(source: Buffer | null, unicast: boolean, peers: Buffer)
 *     ECP ACK offload: from now on every ECP VDP request (version 1, operation
 *     0, subtype 1; untagged or behind one C-/S-tag) to 01-80-C2-00-00-00 or to `source`,
 *     whose source is one of `peers` (6 octets each), is acknowledged here as soon as it is
 *     read, before JS sees it: an untagged 18-octet ACK from `source` to the requester
 *     (`unicast`) or to the group address, with the request's sequence number. Such a frame's
 *     length in rxSpans has bit 31 set (SPAN_ACKED). `source` null turns the offload off.
 *   .absorbAcks(own: Buffer | null) -> map entry (0 for null)
 *     ECP ACK absorption (see the block comment above absorb_map): the eBPF filter in place of
 *     the classic one, `own` the port's MAC as the core knows it; null puts the classic filter
 *     back. Throws like the constructor when the kernel refuses.
 *   .armAck(slot 0..7, peer: Buffer, sequence) arms a slot; a negative sequence disarms it
 *   takeAbsorbedAcks(out: Uint32Array) -> n (a module function): (entry, slot, sequence)
 *     triples of the ACKs taken in on every link since the last call
 *   .fastAnswers(seen: Float64Array | null, nowUs, onReturn()) keep-alive answers on or off
 *   .fastAnswer(id, peer: Buffer, request: Uint8Array, response: Uint8Array) stores one;
 *     .fastAnswer(id) removes it
 *   .fastGrant(lastSequence, ackTimerUs, holdUntilUs, gapUs) lends the link the port's ECP
 *     transmit side
 *   .fastReclaim() -> { sequence, holdUntilUs, outstanding: [peer, sequence, slot, frame,
 *     deadlineUs][] }
 *   .fastPeerStats() -> [peer, rxEcpdus, rxDuplicates, rxVdpTlvs, txEcpdus, txVdpTlvs,
 *     rxAcks, rxAcksAbsorbed][]
 *   .fastForget(peer: Buffer): the peer's next request is new whatever its sequence number
 *     (see the block comment above fast_take)
 *   .stats() -> [kernelPackets, kernelDrops, truncated, acksSent, ackErrors, acksAbsorbed,
 *     answersSent]
 *   .ifExists() -> whether the interface index still exists
 *   .ref() / .unref() / .close()
 */
#define _GNU_SOURCE /* recvmmsg */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef TP_STATUS_VLAN_VALID
#define TP_STATUS_VLAN_VALID (1 << 4)
#endif
#ifndef TP_STATUS_VLAN_TPID_VALID
#define TP_STATUS_VLAN_TPID_VALID (1 << 6)
#endif

#define ETHERTYPE_ECP 0x8940
#define ETHERTYPE_LLDP 0x88CC
#define ETHERTYPE_CTAG 0x8100
#define ETHERTYPE_STAG 0x88A8
#define BATCH_MAX 64
#define FRAMES_PER_WAKEUP_MAX 1024
#define MULTICAST_MAX 8
/* Room in front of each receive slot to put a stripped VLAN tag back. */
#define TAG_ROOM 4
/* rxSpans length bit: the frame was an ECP request this link acknowledged itself. */
#define SPAN_ACKED 0x80000000u
#define ECP_ACK_BYTES 18

typedef enum { HANDLE_NONE, HANDLE_ACTIVE, HANDLE_CLOSING, HANDLE_CLOSED } handle_state_t;
typedef struct fast_entry fast_entry_t;
typedef struct fast_peer fast_peer_t;
typedef struct offer offer_t;
typedef struct known_slot known_slot_t;

typedef struct {
  napi_env env;
  int fd;
  int ifindex;
  int mtu;
  uint8_t mac[6];
  char ifname[IF_NAMESIZE];

  uv_poll_t poll;
  handle_state_t handle_state;
  int closing;      /* close() called or env torn down: no more callbacks */
  int failed;       /* interface gone: polling stopped */
  int finalized;    /* JS object collected */
  int hook_added;
  int in_callback;  /* depth of JS calls made from on_readable */

  napi_ref wrapper_ref; /* weak, strong (count 1) while reading */
  int wrapper_strong;
  napi_ref on_frames_ref;
  napi_ref on_error_ref;
  /* Receive area given to start(): `slots` then points into rx_data (NULL: a Buffer per
   * frame, from malloc'd slots). Valid while the references are held, i.e. until close. */
  napi_ref rx_data_ref;
  napi_ref rx_spans_ref;
  uint8_t *rx_data;
  uint32_t *rx_spans;
  napi_async_context async_ctx;

  uint64_t kernel_packets;
  uint64_t kernel_drops;
  uint64_t truncated;

  /* ECP ACK offload (setEcpAck): the ACK template and the peers whose requests it answers. */
  int ack_on;
  uint8_t ack_frame[ECP_ACK_BYTES];
  int ack_unicast;
  int ack_pending; /* ack_frame is ready and not sent yet */
  uint8_t *ack_peers; /* 6 octets each */
  uint32_t ack_peer_count;
  uint64_t acks_sent;
  uint64_t answers_sent; /* keep-alive answers sent (fast_take), kept across fastAnswers */
  uint64_t ack_errors;

  /* ECP ACK absorption (absorbAcks): this link's entry in the shared map (0: none). */
  uint32_t absorb_entry;
  int absorb_attached; /* the eBPF filter is on the socket */
  uint64_t acks_absorbed; /* the entry's count when last read (kept after it is released) */

  /* Keep-alive answers (fastAnswers; see the block comment above fast_take). */
  int fast_on;
  int fast_listed;
  int fast_granted;   /* the core lent its ECP transmit side */
  int fast_returning; /* an ack timer ran out: JS was called and must take the side back */
  uint16_t fast_seq;  /* last ECP sequence number used */
  uint8_t fast_slots; /* absorption slots armed here */
  uint64_t fast_ack_ns;
  uint64_t fast_hold_ns; /* ECP pacing: no new ECPDU before (uv_hrtime) */
  uint64_t fast_gap_ns;  /* ... and this long after each */
  uint32_t fast_out;  /* ECPDUs in flight */
  fast_entry_t **fast_table; /* open addressing, FAST_TOMB for removed entries */
  uint32_t fast_cap, fast_used, fast_tombs;
  fast_entry_t **fast_by_id;
  uint32_t fast_ids;
  double *fast_seen; /* JS memory, held by fast_seen_ref */
  double fast_offset_us;
  fast_peer_t *fast_peers;
  uint32_t fast_peer_count, fast_peer_cap;
  napi_ref fast_seen_ref;
  napi_ref fast_return_ref;

  /* Offers (fastOffers; see the block comment above offer_check). */
  int32_t *offer_state; /* JS memory [epoch, headroom], held by offer_state_ref */
  napi_ref offer_state_ref;
  offer_t *offers;
  uint32_t offer_count;
  uint32_t offer_credit; /* new VSIs this loan may still answer (the port's room) */
  uint8_t offer_formats; /* bit f: filter format f may be answered from an offer */
  known_slot_t *known;   /* (peer, VSIID) the core holds: open addressing */
  uint32_t known_cap, known_used, known_tombs;
  uint64_t offers_sent; /* answers from offers sent, kept across fastOffers */

  int batch;
  size_t slot_bytes;
  uint8_t *slots;
  struct mmsghdr msgs[BATCH_MAX];
  struct iovec iovs[BATCH_MAX];
  struct sockaddr_ll addrs[BATCH_MAX];
  /* Control buffer per message for PACKET_AUXDATA, aligned for struct cmsghdr. */
  struct {
    char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))]
        __attribute__((aligned(__alignof__(struct cmsghdr))));
  } cmsgs[BATCH_MAX];
} link_t;

static const char *errno_code(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case ENETDOWN: return "ENETDOWN";
    case EINVAL: return "EINVAL";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOBUFS: return "ENOBUFS";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EBADF: return "EBADF";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ENETUNREACH: return "ENETUNREACH";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case ENOSYS: return "ENOSYS";
    case E2BIG: return "E2BIG";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EUNKNOWN";
  }
}

/* Throws Error(message) with .code, .errno and .syscall, like Node's own system errors. */
static void throw_errno(napi_env env, int err, const char *syscall) {
  napi_value msg, error, code, errnum, sc;
  char text[256];
  snprintf(text, sizeof text, "%s failed: %s", syscall, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, -err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, error, "syscall", sc);
  napi_throw(env, error);
}

#define NAPI_CALL(env, call)                                   \
  do {                                                         \
    if ((call) != napi_ok) {                                   \
      const napi_extended_error_info *error_info_ = NULL;      \
      napi_get_last_error_info((env), &error_info_);           \
      bool pending = false;                                    \
      napi_is_exception_pending((env), &pending);              \
      if (!pending)                                            \
        napi_throw_error((env), NULL,                          \
                         error_info_ && error_info_->error_message \
                             ? error_info_->error_message      \
                             : "Node-API call failed");        \
      return NULL;                                             \
    }                                                          \
  } while (0)

/*
 * Accepts, by Ethertype at offset 12: ECP, LLDP, or a C-/S-tag followed by ECP or LLDP at
 * offset 16. Outgoing frames are rejected here too (PACKET_IGNORE_OUTGOING needs Linux 4.20).
 * A tag the kernel stripped is not in the data, so the inner type is then at offset 12.
 */
static struct sock_filter bpf_code[] = {
    /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE),
    /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 9, 0),
    /* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
    /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_ECP, 6, 0),
    /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_LLDP, 5, 0),
    /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_CTAG, 1, 0),
    /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_STAG, 0, 4),
    /* 7 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 16),
    /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_ECP, 1, 0),
    /* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_LLDP, 0, 1),
    /* 10 */ BPF_STMT(BPF_RET | BPF_K, 0x40000),
    /* 11 */ BPF_STMT(BPF_RET | BPF_K, 0),
};

static void absorb_release(link_t *l);
static void fast_clear(link_t *l);

static void maybe_free(link_t *l) {
  if (!l->finalized) return;
  if (l->handle_state == HANDLE_ACTIVE || l->handle_state == HANDLE_CLOSING) return;
  if (l->fd >= 0) {
    close(l->fd);
    l->fd = -1;
  }
  absorb_release(l);
  if (l->rx_data == NULL) free(l->slots);
  free(l->ack_peers);
  free(l);
}

static void on_handle_closed(uv_handle_t *handle) {
  link_t *l = (link_t *)handle->data;
  l->handle_state = HANDLE_CLOSED;
  /* Closed only now: libuv must not poll a closed (or reused) fd number. */
  if (l->fd >= 0) {
    close(l->fd);
    l->fd = -1;
  }
  /* Only now no filter program of this socket can run: the entry may serve another link. */
  absorb_release(l);
  maybe_free(l);
}

/* Stops polling and releases the fd. Safe to call repeatedly; needs no JS. */
static void stop_io(link_t *l) {
  l->closing = 1;
  /* No answer leaves after close, and the timer forgets the link. */
  if (l->fast_on || l->fast_listed) fast_clear(l);
  if (l->handle_state == HANDLE_ACTIVE) {
    uv_poll_stop(&l->poll);
    l->handle_state = HANDLE_CLOSING;
    uv_close((uv_handle_t *)&l->poll, on_handle_closed);
  } else if (l->handle_state == HANDLE_NONE && l->fd >= 0) {
    close(l->fd);
    l->fd = -1;
    absorb_release(l);
  }
}

/* Deletes a reference, if any, and forgets it. */
static void drop_ref(napi_env env, napi_ref *ref) {
  if (*ref == NULL) return;
  napi_delete_reference(env, *ref);
  *ref = NULL;
}

static void release_js(link_t *l, napi_env env) {
  drop_ref(env, &l->on_frames_ref);
  drop_ref(env, &l->on_error_ref);
  /* The slots are JS memory: once the references go, nothing may read into them (no read
   * runs after close; maybe_free sees rx_data set and leaves them to the GC). */
  if (l->rx_data_ref) {
    l->slots = NULL;
    napi_delete_reference(env, l->rx_data_ref);
    l->rx_data_ref = NULL;
  }
  drop_ref(env, &l->rx_spans_ref);
  drop_ref(env, &l->fast_seen_ref);
  drop_ref(env, &l->fast_return_ref);
  drop_ref(env, &l->offer_state_ref);
  if (l->async_ctx) {
    napi_async_destroy(env, l->async_ctx);
    l->async_ctx = NULL;
  }
  if (l->wrapper_strong && l->wrapper_ref) {
    uint32_t count;
    napi_reference_unref(env, l->wrapper_ref, &count);
    l->wrapper_strong = 0;
  }
}

static void env_cleanup(void *arg) {
  link_t *l = (link_t *)arg;
  l->hook_added = 0;
  stop_io(l);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  link_t *l = (link_t *)data;
  if (l->hook_added) {
    napi_remove_env_cleanup_hook(env, env_cleanup, l);
    l->hook_added = 0;
  }
  stop_io(l);
  release_js(l, env);
  drop_ref(env, &l->wrapper_ref);
  l->finalized = 1;
  maybe_free(l);
}

/* Calls a stored JS function through MakeCallback so that microtasks run afterwards. */
static void call_js(link_t *l, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = l->env;
  napi_value fn, recv, result;
  if (!fn_ref || napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  if (napi_get_reference_value(env, l->wrapper_ref, &recv) != napi_ok || recv == NULL)
    napi_get_undefined(env, &recv);
  l->in_callback++;
  napi_status st = napi_make_callback(env, l->async_ctx, recv, fn, argc, argv, &result);
  l->in_callback--;
  /* close() from inside the callback defers releasing what the call is still using. */
  if (l->closing && l->in_callback == 0) release_js(l, env);
  if (st == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    /* Same as an exception thrown from any other event: 'uncaughtException'. */
    napi_fatal_exception(env, exc);
  }
}

static void report_error(link_t *l, int err, const char *syscall, int fatal) {
  napi_handle_scope scope;
  napi_value argv[3];
  if (napi_open_handle_scope(l->env, &scope) != napi_ok) return;
  napi_create_string_utf8(l->env, errno_code(err), NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_string_utf8(l->env, syscall, NAPI_AUTO_LENGTH, &argv[1]);
  napi_get_boolean(l->env, fatal != 0, &argv[2]);
  call_js(l, l->on_error_ref, 3, argv);
  napi_close_handle_scope(l->env, scope);
}

/* ENETDOWN: down (recoverable, the kernel re-arms the socket on NETDEV_UP) or gone. */
static void report_netdown(link_t *l) {
  char name[IF_NAMESIZE];
  if (if_indextoname((unsigned)l->ifindex, name) == NULL) {
    l->failed = 1;
    uv_poll_stop(&l->poll);
    report_error(l, ENXIO, "recvmmsg", 1);
  } else {
    report_error(l, ENETDOWN, "recvmmsg", 0);
  }
}

static void prepare_batch(link_t *l) {
  for (int i = 0; i < l->batch; i++) {
    l->iovs[i].iov_base = l->slots + (size_t)i * l->slot_bytes + TAG_ROOM;
    l->iovs[i].iov_len = l->slot_bytes - TAG_ROOM;
    memset(&l->msgs[i].msg_hdr, 0, sizeof l->msgs[i].msg_hdr);
    l->msgs[i].msg_hdr.msg_name = &l->addrs[i];
    l->msgs[i].msg_hdr.msg_namelen = sizeof l->addrs[i];
    l->msgs[i].msg_hdr.msg_iov = &l->iovs[i];
    l->msgs[i].msg_hdr.msg_iovlen = 1;
    l->msgs[i].msg_hdr.msg_control = l->cmsgs[i].buf;
    l->msgs[i].msg_hdr.msg_controllen = sizeof l->cmsgs[i].buf;
    l->msgs[i].msg_len = 0;
  }
}

/* Returns the frame start (tag restored if the kernel had stripped it) and its length. */
static uint8_t *frame_of(link_t *l, int i, size_t *len) {
  uint8_t *data = l->slots + (size_t)i * l->slot_bytes + TAG_ROOM;
  size_t n = l->msgs[i].msg_len;
  struct msghdr *h = &l->msgs[i].msg_hdr;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
    if (c->cmsg_len < CMSG_LEN(sizeof(struct tpacket_auxdata))) continue;
    struct tpacket_auxdata aux;
    memcpy(&aux, CMSG_DATA(c), sizeof aux);
    if ((aux.tp_vlan_tci != 0 || (aux.tp_status & TP_STATUS_VLAN_VALID)) && n >= 12) {
      uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid
                                                                  : ETHERTYPE_CTAG;
      memmove(data - TAG_ROOM, data, 12);
      data -= TAG_ROOM;
      data[12] = (uint8_t)(tpid >> 8);
      data[13] = (uint8_t)(tpid & 0xff);
      data[14] = (uint8_t)(aux.tp_vlan_tci >> 8);
      data[15] = (uint8_t)(aux.tp_vlan_tci & 0xff);
      n += TAG_ROOM;
    }
  }
  *len = n;
  return data;
}

static const uint8_t NCB_GROUP[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};

/*
 * ECP ACK offload: acknowledges `data` here if it is an ECP VDP request to this port from an
 * offloaded peer, exactly as the port core would (agent/port/port-core.ts, #ecpFrame and
 * #sendAck): version 1, operation request, subtype VDP, destination the group address or this
 * port, one tag at most. Returns 1 when the ACK was sent; 0 leaves the frame to JS as before
 * (also when the send failed: JS then sends the ACK itself and reports the error).
 */
static int ack_ecp_request(link_t *l, const uint8_t *data, size_t len) {
  size_t at = 12;
  if (len < 18) return 0;
  uint16_t type = (uint16_t)(data[12] << 8 | data[13]);
  if (type == ETHERTYPE_CTAG || type == ETHERTYPE_STAG) {
    if (len < 22) return 0;
    at = 16;
    type = (uint16_t)(data[16] << 8 | data[17]);
  }
  if (type != ETHERTYPE_ECP) return 0;
  const uint8_t *ecp = data + at + 2;
  uint16_t word = (uint16_t)(ecp[0] << 8 | ecp[1]);
  if ((word >> 12) != 1 || ((word >> 10) & 0x3) != 0 || (word & 0x3ff) != 1) return 0;
  /* This port as the core knows it: the ACK's source (a configured MAC may differ from the NIC's). */
  if (memcmp(data, NCB_GROUP, 6) != 0 && memcmp(data, l->ack_frame + 6, 6) != 0) return 0;
  const uint8_t *source = data + 6;
  uint32_t i = 0;
  while (i < l->ack_peer_count && memcmp(l->ack_peers + 6 * (size_t)i, source, 6) != 0) i++;
  if (i == l->ack_peer_count) return 0;
  uint8_t *ack = l->ack_frame;
  if (l->ack_unicast) memcpy(ack, source, 6);
  ack[16] = ecp[2];
  ack[17] = ecp[3];
  /* Sent by ack_flush, or together with an answer by fast_take (one system call for both:
   * the ACK wakes the station, which could otherwise run before the answer leaves). */
  l->ack_pending = 1;
  return 1;
}

/* Sends the ACK ack_ecp_request prepared, unless an answer took it along; 1: it left. */
static int ack_flush(link_t *l) {
  if (!l->ack_pending) return 1;
  l->ack_pending = 0;
  for (;;) {
    if (send(l->fd, l->ack_frame, ECP_ACK_BYTES, MSG_DONTWAIT) == ECP_ACK_BYTES) {
      l->acks_sent++;
      return 1;
    }
    if (errno != EINTR) break;
  }
  l->ack_errors++;
  return 0;
}

/*
 * ECP ACK absorption. A port that sent an ECPDU waits for its ACK; most of the time nothing
 * else is queued for that peer, and the ACK only has to stop the ack timer. The port core
 * names such (peer, sequence) pairs; the link arms them in a BPF array map shared by all links
 * and mapped into this process, and replaces the socket's classic filter with an eBPF socket
 * filter that does what the classic one does and, for an ECP ACK (version 1, operation ACK,
 * subtype VDP, untagged, to the group address or to this port) whose source and sequence
 * match an armed slot, records the sequence in the slot and drops the frame: the process is
 * not woken for it. takeAbsorbedAcks() hands the recorded ACKs to JS, which gives them to the
 * port core as if the frames had been read; the agent asks at every step of any port, long
 * before an ack timer (2.56 ms at RTE 8) runs out while keep-alives come in.
 *
 * Map element 0 holds the total of ACKs absorbed (so that one read tells whether anything is
 * new); elements 1.. are one per link (absorb_entry). Values are written by the program in
 * softirq context on any CPU: armed is stored last with release order, acked is taken with an
 * atomic exchange. A race (an ACK absorbed while its slot is being re-armed) at worst leaves an
 * ACK unrecorded: the ack timer then retransmits, as for an ACK lost on the wire.
 */
#define ABSORB_SLOTS 8
#define ABSORB_ENTRIES 256 /* links of one process: ports of a switch */
#define ABSORB_ARMED 0x10000u
typedef struct {
  uint32_t mac_hi; /* first four octets, as BPF_LD_ABS reads them (big-endian value) */
  uint32_t mac_lo; /* last two octets */
  uint32_t armed;  /* ABSORB_ARMED | sequence, 0 when not armed */
  uint32_t acked;  /* the armed value once its ACK was absorbed, 0 after it was taken */
} absorb_slot_t;
typedef struct {
  uint64_t absorbed; /* element 0: all links; others: this link */
  uint32_t own_hi;   /* this port's MAC, an accepted destination besides the group address */
  uint32_t own_lo;
  absorb_slot_t slots[ABSORB_SLOTS];
} absorb_entry_t;

static uv_once_t absorb_once = UV_ONCE_INIT;
static uv_mutex_t absorb_lock;
static int absorb_map_fd = -1;
static int absorb_map_errno = 0;
static const char *absorb_map_failed = NULL;
static absorb_entry_t *absorb_mem = NULL;
static uint8_t absorb_used[ABSORB_ENTRIES];
/* Per entry: its `absorbed` count when takeAbsorbedAcks last looked. */
static uint64_t absorb_taken[ABSORB_ENTRIES];
static uint64_t absorb_total_seen = 0;
/* One past the highest entry ever used: takeAbsorbedAcks scans no further. */
static uint32_t absorb_entries_high = 1;

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

static void absorb_init_lock(void) { uv_mutex_init(&absorb_lock); }

/* Creates and maps the shared map once per process; 0 or an errno. Called under the lock. */
static int absorb_map(void) {
  if (absorb_mem != NULL) return 0;
  if (absorb_map_failed != NULL) return absorb_map_errno;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_ARRAY;
  a.key_size = 4;
  a.value_size = sizeof(absorb_entry_t);
  a.max_entries = ABSORB_ENTRIES;
  a.map_flags = BPF_F_MMAPABLE;
  int fd = (int)sys_bpf(BPF_MAP_CREATE, &a);
  if (fd < 0 && errno == EPERM) {
    /* Before Linux 5.11 BPF memory counts against RLIMIT_MEMLOCK (often 64 KiB): raise it,
     * as libbpf does, and try again. */
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    if (setrlimit(RLIMIT_MEMLOCK, &unlimited) == 0) fd = (int)sys_bpf(BPF_MAP_CREATE, &a);
    else errno = EPERM;
  }
  if (fd < 0) {
    absorb_map_errno = errno;
    absorb_map_failed = "bpf(BPF_MAP_CREATE)";
    return absorb_map_errno;
  }
  size_t bytes = sizeof(absorb_entry_t) * ABSORB_ENTRIES;
  void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) {
    absorb_map_errno = errno;
    absorb_map_failed = "mmap(BPF map)";
    close(fd);
    return absorb_map_errno;
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  absorb_map_fd = fd;
  absorb_mem = mem;
  absorb_used[0] = 1;
  return 0;
}

/* A tiny assembler: instructions and forward jumps to labels. */
#define BPF_PROG_MAX 160
enum { L_DROP, L_ACCEPT, L_ECP, L_TAGGED, L_OWN, L_DST_OK, L_HIT, L_NEXT, L_COUNT };
typedef struct {
  struct bpf_insn insn[BPF_PROG_MAX];
  int n;
  int label[L_COUNT + ABSORB_SLOTS];
  int fix_at[64];
  int fix_to[64];
  int fixes;
  int overflow; /* more instructions or jumps than the arrays hold: do not load */
} asm_t;

static void emit(asm_t *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  if (p->n >= BPF_PROG_MAX) {
    p->overflow = 1;
    return;
  }
  struct bpf_insn *i = &p->insn[p->n++];
  memset(i, 0, sizeof *i);
  i->code = code;
  i->dst_reg = dst;
  i->src_reg = src;
  i->off = off;
  i->imm = imm;
}
/* Conditional jump on dst OP imm (or dst OP src with BPF_X) to a label defined later. */
static void jump(asm_t *p, uint8_t op, uint8_t dst, int32_t imm, int label) {
  if (p->fixes >= 64) {
    p->overflow = 1;
    return;
  }
  p->fix_at[p->fixes] = p->n;
  p->fix_to[p->fixes++] = label;
  emit(p, BPF_JMP | op | BPF_K, dst, 0, 0, imm);
}
static void jump_reg(asm_t *p, uint8_t op, uint8_t dst, uint8_t src, int label) {
  if (p->fixes >= 64) {
    p->overflow = 1;
    return;
  }
  p->fix_at[p->fixes] = p->n;
  p->fix_to[p->fixes++] = label;
  emit(p, BPF_JMP | op | BPF_X, dst, src, 0, 0);
}
static void here(asm_t *p, int label) { p->label[label] = p->n; }
static void ld_abs(asm_t *p, uint8_t size, int32_t offset) { emit(p, BPF_LD | size | BPF_ABS, 0, 0, 0, offset); }
static void map_lookup(asm_t *p, uint32_t key) {
  emit(p, BPF_ST | BPF_W | BPF_MEM, BPF_REG_10, 0, -4, (int32_t)key);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0);
  emit(p, BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4);
  emit(p, BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, absorb_map_fd);
  emit(p, 0, 0, 0, 0, 0);
  emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);
}

/*
 * The socket filter for link entry `entry`. r6 = context (LD_ABS needs it there), r7/r8 = a
 * MAC address as two words, r9 = this link's map value. LD_ABS past the frame's end ends the
 * program with 0 (drop), as the classic filter's loads do.
 */
static void build_program(asm_t *p, uint32_t entry) {
  memset(p, 0, sizeof *p);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0);
  emit(p, BPF_LDX | BPF_W | BPF_MEM, BPF_REG_0, BPF_REG_6, offsetof(struct __sk_buff, pkt_type), 0);
  jump(p, BPF_JEQ, BPF_REG_0, PACKET_OUTGOING, L_DROP);
  ld_abs(p, BPF_H, 12);
  jump(p, BPF_JEQ, BPF_REG_0, ETHERTYPE_ECP, L_ECP);
  jump(p, BPF_JEQ, BPF_REG_0, ETHERTYPE_LLDP, L_ACCEPT);
  jump(p, BPF_JEQ, BPF_REG_0, ETHERTYPE_CTAG, L_TAGGED);
  jump(p, BPF_JNE, BPF_REG_0, ETHERTYPE_STAG, L_DROP);
  here(p, L_TAGGED);
  ld_abs(p, BPF_H, 16);
  jump(p, BPF_JEQ, BPF_REG_0, ETHERTYPE_ECP, L_ACCEPT);
  jump(p, BPF_JEQ, BPF_REG_0, ETHERTYPE_LLDP, L_ACCEPT);
  jump(p, BPF_JA, 0, 0, L_DROP);
  here(p, L_ECP);
  /* An ACK is 18 octets; shorter frames go to the port core, which counts them. */
  emit(p, BPF_LDX | BPF_W | BPF_MEM, BPF_REG_0, BPF_REG_6, offsetof(struct __sk_buff, len), 0);
  jump(p, BPF_JLT, BPF_REG_0, ECP_ACK_BYTES, L_ACCEPT);
  emit(p, BPF_LDX | BPF_W | BPF_MEM, BPF_REG_0, BPF_REG_6, offsetof(struct __sk_buff, vlan_present), 0);
  jump(p, BPF_JNE, BPF_REG_0, 0, L_ACCEPT);
  ld_abs(p, BPF_H, 14);
  jump(p, BPF_JNE, BPF_REG_0, 0x1401, L_ACCEPT); /* version 1, ACK, subtype VDP */
  map_lookup(p, entry);
  jump(p, BPF_JEQ, BPF_REG_0, 0, L_ACCEPT);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_9, BPF_REG_0, 0, 0);
  ld_abs(p, BPF_W, 0);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_7, BPF_REG_0, 0, 0);
  ld_abs(p, BPF_H, 4);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_8, BPF_REG_0, 0, 0);
  jump(p, BPF_JNE, BPF_REG_7, 0x0180C200, L_OWN);
  jump(p, BPF_JEQ, BPF_REG_8, 0, L_DST_OK);
  here(p, L_OWN);
  emit(p, BPF_LDX | BPF_W | BPF_MEM, BPF_REG_1, BPF_REG_9, offsetof(absorb_entry_t, own_hi), 0);
  jump_reg(p, BPF_JNE, BPF_REG_7, BPF_REG_1, L_ACCEPT);
  emit(p, BPF_LDX | BPF_W | BPF_MEM, BPF_REG_1, BPF_REG_9, offsetof(absorb_entry_t, own_lo), 0);
  jump_reg(p, BPF_JNE, BPF_REG_8, BPF_REG_1, L_ACCEPT);
  here(p, L_DST_OK);
  ld_abs(p, BPF_W, 6);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_7, BPF_REG_0, 0, 0);
  ld_abs(p, BPF_H, 10);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_8, BPF_REG_0, 0, 0);
  ld_abs(p, BPF_H, 16);
  emit(p, BPF_ALU64 | BPF_OR | BPF_K, BPF_REG_0, 0, 0, (int32_t)ABSORB_ARMED);
  for (int k = 0; k < ABSORB_SLOTS; k++) {
    int16_t base = (int16_t)(offsetof(absorb_entry_t, slots) + (size_t)k * sizeof(absorb_slot_t));
    int next = L_COUNT + k;
    emit(p, BPF_LDX | BPF_W | BPF_MEM, BPF_REG_1, BPF_REG_9, base + (int16_t)offsetof(absorb_slot_t, mac_hi), 0);
    jump_reg(p, BPF_JNE, BPF_REG_1, BPF_REG_7, next);
    emit(p, BPF_LDX | BPF_W | BPF_MEM, BPF_REG_1, BPF_REG_9, base + (int16_t)offsetof(absorb_slot_t, mac_lo), 0);
    jump_reg(p, BPF_JNE, BPF_REG_1, BPF_REG_8, next);
    emit(p, BPF_LDX | BPF_W | BPF_MEM, BPF_REG_1, BPF_REG_9, base + (int16_t)offsetof(absorb_slot_t, armed), 0);
    jump_reg(p, BPF_JNE, BPF_REG_1, BPF_REG_0, next);
    emit(p, BPF_STX | BPF_W | BPF_MEM, BPF_REG_9, BPF_REG_0, base + (int16_t)offsetof(absorb_slot_t, acked), 0);
    jump(p, BPF_JA, 0, 0, L_HIT);
    here(p, next);
  }
  jump(p, BPF_JA, 0, 0, L_ACCEPT);
  here(p, L_HIT);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1);
  emit(p, BPF_STX | BPF_DW | BPF_ATOMIC, BPF_REG_9, BPF_REG_1, offsetof(absorb_entry_t, absorbed), BPF_ADD);
  map_lookup(p, 0);
  jump(p, BPF_JEQ, BPF_REG_0, 0, L_DROP);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1);
  emit(p, BPF_STX | BPF_DW | BPF_ATOMIC, BPF_REG_0, BPF_REG_1, offsetof(absorb_entry_t, absorbed), BPF_ADD);
  here(p, L_DROP);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
  emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  here(p, L_ACCEPT);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0x40000);
  emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  for (int f = 0; f < p->fixes; f++)
    p->insn[p->fix_at[f]].off = (int16_t)(p->label[p->fix_to[f]] - p->fix_at[f] - 1);
}

static uint32_t be32_of(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static absorb_entry_t *absorb_of(link_t *l) {
  return l->absorb_entry == 0 ? NULL : &absorb_mem[l->absorb_entry];
}

/* Disarms every slot and forgets what was recorded in it. */
static void absorb_clear_slots(absorb_entry_t *e) {
  for (int k = 0; k < ABSORB_SLOTS; k++) {
    __atomic_store_n(&e->slots[k].armed, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&e->slots[k].acked, 0, __ATOMIC_RELEASE);
  }
}

/* Frees the link's entry once no filter program of its socket can run any more. */
static void absorb_release(link_t *l) {
  if (l->absorb_entry == 0 || absorb_mem == NULL) return;
  uv_mutex_lock(&absorb_lock);
  absorb_entry_t *e = absorb_of(l);
  l->acks_absorbed = __atomic_load_n(&e->absorbed, __ATOMIC_ACQUIRE);
  absorb_clear_slots(e);
  e->own_hi = e->own_lo = 0;
  __atomic_store_n(&e->absorbed, 0, __ATOMIC_RELEASE);
  absorb_used[l->absorb_entry] = 0;
  l->absorb_entry = 0;
  l->absorb_attached = 0;
  uv_mutex_unlock(&absorb_lock);
}

/* Turns absorption on for `own` (the port's MAC as the core knows it): NULL, or the failing
 * step with *err set. */
static const char *absorb_enable(link_t *l, const uint8_t *own, int *err) {
  uv_once(&absorb_once, absorb_init_lock);
  uv_mutex_lock(&absorb_lock);
  *err = absorb_map();
  if (*err != 0) {
    uv_mutex_unlock(&absorb_lock);
    return absorb_map_failed;
  }
  if (l->absorb_entry == 0) {
    uint32_t i = 1;
    while (i < ABSORB_ENTRIES && absorb_used[i]) i++;
    if (i == ABSORB_ENTRIES) {
      uv_mutex_unlock(&absorb_lock);
      *err = ENOSPC;
      return "absorbAcks (all map entries in use)";
    }
    absorb_used[i] = 1;
    absorb_taken[i] = 0;
    if (i >= absorb_entries_high) absorb_entries_high = i + 1;
    memset(&absorb_mem[i], 0, sizeof absorb_mem[i]);
    l->absorb_entry = i;
  }
  uv_mutex_unlock(&absorb_lock);
  absorb_entry_t *e = absorb_of(l);
  e->own_hi = be32_of(own);
  e->own_lo = (uint32_t)own[4] << 8 | own[5];
  if (l->absorb_attached) return NULL;
  asm_t p;
  build_program(&p, l->absorb_entry);
  if (p.overflow) {
    *err = E2BIG;
    return "absorbAcks (filter program too long)";
  }
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  a.insns = (uint64_t)(uintptr_t)p.insn;
  a.insn_cnt = (uint32_t)p.n;
  a.license = (uint64_t)(uintptr_t) "GPL";
  int prog = (int)sys_bpf(BPF_PROG_LOAD, &a);
  if (prog < 0) {
    *err = errno;
    return "bpf(BPF_PROG_LOAD)";
  }
  int rc = setsockopt(l->fd, SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof prog);
  *err = rc < 0 ? errno : 0;
  close(prog); /* the socket holds the program */
  if (rc < 0) return "setsockopt(SO_ATTACH_BPF)";
  l->absorb_attached = 1;
  return NULL;
}

/* Back to the classic filter. The entry stays the link's (a program still running on another
 * CPU may write it) with every slot disarmed; recorded ACKs not taken yet are dropped. */
static int absorb_disable(link_t *l) {
  if (l->absorb_entry == 0 || !l->absorb_attached) return 0;
  struct sock_fprog prog = {.len = sizeof bpf_code / sizeof bpf_code[0], .filter = bpf_code};
  if (setsockopt(l->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) return errno;
  l->absorb_attached = 0;
  absorb_entry_t *e = absorb_of(l);
  absorb_clear_slots(e);
  return 0;
}

/*
 * Keep-alive answers. Most of what a bridge port reads at scale is keep-alives: a station
 * repeats the request the bridge already granted, and the bridge answers with the response it
 * already sent. The port core hands the link such (request, response) pairs as it confirms
 * them (fastAnswer: the peer, the Manager ID TLV and VSI TLV of the request, the VSI TLV of the
 * response), and lends the link its ECP transmit side while it has nothing queued or in flight
 * (fastGrant: the last sequence number used, the ack timer, the pacing hold and gap). An ECP
 * request the ACK offload
 * acknowledged (so: from a known peer, to this port) whose every VSI TLV is such a request,
 * octet for octet, is then answered here: one ECPDU with the Manager ID TLV and the stored
 * responses, the next sequence number, sent before the next frame is read. JS never sees it.
 *
 * What stays the core's, and how it learns what happened here:
 * - Its VSIs' keep-alive supervision: each answer's last time and count are written into a
 *   Float64Array the core gave (fastAnswers), on the core's clock; the core's periodic sweep
 *   reads them and times out the VSIs silent for toutKeepAlive.
 * - Duplicates: a request with the sequence number of the one before it is one; if that one
 *   was answered here, so is the duplicate (already acknowledged, not answered twice). A frame
 *   handed to JS after requests answered here has bit 30 set in its span (SPAN_RESYNC): the
 *   core's receive machine did not see those and takes the frame as new.
 * - Stop-and-wait: one ECPDU per peer in flight. Its ACK is taken in by the eBPF filter into a
 *   slot armed here (or read as a frame when absorption is off) and checked at every read of
 *   any link and in a timer. If the ack timer runs out first, the link stops answering and
 *   calls the JS function given to fastAnswers; the core takes its transmit side back
 *   (fastReclaim: the last sequence number, and what is still in flight with its slot and
 *   deadline) and retransmits as it would its own ECPDU. The core also takes it back before
 *   anything else it does on the port, and lends it again when it has nothing to send.
 * - Counters: per peer here (fastPeerStats), added in by the core.
 * Frames that do not qualify (a tag, any TLV not stored, another operation, a peer with an
 * ECPDU in flight, the pacing gap not over, the side not lent) go to JS exactly as before.
 */
#define SPAN_RESYNC 0x40000000u
#define FAST_PEERS_MAX 256
#define FAST_FRAME_MAX 1512 /* Ethernet 14 + ECP 4 + ULPDU 1494 (ECP_ULPDU_MAX) */
#define MANAGER_TLV_BYTES 18
#define FAST_TOMB ((fast_entry_t *)1)

struct fast_entry {
  uint32_t hash;
  uint32_t id;
  uint8_t peer[6];
  uint16_t key_len;    /* Manager ID TLV + VSI TLV of the request */
  uint16_t answer_len; /* VSI TLV of the response */
  uint8_t bytes[];     /* key, then answer */
};

struct fast_peer {
  uint8_t mac[6];
  uint8_t have_seq;   /* a request of this peer was read since answers were turned on */
  uint8_t last_taken; /* ... and answered here */
  uint16_t last_seq;
  uint8_t out;        /* an ECPDU sent here awaits its ACK */
  int8_t out_slot;    /* absorption slot armed for it, -1: the ACK comes as a frame */
  uint16_t out_seq;
  uint16_t out_len;
  uint64_t out_deadline_ns;
  uint8_t *out_frame; /* FAST_FRAME_MAX octets, from the first send */
  uint64_t rx_ecpdus, rx_duplicates, rx_tlvs, tx_ecpdus, tx_tlvs, rx_acks, rx_acks_absorbed;
};

/*
 * Offers: answers to requests for VSIs the port does not hold yet. The bridge's decision on a
 * new VSI's Pre-Associate, Pre-Associate-RR or Associate depends, beyond the port's room and
 * the switch's, only on its VSI type, type version, filter format and each entry's GroupID
 * when every entry asks for the null VID (0) and names a valid unicast MAC (formats 2, 4):
 * the resource manager then gives the VID its VN already has. The core stores such decisions
 * as it makes them (fastOffer: type id, version, filter format, GroupID, VID, and the resource
 * manager's epoch at the time), tells the link which (peer, VSIID) it holds (fastKnown), and
 * shares two numbers with it (fastOffers: an Int32Array [epoch, headroom]): the resource
 * manager counts its epoch up whenever a VN's VID may go or the policy changes, and keeps
 * headroom at how many more VSIs the switch takes. The loan (fastGrant) adds the port's room
 * and the filter formats the port accepts now (GroupID formats only once negotiated).
 *
 * A request every VSI TLV of which is such a new VSI, distinct, with an offer of the current
 * epoch for each entry, is answered here like a keep-alive (same conditions: acknowledged by
 * the offload, untagged, side lent, nothing in flight to the peer, pacing gap over): one
 * ECPDU with each TLV echoed, status 0x40 (response, no error), each VID word's VID set to
 * the offer's (PS and PCP as asked). A well-formed De-Associate is answered the same way,
 * echoed with status 0x40, which is what the core answers to any (held or not). Unlike a
 * keep-alive the frame then still goes to JS, with the answer copied right behind it in its
 * slot (span: SPAN_OFFERED, frame length in bits 0-15, answer length in bits 16-28): the core
 * decides the request as ever, journals and programs what it granted, and sends nothing if
 * its response is the answer octet for octet (else it counts a mismatch and puts things
 * right, port-core rule 6). The new VSIIDs become known here at once, the room and headroom
 * go down by one per new VSI; the resource manager and the next loan set them again.
 */
#define SPAN_OFFERED 0x20000000u
#define OFFERS_MAX 256
#define KNOWN_KEY 22 /* peer MAC, VSIID */

struct offer {
  uint32_t type_id;
  uint32_t group; /* 0 for filter formats 1 and 2 */
  uint32_t epoch;
  uint16_t vid;
  uint8_t version;
  uint8_t format;
};

struct known_slot {
  uint8_t state; /* 0 empty, 1 used, 2 removed */
  uint8_t key[KNOWN_KEY];
};

static const uint8_t ENTRY_BYTES[5] = {0, 2, 8, 6, 12};

static uint32_t known_hash(const uint8_t *key) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < KNOWN_KEY; i++) h = (h ^ key[i]) * 16777619u;
  return h;
}

/* The slot holding `key`, or -1. */
static int64_t known_find(link_t *l, const uint8_t *key) {
  if (l->known_cap == 0) return -1;
  uint32_t mask = l->known_cap - 1;
  for (uint32_t i = known_hash(key) & mask, probes = 0; probes < l->known_cap; i = (i + 1) & mask, probes++) {
    known_slot_t *s = &l->known[i];
    if (s->state == 0) return -1;
    if (s->state == 1 && memcmp(s->key, key, KNOWN_KEY) == 0) return i;
  }
  return -1;
}

static void known_put(link_t *l, const uint8_t *key) {
  uint32_t mask = l->known_cap - 1;
  uint32_t i = known_hash(key) & mask;
  while (l->known[i].state == 1) i = (i + 1) & mask;
  if (l->known[i].state == 2) l->known_tombs--;
  l->known[i].state = 1;
  memcpy(l->known[i].key, key, KNOWN_KEY);
  l->known_used++;
}

/* Adds `key` (no-op when present); 0 or ENOMEM. The table stays at most half full. */
static int known_add(link_t *l, const uint8_t *key) {
  if (known_find(l, key) >= 0) return 0;
  if (l->known_cap == 0 || 2 * (l->known_used + l->known_tombs + 1) > l->known_cap) {
    uint32_t cap = 64;
    while (cap < 4 * (l->known_used + 1)) cap *= 2;
    known_slot_t *table = calloc(cap, sizeof *table);
    if (table == NULL) return ENOMEM;
    known_slot_t *old = l->known;
    uint32_t old_cap = l->known_cap;
    l->known = table;
    l->known_cap = cap;
    l->known_used = l->known_tombs = 0;
    for (uint32_t i = 0; i < old_cap; i++)
      if (old[i].state == 1) known_put(l, old[i].key);
    free(old);
  }
  known_put(l, key);
  return 0;
}

static void known_remove(link_t *l, const uint8_t *key) {
  int64_t i = known_find(l, key);
  if (i < 0) return;
  l->known[i].state = 2;
  l->known_used--;
  l->known_tombs++;
}

/* Drops the offers and the known VSIs (the shared state's reference stays the caller's). */
static void offers_clear(link_t *l) {
  free(l->offers);
  free(l->known);
  l->offers = NULL;
  l->known = NULL;
  l->offer_count = 0;
  l->known_cap = l->known_used = l->known_tombs = 0;
  l->offer_state = NULL;
  l->offer_credit = 0;
  l->offer_formats = 0;
}

static const offer_t *offer_find(link_t *l, uint32_t type_id, uint8_t version, uint8_t format, uint32_t group) {
  uint32_t epoch = (uint32_t)l->offer_state[0];
  for (uint32_t i = 0; i < l->offer_count; i++) {
    const offer_t *o = &l->offers[i];
    if (o->type_id == type_id && o->version == version && o->format == format && o->group == group && o->epoch == epoch)
      return o;
  }
  return NULL;
}

/*
 * Whether the VSI TLV at `t` (header included, `tlen` octets of body) from `peer` is a request
 * for a new VSI with an offer for each entry. Mirrors the core's checks (filterError,
 * resolveEntry with null VIDs, decodeVsiTlv's lengths); anything else is the core's.
 */
static int offer_check(link_t *l, const uint8_t *peer, const uint8_t *t, size_t tlen) {
  const uint8_t *b = t + 2;
  if (tlen < 25 || (b[0] & 0x40) != 0) return 0; /* a response */
  uint8_t id_format = b[5], format = b[22];
  if (id_format < 1 || id_format > 5 || format < 1 || format > 4 || !((l->offer_formats >> format) & 1)) return 0;
  size_t count = (size_t)b[23] << 8 | b[24];
  if (count == 0 || tlen != 25 + count * ENTRY_BYTES[format] || (format == 1 && count != 1)) return 0;
  uint8_t key[KNOWN_KEY];
  memcpy(key, peer, 6);
  memcpy(key + 6, b + 6, 16);
  if (known_find(l, key) >= 0) return 0;
  uint32_t type_id = (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  for (size_t i = 0; i < count; i++) {
    const uint8_t *e = b + 25 + i * ENTRY_BYTES[format];
    uint32_t group = format >= 3 ? be32_of(e) : 0;
    const uint8_t *mac = format == 2 ? e : format == 4 ? e + 4 : NULL;
    const uint8_t *word = e + ENTRY_BYTES[format] - 2;
    if (((word[0] & 0x0f) | word[1]) != 0) return 0; /* an explicit VID */
    if (mac != NULL && ((mac[0] & 1) || (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0)) return 0;
    if (offer_find(l, type_id, b[4], format, group) == NULL) return 0;
  }
  return 1;
}

/* Whether the TLV at `t` is a well-formed De-Associate request (decodeVsiTlv's checks): the
 * core answers every one with the TLV echoed, status 0x40, whether it holds the VSI or not. */
static int deassoc_check(const uint8_t *t, size_t tlen) {
  const uint8_t *b = t + 2;
  if (tlen < 25 || (b[0] & 0x40) != 0) return 0;
  uint8_t id_format = b[5], format = b[22];
  if (id_format < 1 || id_format > 5 || format < 1 || format > 4) return 0;
  size_t count = (size_t)b[23] << 8 | b[24];
  return count > 0 && tlen == 25 + count * ENTRY_BYTES[format];
}

/* Writes the answer to a request offer_check took: the TLV echoed, status 0x40, VIDs set. */
static void offer_write(link_t *l, uint8_t *out, const uint8_t *t, size_t tlen) {
  memcpy(out, t, 2 + tlen);
  uint8_t *b = out + 2;
  b[0] = 0x40;
  uint8_t format = b[22];
  size_t count = (size_t)b[23] << 8 | b[24];
  uint32_t type_id = (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  for (size_t i = 0; i < count; i++) {
    uint8_t *e = b + 25 + i * ENTRY_BYTES[format];
    const offer_t *o = offer_find(l, type_id, b[4], format, format >= 3 ? be32_of(e) : 0);
    uint8_t *word = e + ENTRY_BYTES[format] - 2;
    word[0] = (uint8_t)((word[0] & 0xf0) | (o->vid >> 8));
    word[1] = (uint8_t)(o->vid & 0xff);
  }
}

static link_t *fast_links[ABSORB_ENTRIES];
static uint32_t fast_link_count = 0;
/* One timer for every link's ECPDUs in flight, on the loop of the first link that used it. */
static uv_timer_t fast_timer;
static uv_loop_t *fast_loop = NULL;
static uint64_t fast_absorbed_seen = 0;
static uint64_t fast_timer_due = 0;
/* ECPDUs in flight on all links. */
static uint32_t fast_out_total = 0;
/* Per absorption map entry: the slots armed by the answers, which takeAbsorbedAcks leaves. */
static uint8_t fast_slots_of_entry[ABSORB_ENTRIES];

static uint32_t fast_hash(const uint8_t *peer, const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < 6; i++) h = (h ^ peer[i]) * 16777619u;
  for (size_t i = 0; i < an; i++) h = (h ^ a[i]) * 16777619u;
  for (size_t i = 0; i < bn; i++) h = (h ^ b[i]) * 16777619u;
  return h;
}

static fast_entry_t *fast_find(link_t *l, uint32_t h, const uint8_t *peer, const uint8_t *mgr,
                               const uint8_t *vsi, size_t vsi_len) {
  if (l->fast_cap == 0) return NULL;
  uint32_t mask = l->fast_cap - 1;
  for (uint32_t i = h & mask;; i = (i + 1) & mask) {
    fast_entry_t *e = l->fast_table[i];
    if (e == NULL) return NULL;
    if (e == FAST_TOMB || e->hash != h) continue;
    if (e->key_len == MANAGER_TLV_BYTES + vsi_len && memcmp(e->peer, peer, 6) == 0 &&
        memcmp(e->bytes, mgr, MANAGER_TLV_BYTES) == 0 &&
        memcmp(e->bytes + MANAGER_TLV_BYTES, vsi, vsi_len) == 0)
      return e;
  }
}

static void fast_put(link_t *l, fast_entry_t *e) {
  uint32_t mask = l->fast_cap - 1;
  uint32_t i = e->hash & mask;
  while (l->fast_table[i] != NULL && l->fast_table[i] != FAST_TOMB) i = (i + 1) & mask;
  if (l->fast_table[i] == FAST_TOMB) l->fast_tombs--;
  l->fast_table[i] = e;
  l->fast_used++;
}

/* Keeps the table at most half full, tombstones included; 0 or ENOMEM. */
static int fast_room(link_t *l) {
  if (l->fast_cap != 0 && 2 * (l->fast_used + l->fast_tombs + 1) <= l->fast_cap) return 0;
  uint32_t cap = 64;
  while (cap < 4 * (l->fast_used + 1)) cap *= 2;
  fast_entry_t **table = calloc(cap, sizeof *table);
  if (table == NULL) return ENOMEM;
  fast_entry_t **old = l->fast_table;
  uint32_t old_cap = l->fast_cap;
  l->fast_table = table;
  l->fast_cap = cap;
  l->fast_used = 0;
  l->fast_tombs = 0;
  for (uint32_t i = 0; i < old_cap; i++)
    if (old[i] != NULL && old[i] != FAST_TOMB) fast_put(l, old[i]);
  free(old);
  return 0;
}

static void fast_remove(link_t *l, uint32_t id) {
  if (id >= l->fast_ids || l->fast_by_id[id] == NULL) return;
  fast_entry_t *e = l->fast_by_id[id];
  uint32_t mask = l->fast_cap - 1;
  for (uint32_t i = e->hash & mask;; i = (i + 1) & mask) {
    if (l->fast_table[i] == e) {
      l->fast_table[i] = FAST_TOMB;
      l->fast_tombs++;
      l->fast_used--;
      break;
    }
    if (l->fast_table[i] == NULL) break; /* not reached: every entry is in the table */
  }
  l->fast_by_id[id] = NULL;
  free(e);
}

static fast_peer_t *fast_peer_of(link_t *l, const uint8_t *mac, int create) {
  for (uint32_t i = 0; i < l->fast_peer_count; i++)
    if (memcmp(l->fast_peers[i].mac, mac, 6) == 0) return &l->fast_peers[i];
  if (!create || l->fast_peer_count >= FAST_PEERS_MAX) return NULL;
  if (l->fast_peer_count == l->fast_peer_cap) {
    uint32_t cap = l->fast_peer_cap == 0 ? 4 : 2 * l->fast_peer_cap;
    fast_peer_t *grown = realloc(l->fast_peers, cap * sizeof *grown);
    if (grown == NULL) return NULL;
    l->fast_peers = grown;
    l->fast_peer_cap = cap;
  }
  fast_peer_t *p = &l->fast_peers[l->fast_peer_count++];
  memset(p, 0, sizeof *p);
  memcpy(p->mac, mac, 6);
  p->out_slot = -1;
  return p;
}

/* Peers the offload no longer names: their next request is new to a fresh receive machine. */
static void fast_forget_peers(link_t *l) {
  for (uint32_t i = 0; i < l->fast_peer_count; i++) {
    fast_peer_t *p = &l->fast_peers[i];
    uint32_t k = 0;
    while (k < l->ack_peer_count && memcmp(l->ack_peers + 6 * (size_t)k, p->mac, 6) != 0) k++;
    if (k < l->ack_peer_count && l->ack_on) continue;
    p->have_seq = 0;
    p->last_taken = 0;
  }
}

static double fast_now_us(link_t *l, uint64_t ns) { return (double)(ns / 1000) + l->fast_offset_us; }

/* The ECPDU in flight to `p` is acknowledged (or handed to JS: `acked` 0). */
static void fast_settle(link_t *l, fast_peer_t *p, int acked, int absorbed) {
  if (!p->out) return;
  if (p->out_slot >= 0) {
    absorb_entry_t *e = absorb_of(l);
    if (e != NULL && acked) __atomic_store_n(&e->slots[p->out_slot].armed, 0, __ATOMIC_RELEASE);
    l->fast_slots &= (uint8_t) ~(1u << p->out_slot);
    if (l->absorb_entry != 0) fast_slots_of_entry[l->absorb_entry] = l->fast_slots;
  }
  p->out = 0;
  p->out_slot = -1;
  l->fast_out--;
  fast_out_total--;
  if (acked) {
    p->rx_acks++;
    if (absorbed) p->rx_acks_absorbed++;
  }
}

/* Takes the ACKs the eBPF filter recorded in this link's answer slots. */
static void fast_check(link_t *l) {
  absorb_entry_t *e = absorb_of(l);
  if (e == NULL || l->fast_slots == 0) return;
  for (uint32_t i = 0; i < l->fast_peer_count && l->fast_out > 0; i++) {
    fast_peer_t *p = &l->fast_peers[i];
    if (!p->out || p->out_slot < 0) continue;
    absorb_slot_t *s = &e->slots[p->out_slot];
    uint32_t want = ABSORB_ARMED | p->out_seq;
    if (__atomic_load_n(&s->acked, __ATOMIC_ACQUIRE) != want) continue;
    __atomic_store_n(&s->acked, 0, __ATOMIC_RELEASE);
    fast_settle(l, p, 1, 1);
  }
}

/* Every link's answer slots, when the filter absorbed anything since the last look. */
static void fast_check_all(int force) {
  if (absorb_mem == NULL || fast_link_count == 0) return;
  uint64_t total = __atomic_load_n(&absorb_mem[0].absorbed, __ATOMIC_ACQUIRE);
  if (!force && total == fast_absorbed_seen) return;
  fast_absorbed_seen = total;
  for (uint32_t i = 0; i < fast_link_count; i++)
    if (fast_links[i]->fast_out > 0) fast_check(fast_links[i]);
  if (fast_out_total == 0 && fast_loop != NULL) uv_timer_stop(&fast_timer);
}

static void fast_timer_cb(uv_timer_t *t);

/* Runs the timer at the earliest deadline of an ECPDU in flight (stops it when there is none). */
static void fast_timer_arm(void) {
  if (fast_loop == NULL) return;
  uint64_t due = UINT64_MAX;
  for (uint32_t i = 0; i < fast_link_count; i++) {
    link_t *l = fast_links[i];
    if (l->fast_out == 0 || l->fast_returning) continue;
    for (uint32_t k = 0; k < l->fast_peer_count; k++)
      if (l->fast_peers[k].out && l->fast_peers[k].out_deadline_ns < due) due = l->fast_peers[k].out_deadline_ns;
  }
  if (due == UINT64_MAX) {
    uv_timer_stop(&fast_timer);
    return;
  }
  uint64_t now = uv_hrtime();
  uint64_t ms = due <= now ? 0 : (due - now + 999999) / 1000000;
  fast_timer_due = due;
  uv_timer_start(&fast_timer, fast_timer_cb, ms, 0);
}

static void fast_timer_cb(uv_timer_t *t) {
  (void)t;
  fast_check_all(1);
  uint64_t now = uv_hrtime();
  link_t *due[ABSORB_ENTRIES];
  uint32_t n = 0;
  for (uint32_t i = 0; i < fast_link_count; i++) {
    link_t *l = fast_links[i];
    if (l->fast_out == 0 || l->fast_returning) continue;
    for (uint32_t k = 0; k < l->fast_peer_count; k++) {
      fast_peer_t *p = &l->fast_peers[k];
      if (p->out && p->out_deadline_ns <= now) {
        /* Retransmitting is the core's: stop answering until it takes the side back. */
        l->fast_granted = 0;
        l->fast_returning = 1;
        due[n++] = l;
        break;
      }
    }
  }
  fast_timer_arm();
  /* The calls may close links (and so change fast_links): they go last, from a copy. */
  for (uint32_t i = 0; i < n; i++) {
    link_t *l = due[i];
    if (l->closing || l->fast_return_ref == NULL) continue;
    napi_handle_scope scope;
    if (napi_open_handle_scope(l->env, &scope) != napi_ok) continue;
    call_js(l, l->fast_return_ref, 0, NULL);
    napi_close_handle_scope(l->env, scope);
  }
}

static void fast_env_cleanup(void *arg) {
  (void)arg;
  if (fast_loop == NULL) return;
  uv_timer_stop(&fast_timer);
  uv_close((uv_handle_t *)&fast_timer, NULL);
  fast_loop = NULL;
}

static void fast_list(link_t *l) {
  if (l->fast_listed) return;
  fast_links[fast_link_count++] = l;
  l->fast_listed = 1;
}

static void fast_unlist(link_t *l) {
  if (!l->fast_listed) return;
  for (uint32_t i = 0; i < fast_link_count; i++) {
    if (fast_links[i] != l) continue;
    fast_links[i] = fast_links[--fast_link_count];
    break;
  }
  l->fast_listed = 0;
  fast_timer_arm();
}

/* Drops every answer, peer and ECPDU in flight (their slots disarmed). */
static void fast_clear(link_t *l) {
  absorb_entry_t *e = absorb_of(l);
  for (uint32_t i = 0; i < l->fast_peer_count; i++) {
    fast_peer_t *p = &l->fast_peers[i];
    if (p->out && p->out_slot >= 0 && e != NULL) {
      __atomic_store_n(&e->slots[p->out_slot].armed, 0, __ATOMIC_RELEASE);
      __atomic_store_n(&e->slots[p->out_slot].acked, 0, __ATOMIC_RELEASE);
    }
    if (p->out) fast_out_total--;
    free(p->out_frame);
  }
  free(l->fast_peers);
  l->fast_peers = NULL;
  l->fast_peer_count = l->fast_peer_cap = 0;
  l->fast_out = 0;
  l->fast_slots = 0;
  if (l->absorb_entry != 0) fast_slots_of_entry[l->absorb_entry] = 0;
  for (uint32_t i = 0; i < l->fast_ids; i++) free(l->fast_by_id[i]);
  free(l->fast_by_id);
  free(l->fast_table);
  l->fast_by_id = NULL;
  l->fast_table = NULL;
  l->fast_ids = l->fast_cap = l->fast_used = l->fast_tombs = 0;
  l->fast_on = 0;
  l->fast_granted = 0;
  l->fast_returning = 0;
  l->fast_seen = NULL;
  offers_clear(l);
  fast_unlist(l);
}

/* An ECP ACK frame for an ECPDU sent here (absorption off, or no slot was free): taken. */
static int fast_ack_frame(link_t *l, const uint8_t *data, size_t len) {
  if (len < ECP_ACK_BYTES || data[12] != (ETHERTYPE_ECP >> 8) || data[13] != (ETHERTYPE_ECP & 0xff)) return 0;
  if (data[14] != 0x14 || data[15] != 0x01) return 0; /* version 1, ACK, subtype VDP */
  if (memcmp(data, NCB_GROUP, 6) != 0 && memcmp(data, l->ack_frame + 6, 6) != 0) return 0;
  fast_peer_t *p = fast_peer_of(l, data + 6, 0);
  uint16_t seq = (uint16_t)(data[16] << 8 | data[17]);
  if (p == NULL || !p->out || p->out_seq != seq) return 0;
  if (p->out_slot >= 0) {
    absorb_entry_t *e = absorb_of(l);
    if (e != NULL) __atomic_store_n(&e->slots[p->out_slot].acked, 0, __ATOMIC_RELEASE);
  }
  fast_settle(l, p, 1, 0);
  return 1;
}

/* Arms a free absorption slot for (peer, seq); -1 when absorption is off or none is free. */
static int fast_arm_slot(link_t *l, const uint8_t *peer, uint16_t seq) {
  absorb_entry_t *e = absorb_of(l);
  if (e == NULL || !l->absorb_attached) return -1;
  for (int k = 0; k < ABSORB_SLOTS; k++) {
    absorb_slot_t *s = &e->slots[k];
    if ((l->fast_slots >> k) & 1) continue;
    if (__atomic_load_n(&s->armed, __ATOMIC_ACQUIRE) != 0 || __atomic_load_n(&s->acked, __ATOMIC_ACQUIRE) != 0) continue;
    __atomic_store_n(&s->mac_hi, be32_of(peer), __ATOMIC_RELAXED);
    __atomic_store_n(&s->mac_lo, (uint32_t)peer[4] << 8 | peer[5], __ATOMIC_RELAXED);
    __atomic_store_n(&s->armed, ABSORB_ARMED | seq, __ATOMIC_RELEASE);
    l->fast_slots |= (uint8_t)(1u << k);
    fast_slots_of_entry[l->absorb_entry] = l->fast_slots;
    return k;
  }
  return -1;
}

#define TAKE_CONSUMED 1 /* answered here (or a duplicate of one answered): not for JS */
#define TAKE_RESYNC 2   /* for JS, which must take it as new (SPAN_RESYNC) */
#define TAKE_OFFERED 4  /* answered from offers, for JS with the answer behind it */

/*
 * An ECP request the offload acknowledged: TAKE_* bits (0: for JS as it is). `room`: octets
 * free in the frame's slot behind it, where an answer from offers is copied for JS
 * (`*answer_len`).
 */
static int fast_take(link_t *l, uint8_t *data, size_t len, size_t room, size_t *answer_len) {
  /* The offload checked it: an ECP VDP request to this port from a known peer. */
  size_t eh = 12;
  uint16_t tpid = (uint16_t)(data[12] << 8 | data[13]);
  if (tpid == ETHERTYPE_CTAG || tpid == ETHERTYPE_STAG) eh = 16;
  fast_peer_t *p = fast_peer_of(l, data + 6, 1);
  if (p == NULL) return 0;
  uint16_t seq = (uint16_t)(data[eh + 4] << 8 | data[eh + 5]);
  if (p->have_seq && seq == p->last_seq) {
    if (!p->last_taken) return 0; /* JS's receive machine knows the first copy */
    p->rx_ecpdus++;
    p->rx_duplicates++;
    return TAKE_CONSUMED;
  }
  int resync = p->have_seq && p->last_taken ? TAKE_RESYNC : 0;
  p->have_seq = 1;
  p->last_seq = seq;
  p->last_taken = 0;
  if (eh != 12 || len < 18 + MANAGER_TLV_BYTES) return resync;
  if (!l->fast_granted || p->out || (l->fast_used == 0 && l->offer_count == 0)) return resync;
  uint64_t now = uv_hrtime();
  if (now < l->fast_hold_ns) return resync; /* the core holds it for the gap */
  /* The ULPDU: a Manager ID TLV (type 5, 16 octets), then VSI TLVs, then End or nothing. */
  const uint8_t *u = data + 18;
  size_t ulen = len - 18;
  if (u[0] != (5 << 1) || u[1] != 16) return resync;
  /* Per TLV: a stored keep-alive (hits[i]) or, all of them, new VSIs with offers (NULL). */
  fast_entry_t *hits[64];
  const uint8_t *tlvs[64];
  uint32_t n = 0, offered = 0, new_vsis = 0;
  size_t at = MANAGER_TLV_BYTES, answer_bytes = 0;
  while (at + 2 <= ulen) {
    uint8_t type = u[at] >> 1;
    size_t tlen = (size_t)(u[at] & 1) << 8 | u[at + 1];
    if (type == 0) break;
    if (type < 1 || type > 4 || at + 2 + tlen > ulen || n == 64) return resync;
    fast_entry_t *e = NULL;
    if (type != 4 && l->fast_used > 0) {
      uint32_t h = fast_hash(data + 6, u, MANAGER_TLV_BYTES, u + at, 2 + tlen);
      e = fast_find(l, h, data + 6, u, u + at, 2 + tlen);
    }
    if (e != NULL) {
      if (offered > 0) return resync;
      answer_bytes += e->answer_len;
    } else {
      if (n > offered || l->offer_state == NULL) return resync;
      if (type == 4 ? !deassoc_check(u + at, tlen) : !offer_check(l, data + 6, u + at, tlen)) return resync;
      if (type != 4) new_vsis++;
      /* Two TLVs for one VSI: the core's to sort out. */
      for (uint32_t k = 0; k < n; k++)
        if (memcmp(tlvs[k] + 8, u + at + 8, 16) == 0) return resync;
      offered++;
      answer_bytes += 2 + tlen;
    }
    hits[n] = e;
    tlvs[n++] = u + at;
    at += 2 + tlen;
  }
  if (n == 0 || 18 + MANAGER_TLV_BYTES + answer_bytes > FAST_FRAME_MAX) return resync;
  if (offered > 0) {
    if (new_vsis > l->offer_credit || (int64_t)new_vsis > (int64_t)l->offer_state[1]) return resync;
    /* JS reads the answer behind the frame: both lengths must fit the span. */
    if (len > 0xffff || 18 + MANAGER_TLV_BYTES + answer_bytes > room) return resync;
  }
  if (p->out_frame == NULL && (p->out_frame = malloc(FAST_FRAME_MAX)) == NULL) return resync;
  uint8_t *f = p->out_frame;
  memcpy(f, l->ack_unicast ? data + 6 : NCB_GROUP, 6);
  memcpy(f + 6, l->ack_frame + 6, 6);
  f[12] = ETHERTYPE_ECP >> 8;
  f[13] = ETHERTYPE_ECP & 0xff;
  f[14] = 0x10; /* version 1, request, subtype VDP */
  f[15] = 0x01;
  uint16_t next = (uint16_t)(l->fast_seq + 1);
  if (next == 0) next = 1; /* lldpad's inc_seqno skips 0, as does the core */
  f[16] = (uint8_t)(next >> 8);
  f[17] = (uint8_t)(next & 0xff);
  memcpy(f + 18, u, MANAGER_TLV_BYTES);
  size_t flen = 18 + MANAGER_TLV_BYTES;
  for (uint32_t i = 0; i < n; i++) {
    if (hits[i] != NULL) {
      memcpy(f + flen, hits[i]->bytes + hits[i]->key_len, hits[i]->answer_len);
      flen += hits[i]->answer_len;
    } else {
      size_t tlen = (size_t)(tlvs[i][0] & 1) << 8 | tlvs[i][1];
      if ((tlvs[i][0] >> 1) == 4) {
        /* De-Associate: the request echoed with status 0x40, held or not (vdp-spec §3.4). */
        memcpy(f + flen, tlvs[i], 2 + tlen);
        f[flen + 2] = 0x40;
      } else {
        offer_write(l, f + flen, tlvs[i], tlen);
      }
      flen += 2 + tlen;
    }
  }
  /* Armed before the ECPDU leaves: a quick peer's ACK can beat the return from send(). */
  int slot = fast_arm_slot(l, data + 6, next);
  ssize_t sent = -1;
  if (l->ack_pending) {
    /* The request's ACK, then the answer, in one call. */
    struct iovec iov[2] = {{l->ack_frame, ECP_ACK_BYTES}, {f, flen}};
    struct mmsghdr m[2];
    memset(m, 0, sizeof m);
    m[0].msg_hdr.msg_iov = &iov[0];
    m[0].msg_hdr.msg_iovlen = 1;
    m[1].msg_hdr.msg_iov = &iov[1];
    m[1].msg_hdr.msg_iovlen = 1;
    int r;
    do r = sendmmsg(l->fd, m, 2, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r >= 1 && m[0].msg_len == ECP_ACK_BYTES) {
      l->ack_pending = 0;
      l->acks_sent++;
    }
    if (r == 2) sent = (ssize_t)m[1].msg_len;
  } else {
    do sent = send(l->fd, f, flen, MSG_DONTWAIT);
    while (sent < 0 && errno == EINTR);
  }
  if (sent != (ssize_t)flen) {
    if (slot >= 0) {
      __atomic_store_n(&absorb_of(l)->slots[slot].armed, 0, __ATOMIC_RELEASE);
      l->fast_slots &= (uint8_t) ~(1u << slot);
      fast_slots_of_entry[l->absorb_entry] = l->fast_slots;
    }
    return resync; /* the core answers and reports the error */
  }
  l->fast_seq = next;
  if (l->fast_gap_ns > 0) l->fast_hold_ns = now + l->fast_gap_ns;
  p->out = 1;
  p->out_slot = (int8_t)slot;
  p->out_seq = next;
  p->out_len = (uint16_t)flen;
  p->out_deadline_ns = now + l->fast_ack_ns;
  l->fast_out++;
  p->tx_ecpdus++;
  p->tx_tlvs += n;
  fast_out_total++;
  if (fast_loop != NULL && (!uv_is_active((uv_handle_t *)&fast_timer) || p->out_deadline_ns < fast_timer_due))
    fast_timer_arm();
  if (offered > 0) {
    /* The core reads this request itself (and counts it): its receive machine knows it. */
    for (uint32_t i = 0; i < n; i++) {
      if ((tlvs[i][0] >> 1) == 4) continue; /* the core lets it go when it takes the request */
      uint8_t key[KNOWN_KEY];
      memcpy(key, data + 6, 6);
      memcpy(key + 6, tlvs[i] + 8, 16);
      if (known_add(l, key) != 0) l->offer_count = 0; /* unrecorded: no more offers */
    }
    l->offer_credit -= new_vsis;
    l->offer_state[1] -= (int32_t)new_vsis;
    l->offers_sent++;
    memcpy(data + len, f, flen);
    *answer_len = flen;
    return resync | TAKE_OFFERED;
  }
  l->answers_sent++;
  p->last_taken = 1;
  p->rx_ecpdus++;
  p->rx_tlvs += n;
  double now_us = fast_now_us(l, now);
  for (uint32_t i = 0; i < n; i++) {
    double *seen = l->fast_seen + 2 * (size_t)hits[i]->id;
    seen[0] = now_us;
    seen[1] += 1;
  }
  return TAKE_CONSUMED;
}


static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  link_t *l = (link_t *)handle->data;
  if (l->closing || l->failed) return;
  if (status < 0) {
    /* libuv turns EPOLLERR into UV_EBADF and stops the handle. A pending socket error (the
     * kernel sets ENETDOWN when the interface goes down or away) is the usual cause: read it,
     * which also clears it, and poll again. */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err != 0 && err != ENETDOWN) {
      l->failed = 1;
      report_error(l, err, "poll", 1);
      return;
    }
    int rc = uv_poll_start(&l->poll, UV_READABLE, on_readable);
    if (rc < 0) {
      l->failed = 1;
      report_error(l, -rc, "uv_poll_start", 1);
      return;
    }
    if (err == ENETDOWN) {
      report_netdown(l);
      if (l->failed || l->closing) return;
    }
  }
  /* ACKs the filter took in for answers sent on any link (one read when none are new). */
  if (fast_out_total > 0) fast_check_all(0);
  int delivered = 0;
  while (!l->closing && !l->failed && delivered < FRAMES_PER_WAKEUP_MAX) {
    prepare_batch(l);
    int n = recvmmsg(l->fd, l->msgs, (unsigned)l->batch, MSG_DONTWAIT, NULL);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (err == ENETDOWN) {
        report_netdown(l);
        /* The pending error is cleared by the failed read; look for frames again. */
        continue;
      }
      l->failed = 1;
      uv_poll_stop(&l->poll);
      report_error(l, err, "recvmmsg", 1);
      break;
    }
    if (n == 0) break;
    napi_handle_scope scope;
    if (napi_open_handle_scope(l->env, &scope) != napi_ok) break;
    napi_value array = NULL;
    if (l->rx_data == NULL) napi_create_array_with_length(l->env, (size_t)n, &array);
    uint32_t count = 0;
    for (int i = 0; i < n; i++) {
      if (l->addrs[i].sll_pkttype == PACKET_OUTGOING) continue;
      if (l->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        l->truncated++;
        continue;
      }
      size_t len;
      uint8_t *data = frame_of(l, i, &len);
      if (l->fast_out > 0 && fast_ack_frame(l, data, len)) continue;
      /* Only with a receive area: the Buffer-per-frame path has no way to say so to JS. */
      int acked = 0, taken = 0;
      size_t answer_len = 0;
      if (l->ack_on && l->rx_data != NULL && ack_ecp_request(l, data, len)) {
        uint8_t *slot_end = l->slots + (size_t)(i + 1) * l->slot_bytes;
        if (l->fast_on) taken = fast_take(l, data, len, (size_t)(slot_end - (data + len)), &answer_len);
        acked = ack_flush(l);
      }
      if (taken & TAKE_CONSUMED) continue;
      if (l->rx_data != NULL) {
        uint32_t flags = (acked ? SPAN_ACKED : 0) | ((taken & TAKE_RESYNC) ? SPAN_RESYNC : 0);
        l->rx_spans[2 * count] = (uint32_t)(data - l->rx_data);
        l->rx_spans[2 * count + 1] =
            (taken & TAKE_OFFERED) ? (uint32_t)len | (uint32_t)answer_len << 16 | SPAN_OFFERED | flags : (uint32_t)len | flags;
        count++;
        continue;
      }
      napi_value buf;
      if (napi_create_buffer_copy(l->env, len, data, NULL, &buf) != napi_ok) continue;
      napi_set_element(l->env, array, count++, buf);
    }
    if (count > 0) {
      napi_value argv[1];
      if (array != NULL) argv[0] = array;
      else napi_create_uint32(l->env, count, &argv[0]);
      call_js(l, l->on_frames_ref, 1, argv);
    }
    napi_close_handle_scope(l->env, scope);
    delivered += n;
    if (n < l->batch) break;
  }
}

static link_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  link_t *l = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, (void **)&l) != napi_ok || l == NULL) {
    napi_throw_error(env, NULL, "Cannot use AfPacketSocket: object is not initialized");
    return NULL;
  }
  return l;
}

static int get_int_option(napi_env env, napi_value opts, const char *key, int fallback) {
  bool has = false;
  napi_value v;
  int32_t out;
  napi_valuetype t;
  if (opts == NULL) return fallback;
  if (napi_has_named_property(env, opts, key, &has) != napi_ok || !has) return fallback;
  if (napi_get_named_property(env, opts, key, &v) != napi_ok) return fallback;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return fallback;
  if (napi_get_value_int32(env, v, &out) != napi_ok) return fallback;
  return out;
}

static napi_value js_constructor(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  char ifname[IF_NAMESIZE + 1];
  size_t name_len = 0;
  if (argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], ifname, sizeof ifname, &name_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "Cannot open raw socket: interface name must be a string");
    return NULL;
  }
  if (name_len == 0 || name_len >= IF_NAMESIZE) {
    throw_errno(env, name_len == 0 ? EINVAL : ENAMETOOLONG, "if_nametoindex");
    return NULL;
  }
  napi_value opts = NULL;
  if (argc >= 2) {
    napi_valuetype t;
    napi_typeof(env, argv[1], &t);
    if (t == napi_object) opts = argv[1];
  }
  int rcvbuf = get_int_option(env, opts, "rcvBufBytes", 1 << 20);
  int batch = get_int_option(env, opts, "batch", 32);
  if (batch < 1) batch = 1;
  if (batch > BATCH_MAX) batch = BATCH_MAX;

  /* Group addresses to join; default: the nearest customer bridge address only. */
  uint8_t groups[MULTICAST_MAX][6];
  int group_count = 0;
  bool has_mc = false;
  if (opts) napi_has_named_property(env, opts, "multicast", &has_mc);
  if (has_mc) {
    napi_value list;
    uint32_t len = 0;
    NAPI_CALL(env, napi_get_named_property(env, opts, "multicast", &list));
    NAPI_CALL(env, napi_get_array_length(env, list, &len));
    for (uint32_t i = 0; i < len && group_count < MULTICAST_MAX; i++) {
      napi_value item;
      void *data;
      size_t blen;
      NAPI_CALL(env, napi_get_element(env, list, i, &item));
      if (napi_get_buffer_info(env, item, &data, &blen) != napi_ok || blen != 6) {
        napi_throw_type_error(env, NULL, "Cannot open raw socket: multicast entries must be 6-byte buffers");
        return NULL;
      }
      memcpy(groups[group_count++], data, 6);
    }
  } else {
    static const uint8_t ncb[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};
    memcpy(groups[group_count++], ncb, 6);
  }

  unsigned ifindex = if_nametoindex(ifname);
  if (ifindex == 0) {
    throw_errno(env, errno == ENXIO ? ENODEV : errno, "if_nametoindex");
    return NULL;
  }

  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  struct sock_fprog prog = {.len = sizeof bpf_code / sizeof bpf_code[0], .filter = bpf_code};
  const char *failed = NULL;
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) failed = "setsockopt(SO_ATTACH_FILTER)";
  /* SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN; plain SO_RCVBUF is capped. */
  if (!failed && rcvbuf > 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
    failed = "setsockopt(SO_RCVBUF)";
  if (!failed && setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0)
    failed = "setsockopt(PACKET_AUXDATA)";
  if (!failed && setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0 &&
      errno != ENOPROTOOPT && errno != EINVAL)
    failed = "setsockopt(PACKET_IGNORE_OUTGOING)";
  if (!failed) {
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) failed = "bind";
  }
  for (int i = 0; !failed && i < group_count; i++) {
    struct packet_mreq mreq;
    memset(&mreq, 0, sizeof mreq);
    mreq.mr_ifindex = (int)ifindex;
    mreq.mr_type = PACKET_MR_MULTICAST;
    mreq.mr_alen = 6;
    memcpy(mreq.mr_address, groups[i], 6);
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0)
      failed = "setsockopt(PACKET_ADD_MEMBERSHIP)";
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, name_len);
  if (!failed && ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) failed = "ioctl(SIOCGIFHWADDR)";
  uint8_t mac[6];
  if (!failed) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  int mtu = 1500;
  if (!failed && ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0) mtu = ifr.ifr_mtu;
  if (failed) {
    int err = errno;
    close(fd);
    throw_errno(env, err, failed);
    return NULL;
  }

  link_t *l = calloc(1, sizeof *l);
  if (l == NULL) {
    close(fd);
    throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  l->env = env;
  l->fd = fd;
  l->ifindex = (int)ifindex;
  l->mtu = mtu;
  memcpy(l->mac, mac, 6);
  memcpy(l->ifname, ifname, name_len + 1);
  l->batch = batch;
  /* Ethernet header + one tag + MTU, and a little slack to tell truncation apart. */
  l->slot_bytes = (size_t)mtu + 14 + 4 + 8 + TAG_ROOM;
  l->slots = malloc(l->slot_bytes * (size_t)batch);
  if (l->slots == NULL) {
    close(fd);
    free(l);
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  l->poll.data = l;
  if (napi_wrap(env, self, l, finalize, NULL, &l->wrapper_ref) != napi_ok) {
    close(fd);
    free(l->slots);
    free(l);
    napi_throw_error(env, NULL, "Cannot open raw socket: napi_wrap failed");
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, env_cleanup, l) == napi_ok) l->hook_added = 1;

  napi_value v;
  napi_create_int32(env, (int32_t)ifindex, &v);
  napi_set_named_property(env, self, "ifindex", v);
  napi_create_int32(env, mtu, &v);
  napi_set_named_property(env, self, "mtu", v);
  napi_create_buffer_copy(env, 6, mac, NULL, &v);
  napi_set_named_property(env, self, "mac", v);
  napi_create_int32(env, batch, &v);
  napi_set_named_property(env, self, "batch", v);
  napi_create_double(env, (double)(l->slot_bytes * (size_t)batch), &v);
  napi_set_named_property(env, self, "rxBytesMax", v);
  return self;
}

/* The data pointer and length of a typed array of `want` type, or false. */
static bool typed_array_of(napi_env env, napi_value v, napi_typedarray_type want, void **data,
                           size_t *length) {
  bool is_ta = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return false;
  if (napi_get_typedarray_info(env, v, &type, length, data, &ab, &offset) != napi_ok) return false;
  return type == want;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  link_t *l = NULL;
  NAPI_CALL(env, napi_unwrap(env, self, (void **)&l));
  napi_valuetype t0 = napi_undefined, t1 = napi_undefined;
  if (argc >= 2) {
    napi_typeof(env, argv[0], &t0);
    napi_typeof(env, argv[1], &t1);
  }
  if (t0 != napi_function || t1 != napi_function) {
    napi_throw_type_error(env, NULL, "Cannot start reading: onFrames and onError must be functions");
    return NULL;
  }
  if (l->closing) {
    napi_throw_error(env, "ERR_CLOSED", "Cannot start reading: socket is closed");
    return NULL;
  }
  if (l->handle_state != HANDLE_NONE) {
    napi_throw_error(env, "ERR_STARTED", "Cannot start reading: already reading");
    return NULL;
  }
  void *rx_data = NULL, *rx_spans = NULL;
  size_t rx_data_bytes = 0, rx_spans_count = 0;
  if (argc >= 3) {
    napi_valuetype t2 = napi_undefined;
    napi_typeof(env, argv[2], &t2);
    if (t2 != napi_undefined) {
      if (argc < 4 || !typed_array_of(env, argv[2], napi_uint8_array, &rx_data, &rx_data_bytes) ||
          !typed_array_of(env, argv[3], napi_uint32_array, &rx_spans, &rx_spans_count)) {
        napi_throw_type_error(env, NULL, "Cannot start reading: the receive area must be a Uint8Array and a Uint32Array of spans");
        return NULL;
      }
      if (rx_data_bytes < l->slot_bytes * (size_t)l->batch || rx_spans_count < 2 * (size_t)l->batch) {
        napi_throw_range_error(env, NULL, "Cannot start reading: the receive area is smaller than one batch (see rxBytesMax and batch)");
        return NULL;
      }
    }
  }
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  napi_value name;
  napi_create_string_utf8(env, "AfPacketSocket", NAPI_AUTO_LENGTH, &name);
  NAPI_CALL(env, napi_async_init(env, self, name, &l->async_ctx));
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &l->on_frames_ref));
  NAPI_CALL(env, napi_create_reference(env, argv[1], 1, &l->on_error_ref));
  if (rx_data != NULL) {
    /* Held strongly: the typed arrays (and so their memory) live until close. */
    NAPI_CALL(env, napi_create_reference(env, argv[2], 1, &l->rx_data_ref));
    NAPI_CALL(env, napi_create_reference(env, argv[3], 1, &l->rx_spans_ref));
    /* recvmmsg writes straight into the JS area; the malloc'd slots are not needed. */
    free(l->slots);
    l->slots = rx_data;
    l->rx_data = rx_data;
    l->rx_spans = rx_spans;
  }
  int rc = uv_poll_init(loop, &l->poll, l->fd);
  if (rc < 0) {
    throw_errno(env, -rc, "uv_poll_init");
    return NULL;
  }
  l->poll.data = l;
  l->handle_state = HANDLE_ACTIVE;
  rc = uv_poll_start(&l->poll, UV_READABLE, on_readable);
  if (rc < 0) {
    stop_io(l);
    throw_errno(env, -rc, "uv_poll_start");
    return NULL;
  }
  uint32_t count;
  NAPI_CALL(env, napi_reference_ref(env, l->wrapper_ref, &count));
  l->wrapper_strong = 1;
  return NULL;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  bool is_ta = false;
  void *data = NULL;
  size_t len = 0;
  if (argc >= 1) napi_is_typedarray(env, argv[0], &is_ta);
  if (is_ta) {
    napi_typedarray_type type;
    napi_value ab;
    size_t offset;
    NAPI_CALL(env, napi_get_typedarray_info(env, argv[0], &type, &len, &data, &ab, &offset));
    if (type != napi_uint8_array) is_ta = false;
  }
  if (!is_ta) {
    napi_throw_type_error(env, NULL, "Cannot send frame: expected a Uint8Array");
    return NULL;
  }
  int result = 0;
  if (l->closing || l->fd < 0) {
    result = -EBADF;
  } else {
    for (;;) {
      ssize_t n = send(l->fd, data, len, MSG_DONTWAIT);
      if (n >= 0) break;
      if (errno == EINTR) continue;
      result = -errno;
      break;
    }
  }
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

static napi_value js_set_ecp_ack(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t == napi_null || t == napi_undefined) {
    l->ack_on = 0;
    l->ack_peer_count = 0;
    fast_forget_peers(l);
    return NULL;
  }
  void *source = NULL, *peers = NULL;
  size_t source_len = 0, peers_len = 0;
  bool unicast = false;
  if (argc < 3 || napi_get_buffer_info(env, argv[0], &source, &source_len) != napi_ok || source_len != 6 ||
      napi_get_value_bool(env, argv[1], &unicast) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &peers, &peers_len) != napi_ok || peers_len % 6 != 0) {
    napi_throw_type_error(env, NULL, "Cannot set the ECP ACK offload: expected a 6-octet source Buffer, a boolean and a Buffer of 6-octet peers");
    return NULL;
  }
  uint8_t *copy = NULL;
  if (peers_len > 0) {
    copy = malloc(peers_len);
    if (copy == NULL) {
      throw_errno(env, ENOMEM, "malloc");
      return NULL;
    }
    memcpy(copy, peers, peers_len);
  }
  free(l->ack_peers);
  l->ack_peers = copy;
  l->ack_peer_count = (uint32_t)(peers_len / 6);
  fast_forget_peers(l);
  l->ack_unicast = unicast;
  uint8_t *ack = l->ack_frame;
  memcpy(ack, NCB_GROUP, 6);
  memcpy(ack + 6, source, 6);
  ack[12] = ETHERTYPE_ECP >> 8;
  ack[13] = ETHERTYPE_ECP & 0xff;
  /* Version 1, operation ACK (1), subtype VDP (1). */
  ack[14] = (1 << 4) | (1 << 2);
  ack[15] = 0x01;
  ack[16] = ack[17] = 0;
  l->ack_on = 1;
  return NULL;
}

/* absorbAcks(own: Buffer) -> map entry number; absorbAcks(null) -> 0 (classic filter again). */
static napi_value js_absorb_acks(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (l->closing || l->fd < 0) {
    napi_throw_error(env, "ERR_CLOSED", "Cannot set ECP ACK absorption: socket is closed");
    return NULL;
  }
  if (t == napi_null || t == napi_undefined) {
    int err = absorb_disable(l);
    if (err != 0) {
      throw_errno(env, err, "setsockopt(SO_ATTACH_FILTER)");
      return NULL;
    }
    napi_create_uint32(env, 0, &out);
    return out;
  }
  void *own = NULL;
  size_t own_len = 0;
  if (napi_get_buffer_info(env, argv[0], &own, &own_len) != napi_ok || own_len != 6) {
    napi_throw_type_error(env, NULL, "Cannot set ECP ACK absorption: expected the port's MAC as a 6-octet Buffer");
    return NULL;
  }
  int err = 0;
  const char *failed = absorb_enable(l, own, &err);
  if (failed != NULL) {
    throw_errno(env, err, failed);
    return NULL;
  }
  napi_create_uint32(env, l->absorb_entry, &out);
  return out;
}

/* armAck(slot, peer: Buffer, sequence) arms a slot; sequence < 0 disarms it. */
static napi_value js_arm_ack(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  uint32_t slot = 0;
  int32_t seq = -1;
  void *mac = NULL;
  size_t mac_len = 0;
  if (argc < 3 || napi_get_value_uint32(env, argv[0], &slot) != napi_ok || slot >= ABSORB_SLOTS ||
      napi_get_buffer_info(env, argv[1], &mac, &mac_len) != napi_ok || mac_len != 6 ||
      napi_get_value_int32(env, argv[2], &seq) != napi_ok || seq > 0xffff) {
    napi_throw_type_error(env, NULL, "Cannot arm ECP ACK absorption: expected a slot below 8, a 6-octet peer Buffer and a sequence number");
    return NULL;
  }
  absorb_entry_t *e = absorb_of(l);
  if (e == NULL || !l->absorb_attached) return NULL;
  absorb_slot_t *s = &e->slots[slot];
  if (seq < 0) {
    __atomic_store_n(&s->armed, 0, __ATOMIC_RELEASE);
    return NULL;
  }
  const uint8_t *m = mac;
  __atomic_store_n(&s->armed, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&s->mac_hi, be32_of(m), __ATOMIC_RELAXED);
  __atomic_store_n(&s->mac_lo, (uint32_t)m[4] << 8 | m[5], __ATOMIC_RELAXED);
  __atomic_store_n(&s->armed, ABSORB_ARMED | (uint32_t)seq, __ATOMIC_RELEASE);
  return NULL;
}

/*
 * takeAbsorbedAcks(out: Uint32Array) -> n: the ACKs absorbed since the last call, on every
 * link of the process, as n triples (map entry, slot, sequence) in `out` (at most out.length
 * / 3; the rest stays for the next call). Costs one memory read when there is nothing new.
 */
static napi_value js_take_absorbed_acks(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t *buf = NULL;
  size_t len = 0;
  if (argc < 1 || !typed_array_of(env, argv[0], napi_uint32_array, (void **)&buf, &len)) {
    napi_throw_type_error(env, NULL, "Cannot take absorbed ECP ACKs: expected a Uint32Array");
    return NULL;
  }
  uint32_t n = 0;
  if (absorb_mem != NULL) {
    uint64_t total = __atomic_load_n(&absorb_mem[0].absorbed, __ATOMIC_ACQUIRE);
    if (total != absorb_total_seen) {
      int full = 0;
      for (uint32_t i = 1; i < absorb_entries_high && !full; i++) {
        if (!absorb_used[i]) continue;
        absorb_entry_t *e = &absorb_mem[i];
        uint64_t count = __atomic_load_n(&e->absorbed, __ATOMIC_ACQUIRE);
        if (count == absorb_taken[i]) continue;
        for (uint32_t k = 0; k < ABSORB_SLOTS; k++) {
          if (3 * (size_t)(n + 1) > len) {
            full = 1;
            break;
          }
          if ((fast_slots_of_entry[i] >> k) & 1) continue; /* the answers' own (fast_check) */
          if (__atomic_load_n(&e->slots[k].acked, __ATOMIC_ACQUIRE) == 0) continue;
          uint32_t v = __atomic_exchange_n(&e->slots[k].acked, 0, __ATOMIC_ACQ_REL);
          if (v == 0) continue;
          buf[3 * n] = i;
          buf[3 * n + 1] = k;
          buf[3 * n + 2] = v & 0xffff;
          n++;
        }
        if (!full) absorb_taken[i] = count;
      }
      if (!full) absorb_total_seen = total;
    }
  }
  napi_create_uint32(env, n, &out);
  return out;
}

/* fastAnswers(seen: Float64Array, nowUs, onReturn) turns keep-alive answers on: `seen` gets
 * [last time (µs, the caller's clock, which reads nowUs now), count] per answer id and bounds
 * the ids; onReturn() is called when an ECPDU sent here ran out of its ack timer.
 * fastAnswers(null) turns them off. Either way, every answer and ECPDU in flight is dropped. */
static napi_value js_fast_answers(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  fast_clear(l);
  drop_ref(env, &l->offer_state_ref);
  drop_ref(env, &l->fast_seen_ref);
  drop_ref(env, &l->fast_return_ref);
  if (t == napi_null || t == napi_undefined) return NULL;
  void *seen = NULL;
  size_t seen_len = 0;
  double now_us = 0;
  napi_valuetype tf = napi_undefined;
  if (argc >= 3) napi_typeof(env, argv[2], &tf);
  if (argc < 3 || !typed_array_of(env, argv[0], napi_float64_array, &seen, &seen_len) ||
      napi_get_value_double(env, argv[1], &now_us) != napi_ok || tf != napi_function) {
    napi_throw_type_error(env, NULL, "Cannot turn keep-alive answers on: expected a Float64Array, the clock's time in µs and a function");
    return NULL;
  }
  if (l->closing || l->fd < 0) {
    napi_throw_error(env, "ERR_CLOSED", "Cannot turn keep-alive answers on: socket is closed");
    return NULL;
  }
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  if (fast_loop == NULL) {
    uv_timer_init(loop, &fast_timer);
    uv_unref((uv_handle_t *)&fast_timer);
    fast_loop = loop;
    /* Closed with its environment: a worker's loop must not end with the handle open. */
    NAPI_CALL(env, napi_add_env_cleanup_hook(env, fast_env_cleanup, NULL));
  } else if (fast_loop != loop) {
    napi_throw_error(env, "ERR_THREAD", "Cannot turn keep-alive answers on: they run on one thread per process");
    return NULL;
  }
  l->fast_ids = (uint32_t)(seen_len / 2);
  l->fast_by_id = calloc(l->fast_ids ? l->fast_ids : 1, sizeof *l->fast_by_id);
  if (l->fast_by_id == NULL) {
    throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &l->fast_seen_ref));
  NAPI_CALL(env, napi_create_reference(env, argv[2], 1, &l->fast_return_ref));
  l->fast_seen = seen;
  l->fast_offset_us = now_us - (double)(uv_hrtime() / 1000);
  l->fast_on = 1;
  fast_list(l);
  return NULL;
}

/* fastAnswer(id, peer: Buffer, request: Uint8Array, response: Uint8Array) stores an answer
 * (replacing id's); fastAnswer(id) removes it. `request`: the Manager ID TLV and the VSI TLV;
 * `response`: the VSI TLV. */
static napi_value js_fast_answer(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  uint32_t id = 0;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &id) != napi_ok) {
    napi_throw_type_error(env, NULL, "Cannot set a keep-alive answer: expected an id");
    return NULL;
  }
  if (!l->fast_on || id >= l->fast_ids) {
    napi_throw_range_error(env, NULL, "Cannot set a keep-alive answer: answers are off or the id is beyond the seen array");
    return NULL;
  }
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  fast_remove(l, id);
  if (t == napi_undefined || t == napi_null) return NULL;
  void *peer = NULL, *key = NULL, *answer = NULL;
  size_t peer_len = 0, key_len = 0, answer_len = 0;
  if (argc < 4 || napi_get_buffer_info(env, argv[1], &peer, &peer_len) != napi_ok || peer_len != 6 ||
      !typed_array_of(env, argv[2], napi_uint8_array, &key, &key_len) ||
      !typed_array_of(env, argv[3], napi_uint8_array, &answer, &answer_len)) {
    napi_throw_type_error(env, NULL, "Cannot set a keep-alive answer: expected an id, a 6-octet peer Buffer and two Uint8Arrays");
    return NULL;
  }
  const uint8_t *k = key, *a = answer;
  /* A Manager ID TLV (type 5, 16 octets) and one VSI TLV; a VSI TLV as the answer. */
  if (key_len < MANAGER_TLV_BYTES + 2 || k[0] != (5 << 1) || k[1] != 16 ||
      (size_t)((k[18] & 1) << 8 | k[19]) + 2 + MANAGER_TLV_BYTES != key_len || (k[18] >> 1) < 1 || (k[18] >> 1) > 3 ||
      answer_len < 2 || (size_t)((a[0] & 1) << 8 | a[1]) + 2 != answer_len) {
    napi_throw_range_error(env, NULL, "Cannot set a keep-alive answer: the request must be a Manager ID TLV and one request VSI TLV, the response one VSI TLV");
    return NULL;
  }
  if (fast_room(l) != 0) {
    throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  fast_entry_t *e = malloc(sizeof *e + key_len + answer_len);
  if (e == NULL) {
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  e->id = id;
  memcpy(e->peer, peer, 6);
  e->key_len = (uint16_t)key_len;
  e->answer_len = (uint16_t)answer_len;
  memcpy(e->bytes, key, key_len);
  memcpy(e->bytes + key_len, answer, answer_len);
  e->hash = fast_hash(e->peer, e->bytes, MANAGER_TLV_BYTES, e->bytes + MANAGER_TLV_BYTES, key_len - MANAGER_TLV_BYTES);
  fast_put(l, e);
  l->fast_by_id[id] = e;
  return NULL;
}

/* fastGrant(lastSequence, ackTimerUs, holdUntilUs, gapUs[, offerCredit, offerFormats]): the
 * link may answer, numbering on from lastSequence, no ECPDU before holdUntilUs (the caller's
 * clock) and each gapUs after the one before; and answer at most offerCredit new VSIs from
 * offers, of the filter formats whose bits (1 << format) offerFormats sets. */
static napi_value js_fast_grant(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  uint32_t seq = 0;
  double ack_us = 0, hold_us = 0, gap_us = 0;
  if (argc < 4 || napi_get_value_uint32(env, argv[0], &seq) != napi_ok || seq > 0xffff ||
      napi_get_value_double(env, argv[1], &ack_us) != napi_ok || !(ack_us > 0) ||
      napi_get_value_double(env, argv[2], &hold_us) != napi_ok ||
      napi_get_value_double(env, argv[3], &gap_us) != napi_ok || !(gap_us >= 0)) {
    napi_throw_type_error(env, NULL, "Cannot lend the ECP transmit side: expected a sequence number, an ack timer, a hold time and a gap in µs");
    return NULL;
  }
  if (!l->fast_on || l->fast_out > 0) {
    napi_throw_error(env, "ERR_STATE", "Cannot lend the ECP transmit side: answers are off or it was not taken back");
    return NULL;
  }
  l->fast_seq = (uint16_t)seq;
  l->fast_ack_ns = (uint64_t)(ack_us * 1000);
  double hold_ns = (hold_us - l->fast_offset_us) * 1000;
  l->fast_hold_ns = hold_ns > 0 ? (uint64_t)hold_ns : 0;
  l->fast_gap_ns = (uint64_t)(gap_us * 1000);
  uint32_t credit = 0, formats = 0;
  if (argc >= 6 && (napi_get_value_uint32(env, argv[4], &credit) != napi_ok ||
                    napi_get_value_uint32(env, argv[5], &formats) != napi_ok || formats > 0x1e)) {
    napi_throw_type_error(env, NULL, "Cannot lend the ECP transmit side: expected a count of new VSIs and a filter format mask (bits 1-4)");
    return NULL;
  }
  l->offer_credit = credit;
  l->offer_formats = (uint8_t)formats;
  l->fast_granted = 1;
  l->fast_returning = 0;
  return NULL;
}

/* fastReclaim() -> { sequence, holdUntilUs, outstanding: [peer, sequence, slot, frame, deadlineUs][] }:
 * the transmit side back, with the ECPDUs still in flight (now the caller's, slots armed). */
static napi_value js_fast_reclaim(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  fast_check(l);
  napi_value out, list, v;
  NAPI_CALL(env, napi_create_object(env, &out));
  napi_create_uint32(env, l->fast_seq, &v);
  napi_set_named_property(env, out, "sequence", v);
  napi_create_double(env, fast_now_us(l, l->fast_hold_ns), &v);
  napi_set_named_property(env, out, "holdUntilUs", v);
  NAPI_CALL(env, napi_create_array(env, &list));
  uint32_t n = 0;
  for (uint32_t i = 0; i < l->fast_peer_count && l->fast_out > 0; i++) {
    fast_peer_t *p = &l->fast_peers[i];
    if (!p->out) continue;
    napi_value item;
    napi_create_array_with_length(env, 5, &item);
    napi_create_buffer_copy(env, 6, p->mac, NULL, &v);
    napi_set_element(env, item, 0, v);
    napi_create_uint32(env, p->out_seq, &v);
    napi_set_element(env, item, 1, v);
    napi_create_int32(env, p->out_slot, &v);
    napi_set_element(env, item, 2, v);
    napi_create_buffer_copy(env, p->out_len, p->out_frame, NULL, &v);
    napi_set_element(env, item, 3, v);
    napi_create_double(env, fast_now_us(l, p->out_deadline_ns), &v);
    napi_set_element(env, item, 4, v);
    napi_set_element(env, list, n++, item);
    /* The slot stays armed: an ACK taken in from now on is the collector's to report. */
    fast_settle(l, p, 0, 0);
  }
  napi_set_named_property(env, out, "outstanding", list);
  l->fast_granted = 0;
  l->fast_returning = 0;
  if (n > 0) fast_timer_arm();
  return out;
}

/* fastOffers(state: Int32Array) turns offers on (keep-alive answers must be on): state is
 * [epoch, headroom], shared with the resource manager. fastOffers(null) turns them off. Either
 * way every offer and known VSI is dropped. */
static napi_value js_fast_offers(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  offers_clear(l);
  drop_ref(env, &l->offer_state_ref);
  if (t == napi_null || t == napi_undefined) return NULL;
  void *state = NULL;
  size_t state_len = 0;
  if (!typed_array_of(env, argv[0], napi_int32_array, &state, &state_len) || state_len < 2) {
    napi_throw_type_error(env, NULL, "Cannot turn offers on: expected an Int32Array [epoch, headroom]");
    return NULL;
  }
  if (!l->fast_on) {
    napi_throw_error(env, "ERR_STATE", "Cannot turn offers on: keep-alive answers are off");
    return NULL;
  }
  l->offers = calloc(OFFERS_MAX, sizeof *l->offers);
  if (l->offers == NULL) {
    throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &l->offer_state_ref));
  l->offer_state = state;
  return NULL;
}

/* fastOffer(typeId, typeVersion, filterFormat, groupId, vid, epoch) -> boolean: stores (or
 * replaces) the offer for (typeId, typeVersion, filterFormat, groupId); false when the table
 * is full (OFFERS_MAX). Offers of another epoch than the state's are never used. */
static napi_value js_fast_offer(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  uint32_t v[6];
  for (size_t i = 0; i < 6; i++) {
    if (i >= argc || napi_get_value_uint32(env, argv[i], &v[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "Cannot store an offer: expected type id, version, filter format, GroupID, VID and epoch");
      return NULL;
    }
  }
  if (v[0] > 0xffffff || v[1] > 0xff || v[2] < 1 || v[2] > 4 || v[4] < 2 || v[4] > 4094 ||
      ((v[2] == 1 || v[2] == 2) && v[3] != 0)) {
    napi_throw_range_error(env, NULL, "Cannot store an offer: type id over 24 bits, version over 8, filter format not 1..4, VID not 2..4094, or a GroupID for format 1/2");
    return NULL;
  }
  if (l->offer_state == NULL) {
    napi_throw_error(env, "ERR_STATE", "Cannot store an offer: offers are off");
    return NULL;
  }
  napi_value out;
  uint32_t i = 0;
  while (i < l->offer_count && !(l->offers[i].type_id == v[0] && l->offers[i].version == v[1] &&
                                 l->offers[i].format == v[2] && l->offers[i].group == v[3]))
    i++;
  if (i == l->offer_count) {
    /* Full: an offer of a past epoch makes room. */
    if (i == OFFERS_MAX) {
      uint32_t epoch = (uint32_t)l->offer_state[0];
      for (i = 0; i < l->offer_count && l->offers[i].epoch == epoch; i++) {}
    }
    if (i == OFFERS_MAX) {
      napi_get_boolean(env, false, &out);
      return out;
    }
    if (i == l->offer_count) l->offer_count++;
  }
  offer_t *o = &l->offers[i];
  o->type_id = v[0];
  o->version = (uint8_t)v[1];
  o->format = (uint8_t)v[2];
  o->group = v[3];
  o->vid = (uint16_t)v[4];
  o->epoch = v[5];
  napi_get_boolean(env, true, &out);
  return out;
}

/* fastKnown(peer: Buffer, vsiId: Uint8Array(16), held: boolean): the core holds (or no longer
 * holds) the VSI `vsiId` of `peer`: requests for it are never answered from offers. */
static napi_value js_fast_known(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  void *mac = NULL, *id = NULL;
  size_t mac_len = 0, id_len = 0;
  bool held = false;
  if (argc < 3 || napi_get_buffer_info(env, argv[0], &mac, &mac_len) != napi_ok || mac_len != 6 ||
      !typed_array_of(env, argv[1], napi_uint8_array, &id, &id_len) || id_len != 16 ||
      napi_get_value_bool(env, argv[2], &held) != napi_ok) {
    napi_throw_type_error(env, NULL, "Cannot mark a VSI: expected a 6-octet peer Buffer, a 16-octet VSIID and a boolean");
    return NULL;
  }
  if (l->offer_state == NULL) return NULL; /* offers off: nothing to keep */
  uint8_t key[KNOWN_KEY];
  memcpy(key, mac, 6);
  memcpy(key + 6, id, 16);
  if (!held) {
    known_remove(l, key);
    return NULL;
  }
  if (known_add(l, key) != 0) {
    /* Without the VSI in the set an offer could answer for it: no more offers. */
    l->offer_count = 0;
    throw_errno(env, ENOMEM, "calloc");
  }
  return NULL;
}

/* fastForget(peer): the core restarted its receive machine for `peer` (link down, LLDP
 * neighbour lost): the next request of it is new whatever its sequence number. */
static napi_value js_fast_forget(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  link_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  void *mac = NULL;
  size_t mac_len = 0;
  if (argc < 1 || napi_get_buffer_info(env, argv[0], &mac, &mac_len) != napi_ok || mac_len != 6) {
    napi_throw_type_error(env, NULL, "Cannot forget a peer's sequence: expected a 6-octet peer Buffer");
    return NULL;
  }
  fast_peer_t *p = fast_peer_of(l, mac, 0);
  if (p != NULL) {
    p->have_seq = 0;
    p->last_taken = 0;
  }
  return NULL;
}

/* fastPeerStats() -> [peer, rxEcpdus, rxDuplicates, rxVdpTlvs, txEcpdus, txVdpTlvs, rxAcks,
 * rxAcksAbsorbed][]: what the answers did, per peer, since they were turned on. */
static napi_value js_fast_peer_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  napi_value out, row, v;
  NAPI_CALL(env, napi_create_array_with_length(env, l->fast_peer_count, &out));
  for (uint32_t i = 0; i < l->fast_peer_count; i++) {
    fast_peer_t *p = &l->fast_peers[i];
    const uint64_t values[] = {p->rx_ecpdus, p->rx_duplicates, p->rx_tlvs, p->tx_ecpdus,
                               p->tx_tlvs,   p->rx_acks,       p->rx_acks_absorbed};
    napi_create_array_with_length(env, 8, &row);
    napi_create_buffer_copy(env, 6, p->mac, NULL, &v);
    napi_set_element(env, row, 0, v);
    for (uint32_t k = 0; k < 7; k++) {
      napi_create_double(env, (double)values[k], &v);
      napi_set_element(env, row, k + 1, v);
    }
    napi_set_element(env, out, i, row);
  }
  return out;
}

/* The kernel resets its packet and drop counters on each read: keep running totals. */
static void add_kernel_stats(link_t *l) {
  if (l->closing || l->fd < 0) return;
  struct tpacket_stats st;
  socklen_t sl = sizeof st;
  if (getsockopt(l->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0) {
    l->kernel_packets += st.tp_packets;
    l->kernel_drops += st.tp_drops;
  }
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  add_kernel_stats(l);
  absorb_entry_t *e = absorb_of(l);
  if (e != NULL) l->acks_absorbed = __atomic_load_n(&e->absorbed, __ATOMIC_ACQUIRE);
  const uint64_t values[] = {l->kernel_packets, l->kernel_drops, l->truncated,
                             l->acks_sent,      l->ack_errors,   l->acks_absorbed,
                             l->answers_sent,   l->offers_sent};
  const uint32_t count = sizeof values / sizeof values[0];
  napi_value out, v;
  NAPI_CALL(env, napi_create_array_with_length(env, count, &out));
  for (uint32_t i = 0; i < count; i++) {
    napi_create_double(env, (double)values[i], &v);
    napi_set_element(env, out, i, v);
  }
  return out;
}

/* Whether the bound interface still exists (the ENETDOWN of a deleted interface looks like
 * the one of an interface set down, and no later event tells them apart). */
static napi_value js_if_exists(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  char name[IF_NAMESIZE];
  napi_value out;
  napi_get_boolean(env, if_indextoname((unsigned)l->ifindex, name) != NULL, &out);
  return out;
}

static napi_value js_ref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (l && l->handle_state == HANDLE_ACTIVE) uv_ref((uv_handle_t *)&l->poll);
  return NULL;
}

static napi_value js_unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (l && l->handle_state == HANDLE_ACTIVE) uv_unref((uv_handle_t *)&l->poll);
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  add_kernel_stats(l);
  stop_io(l);
  if (l->in_callback == 0) release_js(l, env);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default_method, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default_method, NULL},
      {"setEcpAck", NULL, js_set_ecp_ack, NULL, NULL, NULL, napi_default_method, NULL},
      {"absorbAcks", NULL, js_absorb_acks, NULL, NULL, NULL, napi_default_method, NULL},
      {"armAck", NULL, js_arm_ack, NULL, NULL, NULL, napi_default_method, NULL},
      {"fastAnswers", NULL, js_fast_answers, NULL, NULL, NULL, napi_default_method, NULL},
      {"fastAnswer", NULL, js_fast_answer, NULL, NULL, NULL, napi_default_method, NULL},
      {"fastGrant", NULL, js_fast_grant, NULL, NULL, NULL, napi_default_method, NULL},
      {"fastReclaim", NULL, js_fast_reclaim, NULL, NULL, NULL, napi_default_method, NULL},
      {"fastPeerStats", NULL, js_fast_peer_stats, NULL, NULL, NULL, napi_default_method, NULL},
      {"fastForget", NULL, js_fast_forget, NULL, NULL, NULL, napi_default_method, NULL},
      {"fastOffers", NULL, js_fast_offers, NULL, NULL, NULL, napi_default_method, NULL},
      {"fastOffer", NULL, js_fast_offer, NULL, NULL, NULL, napi_default_method, NULL},
      {"fastKnown", NULL, js_fast_known, NULL, NULL, NULL, napi_default_method, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default_method, NULL},
      {"ifExists", NULL, js_if_exists, NULL, NULL, NULL, napi_default_method, NULL},
      {"ref", NULL, js_ref, NULL, NULL, NULL, napi_default_method, NULL},
      {"unref", NULL, js_unref, NULL, NULL, NULL, napi_default_method, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_value cls;
  NAPI_CALL(env, napi_define_class(env, "AfPacketSocket", NAPI_AUTO_LENGTH, js_constructor, NULL,
                                   sizeof methods / sizeof methods[0], methods, &cls));
  NAPI_CALL(env, napi_set_named_property(env, exports, "AfPacketSocket", cls));
  napi_value take;
  NAPI_CALL(env, napi_create_function(env, "takeAbsorbedAcks", NAPI_AUTO_LENGTH, js_take_absorbed_acks, NULL, &take));
  NAPI_CALL(env, napi_set_named_property(env, exports, "takeAbsorbedAcks", take));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
