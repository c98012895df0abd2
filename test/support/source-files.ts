/** Every file under a folder of the repository, for the meta tests that read the tree. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The TypeScript files under `dir`. */
export function sourceFiles(dir: string): string[] {
  return filesUnder(dir).filter((path) => path.endsWith('.ts'));
}
