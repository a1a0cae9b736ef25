// Spillway's UDP receive thread, in C because Node cannot keep up otherwise.
//
// UDP cannot push back: a datagram that arrives while the socket's kernel buffer is full is lost before
// anyone sees it. Node's dgram spends 3-4 us of its own per datagram (a 64 KiB allocation, an address
// object, a callback into JS); at the 200 k datagrams/s one sender reaches on loopback that is most of
// a core, on the thread that also frames TCP and feeds the spool, so every pause became kernel drops.
// This thread only reads: recvmmsg() takes up to kVlen datagrams per system call, and the datagrams
// are packed back to back into a batch (format below) that the socket thread receives as one Buffer
// through a thread-safe function. Parsing, routing and spooling stay in JavaScript.
//
// Batch entry: u32 datagram length, u16 source port, u8 address length (0 = the same source as the
// entry before it in this batch), the address as text, the datagram. Little-endian.
//
// The same thread reads unix datagram sockets (the local /dev/log that glibc's syslog(3), logger,
// journald's ForwardToSyslog write to): openUnix() binds one with SO_PASSCRED, and each datagram's
// source is the sender's credentials as the kernel attests them (SCM_CREDENTIALS), written as the
// address text "pid=P,uid=U,gid=G" with port 0; a sender cannot forge them in its text. A stale socket
// file is replaced; a live one (another daemon receives on it) or a file that is not a socket is not.
//
// Memory is bounded: at most kMaxBatches batches exist (being filled, queued for JavaScript, or free).
// When JavaScript has all of them to work through, datagrams are read and dropped here, and counted,
// which is what the kernel would do with them anyway, but visibly.
//
// Lifetime: open() binds and starts the thread; close() wakes it; it hands over its last batch and a
// final call, then releases the thread-safe function, whose finaliser (on the JavaScript thread, after
// every queued call ran) joins the thread and frees everything.

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <node_api.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define kBatchBytes (256 * 1024)
#define kFlushBytes (64 * 1024)
#define kFlushNs 1000000LL
#define kMaxBatches 32
#define kVlen 32
#define kMaxDatagram 65536
#define kEntryHeader 7
#define kCredText 48
#define kCtrlBytes CMSG_SPACE(sizeof(struct ucred))

typedef struct batch {
  uint8_t* data;
  size_t len;
  uint32_t count;  // datagrams in it
  uint64_t dropped;
  uint64_t errors;
  int final;
} batch_t;

typedef struct receiver {
  int fd;
  int wake[2];
  pthread_t thread;
  int started;
  int stopping;  // set by close(), read by the thread (atomics): a flood must not keep it from stopping
  napi_threadsafe_function tsfn;

  // The receive thread's own state.
  batch_t* cur;
  int64_t cur_since;
  uint64_t dropped;
  uint64_t errors;
  struct sockaddr_storage last;
  uint8_t* scratch;
  struct mmsghdr msgs[kVlen];
  struct iovec iov[kVlen];
  struct sockaddr_storage from[kVlen];
  int unix_dgram;  // a unix datagram socket: sources are credentials, not addresses
  uint8_t ctrl[kVlen][kCtrlBytes];
  struct ucred cred[kVlen];
  struct ucred last_cred;
  batch_t final;

  // Shared with the JavaScript thread, which returns batches once copied.
  pthread_mutex_t mu;
  batch_t* pool[kMaxBatches];
  int npool;
  int allocated;
  int waiting;  // batches handed over and not yet returned (atomics)
} receiver_t;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static batch_t* take(receiver_t* r) {
  batch_t* b = NULL;
  pthread_mutex_lock(&r->mu);
  if (r->npool > 0) {
    b = r->pool[--r->npool];
  } else if (r->allocated < kMaxBatches) {
    b = calloc(1, sizeof(batch_t));
    if (b != NULL) b->data = malloc(kBatchBytes);
    if (b != NULL && b->data == NULL) {
      free(b);
      b = NULL;
    }
    if (b != NULL) r->allocated++;
  }
  pthread_mutex_unlock(&r->mu);
  if (b != NULL) b->len = b->count = 0;
  return b;
}

static void give_back(receiver_t* r, batch_t* b) {
  pthread_mutex_lock(&r->mu);
  r->pool[r->npool++] = b;
  pthread_mutex_unlock(&r->mu);
  __atomic_sub_fetch(&r->waiting, 1, __ATOMIC_RELEASE);
}

