/**
 * One message catalogue per language (en.json, es.json); every string the console shows comes from
 * them through `translate`. test/console/i18n.test.ts fails when a key is missing from either, or
 * when the code uses a key neither has.
 */
import en from './en.json' with { type: 'json' };
import es from './es.json' with { type: 'json' };

export const LANGUAGES = ['en', 'es'] as const;
export type Language = (typeof LANGUAGES)[number];
export type MessageKey = keyof typeof en;

const CATALOGUES: Record<Language, Record<string, string>> = { en, es };

/** Names each language in itself, for the switcher. */
export const LANGUAGE_NAMES: Record<Language, string> = { en: 'English', es: 'Español' };

/** The first of the browser's languages the console speaks, else English. */
export function preferredLanguage(browserLanguages: readonly string[]): Language {
  for (const tag of browserLanguages) {
    const primary = tag.toLowerCase().split('-')[0];
    const found = LANGUAGES.find((language) => language === primary);
    if (found) return found;
  }
  return 'en';
}

/** The message `key` in `language`, with each `{name}` replaced by `values[name]`. */
export function translate(language: Language, key: MessageKey, values: Record<string, string | number> = {}): string {
  const template = CATALOGUES[language][key] ?? en[key];
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));
}
