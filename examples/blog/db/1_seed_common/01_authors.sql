COPY blog.authors (email, name) FROM stdin;
ada@example.com	Ada Lovelace
grace@example.com	Grace Hopper
edsger@example.com	Edsger Dijkstra
\.
