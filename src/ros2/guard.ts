/**
 * The guard in front of every import of rclnodejs.
 *
 * Importing rclnodejs where ROS 2 is not sourced starts a native rebuild that first deletes the
 * working addon and then fails (../shared/docs/ecosystem-conventions.md, "ROS 2 through
 * rclnodejs"), so nothing may import it unless `ros2Available` says yes, checked again before each
 * import. This file holds the only import of rclnodejs in src/ (a test keeps it that way).
 */
import { BitmarError } from '../errors.js';
import { asRclnodejsApi, type RclnodejsApi } from './rclnodejs-api.js';

/** `ros2.enabled` of the config: auto = on when ROS 2 is sourced. */
export type Ros2Mode = 'auto' | 'on' | 'off';

export interface Ros2Availability {
  /** Whether rclnodejs may be imported now. */
  readonly ok: boolean;
  /** One line for the log saying why ROS 2 is on or off. */
  readonly reason: string;
  /** ROS 2 was asked for explicitly (--ros2 or ros2.enabled: on): being off is an error. */
  readonly required: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

function isSet(v: string | undefined): v is string {
  return v !== undefined && v.trim() !== '';
}

/**
 * Splits a command line into the app's own arguments and the ROS arguments, as rcl does: ROS
 * arguments run from each `--ros-args` to the next `--` (or the end). `ros2 run`/`ros2 launch`
 * append `--ros-args -r __node:=… --params-file …`; a CLI parser must only see `appArgs`.
 */
export function splitRosArgs(argv: readonly string[]): { appArgs: string[]; rosArgs: string[] } {
  const appArgs: string[] = [];
  const rosArgs: string[] = [];
  let inRos = false;
  for (const arg of argv) {
    if (arg === '--ros-args') {
      inRos = true;
      rosArgs.push(arg);
    } else if (inRos && arg === '--') {
      inRos = false;
    } else if (inRos) {
      rosArgs.push(arg);
    } else {
      appArgs.push(arg);
    }
  }
  return { appArgs, rosArgs };
}

/**
 * Whether ROS 2 may be used: `ROS_DISTRO` and `AMENT_PREFIX_PATH` both set (a sourced setup.bash),
 * or `--ros2` (or mode 'on') with at least one of them set. `--ros2` with neither is refused
 * (`required: true`): the import would wreck the rclnodejs install. `--no-ros2` or mode 'off' turns
 * it off. Pure: reads only its arguments.
 */
export function ros2Available(env: Env, argv: readonly string[], mode: Ros2Mode = 'auto'): Ros2Availability {
  const { appArgs } = splitRosArgs(argv);
  if (mode === 'off' || appArgs.includes('--no-ros2')) {
    return { ok: false, required: false, reason: 'ROS 2 off: disabled by configuration (ros2.enabled: off or --no-ros2)' };
  }
  const forced = mode === 'on' || appArgs.includes('--ros2');
  const distro = env.ROS_DISTRO;
  const prefix = env.AMENT_PREFIX_PATH;
  if (isSet(distro) && isSet(prefix)) {
    return { ok: true, required: forced, reason: `ROS 2 on: ${distro} is sourced (ROS_DISTRO and AMENT_PREFIX_PATH set)` };
  }
  if (forced && (isSet(distro) || isSet(prefix))) {
    const missing = isSet(distro) ? 'AMENT_PREFIX_PATH' : 'ROS_DISTRO';
    return { ok: true, required: true, reason: `ROS 2 on: forced by --ros2 although ${missing} is unset` };
  }
  if (forced) {
    return {
      ok: false,
      required: true,
      reason:
        'ROS 2 required (--ros2) but not sourced: ROS_DISTRO and AMENT_PREFIX_PATH are unset; run `source /opt/ros/$ROS_DISTRO/setup.bash` ' +
        '(and your workspace install/setup.bash) first — loading rclnodejs without it would rebuild and break its addon',
    };
  }
  return {
    ok: false,
    required: false,
    reason: 'ROS 2 off: ROS_DISTRO and AMENT_PREFIX_PATH are not set (source /opt/ros/<distro>/setup.bash to turn it on, --ros2 to require it)',
  };
}

/** Imports the rclnodejs module; injectable so tests never touch the real one. */
export type RclnodejsImporter = () => Promise<unknown>;

/**
 * The real import. The specifier is a variable so TypeScript does not resolve rclnodejs's typings
 * (an optional dependency that may be absent); the module is narrowed by asRclnodejsApi.
 */
const importRclnodejs: RclnodejsImporter = () => {
  const specifier = 'rclnodejs';
  return import(specifier);
};

export type LoadRclnodejsResult =
  | { readonly ok: true; readonly reason: string; readonly rclnodejs: RclnodejsApi }
  | { readonly ok: false; readonly reason: string; readonly required: boolean };

/**
 * Checks `ros2Available` and only then imports rclnodejs (every call checks again). Never throws:
 * an import failure (not installed, addon not built for this ROS) comes back as `ok: false` with
 * one line saying what to do.
 */
export async function loadRclnodejs(
  env: Env,
  argv: readonly string[],
  options: { readonly mode?: Ros2Mode; readonly importer?: RclnodejsImporter } = {},
): Promise<LoadRclnodejsResult> {
  const availability = ros2Available(env, argv, options.mode);
  if (!availability.ok) return { ok: false, reason: availability.reason, required: availability.required };
  try {
    const mod = await (options.importer ?? importRclnodejs)();
    return { ok: true, reason: availability.reason, rclnodejs: asRclnodejsApi(mod) };
  } catch (e) {
    const why = e instanceof BitmarError ? e.message : (e as Error)?.message ?? String(e);
    return {
      ok: false,
      required: availability.required,
      reason: `ROS 2 off: rclnodejs could not be loaded (${why.split('\n')[0]}); install it with ROS 2 sourced, see docs/ros2.md`,
    };
  }
}
