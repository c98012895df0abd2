/**
 * The VMs page: the list with state and node, create (with the quota beside the form, before
 * submitting), start, stop and delete. A change the node has yet to carry out shows as in progress
 * until the state is reached; the list is polled.
 */
import { useState } from 'preact/hooks';
import { callApi } from '../api.js';
import { useListChanges } from '../changes.js';
import { ErrorNotice } from '../components/error-notice.js';
import { ListSection } from '../components/list-section.js';
import { useTranslate } from '../i18n/context.js';
import { readTenantAndVms, usageOf, type Tenant, type Vm } from '../model.js';
import { usePolling } from '../poll.js';
import type { Session } from '../session.js';

interface Props {
  session: Session;
  tenantId: string;
  onUnauthenticated: () => void;
}

type Action = 'start' | 'stop' | 'delete';

/** The console text from its upload: base64 of the last bytes of the serial console, shown as UTF-8 (bad bytes as U+FFFD). */
function consoleText(data: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
}

/** The state a VM is on its way to, or null when it is there (or placed nowhere to get there). */
export function pendingChange(vm: Vm): string | null {
  if (vm.desired_state === 'deleted') return 'deleted';
  if (vm.state === 'pending' || vm.state === 'failed') return null;
  return vm.desired_state !== vm.state ? vm.desired_state : null;
}

export function VmsPage({ session, tenantId, onUnauthenticated }: Props) {
  const t = useTranslate();
  const changes = useListChanges();
  const polled = usePolling(() => readTenantAndVms(session, tenantId), onUnauthenticated, undefined, changes.refresh);
  const [notice, setNotice] = useState<string | null>(null);

  const [watching, setWatching] = useState<Vm | null>(null);

  const act = async (vm: Vm, action: Action) => {
    const path = `/v1/vms/${encodeURIComponent(vm.vm_id)}`;
    const done = await changes.run(() => (action === 'delete' ? callApi(session, 'DELETE', path) : callApi(session, 'POST', `${path}/${action}`)));
    if (done) setNotice(t(`vms.done.${action}`, { name: vm.name }));
  };

  const data = polled.value;
  return (
    <>
      <h1>{t('vms.title')}</h1>
      {polled.error !== undefined && <ErrorNotice error={polled.error} />}
      {data === undefined ? (
        <p aria-busy="true">{t('common.loading')}</p>
      ) : (
        <>
          <CreateVm session={session} tenant={data.tenant} onCreated={changes.reload} />
          <ListSection
            id="vm-list-title"
            title={t('vms.list')}
            errors={[changes.error]}
            loading={false}
            empty={data.vms.length === 0 ? t('vms.empty') : undefined}
            before={
              <p role="status" class="quiet">
                {notice}
              </p>
            }
            columns={[t('vms.name'), t('vms.state'), t('vms.node'), t('vms.size'), t('vms.actions')]}
          >
            {data.vms.map((vm) => (
              <VmRow key={vm.vm_id} vm={vm} onAction={(action) => void act(vm, action)} onConsole={() => setWatching(vm)} />
            ))}
          </ListSection>
          {watching && <ConsoleLog key={watching.vm_id} session={session} vm={watching} onUnauthenticated={onUnauthenticated} onClose={() => setWatching(null)} />}
        </>
      )}
    </>
  );
}

function VmRow({ vm, onAction, onConsole }: { vm: Vm; onAction: (action: Action) => void; onConsole: () => void }) {
  const t = useTranslate();
  const change = pendingChange(vm);
  const deleting = vm.desired_state === 'deleted';
  return (
    <tr>
      <th scope="row">{vm.name}</th>
      <td>
        {vm.state}
        {change !== null && (
          <span class="progress">
            {' '}
            <progress aria-label={t('vms.inProgress', { name: vm.name, state: change })} />
            {t('vms.goingTo', { state: change })}
          </span>
        )}
        {vm.reason !== null && <span class="quiet"> ({vm.reason})</span>}
      </td>
      <td>{vm.node_id ?? t('vms.unplaced')}</td>
      <td>{t('vms.sizeValue', { vcpus: vm.vcpus, memory: vm.memory_mb, disk: vm.disk_gb })}</td>
      <td class="actions">
        <button type="button" disabled={deleting || vm.desired_state === 'running'} aria-label={t('vms.startNamed', { name: vm.name })} onClick={() => onAction('start')}>
          {t('vms.start')}
        </button>
        <button type="button" disabled={deleting || vm.desired_state === 'stopped'} aria-label={t('vms.stopNamed', { name: vm.name })} onClick={() => onAction('stop')}>
          {t('vms.stop')}
        </button>
        <button type="button" disabled={deleting} aria-label={t('vms.deleteNamed', { name: vm.name })} onClick={() => onAction('delete')}>
          {t('vms.delete')}
        </button>
        <button type="button" aria-label={t('vms.consoleNamed', { name: vm.name })} onClick={onConsole}>
          {t('vms.console')}
        </button>
      </td>
    </tr>
  );
}

