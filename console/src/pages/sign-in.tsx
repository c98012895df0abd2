/** Sign-in: a token pasted or loaded from a file, and for a `pop` token its holder's key file. */
import { useState } from 'preact/hooks';
import { ApiError, callApi } from '../api.js';
import { useTranslate } from '../i18n/context.js';
import { rememberedToken, signIn, SignInError, type Session } from '../session.js';

interface Props {
  /** Why the last session ended, when the server ended it. */
  notice: string | null;
  onSignedIn: (session: Session) => void;
}

async function readFile(input: HTMLInputElement): Promise<string | undefined> {
  const file = input.files?.[0];
  return file ? await file.text() : undefined;
}

export function SignIn({ notice, onSignedIn }: Props) {
  const t = useTranslate();
  const remembered = rememberedToken();
  const [token, setToken] = useState(remembered ?? '');
  const [keyPem, setKeyPem] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await signIn(token, keyPem);
      // The server is the judge of the token: whoami fails for a revoked, expired or unsigned one.
      await callApi(session, 'GET', '/v1/whoami');
      setKeyPem(undefined);
      onSignedIn(session);
    } catch (caught) {
      if (caught instanceof SignInError) setError(t(`signIn.error.${caught.code}`));
      else if (caught instanceof ApiError) setError(t('signIn.error.rejected', { detail: caught.message }));
      else setError(t('error.network'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="sign-in-title" class="card narrow">
      <h1 id="sign-in-title">{t('signIn.title')}</h1>
      <p>{t('signIn.intro')}</p>
      {notice && (
        <p role="alert" class="notice">
          {notice}
        </p>
      )}
      {remembered && <p class="notice">{t('signIn.keyAgain')}</p>}
      <form onSubmit={(event) => void submit(event)}>
        <label for="token">{t('signIn.token')}</label>
        <textarea id="token" name="token" rows={4} spellcheck={false} autocomplete="off" value={token} onInput={(event) => setToken(event.currentTarget.value)} />
        <label for="token-file">{t('signIn.tokenFile')}</label>
        <input id="token-file" type="file" onChange={(event) => void readFile(event.currentTarget).then((text) => text !== undefined && setToken(text.trim()))} />
        <label for="key-file">{t('signIn.keyFile')}</label>
        <input id="key-file" type="file" accept=".key,.pem,application/x-pem-file" onChange={(event) => void readFile(event.currentTarget).then(setKeyPem)} />
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || token.trim() === ''}>
          {t('signIn.submit')}
        </button>
      </form>
    </section>
  );
}
