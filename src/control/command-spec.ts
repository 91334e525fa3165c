// The shape of one command table entry; the table itself is in commands.ts.
import type { Session } from './session.ts';

export type ArgumentRule = 'none' | 'required' | 'optional';

export interface CommandSpec {
  readonly handler: (session: Session, arg: string) => void | Promise<void>;
  /** Login needed. */
  readonly auth: boolean;
  /** Served on the plain control connection before AUTH TLS. */
  readonly beforeTls: boolean;
  readonly arg: ArgumentRule;
  /** Argument syntax for HELP. */
  readonly help: string;
  /** Lines this command adds to FEAT. */
  readonly feat?: readonly string[];
}

export type CommandTable = Readonly<Record<string, CommandSpec>>;
