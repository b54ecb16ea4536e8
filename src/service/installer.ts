/**
 * Installs, removes and inspects the systemd service. Each command is planned first (a list of
 * steps, printed as-is by --dry-run) and then applied, so what --dry-run shows is what runs.
 *
 * Layout on the target (all under `root` when one is given, as with `make DESTDIR=`; the files then
 * name the target paths, not the root-prefixed ones, and systemctl is never called):
 *   /etc/systemd/system/bitmar-node.service        the unit, from systemd/bitmar-node.service
 *   /usr/local/lib/bitmar-node/bitmar-node-launch.sh  the launcher, from systemd/bitmar-node-launch.sh
 *   /etc/bitmar-node/bitmar-node.env               settings, from systemd/bitmar-node.env (kept if present)
 *   /var/lib/bitmar-node, /var/log/bitmar-node     state and logs, owned by the service user
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import { BitmarError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';
import { loadNotifyAddon } from './sd-notify.js';

export const SERVICE_NAME = 'bitmar-node.service';

/** Where the service's files live on the target system. */
export const SERVICE_PATHS = {
  unit: '/etc/systemd/system/bitmar-node.service',
  launcher: '/usr/local/lib/bitmar-node/bitmar-node-launch.sh',
  envFile: '/etc/bitmar-node/bitmar-node.env',
  configDir: '/etc/bitmar-node',
  stateDir: '/var/lib/bitmar-node',
  logsDir: '/var/log/bitmar-node',
} as const;

/** Groups the service joins for the GPU and cameras, when they exist on the target. */
export const DEVICE_GROUPS = ['video', 'render'] as const;

export type NotifyAccess = 'main' | 'all';

/** The values `renderUnit` fills into systemd/bitmar-node.service. */
export interface UnitValues {
  readonly user: string;
  readonly group: string;
  readonly supplementaryGroups: readonly string[];
  /** Absolute path of the launcher, as the target system sees it. */
  readonly launcherPath: string;
  /** main when the native addon sends notifications; all for the systemd-notify fallback. */
  readonly notifyAccess: NotifyAccess;
}

const NAME_PATTERN = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;
const PLACEHOLDER = /@[A-Z_]+@/;

function installError(message: string, cause?: unknown): BitmarError {
  return new BitmarError('BITMAR_ERR_SERVICE_INSTALL', message, cause === undefined ? undefined : { cause });
}

