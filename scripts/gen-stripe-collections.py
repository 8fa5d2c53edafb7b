#!/usr/bin/env python3
"""Generate upstream/stripe_collections.{c,h} from Stripe's OpenAPI 3 spec.

Usage: python3 scripts/gen-stripe-collections.py [path/to/spec3.json]

The spec defaults to ../shared/reference/stripe/spec3.json relative to the repo root.
The output is checked in, so building and testing never need the spec; rerun this after
changing the collection list or the mapping below. Same input, byte-identical output.

Mapping (upstream/provider.h):
  - paths: list = GET /v1/<plural>, item = GET /v1/<plural>/{param} written as {id},
    create = POST on the list path, update = POST on the item path, delete = DELETE on the
    item path, each only if the spec has it. Collections in READ_ONLY get no write paths.
  - fields: every property of components.schemas.<object>. format unix-time -> timestamptz,
    integer -> bigint, number -> numeric, boolean -> boolean, string (enums too) -> text,
    an expandable reference (anyOf of a string and $refs, x-expansionResources) -> text
    (the id); objects, arrays, $refs and any other anyOf -> jsonb.
  - create / update: the name is a top-level form parameter of that operation's request
    body; required: listed in the create body's "required". `id` is never writable.
  - descriptions: whitespace runs become one space, at most MAX_DESC bytes (cut at a word
    boundary, ending "..."), C-escaped; non-ASCII as octal UTF-8 bytes so the source stays ASCII.
"""

import hashlib
import json
import os
import re
import sys

# (table name, API object name, list path); everything else comes from the spec.
COLLECTIONS = [
    ("customer", "customer", "/v1/customers"),
    ("product", "product", "/v1/products"),
    ("price", "price", "/v1/prices"),
    ("coupon", "coupon", "/v1/coupons"),
    ("subscription", "subscription", "/v1/subscriptions"),
    ("invoice", "invoice", "/v1/invoices"),
    ("payment_intent", "payment_intent", "/v1/payment_intents"),
]
# Treated as read-only by the project for now: no write paths and no writable fields,
# whatever the spec allows (the generated comment still lists what it accepts).
READ_ONLY = {"invoice", "payment_intent"}
# Written into the generated comment above a collection: what the mapping cannot tell.
NOTES = {
    "subscription": [
        "delete_path is Stripe's cancel (DELETE /v1/subscriptions/{id}), not a removal.",
        "`items` is a list object ({object, data, has_more, url}) when read, but the create / update",
        "param of that name is an array of item specs ({price, quantity, ...}).",
    ],
}

FORM = "application/x-www-form-urlencoded"
MAX_DESC = 300
MAX_LINE = 110

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SPEC = os.path.join(ROOT, "..", "shared", "reference", "stripe", "spec3.json")


def die(msg):
    sys.stderr.write("gen-stripe-collections: %s\n" % msg)
    sys.exit(1)


# ---- descriptions


def clean(text):
    return re.sub(r"\s+", " ", text or "").strip()


def truncate(text, limit=MAX_DESC):
    """At most limit bytes of UTF-8 (so also at most limit characters)."""
    if len(text.encode("utf-8")) <= limit:
        return text
    cut = text[: limit - 3]
    while len(cut.encode("utf-8")) > limit - 3:
        cut = cut[:-1]
    space = cut.rfind(" ")
    if space > 0:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "..."


def c_escape(text):
    out = []
    prev = ""
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "?" and prev == "?":
            out.append("\\?")  # "??x" would be a trigraph under -std=c11
        elif 0x20 <= ord(ch) < 0x7F:
            out.append(ch)
        else:
            out.extend("\\%03o" % b for b in ch.encode("utf-8"))
        prev = ch
    return "".join(out)


def c_string_chunks(text, width):
    """Splits text into C string literals (quoted) of at most width characters each,
    preferably after a space; a single over-long word is cut where it must be."""
    chunks = []
    cur = ""
    for word in re.findall(r"\S+\s*", text):
        if len(c_escape(cur + word)) + 2 <= width:
            cur += word
            continue
        if cur:
            chunks.append(cur)
            cur = ""
        while len(c_escape(word)) + 2 > width:
            n = len(word)
            while n > 1 and len(c_escape(word[:n])) + 2 > width:
                n -= 1
            soft = max(word.rfind(ch, 0, n) for ch in "/#-_.?&=")  # a URL's own separators
            if soft > n // 2:
                n = soft + 1
            chunks.append(word[:n])
            word = word[n:]
        cur = word
    if cur or not chunks:
        chunks.append(cur)
    return ['"%s"' % c_escape(c) for c in chunks]


def c_str(value):
    return "NULL" if value is None else '"%s"' % c_escape(value)


# ---- the spec


def schema_name(ref):
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        die("unexpected $ref %s" % ref)
    return ref[len(prefix):]


