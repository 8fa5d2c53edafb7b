-- COPY and \copy in both directions (relative paths are in the psql working directory).
\set VERBOSITY verbose
create temp table cp (id int primary key, name text, amount numeric, tags text[]);
copy cp from stdin;
1	one	1.5	{a,b}
2	two	\N	{}
3	thrée 🐘	-3.25	{"x y"}
\.
\copy cp from stdin with (format csv)
4,four,4,"{c}"
5,"fi,ve",,
\.
select * from cp order by id;
copy cp to stdout;
copy cp to stdout with (format csv, header);
copy (select id, name from cp where id < 3) to stdout with (format text, delimiter '|');
\copy cp to 'cp_out.txt'
\copy (select * from cp order by id desc) to 'cp_out.csv' with (format csv, header)
create temp table cp2 (like cp);
\copy cp2 from 'cp_out.txt'
\copy cp2 (id, name) from 'cp_in.csv' with (format csv)
select * from cp2 order by id;
copy cp from stdin;
10	ten	10	{}
bad	row	1	{}
\.
select count(*) from cp;
\copy cp from 'no_such_file.txt'
copy cp (id) from stdin;
6
7 extra
\.
copy cp to stdout with (format binary);
copy (select 1/0) to stdout;
copy no_such_table from stdin;
select 'still usable' as ok;
