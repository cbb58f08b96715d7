#!/usr/bin/env node
/*
 * The Digital Credentials Consortium's verifier (@digitalcredentials/verifier-core, the library
 * behind the DCC's VerifierPlus) run on a Microcred credential, offline.
 *
 * verifier-core fetches what it does not bundle (status list credentials, did:web documents,
 * JSON-LD contexts it does not ship, the credentialSchema) with the global fetch. Here the
 * global fetch is replaced, before the library loads, by one that answers from local files
 * only: the JSON-LD contexts bundled in credentials/contexts/ (through its index.json) and the
 * documents in WEB.json. Any other URL gets a 404. Everything else, the proof, status and
 * schema checks, is the library's own code.
 *
 * Usage: node dcc-verify.js CREDENTIAL.json WEB.json
 *   WEB.json: {"https://.../status/1/revocation": {document}, ...}
 * Prints {verified, status: {revocation: valid?, suspension: valid?}, log, errors, schema}
 * and exits 0 when verified (signature valid and every check in the log valid), 1 when not,
 * 2 on usage errors.
 */
import {readFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const contextDir = process.env.OB3_CONTEXT_DIR ||
  join(here, '..', '..', 'credentials', 'contexts');

const [credentialPath, webPath] = process.argv.slice(2);
if(!credentialPath || !webPath) {
  process.stderr.write('usage: node dcc-verify.js CREDENTIAL.json WEB.json\n');
  process.exit(2);
}

const index = JSON.parse(readFileSync(join(contextDir, 'index.json'), 'utf8'));
const web = new Map(Object.entries(index).map(
  ([url, file]) => [url, JSON.parse(readFileSync(join(contextDir, file), 'utf8'))]));
for(const [url, doc] of Object.entries(JSON.parse(readFileSync(webPath, 'utf8')))) {
  web.set(url, doc);
}
const requested = [];

globalThis.fetch = async (input, init) => {
  const url = typeof input === 'string' ? input :
    (input instanceof URL ? input.href : input.url);
  requested.push(url);
  const doc = web.get(url);
  const method = (init?.method || (typeof input === 'object' && input.method) || 'GET');
  if(doc === undefined) {
    return new Response(JSON.stringify({error: `not served offline: ${url}`}), {
      status: 404, headers: {'content-type': 'application/json'}
    });
  }
  return new Response(method === 'HEAD' ? null : JSON.stringify(doc), {
    status: 200, headers: {'content-type': 'application/json'}
  });
};

// The library logs some failures with console.log (e.g. a schema its ajv cannot compile):
// keep standard output for this script's one JSON result.
console.log = (...args) => process.stderr.write(args.join(' ') + '\n');
const {verifyCredential} = await import('@digitalcredentials/verifier-core');
const credential = JSON.parse(readFileSync(credentialPath, 'utf8'));
const result = await verifyCredential({credential, knownDIDRegistries: []});

const log = result.log || [];
const status = Object.fromEntries(log.filter(e => e.id.endsWith('_status')).map(
  e => [e.id.replace(/_status$/, ''), e.valid]));
const errors = (result.errors || []).map(e => `${e.name}: ${e.message}`);
for(const entry of log) {
  if(entry.error) {
    errors.push(`${entry.id}: ${entry.error.name}: ${entry.error.message}`);
  }
}
const signatureValid = log.some(e => e.id === 'valid_signature' && e.valid === true);
const verified = signatureValid && errors.length === 0 &&
  log.every(e => e.valid !== false || e.id === 'registered_issuer');
const schema = (result.additionalInformation || []).find(e => e.id === 'schema_check') ?? null;
process.stdout.write(JSON.stringify(
  {verified, status, log, errors, schema, requested}, null, 2) + '\n');
process.exit(verified ? 0 : 1);
