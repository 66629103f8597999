// SPDX-License-Identifier: Apache-2.0
/**
 * Checks every object in deploy/*.yaml against the JSON schema of its kind: Kubernetes' own OpenAPI schemas
 * (kubernetes-models) and KEDA's CRD schema (@kubernetes-models/keda): types, required fields and enums. Not checked:
 * a field the schema does not name (a typo such as `replica:` passes, as the schemas allow extra fields), and what
 * only a cluster knows (that the image exists, that the storage class offers ReadOnlyMany, that KEDA is installed).
 * Run by test/queue/deploy.test.ts.
 *
 *   node deploy/validate.mjs [FILE.yaml ...]      # default: every deploy/*.yaml but kustomization.yaml
 *
 * Prints one line per object; exits 1 when one does not validate.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The module holding the models of an apiVersion. */
function modelModule(apiVersion) {
  if (apiVersion === 'keda.sh/v1alpha1') return '@kubernetes-models/keda/keda.sh/v1alpha1';
  // The core group has no name: "v1" is kubernetes-models/v1.
  return `kubernetes-models/${apiVersion}`;
}

async function validate(file) {
  const failures = [];
  const documents = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  for (const document of documents) {
    if (document.errors.length > 0) {
      failures.push(`${file}: YAML: ${document.errors[0].message}`);
      continue;
    }
    const object = document.toJS();
    if (object === null) continue;
    const name = `${path.basename(file)}: ${object.kind}/${object.metadata?.name}`;
    let Model;
    try {
      Model = (await import(modelModule(object.apiVersion)))[object.kind];
    } catch {
      Model = undefined;
    }
    if (Model === undefined) {
      failures.push(`${name}: no schema for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    try {
      new Model(object).validate();
    } catch (error) {
      failures.push(`${name}: ${error.message}`);
      continue;
    }
    console.log(`ok ${name}`);
  }
  return failures;
}

const files = process.argv.length > 2
  ? process.argv.slice(2)
  : fs.readdirSync(here).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml')
    .sort().map((name) => path.join(here, name));
const failures = (await Promise.all(files.map(validate))).flat();
for (const failure of failures) console.error(`invalid ${failure}`);
process.exitCode = failures.length > 0 ? 1 : 0;
