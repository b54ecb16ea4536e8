// sd_notify over an AF_UNIX datagram socket, without libsystemd (systemd's sd_notify(3) protocol).
// Owned by the systemd work; addon.cc calls notify_register() to add its functions to the exports.
#pragma once
#include <napi.h>

void notify_register(Napi::Env env, Napi::Object exports);
