/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core) against a real
 * server process serving the built console (`npm run build`): a tenant admin signs in with a `pop`
 * token and its key file and sees the overview; every page passes axe-core with no serious or
 * critical violation; the walk runs once in Spanish. No browser download: the system's chromium.
 */
import axe from 'axe-core';
import type { KeyObject } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64url, generateKeyPair, privateKeyToPem, rawPublicKey } from '../../src/tokens/keys.js';
import { CLI, api, runCli, startServer, type ServerProcess } from '../support/server-process.js';
import { TamperingProxy } from '../support/tampering-proxy.js';

const CHROMIUM = '/usr/bin/chromium';
const TENANT = 'acme-corp';

let server: ServerProcess;
let browser: Browser;
const holder = generateKeyPair();
let popToken: string;

beforeAll(async () => {
  server = await startServer();
  await createTenant(TENANT, 'Acme Corporation', { max_vms: 3, storage_quota_gb: 100, api_rate_limit_rpm: 600 });
  popToken = (await issueToken(TENANT)).token;
  const vm = await api(server.url, 'POST', '/v1/vms', { token: popToken, signWith: holder.privateKey, body: { name: 'web-1', vcpus: 1, memory_mb: 512, disk_gb: 10 } });
  expect(vm.status, JSON.stringify(vm.body)).toBe(201);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking'] });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

interface Visit {
  context: BrowserContext;
  page: Page;
  /** Console errors the page logged, a Content-Security-Policy refusal among them. */
  errors: string[];
}

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };

async function visit(locale: string, viewport = DESKTOP, origin?: string): Promise<Visit> {
  const context = await browser.newContext({ locale, viewport });
  const page = await context.newPage();
  // A control that never appears fails the test in seconds, naming it, instead of at the test's timeout.
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${origin ?? server.url}/console/`);
  return { context, page, errors };
}

const ENGLISH = { token: 'Token', key: "Holder's private key (PKCS#8 PEM file)", submit: 'Sign in' };

async function signIn(page: Page, labels = ENGLISH, token = popToken, key: KeyObject | null = holder.privateKey): Promise<void> {
  await page.getByLabel(labels.token, { exact: true }).fill(token);
  if (key) await page.getByLabel(labels.key).setInputFiles({ name: 'holder.key', mimeType: 'application/x-pem-file', buffer: Buffer.from(privateKeyToPem(key)) });
  await page.getByRole('button', { name: labels.submit }).click();
}

async function createTenant(tenantId: string, displayName: string, limits: { max_vms: number; storage_quota_gb: number; api_rate_limit_rpm: number }): Promise<void> {
  const created = await api(server.url, 'POST', '/v1/tenants', { token: server.adminToken, body: { tenant_id: tenantId, display_name: displayName, ...limits } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
}

/** Issues a token of `tenantId` for `subject` (the test's holder key by default; proof of possession unless `pop` is false). */
async function issueToken(tenantId: string, pop = true, scope = 'service:tenant-admin', subject = holder.publicKey): Promise<{ token: string; token_id: string }> {
  const issued = await api(server.url, 'POST', `/v1/tenants/${tenantId}/tokens`, {
    token: server.adminToken,
    body: {
      subject_pubkey: encodeBase64url(rawPublicKey(subject)),
      scope,
      expires_in_seconds: 30 * 24 * 3600,
      proof_of_possession: pop,
    },
  });
  expect(issued.status, JSON.stringify(issued.body)).toBe(201);
  return issued.body;
}

const NODE_CAPACITY = { cpus: 4, memory_mb_total: 8192, memory_mb_available: 8000, disk_gb_available: 100, kvm: false, load1: 0.1 };

/** Enrolls `nodeId` as the node holding `key`, with a `node:agent` token: its tenant's, or a shared node's (minted on the server's machine) when `tenantId` is null. */
async function enrollNode(tenantId: string | null, nodeId: string, key = generateKeyPair()): Promise<{ token: string; key: typeof key }> {
  let token: string;
  if (tenantId === null) {
    const minted = runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir, '--scope', 'node:agent', '--subject', encodeBase64url(rawPublicKey(key.publicKey))]);
    expect(minted.status, minted.stderr).toBe(0);
    token = minted.stdout.trim();
  } else {
    token = (await issueToken(tenantId, true, 'node:agent', key.publicKey)).token;
  }
  const enrolled = await api(server.url, 'POST', '/v1/nodes', { token, signWith: key.privateKey, body: { node_id: nodeId, capacity: NODE_CAPACITY } });
  expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(201);
  return { token, key };
}

/** axe-core's serious and critical violations on the page as it is now, by rule and target. */
async function accessibilityViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, which the page's script-src does not govern.
  await page.evaluate(axe.source);
  const violations = await page.evaluate<{ checked: number; found: { id: string; impact: string; targets: string[] }[] }>(`axe.run().then((results) => ({
    checked: results.passes.length,
    found: results.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(' ')) })),
  }))`);
  // An axe that checked nothing would find nothing.
  expect(violations.checked).toBeGreaterThan(5);
  return violations.found.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}: ${v.targets.join(', ')}`);
}

