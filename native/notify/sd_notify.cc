// sd_notify(3) without libsystemd: one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET.
//
// Protocol (systemd sd_notify(3), "Notes"): the socket is a filesystem path ("/run/systemd/notify")
// or, when it starts with '@', a Linux abstract socket whose name is the rest of the string after a
// leading NUL byte. The payload is newline-separated VAR=VALUE assignments, sent in one datagram.
// systemd reads the sender's pid from SCM_CREDENTIALS, which the kernel attaches for us: only the
// main pid may notify under NotifyAccess=main, so this must run in node itself, not in a child.
//
// A daemon must never die for its supervisor's sake: every failure here is a `false` return, the
// socket is non-blocking (a full receive queue drops one ping instead of stalling the JS thread),
// and nothing aborts. vsock addresses ("vsock:...", systemd ≥ 253) are not supported: false.

#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

namespace {

// Fills `addr` from $NOTIFY_SOCKET. Returns the address length, 0 when the variable is unset or
// empty, -1 when it names something we cannot reach (relative path, vsock, too long).
socklen_t notify_address(struct sockaddr_un* addr) {
  const char* name = getenv("NOTIFY_SOCKET");
  if (name == nullptr || name[0] == '\0') return 0;
  const size_t name_len = strlen(name);
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (name[0] == '@') {
    // Abstract socket: the name is exactly name_len bytes including the leading NUL, no terminator,
    // so the address length must not count one (a trailing NUL would name a different socket).
    if (name_len > sizeof(addr->sun_path)) return -1;
    memcpy(addr->sun_path, name, name_len);
    addr->sun_path[0] = '\0';
    return static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + name_len);
  }
  if (name[0] != '/') return -1;
  if (name_len >= sizeof(addr->sun_path)) return -1;  // leave room for the terminating NUL
  memcpy(addr->sun_path, name, name_len);
  return static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + name_len + 1);
}

// Sends `state` (len bytes) as one datagram. Returns 1 when sent, 0 when $NOTIFY_SOCKET is unset,
// -errno on failure.
int notify_send(const char* state, size_t len) {
  struct sockaddr_un addr;
  const socklen_t addr_len = notify_address(&addr);
  if (addr_len == 0) return 0;
  if (addr_len == static_cast<socklen_t>(-1)) return -EAFNOSUPPORT;

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  int result = 1;
  if (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), addr_len) < 0) {
    result = -errno;
  } else {
    struct iovec iov;
    iov.iov_base = const_cast<char*>(state);
    iov.iov_len = len;
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t sent;
    do {
      sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) result = -errno;
    else if (static_cast<size_t>(sent) != len) result = -EMSGSIZE;  // datagrams are all or nothing
  }
  close(fd);
  return result;
}

// sdNotify(state: string): boolean — true when the datagram was sent, false when NOTIFY_SOCKET is
// unset or the send failed (the TypeScript side logs the reason once). Throws TypeError when
// `state` is not a string.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError error = Napi::TypeError::New(env, "sdNotify(state): state must be a string");
    error.Set("code", Napi::String::New(env, "BITMAR_ERR_NATIVE_ARGUMENT"));
    error.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string state = info[0].As<Napi::String>().Utf8Value();
  return Napi::Boolean::New(env, notify_send(state.data(), state.size()) > 0);
}

}  // namespace

void notify_register(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
}
