/**
 * `ppn token issue | list | revoke`: tokens the server issues and records (docs/api.md, Tokens).
 * `issue` never loses a token: with `--out` the file is created (0600) before the server is asked,
 * so an unwritable path fails first, and the token is written the moment it arrives; without
 * `--out` it is printed. `inspect` and `delegate` work offline (token-inspect.ts, token-delegate.ts).
 */
import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { Command } from 'commander';
import { writeSecretFile } from '../config/secret-file.js';
import type { TokenLimits } from '../tokens/format.js';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../tokens/format.js';
import { encodeBase64url, parsePublicKeyText, rawPublicKey } from '../tokens/keys.js';
import type { Scope } from '../tokens/scopes.js';
import type { ApiClient } from './client.js';
import { CliError, EXIT_USAGE } from './command-line.js';
import { formatDuration, parseDuration } from './durations.js';
import { readPrivateKey } from './holder.js';
import { printJson, printList, type Column } from './output.js';
import { serverCommand, type CallOptions } from './ppn-options.js';
import { collectLimit, collectScopes } from './token-delegate.js';

interface TokenRecord {
  token_id: string;
  tenant_id: string | null;
  subject_pubkey: string;
  scope: string[];
  limits: TokenLimits | null;
  proof_of_possession: boolean;
  issued_at: string;
  expires_at: string;
  issued_by: string | null;
  revoked_at: string | null;
  name: string | null;
  description: string | null;
}

interface IssueOptions extends CallOptions {
  subject?: string;
  keyFile?: string;
  scope: Scope[];
  expiresIn: number;
  limit?: TokenLimits;
  pop?: boolean;
  name?: string;
  description?: string;
  tenant?: string;
  out?: string;
  force: boolean;
}

const TOKEN_ID = /^tok-[0-9a-z]{26}$/;

/** The tenant a command acts in: `--tenant`, else the caller's own; a platform admin must name one when `required`. */
export async function callerTenant(client: ApiClient, tenant: string | undefined): Promise<string | null> {
  if (tenant !== undefined) return tenant;
  return (await client.request<{ tenant_id: string | null }>('GET', '/v1/whoami')).body.tenant_id;
}

