/**
 * Signed notes and checkpoints against the Go sumdb/note reference (fixture file, source named
 * inside), plus a malformed case per field. Every refusal is a LedgerError with its code.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatCheckpoint, parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { LedgerError, type LedgerErrorCode } from '../../src/ledger/error.js';
import { hashLeaf } from '../../src/ledger/merkle.js';
import { openNote, parseVerifierKey, signNote, verifierKeyText } from '../../src/ledger/note.js';
import { generateKeyPair } from '../../src/tokens/keys.js';

const V = JSON.parse(readFileSync('test/fixtures/c2sp-signed-note.json', 'utf8')) as Record<string, string>;

/** The Go signer key is PRIVATE+KEY+<name>+<hash>+base64(0x01 ‖ seed). */
function signerFromGoKey(text: string) {
  const parts = text.split('+');
  const seed = Buffer.from(parts.slice(4).join('+'), 'base64').subarray(1);
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return { name: parts[2]!, key: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }) };
}

function expectLedgerError(run: () => unknown, code: LedgerErrorCode): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as LedgerError).code).toBe(code);
    return;
  }
  throw new Error(`expected a LedgerError (${code}), but nothing was thrown`);
}

describe('signed notes: the Go reference', () => {
  const signer = signerFromGoKey(V.signer_key!);
  const key = parseVerifierKey(V.verifier_key!);

  it('derives the published verifier key from the signer key', () => {
    expect(verifierKeyText(signer.name, signer.key)).toBe(V.verifier_key);
  });

  it('signs the published text into the published note, byte for byte', () => {
    expect(signNote(V.text!, signer.name, signer.key)).toBe(V.note);
  });

  it('opens the published note and returns its text', () => {
    expect(openNote(V.note!, key)).toBe(V.text);
  });

  it('parses the C2SP example verifier key', () => {
    expect(parseVerifierKey(V.example_verifier_key!).name).toBe('example.com/foo');
  });

  it('refuses a changed text with bad_signature', () => {
    expectLedgerError(() => openNote(V.note!.replace('cryptography', 'cryptographY'), key), 'bad_signature');
  });

  it('refuses a note with no signature by the key with unknown_key, and ignores other signers', () => {
    const other = generateKeyPair().privateKey;
    expectLedgerError(() => openNote(signNote(V.text!, 'Other', other), key), 'unknown_key');
    const cosigned = `${V.note!.slice(0, -1)}\n${signNote(V.text!, 'Other', other).split('\n\n')[1]}`;
    expect(openNote(cosigned, key)).toBe(V.text);
  });
});

describe('signed notes: malformed input, a case per part', () => {
  const key = parseVerifierKey(V.verifier_key!);
  const [text, sigLine] = [V.text!, V.note!.split('\n\n')[1]!.trimEnd()];
  const cases: [string, string, LedgerErrorCode][] = [
    ['no final newline', V.note!.slice(0, -1), 'malformed_note'],
    ['no blank line', `${text}${sigLine}\n`, 'malformed_note'],
    ['a signature line without the dash', `${text}\n${sigLine.slice(2)}\n`, 'malformed_note'],
    ['a signature line with a third field', `${text}\n${sigLine} extra\n`, 'malformed_note'],
    ['a signature that is not base64', `${text}\n— PeterNeumann not*base64\n`, 'malformed_note'],
    ['a signature shorter than a key hash', `${text}\n— PeterNeumann AAAA\n`, 'malformed_note'],
    ['a truncated signature (its key hash still names the key)', `${text}\n${sigLine.slice(0, -8)}\n`, 'bad_signature'],
    ['an empty signature section', `${text}\n\n`, 'malformed_note'],
  ];
  it.each(cases)('throws a LedgerError for %s', (_name, note, code) => expectLedgerError(() => openNote(note, key), code));

  const keys: [string, string][] = [
    ['no parts', 'PeterNeumann'],
    ['a short hash', 'PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['a wrong hash', 'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['another name', 'PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['a wrong algorithm', 'PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['a short key', 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10'],
    ['a space in the name', 'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
  ];
  it.each(keys)('refuses a verifier key with %s', (_name, text) => expectLedgerError(() => parseVerifierKey(text), 'malformed_key'));
});

describe('checkpoints', () => {
  const root = hashLeaf(Buffer.from('x'));

  it('formats origin, size and base64 root, each on its own line, and parses them back', () => {
    const body = formatCheckpoint({ origin: 'ppn.example/ledger', size: 42, root });
    expect(body).toBe(`ppn.example/ledger\n42\n${root.toString('base64')}\n`);
    expect(parseCheckpoint(body)).toEqual({ origin: 'ppn.example/ledger', size: 42, root, extensions: [] });
  });

  it('keeps extension lines', () => {
    expect(parseCheckpoint(`o\n1\n${root.toString('base64')}\nextra line\n`).extensions).toEqual(['extra line']);
  });

  it('round-trips inside a signed note', () => {
    const { privateKey } = generateKeyPair();
    const body = formatCheckpoint({ origin: 'ppn.example/ledger', size: 7, root });
    const note = signNote(body, 'ppn.example/ledger', privateKey);
    expect(parseCheckpoint(openNote(note, parseVerifierKey(verifierKeyText('ppn.example/ledger', privateKey))))).toMatchObject({ size: 7 });
  });

  const b64 = root.toString('base64');
  const bad: [string, string][] = [
    ['no final newline', `o\n1\n${b64}`],
    ['no origin', `\n1\n${b64}\n`],
    ['a negative size', `o\n-1\n${b64}\n`],
    ['a size with a leading zero', `o\n01\n${b64}\n`],
    ['a size that is not a number', `o\nten\n${b64}\n`],
    ['a size beyond 2^53', `o\n99999999999999999\n${b64}\n`],
    ['a short root', `o\n1\n${b64.slice(4)}\n`],
    ['a root that is not base64', `o\n1\n${'!'.repeat(44)}\n`],
    ['no root', 'o\n1\n'],
    ['an empty extension line', `o\n1\n${b64}\n\n`],
  ];
  it.each(bad)('refuses a checkpoint with %s', (_name, text) => expectLedgerError(() => parseCheckpoint(text), 'malformed_checkpoint'));
});
