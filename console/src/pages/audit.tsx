/**
 * The audit page: the tenant's ledger entries, newest first, filterable; each marked verified only
 * once its inclusion proof and the checkpoint's signature check out here, in the browser, against
 * the ledger key pinned on first use (src: ../audit.ts). A changed key is a loud warning, and so is
 * a checkpoint that does not extend the one this browser trusted before (a rewritten history).
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import {
  forgetPinnedLedgerKey,
  forgetSeenCheckpoint,
  readAudit,
  readOlderAudit,
  SHOWN_ENTRIES,
  type AuditFilters,
  type AuditView,
  type EntryStatus,
  type History,
} from '../audit.js';
import { ErrorNotice } from '../components/error-notice.js';
import { ListSection } from '../components/list-section.js';
import { useTranslate } from '../i18n/context.js';
import type { Session } from '../session.js';
// The server's own list (src/ledger/entry.ts imports nothing), so the filter offers every type it writes.
import { EVENT_TYPES } from '../../../src/ledger/entry.js';

interface Props {
  session: Session;
  onUnauthenticated: () => void;
}

/** A `datetime-local` value as RFC 3339 UTC, or undefined when empty. */
function toRfc3339(local: string): string | undefined {
  return local === '' ? undefined : new Date(local).toISOString();
}

