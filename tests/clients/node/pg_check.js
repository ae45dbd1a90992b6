// node-postgres: query, parameters (extended protocol), transaction commit/rollback, pool.
const { Client, Pool } = require('pg');
const assert = require('assert');
async function main() {
  const [dsn, table] = process.argv.slice(2);
  const c = new Client({ connectionString: dsn });
  await c.connect();
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text, amount numeric(8,2), ok boolean, ts timestamptz)`);
  for (let i = 1; i <= 3; i++) {
    const r = await c.query(`INSERT INTO ${table} VALUES ($1, $2, $3, $4, $5)`, [i, `n${i}`, `${i}.50`, i % 2 === 1, new Date(Date.UTC(2024, 0, i))]);
    assert.strictEqual(r.rowCount, 1);
  }
  let r = await c.query({ name: 'by-id', text: `SELECT name, amount, ok, ts FROM ${table} WHERE id = $1`, values: [2] });
  assert.deepStrictEqual([r.rows[0].name, r.rows[0].amount, r.rows[0].ok], ['n2', '2.50', false]);
  assert.strictEqual(r.rows[0].ts.toISOString(), '2024-01-02T00:00:00.000Z');
  r = await c.query({ name: 'by-id', text: `SELECT name, amount, ok, ts FROM ${table} WHERE id = $1`, values: [3] });
  assert.strictEqual(r.rows[0].name, 'n3');
  console.log('ok query/params');
  await c.query('BEGIN');
  await c.query(`INSERT INTO ${table} (id, name) VALUES (10, 'rolled back')`);
  await c.query('ROLLBACK');
  await c.query('BEGIN');
  await c.query(`INSERT INTO ${table} (id, name) VALUES (11, 'committed')`);
  await c.query('COMMIT');
  r = await c.query(`SELECT id FROM ${table} WHERE id >= 10 ORDER BY id`);
  assert.deepStrictEqual(r.rows.map(x => x.id), [11]);
  console.log('ok transaction');
  await assert.rejects(c.query(`INSERT INTO ${table} (id) VALUES (1)`), e => e.code === '23505');
  console.log('ok error code');
  await c.end();
  const pool = new Pool({ connectionString: dsn, max: 3 });
  const sums = await Promise.all([1, 2, 3, 4, 5].map(i => pool.query('SELECT $1::int * 2 AS v', [i])));
  assert.deepStrictEqual(sums.map(x => x.rows[0].v), [2, 4, 6, 8, 10]);
  await pool.end();
  console.log('ok pool');
  console.log('ALL OK');
}
main().catch(e => { console.error('FAIL', e); process.exit(1); });
