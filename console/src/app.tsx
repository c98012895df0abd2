/** The console's shell: language, the signed-in session, and which page shows. */
import { useEffect, useState } from 'preact/hooks';
import { LANGUAGES, LANGUAGE_NAMES, preferredLanguage, translate, type Language } from './i18n/catalogue.js';
import { LanguageContext } from './i18n/context.js';
import { Overview } from './pages/overview.js';
import { SignIn } from './pages/sign-in.js';
import { signOut, type Session } from './session.js';

const LANGUAGE_ITEM = 'ppn-console-language';

function initialLanguage(): Language {
  const chosen = localStorage.getItem(LANGUAGE_ITEM);
  return LANGUAGES.find((language) => language === chosen) ?? preferredLanguage(navigator.languages);
}

export function App() {
  const [language, setLanguage] = useState<Language>(initialLanguage);
  const [session, setSession] = useState<Session | null>(null);
  const [signedOutBecause, setSignedOutBecause] = useState<string | null>(null);
  const t = (key: Parameters<typeof translate>[1]) => translate(language, key);

  // The browser tests read this mark as the time to first render (docs/benchmarks.md).
  useEffect(() => {
    performance.mark('ppn-console-rendered');
  }, []);

  useEffect(() => {
    document.documentElement.lang = language;
    document.title = translate(language, 'app.title');
  }, [language]);

  const chooseLanguage = (next: Language) => {
    localStorage.setItem(LANGUAGE_ITEM, next);
    setLanguage(next);
  };
  const leave = (reason: string | null) => {
    signOut();
    setSession(null);
    setSignedOutBecause(reason);
  };

  return (
    <LanguageContext.Provider value={language}>
      <a class="skip" href="#main">
        {t('app.skip')}
      </a>
      <header class="bar">
        <span class="brand">{t('app.title')}</span>
        {session && (
          <nav aria-label={t('nav.label')}>
            <a href="#/" aria-current="page">
              {t('nav.overview')}
            </a>
          </nav>
        )}
        <label class="language">
          {t('language.label')}{' '}
          <select value={language} onChange={(event) => chooseLanguage(event.currentTarget.value as Language)}>
            {LANGUAGES.map((code) => (
              <option key={code} value={code} lang={code}>
                {LANGUAGE_NAMES[code]}
              </option>
            ))}
          </select>
        </label>
        {session && (
          <button type="button" onClick={() => leave(null)}>
            {t('nav.signOut')}
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {session ? (
          <Overview session={session} onUnauthenticated={() => leave(translate(language, 'error.unauthenticated'))} />
        ) : (
          <SignIn notice={signedOutBecause} onSignedIn={setSession} />
        )}
      </main>
    </LanguageContext.Provider>
  );
}
