/**
 * Worker threads over shared WASM memory. Every worker instantiates the same module on every arena's
 * memory; a job is one exported kernel called with a range argument pair (r0, r1) split across the
 * parts. Jobs are posted through a shared control block (Atomics.notify / Atomics.wait, after a short spin),
 * never postMessage, so a job costs microseconds.
 *
 * Parts are claimed, not assigned: every participant (the calling thread included) takes the next unclaimed
 * part with one atomic add on a ticket word until none is left, and the job ends when every part is done. A
 * worker that is asleep or waiting for a core (a loaded machine) then costs nothing: the others do its part,
 * instead of the whole job waiting for it. The parts are the same ranges as a static split into `parts`, so
 * a kernel that keys scratch on its range (asm/delta_chunked.ts) still sees one part per slot.
 */
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import type { Arena } from "./arena.js";

// Control block slots (Int32).
const GEN = 0; // job generation: bumped to start a job
const DONE = 1; // workers finished with the current job
const FN = 2; // index into the function-name table
const ARENA = 3;
const NARGS = 4;
const SPLIT = 5; // index of r0 in the argument list (r1 follows)
const TOTAL = 6; // the range [0, TOTAL) to split
const ALIGN = 7; // part boundaries are multiples of this
const PARTS = 8; // participants in this job
const STOP = 9;
const ERROR = 10; // set by a worker whose kernel threw
const TICKET = 11; // next part to claim, low 16 bits, with the job's part count above them (ticketWord)
const CTRL_SLOTS = 16;
const MAX_ARGS = 16;
/**
 * How long a waiting thread spins before it sleeps in Atomics.wait, in milliseconds. Waking a sleeping
 * thread costs tens of microseconds, as much as a small expert's matvec; a decode step posts its next job
 * within this. Spinning much longer loses on a busy machine, where a spinning thread takes the core from
 * the thread it waits for.
 */
const WORKER_SPIN_MS = 0.3;
const CALLER_SPIN_MS = 0.05;

/**
 * The ticket word of a job of `parts` parts: claiming adds 1 and reads part index (low 16 bits) and count
 * (above) in one atomic step, so a late claim can never pair one job's index with another job's count.
 */
const ticketWord = (parts: number): number => parts << 16;

/** [lo, hi) of part p of n over [0, total), boundaries aligned. Also defined in the workers' source. */
export function partRange(total: number, n: number, p: number, align: number): [number, number] {
  const chunk = Math.ceil(total / n / align) * align;
  return [Math.min(total, p * chunk), Math.min(total, (p + 1) * chunk)];
}

/**
 * The worker, as source (a function whose only free name is `partRange`, defined beside it in the source),
 * run with `eval: true` so that no TypeScript loader is needed in the worker. `wt` is node:worker_threads, as
 * `require`d in the worker's source (a string, so that bundlers leave it alone; the browser explorer supplies
 * its own, web/src/platform/worker_threads.ts).
 */
export function workerMain(wt: typeof import("node:worker_threads")): void {
  const { module, memories, ctrlBuf, argsBuf, names, id, port, slots, spinMs } = wt.workerData;
  const [GEN, DONE, FN, ARENA, NARGS, SPLIT, TOTAL, ALIGN, PARTS, STOP, ERROR, TICKET] = slots;
  const ctrl = new Int32Array(ctrlBuf);
  const args = new Float64Array(argsBuf);
  const inst: Record<string, (...a: number[]) => unknown>[] = [];
  const add = (memory: WebAssembly.Memory) =>
    inst.push(new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error("abort"); } } }).exports as never);
  memories.forEach(add);
  let seen = Atomics.load(ctrl, GEN); // before "ready": the first job may be posted right after it
  wt.parentPort!.postMessage("ready");
  const a: number[] = [];
  for (;;) {
    const idleSince = performance.now();
    let spins = 0;
    while (Atomics.load(ctrl, GEN) === seen) {
      // Check the clock every 64 spins only: it costs more than an atomic load.
      if ((++spins & 63) === 0 && performance.now() - idleSince > spinMs) Atomics.wait(ctrl, GEN, seen);
    }
    seen = Atomics.load(ctrl, GEN);
    if (Atomics.load(ctrl, STOP)) break;
    // Claim parts until none is left. A claimed part keeps its job from ending, so the job's arguments,
    // written before its ticket word, stay as read here until this part is counted done.
    for (;;) {
      const t = Atomics.add(ctrl, TICKET, 1);
      const part = t & 0xffff;
      const n = t >>> 16;
      if (part >= n) break;
      try {
        const arena = ctrl[ARENA];
        while (inst.length <= arena) {
          const m = wt.receiveMessageOnPort(port);
          if (m) add(m.message);
          else Atomics.wait(ctrl, STOP, 0, 1);
        }
        const split = ctrl[SPLIT];
        const [lo, hi] = partRange(ctrl[TOTAL], n, part, ctrl[ALIGN]);
        if (lo < hi) {
          a.length = ctrl[NARGS];
          for (let i = 0; i < a.length; i++) a[i] = args[i];
          a[split] = lo;
          a[split + 1] = hi;
          inst[arena][names[ctrl[FN]]](...a);
        }
      } catch {
        Atomics.store(ctrl, ERROR, 1);
      }
      Atomics.add(ctrl, DONE, 1);
      Atomics.notify(ctrl, DONE);
    }
  }
}

