/**
 * `ppn token inspect T [--json]`: every block of a token, read offline. Nothing is verified: the
 * root's signature needs the platform key, which only the server has; the server checks all of it.
 */
import { isoTime } from '../clock.js';
import { delegatedBlockId, type TokenBlock, type TokenLimits } from '../tokens/format.js';
import { parseTokenText, readToken } from './holder.js';

interface InspectedBlock {
  index: number;
  id: string;
  /** Block 0 only. */
  kid?: string;
  tenant_id?: string | null;
  holder: string;
  scopes: string[];
  issued_at: string;
  expires_at: string;
  limits: TokenLimits | null;
  pop: boolean;
  /** A delegated block's own; an issued token's name is kept by the server, not in the token. */
  name: string | null;
  description: string | null;
}

export function inspectToken(given: string, json: boolean): void {
  const blocks = parseTokenText(readToken(given, 'TOKEN')).map(describeBlock);
  if (json) {
    process.stdout.write(`${JSON.stringify({ token_id: blocks[blocks.length - 1]!.id, blocks }, null, 2)}\n`);
    return;
  }
  const lines: string[] = [];
  for (const block of blocks) {
    const signer = block.index === 0 ? `root, signed by platform key ${block.kid}` : `delegated, signed by the holder of block ${block.index - 1}`;
    lines.push(`block ${block.index} (${signer})`);
    if (block.index === 0) lines.push(`  tenant   ${block.tenant_id ?? '(none: platform)'}`);
    lines.push(
      `  id       ${block.id}`,
      `  holder   ${block.holder}`,
      `  scopes   ${block.scopes.join(', ')}`,
      `  issued   ${block.issued_at}`,
      `  expires  ${block.expires_at}`,
      `  limits   ${block.limits ? formatLimits(block.limits) : '(none)'}`,
      `  pop      ${block.pop ? 'yes' : 'no'}`,
    );
    // The parser admits only printable text here, so a name cannot forge a line of this listing.
    if (block.name !== null) lines.push(`  name     ${block.name}`);
    if (block.description !== null) lines.push(`  about    ${block.description}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

function describeBlock({ claims, signature }: TokenBlock, index: number): InspectedBlock {
  return {
    index,
    id: index === 0 ? claims.jti! : delegatedBlockId(signature),
    ...(index === 0 ? { kid: claims.kid!, tenant_id: claims.tid ?? null } : {}),
    holder: claims.sub,
    scopes: claims.scp,
    issued_at: isoTime(claims.iat * 1000),
    expires_at: isoTime(claims.exp * 1000),
    limits: claims.lim ?? null,
    pop: claims.pop === true,
    name: claims.nam ?? null,
    description: claims.dsc ?? null,
  };
}

export function formatLimits(limits: TokenLimits): string {
  return Object.entries(limits)
    .map(([key, value]) => `${key}=${value}`)
    .join(', ');
}