/** The public key a holder's key file stands for: a `.pub` as ppn keygen writes it, or the private key's. */
function subjectOf(options: IssueOptions): string {
  if (options.subject !== undefined && options.keyFile !== undefined) throw new CliError('give --subject or --key-file, not both', EXIT_USAGE);
  if (options.subject !== undefined) return options.subject;
  if (options.keyFile === undefined) throw new CliError("give the holder's public key: --subject PUB, or --key-file FILE (from ppn keygen)", EXIT_USAGE);
  let text: string;
  try {
    text = readFileSync(options.keyFile, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${options.keyFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const raw = parsePublicKeyText(text);
  return raw ? encodeBase64url(raw) : encodeBase64url(rawPublicKey(createPublicKey(readPrivateKey(options.keyFile))));
}

function status(token: TokenRecord, now = Date.now()): string {
  if (token.revoked_at !== null) return 'revoked';
  return Date.parse(token.expires_at) <= now ? 'expired' : 'active';
}

const COLUMNS: Column<TokenRecord>[] = [
  { heading: 'TOKEN', value: (t) => t.token_id },
  { heading: 'NAME', value: (t) => t.name ?? '', shrink: true },
  { heading: 'SCOPE', value: (t) => t.scope.join(','), shrink: true },
  { heading: 'POP', value: (t) => (t.proof_of_possession ? 'yes' : 'no') },
  { heading: 'EXPIRES', value: (t) => (status(t) === 'active' ? `in ${formatDuration((Date.parse(t.expires_at) - Date.now()) / 1000)}` : '-') },
  { heading: 'STATUS', value: (t) => status(t) },
];

/** The list a token id or name is looked for in: the tenant's, or a platform admin's own when no tenant. */
const listPath = (tenant: string | null) => (tenant === null ? '/v1/admin/tokens' : `/v1/tenants/${encodeURIComponent(tenant)}/tokens`);

/** A token id, or the one live token of that name. */
async function findTokenId(client: ApiClient, tenant: string | null, idOrName: string): Promise<string> {
  if (TOKEN_ID.test(idOrName)) return idOrName;
  const named = (await client.listAll<TokenRecord>(`${listPath(tenant)}?limit=1000`)).filter((t) => t.name === idOrName && t.revoked_at === null);
  if (named.length === 0) throw new CliError(`no live token named "${idOrName}"; "ppn token list" shows them`);
  if (named.length > 1) throw new CliError(`${named.length} live tokens are named "${idOrName}" (${named.map((t) => t.token_id).join(', ')}): give the id`, EXIT_USAGE);
  return named[0]!.token_id;
}

export function registerTokenCommands(token: Command): void {
  serverCommand(
    token
      .command('issue')
      .description("issue a token for a holder's key (a tenant admin, or a platform admin with --tenant); the text is shown once")
      .option('--subject <pubkey>', "the holder's public key (as ppn keygen prints it)")
      .option('--key-file <file>', "or the holder's key file from ppn keygen (the private key or its .pub)")
      .requiredOption('--scope <scope>', 'a scope (repeat, or separate with commas)', collectScopes)
      .requiredOption('--expires-in <duration>', 'lifetime, e.g. 90d, 12h, 30m (at most 90d)', parseDuration('--expires-in', MAX_TOKEN_LIFETIME_SECONDS))
      .option('--limit <key=n>', 'a sub-quota, e.g. max_vms=2 (repeat)', collectLimit)
      .option('--pop', 'every request under it must be signed with the holder key (required to delegate it)')
      .option('--name <name>', 'a name for people (up to 64 characters)')
      .option('--description <text>', 'a longer description (up to 256 characters)')
      .option('--tenant <tenant>', "the tenant (default: your token's)")
      .option('--out <file>', 'write the token to this file (0600) instead of printing it')
      .option('--force', 'with --out: overwrite an existing file', false),
    [
      'ppn token issue --key-file alice.key.pub --scope tenant:input --expires-in 30d --name alice --out alice.token',
      'ppn token issue --subject "$PUB" --scope tenant:read --expires-in 12h --pop',
    ],
    async (client: ApiClient, options: IssueOptions) => {
      const subject = subjectOf(options);
      const tenant = await callerTenant(client, options.tenant);
      if (tenant === null) throw new CliError('a platform admin issues into a tenant: add --tenant TENANT', EXIT_USAGE);
      const out = options.out;
      if (out !== undefined && existsSync(out) && !options.force) throw new CliError(`${out} exists; pass --force to overwrite it`, EXIT_USAGE);
      if (out !== undefined) {
        try {
          writeSecretFile(out, '');
        } catch (error) {
          throw new CliError(`cannot write ${out}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; nothing was issued`);
        }
      }
      const body = {
        subject_pubkey: subject,
        scope: options.scope,
        expires_in_seconds: options.expiresIn,
        ...(options.pop !== undefined ? { proof_of_possession: options.pop } : {}),
        ...(options.limit !== undefined ? { limits: options.limit } : {}),
        ...(options.name !== undefined ? { name: options.name } : {}),
        ...(options.description !== undefined ? { description: options.description } : {}),
      };
      let issued: TokenRecord & { token: string };
      try {
        issued = (await client.request<TokenRecord & { token: string }>('POST', `/v1/tenants/${encodeURIComponent(tenant)}/tokens`, body)).body;
      } catch (error) {
        if (out !== undefined) rmSync(out, { force: true });
        throw error;
      }
      if (out === undefined) {
        if (options.json) printJson(issued);
        else process.stdout.write(`${issued.token}\n`);
        return;
      }
      writeSecretFile(out, `${issued.token}\n`);
      const { token: _written, ...record } = issued;
      if (options.json) printJson({ ...record, token_file: out });
      else if (options.quiet) process.stdout.write(`${issued.token_id}\n`);
      else process.stdout.write(`issued ${issued.token_id} (${issued.scope.join(', ')}, expires ${issued.expires_at}) to ${out}\n`);
    },
  );

  serverCommand(
    token
      .command('list')
      .description("the tenant's issued tokens, revoked and expired ones included (a platform admin without --tenant: the platform tokens)")
      .option('--tenant <tenant>', "the tenant (default: your token's)"),
    ['ppn token list', 'ppn token list --tenant acme-corp --json'],
    async (client: ApiClient, options: CallOptions & { tenant?: string }) => {
      const tokens = await client.listAll<TokenRecord>(`${listPath(await callerTenant(client, options.tenant))}?limit=1000`);
      printList(options, tokens, COLUMNS, (t) => t.token_id);
    },
  );

  serverCommand(
    token
      .command('revoke')
      .argument('<token>', "a token id (tok-…; also a block delegated offline, as ppn token inspect shows it), or a live token's name")
      .description('revoke a token: it, every token delegated from it and every token its holders issued are refused from then on')
      .option('--tenant <tenant>', "the tenant (default: your token's; a platform admin without it revokes a platform token)"),
    ['ppn token revoke tok-01m8ft8btc7tvq8ag3w1aceh4q', 'ppn token revoke "build box"'],
    async (client: ApiClient, options: CallOptions & { tenant?: string }, idOrName: string) => {
      const tenant = await callerTenant(client, options.tenant);
      const id = await findTokenId(client, tenant, idOrName);
      const revoked = (await client.request<{ token_id: string; revoked_at: string }>('DELETE', `${listPath(tenant)}/${id}`)).body;
      if (options.json) printJson(revoked);
      else if (options.quiet) process.stdout.write(`${revoked.token_id}\n`);
      else process.stdout.write(`revoked ${revoked.token_id} at ${revoked.revoked_at}\n`);
    },
  );
}
