// gw.mjs - graphile-worker's side of the jobs benchmark (bench/jobs/run.sh).
//   node gw.mjs CONNSTRING throughput N | latency COUNT GAP_MS | recovery REPS TIMEOUT_MS | idle SECONDS
// Forks two worker processes, each a graphile-worker runner with the
// configuration of graphile-worker's own performance page (the one behind
// its 183,000 jobs/s): concurrentJobs 24, maxPoolSize 25, localQueue size
// 500, completeJobBatchDelay and failJobBatchDelay 0; prepared statements on
// (the default), LISTEN/NOTIFY for new jobs (always on). Jobs are added with
// addJobs (one add_jobs call per batch of 1,000). PostgreSQL runs with its
// durable defaults (fsync, synchronous_commit on): an added job is durable.
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import { latency, recovery, throughput, wakeups, Workers, workerSide } from "./common.mjs";

const [, script, connectionString, cmd, a1, a2] = process.argv;
const quiet = new Logger(() => (level, message) => {
  if (level === "error") console.error(`graphile-worker: ${message}`);
});
const preset = {
  worker: {
    connectionString,
    concurrentJobs: 24,
    maxPoolSize: 25,
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
};

if (connectionString === "worker") {
  // forked as: gw.mjs worker CONNSTRING
  preset.worker.connectionString = cmd;
  const side = workerSide();
  await run({
    preset,
    logger: quiet,
    noHandleSignals: true,
    taskList: {
      empty: async (payload) => {
        if (payload.crash && side.crashOnce(payload.tag)) return new Promise(() => {}); // dies in it
        if (payload.tag) side.called(payload.tag);
        side.done();
      },
    },
  });
  side.ready();
} else {
  const utils = await makeWorkerUtils({ connectionString, logger: quiet });
  await utils.migrate();
  const workers = new Workers(script, [connectionString]);
  await workers.start(2);
  let out;
  if (cmd === "throughput") {
    out = await throughput(workers, Number(a1), 1000, 1, (k) =>
      utils.addJobs(Array.from({ length: k }, () => ({ identifier: "empty", payload: {} }))));
  } else if (cmd === "latency") {
    out = await latency(workers, Number(a1), Number(a2), (tag) => utils.addJob("empty", { tag }));
  } else if (cmd === "recovery") {
    out = await recovery(workers, Number(a1), Number(a2), (tag) =>
      utils.addJob("empty", { tag, crash: true }, { maxAttempts: 25 }));
  } else if (cmd === "idle") {
    out = await wakeups([...workers.pids(), Number(process.env.SERVER_PID)], Number(a1));
  } else {
    throw new Error(`unknown scenario ${cmd}`);
  }
  console.log(out);
  workers.stop();
  await utils.release();
  process.exit(0);
}
