// The main thread's end of one passive task: learns its port, hands it the command, and turns the
// task's result into the transfer's outcome. The result is the only report of the end; 'started'
// travels on the task's port, which is not ordered with the result, so a result that says the
// transfer started delivers a 150 that has not arrived yet before the outcome.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { PassiveTask, TaskResult, ToMain, ToWorker, TransferCommand } from './messages.ts';
import type { OpenOptions, PassiveEndpoint, TransferOutcome } from './data-plane.ts';
import type { PassivePorts } from './passive-ports.ts';

interface PendingTransfer {
  readonly resolve: (outcome: TransferOutcome) => void;
  readonly onStarted: () => void;
  started: boolean;
}

function outcomeOf(result: TaskResult): TransferOutcome {
  if (result.type === 'done') return { ok: true, bytes: result.bytes };
  return { ok: false, failure: result.failure, message: result.message, bytes: result.bytes };
}

export class PassiveChannel implements PassiveEndpoint {
  port = 0;
  readonly #messages: MessagePort;
  #listening: { resolve: (channel: PassiveChannel) => void; reject: (error: Error) => void } | undefined;
  #pending: PendingTransfer | undefined;
  #result: TaskResult | undefined;

  constructor(messages: MessagePort) {
    this.#messages = messages;
    messages.on('message', (message: ToMain) => this.#receive(message));
  }

  listening(): Promise<PassiveChannel> {
    return new Promise((resolve, reject) => {
      this.#listening = { resolve, reject };
    });
  }

  #receive(message: ToMain): void {
    if (this.#result) return;
    switch (message.type) {
      case 'listening':
        this.port = message.port;
        this.#listening?.resolve(this);
        this.#listening = undefined;
        return;
      case 'started':
        this.#markStarted();
        return;
    }
  }

  #markStarted(): void {
    const pending = this.#pending;
    if (!pending || pending.started) return;
    pending.started = true;
    pending.onStarted();
  }

  /** The task finished (its result) or its worker died (a failure made up by the pool). */
  taskEnded(result: TaskResult): void {
    if (this.#result) return;
    if (result.started) this.#markStarted();
    this.#result = result;
    this.#listening?.reject(new Error(result.type === 'done' ? 'data task ended' : result.message));
    this.#listening = undefined;
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.resolve(outcomeOf(result));
    this.#messages.close();
  }

  /**
   * Ends with the task's result once it finishes; a task that could not finish (its worker died)
   * ends as `crashed` says. Resolves when the channel has ended.
   */
  follow(finished: Promise<TaskResult>, crashed: (error: unknown) => TaskResult): Promise<void> {
    return finished.then(
      (result) => this.taskEnded(result),
      (error: unknown) => this.taskEnded(crashed(error)),
    );
  }

  transfer(command: TransferCommand, onStarted: () => void): Promise<TransferOutcome> {
    if (this.#result) return Promise.resolve(outcomeOf(this.#result));
    return new Promise((resolve) => {
      this.#pending = { resolve, onStarted, started: false };
      this.#send({ type: 'transfer', command });
    });
  }

  cancel(): void {
    if (!this.#result) this.#send({ type: 'cancel' });
  }

  #send(message: ToWorker): void {
    this.#messages.postMessage(message);
  }
}

/** A new task for `options` and the channel that drives it; the task's port goes to its runner. */
export function openPassiveTask(
  options: OpenOptions,
  ports: PassivePorts,
  timeouts: { readonly acceptTimeoutMs: number; readonly stallTimeoutMs: number },
): { channel: PassiveChannel; task: PassiveTask } {
  const { port1, port2 } = new MessageChannel();
  const task: PassiveTask = {
    ...options,
    port: port2,
    low: ports.low,
    high: ports.high,
    firstPort: ports.nextStart(),
    acceptTimeoutMs: timeouts.acceptTimeoutMs,
    stallTimeoutMs: timeouts.stallTimeoutMs,
  };
  return { channel: new PassiveChannel(port1), task };
}
