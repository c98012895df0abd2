/**
 * Runs docs/operations.md's shell blocks as written on a machine the test may not change and where
 * no systemd runs. The host's file system paths the blocks name (/opt/ppn, /etc/ppn,
 * /etc/systemd/system, /var/lib/ppn*, /var/backups/ppn) live under a temporary root; the package
 * is this checkout's built dist/ laid out as `npm install --global --prefix /opt/ppn` lays it out;
 * and five commands are stand-ins on PATH:
 *
 *   systemctl  starts a unit's ExecStart line as a background process, with its EnvironmentFile and
 *              its StateDirectory made, both under the root (stop: SIGTERM and wait for the end;
 *              restart: stop, then start; reload: SIGHUP)
 *   npm        `npm install --global --prefix P ... ./ppn-control-plane-VERSION.tgz` lays this checkout's
 *              built package out under P, as the new release (VERSION must be package.json's)
 *   runuser    runs the command as the test's own user (the blocks' users are not created)
 *   useradd    does nothing
 *   install    drops -o and -g (no such user) and runs the real install
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { processAlive } from './qemu-guests.js';

/** The block of docs/operations.md between `<!-- NAME:start -->` and `<!-- NAME:end -->`, in a ``` fence of `lang`. */
export function operationsBlock(name: string, lang = 'sh'): string {
  const doc = readFileSync('docs/operations.md', 'utf8');
  const block = new RegExp(`<!-- ${name}:start -->\n\`\`\`${lang}\n([\\s\\S]*?)\`\`\`\n<!-- ${name}:end -->`).exec(doc);
  if (!block) throw new Error(`docs/operations.md has no ${name} block`);
  return block[1]!;
}

/** `script` with its one line `line` changed to `replacement`, after checking the line is there. */
export function withLine(script: string, line: string, replacement: string): string {
  expect(script).toContain(`${line}\n`);
  return script.replace(`${line}\n`, `${replacement}\n`);
}

/** A loopback port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

const PACKAGE = join('opt', 'ppn', 'lib', 'node_modules', 'ppn-control-plane');
const COMMANDS = ['service-vm-tenant', 'service-fs', 'ppn', 'service-vm-host'];

/** The stand-in for systemctl: a node script, so that it can read units and start processes as systemd would. */
const SYSTEMCTL = String.raw`
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const root = process.env.PPN_OPS_ROOT;
const under = (path) => (/^\/(etc|var\/lib)\//.test(path) ? join(root, path) : path);
const pidFile = (unit) => join(root, 'run', unit + '.pid');
const [verb, ...rest] = process.argv.slice(2);
const units = rest.filter((arg) => !arg.startsWith('--'));
function start(unit) {
  const text = readFileSync(join(root, 'etc/systemd/system', unit + '.service'), 'utf8');
  const values = (key) => [...text.matchAll(new RegExp('^' + key + '=(.*)$', 'gm'))].map((m) => m[1]);
  const env = { ...process.env };
  for (const spec of values('EnvironmentFile')) {
    const file = under(spec.replace(/^-/, ''));
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const pair = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (pair) env[pair[1]] = pair[2];
    }
  }
  for (const dir of values('StateDirectory')) mkdirSync(join(root, 'var/lib', dir), { recursive: true, mode: 0o700 });
  const words = [...values('ExecStart')[0].matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] ?? m[2]).replaceAll('$$', '$').replaceAll('%%', '%'));
  mkdirSync(join(root, 'log'), { recursive: true });
  const log = openSync(join(root, 'log', unit + '.log'), 'a');
  const child = spawn(words[0], words.slice(1).map(under), { env, detached: true, stdio: ['ignore', log, log] });
  mkdirSync(join(root, 'run'), { recursive: true });
  writeFileSync(pidFile(unit), String(child.pid));
  child.unref();
}
const mainPid = (unit) => Number(readFileSync(pidFile(unit), 'utf8'));
const signal = (unit, name) => process.kill(mainPid(unit), name);
// A process that has ended, zombies included (its parent, this script, has gone).
const alive = (pid) => { try { return readFileSync('/proc/' + pid + '/cmdline').length > 0; } catch { return false; } };
// As systemctl stop does: SIGTERM, then wait until the process has ended (SIGKILL after 30 s).
function stop(unit) {
  const pid = mainPid(unit);
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; alive(pid); waited += 50) {
    if (waited === 30000) process.kill(pid, 'SIGKILL');
    Atomics.wait(pause, 0, 0, 50);
  }
}
if (verb === 'daemon-reload') process.exit(0);
else if ((verb === 'enable' && rest.includes('--now')) || verb === 'start') units.forEach(start);
else if (verb === 'stop') units.forEach(stop);
else if (verb === 'restart') units.forEach((unit) => { stop(unit); start(unit); });
else if (verb === 'reload') units.forEach((unit) => signal(unit, 'SIGHUP'));
else {
  process.stderr.write('systemctl ' + process.argv.slice(2).join(' ') + ': not done by the test stand-in\n');
  process.exit(1);
}
`;

