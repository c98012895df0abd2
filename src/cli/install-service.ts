/**
 * `service-vm-tenant install-service` and `service-vm-host install-service`: a systemd unit that runs
 * this package's command under `node` directly (no npm or npx in between, so SIGTERM and SIGHUP reach
 * the process itself), as a dedicated user, in a sandbox (docs/operations.md, "Service units").
 * Secrets never go on the command line, where `ps` and the unit file show them: they go in the
 * EnvironmentFile the unit names.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAbsolute, join, normalize, relative } from 'node:path';
import type { Command } from 'commander';
import { CliError, EXIT_USAGE, runCli } from './command-line.js';
import { VERSION } from '../version.js';

export const DEFAULT_UNIT_DIR = '/etc/systemd/system';

export interface UnitOptions {
  /** The unit's name without `.service`. */
  name: string;
  user: string;
  group: string;
  /** The directory the process keeps its state in: a StateDirectory= when under /var/lib. */
  stateDir: string;
  /** The command's arguments after `node ENTRY`, e.g. ["serve", "--listen", ...]. */
  args: string[];
  /** The absolute paths of node and of the command's entry file in the package. */
  node: string;
  entry: string;
}

/** What the server and the agent each need beyond the common sandbox. */
export interface Role {
  description: string;
  lines: string[];
}

const STATE_ROOT = '/var/lib/';

/**
 * The sandbox both units share. Each line is a systemd.exec(5) option; systemd-analyze verify checks
 * them (test/ops/install-service.test.ts).
 */
const HARDENING = [
  'NoNewPrivileges=yes',
  'ProtectSystem=strict',
  'ProtectHome=yes',
  'PrivateTmp=yes',
  'ProtectKernelTunables=yes',
  'ProtectKernelModules=yes',
  'ProtectKernelLogs=yes',
  'ProtectControlGroups=yes',
  'ProtectClock=yes',
  'ProtectHostname=yes',
  'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
  'RestrictNamespaces=yes',
  'RestrictRealtime=yes',
  'RestrictSUIDSGID=yes',
  'LockPersonality=yes',
  'SystemCallArchitectures=native',
  'CapabilityBoundingSet=',
  'UMask=0077',
  '# MemoryDenyWriteExecute=yes is left off: V8 (and QEMU without KVM) compile code into memory',
  '# they then run, which that option forbids.',
];

export const TENANT_ROLE: Role = {
  description: 'PPN control plane API server (service-vm-tenant)',
  lines: [
    'PrivateDevices=yes',
    // serve finishes requests in flight on SIGTERM; SIGHUP re-reads the TLS certificate and key.
    'ExecReload=/bin/kill -HUP $MAINPID',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
  ],
};

export const HOST_ROLE: Role = {
  description: 'PPN node agent (service-vm-host)',
  lines: [
    '# QEMU opens /dev/kvm: the device, and the group that may open it (no PrivateDevices=).',
    'DeviceAllow=/dev/kvm rw',
    'SupplementaryGroups=kvm',
    '# Only the agent is signalled on stop or restart: the QEMU processes it started stay, and the next',
    '# agent adopts them. The agent waits up to --stop-timeout for a guest it is stopping.',
    'KillMode=process',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=45',
  ],
};

