#!/usr/bin/env node
/**
 * ppn: the client an operator and a tenant admin use every day, over the public API only (no store
 * behind it): saved remotes, tenants, VMs, tokens, sessions and nodes, tables for people and
 * `--json` for scripts, every request signed when the remote has the holder's key.
 * Exit codes: 0 done, 1 refused, 2 the command line is wrong, 3 the server cannot be reached.
 */
import { Command, type CommanderError } from 'commander';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../tokens/format.js';
import { callApi, type ApiOptions } from './api.js';
import { VERSION } from '../version.js';
import { registerVersion } from './ppn-version.js';
import { EXIT_USAGE, oneOf, runCli } from './command-line.js';
import { bashCompletion, zshCompletion } from './completion.js';
import { parseDuration } from './durations.js';
import { keygen } from './keygen.js';
import { printList } from './output.js';
import { registerNode } from './ppn-node.js';
import { helpExamples } from './ppn-options.js';
import { registerSession } from './ppn-session.js';
import { registerTenant } from './ppn-tenant.js';
import { registerTokenCommands } from './ppn-token.js';
import { registerVm } from './ppn-vm.js';
import { registerWhoami } from './ppn-whoami.js';
import { addRemote, configFile, listRemotes, removeRemote, useRemote, type AddRemoteOptions } from './remotes.js';
import { collectLimit, collectScopes, delegate, type DelegateOptions } from './token-delegate.js';
import { inspectToken } from './token-inspect.js';

// `ppn vm list | head` closes the pipe early: stop quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const program = new Command('ppn')
  .description('PPN client: remotes, tenants, VMs, tokens, sessions and nodes over the API; keys and offline token delegation')
  .version(VERSION, '-V, --version')
  .option('--remote <name>', 'the saved remote to use for this call (default: the current one, or PPN_SERVER); for token delegate, whose token and key')
  .option('--ca <file>', "the CA that signs the server's certificate, for this call (env PPN_CA; default: the remote's, else the system's)")
  .option('--insecure', 'allow plain http:// to a server that is not on this machine (the token then crosses the network unencrypted)')
  .configureHelp({ showGlobalOptions: true })
  // Inherited by every subcommand defined below: a wrong command line exits 2, --help and --version 0.
  .exitOverride((error: CommanderError) => process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE))
  .addHelpText(
    'after',
    helpExamples([
      'ppn remote add prod https://ppn.example.com --token-file admin.token',
      'ppn tenant show acme-corp',
      'ppn vm create web-1 --wait',
      'ppn token issue --key-file bob.key.pub --scope tenant:read --expires-in 30d --out bob.token',
    ]) + '\nExit codes: 0 done, 1 refused, 2 wrong command line, 3 server unreachable.\n',
  );

const remote = program.command('remote').description(`saved servers, with the token and key to use (kept in ${configFile()}, 0600)`);
remote
  .command('add')
  .description('save a remote and, if it is the first or with --use, make it current')
  .argument('<name>', 'a name for it, e.g. prod')
  .argument('<url>', 'the server, e.g. http://127.0.0.1:9221')
  .option('--token-file <file>', 'the token, by path (read at each call)')
  .option('--token <token>', 'the token text, stored inline')
  .option('--key <file>', "the token holder's private key (from ppn keygen), to sign every request")
  .option('--inline', 'store the token file and key text in the configuration instead of their paths', false)
  .option('--use', 'make it the current remote', false)
  .option('--ca <file>', "the CA that signs the server's certificate (PEM), by path unless --inline")
  .option('--client-cert <file>', 'a client certificate (PEM) to present, for a server that asks platform admins for one (--tls-client-ca)')
  .option('--client-key <file>', "the client certificate's key (PEM)")
  .option('--insecure', 'allow a plain http:// URL to another machine: the token crosses the network unencrypted')
  .addHelpText(
    'after',
    helpExamples([
      'ppn remote add local http://127.0.0.1:9221 --token-file .ppn/admin.token',
      'ppn remote add acme https://ppn.example.com --token-file acme.token --key acme.key --inline',
      'ppn remote add prod https://ppn.internal:9221 --token-file admin.token --ca ca.pem --client-cert admin.crt --client-key admin.key',
    ]),
  )
  .action((name: string, url: string, _opts: unknown, command: Command) =>
    runCli(async () => {
      // --ca and --insecure are the program's too: read them wherever they were given.
      const added = addRemote(name, url, command.optsWithGlobals<AddRemoteOptions>());
      process.stdout.write(`saved remote ${added.name} (${added.remote.url})${added.current ? ', now current' : ''}\n`);
    }),
  );
remote
  .command('list')
  .description('the saved remotes; * marks the current one')
  .option('--json', 'print JSON', false)
  .option('-q, --quiet', 'print only names', false)
  .addHelpText('after', helpExamples(['ppn remote list', 'ppn remote list --json']))
  .action((opts: { json: boolean; quiet: boolean }) =>
    runCli(async () => {
      const remotes = listRemotes();
      printList(
        opts,
        remotes,
        [
          { heading: '', value: (r) => (r.current ? '*' : '') },
          { heading: 'NAME', value: (r) => r.name },
          { heading: 'URL', value: (r) => r.url, shrink: true },
          { heading: 'TOKEN', value: (r) => r.token, shrink: true },
          { heading: 'KEY', value: (r) => r.key, shrink: true },
          { heading: 'CA', value: (r) => r.ca, shrink: true },
        ],
        (r) => r.name,
      );
    }),
  );
