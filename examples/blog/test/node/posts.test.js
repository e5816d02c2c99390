// node --test test/node/: each test gets a fresh clone of the seeded template through withTestDatabase,
// which drops it afterwards, or keeps it and prints its URL when the test fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withTestDatabase } from 'dbfast/testing';
import pg from 'pg';

/** Runs `fn` with a client connected to `url`, closed afterwards (before dbfast drops the database). */
async function connected(url, fn) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

test('a draft has no publication time until it is published', (t) =>
  withTestDatabase(
    ({ url }) =>
      connected(url, async (client) => {
        const { rows } = await client.query(
          `INSERT INTO blog.posts (author_id, slug, title) SELECT id, 'draft', 'Draft' FROM blog.authors WHERE email = 'grace@example.com' RETURNING id, published_at`,
        );
        assert.equal(rows[0].published_at, null);
        await client.query(`UPDATE blog.posts SET status = 'published' WHERE id = $1`, [rows[0].id]);
        const published = await client.query(`SELECT published_at FROM blog.posts WHERE id = $1`, [rows[0].id]);
        assert.ok(published.rows[0].published_at instanceof Date);
      }),
    { test: t.name },
  ));

test('starts from the seeded data, without the draft of the other test', (t) =>
  withTestDatabase(
    ({ url }) =>
      connected(url, async (client) => {
        const { rows } = await client.query(`SELECT count(*)::int AS posts, count(*) FILTER (WHERE slug = 'draft')::int AS mine FROM blog.posts`);
        assert.deepEqual(rows, [{ posts: 300, mine: 0 }]);
      }),
    { test: t.name },
  ));

test('tags are searched through their index', (t) =>
  withTestDatabase(
    ({ url }) =>
      connected(url, async (client) => {
        await client.query(`UPDATE blog.posts SET tags = '{postgres}' WHERE slug = blog.slugify('Post 1 by Edsger Dijkstra')`);
        const { rows } = await client.query(`SELECT title FROM blog.posts WHERE tags @> '{postgres}'`);
        assert.deepEqual(rows, [{ title: 'Post 1 by Edsger Dijkstra' }]);
      }),
    { test: t.name },
  ));