/** The unit file's text. */
export function renderUnit(role: Role, options: UnitOptions): string {
  const state = stateDirectoryLines(options.stateDir);
  const execStart = [options.node, options.entry, ...options.args].map(quoteExecArgument).join(' ');
  return [
    `# Written by "install-service" of ppn-control-plane ${VERSION}; docs/operations.md, "Service units".`,
    '# Change it with a drop-in (systemctl edit UNIT): running install-service again replaces this file.',
    '[Unit]',
    `Description=${role.description}`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `User=${options.user}`,
    `Group=${options.group}`,
    "# Secrets (the server's PPN_DATABASE_URL) go in this file, mode 0600, never on the command line.",
    `EnvironmentFile=-/etc/ppn/${options.name}.env`,
    `ExecStart=${execStart}`,
    'Restart=on-failure',
    // 5 s apart, restarts stay under systemd's default start limit (5 in 10 s), so a server that cannot
    // reach its database at boot keeps trying instead of being given up on.
    'RestartSec=5',
    ...state,
    ...role.lines,
    ...HARDENING,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Under /var/lib, systemd makes the directory and gives it to the user; elsewhere it must exist already. */
function stateDirectoryLines(dir: string): string[] {
  const inStateRoot = relative(STATE_ROOT, dir);
  if (inStateRoot !== '' && !inStateRoot.startsWith('..')) return [`StateDirectory=${inStateRoot}`, 'StateDirectoryMode=0700'];
  return [`# ${dir} is not under ${STATE_ROOT}: create it, owned by the user, before the first start.`, `ReadWritePaths=${quoteExecArgument(dir)}`];
}

/** One ExecStart= word (systemd.service(5), "Command lines"): `$` and `%` doubled, quoted when it has spaces or quotes. */
export function quoteExecArgument(arg: string): string {
  const escaped = arg.replaceAll('%', '%%').replaceAll('$', '$$');
  if (/^[A-Za-z0-9_@%$+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** The entry file of one of this package's commands, beside this file in dist/src/cli/. */
export function commandEntry(file: string): string {
  return fileURLToPath(new URL(`./${file}`, import.meta.url));
}

/** Checks on the options every install-service takes; throws a usage error naming the option. */
export function checkUnitOptions(options: UnitOptions): void {
  if (!/^[A-Za-z0-9_.@-]+$/.test(options.name)) throw new CliError(`--name "${options.name}" is not a unit name (letters, digits, _ . @ -)`, EXIT_USAGE);
  for (const [flag, value] of [
    ['--user', options.user],
    ['--group', options.group],
  ] as const) {
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(value)) throw new CliError(`${flag} "${value}" is not a user or group name`, EXIT_USAGE);
  }
  if (!isAbsolute(options.stateDir) || normalize(options.stateDir) !== options.stateDir || /["$\\]/.test(options.stateDir)) {
    throw new CliError(`the state directory must be a plain absolute path (no "..", quotes, $ or backslashes), got "${options.stateDir}"`, EXIT_USAGE);
  }
  // A unit file is line-based: a line break in an argument would end ExecStart and start another directive.
  if ([...options.args, options.stateDir].some((arg) => /[\r\n]/.test(arg))) throw new CliError('an option for the unit holds a line break', EXIT_USAGE);
  if (options.args.some((arg) => /^--database-url(=|$)/.test(arg))) {
    throw new CliError(`a database URL may hold a password: put PPN_DATABASE_URL=... in /etc/ppn/${options.name}.env (mode 0600) instead of --database-url`, EXIT_USAGE);
  }
}

/** Paths the sandbox hides from the service: node or the package installed there cannot run under the unit. */
const HIDDEN = [
  { prefix: ['/home/', '/root/', '/run/user/'], by: 'ProtectHome=yes' },
  { prefix: ['/tmp/', '/var/tmp/'], by: 'PrivateTmp=yes' },
];

/** Warnings about the machine the unit is written on, one line each. */
export function unitWarnings(options: UnitOptions, role: Role): string[] {
  const warnings: string[] = [];
  for (const path of [options.node, options.entry]) {
    const hidden = HIDDEN.find((h) => h.prefix.some((p) => path.startsWith(p)));
    if (hidden) warnings.push(`${path} is hidden from the service by ${hidden.by}: install node and the package elsewhere (e.g. /usr/local, /opt/ppn)`);
  }
  if (role === HOST_ROLE && !listedIn('/etc/group', 'kvm')) {
    warnings.push('this machine has no group kvm, which the unit adds: create it (groupadd --system kvm) or the unit will not start');
  }
  return warnings;
}

/**
 * Whether /etc/group or /etc/passwd has an entry `name` (users and groups from NSS, such as LDAP,
 * are not seen: this only decides whether to print a hint, so an unreadable file counts as yes).
 */
function listedIn(file: '/etc/group' | '/etc/passwd', name: string): boolean {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .some((line) => line.startsWith(`${name}:`));
  } catch {
    return true;
  }
}

export interface InstallOptions {
  unitDir: string;
  print: boolean;
}

/** Writes (or prints) the unit, then says what to run next. */
export function installUnit(role: Role, options: UnitOptions, install: InstallOptions): void {
  checkUnitOptions(options);
  const text = renderUnit(role, options);
  for (const warning of unitWarnings(options, role)) process.stderr.write(`warning: ${warning}\n`);
  if (install.print) {
    process.stdout.write(text);
    return;
  }
  mkdirSync(install.unitDir, { recursive: true });
  const file = join(install.unitDir, `${options.name}.service`);
  const replaced = existsSync(file);
  writeFileSync(file, text, { mode: 0o644 });
  const next = [
    ...(listedIn('/etc/passwd', options.user) ? [] : [`useradd --system --user-group --home-dir ${options.stateDir} --shell /usr/sbin/nologin ${options.user}`]),
    'systemctl daemon-reload',
    `systemctl enable --now ${options.name}`,
    `journalctl -u ${options.name} -f`,
  ];
  process.stdout.write(`${replaced ? 'replaced' : 'wrote'} ${file}\nnext, as root:\n${next.map((line) => `  ${line}\n`).join('')}`);
}

/** How one command's `install-service` differs from the other's. */
export interface ServiceCommand {
  role: Role;
  /** The entry file in dist/src/cli/. */
  entry: string;
  defaultName: string;
  defaultUser: string;
  /** The option naming the state directory (`--data-dir`, `--state-dir`) and its default. */
  stateOption: { flag: string; default: string };
  /** The command's arguments in the unit, given the state directory and the options parsed. */
  args(stateDir: string, opts: Record<string, unknown>): string[];
}

/** Adds `install-service` to a command line; `configure` adds the options only that command has. */
export function addInstallServiceCommand(program: Command, service: ServiceCommand, configure: (command: Command) => Command = (c) => c): void {
  const stateKey = service.stateOption.flag.replace(/^--/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
  configure(
    program
      .command('install-service')
      .description(`write a systemd unit (${DEFAULT_UNIT_DIR}/${service.defaultName}.service) that runs this command under node as a dedicated user, sandboxed`)
      .argument('[options...]', `more options for the command in the unit, after "--"`)
      .option('--unit-dir <dir>', 'where to write the unit', DEFAULT_UNIT_DIR)
      .option('--print', 'print the unit on stdout instead of writing it')
      .option('--name <name>', 'the unit name', service.defaultName)
      .option('--user <name>', 'the user the service runs as (useradd --system)', service.defaultUser)
      .option('--group <name>', 'its group (default: the group named like the user)')
      .option(`${service.stateOption.flag} <dir>`, "state directory; under /var/lib it is the unit's StateDirectory=", service.stateOption.default),
  ).action((extra: string[], opts: Record<string, unknown>) =>
    runCli(async () => {
      const stateDir = opts[stateKey] as string;
      const user = opts.user as string;
      installUnit(
        service.role,
        {
          name: opts.name as string,
          user,
          group: (opts.group as string | undefined) ?? user,
          stateDir,
          args: [...service.args(stateDir, opts), ...extra],
          node: process.execPath,
          entry: commandEntry(service.entry),
        },
        { unitDir: opts.unitDir as string, print: opts.print === true },
      );
    }),
  );
}
