#!/usr/bin/env node
// Builds a JavaScript or TypeScript step directory into a stepbox step
// component. `stepbox build DIR` runs this with the toolchain it installed
// (see ../BUILDING.md); it also runs by hand:
//
//   node guest-sdk/js/build.mjs --step DIR --out FILE.wasm --toolchain CACHE [--wit WIT_DIR] [--work DIR]
//
//   --step DIR        the step directory (package.json + its entry module)
//   --out FILE        where the component goes
//   --toolchain DIR   a directory where `npm ci` ran on toolchain/package.json
//   --wit DIR         the `stepbox:step` WIT (default: ../../wit from here)
//   --work DIR        scratch directory, kept (default: a fresh temp dir, removed)
//
// What it does:
// 1. Finds the entry: package.json "stepbox.entry", else "main", else the
//    first of step.ts, step.mts, step.js, step.mjs, src/step.ts, src/step.js.
// 2. Bundles src/entry.js of this SDK (which imports the entry's `run` and
//    exports the world's `run`) into one ES module with rolldown: TypeScript
//    is stripped by rolldown (no type check), `@stepbox/sdk` resolves to this
//    SDK, other packages from the step's node_modules, then the toolchain's
//    (the SDK's own `yaml`). `stepbox:*` and `wasi:*` stay imports.
// 3. Assembles one WIT directory: wit/step-js.wit of this SDK, the stepbox
//    WIT as a dependency, and the WASI 0.2.12 packages jco ships.
// 4. Runs componentize-js (StarlingMonkey) on the bundle for world
//    stepbox:step-js/step, without the `fetch-event` feature (a step serves
//    no requests) and, unless the bundle calls `fetch(`, without `http`:
//    a step that makes no requests does not import wasi:http at all. One
//    that does gets `fetch` over wasi:http, which the host allows per the
//    policy's `outbound:` list. Then writes the component.
//
// Prints the component's path as the last line of stdout. Exit code 1 and a
// message on stderr on any failure.

import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const SDK_DIR = dirname(fileURLToPath(import.meta.url));
const ENTRY_CANDIDATES = ['step.ts', 'step.mts', 'step.js', 'step.mjs', 'src/step.ts', 'src/step.js'];
const WASI_VERSION = '0.2.12';
const WASI_PACKAGES = ['wasi-filesystem', 'wasi-io', 'wasi-clocks'];
/** The virtual module name src/entry.js imports the step from. */
const STEP_MODULE = '__stepbox_step__';

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

/** The step's entry module, from package.json or the usual names. */
export function findEntry(stepDir) {
  const manifestPath = join(stepDir, 'package.json');
  let manifest = {};
  if (existsSync(manifestPath)) {
    try {
      manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    } catch (e) {
      fail(`${manifestPath} is not valid JSON: ${e.message}`);
    }
  }
  const named = manifest.stepbox?.entry ?? manifest.main;
  if (named) {
    const path = resolve(stepDir, named);
    if (!existsSync(path)) fail(`${manifestPath} names ${named} as the entry, but ${path} does not exist`);
    return path;
  }
  for (const candidate of ENTRY_CANDIDATES) {
    const path = join(stepDir, candidate);
    if (existsSync(path)) return path;
  }
  return fail(
    `no entry module in ${stepDir}: write step.js or step.ts exporting run(ctx), ` +
      `or name it in package.json ("main" or "stepbox": {"entry": ...})`,
  );
}

async function copyWitFiles(from, to) {
  await mkdir(to, { recursive: true });
  const names = (await readdir(from)).filter((n) => n.endsWith('.wit'));
  if (names.length === 0) fail(`no .wit files in ${from}`);
  for (const name of names) await copyFile(join(from, name), join(to, name));
}

/** One WIT directory holding the JS world and everything it depends on. */
async function assembleWit(witDir, toolchain, work) {
  const out = join(work, 'wit');
  await mkdir(out, { recursive: true });
  await copyFile(join(SDK_DIR, 'wit', 'step-js.wit'), join(out, 'step-js.wit'));
  await copyWitFiles(witDir, join(out, 'deps', 'stepbox-step'));
  const builtin = join(toolchain, 'node_modules', '@bytecodealliance', 'jco', 'lib', 'wit', 'builtin', WASI_VERSION);
  for (const pkg of WASI_PACKAGES) {
    await copyWitFiles(join(builtin, pkg), join(out, 'deps', pkg));
  }
  return out;
}

