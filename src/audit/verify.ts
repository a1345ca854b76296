/**
 * `npm run audit:verify`: checks the audit trail's hash chain and names the
 * first event that does not verify. Uses MONGODB_URI, or the embedded
 * database in DATA_DIR (stop the server first, or point MONGODB_URI at it).
 * Exit code 0 when the chain is intact, 1 when it is broken.
 */
import { loadConfig } from '../config.js';
import { connectDatabase } from '../db/mongo.js';
import { AuditLog } from './log.js';

const config = loadConfig();
const database = await connectDatabase(config, (m) => console.error(m));
try {
  const result = await new AuditLog(database.db).verify();
  if (result.ok) console.log(`audit trail intact: ${result.count} events verified`);
  else console.log(`audit trail BROKEN at event ${result.brokenAt}: ${result.why} (${result.count} events read)`);
  process.exitCode = result.ok ? 0 : 1;
} finally {
  await database.close();
}