// A batch that is not full goes out only while the socket thread has nothing of ours left to route:
// handing it a half-empty batch sooner would not be routed sooner, and while it is busy, fuller batches
// make kMaxBatches hold kMaxBatches x kBatchBytes of datagrams, not a millisecond's worth each.
static int socket_thread_idle(receiver_t* r) {
  return __atomic_load_n(&r->waiting, __ATOMIC_ACQUIRE) == 0;
}

static void flush(receiver_t* r) {
  batch_t* b = r->cur;
  if (b == NULL || b->len == 0) return;
  b->dropped = r->dropped;
  b->errors = r->errors;
  b->final = 0;
  r->dropped = 0;
  r->errors = 0;
  r->cur = NULL;
  __atomic_add_fetch(&r->waiting, 1, __ATOMIC_RELEASE);
  // The queue is unbounded (the pool bounds it), so a non-blocking call cannot be refused for space;
  // it fails only while the function is being released, which this thread itself does, last.
  if (napi_call_threadsafe_function(r->tsfn, b, napi_tsfn_nonblocking) != napi_ok) give_back(r, b);
}

static int same_source(const struct sockaddr_storage* a, const struct sockaddr_storage* b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in* x = (const struct sockaddr_in*)a;
    const struct sockaddr_in* y = (const struct sockaddr_in*)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6* x = (const struct sockaddr_in6*)a;
    const struct sockaddr_in6* y = (const struct sockaddr_in6*)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
  }
  return 0;
}

static int same_cred(const struct ucred* a, const struct ucred* b) {
  return a->pid == b->pid && a->uid == b->uid && a->gid == b->gid;
}

// The credentials of message i of the last recvmmsg(), from its control data; pid 0 when there are none.
static void read_cred(receiver_t* r, int i) {
  struct msghdr* h = &r->msgs[i].msg_hdr;
  memset(&r->cred[i], 0, sizeof r->cred[i]);
  for (struct cmsghdr* c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
        c->cmsg_len >= CMSG_LEN(sizeof(struct ucred)))
      memcpy(&r->cred[i], CMSG_DATA(c), sizeof(struct ucred));
  }
}

static void append(receiver_t* r, int i, const uint8_t* data, size_t n) {
  const struct sockaddr_storage* from = &r->from[i];
  char text[kCredText > INET6_ADDRSTRLEN ? kCredText : INET6_ADDRSTRLEN] = "";
  size_t alen = 0;
  uint16_t port = 0;
  int same = r->cur != NULL &&
             (r->unix_dgram ? same_cred(&r->cred[i], &r->last_cred) : same_source(from, &r->last));
  if (!same && r->unix_dgram) {
    const struct ucred* c = &r->cred[i];
    if (c->pid > 0)
      snprintf(text, sizeof text, "pid=%d,uid=%u,gid=%u", (int)c->pid, (unsigned)c->uid, (unsigned)c->gid);
    else
      snprintf(text, sizeof text, "local");
    alen = strlen(text);
  } else if (!same) {
    if (from->ss_family == AF_INET6) {
      const struct sockaddr_in6* a = (const struct sockaddr_in6*)from;
      inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    } else if (from->ss_family == AF_INET) {
      const struct sockaddr_in* a = (const struct sockaddr_in*)from;
      inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    }
    alen = strlen(text);
    if (alen == 0) text[alen++] = '?';  // a family we cannot name; length 0 would mean "same as before"
  }
  if (r->cur != NULL && r->cur->len + kEntryHeader + alen + n > kBatchBytes) flush(r);
  if (r->cur == NULL) {
    r->cur = take(r);
    if (r->cur == NULL) {
      r->dropped++;
      return;
    }
    r->cur_since = now_ns();
    memset(&r->last, 0, sizeof r->last);  // a new batch names its source again
    memset(&r->last_cred, 0xff, sizeof r->last_cred);
    if (same) {
      append(r, i, data, n);
      return;
    }
  }
  uint8_t* p = r->cur->data + r->cur->len;
  p[0] = (uint8_t)n;
  p[1] = (uint8_t)(n >> 8);
  p[2] = (uint8_t)(n >> 16);
  p[3] = (uint8_t)(n >> 24);
  if (same) {
    p[4] = p[5] = p[6] = 0;
  } else {
    p[4] = (uint8_t)port;
    p[5] = (uint8_t)(port >> 8);
    p[6] = (uint8_t)alen;
    memcpy(p + kEntryHeader, text, alen);
    if (r->unix_dgram)
      r->last_cred = r->cred[i];
    else
      memcpy(&r->last, from, sizeof r->last);
  }
  memcpy(p + kEntryHeader + alen, data, n);
  r->cur->len += kEntryHeader + alen + n;
  r->cur->count++;
}

