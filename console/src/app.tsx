/** The console's shell: language, the signed-in session, and which page shows. */
import { useEffect, useState } from 'preact/hooks';
import { LANGUAGES, LANGUAGE_NAMES, preferredLanguage, translate, type Language } from './i18n/catalogue.js';
import { LanguageContext } from './i18n/context.js';
import { AuditPage } from './pages/audit.js';
import { KeysPage } from './pages/keys.js';
import { NodesPage } from './pages/nodes.js';
import { Overview } from './pages/overview.js';
import { SessionsPage } from './pages/sessions.js';
import { SignIn } from './pages/sign-in.js';
import { TenantsPage } from './pages/tenants.js';
import { TokensPage } from './pages/tokens.js';
import { VmsPage } from './pages/vms.js';
import { signOut, type Session } from './session.js';

const LANGUAGE_ITEM = 'ppn-console-language';

/** The pages, by the location hash that shows them (`#/vms`): a tenant's token sees TENANT_PAGES, a platform admin's PLATFORM_PAGES. */
const TENANT_PAGES = ['overview', 'vms', 'tokens', 'sessions', 'nodes', 'audit'] as const;
const PLATFORM_PAGES = ['tenants', 'tokens', 'keys', 'nodes', 'audit'] as const;
const PAGES = [...TENANT_PAGES, ...PLATFORM_PAGES] as const;
type PageName = (typeof PAGES)[number];

function pageFromHash(): PageName {
  const name = location.hash.replace(/^#\/?/, '');
  return PAGES.find((page) => page === name) ?? 'overview';
}

function initialLanguage(): Language {
  const chosen = localStorage.getItem(LANGUAGE_ITEM);
  return LANGUAGES.find((language) => language === chosen) ?? preferredLanguage(navigator.languages);
}

export function App() {
  const [language, setLanguage] = useState<Language>(initialLanguage);
  const [session, setSession] = useState<Session | null>(null);
  const [signedOutBecause, setSignedOutBecause] = useState<string | null>(null);
  const [page, setPage] = useState<PageName>(pageFromHash);
  const t = (key: Parameters<typeof translate>[1]) => translate(language, key);

  // The browser tests read this mark as the time to first render (docs/benchmarks.md).
  useEffect(() => {
    performance.mark('ppn-console-rendered');
  }, []);

  useEffect(() => {
    const follow = () => setPage(pageFromHash());
    addEventListener('hashchange', follow);
    return () => removeEventListener('hashchange', follow);
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
            {(session.facts.tenantId === undefined ? PLATFORM_PAGES : TENANT_PAGES).map((name) => (
              <a key={name} href={`#/${name}`} aria-current={page === name ? 'page' : undefined}>
                {t(`nav.${name}`)}
              </a>
            ))}
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
          <Page name={page} session={session} onUnauthenticated={() => leave(translate(language, 'error.unauthenticated'))} />
        ) : (
          <SignIn notice={signedOutBecause} onSignedIn={setSession} />
        )}
      </main>
    </LanguageContext.Provider>
  );
}

function Page({ name, session, onUnauthenticated }: { name: PageName; session: Session; onUnauthenticated: () => void }) {
  const tenantId = session.facts.tenantId;
  if (name === 'audit') return <AuditPage session={session} onUnauthenticated={onUnauthenticated} />;
  if (name === 'nodes') return <NodesPage session={session} onUnauthenticated={onUnauthenticated} />;
  if (name === 'keys' && tenantId === undefined) return <KeysPage session={session} onUnauthenticated={onUnauthenticated} />;
  if (name === 'tokens') return <TokensPage session={session} tenantId={tenantId} onUnauthenticated={onUnauthenticated} />;
  if (tenantId === undefined) return <TenantsPage session={session} onUnauthenticated={onUnauthenticated} />;
  if (name === 'vms') return <VmsPage session={session} tenantId={tenantId} onUnauthenticated={onUnauthenticated} />;
  if (name === 'sessions') return <SessionsPage session={session} onUnauthenticated={onUnauthenticated} />;
  return <Overview session={session} tenantId={tenantId} onUnauthenticated={onUnauthenticated} />;
}
