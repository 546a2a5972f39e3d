/**
 * bytea or large objects for tarballs (docs/database.md "bytea or large objects"): the same
 * random (incompressible, like gzip) tarballs of several sizes written and read back both ways
 * against one PostgreSQL database. Prints, per size and way: median wall ms per write and per
 * read, client CPU µs per op (process.cpuUsage, steadier than wall time on a loaded box), and
 * the bytes the database used for them.
 *
 *   node build/scripts/bench/pg-tarball-bench.js postgres://… [--rounds N]
 *
 * Ways: `bytea` (one INSERT with the bytes as a binary parameter; one SELECT — the result comes as
 * hex text, which pg decodes: its binary result format decodes fields as UTF-8 text and so cannot
 * carry bytea), `lo` (lo_from_bytea in
 * the INSERT's transaction; lo_get), `lo-chunked` (lo_create + lowrite of 256 KiB chunks, what a
 * streaming writer does; loread of 256 KiB chunks).
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

const SIZES = [4 * 1024, 64 * 1024, 1024 * 1024, 8 * 1024 * 1024];
const CHUNK = 256 * 1024;
const INV_READ = 0x40000;
const INV_WRITE = 0x20000;

type Way = 'bytea' | 'lo' | 'lo-chunked';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function write(client: Client, way: Way, id: number, bytes: Buffer): Promise<void> {
  if (way === 'bytea') {
    await client.query({ name: 'w-bytea', text: 'INSERT INTO b_tarballs (id, bytes) VALUES ($1, $2)', values: [id, bytes] });
    return;
  }
  await client.query('BEGIN');
  if (way === 'lo') {
    await client.query({ name: 'w-lo', text: 'INSERT INTO l_tarballs (id, oid) VALUES ($1, lo_from_bytea(0, $2))', values: [id, bytes] });
  } else {
    const oid = (await client.query<{ oid: number }>('SELECT lo_create(0) AS oid')).rows[0].oid;
    const fd = (await client.query<{ fd: number }>('SELECT lo_open($1, $2) AS fd', [oid, INV_WRITE])).rows[0].fd;
    for (let offset = 0; offset < bytes.length; offset += CHUNK) await client.query({ name: 'w-low', text: 'SELECT lowrite($1, $2)', values: [fd, bytes.subarray(offset, offset + CHUNK)] });
    await client.query('SELECT lo_close($1)', [fd]);
    await client.query('INSERT INTO l_tarballs (id, oid) VALUES ($1, $2)', [id, oid]);
  }
  await client.query('COMMIT');
}

async function read(client: Client, way: Way, id: number): Promise<Buffer> {
  if (way === 'bytea') return (await client.query<{ bytes: Buffer }>({ name: 'r-bytea', text: 'SELECT bytes FROM b_tarballs WHERE id = $1', values: [id] })).rows[0].bytes;
  if (way === 'lo') return (await client.query<{ bytes: Buffer }>({ name: 'r-lo', text: 'SELECT lo_get(oid) AS bytes FROM l_tarballs WHERE id = $1', values: [id] })).rows[0].bytes;
  await client.query('BEGIN');
  const oid = (await client.query<{ oid: number }>('SELECT oid FROM l_tarballs WHERE id = $1', [id])).rows[0].oid;
  const fd = (await client.query<{ fd: number }>('SELECT lo_open($1, $2) AS fd', [oid, INV_READ])).rows[0].fd;
  const parts: Buffer[] = [];
  for (let i = 0; i < 100_000; i += 1) {
    const part = (await client.query<{ bytes: Buffer }>({ name: 'r-lor', text: 'SELECT loread($1, $2) AS bytes', values: [fd, CHUNK] })).rows[0].bytes;
    if (part.length === 0) break;
    parts.push(part);
  }
  await client.query('COMMIT');
  return Buffer.concat(parts);
}

async function main(): Promise<void> {
  const url = process.argv[2];
  if (!url || !/^postgres(ql)?:\/\//.test(url)) throw new Error('usage: pg-tarball-bench <postgres://…> [--rounds N]');
  const roundsAt = process.argv.indexOf('--rounds');
  const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 15;
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('DROP TABLE IF EXISTS b_tarballs; DROP TABLE IF EXISTS l_tarballs');
    await client.query('CREATE TABLE b_tarballs (id integer PRIMARY KEY, bytes bytea NOT NULL); ALTER TABLE b_tarballs ALTER COLUMN bytes SET STORAGE EXTERNAL');
    await client.query('CREATE TABLE l_tarballs (id integer PRIMARY KEY, oid oid NOT NULL)');
    const rows: string[] = ['size     way         write ms  read ms  write CPU µs  read CPU µs  stored bytes/tarball'];
    let id = 0;
    for (const size of SIZES) {
      const n = size >= 8 * 1024 * 1024 ? Math.max(3, Math.floor(rounds / 3)) : rounds;
      for (const way of ['bytea', 'lo', 'lo-chunked'] as Way[]) {
        const before = await storedBytes(client);
        const writes: number[] = [];
        const reads: number[] = [];
        const writeCpu: number[] = [];
        const readCpu: number[] = [];
        for (let round = 0; round < n; round += 1) {
          const bytes = randomBytes(size);
          id += 1;
          let cpu = process.cpuUsage();
          let start = performance.now();
          await write(client, way, id, bytes);
          writes.push(performance.now() - start);
          let used = process.cpuUsage(cpu);
          writeCpu.push(used.user + used.system);
          cpu = process.cpuUsage();
          start = performance.now();
          const back = await read(client, way, id);
          reads.push(performance.now() - start);
          used = process.cpuUsage(cpu);
          readCpu.push(used.user + used.system);
          if (!back.equals(bytes)) throw new Error(`${way} ${size}: bytes read back differ`);
        }
        await client.query('CHECKPOINT');
        const per = Math.round(((await storedBytes(client)) - before) / n);
        rows.push(
          `${String(size / 1024).padStart(5)} KiB ${way.padEnd(11)} ${median(writes).toFixed(2).padStart(8)} ${median(reads).toFixed(2).padStart(8)} ${String(Math.round(median(writeCpu))).padStart(13)} ${String(Math.round(median(readCpu))).padStart(12)}  ${per}`,
        );
      }
    }
    process.stdout.write(`${rows.join('\n')}\n`);
    await client.query('SELECT lo_unlink(oid) FROM l_tarballs');
    await client.query('DROP TABLE b_tarballs; DROP TABLE l_tarballs');
  } finally {
    await client.end();
  }
}

async function storedBytes(client: Client): Promise<number> {
  const row = (await client.query<{ n: string }>("SELECT (pg_total_relation_size('b_tarballs') + pg_total_relation_size('l_tarballs') + pg_total_relation_size('pg_largeobject'))::text AS n")).rows[0];
  return Number(row.n);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
