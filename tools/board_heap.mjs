#!/usr/bin/env node
// The heap a board's pump takes after boot, on a 32-bit MicroPython (the WebAssembly port): what
// each board's build (build/<board>/, from `make mpy`: the .mpy modules, main.py, board.json)
// leaves of the board's GC heap once booted. Run by `make heap` (after make mpy).
//
//   node tools/board_heap.mjs [board ...]        default: rpi_pico esp32 pyboard
//
// For each board, in a fresh interpreter: the virtual port's modules (boards/virtual/<port>, the
// port's own on a board: built in, no heap) are imported first; then main.py runs with boot()
// captured, the config is loaded and the Pump is built as boot() builds it, without running it.
// Then the same with the journal, and with the journal and a link on a UART.
// Measured with gc.mem_alloc() after gc.collect(): the code (bytecode loaded from the .mpy, as
// on a board whose modules are not frozen) and the pump's objects, in bytes of a 32-bit heap.
// The wasm port's heap grows on demand, so this reports what boot takes, not what is left: free on
// a board is its GC heap (set by the port's linker script and its static data) less these figures.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PORTS = { rpi_pico: "rp2", esp32: "esp32", pyboard: "stm32" };
const BOARDS = Object.keys(PORTS);
// a link UART on pins each shipped board.json leaves free (as tests/boards/test_board_link.py)
const LINK = {
  rpi_pico: { port: "uart", uart: 1, tx_pin: 8, rx_pin: 9 },
  esp32: { port: "uart", uart: 2, tx_pin: 17, rx_pin: 16 },
  pyboard: { port: "uart", uart: 3 },
};
const PORT_MODULES = { rp2: ["machine", "rp2"], esp32: ["machine", "esp32"], stm32: ["machine", "pyb"] };

function copyTree(FS, src, dest, keep) {
  FS.mkdirTree(dest);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, ent.name);
    const d = dest + "/" + ent.name;
    if (ent.isDirectory()) {
      if (ent.name !== "__pycache__") copyTree(FS, s, d, keep);
    } else if (keep(ent.name)) {
      FS.writeFile(d, fs.readFileSync(s));
    }
  }
}

