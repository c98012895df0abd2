#!/usr/bin/env node
/** service-vm-host: the node agent, which enrolls a machine into a tenant's fleet and runs its VMs under QEMU. */
import { Command, Option } from 'commander';
import { defaultStateDir, ROOT_STATE_DIR } from '../agent/state-dir.js';
import { parsePositiveInt, runCli } from './common.js';
import { VERSION } from '../version.js';
import { enrollNode, initNode, runNode } from './host.js';
import { addInstallServiceCommand, HOST_ROLE } from './install-service.js';

const program = new Command('service-vm-host').description('PPN node agent: enrolls this machine and runs its VMs under QEMU').version(VERSION, '-V, --version');
const STATE_DIR_HELP = `state directory: node key, enrollment, VMs (default ${defaultStateDir()}: /var/lib/ppn-host as root, ./.ppn-host otherwise)`;

program
  .command('init')
  .description("make the node's Ed25519 key and print its public key, for a tenant admin to issue a node:agent token to")
  .option('--state-dir <dir>', STATE_DIR_HELP)
  .action((opts: { stateDir?: string }) => runCli(async () => initNode(opts.stateDir ?? defaultStateDir())));

program
  .command('enroll')
  .description('register this node with the server (POST /v1/nodes) and remember the server, token and node id for run')
  .requiredOption('--server <url>', 'the server, e.g. https://ppn.example.com:9221')
  .requiredOption('--token <token>', "the node:agent token issued for this node's key, or a file holding it")
  .requiredOption('--node-id <id>', 'the name of this node in the tenant, e.g. compute-west-01')
  .option('--ca <file>', "the CA that signs the server's certificate (env PPN_CA; default: the system's); remembered for run")
  .option('--insecure', 'allow plain http:// to a server that is not on this machine (the token crosses the network unencrypted); remembered for run')
  .option('--state-dir <dir>', STATE_DIR_HELP)
  .action((opts: { server: string; token: string; nodeId: string; ca?: string; insecure?: boolean; stateDir?: string }) =>
    runCli(() => enrollNode(opts.stateDir ?? defaultStateDir(), opts)),
  );

program
  .command('run')
  .description('heartbeat and run the VMs the server places here; SIGTERM ends the agent and leaves the VMs running')
  .option('--heartbeat-interval <seconds>', 'seconds between heartbeats (default: what the server asks, 10)', parsePositiveInt('--heartbeat-interval', 3600))
  .option('--stop-timeout <seconds>', 'how long a guest gets to power off before QEMU is told to quit', parsePositiveInt('--stop-timeout', 3600), 30)
  .addOption(new Option('--accel <accel>', 'QEMU accelerator: auto is kvm when /dev/kvm opens read-write, tcg otherwise').choices(['auto', 'kvm', 'tcg']).default('auto'))
  .option('--log-level <level>', 'pino log level', 'info')
  .option('--state-dir <dir>', STATE_DIR_HELP)
  .action((opts: { heartbeatInterval?: number; stopTimeout: number; accel: 'auto' | 'kvm' | 'tcg'; logLevel: string; stateDir?: string }) =>
    runCli(() =>
      runNode(opts.stateDir ?? defaultStateDir(), {
        heartbeatIntervalS: opts.heartbeatInterval,
        stopTimeoutS: opts.stopTimeout,
        accel: opts.accel,
        logLevel: opts.logLevel,
      }),
    ),
  );

addInstallServiceCommand(program, {
  role: HOST_ROLE,
  entry: 'service-vm-host.js',
  defaultName: 'ppn-host',
  defaultUser: 'ppn-host',
  stateOption: { flag: '--state-dir', default: ROOT_STATE_DIR },
  args: (stateDir) => ['run', '--state-dir', stateDir],
});

await program.parseAsync();