/** Whether the bundled step calls the global `fetch` (then it gets wasi:http). */
function usesFetch(source) {
  return /\bfetch\s*\(/.test(source);
}

async function bundle(entry, stepDir, toolchain) {
  const { rolldown } = await import(pathToFileURL(join(toolchain, 'node_modules', 'rolldown', 'dist', 'index.mjs')).href);
  const build = await rolldown({
    input: join(SDK_DIR, 'src', 'entry.js'),
    cwd: stepDir,
    platform: 'neutral',
    // Type annotations are stripped; tsconfig.json of the step (if any) is read for its options.
    tsconfig: existsSync(join(stepDir, 'tsconfig.json')) ? join(stepDir, 'tsconfig.json') : undefined,
    external: [/^stepbox:/, /^wasi:/],
    logLevel: 'warn',
    onLog(level, log, handler) {
      if (log.code === 'IMPORT_IS_UNDEFINED' && /Import `run`/.test(log.message)) {
        fail(`${entry} does not export a function run(ctx): write \`export function run(ctx) { ... }\``);
      }
      handler(level, log);
    },
    resolve: {
      alias: {
        '@stepbox/sdk': join(SDK_DIR, 'src', 'index.js'),
        [STEP_MODULE]: entry,
      },
      mainFields: ['module', 'main'],
      modules: ['node_modules', join(toolchain, 'node_modules')],
    },
  });
  try {
    const { output } = await build.generate({ format: 'esm', codeSplitting: false });
    const chunks = output.filter((o) => o.type === 'chunk');
    if (chunks.length !== 1) fail(`bundling produced ${chunks.length} chunks; dynamic import() is not supported in a step`);
    return chunks[0].code;
  } finally {
    await build.close();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      step: { type: 'string' },
      out: { type: 'string' },
      toolchain: { type: 'string' },
      wit: { type: 'string' },
      work: { type: 'string' },
    },
  });
  if (!values.step || !values.out || !values.toolchain) {
    fail('usage: node build.mjs --step DIR --out FILE.wasm --toolchain DIR [--wit DIR] [--work DIR]');
  }
  const stepDir = resolve(values.step);
  const out = resolve(values.out);
  const toolchain = resolve(values.toolchain);
  const witDir = resolve(values.wit ?? join(SDK_DIR, '..', '..', 'wit'));
  const componentizeJs = join(toolchain, 'node_modules', '@bytecodealliance', 'componentize-js', 'src', 'componentize.js');
  if (!existsSync(componentizeJs)) {
    fail(`no componentize-js in ${toolchain}: run npm ci there with ${join(SDK_DIR, 'toolchain')}/package*.json`);
  }

  const entry = findEntry(stepDir);
  const work = values.work ? resolve(values.work) : await mkdtemp(join(tmpdir(), 'stepbox-js-build-'));
  await mkdir(work, { recursive: true });
  try {
    const started = Date.now();
    const source = await bundle(entry, stepDir, toolchain);
    const bundlePath = join(work, 'step.bundle.js');
    await writeFile(bundlePath, source);
    const bundled = Date.now();

    const wit = await assembleWit(witDir, toolchain, work);
    const { componentize } = await import(pathToFileURL(componentizeJs).href);
    // componentize-js maps the working directory to / for the engine while it
    // pre-initializes the bundle: run it from the scratch directory.
    const cwd = process.cwd();
    process.chdir(work);
    let component;
    try {
      ({ component } = await componentize({
        sourcePath: bundlePath,
        witPath: wit,
        worldName: 'stepbox:step-js/step',
        disableFeatures: usesFetch(source) ? ['fetch-event'] : ['http', 'fetch-event'],
      }));
    } catch (e) {
      if (/Failed to initialize component|wizer.*trapped/s.test(String(e?.message ?? e))) {
        fail(
          `${entry} failed while the component was pre-initialized: its top-level code runs at build time, ` +
            'where host calls (input, kube, helm, fs, ...) trap; make them inside run(ctx).\n' +
            String(e?.message ?? e).split('\n').slice(0, 3).join('\n'),
        );
      }
      throw e;
    } finally {
      process.chdir(cwd);
    }
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, component);
    const done = Date.now();
    console.error(
      `built ${basename(entry)}: bundle ${(source.length / 1024).toFixed(0)} KiB in ${bundled - started} ms, ` +
        `component ${(component.length / 1048576).toFixed(1)} MiB in ${done - bundled} ms`,
    );
    console.log(out);
  } finally {
    if (!values.work) await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => fail(e?.stack ?? String(e)));
