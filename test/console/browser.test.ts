/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core) against a real
 * server process serving the built console (`npm run build`): a tenant admin signs in with a `pop`
 * token and its key file and sees the overview; every page passes axe-core with no serious or
 * critical violation; the walk runs once in Spanish. No browser download: the system's chromium.
 */
import axe from 'axe-core';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64url, generateKeyPair, privateKeyToPem, rawPublicKey } from '../../src/tokens/keys.js';
import { api, startServer, type ServerProcess } from '../support/server-process.js';

const CHROMIUM = '/usr/bin/chromium';
const TENANT = 'acme-corp';

let server: ServerProcess;
let browser: Browser;
const holder = generateKeyPair();
let popToken: string;

beforeAll(async () => {
  server = await startServer();
  const admin = { token: server.adminToken };
  const created = await api(server.url, 'POST', '/v1/tenants', {
    ...admin,
    body: { tenant_id: TENANT, display_name: 'Acme Corporation', max_vms: 3, storage_quota_gb: 100, api_rate_limit_rpm: 600 },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const issued = await api(server.url, 'POST', `/v1/tenants/${TENANT}/tokens`, {
    ...admin,
    body: { subject_pubkey: encodeBase64url(rawPublicKey(holder.publicKey)), scope: 'service:tenant-admin', expires_in_seconds: 3600, proof_of_possession: true },
  });
  expect(issued.status, JSON.stringify(issued.body)).toBe(201);
  popToken = issued.body.token;
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

async function visit(locale: string): Promise<Visit> {
  const context = await browser.newContext({ locale, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${server.url}/console/`);
  return { context, page, errors };
}

async function signIn(page: Page, labels: { token: string; key: string; submit: string }): Promise<void> {
  await page.getByLabel(labels.token, { exact: true }).fill(popToken);
  await page.getByLabel(labels.key).setInputFiles({ name: 'holder.key', mimeType: 'application/x-pem-file', buffer: Buffer.from(privateKeyToPem(holder.privateKey)) });
  await page.getByRole('button', { name: labels.submit }).click();
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
      await signIn(page, { token: 'Token', key: "Holder's private key (PKCS#8 PEM file)", submit: 'Sign in' });

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
      await signIn(page, { token: 'Token', key: "Holder's private key (PKCS#8 PEM file)", submit: 'Sign in' });
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

  it('in Spanish: the language follows the browser, and the walk works the same', async () => {
    const { context, page, errors } = await visit('es-ES');
    try {
      await expect.poll(() => page.getByRole('heading', { name: 'Iniciar sesión' }).isVisible()).toBe(true);
      expect(await page.evaluate<string>('document.documentElement.lang')).toBe('es');
      await signIn(page, { token: 'Token', key: 'Clave privada del titular (archivo PEM PKCS#8)', submit: 'Iniciar sesión' });
      await expect.poll(() => page.getByRole('heading', { name: 'Resumen de Acme Corporation' }).isVisible(), { timeout: 10_000 }).toBe(true);
      await expect.poll(() => page.locator('[data-limit="storage"] .figures').textContent()).toMatch(/^\d+ de 100$/);
      expect(await accessibilityViolations(page)).toEqual([]);
      // Switched to English, it stays signed in.
      await page.getByLabel('Idioma').selectOption('en');
      await expect.poll(() => page.getByRole('heading', { name: 'Overview of Acme Corporation' }).isVisible()).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
