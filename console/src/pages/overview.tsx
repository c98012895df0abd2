/** The tenant overview: usage against each limit (API rate included) and the VM list, polled. */
import { ErrorNotice } from '../components/error-notice.js';
import { ListSection } from '../components/list-section.js';
import { useTranslate } from '../i18n/context.js';
import { readTenantAndVms, usageOf, type TenantAndVms, type Vm } from '../model.js';
import { usePolling } from '../poll.js';
import type { Session } from '../session.js';

interface Props {
  session: Session;
  onUnauthenticated: () => void;
}

export function Overview({ session, tenantId, onUnauthenticated }: Props & { tenantId: string }) {
  const t = useTranslate();
  const polled = usePolling(() => readTenantAndVms(session, tenantId), onUnauthenticated);
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

function UsageBars({ data }: { data: TenantAndVms }) {
  const t = useTranslate();
  const { tenant, rate } = data;
  const usage = usageOf(tenant);
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
    <ListSection
      id="vms-title"
      title={t('vms.title')}
      errors={[]}
      loading={false}
      empty={vms.length === 0 ? t('vms.empty') : undefined}
      columns={[t('vms.name'), t('vms.state'), t('vms.node'), t('vms.size')]}
    >
      {vms.map((vm) => (
        <tr key={vm.vm_id}>
          <th scope="row">{vm.name}</th>
          <td>{vm.state}</td>
          <td>{vm.node_id ?? t('vms.unplaced')}</td>
          <td>{t('vms.sizeValue', { vcpus: vm.vcpus, memory: vm.memory_mb, disk: vm.disk_gb })}</td>
        </tr>
      ))}
    </ListSection>
  );
}