export class ThreadPool {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(CTRL_SLOTS * 4));
  private readonly args = new Float64Array(new SharedArrayBuffer(MAX_ARGS * 8));
  private readonly names: string[];
  private readonly fnIndex = new Map<string, number>();
  private readonly ports: MessagePort[] = [];
  private readonly workers: Worker[] = [];
  private readonly argv: number[] = [];

  /** Participants including the calling thread. */
  readonly size: number;

  private constructor(threads: number, names: string[]) {
    this.size = threads;
    this.names = names;
    names.forEach((n, i) => this.fnIndex.set(n, i));
  }

  /** Starts threads - 1 workers on the given arenas; resolves when every worker is ready. */
  static async create(module: WebAssembly.Module, arenas: readonly Arena[], threads: number): Promise<ThreadPool> {
    const names = Object.keys(arenas[0].exports).filter((k) => typeof arenas[0].exports[k] === "function");
    const pool = new ThreadPool(threads, names);
    // `__name` covers transpilers that keep function names (esbuild keepNames) inside the stringified body.
    const source = `const __name = (f) => f;\nconst partRange = ${partRange.toString()};\n(${workerMain.toString()})(require("node:worker_threads"))`;
    const ready: Promise<unknown>[] = [];
    for (let id = 1; id < threads; id++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(source, {
        eval: true,
        workerData: {
          module,
          memories: arenas.map((a) => a.memory),
          ctrlBuf: pool.ctrl.buffer,
          argsBuf: pool.args.buffer,
          names,
          id,
          port: port2,
          slots: [GEN, DONE, FN, ARENA, NARGS, SPLIT, TOTAL, ALIGN, PARTS, STOP, ERROR, TICKET],
          spinMs: WORKER_SPIN_MS,
        },
        transferList: [port2],
      });
      ready.push(
        new Promise((resolve, reject) => {
          worker.once("message", resolve);
          worker.once("error", reject);
        }),
      );
      pool.workers.push(worker);
      pool.ports.push(port1);
    }
    await Promise.all(ready);
    // Idle workers must not keep the process alive.
    for (const w of pool.workers) w.unref();
    for (const p of pool.ports) p.unref();
    return pool;
  }

  /** Shares an arena opened after the pool started (workers pick it up before their next job on it). */
  addArena(arena: Arena): void {
    for (const p of this.ports) p.postMessage(arena.memory);
  }

  /**
   * Runs `fn(...args)` with args[split], args[split + 1] replaced by each participant's part of [0, total);
   * returns when all parts are done. `parts`: how many parts (at most the pool's size; small jobs use fewer).
   */
  run(arena: Arena, fn: string, args: readonly number[], split: number, total: number, align: number, parts = this.size): void {
    const id = this.fnIndex.get(fn);
    if (id === undefined) throw new Error(`no WASM kernel named ${fn}`);
    const n = Math.max(1, Math.min(parts, this.size));
    const c = this.ctrl;
    for (let i = 0; i < args.length; i++) this.args[i] = args[i];
    c[FN] = id;
    c[ARENA] = arena.index;
    c[NARGS] = args.length;
    c[SPLIT] = split;
    c[TOTAL] = total;
    c[ALIGN] = align;
    c[PARTS] = n;
    Atomics.store(c, DONE, 0);
    Atomics.store(c, TICKET, ticketWord(n)); // opens the job's parts to claims (after its arguments)
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    // Claim parts like the workers; whatever happens to ours, wait for every claimed part before returning
    // or throwing, so that no worker is still inside this job when the next one is posted.
    let failure: unknown = null;
    const a = this.argv;
    a.length = args.length;
    for (let i = 0; i < args.length; i++) a[i] = args[i];
    for (;;) {
      const part = Atomics.add(c, TICKET, 1) & 0xffff;
      if (part >= n) break;
      const [lo, hi] = partRange(total, n, part, align);
      if (lo < hi && !failure) {
        a[split] = lo;
        a[split + 1] = hi;
        try {
          (arena.exports[fn] as (...x: number[]) => void)(...a);
        } catch (e) {
          failure = e;
        }
      }
      Atomics.add(c, DONE, 1);
    }
    const want = n;
    const since = performance.now();
    let spins = 0;
    for (;;) {
      const done = Atomics.load(c, DONE);
      if (done >= want) break;
      if ((++spins & 63) === 0 && performance.now() - since > CALLER_SPIN_MS) Atomics.wait(c, DONE, done, 5);
    }
    // No part is left to claim (the caller's last claim found none), so a worker claiming late gets none.
    const workerFailed = Atomics.exchange(c, ERROR, 0) !== 0;
    if (failure) throw failure;
    if (workerFailed) throw new Error(`WASM kernel ${fn} failed in a worker thread`);
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const p of this.ports) p.close();
  }
}
