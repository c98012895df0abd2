/**
 * Who is signed in, for this tab only. The token is kept in sessionStorage, so a reload keeps it and
 * closing the tab forgets it; the holder key of a `pop` token only in memory, as a non-extractable
 * WebCrypto key (no storage can hold it without its bytes), so after a reload the key file is asked
 * for again. Sign-out forgets both.
 */
import { decodeBase64url, importHolderKey, keyMatches, type HolderKey } from './signing.js';

const TOKEN_ITEM = 'ppn-console-token';

/** What the console reads from a `pct1` token's blocks without verifying it: the server does that. */
export interface TokenFacts {
  /** The final holder's public key: the last block's `sub`. */
  holder: string;
  /** Whether any block asks for proof of possession. */
  pop: boolean;
  /** The tenant, from block 0; absent for a platform token. */
  tenantId: string | undefined;
}

export interface Session {
  token: string;
  facts: TokenFacts;
  /** The holder key, for a `pop` token. */
  key: HolderKey | undefined;
}

export type SignInFailure = 'token_malformed' | 'key_needed' | 'key_unreadable' | 'key_mismatch';

export class SignInError extends Error {
  constructor(readonly code: SignInFailure) {
    super(code);
    this.name = 'SignInError';
  }
}

export function readTokenFacts(token: string): TokenFacts {
  const parts = token.trim().split('.');
  if (parts[0] !== 'pct1' || parts.length < 3 || parts.length % 2 === 0) throw new SignInError('token_malformed');
  const blocks: Record<string, unknown>[] = [];
  for (let i = 1; i < parts.length; i += 2) {
    try {
      blocks.push(JSON.parse(new TextDecoder().decode(decodeBase64url(parts[i]!))) as Record<string, unknown>);
    } catch {
      throw new SignInError('token_malformed');
    }
  }
  const holder = blocks[blocks.length - 1]!.sub;
  if (typeof holder !== 'string') throw new SignInError('token_malformed');
  const tid = blocks[0]!.tid;
  return { holder, pop: blocks.some((block) => block.pop === true), tenantId: typeof tid === 'string' ? tid : undefined };
}

/** Checks the token's form and, for a `pop` token, that the key file holds its holder's key. */
export async function signIn(token: string, keyPem: string | undefined): Promise<Session> {
  const trimmed = token.trim();
  const facts = readTokenFacts(trimmed);
  let key: HolderKey | undefined;
  if (keyPem !== undefined && keyPem.trim() !== '') {
    try {
      key = await importHolderKey(keyPem);
    } catch {
      throw new SignInError('key_unreadable');
    }
    if (!(await keyMatches(key, facts.holder))) throw new SignInError('key_mismatch');
  } else if (facts.pop) {
    throw new SignInError('key_needed');
  }
  sessionStorage.setItem(TOKEN_ITEM, trimmed);
  return { token: trimmed, facts, key };
}

/** The token this tab signed in with, if any: with no key yet, for the sign-in page to ask for it. */
export function rememberedToken(): string | null {
  return sessionStorage.getItem(TOKEN_ITEM);
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_ITEM);
}
