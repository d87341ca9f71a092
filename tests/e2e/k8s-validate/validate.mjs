// Validates manifests rendered by `helm template` against the Kubernetes
// and Prometheus Operator OpenAPI schemas, offline:
// 1. each object's validator from kubernetes-models /
//    @kubernetes-models/prometheus-operator (generated from the OpenAPI
//    specs: types, formats, required fields, enums);
// 2. unknown fields at any depth. Those validators allow additional
//    properties (a misspelled `periodSecond` passes them), as the API
//    server's non-strict decoding drops such a field with only a warning.
//    So every object is also walked against the packages' TypeScript
//    interfaces, generated from the same OpenAPI definitions, with the
//    TypeScript compiler's type checker: a key that its type does not
//    declare fails (maps such as labels, declared as index signatures, take
//    any key).
// An object whose apiVersion/kind no package models fails too.
//
// usage: node validate.mjs RENDERED.yaml...   (run from the directory that
// holds node_modules: helm_test.sh copies this file there). Prints one line
// per object; exits 1 on any error.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import YAML from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const PROM = "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

// apiVersion/kind -> [module, interface]
function modelOf(apiVersion, kind) {
  if (apiVersion === "monitoring.coreos.com/v1") return [`${PROM}/${kind}`, `I${kind}`];
  return [`kubernetes-models/${apiVersion}/${kind}`, `I${kind}`];
}

function loadObjects(files) {
  const objs = [];
  for (const file of files) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
      const o = doc.toJS();
      if (o) objs.push({ file, o });
    }
  }
  return objs;
}

// One TypeScript program that names every root interface, so the checker
// can resolve each object's type.
function checkerFor(models) {
  const entry = path.join(here, `__roots-${process.pid}.ts`);
  const lines = [];
  models.forEach(([mod, iface], i) => {
    lines.push(`import type { ${iface} as T${i} } from "${mod}";`);
    lines.push(`export type Root${i} = T${i};`);
  });
  fs.writeFileSync(entry, lines.join("\n") + "\n");
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const src = program.getSourceFile(entry);
  fs.rmSync(entry, { force: true });
  const roots = [];
  for (const st of src.statements) {
    if (ts.isTypeAliasDeclaration(st)) roots.push(checker.getTypeAtLocation(st.name));
  }
  const unresolved = ts.getPreEmitDiagnostics(program, src);
  if (unresolved.length) {
    throw new Error(ts.flattenDiagnosticMessageText(unresolved[0].messageText, "\n"));
  }
  return { checker, roots };
}

// The object type(s) a value may take: unions without undefined/null.
function objectMembers(checker, type) {
  const t = checker.getNonNullableType(type);
  const members = t.isUnion() ? t.types : [t];
  return members.filter((m) => m.flags & ts.TypeFlags.Object);
}

function walk(checker, value, type, where, errors) {
  if (value === null || typeof value !== "object") return;
  const members = objectMembers(checker, type);
  if (!members.length) return; // string, number, IntOrString, ...
  if (Array.isArray(value)) {
    const arr = members.find((m) => checker.isArrayType(m));
    if (!arr) return;
    const elem = checker.getTypeArguments(arr)[0];
    value.forEach((v, i) => walk(checker, v, elem, `${where}[${i}]`, errors));
    return;
  }
  const obj = members.find((m) => !checker.isArrayType(m));
  if (!obj) return;
  const index = checker.getIndexInfoOfType(obj, ts.IndexKind.String);
  const props = checker.getPropertiesOfType(obj);
  if (!props.length && !index) return; // free-form (e.g. JSON fields)
  for (const [key, v] of Object.entries(value)) {
    const prop = obj.getProperty(key);
    if (prop) {
      walk(checker, v, checker.getTypeOfSymbol(prop), `${where}.${key}`, errors);
    } else if (index) {
      walk(checker, v, index.type, `${where}.${key}`, errors);
    } else {
      errors.push(`${where}.${key}: unknown field`);
    }
  }
}

async function main() {
  const files = process.argv.slice(2);
  if (!files.length) {
    console.error("usage: node validate.mjs RENDERED.yaml...");
    process.exit(2);
  }
  const objs = loadObjects(files);
  const keyOf = ({ o }) => modelOf(o.apiVersion, o.kind).join("#");
  const distinct = [...new Set(objs.map(keyOf))];
  const classes = {};
  const known = [];
  for (const k of distinct) {
    const [mod, iface] = k.split("#");
    try {
      classes[k] = (await import(mod))[iface.slice(1)];
      known.push([mod, iface]);
    } catch {
      classes[k] = null;
    }
  }
  const { checker, roots } = checkerFor(known);
  const rootOf = Object.fromEntries(known.map(([m, i], n) => [`${m}#${i}`, roots[n]]));
  let bad = 0;
  for (const item of objs) {
    const { o, file } = item;
    const name = `${path.basename(file)}: ${o.apiVersion}/${o.kind} ${o.metadata?.name}`;
    const k = keyOf(item);
    const errors = [];
    if (!classes[k]) {
      errors.push(`no schema for ${o.apiVersion}/${o.kind}`);
    } else {
      try {
        new classes[k](o).validate();
      } catch (e) {
        errors.push(String(e.message || e));
      }
      if (!checker.getPropertiesOfType(rootOf[k]).length) {
        errors.push(`cannot resolve the type of ${o.apiVersion}/${o.kind}`);
      }
      walk(checker, o, rootOf[k], "", errors);
    }
    if (errors.length) {
      bad++;
      console.log(`  FAIL ${name}`);
      for (const e of errors) console.log(`       ${e}`);
    } else {
      console.log(`  ok   ${name}`);
    }
  }
  console.log(`validate: ${objs.length - bad} valid, ${bad} invalid`);
  process.exit(bad || !objs.length ? 1 : 0);
}

main().catch((e) => {
  console.error(`validate: ${e.stack || e}`);
  process.exit(1);
});
