// common.mjs - what the peers' drivers of the jobs benchmark share
// (bench/jobs/gw.mjs for graphile-worker, bench/jobs/bull.mjs for BullMQ):
// two worker processes forked from the driver, their reports over Node's IPC
// channel, the scenarios (throughput, latency, recovery), and the wakeup
// counter run.sh also uses for ward (`node common.mjs wakeups S PID...`).
//
// Times are process.hrtime.bigint(): CLOCK_MONOTONIC, the same clock in every
// process of the machine (and the clock bench/jobs/wardjobs.c uses).
import { fork } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const now = () => process.hrtime.bigint();
const ms = (ns) => Number(ns) / 1e6;
const sleep = (t) => new Promise((r) => setTimeout(r, t));

// ---- in a worker process: what it reports to the driver

// Count finished jobs; report the count and the time of the latest every 20 ms.
export function workerSide() {
  let count = 0, last = 0n, sent = 0;
  setInterval(() => {
    if (count !== sent) {
      process.send({ t: "count", count, last: String(last) });
      sent = count;
    }
  }, 20).unref();
  return {
    done() { count++; last = now(); },
    called(tag) { process.send({ t: "call", tag, at: String(now()) }); },
    // The first run of a crash job dies holding it (SIGKILL once the driver
    // knows when); a marker file in $BENCH_DIR says it crashed already. True
    // when it is dying.
    crashOnce(tag) {
      const marker = `${process.env.BENCH_DIR}/crashed-${tag}-${process.env.BENCH_RUN}`;
      if (existsSync(marker)) return false;
      writeFileSync(marker, "");
      process.send({ t: "crash", tag, at: String(now()) }, () => process.kill(process.pid, "SIGKILL"));
      return true;
    },
    ready() { process.send({ t: "ready" }); },
  };
}

// ---- in the driver

export class Workers {
  constructor(script, args) {
    process.env.BENCH_RUN ??= String(process.pid); // inherited by the workers: this run's crash markers
    this.script = script;
    this.args = args;
    this.procs = [];
    this.counts = new Map();
    this.lasts = new Map();
    this.waiters = [];
  }
  async start(n) {
    for (let i = 0; i < n; i++) await this.spawn();
  }
  spawn() {
    const p = fork(this.script, ["worker", ...this.args], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.procs.push(p);
    p.on("message", (m) => {
      if (m.t === "count") {
        this.counts.set(p.pid, m.count);
        this.lasts.set(p.pid, BigInt(m.last));
      }
      this.waiters = this.waiters.filter((w) => !w(m, p));
    });
    p.on("exit", () => {
      this.procs = this.procs.filter((q) => q !== p);
      this.waiters = this.waiters.filter((w) => !w({ t: "exit" }, p));
    });
    return this.next((m) => m.t === "ready", 60000, "a worker did not get ready");
  }
  // The next message for which pred is true (from any worker).
  next(pred, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((m, p) => {
        if (!pred(m, p)) return false;
        clearTimeout(timer);
        resolve({ m, p });
        return true;
      });
    });
  }
  total() {
    let s = 0;
    for (const c of this.counts.values()) s += c;
    return s;
  }
  lastDone() {
    let l = 0n;
    for (const v of this.lasts.values()) if (v > l) l = v;
    return l;
  }
  pids() { return this.procs.map((p) => p.pid); }
  stop() {
    for (const p of this.procs) p.kill("SIGKILL");
  }
}

