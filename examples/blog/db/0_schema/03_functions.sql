-- Publishing stamps the time once; a trigger keeps that rule in the database.
CREATE FUNCTION blog.stamp_published() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'published' AND NEW.published_at IS NULL THEN
    NEW.published_at := now();
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER posts_stamp_published
  BEFORE INSERT OR UPDATE ON blog.posts
  FOR EACH ROW EXECUTE FUNCTION blog.stamp_published();

CREATE FUNCTION blog.slugify(title text) RETURNS text LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
  SELECT trim(BOTH '-' FROM regexp_replace(lower(title), '[^a-z0-9]+', '-', 'g'));
END;