const SHIMS: Record<string, string> = {
  systemctl: `exec "${process.execPath}" "$(dirname "$0")/systemctl.mjs" "$@"`,
  runuser: '[ "$1" = -u ] || exit 2\nshift 2\n[ "$1" = -- ] && shift\nexec "$@"',
  useradd: 'exit 0',
  install: 'for arg; do shift; case "$skip:$arg" in :-o|:-g) skip=1;; 1:*) skip=;; *) set -- "$@" "$arg";; esac; done\nexec /usr/bin/install "$@"',
  npm: [
    '[ "$1 $2 $3" = "install --global --prefix" ] || { echo "npm $*: not done by the test stand-in" >&2; exit 1; }',
    'prefix=$4; for tgz; do :; done',
    `want=./ppn-control-plane-$("${process.execPath}" -p 'require(process.argv[1]).version' "$PPN_OPS_CHECKOUT/package.json").tgz`,
    '[ "$tgz" = "$want" ] || { echo "npm: the test stand-in installs $want, not $tgz" >&2; exit 1; }',
    'pkg=$prefix/lib/node_modules/ppn-control-plane',
    'rm -rf "$pkg/dist" && cp -R "$PPN_OPS_CHECKOUT/dist" "$pkg/dist" && cp "$PPN_OPS_CHECKOUT/package.json" "$pkg/package.json"',
  ].join('\n'),
};

export interface OpsHost {
  root: string;
  /** The environment the blocks run in: the stand-ins first on PATH. */
  env: Record<string, string>;
  /** `script` with the host paths moved under the root and every `install-service` writing its unit there. */
  rewrite(script: string): string;
  /** Runs a rewritten block with bash -euo pipefail. */
  run(script: string): SpawnSyncReturns<string>;
  /** Puts another release's build (its dist/ and package.json, in `dir`) in place of the installed package. */
  installRelease(dir: string): void;
  /** What a unit the stand-in started wrote to stdout and stderr. */
  log(unit: string): string;
  /** SIGTERM to every unit the stand-in started, waits until each has ended, and removes the root. */
  stopAll(): Promise<void>;
}

