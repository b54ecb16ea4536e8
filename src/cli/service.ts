/**
 * `bitmar-node service install|uninstall|status`: the systemd service (src/service/installer.ts).
 * Writing to / needs root; --root DIR writes under DIR and never calls systemctl; --dry-run prints
 * the plan and changes nothing.
 */
import type { Command } from 'commander';

import {
  applyPlan,
  assertCanApply,
  describePlan,
  planInstall,
  planUninstall,
  serviceStatus,
  type ServicePlan,
} from '../service/installer.js';

interface InstallFlags {
  readonly user?: string;
  readonly group?: string;
  readonly root?: string;
  readonly dryRun?: boolean;
  readonly envFile?: string;
  readonly rosDistro?: string;
  readonly workspace?: string;
  readonly now?: boolean;
}

interface TargetFlags {
  readonly root?: string;
  readonly dryRun?: boolean;
}

function print(lines: readonly string[]): void {
  process.stdout.write(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}

function runPlan(plan: ServicePlan, flags: TargetFlags): void {
  if (flags.dryRun === true) {
    print(['dry run: nothing is changed', ...describePlan(plan, { showUnit: true })]);
    return;
  }
  assertCanApply({ root: flags.root });
  applyPlan(plan);
  print(describePlan(plan));
}

/** Adds the `service` command and its subcommands to `program`. */
export function registerServiceCommand(program: Command): Command {
  const service = program
    .command('service')
    .description('install, remove or inspect the systemd service (see docs/jetson.md)');

  service
    .command('install')
    .description('write the unit, launcher and settings file, create the state directories, enable the service')
    .option('--user <name>', 'account the service runs as: the camera driver\'s (default: $SUDO_USER or you)')
    .option('--group <name>', 'primary group (default: the user\'s)')
    .option('--root <dir>', 'install under this directory instead of / and call no systemctl')
    .option('--dry-run', 'print what would be done and the unit, change nothing')
    .option('--env-file <path>', 'install this settings file as /etc/bitmar-node/bitmar-node.env')
    .option('--ros-distro <name>', 'ROS 2 distribution to source (humble, jazzy; default: detected in /opt/ros)')
    .option('--workspace <dir>', 'colcon workspace to source after the distribution')
    .option('--now', 'also start the service')
    .action((flags: InstallFlags) => {
      const plan = planInstall({
        user: flags.user,
        group: flags.group,
        root: flags.root,
        envFile: flags.envFile,
        rosDistro: flags.rosDistro,
        workspace: flags.workspace,
        startNow: flags.now === true,
      });
      runPlan(plan, flags);
    });

  service
    .command('uninstall')
    .description('stop, disable and remove the unit and launcher; keep settings, memory and logs')
    .option('--root <dir>', 'remove from under this directory and call no systemctl')
    .option('--dry-run', 'print what would be done, change nothing')
    .action((flags: TargetFlags) => {
      runPlan(planUninstall({ root: flags.root }), flags);
    });

  service
    .command('status')
    .description('show the installed files and what systemd reports')
    .option('--root <dir>', 'inspect the files under this directory only')
    .action((flags: TargetFlags) => {
      print(serviceStatus({ root: flags.root }));
    });

  return service;
}
