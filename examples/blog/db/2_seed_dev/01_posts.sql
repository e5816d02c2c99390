-- Development data: a few hundred posts and comments to click through.
INSERT INTO blog.posts (author_id, slug, title, body, status)
SELECT a.id,
       blog.slugify(format('Post %s by %s', n, a.name)),
       format('Post %s by %s', n, a.name),
       repeat('Lorem ipsum dolor sit amet. ', 20),
       CASE WHEN n % 3 = 0 THEN 'draft' ELSE 'published' END::blog.post_status
FROM blog.authors a CROSS JOIN generate_series(1, 100) AS n;

INSERT INTO blog.comments (post_id, body)
SELECT p.id, format('Comment %s on %s', n, p.slug)
FROM blog.posts p CROSS JOIN generate_series(1, 3) AS n
WHERE p.status = 'published';
