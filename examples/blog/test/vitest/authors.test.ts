// One database for the whole file ({ per: 'file' }): these tests build on each other, in order.
import { useTestDatabase } from 'dbfast/vitest';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';

const db = useTestDatabase({ per: 'file' });
let client: pg.Client;

beforeAll(async () => {
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

afterAll(() => client.end());

test('an author signs up with an email that is unique whatever its case', async () => {
  await client.query(`INSERT INTO blog.authors (email, name) VALUES ('alan@example.com', 'Alan Turing')`);
  await expect(client.query(`INSERT INTO blog.authors (email, name) VALUES ('Alan@Example.com', 'Alan')`)).rejects.toMatchObject({ code: '23505' });
});

test('deleting the author deletes their posts and the comments on them', async () => {
  await client.query(`DELETE FROM blog.authors WHERE email = 'ada@example.com'`);
  const { rows } = await client.query(
    `SELECT (SELECT count(*)::int FROM blog.authors) AS authors, (SELECT count(*)::int FROM blog.posts) AS posts, (SELECT count(*)::int FROM blog.comments) AS comments`,
  );
  expect(rows).toEqual([{ authors: 3, posts: 200, comments: 402 }]);
});
