/** Facts about the machine a benchmark ran on (for the results table). */
import { execFileSync } from "node:child_process";
import os from "node:os";

export interface MachineFacts {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  v8: string;
  platform: string;
}

export function machineFacts(): MachineFacts {
  let cpu = os.cpus()[0]?.model ?? "unknown";
  try {
    const m = /^Model name:\s*(.+)$/m.exec(execFileSync("lscpu", { encoding: "utf8" }));
    if (m) cpu = m[1].trim();
  } catch {
    // lscpu is optional: os.cpus() named the model already.
  }
  return {
    cpu,
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.arch()}`,
  };
}
