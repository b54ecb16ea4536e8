#!/bin/bash
# bitmar-node launcher: the unit's ExecStart. Sources ROS 2 (and a colcon workspace) when configured,
# then exec's node, so node is the service's main PID (Type=notify with NotifyAccess=main accepts
# notifications from the main PID only) and receives systemd's signals directly.
#
# `bitmar-node service install` copies this file to /usr/local/lib/bitmar-node/ and fills in @NODE@
# and @ENTRY@; unfilled (run from a checkout) it uses `node` on PATH and this checkout's entry point.
#
# Settings, from /etc/bitmar-node/bitmar-node.env (EnvironmentFile=):
#   ROS_DISTRO            humble, jazzy, ...: sources /opt/ros/$ROS_DISTRO/setup.bash (unset: no ROS 2)
#   BITMAR_ROS_WORKSPACE  a colcon workspace: sources its install/setup.bash after the distro
#   BITMAR_NODE           the node binary (default: the node that ran the installer)
#   BITMAR_RUN_ARGS       extra arguments for `bitmar-node run`, split on spaces
#
# Exit status 78 (EX_CONFIG) means a setting here is wrong; the unit does not restart on it.

log() { echo "bitmar-node-launch: $*" >&2; }

# Sourced scripts see the caller's arguments: keep ours aside, source with none.
args=("$@")
set --

if [ -n "${ROS_DISTRO:-}" ]; then
  ros_setup="/opt/ros/${ROS_DISTRO}/setup.bash"
  if [ -r "$ros_setup" ]; then
    # No `set -eu` around this: ROS setup scripts read unset variables and return non-zero on
    # harmless probes.
    # shellcheck source=/dev/null
    source "$ros_setup" || log "warning: $ros_setup returned $?"
  else
    log "ROS_DISTRO=${ROS_DISTRO} but $ros_setup does not exist: starting without ROS 2"
    unset ROS_DISTRO
  fi
fi

if [ -n "${BITMAR_ROS_WORKSPACE:-}" ]; then
  if [ -r "${BITMAR_ROS_WORKSPACE}/install/setup.bash" ]; then
    # shellcheck source=/dev/null
    source "${BITMAR_ROS_WORKSPACE}/install/setup.bash" || log "warning: workspace setup returned $?"
  elif [ -r "${BITMAR_ROS_WORKSPACE}/setup.bash" ]; then
    # shellcheck source=/dev/null
    source "${BITMAR_ROS_WORKSPACE}/setup.bash" || log "warning: workspace setup returned $?"
  else
    log "BITMAR_ROS_WORKSPACE=${BITMAR_ROS_WORKSPACE} has no install/setup.bash (build it with colcon): not sourced"
  fi
fi

node_bin="${BITMAR_NODE:-@NODE@}"
entry="${BITMAR_ENTRY:-@ENTRY@}"
case "$node_bin" in @*@) node_bin="$(command -v node)" ;; esac
case "$entry" in @*@) entry="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin/bitmar-node.js" ;; esac

if [ -z "$node_bin" ] || [ ! -x "$node_bin" ]; then
  log "node not found (${node_bin:-not on PATH}): set BITMAR_NODE in /etc/bitmar-node/bitmar-node.env or rerun 'bitmar-node service install'"
  exit 78
fi
if [ ! -r "$entry" ]; then
  log "$entry not found: was bitmar-node moved or uninstalled? Rerun 'bitmar-node service install'"
  exit 78
fi

set -f # BITMAR_RUN_ARGS is split on spaces but never glob-expanded
# --max-semi-space-size=2: V8 would grow the young generation over minutes (RSS creep); see src/worker-start.ts.
# shellcheck disable=SC2086
exec "$node_bin" --max-semi-space-size=2 "$entry" run ${BITMAR_RUN_ARGS:-} "${args[@]}"