/** Quotes one word of an Exec line (systemd.service(5), "Command lines"): spaces, quotes, `%`, `$`. */
export function systemdQuote(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (!/[\s"'\\]/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function fill(template: string, values: Readonly<Record<string, string>>, what: string): string {
  let text = template;
  for (const [key, value] of Object.entries(values)) text = text.split(`@${key}@`).join(value);
  const left = PLACEHOLDER.exec(text);
  if (left !== null) throw installError(`${what}: placeholder ${left[0]} was not filled`);
  return text;
}

/** Renders the unit template. Throws BITMAR_ERR_SERVICE_INSTALL on a bad user/group name or path. */
export function renderUnit(template: string, values: UnitValues): string {
  for (const name of [values.user, values.group, ...values.supplementaryGroups]) {
    if (!NAME_PATTERN.test(name)) throw installError(`"${name}" is not a valid user or group name`);
  }
  if (!isAbsolute(values.launcherPath)) throw installError(`the launcher path ${values.launcherPath} must be absolute`);
  return fill(
    template,
    {
      USER: values.user,
      GROUP: values.group,
      SUPPLEMENTARY_GROUPS: values.supplementaryGroups.join(' '),
      LAUNCHER: systemdQuote(values.launcherPath),
      NOTIFY_ACCESS: values.notifyAccess,
    },
    'bitmar-node.service',
  );
}

/** Renders the launcher with the node binary and entry script (absolute paths). */
export function renderLauncher(template: string, values: { readonly nodePath: string; readonly entryPath: string }): string {
  for (const path of [values.nodePath, values.entryPath]) {
    // They are substituted inside double quotes in bash.
    if (!isAbsolute(path) || /["$`\\\n]/.test(path)) throw installError(`${path} must be an absolute path without quotes, $, \` or \\`);
  }
  return fill(template, { NODE: values.nodePath, ENTRY: values.entryPath }, 'bitmar-node-launch.sh');
}

/** Quotes a value for an EnvironmentFile= line when it needs it (systemd.exec(5)). */
function envValue(value: string): string {
  return /^[A-Za-z0-9_./:@+,=-]*$/.test(value) ? value : `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Sets KEY=value in an env file: replaces the first `KEY=` or `#KEY=` line, else appends. */
export function setEnvVar(text: string, key: string, value: string): string {
  const line = `${key}=${envValue(value)}`;
  const pattern = new RegExp(`^#?\\s*${key}=.*$`, 'm');
  if (pattern.test(text)) return text.replace(pattern, line);
  return `${text.endsWith('\n') || text === '' ? text : `${text}\n`}${line}\n`;
}

/** What `bitmar-node service install` does. */
export interface InstallOptions {
  /** The service user: the camera driver's user. Default: $SUDO_USER, else the current user. */
  readonly user?: string;
  /** Default: the user's primary group. */
  readonly group?: string;
  /** Install under this directory instead of /, and call no systemctl. */
  readonly root?: string;
  /** An env file to install instead of the example (replaces an existing one). */
  readonly envFile?: string;
  /** ROS_DISTRO for the env file. Default: $ROS_DISTRO, else the only entry of /opt/ros. */
  readonly rosDistro?: string;
  /** BITMAR_ROS_WORKSPACE for the env file (absolute path). */
  readonly workspace?: string;
  /** Also start the service (`systemctl enable --now`). */
  readonly startNow?: boolean;
  /** Default: main when the native addon loads, else all. */
  readonly notifyAccess?: NotifyAccess;
  /** The package whose templates and entry point are installed. Default: this package. */
  readonly packageRoot?: string;
  /** The node binary the launcher runs. Default: the one running now. */
  readonly nodePath?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** One step of a plan; `describePlan` prints it, `applyPlan` performs it. */
export type PlanStep =
  | { readonly kind: 'mkdir'; readonly path: string; readonly mode: number }
  | { readonly kind: 'write'; readonly path: string; readonly mode: number; readonly content: string; readonly note: string }
  | { readonly kind: 'keep'; readonly path: string; readonly note: string }
  | { readonly kind: 'chown'; readonly path: string; readonly user: string; readonly group: string; readonly uid: number; readonly gid: number }
  | { readonly kind: 'remove'; readonly path: string; readonly isDirectory?: boolean }
  | { readonly kind: 'run'; readonly argv: readonly string[]; readonly mayFail?: boolean };

export interface ServicePlan {
  readonly steps: readonly PlanStep[];
  /** Things the user should know (missing groups, notify fallback, running as root). */
  readonly warnings: readonly string[];
  /** What to do next, printed after the steps. */
  readonly notes: readonly string[];
}

/** Runs a program; returns its exit status (null when it could not start) and output. */
export type CommandRunner = (argv: readonly string[]) => { status: number | null; stdout: string };

const defaultRunner: CommandRunner = (argv) => {
  const result = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8' });
  return { status: result.error === undefined ? result.status : null, stdout: result.stdout ?? '' };
};

interface Account {
  readonly uid: number;
  readonly gid: number;
  readonly group: string;
}

function lookupAccount(user: string, run: CommandRunner): Account | null {
  const passwd = run(['getent', 'passwd', user]);
  if (passwd.status !== 0) return null;
  const fields = passwd.stdout.trim().split(':');
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  const group = run(['getent', 'group', String(gid)]);
  const groupName = group.status === 0 ? group.stdout.trim().split(':')[0] : undefined;
  return { uid, gid, group: groupName !== undefined && groupName !== '' ? groupName : user };
}

function lookupGid(group: string, run: CommandRunner): number | null {
  const result = run(['getent', 'group', group]);
  return result.status === 0 ? Number(result.stdout.trim().split(':')[2]) : null;
}

function defaultRosDistro(env: NodeJS.ProcessEnv, root: string): string | undefined {
  if (env.ROS_DISTRO !== undefined && env.ROS_DISTRO !== '') return env.ROS_DISTRO;
  const rosDir = join(root, 'opt', 'ros');
  if (!existsSync(rosDir)) return undefined;
  const distros = readdirSync(rosDir).filter((name) => existsSync(join(rosDir, name, 'setup.bash')));
  return distros.length === 1 ? distros[0] : undefined;
}

/** The plan for `service install`. Reads the system (accounts, existing files); changes nothing. */
export function planInstall(options: InstallOptions = {}, run: CommandRunner = defaultRunner): ServicePlan {
  const env = options.env ?? process.env;
  const root = options.root === undefined ? '/' : resolve(options.root);
  const isRootInstall = options.root !== undefined;
  const at = (path: string): string => join(root, path);
  const packageRoot = options.packageRoot ?? PACKAGE_ROOT;
  const warnings: string[] = [];
  const notes: string[] = [];

  // The account: it must exist on this machine, except when building a root for another one.
  const sudoUser = env.SUDO_USER !== undefined && env.SUDO_USER !== '' && env.SUDO_USER !== 'root' ? env.SUDO_USER : undefined;
  const user = options.user ?? sudoUser ?? userInfo().username;
  if (!NAME_PATTERN.test(user)) throw installError(`--user "${user}" is not a valid user name`);
  const account = lookupAccount(user, run);
  if (account === null && !isRootInstall) {
    throw installError(`user "${user}" does not exist: pass --user with the account that runs your camera driver`);
  }
  if (account === null) warnings.push(`user "${user}" does not exist on this machine; create it on the target`);
  if (user === 'root') warnings.push('the service will run as root: pass --user with the camera driver\'s account (DDS shared memory needs the same user)');
  const group = options.group ?? account?.group ?? user;
  if (!NAME_PATTERN.test(group)) throw installError(`--group "${group}" is not a valid group name`);
  const gid = options.group === undefined ? account?.gid ?? null : lookupGid(group, run);
  if (gid === null && !isRootInstall) throw installError(`group "${group}" does not exist`);

  const supplementaryGroups = DEVICE_GROUPS.filter((name) => lookupGid(name, run) !== null);
  for (const name of DEVICE_GROUPS) {
    if (!supplementaryGroups.includes(name)) warnings.push(`group "${name}" does not exist: left out of SupplementaryGroups= (systemd refuses to start with an unknown group)`);
  }

  const notifyAccess = options.notifyAccess ?? (typeof loadNotifyAddon(packageRoot) === 'string' ? 'all' : 'main');
  if (notifyAccess === 'all') {
    warnings.push('the native addon is not built, so node notifies systemd through systemd-notify and the unit gets NotifyAccess=all; build the addon and reinstall to get NotifyAccess=main');
  }

  const template = (name: string): string => {
    try {
      return readFileSync(join(packageRoot, 'systemd', name), 'utf8');
    } catch (e) {
      throw installError(`cannot read the template ${join(packageRoot, 'systemd', name)}`, e);
    }
  };
  const nodePath = options.nodePath ?? process.execPath;
  const entryPath = join(packageRoot, 'bin', 'bitmar-node.js');
  if (!existsSync(entryPath)) warnings.push(`${entryPath} does not exist yet: build the package before starting the service`);
  const launcher = renderLauncher(template('bitmar-node-launch.sh'), { nodePath, entryPath });
  const unit = renderUnit(template('bitmar-node.service'), {
    user,
    group,
    supplementaryGroups,
    launcherPath: SERVICE_PATHS.launcher,
    notifyAccess,
  });

  const steps: PlanStep[] = [
    { kind: 'mkdir', path: at(dirname(SERVICE_PATHS.unit)), mode: 0o755 },
    { kind: 'mkdir', path: at(dirname(SERVICE_PATHS.launcher)), mode: 0o755 },
    { kind: 'mkdir', path: at(SERVICE_PATHS.configDir), mode: 0o755 },
    { kind: 'mkdir', path: at(SERVICE_PATHS.stateDir), mode: 0o750 },
    { kind: 'mkdir', path: at(SERVICE_PATHS.logsDir), mode: 0o750 },
    { kind: 'write', path: at(SERVICE_PATHS.launcher), mode: 0o755, content: launcher, note: `runs ${nodePath} ${entryPath} run` },
    envFileStep(options, at(SERVICE_PATHS.envFile), env, root, warnings),
    { kind: 'write', path: at(SERVICE_PATHS.unit), mode: 0o644, content: unit, note: `User=${user} Group=${group} NotifyAccess=${notifyAccess}` },
  ];
  if (!isRootInstall && account !== null && gid !== null) {
    for (const path of [SERVICE_PATHS.stateDir, SERVICE_PATHS.logsDir]) {
      steps.push({ kind: 'chown', path: at(path), user, group, uid: account.uid, gid });
    }
  }
  if (isRootInstall) {
    notes.push(`installed under ${root}: systemctl was not called; on the target run: systemctl daemon-reload && systemctl enable ${SERVICE_NAME}`);
  } else {
    steps.push({ kind: 'run', argv: ['systemctl', 'daemon-reload'] });
    steps.push({ kind: 'run', argv: ['systemctl', 'enable', ...(options.startNow === true ? ['--now'] : []), SERVICE_NAME] });
    if (options.startNow !== true) notes.push(`edit ${SERVICE_PATHS.envFile}, then: sudo systemctl start bitmar-node`);
    notes.push('follow it with: journalctl -u bitmar-node -f');
  }
  return { steps, warnings, notes };
}

function envFileStep(options: InstallOptions, path: string, env: NodeJS.ProcessEnv, root: string, warnings: string[]): PlanStep {
  const exists = existsSync(path);
  let text: string;
  let note: string;
  if (options.envFile !== undefined) {
    try {
      text = readFileSync(options.envFile, 'utf8');
    } catch (e) {
      throw installError(`cannot read --env-file ${options.envFile}`, e);
    }
    note = `copied from ${options.envFile}${exists ? ', replacing the existing file' : ''}`;
  } else if (exists) {
    if (options.rosDistro === undefined && options.workspace === undefined) {
      return { kind: 'keep', path, note: 'exists; edit it by hand' };
    }
    text = readFileSync(path, 'utf8');
    note = 'existing file, updated';
  } else {
    text = readFileSync(join(options.packageRoot ?? PACKAGE_ROOT, 'systemd', 'bitmar-node.env'), 'utf8');
    note = 'from the example';
  }
  const rosDistro = options.rosDistro ?? (options.envFile === undefined && !exists ? defaultRosDistro(env, root) : undefined);
  if (rosDistro !== undefined) {
    if (!/^[a-z][a-z0-9_]*$/.test(rosDistro)) throw installError(`--ros-distro "${rosDistro}" is not a ROS 2 distribution name (humble, jazzy, ...)`);
    if (!existsSync(join(root, 'opt', 'ros', rosDistro, 'setup.bash'))) warnings.push(`/opt/ros/${rosDistro}/setup.bash does not exist: the node will start without ROS 2 until it does`);
    text = setEnvVar(text, 'ROS_DISTRO', rosDistro);
    note += `, ROS_DISTRO=${rosDistro}`;
  } else if (options.envFile === undefined && !exists) {
    warnings.push('no ROS 2 distribution found (pass --ros-distro): the node will run without ROS 2');
  }
  if (options.workspace !== undefined) {
    if (!isAbsolute(options.workspace)) throw installError(`--workspace ${options.workspace} must be an absolute path`);
    if (!existsSync(join(root, options.workspace, 'install', 'setup.bash'))) warnings.push(`${options.workspace}/install/setup.bash does not exist: build the workspace with colcon`);
    text = setEnvVar(text, 'BITMAR_ROS_WORKSPACE', options.workspace);
    note += `, BITMAR_ROS_WORKSPACE=${options.workspace}`;
  }
  return { kind: 'write', path, mode: 0o600, content: text, note };
}

/** Options of `service uninstall` and `service status`. */
export interface ServiceTargetOptions {
  readonly root?: string;
}

/** The plan for `service uninstall`: stops and removes the unit and launcher, keeps settings and data. */
export function planUninstall(options: ServiceTargetOptions = {}): ServicePlan {
  const root = options.root === undefined ? '/' : resolve(options.root);
  const at = (path: string): string => join(root, path);
  const steps: PlanStep[] = [];
  if (options.root === undefined) steps.push({ kind: 'run', argv: ['systemctl', 'disable', '--now', SERVICE_NAME], mayFail: true });
  steps.push({ kind: 'remove', path: at(SERVICE_PATHS.unit) });
  steps.push({ kind: 'remove', path: at(SERVICE_PATHS.launcher) });
  steps.push({ kind: 'remove', path: at(dirname(SERVICE_PATHS.launcher)), isDirectory: true });
  if (options.root === undefined) steps.push({ kind: 'run', argv: ['systemctl', 'daemon-reload'] });
  const notes = [
    `kept ${SERVICE_PATHS.envFile} (settings), ${SERVICE_PATHS.stateDir} (memory) and ${SERVICE_PATHS.logsDir}; remove them by hand if you want them gone`,
  ];
  return { steps, warnings: [], notes };
}

function modeText(mode: number): string {
  return `0${mode.toString(8)}`;
}

/** The lines --dry-run prints: one per step, then warnings and notes, then the rendered unit. */
export function describePlan(plan: ServicePlan, options: { readonly showUnit?: boolean } = {}): string[] {
  const lines = plan.steps.map((step) => {
    switch (step.kind) {
      case 'mkdir':
        return `mkdir   ${step.path} (${modeText(step.mode)})`;
      case 'write':
        return `write   ${step.path} (${modeText(step.mode)}; ${step.note})`;
      case 'keep':
        return `keep    ${step.path} (${step.note})`;
      case 'chown':
        return `chown   ${step.path} ${step.user}:${step.group}`;
      case 'remove':
        return `remove  ${step.path}`;
      case 'run':
        return `run     ${step.argv.join(' ')}`;
    }
  });
  for (const warning of plan.warnings) lines.push(`warning: ${warning}`);
  for (const note of plan.notes) lines.push(`next: ${note}`);
  if (options.showUnit === true) {
    const unit = plan.steps.find((step) => step.kind === 'write' && step.path.endsWith(SERVICE_NAME));
    if (unit !== undefined && unit.kind === 'write') lines.push(`--- ${unit.path} ---`, ...unit.content.trimEnd().split('\n'));
  }
  return lines;
}

/** Performs a plan. Throws BITMAR_ERR_SERVICE_INSTALL at the first step that fails. */
export function applyPlan(plan: ServicePlan, run: CommandRunner = defaultRunner): void {
  for (const step of plan.steps) {
    try {
      applyStep(step, run);
    } catch (e) {
      if (e instanceof BitmarError) throw e;
      throw installError(`${describePlan({ steps: [step], warnings: [], notes: [] })[0]} failed: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  }
}

function applyStep(step: PlanStep, run: CommandRunner): void {
  switch (step.kind) {
    case 'mkdir':
      if (!existsSync(step.path)) {
        mkdirSync(dirname(step.path), { recursive: true, mode: 0o755 }); // parents as a system has them
        mkdirSync(step.path, { mode: step.mode });
        chmodSync(step.path, step.mode);
      }
      return;
    case 'write': {
      // Write beside, then rename: systemd never reads a half-written unit.
      const tmp = `${step.path}.tmp-${process.pid}`;
      writeFileSync(tmp, step.content, { mode: step.mode });
      chmodSync(tmp, step.mode);
      renameSync(tmp, step.path);
      return;
    }
    case 'keep':
      return;
    case 'chown':
      chownSync(step.path, step.uid, step.gid);
      return;
    case 'remove':
      if (!existsSync(step.path)) return;
      if (step.isDirectory === true) {
        if (readdirSync(step.path).length === 0) rmdirSync(step.path);
      } else {
        rmSync(step.path);
      }
      return;
    case 'run': {
      const result = run(step.argv);
      if (result.status !== 0 && step.mayFail !== true) {
        throw installError(`\`${step.argv.join(' ')}\` ${result.status === null ? 'could not start' : `exited with ${result.status}`}`);
      }
      return;
    }
  }
}

/** Throws unless this process may write the system directories (root), or writes under --root. */
export function assertCanApply(options: ServiceTargetOptions): void {
  if (options.root !== undefined) return;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw installError(
      'writing /etc/systemd/system needs root: rerun with sudo, e.g. sudo "$(command -v node)" "$(command -v bitmar-node)" service install --user "$USER"',
    );
  }
}

/** `service status`: the installed files, then systemd's view of the unit (not under --root). */
export function serviceStatus(options: ServiceTargetOptions = {}, run: CommandRunner = defaultRunner): string[] {
  const root = options.root === undefined ? '/' : resolve(options.root);
  const lines: string[] = [];
  const describe = (label: string, path: string): void => {
    const full = join(root, path);
    if (!existsSync(full)) {
      lines.push(`${label.padEnd(9)} ${full}: missing`);
      return;
    }
    lines.push(`${label.padEnd(9)} ${full}: present (${modeText(statSync(full).mode & 0o7777)})`);
  };
  describe('unit', SERVICE_PATHS.unit);
  describe('launcher', SERVICE_PATHS.launcher);
  describe('settings', SERVICE_PATHS.envFile);
  describe('state', SERVICE_PATHS.stateDir);
  describe('logs', SERVICE_PATHS.logsDir);
  const unitPath = join(root, SERVICE_PATHS.unit);
  if (existsSync(unitPath)) {
    const unit = readFileSync(unitPath, 'utf8');
    const pick = (key: string): string => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1] ?? '?';
    lines.push(`unit      User=${pick('User')} NotifyAccess=${pick('NotifyAccess')} WatchdogSec=${pick('WatchdogSec')}`);
  }
  if (options.root !== undefined) return lines;
  const enabled = run(['systemctl', 'is-enabled', SERVICE_NAME]);
  if (enabled.status === null) {
    lines.push('systemctl not found: cannot ask systemd');
    return lines;
  }
  lines.push(`enabled   ${enabled.stdout.trim() || 'unknown'}`);
  const show = run(['systemctl', 'show', SERVICE_NAME, '--property=ActiveState,SubState,StatusText,MainPID,NRestarts,ExecMainStartTimestamp,Result']);
  for (const line of show.stdout.trim().split('\n')) if (line !== '') lines.push(`systemd   ${line}`);
  lines.push('logs:     journalctl -u bitmar-node -f');
  return lines;
}
