/** The language the console speaks now, for every component below the app. */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { translate, type Language, type MessageKey } from './catalogue.js';

export type Translate = (key: MessageKey, values?: Record<string, string | number>) => string;

export const LanguageContext = createContext<Language>('en');

export function useTranslate(): Translate {
  const language = useContext(LanguageContext);
  return (key, values) => translate(language, key, values);
}