remote
  .command('use')
  .description('make a remote the current one')
  .argument('<name>')
  .addHelpText('after', helpExamples(['ppn remote use prod']))
  .action((name: string) => runCli(async () => useRemote(name)));
remote
  .command('remove')
  .description('forget a remote (its token and key files are left alone)')
  .argument('<name>')
  .addHelpText('after', helpExamples(['ppn remote remove prod']))
  .action((name: string) => runCli(async () => removeRemote(name)));

registerWhoami(program);
registerVersion(program);
registerTenant(program);
registerVm(program);

const token = program.command('token').description('issue, list and revoke tokens on the server; read and delegate them offline');
registerTokenCommands(token);
token
  .command('inspect')
  .description('print every block of a token (id, name, holder, scopes, expiry, limits, pop); signatures are not checked, the server does that')
  .argument('<token>', 'the token, or a file holding it')
  .option('--json', 'print JSON', false)
  .addHelpText('after', helpExamples(['ppn token inspect build-box.token', 'ppn token inspect build-box.token --json | jq -r .token_id']))
  .action((text: string, opts: { json: boolean }) => runCli(async () => inspectToken(text, opts.json)));
token
  .command('delegate')
  .description("append a narrower block for another holder, signed with the current holder's key; prints the new token")
  .option('--token <token>', "the token to delegate, or a file holding it (default: the remote's token, or PPN_TOKEN)")
  .option('--key <file>', "the current holder's private key, from ppn keygen (default: the remote's key, or PPN_KEY)")
  .requiredOption('--subject <pubkey>', "the new holder's public key")
  .requiredOption('--scope <scope>', "a scope the new holder gets (repeat, or separate with commas); within the token's scopes", collectScopes)
  .requiredOption(
    '--expires-in <duration>',
    "lifetime, e.g. 1h, 30m or seconds; must not end after the token's own expiry",
    parseDuration('--expires-in', MAX_TOKEN_LIFETIME_SECONDS),
  )
  .option('--limit <key=n>', 'a sub-quota, e.g. max_vms=2 (repeat); limits the token sets carry down unless narrowed here', collectLimit)
  .option('--pop', 'mark the new block as demanding proof of possession (the root of a delegable token already does)', false)
  .option('--name <name>', 'a name for the new block, shown in whoami, sessions and the ledger (up to 64 characters)')
  .option('--description <text>', 'a longer description of the new block (up to 256 characters)')
  .addHelpText(
    'after',
    helpExamples([
      'ppn token delegate --token acme-admin.token --key acme-admin.key --subject "$PUB" --scope tenant:input --expires-in 1h --limit max_vms=2 > build-box.token',
      'ppn token delegate --subject "$PUB" --scope tenant:read --expires-in 8h > reader.token   # as the current remote\'s holder',
    ]),
  )
  // The global --remote names the saved remote whose token and key fill in --token and --key.
  .action((_opts: unknown, command: Command) => runCli(async () => delegate(command.optsWithGlobals<DelegateOptions>())));

registerSession(program);
registerNode(program);

program
  .command('keygen')
  .description('make an Ed25519 key pair; prints the public key in the form subject_pubkey takes')
  .requiredOption('--out <file>', 'where to write the private key (0600); the public key goes to <file>.pub')
  .option('--force', 'overwrite an existing key file', false)
  .addHelpText('after', helpExamples(['ppn keygen --out alice.key']))
  .action((opts: { out: string; force: boolean }) => runCli(async () => keygen(opts.out, opts.force)));

program
  .command('api')
  .description('send one request to the API and print the response body; signed (RFC 9421) when a key is given')
  .argument('<method>', 'GET, POST, PATCH, DELETE…')
  .argument('<path>', 'e.g. /v1/whoami or /v1/vms?limit=10')
  .option('--data <json>', 'the JSON request body')
  .option('--server <url>', 'the server (env PPN_SERVER), e.g. http://127.0.0.1:9221')
  .option('--token <token>', 'the bearer token, or a file holding it (env PPN_TOKEN)')
  .option('--key <file>', "the token holder's private key, to sign the request (env PPN_KEY)")
  .addHelpText(
    'after',
    helpExamples(['ppn api GET /v1/whoami --server http://127.0.0.1:9221 --token .ppn/admin.token', 'ppn api PATCH /v1/tenants/acme-corp --data \'{"max_vms":20}\'']),
  )
  .action((method: string, path: string, _opts: unknown, command: Command) => runCli(() => callApi(method, path, command.optsWithGlobals<ApiOptions>())));

program
  .command('completion')
  .description('print a shell completion script')
  .argument('<shell>', 'bash or zsh', oneOf('SHELL', ['bash', 'zsh'] as const))
  .addHelpText('after', helpExamples(['source <(ppn completion bash)', 'ppn completion zsh > "${fpath[1]}/_ppn"']))
  .action((shell: 'bash' | 'zsh') => void process.stdout.write(shell === 'bash' ? bashCompletion(program) : zshCompletion(program)));

await program.parseAsync();
