// AUTH, PBSZ, PROT (RFC 2228/4217) and USER/PASS login with S3 keys.
import { setTimeout as sleep } from 'node:timers/promises';
import { Reply } from '../replies.ts';
import type { Session } from '../session.ts';
import { StorageError } from '../../storage/driver.ts';
import { log } from '../../log.ts';

export function auth(session: Session): void {
  if (session.tlsActive) {
    session.reply(Reply.BadSequence, 'TLS is already active.');
    return;
  }
  // The mechanism (TLS, SSL, TLS-C, TLS-P) is ignored: explicit TLS is the only kind served.
  session.reply(Reply.AuthAccepted, 'AUTH TLS successful.');
  session.upgradeToTls();
}

export function pbsz(session: Session): void {
  session.reply(Reply.CommandOk, 'PBSZ=0');
}

export function prot(session: Session, arg: string): void {
  const level = arg.trim().toUpperCase();
  if (level === 'P') {
    session.protection = 'P';
    session.reply(Reply.CommandOk, 'Protection level set to Private.');
  } else if (level === 'C') {
    if (!session.server.config.allowClearData) {
      session.reply(Reply.ProtLevelNotSupported, 'PROT C refused: data connections must be encrypted (PROT P).');
      return;
    }
    session.protection = 'C';
    session.reply(Reply.CommandOk, 'Protection level set to Clear.');
  } else if (level === 'S' || level === 'E') {
    session.reply(Reply.ProtLevelNotSupported, 'Protection level not supported; use PROT P.');
  } else {
    session.reply(Reply.NotImplementedParam, 'Unknown protection level; use PROT P.');
  }
}

export function user(session: Session, arg: string): void {
  session.pendingUser = arg;
  session.target = undefined;
  session.accessKeyId = undefined;
  session.reply(Reply.NeedPassword, 'Access key accepted; send the secret key with PASS.');
}

/** A banned address gets no more tries on any connection, this one included. */
function refuseBanned(session: Session): void {
  session.reply(Reply.ServiceNotAvailable, 'Too many failed logins; try again later.');
  session.close();
}

export async function pass(session: Session, arg: string): Promise<void> {
  const accessKeyId = session.pendingUser;
  if (accessKeyId === undefined) {
    session.reply(Reply.BadSequence, 'Send USER first.');
    return;
  }
  session.pendingUser = undefined;
  const guard = session.server.loginGuard;
  if (guard.isBanned(session.remoteAddress)) {
    refuseBanned(session);
    return;
  }
  let target;
  try {
    target = await session.server.authenticator.authenticate(accessKeyId, arg);
  } catch (error) {
    const message = error instanceof StorageError ? `${error.kind}: ${error.message}` : String(error);
    log.warn('login could not be checked', { session: session.id, user: accessKeyId, error: message });
    session.reply(Reply.ServiceNotAvailable, 'Storage is unreachable; try again later.');
    session.close();
    return;
  }
  if (!target) {
    session.server.metrics.logins.inc({ result: 'failed' });
    const delay = guard.failed(session.remoteAddress);
    log.info('login failed', { session: session.id, remote: session.remoteAddress, user: accessKeyId });
    await sleep(delay);
    session.reply(Reply.NotLoggedIn, 'Login incorrect.');
    if (guard.isBanned(session.remoteAddress)) refuseBanned(session);
    return;
  }
  session.server.metrics.logins.inc({ result: 'ok' });
  guard.succeeded(session.remoteAddress);
  session.target = target;
  session.accessKeyId = accessKeyId;
  session.cwd = '/';
  log.info('login', { session: session.id, remote: session.remoteAddress, user: accessKeyId });
  session.reply(Reply.LoggedIn, 'Logged in.');
}
