ALTER TABLE blog.posts ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX posts_tags ON blog.posts USING gin (tags);
