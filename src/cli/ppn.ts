#!/usr/bin/env node
/** ppn: the client command line. */
import { Command } from 'commander';
import { runCli } from './common.js';
import { keygen } from './keygen.js';

const program = new Command('ppn').description('PPN client: keys and tokens');

program
  .command('keygen')
  .description('make an Ed25519 key pair; prints the public key in the form subject_pubkey takes')
  .requiredOption('--out <file>', 'where to write the private key (0600); the public key goes to <file>.pub')
  .option('--force', 'overwrite an existing key file', false)
  .action((opts: { out: string; force: boolean }) => runCli(async () => keygen(opts.out, opts.force)));

await program.parseAsync();