// Reads what the socket holds, up to kVlen datagrams; returns how many, 0 when none is waiting.
static int receive(receiver_t* r) {
#ifdef __linux__
  for (int i = 0; i < kVlen; i++) {
    r->msgs[i].msg_hdr.msg_namelen = sizeof r->from[i];
    if (r->unix_dgram) r->msgs[i].msg_hdr.msg_controllen = kCtrlBytes;
  }
  int got = recvmmsg(r->fd, r->msgs, kVlen, MSG_DONTWAIT, NULL);
  if (got < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) r->errors++;
    return 0;
  }
  for (int i = 0; i < got; i++) {
    if (r->unix_dgram) read_cred(r, i);
    append(r, i, r->iov[i].iov_base, r->msgs[i].msg_len);
  }
  return got;
#else
  int got = 0;
  for (; got < kVlen; got++) {
    r->msgs[0].msg_hdr.msg_namelen = sizeof r->from[0];
    ssize_t n = recvmsg(r->fd, &r->msgs[0].msg_hdr, MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) r->errors++;
      break;
    }
    append(r, 0, r->iov[0].iov_base, (size_t)n);
  }
  return got;
#endif
}

static void* run(void* arg) {
  receiver_t* r = arg;
  struct pollfd pfd[2] = {{r->fd, POLLIN, 0}, {r->wake[0], POLLIN, 0}};
  while (!__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE)) {
    // A batch below kFlushBytes waits at most ~1 ms once the socket thread is idle, so a quiet
    // sender's message is not held back.
    int timeout = r->cur != NULL && r->cur->len > 0 ? 1 : -1;
    int n = poll(pfd, 2, timeout);
    if (n < 0) {
      if (errno != EINTR) r->errors++;
      continue;
    }
    if (pfd[1].revents != 0) break;
    if (n == 0) {
      if (socket_thread_idle(r)) flush(r);
      continue;
    }
    while (!__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE) && receive(r) > 0) {
      if (r->cur != NULL && socket_thread_idle(r) &&
          (r->cur->len >= kFlushBytes || now_ns() - r->cur_since >= kFlushNs))
        flush(r);
    }
  }
  // Stopping: what the socket held when asked to stop was sent before the stop, so it is read too. At
  // most 256 rounds (8,192 datagrams, more than a full 8 MiB kernel buffer holds: Linux charges ~1,280
  // bytes per small datagram), so a sender that never pauses cannot hold the stop up.
  for (int i = 0; i < 256 && receive(r) > 0; i++) {
  }
  flush(r);
  r->final.final = 1;
  r->final.dropped = r->dropped;
  r->final.errors = r->errors;
  napi_call_threadsafe_function(r->tsfn, &r->final, napi_tsfn_blocking);
  napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  return NULL;
}

// On the JavaScript thread: hand one batch to the callback as (buffer | null, dropped, errors).
static void call_js(napi_env env, napi_value cb, void* context, void* data) {
  receiver_t* r = context;
  batch_t* b = data;
  if (env == NULL) {  // the environment is going away: nobody will read it
    if (!b->final) give_back(r, b);
    return;
  }
  napi_value args[3], undefined;
  double dropped = (double)b->dropped;
  if (b->final) {
    napi_get_null(env, &args[0]);
  } else {
    void* copy;
    if (napi_create_buffer_copy(env, b->len, b->data, &copy, &args[0]) != napi_ok) {
      // No memory for the copy: the batch is lost, and said so.
      dropped += b->count;
      if (napi_create_buffer(env, 0, &copy, &args[0]) != napi_ok) {
        give_back(r, b);
        return;
      }
    }
  }
  napi_create_double(env, dropped, &args[1]);
  napi_create_double(env, (double)b->errors, &args[2]);
  if (!b->final) give_back(r, b);
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, cb, 3, args, NULL);
}

static void finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  receiver_t* r = data;
  if (r->started) pthread_join(r->thread, NULL);
  close(r->fd);
  close(r->wake[0]);
  close(r->wake[1]);
  for (int i = 0; i < r->npool; i++) {
    free(r->pool[i]->data);
    free(r->pool[i]);
  }
  if (r->cur != NULL) {
    free(r->cur->data);
    free(r->cur);
  }
  free(r->scratch);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

