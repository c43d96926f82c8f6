#!/usr/bin/env node
// daisee solc-js adapter: speaks enough of the native `solc` command line for py-solc-x and brownie
// (`--version`, `--standard-json` on stdin) on machines where only the npm `solc` package exists.
// Unlike `solcjs`, it prints no banner before the JSON, and it accepts `--allow-paths` (ignored:
// imports are read below the base and include paths, as native solc does with remappings).
"use strict";
const fs = require("fs");
const path = require("path");

function fail(message) {
  process.stderr.write(`solc adapter: ${message}\n`);
  process.exit(2);
}

function loadSolc() {
  const roots = [process.env.DAISEE_SOLCJS_ROOT, process.cwd(), __dirname].filter(Boolean);
  let resolved;
  try {
    resolved = require.resolve("solc", { paths: roots });
  } catch {
    fail("the npm package `solc` is not installed: run `npm ci` in the daisee project folder");
  }
  return require(resolved);
}

const FLAGS = ["--version", "--standard-json"];
const VALUE_OPTIONS = ["--base-path", "--include-path", "--allow-paths"];

function unsupportedArguments(args) {
  const unsupported = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (FLAGS.includes(arg) || VALUE_OPTIONS.some((name) => arg.startsWith(`${name}=`))) continue;
    if (VALUE_OPTIONS.includes(arg) && i + 1 < args.length) i += 1;
    else unsupported.push(arg);
  }
  return unsupported;
}

function optionValues(args, name) {
  const values = [];
  args.forEach((arg, i) => {
    if (arg === name && i + 1 < args.length) values.push(args[i + 1]);
    else if (arg.startsWith(`${name}=`)) values.push(arg.slice(name.length + 1));
  });
  return values;
}

function readImport(roots) {
  return (sourceUnit) => {
    for (const root of roots) {
      const file = path.resolve(root, sourceUnit);
      if (fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
    }
    return { error: `File not found below ${roots.join(", ")}: ${sourceUnit}` };
  };
}

const args = process.argv.slice(2);
const unsupported = unsupportedArguments(args);
if (unsupported.length > 0) {
  fail(`unsupported arguments ${JSON.stringify(unsupported)}: only --version and --standard-json are available`);
} else if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${loadSolc().version()}\n`);
} else if (args.includes("--standard-json")) {
  const solc = loadSolc();
  const input = fs.readFileSync(0, "utf8");
  const basePath = optionValues(args, "--base-path")[0] || process.cwd();
  const roots = [basePath, ...optionValues(args, "--include-path")];
  process.stdout.write(solc.compile(input, { import: readImport(roots) }));
} else {
  fail(`unsupported arguments ${JSON.stringify(args)}: only --version and --standard-json are available`);
}
