#!/usr/bin/env node
/*
 * An independent verifier for Microcred's Open Badges 3.0 credentials.
 *
 * It checks the eddsa-rdfc-2022 Data Integrity proof with Digital Bazaar's implementations
 * (@digitalbazaar/vc, @digitalbazaar/data-integrity, @digitalbazaar/eddsa-rdfc-2022-cryptosuite,
 * jsonld-signatures), so interoperability is tested against code Microcred did not write.
 *
 * Offline: the document loader serves only the JSON-LD contexts bundled in
 * credentials/contexts/ (through its index.json) and the DID documents in a file the caller
 * gives; any other URL is an error.
 *
 * Usage: node verify.js CREDENTIAL.json DIDS.json [STATUS.json]
 *   DIDS.json: {"did:...": {DID document}, ...}
 *   STATUS.json: {"https://.../status/1/revocation": {BitstringStatusListCredential}, ...}
 * Prints a JSON result and exits 0 when verified, 1 when not, 2 on usage errors.
 * With STATUS.json, every credentialStatus entry is checked by Digital Bazaar's
 * @digitalbazaar/vc-bitstring-status-list (the list's proof, issuer and purpose, then the bit);
 * "status" in the result lists each entry's purpose and whether its bit is set, and a set bit
 * makes the credential not verified. Without it, status is not checked.
 */
import {readFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from
  '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as vc from '@digitalbazaar/vc';
import {checkStatus as checkBitstringStatus} from '@digitalbazaar/vc-bitstring-status-list';

const here = dirname(fileURLToPath(import.meta.url));
const contextDir = process.env.OB3_CONTEXT_DIR ||
  join(here, '..', '..', 'credentials', 'contexts');

function usage(message) {
  process.stderr.write(`${message}\nusage: node verify.js CREDENTIAL.json DIDS.json\n`);
  process.exit(2);
}

const [credentialPath, didsPath, statusPath] = process.argv.slice(2);
if(!credentialPath || !didsPath) {
  usage('two files are needed');
}

const index = JSON.parse(readFileSync(join(contextDir, 'index.json'), 'utf8'));
const contexts = new Map(Object.entries(index).map(
  ([url, file]) => [url, JSON.parse(readFileSync(join(contextDir, file), 'utf8'))]));
const dids = JSON.parse(readFileSync(didsPath, 'utf8'));
const statusLists = statusPath ? JSON.parse(readFileSync(statusPath, 'utf8')) : {};

function documentLoader(url) {
  if(Object.hasOwn(statusLists, url)) {
    return {contextUrl: null, documentUrl: url, document: statusLists[url]};
  }
  if(contexts.has(url)) {
    return {contextUrl: null, documentUrl: url, document: contexts.get(url)};
  }
  if(url.startsWith('did:')) {
    const [did, fragment] = url.split('#');
    const doc = dids[did];
    if(!doc) {
      throw new Error(`DID ${did} is not in ${didsPath}`);
    }
    if(!fragment) {
      return {contextUrl: null, documentUrl: url, document: doc};
    }
    const method = (doc.verificationMethod || []).find(
      m => m.id === url || m.id === `#${fragment}`);
    if(!method) {
      throw new Error(`${did} has no verification method #${fragment}`);
    }
    return {
      contextUrl: null,
      documentUrl: url,
      document: {'@context': 'https://w3id.org/security/multikey/v1', ...method}
    };
  }
  throw new Error(`not bundled and never fetched: ${url}`);
}

const credential = JSON.parse(readFileSync(credentialPath, 'utf8'));
const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022CryptoSuite});

let result;
let statusResult = null;
try {
  result = await vc.verifyCredential({
    credential,
    suite,
    documentLoader,
    checkStatus: statusPath ? async options => {
      statusResult = await checkBitstringStatus({...options, suite, documentLoader});
      return statusResult;
    } : async () => ({verified: true})
  });
} catch(e) {
  result = {verified: false, error: {name: e.name, message: e.message}};
}

const status = (statusResult?.results || []).map(r => ({
  statusPurpose: r.credentialStatus.statusPurpose,
  statusListCredential: r.credentialStatus.statusListCredential,
  set: r.status
}));
if(statusResult?.error) {
  result.verified = false;
}
const verified = !!result.verified && !status.some(s => s.set);

const errors = [];
const collect = err => {
  if(!err) {
    return;
  }
  if(Array.isArray(err)) {
    err.forEach(collect);
    return;
  }
  errors.push(err.message || String(err));
  if(err.errors) {
    collect(err.errors);
  }
};
collect(result.error);
(result.results || []).forEach(r => collect(r.error));
collect(statusResult?.error);
process.stdout.write(JSON.stringify({verified, status, errors}, null, 2) + '\n');
process.exit(verified ? 0 : 1);