// The codes a bind can fail with, named as Node names them, so an error reads like every other one.
static const char* errno_name(int err) {
  switch (err) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case EMFILE: return "EMFILE";
    case ENOMEM: return "ENOMEM";
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EPERM: return "EPERM";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s %s: %s", what, errno_name(err), strerror(err));
  napi_throw_error(env, errno_name(err), msg);
  return NULL;
}

static napi_value start_receiver(napi_env env, int fd, int unix_dgram, int bound, napi_value callback);

// open(address, port, ipv6, recvBufferBytes, callback) -> [handle, boundPort, recvBufferBytes as the
// kernel reports it (twice what it grants, see socket(7))]
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "open(address, port, ipv6, recvBufferBytes, callback)");
    return NULL;
  }
  char host[INET6_ADDRSTRLEN + 1];
  size_t hostLen;
  int32_t port, rcvbuf;
  bool ipv6 = false;
  napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hostLen);
  napi_get_value_int32(env, argv[1], &port);
  napi_get_value_bool(env, argv[2], &ipv6);
  napi_get_value_int32(env, argv[3], &rcvbuf);

  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  socklen_t addrLen;
  if (ipv6) {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&addr;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return throw_errno(env, host, EINVAL);
    addrLen = sizeof *a;
  } else {
    struct sockaddr_in* a = (struct sockaddr_in*)&addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return throw_errno(env, host, EINVAL);
    addrLen = sizeof *a;
  }

  int fd = socket(addr.ss_family, SOCK_DGRAM, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (bind(fd, (struct sockaddr*)&addr, addrLen) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  getsockname(fd, (struct sockaddr*)&addr, &addrLen);
  int bound = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6*)&addr)->sin6_port
                                               : ((struct sockaddr_in*)&addr)->sin_port);
  return start_receiver(env, fd, 0, bound, argv[4]);
}

// A socket file at `path` from an earlier run is replaced; anything else there is refused: a socket
// another process receives on (a running syslog daemon), or a file that is not a socket.
static int clear_stale_socket(const char* path, const char** why) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISSOCK(st.st_mode)) {
    *why = "exists and is not a socket; not replacing it";
    return EEXIST;
  }
  int probe = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (probe < 0) return errno;
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  size_t len = strlen(path);
  if (len >= sizeof a.sun_path) {
    close(probe);
    return ENAMETOOLONG;
  }
  memcpy(a.sun_path, path, len + 1);
  int live = connect(probe, (struct sockaddr*)&a, sizeof a) == 0;
  int err = errno;
  close(probe);
  if (live || err == EPROTOTYPE) {  // EPROTOTYPE: a stream socket is listening there
    *why = "is a socket another process receives on; not replacing it";
    return EADDRINUSE;
  }
  if (unlink(path) != 0 && errno != ENOENT) return errno;
  return 0;
}

// openUnix(path, mode, recvBufferBytes, callback) -> [handle, 0, recvBufferBytes as the kernel reports it]
static napi_value js_open_unix(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "openUnix(path, mode, recvBufferBytes, callback)");
    return NULL;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  size_t pathLen;
  napi_get_value_string_utf8(env, argv[0], addr.sun_path, sizeof addr.sun_path, &pathLen);
  if (pathLen == 0 || pathLen >= sizeof addr.sun_path - 1) return throw_errno(env, "unix socket path", ENAMETOOLONG);
  int32_t mode, rcvbuf;
  napi_get_value_int32(env, argv[1], &mode);
  napi_get_value_int32(env, argv[2], &rcvbuf);

  const char* why = NULL;
  int err = clear_stale_socket(addr.sun_path, &why);
  if (err != 0) {
    char msg[256];
    if (why != NULL) {
      snprintf(msg, sizeof msg, "%s %s", addr.sun_path, why);
      napi_throw_error(env, errno_name(err), msg);
      return NULL;
    }
    return throw_errno(env, addr.sun_path, err);
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  if (chmod(addr.sun_path, (mode_t)mode) != 0) {
    err = errno;
    close(fd);
    unlink(addr.sun_path);
    return throw_errno(env, "chmod", err);
  }
  return start_receiver(env, fd, 1, 0, argv[3]);
}