describe('the web console in a browser', () => {
  it('a tenant admin signs in with a pop token and its key file and sees usage against each limit and the VMs', async () => {
    const { context, page, errors } = await visit('en-US');
    try {
      await expect.poll(() => page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(true);
      expect(await accessibilityViolations(page)).toEqual([]);
      await signIn(page);

      await expect.poll(() => page.getByRole('heading', { name: 'Overview of Acme Corporation' }).isVisible(), { timeout: 10_000 }).toBe(true);
      await expect.poll(() => page.locator('[data-limit="vms"] .figures').textContent(), { timeout: 10_000 }).toBe('1 of 3');
      expect(await page.locator('[data-limit="storage"] .figures').textContent()).toBe('10 of 100');
      expect(await page.locator('[data-limit="rate"] .figures').textContent()).toMatch(/^\d+ of 600$/);
      expect(await page.getByRole('meter', { name: 'VMs' }).getAttribute('value')).toBe('1');
      expect(await page.getByRole('row', { name: /web-1/ }).isVisible()).toBe(true);
      expect(await accessibilityViolations(page)).toEqual([]);

      // The key never left WebCrypto and the token lives in this tab's session storage only.
      expect(await page.evaluate<string[]>("Object.keys(localStorage).filter((key) => key !== 'ppn-console-language')")).toEqual([]);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await expect.poll(() => page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(true);
      expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the list updates without reloading: a VM created elsewhere appears', async () => {
    const { context, page, errors } = await visit('en-US');
    try {
      await signIn(page);
      await expect.poll(() => page.getByRole('row', { name: /web-1/ }).isVisible(), { timeout: 10_000 }).toBe(true);
      const vm = await api(server.url, 'POST', '/v1/vms', {
        token: popToken,
        signWith: holder.privateKey,
        body: { name: 'web-2', vcpus: 1, memory_mb: 512, disk_gb: 10 },
      });
      expect(vm.status).toBe(201);
      await expect.poll(() => page.getByRole('row', { name: /web-2/ }).isVisible(), { timeout: 15_000 }).toBe(true);
      await expect.poll(() => page.locator('[data-limit="vms"] .figures').textContent()).toBe('2 of 3');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a key that is not the token holder’s is refused at sign-in, before any request', async () => {
    const { context, page } = await visit('en-US');
    try {
      await page.getByLabel('Token', { exact: true }).fill(popToken);
      const other = generateKeyPair();
      await page
        .getByLabel("Holder's private key (PKCS#8 PEM file)")
        .setInputFiles({ name: 'other.key', mimeType: 'application/x-pem-file', buffer: Buffer.from(privateKeyToPem(other.privateKey)) });
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toBe("This key is not the token's holder key.");
    } finally {
      await context.close();
    }
  });

  it('in Spanish: the language follows the browser, every tenant page reads and passes axe-core, and switching keeps the session', async () => {
    const { context, page, errors } = await visit('es-ES');
    try {
      await expect.poll(() => page.getByRole('heading', { name: 'Iniciar sesión' }).isVisible()).toBe(true);
      expect(await page.evaluate<string>('document.documentElement.lang')).toBe('es');
      await signIn(page, { token: 'Token', key: 'Clave privada del titular (archivo PEM PKCS#8)', submit: 'Iniciar sesión' });
      await expect.poll(() => page.getByRole('heading', { name: 'Resumen de Acme Corporation' }).isVisible(), { timeout: 10_000 }).toBe(true);
      await expect.poll(() => page.locator('[data-limit="storage"] .figures').textContent()).toMatch(/^\d+ de 100$/);
      expect(await accessibilityViolations(page)).toEqual([]);
      // Every tenant page, in Spanish, with no serious or critical violation.
      for (const [link, heading] of [
        ['Máquinas virtuales', 'Crear una máquina virtual'],
        ['Tokens', 'Emitir un token'],
        ['Sesiones', 'Tokens en uso'],
        ['Nodos', 'Nodos de la flota'],
        ['Auditoría', 'Entradas'],
      ]) {
        await page.getByRole('link', { name: link, exact: true }).click();
        await expect.poll(() => page.getByRole('heading', { name: heading, exact: true }).isVisible(), { timeout: 10_000 }).toBe(true);
        expect(await accessibilityViolations(page), link).toEqual([]);
      }
      await page.getByRole('link', { name: 'Resumen', exact: true }).click();
      // Switched to English, it stays signed in.
      await page.getByLabel('Idioma').selectOption('en');
      await expect.poll(() => page.getByRole('heading', { name: 'Overview of Acme Corporation' }).isVisible()).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the walk in Spanish: VMs up to the quota and the refusal, a token issued and revoked, audit entries verified; the operator creates a tenant', async () => {
    const SPANISH = { token: 'Token', key: 'Clave privada del titular (archivo PEM PKCS#8)', submit: 'Iniciar sesión' };
    await createTenant('cuota-es', 'Cuota ES', { max_vms: 2, storage_quota_gb: 100, api_rate_limit_rpm: 600 });
    const token = (await issueToken('cuota-es')).token;
    const tenantVisit = await visit('es-ES');
    try {
      const { page, errors } = tenantVisit;
      await signIn(page, SPANISH, token);
      await page.getByRole('link', { name: 'Máquinas virtuales', exact: true }).click();
      await expect
        .poll(() => page.locator('#vm-quota').textContent(), { timeout: 10_000 })
        .toBe('Cuota actual: 0 de 2 máquinas virtuales, 0 de 100 GB de almacenamiento.');
      for (const name of ['es-1', 'es-2']) {
        await page.getByLabel('Nombre').fill(name);
        await page.getByRole('button', { name: 'Crear', exact: true }).click();
        await expect.poll(() => page.getByRole('row', { name: new RegExp(name) }).isVisible(), { timeout: 10_000 }).toBe(true);
      }
      await page.getByLabel('Nombre').fill('es-3');
      await page.getByRole('button', { name: 'Crear', exact: true }).click();
      await expect
        .poll(() => page.locator('form [role="alert"]').textContent(), { timeout: 10_000 })
        .toBe('Cuota superada en vms: el límite es 2, hay 2 en uso y se piden 1 más.');
      expect(await page.getByRole('row', { name: /es-3/ }).count()).toBe(0);

      await page.getByRole('link', { name: 'Tokens', exact: true }).click();
      const machine = generateKeyPair();
      await page.getByLabel('Nombre').fill('portatil');
      await page.getByLabel('Clave pública del titular (de ppn keygen)').fill(encodeBase64url(rawPublicKey(machine.publicKey)));
      await page.getByRole('button', { name: 'Emitir', exact: true }).click();
      const shown = page.getByRole('textbox', { name: 'Token', exact: true }).last();
      await expect.poll(() => shown.inputValue(), { timeout: 10_000 }).toMatch(/^pct1\./);
      const issued = await shown.inputValue();
      expect((await api(server.url, 'GET', '/v1/vms', { token: issued, signWith: machine.privateKey })).status).toBe(200);
      await expect.poll(() => page.getByRole('button', { name: 'Revocar portatil' }).isVisible(), { timeout: 10_000 }).toBe(true);
      await page.getByRole('button', { name: 'Revocar portatil' }).click();
      await expect
        .poll(
          () =>
            page
              .getByRole('row', { name: /portatil/ })
              .getByRole('cell', { name: 'revocado' })
              .isVisible(),
          { timeout: 10_000 },
        )
        .toBe(true);
      expect((await api(server.url, 'GET', '/v1/vms', { token: issued, signWith: machine.privateKey })).status).toBe(401);

      await page.getByRole('link', { name: 'Auditoría', exact: true }).click();
      const rows = page.locator('tbody tr[data-status]');
      await expect
        .poll(
          async () => {
            await page.getByRole('button', { name: 'Actualizar' }).click();
            await page.locator('[aria-busy="true"]').waitFor({ state: 'detached' });
            return [...new Set(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-status'))))];
          },
          { timeout: 20_000, interval: 1000 },
        )
        .toEqual(['verified']);
      expect(await rows.first().getByText('verificada').isVisible()).toBe(true);
      expect(await accessibilityViolations(page)).toEqual([]);
      expect(errors.filter((error) => !/status of 429/.test(error))).toEqual([]);
    } finally {
      await tenantVisit.context.close();
    }

    const operatorVisit = await visit('es-ES');
    try {
      const { page, errors } = operatorVisit;
      await signIn(page, SPANISH, server.adminToken, null);
      await expect.poll(() => page.getByRole('heading', { name: 'Inquilinos', exact: true }).isVisible(), { timeout: 10_000 }).toBe(true);
      await page.getByLabel('Id del inquilino').fill('hispania');
      await page.getByLabel('Nombre visible').fill('Hispania');
      await page.getByLabel('Máximo de máquinas virtuales').fill('5');
      await page.getByRole('button', { name: 'Crear', exact: true }).click();
      await expect.poll(() => page.getByRole('row', { name: /hispania/ }).isVisible(), { timeout: 10_000 }).toBe(true);
      expect((await api(server.url, 'GET', '/v1/tenants/hispania', { token: server.adminToken })).body).toMatchObject({ display_name: 'Hispania', max_vms: 5 });
      expect(errors).toEqual([]);
    } finally {
      await operatorVisit.context.close();
    }
  });

  it('a revoked token sends the user back to sign in, saying why', async () => {
    const revocable = await issueToken(TENANT);
    const { context, page } = await visit('en-US');
    try {
      await signIn(page, ENGLISH, revocable.token);
      await expect.poll(() => page.getByRole('heading', { name: 'Overview of Acme Corporation' }).isVisible(), { timeout: 10_000 }).toBe(true);
      const revoked = await api(server.url, 'DELETE', `/v1/tenants/${TENANT}/tokens/${revocable.token_id}`, { token: server.adminToken });
      expect(revoked.status).toBe(200);
      await expect.poll(() => page.getByRole('heading', { name: 'Sign in' }).isVisible(), { timeout: 15_000 }).toBe(true);
      expect(await page.getByRole('alert').textContent()).toBe('Your token is no longer accepted (revoked, expired or wrong key): sign in again.');
      expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('a bearer token signs in without a key; over the API rate it says when to retry', async () => {
    await createTenant('tiny-rate', 'Tiny Rate', { max_vms: 1, storage_quota_gb: 10, api_rate_limit_rpm: 4 });
    const bearer = await issueToken('tiny-rate', false);
    const { context, page } = await visit('en-US');
    try {
      // whoami, then the overview's two reads: the fourth request is the last one admitted.
      await signIn(page, ENGLISH, bearer.token, null);
      await expect.poll(() => page.locator('[data-limit="rate"] .figures').textContent(), { timeout: 10_000 }).toBe('3 of 4');
      await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 15_000 }).toMatch(/^Too many requests: try again in \d+ s\.$/);
    } finally {
      await context.close();
    }
  });

  it('at phone width the overview fits the screen and passes axe-core', async () => {
    const { context, page, errors } = await visit('en-US', PHONE);
    try {
      await signIn(page);
      await expect.poll(() => page.getByRole('row', { name: /web-1/ }).isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await page.evaluate<boolean>('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(true);
      expect(await accessibilityViolations(page)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("the console's JavaScript stays within 150 KB gzipped; its first render is reported", async () => {
    const assets = 'dist/console/assets';
    const gzipped = readdirSync(assets)
      .filter((name) => name.endsWith('.js'))
      .reduce((sum, name) => sum + gzipSync(readFileSync(`${assets}/${name}`)).length, 0);
    expect(gzipped).toBeGreaterThan(0);
    expect(gzipped).toBeLessThanOrEqual(150 * 1024);
    const { context, page } = await visit('en-US');
    try {
      await expect.poll(() => page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(true);
      const rendered = await page.evaluate<number>("performance.getEntriesByName('ppn-console-rendered')[0].startTime");
      // Reported, not asserted: docs/benchmarks.md records it (a timed assertion would fail on a busy machine).
      console.log(`console: ${(gzipped / 1024).toFixed(1)} KB of JavaScript gzipped; first render ${rendered.toFixed(0)} ms after navigation`);
    } finally {
      await context.close();
    }
  });

  it('creates VMs up to the quota, shown before submitting, then sees the refusal with limit and usage; deletes one', async () => {
    await createTenant('two-vms', 'Two VMs', { max_vms: 2, storage_quota_gb: 100, api_rate_limit_rpm: 600 });
    const token = (await issueToken('two-vms')).token;
    const { context, page, errors } = await visit('en-US');
    try {
      await signIn(page, ENGLISH, token);
      await page.getByRole('link', { name: 'VMs' }).click();
      await expect.poll(() => page.locator('#vm-quota').textContent(), { timeout: 10_000 }).toBe('Quota now: 0 of 2 VMs, 0 of 100 GB of storage.');
      expect(await accessibilityViolations(page)).toEqual([]);
      for (const name of ['app-1', 'app-2']) {
        await page.getByLabel('Name').fill(name);
        await page.getByRole('button', { name: 'Create', exact: true }).click();
        await expect.poll(() => page.getByRole('row', { name: new RegExp(name) }).isVisible(), { timeout: 10_000 }).toBe(true);
      }
      await expect.poll(() => page.locator('#vm-quota').textContent()).toBe('Quota now: 2 of 2 VMs, 20 of 100 GB of storage.');
      await page.getByLabel('Name').fill('app-3');
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      await expect.poll(() => page.locator('form [role="alert"]').textContent()).toBe('Quota exceeded for vms: the limit is 2, 2 in use, 1 more requested.');
      expect(await page.getByRole('row', { name: /app-3/ }).count()).toBe(0);

      await page.getByRole('button', { name: 'Stop app-1' }).click();
      await expect.poll(() => page.getByRole('button', { name: 'Start app-1' }).isEnabled()).toBe(true);
      await page.getByRole('button', { name: 'Delete app-1' }).click();
      await expect.poll(() => page.getByRole('row', { name: /app-1/ }).count(), { timeout: 10_000 }).toBe(0);
      await expect.poll(() => page.locator('#vm-quota').textContent()).toBe('Quota now: 1 of 2 VMs, 10 of 100 GB of storage.');
      expect(await accessibilityViolations(page)).toEqual([]);
      expect(errors.filter((error) => !/status of 429/.test(error))).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('issues a token, shown once with a copy button, and revokes it', async () => {
    const { context, page, errors } = await visit('en-US');
    try {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
      await signIn(page);
      await page.getByRole('link', { name: 'Tokens' }).click();
      const machine = generateKeyPair();
      await page.getByLabel('Name').fill('ci-runner');
      await page.getByLabel("Holder's public key (from ppn keygen)").fill(encodeBase64url(rawPublicKey(machine.publicKey)));
      await page.getByLabel('Scope').selectOption('tenant:read');
      await page.getByLabel('Valid for').selectOption({ label: '8 hours' });
      expect(await page.getByLabel(/proof of possession/).isChecked()).toBe(true);
      await page.getByRole('button', { name: 'Issue', exact: true }).click();

      const shown = page.getByRole('textbox', { name: 'Token', exact: true }).last();
      await expect.poll(() => shown.inputValue(), { timeout: 10_000 }).toMatch(/^pct1\./);
      const token = await shown.inputValue();
      expect(await page.getByText('it is shown only this once').isVisible()).toBe(true);
      await page.getByRole('button', { name: 'Copy' }).click();
      await expect.poll(() => page.evaluate<string>('navigator.clipboard.readText()')).toBe(token);
      expect((await api(server.url, 'GET', '/v1/vms', { token, signWith: machine.privateKey })).status).toBe(200);
      expect(await accessibilityViolations(page)).toEqual([]);

      await expect.poll(() => page.getByRole('row', { name: /ci-runner/ }).isVisible(), { timeout: 10_000 }).toBe(true);
      await page.getByRole('button', { name: 'Revoke ci-runner' }).click();
      await expect
        .poll(
          () =>
            page
              .getByRole('row', { name: /ci-runner/ })
              .getByRole('cell', { name: 'revoked' })
              .isVisible(),
          { timeout: 10_000 },
        )
        .toBe(true);
      expect((await api(server.url, 'GET', '/v1/vms', { token, signWith: machine.privateKey })).status).toBe(401);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('marks audit entries verified in the browser, as failing when a proof is tampered with, and warns when the ledger key changes', async () => {
    const proxy = await TamperingProxy.start(server.url);
    const { context, page, errors } = await visit('en-US', DESKTOP, proxy.url);
    try {
      await signIn(page);
      await page.getByRole('link', { name: 'Audit' }).click();
      const rows = page.locator('tbody tr[data-status]');
      const statuses = async () => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-status')));
      // Entries written in the last second wait for the next checkpoint: refresh until every one is in.
      await expect
        .poll(
          async () => {
            await page.getByRole('button', { name: 'Refresh' }).click();
            await page.getByText('Reading and checking entries…').waitFor({ state: 'detached' });
            return [...new Set(await statuses())];
          },
          { timeout: 20_000, interval: 1000 },
        )
        .toEqual(['verified']);
      expect(await rows.count()).toBeGreaterThan(2);
      expect(await page.getByText('Ledger key pinned in this browser').isVisible()).toBe(true);
      expect(await accessibilityViolations(page)).toEqual([]);

      proxy.tamper = true;
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect.poll(async () => [...new Set(await statuses())], { timeout: 10_000 }).toEqual(['failed']);
      expect(proxy.tampered).toBeGreaterThan(0);
      expect(await rows.first().getByText('FAILED verification').isVisible()).toBe(true);
      proxy.tamper = false;

      await page.evaluate("localStorage.setItem('ppn-console-ledger-key', 'other-ledger+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')");
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect.poll(() => page.getByRole('heading', { name: 'Warning: the ledger key has changed' }).isVisible(), { timeout: 10_000 }).toBe(true);
      expect([...new Set(await statuses())]).toEqual(['unchecked']);
      await page.getByRole('button', { name: /pin it instead/ }).click();
      await expect.poll(async () => [...new Set(await statuses())], { timeout: 10_000 }).toEqual(['verified']);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      await proxy.close();
    }
  });

  it("remembers the checkpoint it trusted, trusts the next only with a consistency proof, and warns when the ledger's history was rewritten", async () => {
    const { context, page, errors } = await visit('en-US');
    try {
      await signIn(page);
      await page.getByRole('link', { name: 'Audit' }).click();
      const rows = page.locator('tbody tr[data-status]');
      const statuses = async () => [...new Set(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-status'))))];
      const refresh = async () => {
        await page.getByRole('button', { name: 'Refresh' }).click();
        await page.getByText('Reading and checking entries…').waitFor({ state: 'detached' });
      };
      type Seen = { key: string; size: number; root: string; seenAt: string };
      const seen = async () => JSON.parse((await page.evaluate<string | null>("localStorage.getItem('ppn-console-ledger-checkpoint')")) ?? 'null') as Seen | null;
      const remember = (planted: Seen) => page.evaluate(`localStorage.setItem('ppn-console-ledger-checkpoint', ${JSON.stringify(JSON.stringify(planted))})`);

      // First visit: the checkpoint is remembered.
      await expect.poll(() => page.getByText(/^This browser now remembers this checkpoint of \d+ entries/).isVisible(), { timeout: 10_000 }).toBe(true);
      const first = (await seen())!;
      expect(first.size).toBeGreaterThan(0);

      // The ledger grows (a token issued writes TOKEN_ISSUED); the next checkpoint is trusted once its
      // consistency proof checks out here.
      await issueToken(TENANT, false, 'tenant:read');
      await expect
        .poll(
          async () => {
            await refresh();
            return (await seen())!.size;
          },
          { timeout: 20_000, interval: 1000 },
        )
        .toBeGreaterThan(first.size);
      await expect.poll(() => page.getByText(`extends the one of ${first.size} entries this browser trusted on ${first.seenAt}`).isVisible()).toBe(true);
      expect(await statuses()).not.toContain('failed');
      const trusted = (await seen())!;

      // What this browser remembers, as a server that rewrote its history would have shown it.
      const rewritten: [string, Seen, RegExp][] = [
        ['another root at the same size', { ...trusted, root: '00'.repeat(32) }, /but another root hash: entries have been changed/],
        ['a larger tree than now', { ...trusted, size: trusted.size + 1000 }, /fewer than the \d+ of the checkpoint this browser trusted/],
        [
          'a smaller tree that the proof does not extend',
          { ...trusted, size: trusted.size - 1, root: 'ab'.repeat(32) },
          /could not prove that its checkpoint of \d+ entries extends/,
        ],
      ];
      for (const [what, planted, says] of rewritten) {
        await remember(planted);
        await refresh();
        // The warning's own sentence, not its heading, which the case before left on the page.
        await expect.poll(() => page.getByRole('alert').getByText(says).isVisible(), { message: what }).toBe(true);
        expect(await page.getByRole('heading', { name: "Warning: the ledger's history has been rewritten" }).isVisible(), what).toBe(true);
        expect(await statuses(), what).toEqual(['failed']);
        // A rewritten history is not forgotten on the next visit: the record of what was seen stays.
        expect(await seen(), what).toEqual(planted);
      }
      expect(await accessibilityViolations(page)).toEqual([]);

      // The operator announced a restore: the user trusts the server's checkpoint from now on.
      await page.getByRole('button', { name: /the ledger was restored/ }).click();
      await expect.poll(statuses, { timeout: 10_000 }).not.toContain('failed');
      expect(await page.getByText(/^This browser now remembers this checkpoint/).isVisible()).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the platform operator signs in, creates a tenant, changes its limits, suspends it and deletes it, and sees the platform tokens', async () => {
    const { context, page, errors } = await visit('en-US');
    try {
      page.on('dialog', (dialog) => void dialog.accept());
      await signIn(page, ENGLISH, server.adminToken, null);
      await expect.poll(() => page.getByRole('heading', { name: 'Tenants', exact: true }).isVisible(), { timeout: 10_000 }).toBe(true);
      await expect.poll(() => page.getByRole('row', { name: /acme-corp/ }).isVisible()).toBe(true);
      expect(await accessibilityViolations(page)).toEqual([]);

      await page.getByLabel('Tenant id').fill('initech');
      await page.getByLabel('Display name').fill('Initech');
      await page.getByLabel('Most VMs').fill('4');
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      const row = page.getByRole('row', { name: /initech/ });
      await expect.poll(() => row.isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await row.getByRole('cell', { name: '0 of 4' }).count()).toBe(1);
      expect((await api(server.url, 'GET', '/v1/tenants/initech', { token: server.adminToken })).body).toMatchObject({
        display_name: 'Initech',
        max_vms: 4,
        state: 'active',
      });

      await page.getByRole('button', { name: 'Edit limits of initech' }).click();
      await page.locator('#edit-max_vms').fill('7');
      await page.getByRole('button', { name: 'Save' }).click();
      await expect.poll(() => row.getByRole('cell', { name: '0 of 7' }).count(), { timeout: 10_000 }).toBe(1);

      await page.getByRole('button', { name: 'Suspend initech' }).click();
      await expect.poll(() => row.getByRole('cell', { name: 'suspended' }).count(), { timeout: 10_000 }).toBe(1);
      await page.getByRole('button', { name: 'Delete initech' }).click();
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(0);
      expect((await api(server.url, 'GET', '/v1/tenants/initech', { token: server.adminToken })).status).toBe(404);

      // The platform's own tokens: listed with their state, never issued from the browser.
      await page.getByRole('link', { name: 'Tokens' }).click();
      await expect.poll(() => page.getByRole('cell', { name: 'valid' }).count(), { timeout: 10_000 }).toBeGreaterThan(0);
      expect(await page.getByRole('heading', { name: 'Issue a token' }).count()).toBe(0);
      expect(await accessibilityViolations(page)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("lists the tenant's sessions and ends one, lists its nodes with capacity and allocation, and follows a VM's console", async () => {
    const machine = generateKeyPair();
    const used = await issueToken(TENANT, true, 'tenant:read', machine.publicKey);
    expect((await api(server.url, 'GET', '/v1/vms', { token: used.token, signWith: machine.privateKey })).status).toBe(200);
    const { token: agentToken, key: nodeKey } = await enrollNode(TENANT, 'compute-01');

    const { context, page, errors } = await visit('en-US');
    try {
      await signIn(page);
      await page.getByRole('link', { name: 'Sessions' }).click();
      // Session use reaches the store within a second or so: the page polls until it shows.
      await expect.poll(() => page.getByRole('button', { name: `End ${used.token_id}` }).isVisible(), { timeout: 15_000 }).toBe(true);
      expect(await accessibilityViolations(page)).toEqual([]);
      await page.getByRole('button', { name: `End ${used.token_id}` }).click();
      await expect
        .poll(
          () =>
            page
              .getByRole('row', { name: new RegExp(used.token_id) })
              .getByText('ended')
              .isVisible(),
          { timeout: 10_000 },
        )
        .toBe(true);
      expect((await api(server.url, 'GET', '/v1/vms', { token: used.token, signWith: machine.privateKey })).status).toBe(401);

      await page.getByRole('link', { name: 'Nodes' }).click();
      const row = page.getByRole('row', { name: /compute-01/ });
      await expect.poll(() => row.isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await row.getByRole('cell', { name: '4 CPU, 8192 MB, 100 GB free, TCG' }).count()).toBe(1);
      expect(await accessibilityViolations(page)).toEqual([]);

      // The scheduler places the tenant's VMs on the new node; its console output is followed on the VMs page.
      let placed: { vm_id: string; name: string } | undefined;
      await expect
        .poll(
          async () => {
            const vms = await api(server.url, 'GET', '/v1/vms', { token: popToken, signWith: holder.privateKey });
            placed = vms.body.items.find((vm: { node_id: string | null }) => vm.node_id === 'compute-01');
            return placed !== undefined;
          },
          { timeout: 15_000 },
        )
        .toBe(true);
      const upload = async (text: string) => {
        const sent = await api(server.url, 'PUT', `/v1/nodes/compute-01/vms/${placed!.vm_id}/console`, {
          token: agentToken,
          signWith: nodeKey.privateKey,
          body: { data: Buffer.from(text).toString('base64') },
        });
        expect(sent.status, JSON.stringify(sent.body)).toBe(204);
      };
      await upload('SeaBIOS\nBooting from Hard Disk...\n');
      await page.getByRole('link', { name: 'VMs' }).click();
      await page.getByRole('button', { name: `Console of ${placed!.name}` }).click();
      const log = page.locator('pre.console-log');
      await expect.poll(() => log.textContent(), { timeout: 10_000 }).toBe('SeaBIOS\nBooting from Hard Disk...\n');
      await upload('SeaBIOS\nBooting from Hard Disk...\nppn-guest login: ');
      await expect.poll(() => log.textContent(), { timeout: 15_000 }).toContain('ppn-guest login:');
      expect(await accessibilityViolations(page)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("removes a node after a confirmation naming it: its VMs become failed; a refusal shows the server's reason; the operator removes a tenant's and a shared node", async () => {
    const tenant = 'node-removal';
    await createTenant(tenant, 'Node Removal', { max_vms: 2, storage_quota_gb: 100, api_rate_limit_rpm: 600 });
    const admin = (await issueToken(tenant)).token;
    const reader = (await issueToken(tenant, true, 'tenant:read')).token;
    const asAdmin = { token: admin, signWith: holder.privateKey };
    const vm = await api(server.url, 'POST', '/v1/vms', { ...asAdmin, body: { name: 'on-doomed', vcpus: 1, memory_mb: 512, disk_gb: 10 } });
    expect(vm.status, JSON.stringify(vm.body)).toBe(201);
    await enrollNode(tenant, 'doomed-01');
    await expect.poll(async () => (await api(server.url, 'GET', `/v1/vms/${vm.body.vm_id}`, asAdmin)).body.node_id, { timeout: 15_000 }).toBe('doomed-01');
    /** Whether the pool (a tenant's, or the shared one for null) has the node, as the operator lists every pool. */
    const hasNode = async (pool: string | null, nodeId: string) =>
      ((await api(server.url, 'GET', '/v1/nodes?limit=1000', { token: server.adminToken })).body.items as { node_id: string; tenant_id: string | null }[]).some(
        (node) => node.node_id === nodeId && node.tenant_id === pool,
      );

    /** Opens the nodes page signed in with `token`; each confirmation is recorded, then answered with `answer.accept`. */
    const openNodes = async (token: string, key: KeyObject | null) => {
      const opened = await visit('en-US');
      const answer = { accept: false, asked: [] as string[] };
      opened.page.on('dialog', (dialog) => {
        answer.asked.push(dialog.message());
        void (answer.accept ? dialog.accept() : dialog.dismiss());
      });
      await signIn(opened.page, ENGLISH, token, key);
      await opened.page.getByRole('link', { name: 'Nodes' }).click();
      return { ...opened, answer };
    };

    // A token that may read but not remove: the server's refusal is shown, with its reason, and the node stays.
    const refused = await api(server.url, 'DELETE', '/v1/nodes/doomed-01', { token: reader, signWith: holder.privateKey });
    expect(refused.status).toBe(403);
    const readerVisit = await openNodes(reader, holder.privateKey);
    try {
      const { page, answer, errors } = readerVisit;
      answer.accept = true;
      await page.getByRole('button', { name: `Remove doomed-01 (${tenant})` }).click();
      await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 10_000 }).toBe(`The server answered 403: ${refused.body.detail}`);
      expect(await page.getByRole('row', { name: /doomed-01/ }).count()).toBe(1);
      expect(await hasNode(tenant, 'doomed-01')).toBe(true);
      expect(await accessibilityViolations(page)).toEqual([]);
      expect(errors.filter((error) => !/status of 403/.test(error))).toEqual([]);
    } finally {
      await readerVisit.context.close();
    }

    // The tenant admin: declining the confirmation sends nothing; accepting it removes the node and fails its VM.
    const adminVisit = await openNodes(admin, holder.privateKey);
    try {
      const { page, answer, errors } = adminVisit;
      const row = page.getByRole('row', { name: /doomed-01/ });
      await page.getByRole('button', { name: `Remove doomed-01 (${tenant})` }).click();
      expect(answer.asked).toEqual([
        `Remove the node doomed-01 (${tenant})? Its VMs become failed and leave it; those it was deleting are removed. Its agent must enroll again to rejoin.`,
      ]);
      expect(await hasNode(tenant, 'doomed-01')).toBe(true);
      answer.accept = true;
      await page.getByRole('button', { name: `Remove doomed-01 (${tenant})` }).click();
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(0);
      expect(await hasNode(tenant, 'doomed-01')).toBe(false);
      expect((await api(server.url, 'GET', `/v1/vms/${vm.body.vm_id}`, asAdmin)).body).toMatchObject({
        state: 'failed',
        node_id: null,
        reason: 'node doomed-01 was removed',
      });
      expect(await page.getByRole('alert').count()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await adminVisit.context.close();
    }

    // The operator sees every pool: a tenant's node is removed by its tenant, a shared one of the same name by none.
    await enrollNode(tenant, 'twin-01');
    await enrollNode(null, 'twin-01');
    const operatorVisit = await openNodes(server.adminToken, null);
    try {
      const { page, answer, errors } = operatorVisit;
      answer.accept = true;
      const tenants = page.getByRole('button', { name: `Remove twin-01 (${tenant})` });
      const shared = page.getByRole('button', { name: 'Remove twin-01 (shared)' });
      await expect.poll(() => shared.isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await accessibilityViolations(page)).toEqual([]);
      await tenants.click();
      await expect.poll(() => tenants.count(), { timeout: 10_000 }).toBe(0);
      expect(await hasNode(tenant, 'twin-01')).toBe(false);
      expect(await hasNode(null, 'twin-01')).toBe(true);
      await shared.click();
      await expect.poll(() => shared.count(), { timeout: 10_000 }).toBe(0);
      expect(await hasNode(null, 'twin-01')).toBe(false);
      expect(answer.asked).toHaveLength(2);
      expect(errors).toEqual([]);
    } finally {
      await operatorVisit.context.close();
    }
  });

  it('every control is reachable by keyboard, and a VM can be created with the keyboard alone', async () => {
    /** What has the focus after each of `presses` Tab presses: its id, or its role and accessible text. */
    const tabThrough = async (page: Page, presses: number) => {
      const reached: string[] = [];
      for (let i = 0; i < presses; i++) {
        await page.keyboard.press('Tab');
        reached.push(await page.evaluate<string>("document.activeElement.id || (document.activeElement.tagName + ' ' + document.activeElement.textContent.trim())"));
      }
      return reached;
    };
    await createTenant('keyboard', 'Keyboard', { max_vms: 2, storage_quota_gb: 100, api_rate_limit_rpm: 600 });
    const token = (await issueToken('keyboard')).token;
    const { context, page, errors } = await visit('en-US');
    try {
      await expect.poll(() => page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(true);
      const signInControls = await tabThrough(page, 7);
      expect(signInControls).toEqual(expect.arrayContaining(['A Skip to content', 'token', 'token-file', 'key-file']));
      await signIn(page, ENGLISH, token);
      await page.getByRole('link', { name: 'VMs' }).click();
      await expect.poll(() => page.locator('#vm-quota').isVisible(), { timeout: 10_000 }).toBe(true);
      await page.locator('#vm-name').focus();
      await page.keyboard.type('typed-1');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.getByRole('row', { name: /typed-1/ }).isVisible(), { timeout: 10_000 }).toBe(true);
      // From the page's top, Tab reaches the navigation, the form and each row's buttons.
      await page.locator('#main').focus();
      const reached = await tabThrough(page, 12);
      expect(reached).toEqual(expect.arrayContaining(['vm-name', 'vm-vcpus', 'vm-memory', 'vm-disk', 'BUTTON Create', 'BUTTON Stop', 'BUTTON Delete']));
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("the platform operator reads the platform's keys: the active token-signing key and the ledger key the audit page pins", async () => {
    const listed = await api(server.url, 'GET', '/v1/admin/keys', { token: server.adminToken });
    expect(listed.status).toBe(200);
    const active = (listed.body.token_keys as { kid: string; state: string; public_key: string }[]).find((key) => key.state === 'active')!;
    const ledgerKey = (await (await fetch(`${server.url}/v1/ledger/key`)).text()).trim();
    const { context, page, errors } = await visit('en-US');
    try {
      await signIn(page, ENGLISH, server.adminToken, null);
      await page.getByRole('link', { name: 'Keys' }).click();
      const row = page.getByRole('row', { name: new RegExp(active.kid) });
      await expect.poll(() => row.isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await row.getByRole('cell', { name: 'active', exact: true }).count()).toBe(1);
      // The public key is shortened in the table, whole in its title.
      expect(await row.locator(`code[title="${active.public_key}"]`).count()).toBe(1);
      expect(await page.getByRole('button', { name: `Copy the public key of ${active.kid}` }).count()).toBe(1);
      expect(await page.locator('#ledger-verifier-key').textContent()).toBe(ledgerKey);
      expect(await page.getByText('service-vm-tenant keys rotate').count()).toBe(1);
      expect(await accessibilityViolations(page)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the platform operator reads the whole audit trail: the newest 50, then older pages down to the first entry, each verified', async () => {
    // Enough entries for three pages: each token issued is one.
    const newest = async () => (await api(server.url, 'GET', '/v1/ledger/entries?order=desc&limit=1', { token: server.adminToken })).body.items[0].index as number;
    while ((await newest()) < 110) await issueToken(TENANT, false, 'tenant:read', generateKeyPair().publicKey);
    // The newest entry when the page shows it: background work (a silent node becoming unreachable,
    // say) may append entries meanwhile.
    let total = 0;
    const { context, page, errors } = await visit('en-US');
    try {
      await signIn(page, ENGLISH, server.adminToken, null);
      await page.getByRole('link', { name: 'Audit' }).click();
      const rows = page.locator('tbody tr[data-status]');
      const shown = async () => rows.evaluateAll((trs) => trs.map((tr) => ({ index: Number(tr.getAttribute('data-index')), status: tr.getAttribute('data-status') })));
      // Refresh until the newest entries are all in a checkpoint.
      await expect
        .poll(
          async () => {
            await page.getByRole('button', { name: 'Refresh' }).click();
            await page.locator('[aria-busy="true"]').waitFor({ state: 'detached' });
            const entries = await shown();
            total = (entries[0]?.index ?? -1) + 1;
            return entries.length === 50 && total - 1 === (await newest()) && entries.every((entry) => entry.status === 'verified');
          },
          { timeout: 20_000, interval: 1000 },
        )
        .toBe(true);
      const older = page.getByRole('button', { name: 'Show 50 older entries' });
      for (let clicks = 0; (await older.count()) > 0; clicks++) {
        expect(clicks).toBeLessThan(Math.ceil(total / 50));
        const before = await rows.count();
        await older.click();
        await expect.poll(() => rows.count(), { timeout: 20_000 }).toBeGreaterThan(before);
        await page.locator('[aria-busy="true"]').waitFor({ state: 'detached' });
      }
      const entries = await shown();
      // Every entry once, newest first, down to the ledger's first, each checked in this browser.
      expect(entries.map((entry) => entry.index)).toEqual(Array.from({ length: total }, (_, i) => total - 1 - i));
      expect(new Set(entries.map((entry) => entry.status))).toEqual(new Set(['verified']));
      expect(await accessibilityViolations(page)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  // Last, so the pages show what the walk above made: VMs, tokens, a session, a node, audit entries.
  it('takes a screenshot of every page at desktop and phone width (docs/console.md shows them), each passing axe-core', async () => {
    // `npm run docs:screenshots` writes them into docs/console; otherwise they go to a temporary directory.
    const kept = process.env.PPN_CONSOLE_SCREENSHOTS;
    const directory = kept ?? mkdtempSync(join(tmpdir(), 'ppn-console-shots-'));
    mkdirSync(directory, { recursive: true });
    /** Each page: its name, the link that opens it (none for the first), and what shows once its data is in. */
    const tenantPages = [
      { name: 'overview', link: null, ready: (page: Page) => page.getByRole('row', { name: /web-1/ }) },
      { name: 'vms', link: 'VMs', ready: (page: Page) => page.getByRole('button', { name: 'Console of web-1' }) },
      { name: 'tokens', link: 'Tokens', ready: (page: Page) => page.getByRole('cell', { name: 'valid' }).first() },
      { name: 'sessions', link: 'Sessions', ready: (page: Page) => page.getByRole('button', { name: /^End / }).first() },
      { name: 'nodes', link: 'Nodes', ready: (page: Page) => page.getByRole('row', { name: /compute-01/ }) },
      { name: 'audit', link: 'Audit', ready: (page: Page) => page.locator('tbody tr[data-status="verified"]').first() },
    ];
    const platformPages = [
      { name: 'tenants', link: null, ready: (page: Page) => page.getByRole('row', { name: /acme-corp/ }) },
      { name: 'platform-tokens', link: 'Tokens', ready: (page: Page) => page.getByRole('cell', { name: 'valid' }).first() },
      { name: 'keys', link: 'Keys', ready: (page: Page) => page.getByRole('cell', { name: 'active', exact: true }) },
      { name: 'platform-nodes', link: 'Nodes', ready: (page: Page) => page.getByRole('row', { name: /compute-01/ }) },
      { name: 'platform-audit', link: 'Audit', ready: (page: Page) => page.locator('tbody tr[data-status="verified"]').first() },
    ];
    const taken: string[] = [];
    try {
      for (const [width, viewport] of [
        ['desktop', DESKTOP],
        ['phone', PHONE],
      ] as const) {
        const shoot = async (page: Page, name: string) => {
          const file = join(directory, `${name}-${width}.png`);
          await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
          taken.push(file);
          // Every page at both widths, the platform operator's views of nodes and audit included.
          expect(await accessibilityViolations(page), `${name} at ${width} width`).toEqual([]);
        };
        for (const [pages, token, key] of [
          [tenantPages, popToken, holder.privateKey],
          [platformPages, server.adminToken, null],
        ] as const) {
          const { context, page, errors } = await visit('en-US', viewport);
          try {
            await expect.poll(() => page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(true);
            if (pages === tenantPages) await shoot(page, 'sign-in');
            await signIn(page, ENGLISH, token, key);
            for (const shown of pages) {
              if (shown.link) await page.getByRole('link', { name: shown.link }).click();
              await expect.poll(() => shown.ready(page).isVisible(), { timeout: 20_000 }).toBe(true);
              if (shown.name.endsWith('audit')) await page.getByText('Reading and checking entries…').waitFor({ state: 'detached' });
              await shoot(page, shown.name);
            }
            expect(errors).toEqual([]);
          } finally {
            await context.close();
          }
        }
      }
      // Twelve pages at two widths, each a real image of some size.
      expect(taken).toHaveLength(24);
      for (const file of taken) {
        expect(readFileSync(file).subarray(1, 4).toString()).toBe('PNG');
        expect(statSync(file).size).toBeGreaterThan(5_000);
      }
    } finally {
      if (!kept) rmSync(directory, { recursive: true, force: true });
    }
  });
});