def field_type(prop):
    """The FIELD_* for a property of an object schema."""
    if "anyOf" in prop:
        alts = prop["anyOf"]
        strings = [a for a in alts if a.get("type") == "string"]
        refs = [a for a in alts if "$ref" in a]
        if "x-expansionResources" in prop and len(strings) == 1 and len(strings) + len(refs) == len(alts):
            return "FIELD_TEXT"
        return "FIELD_JSONB"
    if "$ref" in prop:
        return "FIELD_JSONB"
    t = prop.get("type")
    if t == "integer":
        return "FIELD_TIMESTAMPTZ" if prop.get("format") == "unix-time" else "FIELD_BIGINT"
    if t == "number":
        return "FIELD_NUMERIC"
    if t == "boolean":
        return "FIELD_BOOLEAN"
    if t == "string":
        return "FIELD_TEXT"
    if t in ("object", "array"):
        return "FIELD_JSONB"
    die("unmapped property %s" % json.dumps(prop)[:200])
    return None


def form_schema(op):
    if op is None:
        return {}
    body = op.get("requestBody", {}).get("content", {})
    if FORM not in body:
        die("%s has no %s body" % (op.get("operationId"), FORM))
    return body[FORM].get("schema", {})


def item_path_of(paths, list_path):
    pat = re.compile(re.escape(list_path) + r"/\{([a-z_]+)\}$")
    found = sorted(p for p in paths if pat.match(p) and "get" in paths[p])
    if len(found) != 1:
        die("item path for %s: %s" % (list_path, found or "none"))
    return found[0]


def build(spec, name, obj, list_path):
    paths = spec["paths"]
    schema = spec["components"]["schemas"].get(obj)
    if schema is None:
        die("no schema %s" % obj)
    if "get" not in paths.get(list_path, {}):
        die("no GET %s" % list_path)
    item = item_path_of(paths, list_path)
    item_id = re.sub(r"\{[a-z_]+\}$", "{id}", item)
    create_op = paths[list_path].get("post")
    update_op = paths[item].get("post")
    delete_op = paths[item].get("delete")
    create_schema = form_schema(create_op)
    update_schema = form_schema(update_op)
    create_params = create_schema.get("properties", {})
    update_params = update_schema.get("properties", {})
    create_required = set(create_schema.get("required", []))
    props = schema.get("properties", {})
    writable = name not in READ_ONLY

    fields = []
    for fname in sorted(props, key=lambda n: (n != "id", n)):
        prop = props[fname]
        desc = prop.get("description")
        if not clean(desc):  # a bare $ref: fall back to the request parameter's words
            desc = (create_params.get(fname) or update_params.get(fname) or {}).get("description")
        fields.append({
            "name": fname,
            "type": field_type(prop),
            "create": writable and fname != "id" and fname in create_params,
            "update": writable and fname != "id" and fname in update_params,
            "required": writable and fname != "id" and fname in create_required,
            "description": truncate(clean(desc)),
        })

    return {
        "name": name,
        "object": obj,
        "list_path": list_path,
        "item_path": item_id,
        "create_path": list_path if writable and create_op else None,
        "update_path": item_id if writable and update_op else None,
        "delete_path": item_id if writable and delete_op else None,
        "spec_item": item,
        "spec_ops": [m for m, op in (("create", create_op), ("update", update_op), ("delete", delete_op))
                     if op],
        "description": truncate(clean(schema.get("description"))),
        "fields": fields,
        "create_only": sorted(p for p in create_params if p not in props),
        "update_only": sorted(p for p in update_params if p not in props),
        "required_only": sorted(p for p in create_required if p not in props),
        "spec_required": sorted(p for p in create_required if p in props and p != "id"),
        "id_writable": [m for m, ps in (("create", create_params), ("update", update_params)) if "id" in ps],
        "spec_create": sorted(p for p in create_params if p in props and p != "id"),
        "spec_update": sorted(p for p in update_params if p in props and p != "id"),
    }


# ---- output


def wrap_comment(prefix, words):
    """Block comment lines: " * prefix w1, w2, ...", wrapped at MAX_LINE."""
    items = [w + "," for w in words[:-1]] + [w + "." for w in words[-1:]] or ["(none)."]
    lines = []
    cur = " * " + prefix
    for item in items:
        if len(cur) + 1 + len(item) > MAX_LINE:
            lines.append(cur)
            cur = " *    "
        cur += " " + item
    lines.append(cur)
    return lines


def emit_field(f):
    b = lambda v: "true" if v else "false"
    head = '    {"%s", %s, %s, %s, %s, ' % (c_escape(f["name"]), f["type"], b(f["create"]), b(f["update"]),
                                          b(f["required"]))
    one = head + c_str(f["description"]) + "},"
    if len(one) <= MAX_LINE:
        return [one]
    lines = [head.rstrip()]
    chunks = c_string_chunks(f["description"], MAX_LINE - 5 - 2)
    for i, ch in enumerate(chunks):
        lines.append("     " + ch + ("}," if i == len(chunks) - 1 else ""))
    return lines


