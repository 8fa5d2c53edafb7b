#!/usr/bin/env node
// Generates tests/fakes/stripe/spec.json, the compact description of the
// Stripe API (version 2023-08-16) that server.js loads, from Stripe's public
// OpenAPI document and its example fixtures.
//
//   node gen-spec.js [SPEC3_JSON] [FIXTURES3_JSON] [OUT]
//
// Defaults: /work/shared/reference/stripe/{spec3,fixtures3}.json -> ./spec.json.
// spec.json is checked in: neither the build nor the tests need the reference
// files; run this again only to refresh it from a newer spec.
'use strict';

const fs = require('fs');
const path = require('path');

const REF = '/work/shared/reference/stripe';
const specPath = process.argv[2] || path.join(REF, 'spec3.json');
const fixturesPath = process.argv[3] || path.join(REF, 'fixtures3.json');
const outPath = process.argv[4] || path.join(__dirname, 'spec.json');

const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
const fixtures = JSON.parse(fs.readFileSync(fixturesPath, 'utf8')).resources;

// Every operation on these paths is described; server.js implements the ones
// listed in its route table and answers the rest as "not implemented by the fake".
const PATHS = [
  '/v1/customers', '/v1/customers/{customer}',
  '/v1/products', '/v1/products/{id}',
  '/v1/prices', '/v1/prices/{price}',
  '/v1/coupons', '/v1/coupons/{coupon}',
  '/v1/subscriptions', '/v1/subscriptions/{subscription_exposed_id}',
  '/v1/invoices', '/v1/invoices/{invoice}',
  '/v1/payment_intents', '/v1/payment_intents/{intent}',
  '/v1/events', '/v1/events/{id}',
];

// Objects whose shape the fake returns.
const OBJECTS = [
  'customer', 'product', 'price', 'coupon', 'subscription', 'subscription_item',
  'invoice', 'line_item', 'payment_intent', 'event',
  'deleted_customer', 'deleted_product', 'deleted_coupon',
];

function resolveRef(ref) {
  const parts = ref.replace(/^#\//, '').split('/');
  let node = spec;
  for (const p of parts) node = node[p];
  return node;
}

// Reduce a request-parameter schema to what validation needs: type, enum,
// maxLength, format, properties/required, items, anyOf, additionalProperties.
function compactParam(schema, depth = 0) {
  if (!schema || depth > 12) return {};
  if (schema.$ref) return compactParam(resolveRef(schema.$ref), depth + 1);
  const out = {};
  if (schema.anyOf) {
    out.anyOf = schema.anyOf.map((s) => compactParam(s, depth + 1));
    return out;
  }
  if (schema.type) out.type = schema.type;
  if (schema.enum) out.enum = schema.enum;
  if (schema.maxLength !== undefined) out.maxLength = schema.maxLength;
  if (schema.format) out.format = schema.format;
  if (schema['x-stripeBypassValidation']) out.bypass = true;
  if (schema.properties) {
    out.properties = {};
    for (const [k, v] of Object.entries(schema.properties)) out.properties[k] = compactParam(v, depth + 1);
    if (schema.required && schema.required.length) out.required = schema.required.slice();
  }
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    out.additionalProperties = compactParam(schema.additionalProperties, depth + 1);
  }
  if (schema.items) out.items = compactParam(schema.items, depth + 1);
  return out;
}

// Describe one field of a response object: its type, whether it can be null,
// and for references the object type it points to.
function compactField(schema) {
  const out = {};
  if (schema.nullable) out.nullable = true;
  if (schema.$ref) { out.ref = schema.$ref.split('/').pop(); return out; }
  if (schema.anyOf) {
    out.anyOf = schema.anyOf.map((s) => (s.$ref ? { ref: s.$ref.split('/').pop() } : { type: s.type }));
    return out;
  }
  if (schema.type) out.type = schema.type;
  if (schema.enum) out.enum = schema.enum;
  if (schema.type === 'object' && schema.properties && schema.properties.object &&
      schema.properties.object.enum && schema.properties.object.enum[0] === 'list') {
    out.list = true;
    const item = schema.properties.data && schema.properties.data.items;
    if (item && item.$ref) out.items = item.$ref.split('/').pop();
  }
  return out;
}

