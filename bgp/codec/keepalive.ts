/** KEEPALIVE (RFC 4271 §4.4): a bare 19-byte header. */
export interface KeepaliveMessage {
  type: 'keepalive';
}
export const KEEPALIVE: KeepaliveMessage = Object.freeze({ type: 'keepalive' }) as KeepaliveMessage;
