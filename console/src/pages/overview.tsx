/** The tenant overview: usage against each limit (API rate included) and the VM list, polled. */
import { ApiError, callApi, readRateLimit } from '../api.js';
import { useTranslate, type Translate } from '../i18n/context.js';
import { usePolling } from '../poll.js';
import type { Session } from '../session.js';

interface Tenant {
  tenant_id: string;
  display_name: string;
  state: string;
  max_vms: number;
  storage_quota_gb: number;
  api_rate_limit_rpm: number;
  max_vcpus: number | null;
  max_memory_mb: number | null;
  usage?: { vms: number; storage_gb: number; vcpus: number; memory_mb: number };
}

interface Vm {
  vm_id: string;
  name: string;
  state: string;
  node_id: string | null;
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
}

interface OverviewData {
  tenant: Tenant;
  rate: { used: number; limit: number } | undefined;
  vms: Vm[];
}

interface Props {
  session: Session;
  onUnauthenticated: () => void;
}

export function Overview({ session, onUnauthenticated }: Props) {
  const t = useTranslate();
  const tenantId = session.facts.tenantId;
  if (tenantId === undefined) return <p>{t('overview.platform')}</p>;
  return <TenantOverview session={session} tenantId={tenantId} onUnauthenticated={onUnauthenticated} />;
}

function TenantOverview({ session, tenantId, onUnauthenticated }: Props & { tenantId: string }) {
  const t = useTranslate();
  const polled = usePolling(async (): Promise<OverviewData> => {
    const tenant = await callApi<Tenant>(session, 'GET', `/v1/tenants/${encodeURIComponent(tenantId)}`);
    const vms = await callApi<{ items: Vm[] }>(session, 'GET', '/v1/vms?limit=1000');
    return { tenant: tenant.body, rate: readRateLimit(vms.headers), vms: vms.body.items };
  }, onUnauthenticated);
  const data = polled.value;

  return (
    <>
      <h1>{t('overview.title', { tenant: data?.tenant.display_name ?? tenantId })}</h1>
      {polled.error !== undefined && <ErrorNotice error={polled.error} />}
      {data === undefined ? (
        <p aria-busy="true">{t('common.loading')}</p>
      ) : (
        <>
          <p>{t('overview.state', { state: data.tenant.state })}</p>
          <UsageBars data={data} />
          <VmList vms={data.vms} />
          {polled.at && <p class="quiet">{t('common.updated', { time: polled.at.toLocaleTimeString() })}</p>}
        </>
      )}
    </>
  );
}

function UsageBars({ data }: { data: OverviewData }) {
  const t = useTranslate();
  const { tenant, rate } = data;
  const usage = tenant.usage ?? { vms: 0, storage_gb: 0, vcpus: 0, memory_mb: 0 };
  const rows: [string, string, number, number | null][] = [
    ['vms', t('overview.limit.vms'), usage.vms, tenant.max_vms],
    ['storage', t('overview.limit.storage'), usage.storage_gb, tenant.storage_quota_gb],
    ['vcpus', t('overview.limit.vcpus'), usage.vcpus, tenant.max_vcpus],
    ['memory', t('overview.limit.memory'), usage.memory_mb, tenant.max_memory_mb],
    ['rate', t('overview.limit.rate'), rate?.used ?? 0, rate?.limit ?? tenant.api_rate_limit_rpm],
  ];
  return (
    <section aria-labelledby="usage-title" class="card">
      <h2 id="usage-title">{t('overview.usage')}</h2>
      <dl class="usage">
        {rows.map(([id, label, used, limit]) => (
          <div key={id} class="usage-row" data-limit={id}>
            <dt id={`usage-${id}`}>{label}</dt>
            <dd>
              {limit !== null && <meter aria-labelledby={`usage-${id}`} min={0} max={Math.max(limit, 1)} high={limit * 0.8} optimum={0} value={Math.min(used, limit)} />}
              <span class="figures">{limit === null ? t('overview.unlimited', { used }) : t('overview.usedOf', { used, limit })}</span>
            </dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

function VmList({ vms }: { vms: Vm[] }) {
  const t = useTranslate();
  return (
    <section aria-labelledby="vms-title" class="card">
      <h2 id="vms-title">{t('vms.title')}</h2>
      {vms.length === 0 ? (
        <p>{t('vms.empty')}</p>
      ) : (
        <div class="table-scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">{t('vms.name')}</th>
                <th scope="col">{t('vms.state')}</th>
                <th scope="col">{t('vms.node')}</th>
                <th scope="col">{t('vms.size')}</th>
              </tr>
            </thead>
            <tbody>
              {vms.map((vm) => (
                <tr key={vm.vm_id}>
                  <th scope="row">{vm.name}</th>
                  <td>{vm.state}</td>
                  <td>{vm.node_id ?? t('vms.unplaced')}</td>
                  <td>{t('vms.sizeValue', { vcpus: vm.vcpus, memory: vm.memory_mb, disk: vm.disk_gb })}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function ErrorNotice({ error }: { error: unknown }) {
  const t = useTranslate();
  return (
    <p role="alert" class="error">
      {describeError(t, error)}
    </p>
  );
}

function describeError(t: Translate, error: unknown): string {
  if (!(error instanceof ApiError)) return t('error.network');
  if (error.problem.code === 'rate_limited') return t('error.rate_limited', { seconds: error.retryAfter ?? 60 });
  return t('error.generic', { status: error.problem.status, detail: error.message });
}
