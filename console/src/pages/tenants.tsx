/**
 * The platform operator's tenants page: every live tenant with its usage against its limits;
 * create one; change its limits; suspend or resume it; delete it (with its VMs, nodes and tokens
 * when asked to).
 */
import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { callApi } from '../api.js';
import { usePolledList } from '../changes.js';
import { ErrorNotice } from '../components/error-notice.js';
import { ListSection } from '../components/list-section.js';
import { useTranslate } from '../i18n/context.js';
import { usageOf, type Tenant } from '../model.js';
import type { Session } from '../session.js';

interface Props {
  session: Session;
  onUnauthenticated: () => void;
}

interface Limits {
  max_vms: number;
  storage_quota_gb: number;
  api_rate_limit_rpm: number;
}

export function TenantsPage({ session, onUnauthenticated }: Props) {
  const t = useTranslate();
  const { polled, changes } = usePolledList<Tenant>(session, '/v1/tenants?limit=1000', onUnauthenticated);
  const [editing, setEditing] = useState<string | null>(null);
  const editedTenant = polled.value?.find((tenant) => tenant.tenant_id === editing);

  const change = (tenant: Tenant, method: 'PATCH' | 'DELETE', body?: unknown, query = '') =>
    changes.run(() => callApi(session, method, `/v1/tenants/${encodeURIComponent(tenant.tenant_id)}${query}`, body));

  return (
    <>
      <h1>{t('tenants.title')}</h1>
      <CreateTenant session={session} onCreated={changes.reload} />
      <ListSection
        id="tenant-list-title"
        title={t('tenants.list')}
        errors={[polled.error, changes.error]}
        loading={polled.value === undefined}
        columns={[t('tenants.id'), t('tenants.name'), t('tenants.state'), t('overview.limit.vms'), t('overview.limit.storage'), t('tenants.rate'), t('vms.actions')]}
      >
        {(polled.value ?? []).map((tenant) => {
          const usage = usageOf(tenant);
          const suspended = tenant.state === 'suspended';
          return (
            <tr key={tenant.tenant_id}>
              <th scope="row">{tenant.tenant_id}</th>
              <td>{tenant.display_name}</td>
              <td>{tenant.state}</td>
              <td>{t('overview.usedOf', { used: usage.vms, limit: tenant.max_vms })}</td>
              <td>{t('overview.usedOf', { used: usage.storage_gb, limit: tenant.storage_quota_gb })}</td>
              <td>{tenant.api_rate_limit_rpm}</td>
              <td class="actions">
                <button type="button" aria-label={t('tenants.editNamed', { id: tenant.tenant_id })} onClick={() => setEditing(tenant.tenant_id)}>
                  {t('tenants.edit')}
                </button>
                <button
                  type="button"
                  aria-label={t(suspended ? 'tenants.resumeNamed' : 'tenants.suspendNamed', { id: tenant.tenant_id })}
                  onClick={() => void change(tenant, 'PATCH', { state: suspended ? 'active' : 'suspended' })}
                >
                  {t(suspended ? 'tenants.resume' : 'tenants.suspend')}
                </button>
                <button
                  type="button"
                  aria-label={t('tenants.deleteNamed', { id: tenant.tenant_id })}
                  onClick={() => confirm(t('tenants.deleteConfirm', { id: tenant.tenant_id })) && void change(tenant, 'DELETE', undefined, '?cascade=true')}
                >
                  {t('vms.delete')}
                </button>
              </td>
            </tr>
          );
        })}
      </ListSection>
      {editedTenant && (
        <EditLimits
          tenant={editedTenant}
          onSave={(limits) => void change(editedTenant, 'PATCH', limits).then((done) => done && setEditing(null))}
          onCancel={() => setEditing(null)}
        />
      )}
    </>
  );
}

function LimitFields({ limits, onChange, prefix }: { limits: Limits; onChange: (limits: Limits) => void; prefix: string }) {
  const t = useTranslate();
  const fields: [keyof Limits, string, number][] = [
    ['max_vms', t('tenants.maxVms'), 0],
    ['storage_quota_gb', t('tenants.storage'), 0],
    ['api_rate_limit_rpm', t('tenants.rate'), 1],
  ];
  return (
    <>
      {fields.map(([name, label, min]) => (
        <Fragment key={name}>
          <label for={`${prefix}-${name}`}>{label}</label>
          <input
            id={`${prefix}-${name}`}
            type="number"
            min={min}
            value={limits[name]}
            onInput={(event) => onChange({ ...limits, [name]: Number(event.currentTarget.value) })}
          />
        </Fragment>
      ))}
    </>
  );
}

function EditLimits({ tenant, onSave, onCancel }: { tenant: Tenant; onSave: (limits: Limits) => void; onCancel: () => void }) {
  const t = useTranslate();
  const [limits, setLimits] = useState<Limits>({ max_vms: tenant.max_vms, storage_quota_gb: tenant.storage_quota_gb, api_rate_limit_rpm: tenant.api_rate_limit_rpm });
  return (
    <form
      class="grid"
      aria-labelledby="tenant-edit-title"
      onSubmit={(event) => {
        event.preventDefault();
        onSave(limits);
      }}
    >
      <h3 id="tenant-edit-title">{t('tenants.editTitle', { id: tenant.tenant_id })}</h3>
      <LimitFields limits={limits} onChange={setLimits} prefix="edit" />
      <button type="submit">{t('tenants.save')}</button>
      <button type="button" onClick={onCancel}>
        {t('tenants.cancel')}
      </button>
    </form>
  );
}

function CreateTenant({ session, onCreated }: { session: Session; onCreated: () => void }) {
  const t = useTranslate();
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const [limits, setLimits] = useState<Limits>({ max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 });
  const [error, setError] = useState<unknown>(undefined);
  const [created, setCreated] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setCreated(null);
    try {
      await callApi(session, 'POST', '/v1/tenants', { tenant_id: id.trim(), display_name: name.trim(), ...limits });
      setCreated(t('tenants.created', { id: id.trim() }));
      setId('');
      setName('');
      onCreated();
    } catch (caught) {
      setError(caught);
    }
  };

  return (
    <section class="card" aria-labelledby="tenant-create-title">
      <h2 id="tenant-create-title">{t('tenants.create')}</h2>
      <form class="grid" onSubmit={(event) => void submit(event)}>
        <label for="tenant-id">{t('tenants.id')}</label>
        <input id="tenant-id" required value={id} onInput={(event) => setId(event.currentTarget.value)} />
        <label for="tenant-name">{t('tenants.name')}</label>
        <input id="tenant-name" required value={name} onInput={(event) => setName(event.currentTarget.value)} />
        <LimitFields limits={limits} onChange={setLimits} prefix="create" />
        {error !== undefined && <ErrorNotice error={error} />}
        <p role="status">{created}</p>
        <button type="submit">{t('tenants.createSubmit')}</button>
      </form>
    </section>
  );
}