const endpoints = [];
for (const p of PATHS) {
  const item = spec.paths[p];
  if (!item) throw new Error(`path ${p} is not in the spec`);
  for (const [method, op] of Object.entries(item)) {
    if (!['get', 'post', 'delete'].includes(method)) continue;
    const ep = { method: method.toUpperCase(), path: p, operationId: op.operationId };
    const pathParams = (op.parameters || []).filter((x) => x.in === 'path').map((x) => x.name);
    if (pathParams.length) ep.pathParams = pathParams;
    const query = (op.parameters || []).filter((x) => x.in === 'query');
    if (query.length) {
      ep.query = { type: 'object', properties: {} };
      const req = [];
      for (const q of query) {
        ep.query.properties[q.name] = compactParam(q.schema);
        if (q.required) req.push(q.name);
      }
      if (req.length) ep.query.required = req;
    }
    const body = op.requestBody && op.requestBody.content &&
      op.requestBody.content['application/x-www-form-urlencoded'];
    if (body && body.schema) ep.body = compactParam(body.schema);
    const ok = op.responses && op.responses['200'] && op.responses['200'].content &&
      op.responses['200'].content['application/json'].schema;
    if (ok) {
      if (ok.$ref) ep.returns = ok.$ref.split('/').pop();
      else if (ok.anyOf) ep.returns = ok.anyOf.map((s) => (s.$ref || '').split('/').pop());
      else if (ok.properties && ok.properties.object && ok.properties.data) {
        ep.returns = 'list';
        const it = ok.properties.data.items;
        if (it && it.$ref) ep.listOf = it.$ref.split('/').pop();
      }
    }
    endpoints.push(ep);
  }
}

const objects = {};
for (const name of OBJECTS) {
  const sc = spec.components.schemas[name];
  if (!sc) throw new Error(`schema ${name} is not in the spec`);
  const fields = {};
  for (const [k, v] of Object.entries(sc.properties || {})) fields[k] = compactField(v);
  objects[name] = {
    fields,
    required: sc.required || [],
    expandable: sc['x-expandableFields'] || [],
    // Fields present in Stripe's example object are the ones a response
    // carries by default; the rest of `fields` appear only when expanded.
    fixture: fixtures[name] || null,
  };
}

// Nested shapes the fake fills in (all fields present; missing ones null).
const SHAPES = [
  'address', 'shipping', 'invoice_setting_customer_setting', 'recurring', 'discount',
  'coupon_applies_to', 'cancellation_details', 'subscriptions_resource_pause_collection',
  'package_dimensions', 'invoices_status_transitions', 'invoice_line_item_period',
  'custom_unit_amount', 'transform_quantity', 'notification_event_request',
];
const shapes = {};
for (const name of SHAPES) {
  const sc = spec.components.schemas[name];
  if (!sc) throw new Error(`schema ${name} is not in the spec`);
  const fields = {};
  for (const [k, v] of Object.entries(sc.properties || {})) fields[k] = compactField(v);
  shapes[name] = { fields, required: sc.required || [] };
  if (fixtures[name]) shapes[name].fixture = fixtures[name];
}

const errorSchema = spec.components.schemas.api_errors;
const out = {
  generated_from: {
    spec: 'stripe/openapi spec3 (' + (spec.info && spec.info.version) + ')',
    api_version: spec.info && spec.info.version,
    note: 'generated by gen-spec.js; do not edit by hand',
  },
  api_version: spec.info && spec.info.version,
  error_fields: Object.keys(errorSchema.properties),
  error_types: errorSchema.properties.type.enum,
  endpoints,
  objects,
  shapes,
};

fs.writeFileSync(outPath, JSON.stringify(out) + '\n');
const kb = (fs.statSync(outPath).size / 1024).toFixed(1);
console.log(`wrote ${outPath}: ${endpoints.length} endpoints, ${OBJECTS.length} objects, ${kb} KiB`);
