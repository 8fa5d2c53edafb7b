-- Unicode text, encoding conversion and a variety of types, printed as text.
\set VERBOSITY verbose
select 'héllo wörld' as latin, '日本語テキスト' as cjk, 'Ελληνικά' as greek, '🐘 elephant' as emoji,
       'עברית' as rtl, E'tab\there' as tab, E'new\nline' as newline;
select length('🐘日本é') as chars, octet_length('🐘日本é') as bytes, upper('straße ǆ') as up;
select chr(128024) as elephant, ascii('🐘') as code, U&'\0041\00e9\+01F418' as uescape;
select string_agg(chr(g), '') from generate_series(945, 969) g;
select 'x' || repeat('é', 3000) as many_accents;
set client_encoding to 'LATIN1';
select 'café' as latin1_ok;
select '日本' as not_in_latin1;
reset client_encoding;
select E'\\xdeadbeef'::bytea as bytea_hex, decode('00ff10', 'hex') as decoded;
set bytea_output = 'escape';
select E'\\xdeadbeef00'::bytea as bytea_escape;
reset bytea_output;
select 12345678901234567890.123456789::numeric as big_numeric, 'NaN'::numeric as nan,
       1e-20::float8 as tiny, 'Infinity'::float8 as inf, -0.0::float8 as negzero, 1.0/3 as third;
select '{1,2,3}'::int[] as arr, '{{a,b},{"c d",NULL}}'::text[] as arr2d, '{}'::int[] as empty;
select '{"a": [1, 2, {"b": null}], "ü": "ß"}'::jsonb as jb, '{"k":  "v"}'::json as js;
select int4range(1, 10) as r, '[2024-01-01,2024-02-01)'::daterange as dr;
select '192.168.1.0/24'::cidr as net, '08:00:2b:01:02:03'::macaddr as mac,
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as id;
select interval '1 year 2 months 3 days 04:05:06.789' as iv, date 'infinity' as dinf,
       time '23:59:59.999999' as t, timestamp '2000-01-01 00:00:00' as ts;
select point(1.5, 2) as p, box(point(0,0), point(1,1)) as b, B'1011' as bits,
       true as t, false as f, null::bool as n;
select row(1, 'a', null)::record as rec, (1, 'x') as anon;
select x'ff'::int as from_bits, 'abc'::name as nm, 'c'::"char" as ch, 42::oid as o;
select to_tsvector('english', 'The quick brown foxes jumped') as tsv;
select E'\u00e9' = 'é' as same_e;