function CreateVm({ session, tenant, onCreated }: { session: Session; tenant: Tenant; onCreated: () => void }) {
  const t = useTranslate();
  const [name, setName] = useState('');
  const [vcpus, setVcpus] = useState(1);
  const [memory, setMemory] = useState(1024);
  const [disk, setDisk] = useState(10);
  const [error, setError] = useState<unknown>(undefined);
  const [created, setCreated] = useState<string | null>(null);
  const usage = usageOf(tenant);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setCreated(null);
    try {
      const body: Record<string, unknown> = { vcpus, memory_mb: memory, disk_gb: disk };
      if (name.trim() !== '') body.name = name.trim();
      const answer = await callApi<Vm>(session, 'POST', '/v1/vms', body);
      setCreated(t('vms.created', { name: answer.body.name }));
      setName('');
      onCreated();
    } catch (caught) {
      setError(caught);
    }
  };

  return (
    <section aria-labelledby="vm-create-title" class="card">
      <h2 id="vm-create-title">{t('vms.create')}</h2>
      <p id="vm-quota">{t('vms.quotaBefore', { vms: usage.vms, maxVms: tenant.max_vms, storage: usage.storage_gb, maxStorage: tenant.storage_quota_gb })}</p>
      <form class="grid" aria-describedby="vm-quota" onSubmit={(event) => void submit(event)}>
        <label for="vm-name">{t('vms.name')}</label>
        <input id="vm-name" value={name} pattern="[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?" onInput={(event) => setName(event.currentTarget.value)} />
        <label for="vm-vcpus">{t('vms.vcpus')}</label>
        <input id="vm-vcpus" type="number" min={1} max={256} value={vcpus} onInput={(event) => setVcpus(Number(event.currentTarget.value))} />
        <label for="vm-memory">{t('vms.memory')}</label>
        <input id="vm-memory" type="number" min={64} value={memory} onInput={(event) => setMemory(Number(event.currentTarget.value))} />
        <label for="vm-disk">{t('vms.disk')}</label>
        <input id="vm-disk" type="number" min={1} value={disk} onInput={(event) => setDisk(Number(event.currentTarget.value))} />
        {error !== undefined && <ErrorNotice error={error} />}
        <p role="status">{created}</p>
        <button type="submit">{t('vms.createSubmit')}</button>
      </form>
    </section>
  );
}

/** A VM's serial console as its node last uploaded it, read again every few seconds (following it). */
function ConsoleLog({ session, vm, onUnauthenticated, onClose }: { session: Session; vm: Vm; onUnauthenticated: () => void; onClose: () => void }) {
  const t = useTranslate();
  const polled = usePolling(
    async () => (await callApi<{ data: string; updated_at: string | null }>(session, 'GET', `/v1/vms/${encodeURIComponent(vm.vm_id)}/console`)).body,
    onUnauthenticated,
  );
  const log = polled.value;
  return (
    <section class="card" aria-labelledby="vm-console-title">
      <h2 id="vm-console-title">{t('vms.consoleTitle', { name: vm.name })}</h2>
      {polled.error !== undefined && <ErrorNotice error={polled.error} />}
      {log === undefined ? (
        <p aria-busy="true">{t('common.loading')}</p>
      ) : log.updated_at === null ? (
        <p>{t('vms.consoleEmpty')}</p>
      ) : (
        <>
          <p class="quiet">{t('common.updated', { time: new Date(log.updated_at).toLocaleTimeString() })}</p>
          <pre class="console-log" tabIndex={0} aria-label={t('vms.consoleTitle', { name: vm.name })}>
            {consoleText(log.data)}
          </pre>
        </>
      )}
      <button type="button" onClick={onClose}>
        {t('vms.consoleClose')}
      </button>
    </section>
  );
}
