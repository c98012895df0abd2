/**
 * The console speaks English and Spanish from one catalogue per language (console/src/i18n/). A key
 * missing from either, a key the code uses that neither has, or a placeholder one language drops,
 * fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LANGUAGES, preferredLanguage, translate } from '../../console/src/i18n/catalogue.js';

const catalogues = Object.fromEntries(
  LANGUAGES.map((language) => [language, JSON.parse(readFileSync(`console/src/i18n/${language}.json`, 'utf8')) as Record<string, string>]),
);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : /\.tsx?$/.test(entry.name) ? [join(dir, entry.name)] : [],
  );
}

/** Every key the code asks for: `t('key'` and `translate(language, 'key'`, and for `t(\`prefix.${…}\`` the prefix. */
function keysUsed(): { exact: string[]; prefixes: string[] } {
  const text = sourceFiles('console/src')
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
  return {
    exact: [...text.matchAll(/\b(?:t|translate\(\s*\w+\s*,)\(?\s*'([^']+)'/g)].map((m) => m[1]!),
    prefixes: [...text.matchAll(/\bt\(\s*`([^`$]+)\$\{/g)].map((m) => m[1]!),
  };
}

const placeholders = (message: string) => [...message.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('the message catalogues', () => {
  it.each(LANGUAGES)('%s has every key the other catalogues have', (language) => {
    const all = new Set(Object.values(catalogues).flatMap((catalogue) => Object.keys(catalogue)));
    expect([...all].filter((key) => !(key in catalogues[language]!))).toEqual([]);
  });

  it('every key the code uses is in every catalogue', () => {
    const { exact, prefixes } = keysUsed();
    expect(exact.length).toBeGreaterThan(20);
    for (const language of LANGUAGES) {
      expect(
        exact.filter((key) => !(key in catalogues[language]!)),
        language,
      ).toEqual([]);
      for (const prefix of prefixes)
        expect(
          Object.keys(catalogues[language]!).some((key) => key.startsWith(prefix)),
          `${language} ${prefix}`,
        ).toBe(true);
    }
  });

  it('a message has the same placeholders in every language', () => {
    for (const [key, message] of Object.entries(catalogues.en!)) {
      for (const language of LANGUAGES) expect(placeholders(catalogues[language]![key] ?? ''), `${language} ${key}`).toEqual(placeholders(message));
    }
  });

  it('no message is empty, and the Spanish one is not the English one left untranslated', () => {
    const same = Object.keys(catalogues.en!).filter((key) => catalogues.es![key] === catalogues.en![key] && !/^[{}\w\s,.:()#→-]*$/.test(catalogues.en![key]!));
    expect(Object.values(catalogues).flatMap((c) => Object.entries(c).filter(([, m]) => m.trim() === ''))).toEqual([]);
    expect(same).toEqual([]);
  });
});

describe('choosing the language', () => {
  it.each([
    [['es-ES', 'en'], 'es'],
    [['es-419'], 'es'],
    [['fr-FR', 'es'], 'es'],
    [['en-GB', 'es'], 'en'],
    [['de', 'fr'], 'en'],
    [[], 'en'],
  ])('the browser asking %j gets %s', (browser, expected) => {
    expect(preferredLanguage(browser)).toBe(expected);
  });

  it('fills in placeholders', () => {
    expect(translate('es', 'overview.usedOf', { used: 3, limit: 10 })).toBe('3 de 10');
    expect(translate('en', 'error.rate_limited', { seconds: 12 })).toBe('Too many requests: try again in 12 s.');
  });
});