// N jobs added in batches of `batch` (addBatch(k) adds k and resolves when
// they are stored), `inflight` batches at a time; until every worker's count
// adds up to N.
export async function throughput(workers, n, batch, inflight, addBatch) {
  const base = workers.total();
  const t0 = now();
  let left = n;
  const running = new Set();
  while (left > 0) {
    const k = Math.min(batch, left);
    left -= k;
    const p = addBatch(k).then(() => running.delete(p));
    running.add(p);
    if (running.size >= inflight) await Promise.race(running);
  }
  await Promise.all(running);
  const tEnq = now();
  const deadline = Date.now() + 300000;
  while (workers.total() - base < n) {
    if (Date.now() > deadline) throw new Error(`only ${workers.total() - base} of ${n} jobs done within 300 s`);
    await sleep(5);
  }
  const tDone = workers.lastDone();
  const s = (a) => ms(a - t0) / 1000;
  return `jobs=${n} enqueue_ms=${ms(tEnq - t0).toFixed(1)} done_ms=${ms(tDone - t0).toFixed(1)}` +
    ` enqueue_per_s=${(n / s(tEnq)).toFixed(0)} done_per_s=${(n / s(tDone)).toFixed(0)}`;
}

// One job at a time on idle workers: add sent -> the task called.
export async function latency(workers, count, gapMs, addOne) {
  const lat = [];
  for (let i = 0; i < count; i++) {
    await sleep(gapMs);
    const tag = `l${i}`;
    const called = workers.next((m) => m.t === "call" && m.tag === tag, 10000, `job ${tag} not called`);
    const t0 = now();
    await addOne(tag);
    const { m } = await called;
    lat.push(ms(BigInt(m.at) - t0));
  }
  lat.sort((a, b) => a - b);
  const pct = (p) => lat[Math.round(p * (lat.length - 1))].toFixed(3);
  const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
  return `samples=${count} median_ms=${pct(0.5)} p99_ms=${pct(0.99)} mean_ms=${mean.toFixed(3)} max_ms=${pct(1)}`;
}

// A job whose first run kills its process (SIGKILL) while holding it: the
// time until it is called again, in the other process (a replacement is
// forked at once, as a supervisor would restart it). Gives up after
// timeoutMs: "not recovered".
export async function recovery(workers, reps, timeoutMs, addCrashJob) {
  const rec = [];
  for (let i = 0; i < reps; i++) {
    await sleep(300);
    const tag = `c${i}`;
    const crashed = workers.next((m) => m.t === "crash" && m.tag === tag, 10000, `job ${tag} did not crash`);
    await addCrashJob(tag);
    const { m } = await crashed;
    const crashAt = BigInt(m.at);
    const again = workers.next((m2) => m2.t === "call" && m2.tag === tag, timeoutMs, "x");
    await sleep(50);
    await workers.spawn(); // the replacement of the killed process
    try {
      const { m: m2 } = await again;
      rec.push(ms(BigInt(m2.at) - crashAt));
    } catch {
      return `samples=${rec.length} not_recovered_within_ms=${timeoutMs}`;
    }
  }
  rec.sort((a, b) => a - b);
  return `samples=${reps} median_ms=${rec[Math.floor(reps / 2)].toFixed(3)} max_ms=${rec[reps - 1].toFixed(3)}` +
    ` min_ms=${rec[0].toFixed(3)}`;
}

// ---- wakeups: context switches of processes and all their descendants

function switches(pid) {
  let sum = 0;
  let tasks;
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch { return 0; }
  for (const t of tasks) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/status`, "utf8");
      for (const k of ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]) {
        const m = st.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"));
        if (m) sum += Number(m[1]);
      }
    } catch { /* the thread ended */ }
  }
  return sum;
}

function withDescendants(roots) {
  const parent = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(d), ppid);
    } catch { /* gone */ }
  }
  const all = new Set(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, pp] of parent) if (all.has(pp) && !all.has(pid)) { all.add(pid); grew = true; }
  }
  return [...all];
}

// Context switches per second of the processes (and descendants), over `seconds`.
export async function wakeups(roots, seconds) {
  const pids = withDescendants(roots);
  const sum = () => pids.reduce((a, p) => a + switches(p), 0);
  const a = sum();
  await sleep(seconds * 1000);
  const b = sum();
  return `processes=${pids.length} seconds=${seconds} wakeups_per_s=${((b - a) / seconds).toFixed(1)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "wakeups") {
  const seconds = Number(process.argv[3]);
  console.log(await wakeups(process.argv.slice(4).map(Number), seconds));
}
