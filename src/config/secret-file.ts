/** Files only their owner may read (keys, tokens, a client's saved remotes), whatever the umask. */
import { chmodSync, writeFileSync } from 'node:fs';

/** Writes a secret: created 0600, and chmod'ed in case it existed with looser bits. */
export function writeSecretFile(path: string, contents: string): void {
  writeFileSync(path, contents, { mode: 0o600 });
  chmodSync(path, 0o600);
}
