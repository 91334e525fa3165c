// Peer addresses as people and comparisons want them: an IPv4 peer on a dual-stack socket
// appears as `::ffff:a.b.c.d`, which is the same host as `a.b.c.d`. Pure.
export function plainAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:/, '');
}
