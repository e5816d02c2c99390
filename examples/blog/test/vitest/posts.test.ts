// Each test gets a fresh clone of the seeded template: what one test writes, the next never sees.
import { useTestDatabase } from 'dbfast/vitest';
import pg from 'pg';
import { afterEach, beforeEach, expect, test } from 'vitest';

const db = useTestDatabase();
let client: pg.Client;

beforeEach(async () => {
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

// Runs before the database is dropped: close what connects to it here.
afterEach(() => client.end());

test('publishing a post stamps when it was published', async () => {
  const { rows } = await client.query(
    `INSERT INTO blog.posts (author_id, slug, title, status)
     SELECT id, blog.slugify('Hello, World!'), 'Hello, World!', 'published' FROM blog.authors WHERE email = 'ADA@example.com'
     RETURNING slug, published_at`,
  );
  expect(rows).toEqual([{ slug: 'hello-world', published_at: expect.any(Date) }]);
});

test('starts from the seeded data, without the post of the other test', async () => {
  const { rows } = await client.query(`SELECT count(*)::int AS posts, count(*) FILTER (WHERE slug = 'hello-world')::int AS hello FROM blog.posts`);
  expect(rows).toEqual([{ posts: 300, hello: 0 }]);
});

test('a slug is unique', async () => {
  const duplicate = client.query(`INSERT INTO blog.posts (author_id, slug, title) SELECT author_id, slug, title FROM blog.posts LIMIT 1`);
  await expect(duplicate).rejects.toMatchObject({ code: '23505', constraint: 'posts_slug_key' });
});