export function AuditPage({ session, onUnauthenticated }: Props) {
  const t = useTranslate();
  const [form, setForm] = useState({ event_type: '', vm_id: '', node_id: '', token_id: '', since: '', until: '' });
  const [filters, setFilters] = useState<AuditFilters>({});
  const [view, setView] = useState<AuditView | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loads, setLoads] = useState(0);
  const [busy, setBusy] = useState(false);

  const failed = (caught: unknown) => {
    if (caught instanceof ApiError && caught.problem.status === 401) onUnauthenticated();
    else setError(caught);
  };

  useEffect(() => {
    let stopped = false;
    setBusy(true);
    readAudit(session, filters)
      .then((next) => !stopped && (setView(next), setError(undefined)))
      .catch((caught: unknown) => !stopped && failed(caught))
      .finally(() => !stopped && setBusy(false));
    return () => {
      stopped = true;
    };
  }, [filters, loads]);

  /** The next older entries, below those shown, checked against the same checkpoint. */
  const showOlder = () => {
    if (view === undefined) return;
    setBusy(true);
    readOlderAudit(session, view, filters)
      .then((next) => (setView(next), setError(undefined)))
      .catch(failed)
      .finally(() => setBusy(false));
  };

  const apply = (event: Event) => {
    event.preventDefault();
    setFilters({ ...form, since: toRfc3339(form.since), until: toRfc3339(form.until) });
  };
  const field = (name: keyof typeof form) => ({
    id: `audit-${name}`,
    value: form[name],
    onInput: (event: { currentTarget: HTMLInputElement }) => setForm({ ...form, [name]: event.currentTarget.value }),
  });

  return (
    <>
      <h1>{t('audit.title')}</h1>
      <p>{t('audit.intro', { count: SHOWN_ENTRIES })}</p>
      {view?.trust.state === 'changed' && (
        <div role="alert" class="danger">
          <h2>{t('audit.keyChanged.title')}</h2>
          <p>{t('audit.keyChanged.body')}</p>
          <p>
            {t('audit.keyChanged.pinned')} <code>{view.trust.pinned}</code>
          </p>
          <p>
            {t('audit.keyChanged.served')} <code>{view.trust.served}</code>
          </p>
          <button
            type="button"
            onClick={() => {
              forgetPinnedLedgerKey();
              setLoads((n) => n + 1);
            }}
          >
            {t('audit.keyChanged.trust')}
          </button>
        </div>
      )}
      {view !== undefined && view.trust.state !== 'changed' && (
        <p class="quiet">
          {t(view.trust.state === 'pinned-now' ? 'audit.keyPinnedNow' : 'audit.keyPinned')} <code>{view.trust.key.text}</code>
        </p>
      )}
      {view?.history && view.checkpoint && (
        <HistoryNotice
          history={view.history}
          size={view.checkpoint.size}
          onTrust={() => {
            forgetSeenCheckpoint();
            setLoads((n) => n + 1);
          }}
        />
      )}
      {view?.checkpointFailure && (
        <p role="alert" class="error">
          {t('audit.checkpointFailed', { reason: view.checkpointFailure })}
        </p>
      )}
      <form class="card filters" onSubmit={apply} aria-label={t('audit.filters')}>
        <div class="field">
          <label for="audit-event_type">{t('audit.eventType')}</label>
          <select id="audit-event_type" value={form.event_type} onChange={(event) => setForm({ ...form, event_type: event.currentTarget.value })}>
            <option value="">{t('audit.any')}</option>
            {EVENT_TYPES.map((type) => (
              <option key={type} value={type}>
                {type}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="audit-vm_id">{t('audit.vm')}</label>
          <input {...field('vm_id')} />
        </div>
        <div class="field">
          <label for="audit-node_id">{t('audit.node')}</label>
          <input {...field('node_id')} />
        </div>
        <div class="field">
          <label for="audit-token_id">{t('audit.token')}</label>
          <input {...field('token_id')} />
        </div>
        <div class="field">
          <label for="audit-since">{t('audit.since')}</label>
          <input type="datetime-local" {...field('since')} />
        </div>
        <div class="field">
          <label for="audit-until">{t('audit.until')}</label>
          <input type="datetime-local" {...field('until')} />
        </div>
        <button type="submit">{t('audit.apply')}</button>
        <button type="button" onClick={() => setLoads((n) => n + 1)}>
          {t('audit.refresh')}
        </button>
      </form>
      {error !== undefined && <ErrorNotice error={error} />}
      {busy && <p aria-busy="true">{t('audit.checking')}</p>}
      {view !== undefined && (
        <ListSection
          id="audit-list-title"
          title={t('audit.entries')}
          errors={[]}
          loading={false}
          empty={view.entries.length === 0 ? t('audit.empty') : undefined}
          before={view.checkpoint && <p class="quiet">{t('audit.checkpoint', { size: view.checkpoint.size, origin: view.checkpoint.origin })}</p>}
          columns={[t('audit.index'), t('audit.status'), t('audit.time'), t('audit.eventType'), t('audit.subjects'), t('audit.actor')]}
        >
          {view.entries.map((entry) => (
            <tr key={entry.index} data-index={entry.index} data-status={entry.status}>
              <th scope="row">{entry.index}</th>
              {/* The verification comes first, where a narrow screen still shows it without scrolling. */}
              <td>
                <StatusBadge status={entry.status} />
              </td>
              <td>{entry.ts}</td>
              <td>{entry.eventType}</td>
              <td>{entry.subjects}</td>
              <td>{entry.actor}</td>
            </tr>
          ))}
        </ListSection>
      )}
      {view !== undefined && view.older !== null && (
        <button type="button" onClick={showOlder} disabled={busy}>
          {t('audit.older', { count: SHOWN_ENTRIES })}
        </button>
      )}
    </>
  );
}

/** The checkpoint shown against the one this browser trusted before: quiet when it extends it, loud when it does not. */
function HistoryNotice({ history, size, onTrust }: { history: History; size: number; onTrust: () => void }) {
  const t = useTranslate();
  if (history.state === 'first') return <p class="quiet">{t('audit.history.first', { size })}</p>;
  const seen = { seenSize: history.seen.size, seenAt: history.seen.seenAt, size };
  if (history.state === 'extends') return <p class="quiet">{t('audit.history.extends', seen)}</p>;
  return (
    <div role="alert" class="danger">
      <h2>{t('audit.history.rewritten.title')}</h2>
      <p>{t(`audit.history.rewritten.${history.why}`, seen)}</p>
      <p>{t('audit.history.rewritten.body')}</p>
      <button type="button" onClick={onTrust}>
        {t('audit.history.rewritten.trust')}
      </button>
    </div>
  );
}

function StatusBadge({ status }: { status: EntryStatus }) {
  const t = useTranslate();
  return <span class={`badge badge-${status}`}>{t(`audit.status.${status}`)}</span>;
}
