#!/usr/bin/env node
// Run the core test suite (tests/core/test_*.py) on MicroPython's WebAssembly port
// (@micropython/micropython-webassembly-pyscript, from package.json / `npm install`).
//
//   node tools/run_wasm.mjs [-v] [test_module ...]
//
// Environment:
//   WASM_TIMEOUT    seconds before the run is killed as hung (default 300)
//   WASM_HEAPSIZE   GC heap in bytes (default 2 MiB, as the unix port run)
//   WASM_PYSTACK    pystack size passed to loadMicroPython (default: the package's)
//
// The parent process only supervises: it re-runs this file as a child (`--child`) and
// kills it on timeout. This is needed because runPython() is synchronous: a hang inside
// MicroPython (e.g. an exception escaping while micropython.heap_lock() is held makes the
// port's traceback conversion spin) blocks the child's event loop, so a timer in the same
// process could never fire.
//
// The child copies every .py under firmware/, hal/ and tests/core/ (and sim/nor_flash.py) into the in-memory FS at
// /repo, runs tests/core/mprunner.py's main() with the module list and judges the run by the
// runner's last line ("N passed, M failed[, K skipped]") and its return value.

import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
const FS_ROOT = "/repo";
// sim/ is CPython's, but for the simulated hardware the core tests use on both runtimes.
const COPY_DIRS = ["firmware", "hal", "sim/__init__.py", "sim/nor_flash.py", "tests/core"];
const SUMMARY_RE = /^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/;

function parent(argv) {
  const timeoutS = Number(process.env.WASM_TIMEOUT || 300);
  const started = Date.now();
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--child", ...argv], {
    stdio: "inherit",
  });
  const timer = setTimeout(() => {
    console.error(
      `run_wasm: MicroPython (wasm) run did not finish within ${timeoutS}s; killing it (hang?)`,
    );
    child.kill("SIGKILL");
    process.exit(1);
  }, timeoutS * 1000);
  child.on("exit", (code, signal) => {
    clearTimeout(timer);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (signal) {
      console.error(`run_wasm: child killed by ${signal} after ${secs}s`);
      process.exit(1);
    }
    process.exit(code ?? 1);
  });
  child.on("error", (err) => {
    clearTimeout(timer);
    console.error(`run_wasm: could not start child: ${err}`);
    process.exit(1);
  });
}

function listPy(relDir) {
  // Every .py below ROOT/relDir (recursive), as paths relative to ROOT.
  const out = [];
  const abs = path.join(ROOT, relDir);
  if (!fs.existsSync(abs)) return out;
  if (fs.statSync(abs).isFile()) return [relDir];
  for (const ent of fs.readdirSync(abs, { withFileTypes: true })) {
    const rel = path.posix.join(relDir, ent.name);
    if (ent.isDirectory()) {
      if (ent.name === "__pycache__" || ent.name.startsWith(".")) continue;
      out.push(...listPy(rel));
    } else if (ent.isFile() && ent.name.endsWith(".py")) {
      out.push(rel);
    }
  }
  return out;
}

function mkdirs(FS, dir) {
  let cur = "";
  for (const part of dir.split("/").filter(Boolean)) {
    cur += "/" + part;
    try {
      FS.mkdir(cur);
    } catch (e) {
      // EEXIST is fine
      if (!FS.analyzePath(cur).exists) throw e;
    }
  }
}

async function child(argv) {
  let verbose = false;
  let modules = [];
  for (const a of argv) {
    if (a === "-v" || a === "--verbose") verbose = true;
    else modules.push(a.replace(/\.py$/, "").split("/").pop());
  }
  if (modules.length === 0) {
    modules = fs
      .readdirSync(path.join(ROOT, "tests/core"))
      .filter((n) => n.startsWith("test_") && n.endsWith(".py"))
      .map((n) => n.slice(0, -3))
      .sort();
  }

  let pkg;
  try {
    pkg = await import("@micropython/micropython-webassembly-pyscript");
  } catch (e) {
    console.error(`run_wasm: cannot load @micropython/micropython-webassembly-pyscript (run 'npm install'): ${e}`);
    process.exit(2);
  }

  const lines = [];
  const opts = {
    heapsize: Number(process.env.WASM_HEAPSIZE || 2 * 1024 * 1024),
    stdout: (line) => {
      lines.push(line);
      process.stdout.write(line + "\n");
    },
    stderr: (line) => {
      process.stderr.write(line + "\n");
    },
  };
  if (process.env.WASM_PYSTACK) opts.pystack = Number(process.env.WASM_PYSTACK);
  const mp = await pkg.loadMicroPython(opts);

  let nfiles = 0;
  for (const dir of COPY_DIRS) {
    for (const rel of listPy(dir)) {
      const dest = `${FS_ROOT}/${rel}`;
      mkdirs(mp.FS, path.posix.dirname(dest));
      mp.FS.writeFile(dest, fs.readFileSync(path.join(ROOT, rel)));
      nfiles++;
    }
  }
  mp.runPython("import sys\n_mprunner_version = sys.version");
  const version = mp.globals.get("_mprunner_version");
  console.log(`micropython (webassembly ${version}): ${nfiles} files in ${FS_ROOT}, heapsize=${opts.heapsize}`);

  const code = [
    "import sys",
    `sys.path.insert(0, ${JSON.stringify(FS_ROOT)})`,
    `sys.path.insert(0, ${JSON.stringify(FS_ROOT + "/tests/core")})`,
    "import mprunner",
    `_mprunner_rc = mprunner.main(${JSON.stringify(modules)}, root=${JSON.stringify(FS_ROOT)}, verbose=${verbose ? "True" : "False"})`,
  ].join("\n");

  let rc = null;
  let threw = null;
  try {
    mp.runPython(code);
    rc = mp.globals.get("_mprunner_rc");
  } catch (e) {
    // PythonError (incl. SystemExit); the runner's printed summary line is still the truth.
    threw = e;
    console.error(`run_wasm: runPython raised: ${e && e.message ? e.message : e}`);
  }

  const last = lines.filter((l) => l.trim() !== "").pop() || "";
  const m = SUMMARY_RE.exec(last.trim());
  if (!m) {
    console.error("run_wasm: the runner printed no 'N passed, M failed' summary line");
    process.exit(1);
  }
  const passed = Number(m[1]);
  const failed = Number(m[2]);
  if (failed > 0 || passed === 0) process.exit(1);
  if (threw !== null) process.exit(1);
  if (rc !== 0) {
    console.error(`run_wasm: runner returned ${rc}`);
    process.exit(1);
  }
  process.exit(0);
}

const args = process.argv.slice(2);
if (args[0] === "--child") {
  child(args.slice(1)).catch((e) => {
    console.error(`run_wasm: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  });
} else {
  parent(args);
}
