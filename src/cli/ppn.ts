#!/usr/bin/env node
/** ppn: the client command line. */
import { Command } from 'commander';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../control/tokens.js';
import { callApi, type ApiOptions } from './api.js';
import { parsePositiveInt, runCli } from './common.js';
import { keygen } from './keygen.js';
import { collectLimit, collectScopes, delegate, type DelegateOptions } from './token-delegate.js';
import { inspectToken } from './token-inspect.js';

const program = new Command('ppn').description('PPN client: keys, tokens and signed API requests');

program
  .command('keygen')
  .description('make an Ed25519 key pair; prints the public key in the form subject_pubkey takes')
  .requiredOption('--out <file>', 'where to write the private key (0600); the public key goes to <file>.pub')
  .option('--force', 'overwrite an existing key file', false)
  .action((opts: { out: string; force: boolean }) => runCli(async () => keygen(opts.out, opts.force)));

const token = program.command('token').description('read and delegate capability tokens, offline');

token
  .command('inspect')
  .description('print every block of a token (id, name, holder, scopes, expiry, limits, pop); signatures are not checked, the server does that')
  .argument('<token>', 'the token, or a file holding it')
  .option('--json', 'print JSON', false)
  .action((text: string, opts: { json: boolean }) => runCli(async () => inspectToken(text, opts.json)));

token
  .command('delegate')
  .description("append a narrower block for another holder, signed with the current holder's key; prints the new token")
  .requiredOption('--token <token>', 'the token to delegate, or a file holding it')
  .requiredOption('--key <file>', "the current holder's private key (from ppn keygen)")
  .requiredOption('--subject <pubkey>', "the new holder's public key")
  .requiredOption('--scope <scope>', "a scope the new holder gets (repeat, or separate with commas); within the token's scopes", collectScopes)
  .requiredOption(
    '--expires-in <seconds>',
    "lifetime in seconds; must not end after the token's own expiry",
    parsePositiveInt('--expires-in', MAX_TOKEN_LIFETIME_SECONDS),
  )
  .option('--limit <key=n>', 'a sub-quota, e.g. max_vms=2 (repeat); limits the token sets carry down unless narrowed here', collectLimit)
  .option('--pop', 'mark the new block as demanding proof of possession (the root of a delegable token already does)', false)
  .option('--name <name>', 'a name for the new block, shown in whoami, sessions and the ledger (up to 64 characters)')
  .option('--description <text>', 'a longer description of the new block (up to 256 characters)')
  .action((opts: DelegateOptions) => runCli(async () => delegate(opts)));

program
  .command('api')
  .description('send one request to the API and print the response body; signed (RFC 9421) when a key is given')
  .argument('<method>', 'GET, POST, PATCH, DELETE…')
  .argument('<path>', 'e.g. /v1/whoami or /v1/vms?limit=10')
  .option('--data <json>', 'the JSON request body')
  .option('--server <url>', 'the server (env PPN_SERVER), e.g. http://127.0.0.1:9221')
  .option('--token <token>', 'the bearer token, or a file holding it (env PPN_TOKEN)')
  .option('--key <file>', "the token holder's private key, to sign the request (env PPN_KEY)")
  .action((method: string, path: string, opts: ApiOptions) => runCli(() => callApi(method, path, opts)));

await program.parseAsync();