/** A temporary root holding the package as installed under /opt/ppn, and the stand-ins. */
export function makeOpsHost(): OpsHost {
  const root = mkdtempSync(join(tmpdir(), 'ppn-ops-'));
  const pkg = join(root, PACKAGE);
  mkdirSync(pkg, { recursive: true });
  cpSync('dist', join(pkg, 'dist'), { recursive: true });
  cpSync('package.json', join(pkg, 'package.json'));
  symlinkSync(resolve('node_modules'), join(pkg, 'node_modules'));
  const bin = join(root, 'opt', 'ppn', 'bin');
  mkdirSync(bin);
  for (const name of COMMANDS) symlinkSync(`../lib/node_modules/ppn-control-plane/dist/src/cli/${name}.js`, join(bin, name));

  const shims = join(root, 'shims');
  mkdirSync(shims);
  writeFileSync(join(shims, 'systemctl.mjs'), SYSTEMCTL);
  for (const [name, body] of Object.entries(SHIMS)) {
    writeFileSync(join(shims, name), `#!/bin/sh\n# A stand-in for ${name} in the operations test (test/support/operations-doc.ts).\n${body}\n`);
    chmodSync(join(shims, name), 0o755);
  }
  const env = { PATH: `${shims}:${process.env.PATH}`, PPN_OPS_ROOT: root, PPN_OPS_CHECKOUT: resolve('.') };
  const unitDir = join(root, 'etc', 'systemd', 'system');
  const pidsDir = join(root, 'run');

  return {
    root,
    env,
    // An install-service line keeps its paths: the unit names them as on the real host, and the
    // systemctl stand-in moves them under the root when it starts the unit.
    rewrite: (script) =>
      script
        .split('\n')
        .map((line) =>
          line.includes(' install-service')
            ? line.replace(/^\/opt\/ppn\//, `${root}/opt/ppn/`).replace(/ install-service\b/, ` install-service --unit-dir ${unitDir}`)
            : line.replace(/(?<![\w.-])\/(opt\/ppn|etc\/ppn|etc\/systemd\/system|var\/lib\/ppn|var\/backups\/ppn)/g, `${root}/$1`),
        )
        .join('\n'),
    run: (script) =>
      spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, ...env },
        // stdin from /dev/null: bash would take a socket on stdin for an ssh session (readme.test.ts).
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    installRelease(dir) {
      rmSync(join(pkg, 'dist'), { recursive: true });
      cpSync(join(dir, 'dist'), join(pkg, 'dist'), { recursive: true });
      cpSync(join(dir, 'package.json'), join(pkg, 'package.json'));
      // As npm does for a package's bins.
      for (const name of COMMANDS) if (existsSync(join(pkg, 'dist/src/cli', `${name}.js`))) chmodSync(join(pkg, 'dist/src/cli', `${name}.js`), 0o755);
    },
    log: (unit) => {
      const file = join(root, 'log', `${unit}.log`);
      return existsSync(file) ? readFileSync(file, 'utf8') : '';
    },
    async stopAll() {
      const pids = existsSync(pidsDir) ? readdirSync(pidsDir).map((name) => Number(readFileSync(join(pidsDir, name), 'utf8'))) : [];
      for (const pid of pids) if (processAlive(pid)) process.kill(pid, 'SIGTERM');
      for (const pid of pids) {
        for (let i = 0; i < 200 && processAlive(pid); i++) await new Promise((done) => setTimeout(done, 50));
        if (processAlive(pid)) process.kill(pid, 'SIGKILL');
      }
      // It holds a copy of dist/ (a few MB) for every run.
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** `systemd-analyze verify`: the unit is good when it exits 0 with no output (a warning is a failure). */
export function verifyUnit(file: string): { ok: boolean; output: string } {
  const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  const output = `${result.stdout}${result.stderr}`.trim();
  return { ok: result.status === 0 && output === '', output };
}

/** nginx as a plain process on a configuration holding `server` (an http-level block), with every path in `dir`. */
export function startNginx(dir: string, httpBlock: string): { process: ReturnType<typeof spawn>; errors: () => string } {
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${join(dir, kind)};`).join('\n');
  writeFileSync(
    conf,
    `worker_processes 1;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'error.log')};\nevents {}\nhttp {\n  access_log ${join(dir, 'access.log')};\n${temp}\n${httpBlock}\n}\n`,
  );
  const child = spawn('nginx', ['-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: 'ignore' });
  return { process: child, errors: () => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '') };
}