async function measure(pkg, board) {
  const build = path.join(ROOT, "build", board);
  if (!fs.existsSync(path.join(build, "main.py"))) {
    throw new Error(`build/${board} is not built (make mpy BOARD=${board})`);
  }
  const out = [];
  const mp = await pkg.loadMicroPython({ heapsize: 8 * 1024 * 1024, stdout: (l) => out.push(l), stderr: (l) => out.push(l) });
  const port = PORTS[board];
  copyTree(mp.FS, build, "/board", () => true);
  copyTree(mp.FS, path.join(ROOT, "boards", "virtual"), "/virtual", (n) => n.endsWith(".py"));
  // One runPython per step: on this port gc.collect() only marks a collection pending, run when
  // control is back in JavaScript (ports/webassembly/main.c, MICROPY_GC_SPLIT_HEAP_AUTO), so each
  // step ends with gc.collect() and the next reads gc.mem_alloc() after the collection ran.
  const steps = [
    `
import gc, os, sys, json
sys.path[:0] = ["/virtual/${port}", "/virtual", "/board"]
os.chdir("/board")
for _m in ${JSON.stringify(PORT_MODULES[port])}:
    __import__(_m)
import vflash  # the virtual flash (a board's is its chip): in no figure
# The virtual flash's bytes are the chip's on a board, not its heap: left out (each block a
# bytearray of n bytes: n + 16 on the heap at most); so is the pyb.Flash fake's one-sector cache
# (the stm32 port's is static RAM of its own: ports/stm32/flashbdev.c).
def _flash():
    n = sum(len(_x) + 16 for _c in vflash._chips.values() for _x in _c.blocks.values())
    _pyb = sys.modules.get("pyb")
    if _pyb is not None and _pyb._cache is not None:
        n += len(_pyb._cache[1]) + 16
    return n
gc.collect()`,
    `
_a0 = gc.mem_alloc()
import pumpboard
_made = []
def _capture(name, make_steps, path="board.json", fault_led=None, forever=True):
    _made.append((name, make_steps))
pumpboard.boot = _capture
with open("main.py") as _f:
    exec(_f.read(), {"__name__": "__main__"})
from firmware.config import load
with open("board.json") as _f:
    _cfg = load(_f.read(), _made[0][0])
_steps = _made[0][1](_cfg)
import hal.machine_adc, hal.machine_button, hal.machine_buzzer, hal.machine_clock, hal.machine_led, hal.machine_motor
import firmware.loop
gc.collect()`,
    `
_a1 = gc.mem_alloc()
_pump = pumpboard.Pump(_cfg, _steps)
gc.collect()`,
    `
_a2 = gc.mem_alloc()
print("HEAP", _a1 - _a0, _a2 - _a1)
del _pump, _cfg, _steps
gc.collect()`,
    `
_b = gc.mem_alloc()
# The same board with its journal (board.json "journal": the board's default regions, the one-time
# set-up of boards/README.md done on the virtual flash): what the journal adds.
import machine
machine.reset_fakes()
from hal import machine_storage
_region = machine_storage.defaults(_made[0][0])
vflash.set_up_journal(machine.PORT, _region)
with open("board.json") as _f:
    _data = json.loads(_f.read())
_data["journal"] = {}
_cfg = load(json.dumps(_data), _made[0][0])
_steps = _made[0][1](_cfg)
import firmware.persist, hal.machine_rtc
machine_storage.open_regions(_region)  # its port's module imported
gc.collect()`,
    `
_a3 = gc.mem_alloc()
_f3 = _flash()
_pump = pumpboard.Pump(_cfg, _steps)
gc.collect()`,
    `
_a4 = gc.mem_alloc()
print("JOURNAL", _a3 - _b - _f3, _a4 - _a3 - (_flash() - _f3))
del _pump, _cfg, _steps
machine.reset_fakes()
vflash.wipe()
vflash.set_up_journal(machine.PORT, _region)  # (the pyboard's: its fake's sector cache let go)
gc.collect()`,
    `
_b = gc.mem_alloc()
# ... and with the link on a UART besides (board.json "link"; pins the shipped board leaves free)
_data["link"] = ${JSON.stringify(LINK[board])}
_cfg = load(json.dumps(_data), _made[0][0])
_steps = _made[0][1](_cfg)
import hal.machine_link
gc.collect()`,
    `
_a5 = gc.mem_alloc()
_f5 = _flash()
_pump = pumpboard.Pump(_cfg, _steps)
gc.collect()`,
    `
print("LINK", _a5 - _b, gc.mem_alloc() - _a5 - (_flash() - _f5))`,
  ];
  for (const step of steps) mp.runPython(step);
  const nums = (tag) => {
    const line = out.find((l) => l.startsWith(tag + " "));
    if (!line) throw new Error(`${board}: no ${tag} measurement:\n${out.join("\n")}`);
    return line.split(" ").slice(1).map(Number);
  };
  const [codeBytes, pumpBytes] = nums("HEAP");
  const [journalCode, journalPump] = nums("JOURNAL");
  const [linkCode, linkPump] = nums("LINK");
  return { codeBytes, pumpBytes, journalCode, journalPump, linkCode, linkPump };
}

const pkg = await import("@micropython/micropython-webassembly-pyscript");
const boards = process.argv.slice(2).length ? process.argv.slice(2) : BOARDS;
let rc = 0;
for (const board of boards) {
  if (!PORTS[board]) {
    console.error(`board_heap: unknown board ${board}`);
    process.exit(2);
  }
  try {
    const { codeBytes, pumpBytes, journalCode, journalPump, linkCode, linkPump } = await measure(pkg, board);
    const mpy = fs
      .readdirSync(path.join(ROOT, "build", board), { recursive: true })
      .filter((n) => String(n).endsWith(".mpy"))
      .reduce((s, n) => s + fs.statSync(path.join(ROOT, "build", board, String(n))).size, 0);
    console.log(
      `${board}: ${mpy} B of .mpy; after boot on a 32-bit heap: code ${codeBytes} B + pump ${pumpBytes} B = ` +
        `${codeBytes + pumpBytes} B; its journal (board.json "journal") adds code ${journalCode} B + ` +
        `${journalPump - pumpBytes} B to the pump (${journalPump} B with it) = ${journalCode + journalPump - pumpBytes} B; ` +
        `its link on a UART then adds code ${linkCode} B + ${linkPump - journalPump} B = ` +
        `${linkCode + linkPump - journalPump} B`,
    );
  } catch (e) {
    console.error(`board_heap: ${board}: ${e && e.message ? e.message : e}`);
    rc = 1;
  }
}
process.exit(rc);
