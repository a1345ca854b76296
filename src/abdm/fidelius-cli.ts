/**
 * Command-line front end for src/abdm/fidelius.ts, argument-compatible with
 * the reference Fidelius CLI 1.2.0:
 *
 *   npm run fidelius -- gkm
 *     → {"privateKey", "publicKey", "x509PublicKey", "nonce"}
 *   npm run fidelius -- e <text> <senderNonce> <requesterNonce> <senderPrivateKey> <requesterPublicKey>
 *     → {"encryptedData"}
 *   npm run fidelius -- se <base64-of-text> <senderNonce> <requesterNonce> <senderPrivateKey> <requesterPublicKey>
 *     → {"encryptedData"}   (text given as base64 of its UTF-8 bytes, like the reference's "sane-encrypt")
 *   npm run fidelius -- d <encryptedData> <requesterNonce> <senderNonce> <requesterPrivateKey> <senderPublicKey>
 *     → {"decryptedData"}
 *
 * Long names generate-key-material / encrypt / sane-encrypt / decrypt also work.
 * `help` prints this usage. Output is JSON on stdout. Errors: one line on
 * stderr, exit code 2 for usage errors, 1 for invalid input or failed
 * decryption; never a stack trace.
 */
import { decrypt, encrypt, generateKeyMaterial } from './fidelius.js';

const USAGE = [
  'usage: fidelius gkm',
  '       fidelius e <text> <sender-nonce> <requester-nonce> <sender-private-key> <requester-public-key>',
  '       fidelius se <text-base64> <sender-nonce> <requester-nonce> <sender-private-key> <requester-public-key>',
  '       fidelius d <encrypted-data> <requester-nonce> <sender-nonce> <requester-private-key> <sender-public-key>',
].join('\n');

class UsageError extends Error {}

function needArgs(command: string, args: string[], count: number, names: string): void {
  if (args.length !== count) {
    throw new UsageError(`${command} takes ${count} arguments (${names}), got ${args.length}`);
  }
}

function decodeSaneText(b64: string): string {
  const s = b64.trim();
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) {
    throw new Error('text: not valid base64');
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(s, 'base64'));
  } catch {
    throw new Error('text: base64 does not decode to UTF-8');
  }
}

function run(argv: string[]): unknown {
  const [command, ...args] = argv;
  switch (command) {
    case 'gkm':
    case 'generate-key-material':
      needArgs(command, args, 0, 'none');
      return generateKeyMaterial();
    case 'e':
    case 'encrypt':
    case 'se':
    case 'sane-encrypt': {
      needArgs(command, args, 5, 'text, sender-nonce, requester-nonce, sender-private-key, requester-public-key');
      const [text, senderNonce, requesterNonce, senderPrivateKey, requesterPublicKey] = args;
      const plaintext = command === 'se' || command === 'sane-encrypt' ? decodeSaneText(text) : text;
      return {
        encryptedData: encrypt({ plaintext, senderNonce, requesterNonce, senderPrivateKey, requesterPublicKey }),
      };
    }
    case 'd':
    case 'decrypt': {
      needArgs(
        command,
        args,
        5,
        'encrypted-data, requester-nonce, sender-nonce, requester-private-key, sender-public-key',
      );
      const [encryptedData, requesterNonce, senderNonce, requesterPrivateKey, senderPublicKey] = args;
      return {
        decryptedData: decrypt({ encryptedData, requesterNonce, senderNonce, requesterPrivateKey, senderPublicKey }),
      };
    }
    case 'help':
    case 'h':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return undefined;
    case undefined:
      throw new UsageError('missing command');
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

try {
  const result = run(process.argv.slice(2));
  if (result !== undefined) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} catch (e) {
  const message = (e instanceof Error ? e.message : String(e)).split('\n')[0];
  if (e instanceof UsageError) {
    process.stderr.write(`fidelius: ${message} (see "fidelius help")\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`fidelius: ${message}\n`);
    process.exitCode = 1;
  }
}
