DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'blog_reader') THEN
    CREATE ROLE blog_reader NOLOGIN;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA blog TO blog_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA blog TO blog_reader;
