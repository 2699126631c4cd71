// node-postgres against lakeforge serve sql: runs each query (argv after the connection string) with $1 = 3 when
// it has a parameter, and prints {fields: [[name, dataTypeID]], rows} as JSON, values as the server's raw text.
const { Client, types } = require("pg");
const raw = (value) => value;
for (const oid of [16, 17, 20, 21, 23, 700, 701, 1082, 1114, 1184, 1700]) types.setTypeParser(oid, raw);

async function main() {
  const [url, ...queries] = process.argv.slice(2);
  const client = new Client({ connectionString: url });
  await client.connect();
  const out = [];
  for (const text of queries) {
    const result = await client.query({ text, values: text.includes("$1") ? [3] : [], rowMode: "array" });
    out.push({ fields: result.fields.map((f) => [f.name, f.dataTypeID]), rows: result.rows });
  }
  await client.end();
  process.stdout.write(JSON.stringify(out));
}
main().catch((err) => { process.stderr.write(String(err.message || err) + "\n"); process.exit(1); });
