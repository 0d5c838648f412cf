// bull.mjs - BullMQ's side of the jobs benchmark (bench/jobs/run.sh).
//   node bull.mjs PORT throughput N | latency COUNT GAP_MS | recovery REPS TIMEOUT_MS | idle SECONDS
// Forks two worker processes, each a BullMQ Worker with concurrency 24 (as
// graphile-worker's), jobs added with addBulk in batches of 1,000 and
// removeOnComplete (nothing kept: BullMQ's documented way to keep Redis
// small and fast). Recovery uses BullMQ's fastest stall detection that is
// still safe for an empty job: lockDuration and stalledInterval 1 s (the
// defaults are 30 s each). Whether an added job is durable is Redis's
// setting: run.sh runs it both without persistence (the fastest) and with
// appendonly + appendfsync always (durable, as ward's answers).
import { Queue, Worker } from "bullmq";
import { latency, recovery, throughput, wakeups, Workers, workerSide } from "./common.mjs";

const [, script, first, cmd, a1, a2] = process.argv;
const QUEUE = "bench";
const STALL_MS = 1000;
const connection = (port) => ({ host: "127.0.0.1", port: Number(port), maxRetriesPerRequest: null });

if (first === "worker") {
  // forked as: bull.mjs worker PORT
  const side = workerSide();
  const w = new Worker(QUEUE, async (job) => {
    const d = job.data;
    if (d.crash && side.crashOnce(d.tag)) return new Promise(() => {}); // dies in it
    if (d.tag) side.called(d.tag);
    side.done();
  }, { connection: connection(cmd), concurrency: 24, lockDuration: STALL_MS, stalledInterval: STALL_MS,
       removeOnComplete: { count: 0 }, removeOnFail: { count: 0 } });
  w.on("error", (e) => console.error(`bullmq worker: ${e.message}`));
  await w.waitUntilReady();
  side.ready();
} else {
  const queue = new Queue(QUEUE, { connection: connection(first),
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true } });
  await queue.obliterate({ force: true });
  const workers = new Workers(script, [first]);
  await workers.start(2);
  let out;
  if (cmd === "throughput") {
    out = await throughput(workers, Number(a1), 1000, 1, (k) =>
      queue.addBulk(Array.from({ length: k }, () => ({ name: "empty", data: {} }))));
  } else if (cmd === "latency") {
    out = await latency(workers, Number(a1), Number(a2), (tag) => queue.add("empty", { tag }));
  } else if (cmd === "recovery") {
    out = await recovery(workers, Number(a1), Number(a2), (tag) => queue.add("empty", { tag, crash: true }));
  } else if (cmd === "idle") {
    out = await wakeups([...workers.pids(), Number(process.env.SERVER_PID)], Number(a1));
  } else {
    throw new Error(`unknown scenario ${cmd}`);
  }
  console.log(out);
  workers.stop();
  await queue.close();
  process.exit(0);
}