// Starts the receive thread on a bound datagram socket; returns [handle, boundPort, SO_RCVBUF].
static napi_value start_receiver(napi_env env, int fd, int unix_dgram, int bound, napi_value callback) {
  int effective = 0;
  socklen_t optLen = sizeof effective;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &effective, &optLen);

  receiver_t* r = calloc(1, sizeof(receiver_t));
  if (r == NULL || pipe(r->wake) != 0) {
    close(fd);
    free(r);
    return throw_errno(env, "udp receiver", ENOMEM);
  }
  fcntl(r->wake[0], F_SETFD, FD_CLOEXEC);
  fcntl(r->wake[1], F_SETFD, FD_CLOEXEC);
  r->fd = fd;
  r->unix_dgram = unix_dgram;
  r->scratch = malloc((size_t)kVlen * kMaxDatagram);
  pthread_mutex_init(&r->mu, NULL);
  for (int i = 0; i < kVlen; i++) {
    r->iov[i].iov_base = r->scratch + (size_t)i * kMaxDatagram;
    r->iov[i].iov_len = kMaxDatagram;
    r->msgs[i].msg_hdr.msg_iov = &r->iov[i];
    r->msgs[i].msg_hdr.msg_iovlen = 1;
    r->msgs[i].msg_hdr.msg_name = &r->from[i];
    if (unix_dgram) {
      r->msgs[i].msg_hdr.msg_control = r->ctrl[i];
      r->msgs[i].msg_hdr.msg_controllen = kCtrlBytes;
    }
  }

  napi_value name;
  napi_create_string_utf8(env, "spillway udp receiver", NAPI_AUTO_LENGTH, &name);
  if (r->scratch == NULL ||
      napi_create_threadsafe_function(env, callback, NULL, name, 0, 1, r, finalize, r, call_js, &r->tsfn) !=
          napi_ok) {
    close(fd);
    close(r->wake[0]);
    close(r->wake[1]);
    free(r->scratch);
    free(r);
    return throw_errno(env, "udp receiver", ENOMEM);
  }
  int err = pthread_create(&r->thread, NULL, run, r);
  if (err != 0) {
    // Without the thread nobody releases the function; do it here (the finaliser closes and frees).
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
    return throw_errno(env, "pthread_create", err);
  }
  r->started = 1;

  napi_value out, handle, v;
  napi_create_array_with_length(env, 3, &out);
  napi_create_external(env, r, NULL, NULL, &handle);
  napi_set_element(env, out, 0, handle);
  napi_create_int32(env, bound, &v);
  napi_set_element(env, out, 1, v);
  napi_create_int32(env, effective, &v);
  napi_set_element(env, out, 2, v);
  return out;
}

// accepting(fd) -> whether the socket is still a listening one (SO_ACCEPTCONN). A listening socket
// destroyed from outside (ss -K, a sock_destroy BPF program) gives Node no event; this is how the
// health check notices it refuses every connection.
static napi_value js_accepting(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  int on = 0;
  socklen_t len = sizeof on;
  if (argc >= 1 && napi_get_value_int32(env, argv[0], &fd) == napi_ok && fd >= 0 &&
      getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0)
    on = 0;
  else if (fd < 0)
    on = 1;  // no descriptor to ask (not a socket of ours): nothing to say against it
  napi_get_boolean(env, on != 0, &out);
  return out;
}

// peerCred(fd) -> [pid, uid, gid] of a connected unix stream socket's peer (SO_PEERCRED), or null.
static napi_value js_peer_cred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_get_null(env, &out);
    return out;
  }
  struct ucred c;
  socklen_t len = sizeof c;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0 || len < sizeof c) {
    napi_get_null(env, &out);
    return out;
  }
  napi_create_array_with_length(env, 3, &out);
  napi_create_int32(env, (int32_t)c.pid, &v);
  napi_set_element(env, out, 0, v);
  napi_create_uint32(env, (uint32_t)c.uid, &v);
  napi_set_element(env, out, 1, v);
  napi_create_uint32(env, (uint32_t)c.gid, &v);
  napi_set_element(env, out, 2, v);
  return out;
}

// close(handle): asks the thread to stop; the callback's final call (null) says it has.
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  receiver_t* r;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void**)&r) != napi_ok) {
    napi_throw_type_error(env, NULL, "close(handle)");
    return NULL;
  }
  __atomic_store_n(&r->stopping, 1, __ATOMIC_RELEASE);
  char b = 1;
  if (write(r->wake[1], &b, 1) < 0) return throw_errno(env, "udp receiver close", errno);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"openUnix", NULL, js_open_unix, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"peerCred", NULL, js_peer_cred, NULL, NULL, NULL, napi_default, NULL},
      {"accepting", NULL, js_accepting, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 5, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
