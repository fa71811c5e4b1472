// The scenario rows: behaviours a throughput number does not show. Each one starts the servers it
// needs and returns a table.
import type { Table } from '../report.js';
import type { Warmpool } from '../warmpool.js';
import { aws } from './aws.js';
import { bursts } from './bursts.js';
import { coldStart } from './cold-start.js';
import { memory } from './memory.js';
import { nagle } from './nagle.js';
import { stale } from './stale.js';

export interface ScenarioContext {
  quick: boolean;
  /** warmpool's module, or null when it did not load (its rows are then left out). */
  warmpool: Warmpool | null;
}

export interface Scenario {
  name: string;
  run(ctx: ScenarioContext): Promise<Table>;
}

export const scenarios: Scenario[] = [coldStart, bursts, nagle, stale, memory, aws];