def emit_collection(c):
    out = []
    n = c["name"]
    out.append("/* ---- %s (%s)" % (n, c["spec_item"]))
    out.append(" *")
    if n in READ_ONLY:
        out.append(" * Read-only for now: no write paths, no writable fields. The spec has %s;" %
                   (", ".join(c["spec_ops"]) or "no writes"))
        out.extend(wrap_comment("it accepts these object fields on create:", c["spec_create"]))
        out.extend(wrap_comment("and on update:", c["spec_update"]))
        if c["spec_required"]:
            out.extend(wrap_comment("and requires on create:", c["spec_required"]))
    out.extend(wrap_comment("Create params that are not object fields:", c["create_only"]))
    out.extend(wrap_comment("Update params that are not object fields:", c["update_only"]))
    if c["required_only"]:
        out.extend(wrap_comment("Required create params that are not object fields:", c["required_only"]))
    for m in c["id_writable"]:
        out.append(" * The %s params include `id` (a caller-chosen id); the id field stays read-only." % m)
    out.extend(" * " + line for line in NOTES.get(n, []))
    out.append(" */")
    out.append("static const provider_field %s_fields[] = {" % n)
    out.append("    /* name, type, create, update, required (on create), description */")
    for f in c["fields"]:
        out.extend(emit_field(f))
    out.append("};")
    out.append("")
    out.append("const provider_collection stripe_%s = {" % n)
    out.append('    .provider = "stripe",')
    for key in ("name", "object", "list_path", "item_path", "create_path", "update_path", "delete_path"):
        out.append("    .%s = %s," % (key, c_str(c[key])))
    one = "    .description = %s," % c_str(c["description"])
    if len(one) <= MAX_LINE:
        out.append(one)
    else:
        out.append("    .description =")
        chunks = c_string_chunks(c["description"], MAX_LINE - 8 - 1)
        for i, ch in enumerate(chunks):
            out.append("        " + ch + ("," if i == len(chunks) - 1 else ""))
    out.append("    .fields = %s_fields," % n)
    out.append("    .nfields = (int)(sizeof %s_fields / sizeof %s_fields[0])," % (n, n))
    out.append("};")
    return out


def banner(version, digest, what):
    return [
        "/*",
        " * %s: GENERATED by scripts/gen-stripe-collections.py; do not edit." % what,
        " *",
        " * From Stripe's OpenAPI 3 spec, API version %s (spec3.json, sha256 %s)." % (version, digest[:16]),
        " * Regenerate: python3 scripts/gen-stripe-collections.py [path/to/spec3.json]",
        " * (default ../shared/reference/stripe/spec3.json from the repo root).",
        " */",
    ]


def main():
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help")):
        sys.stderr.write(__doc__)
        sys.exit(2)
    spec_path = sys.argv[1] if len(sys.argv) == 2 else DEFAULT_SPEC
    try:
        with open(spec_path, "rb") as fp:
            raw = fp.read()
    except OSError as e:
        die("cannot read %s: %s" % (spec_path, e))
    spec = json.loads(raw.decode("utf-8"))
    version = spec.get("info", {}).get("version", "unknown")
    digest = hashlib.sha256(raw).hexdigest()
    colls = [build(spec, *c) for c in COLLECTIONS]

    h = banner(version, digest, "stripe_collections.h")
    h += [
        "#ifndef APIGRES_STRIPE_COLLECTIONS_H",
        "#define APIGRES_STRIPE_COLLECTIONS_H",
        "",
        '#include "upstream/provider.h"',
        "",
        "#define STRIPE_COLLECTIONS_VERSION \"%s\"" % version,
        "",
        "/* Every Stripe collection, NULL-terminated (provider_find). */",
        "extern const provider_collection *const stripe_collections[];",
        "",
    ]
    h += ["extern const provider_collection stripe_%s;" % c["name"] for c in colls]
    h += ["", "#endif"]

    src = banner(version, digest, "stripe_collections.c")
    src += [
        '#include "upstream/stripe_collections.h"',
        "",
        "#include <stddef.h>",
        "",
    ]
    for c in colls:
        src += emit_collection(c)
        src.append("")
    src.append("const provider_collection *const stripe_collections[] = {")
    src += ["    &stripe_%s," % c["name"] for c in colls]
    src += ["    NULL,", "};"]

    for name, lines in (("stripe_collections.h", h), ("stripe_collections.c", src)):
        path = os.path.join(ROOT, "upstream", name)
        text = "\n".join(lines) + "\n"
        with open(path + ".tmp", "w", encoding="ascii", newline="\n") as fp:
            fp.write(text)
        os.replace(path + ".tmp", path)
        print("wrote %s" % os.path.relpath(path, ROOT))
    for c in colls:
        print("  %-15s %3d fields, %2d create, %2d update, %d required" % (
            c["name"], len(c["fields"]), sum(f["create"] for f in c["fields"]),
            sum(f["update"] for f in c["fields"]), sum(f["required"] for f in c["fields"])))


if __name__ == "__main__":
    main()
