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
  // metadata: RowDescription's table oid / column number, the catalog, arrays and int2vector
  r = await c.query(`SELECT * FROM ${table} WHERE id = 1`);
  assert.deepStrictEqual(r.fields.map(f => [f.name, f.dataTypeID, f.columnID]),
    [['id', 23, 1], ['name', 25, 2], ['amount', 1700, 3], ['ok', 16, 4], ['ts', 1184, 5]]);
  const rel = await c.query('SELECT relname FROM pg_class WHERE oid = $1', [r.fields[0].tableID]);
  assert.strictEqual(rel.rows[0].relname, table);
  const cols = await c.query(`SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS t, a.attnotnull
      FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 ORDER BY a.attnum`, [table]);
  assert.deepStrictEqual(cols.rows.map(x => [x.attname, x.t, x.attnotnull]), [['id', 'integer', true],
    ['name', 'text', false], ['amount', 'numeric(8,2)', false], ['ok', 'boolean', false],
    ['ts', 'timestamp with time zone', false]]);
  const ix = await c.query(`SELECT ARRAY[1,2]::int[] AS a, '{x,y}'::text[] AS b, i.indkey, c.relname
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass`, [table]);
  assert.deepStrictEqual(ix.rows.map(x => [x.a, x.b, x.indkey, x.relname]), [[[1, 2], ['x', 'y'], '1', `${table}_pkey`]]);
  console.log('ok metadata');
  await c.end();
  const pool = new Pool({ connectionString: dsn, max: 3 });
  const sums = await Promise.all([1, 2, 3, 4, 5].map(i => pool.query('SELECT $1::int * 2 AS v', [i])));
  assert.deepStrictEqual(sums.map(x => x.rows[0].v), [2, 4, 6, 8, 10]);
  await pool.end();
  console.log('ok pool');
  console.log('ALL OK');
}
main().catch(e => { console.error('FAIL', e); process.exit(1); });
