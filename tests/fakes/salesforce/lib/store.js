'use strict';
// In-memory org: records per object, Salesforce-like write validation, audit fields,
// derived fields, cascade deletes and the delete log behind getDeleted.
//
// Records are replaced, never mutated, on every write, so a query cursor that holds
// references keeps the snapshot it was opened on.

const { SCHEMA, getObject, STAGES } = require('./schema');
const { makeId, normalizeId } = require('./ids');
const { fmtDateTime, parseDateTimeLiteral } = require('./soql');
const seed = require('./seed');

const EMAIL_RE = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})(?:$|T)/;

// fields: null for errors raised while deserializing the body (Salesforce sends no "fields"
// key for those); an array for save-time errors.
const err = (code, message, fields = [], status = 400) => ({ code, message, fields, status });

function jsonToken(v) {
  if (typeof v === 'string') return ['VALUE_STRING', v];
  if (typeof v === 'number') return [Number.isInteger(v) ? 'VALUE_NUMBER_INT' : 'VALUE_NUMBER_FLOAT', String(v)];
  if (v === true) return ['VALUE_TRUE', 'true'];
  if (v === false) return ['VALUE_FALSE', 'false'];
  if (Array.isArray(v)) return ['START_ARRAY', '['];
  return ['START_OBJECT', '{'];
}

// Line/column of a key's value in the raw JSON text (1-based), like Jackson reports them.
function locate(raw, key) {
  if (!raw) return [1, 1];
  let i = raw.indexOf(`"${key}"`);
  if (i < 0) return [1, 1];
  i = raw.indexOf(':', i + key.length + 2) + 1;
  while (i < raw.length && /\s/.test(raw[i])) i++;
  const before = raw.slice(0, i);
  const line = before.split('\n').length;
  return [line, i - before.lastIndexOf('\n')];
}

function parserError(javaType, key, v, raw) {
  const [tok, text] = jsonToken(v);
  const [line, col] = locate(raw, key);
  return err(
    'JSON_PARSER_ERROR',
    `Cannot deserialize instance of ${javaType} from ${tok} value ${text} or request may be missing a required field at [line:${line}, column:${col}]`,
    null,
  );
}

function round(v, scale) {
  const m = 10 ** scale;
  return Math.round(v * m) / m;
}

class Store {
  constructor(opts = {}) {
    this.clock = opts.clock || (() => Date.now());
    this.orgCreated = 0;
    // The org's setup that the control API sets (compilePolicy): validation rules, records the
    // integration user may read but not edit, records another transaction holds locked.
    this.policy = this.compilePolicy({});
    this.reset({ empty: true });
  }

  nowMs() {
    return Math.floor(this.clock() / 1000) * 1000; // audit fields have whole seconds
  }

  reset(spec = {}) {
    this.tables = new Map(SCHEMA.list.map((o) => [o.name, new Map()]));
    this.deletedAt = new Map(SCHEMA.list.map((o) => [o.name, new Map()]));
    this.counters = new Map(SCHEMA.list.map((o) => [o.name, 0]));
    this.autoNumbers = new Map();
    this.dml = { creates: {}, updates: {}, deletes: {} };
    const now = this.nowMs();
    this.orgCreated = now - 40 * 86400000;
    this.rng = seed.prng(spec.seed ?? 42);
    this.seqAccountDomains = [];
    // Users always exist: every record needs an owner.
    const users = getObject('User');
    seed.USERS.forEach((u, i) => {
      const ts = this.orgCreated + i * 3600000;
      this._insert(users, { ...u, Name: `${u.FirstName} ${u.LastName}` }, null, ts, ts);
    });
    this.apiUserId = this.all('User')[0].Id;
    if (!spec.empty) {
      // A hand-entered small org: records arrive a few at a time, days apart.
      this.seedPast({
        accounts: spec.accounts ?? 10,
        contacts: spec.contacts ?? 40,
        leads: spec.leads ?? 10,
        opportunities: spec.opportunities ?? 8,
        products: spec.products ?? 5,
        invoices: spec.invoices ?? 5,
      }, { batch: 4 });
      this.dml = { creates: {}, updates: {}, deletes: {} };
    }
  }

  table(name) {
    return this.tables.get(name);
  }

  get(name, id) {
    const t = this.tables.get(name);
    return t ? t.get(id) || null : null;
  }

  getById(id) {
    const obj = SCHEMA.byPrefix.get(id.slice(0, 3));
    return obj ? this.get(obj.name, id) : null;
  }

  all(name) {
    return [...this.tables.get(name).values()];
  }

  count(name, includeDeleted = false) {
    let n = 0;
    for (const r of this.tables.get(name).values()) if (includeDeleted || !r.IsDeleted) n++;
    return n;
  }

  nextId(obj) {
    const n = this.counters.get(obj.name) + 1;
    this.counters.set(obj.name, n);
    return makeId(obj.keyPrefix, n);
  }

  // ------------------------------------------------------------ org setup (control API)
  // Checks and compiles the knobs validation_rules, readonly_records, locked_records,
  // unshared_records and duplicate_rules;
  // throws an Error whose message says what is wrong.
  compilePolicy(cfg) {
    const ids = (key) => {
      const out = new Set();
      for (const s of cfg[key] || []) {
        const id = normalizeId(s);
        if (!id) throw new Error(`${key}: not a record id: ${JSON.stringify(s)}`);
        out.add(id);
      }
      return out;
    };
    const rules = (cfg.validation_rules || []).map((r, i) => {
      const at = `validation_rules[${i}]`;
      if (!r || typeof r !== 'object') throw new Error(`${at}: not an object`);
      const obj = getObject(r.object);
      if (!obj) throw new Error(`${at}.object: no such object: ${r.object}`);
      const field = typeof r.field === 'string' && obj.fieldByLower.get(r.field.toLowerCase());
      if (!field) throw new Error(`${at}.field: no such field on ${obj.name}: ${r.field}`);
      if (typeof r.pattern !== 'string' || typeof r.message !== 'string') throw new Error(`${at}: pattern and message must be strings`);
      let errorField = field.name;
      if (r.error_field === null) errorField = null;
      else if (r.error_field !== undefined) {
        const ef = typeof r.error_field === 'string' && obj.fieldByLower.get(r.error_field.toLowerCase());
        if (!ef) throw new Error(`${at}.error_field: no such field on ${obj.name}: ${r.error_field}`);
        errorField = ef.name;
      }
      let re;
      try {
        re = new RegExp(r.pattern);
      } catch (e) {
        throw new Error(`${at}.pattern: ${e.message}`);
      }
      return { object: obj.name, field: field.name, re, message: r.message, errorField };
    });
    const dupRules = (cfg.duplicate_rules || []).map((r, i) => {
      const at = `duplicate_rules[${i}]`;
      if (!r || typeof r !== 'object') throw new Error(`${at}: not an object`);
      const obj = getObject(r.object);
      if (!obj) throw new Error(`${at}.object: no such object: ${r.object}`);
      if (!Array.isArray(r.fields) || !r.fields.length) throw new Error(`${at}.fields: a non-empty array of field names`);
      const fields = r.fields.map((name) => {
        const f = typeof name === 'string' && obj.fieldByLower.get(name.toLowerCase());
        if (!f) throw new Error(`${at}.fields: no such field on ${obj.name}: ${name}`);
        return f.name;
      });
      return {
        object: obj.name,
        fields,
        rule: typeof r.rule === 'string' ? r.rule : `Standard_${obj.name}_Duplicate_Rule`,
        matchRule: typeof r.match_rule === 'string' ? r.match_rule : `Standard_${obj.name}_Match_Rule_v1_1`,
      };
    });
    return { rules, readonly: ids('readonly_records'), locked: ids('locked_records'), unshared: ids('unshared_records'), dupRules };
  }

  // An update or delete of a record the integration user may not edit (sharing), or of one
  // another transaction holds locked. Salesforce refuses these before it looks at the body.
  writeBlocked(id) {
    if (this.policy.readonly.has(id)) return err('INSUFFICIENT_ACCESS_OR_READONLY', 'insufficient access rights on object id');
    if (this.policy.locked.has(id)) {
      return err('UNABLE_TO_LOCK_ROW', `unable to obtain exclusive access to this record or 1 records: ${id}`);
    }
    return null;
  }

  // Active validation rules, on the record as it would be saved (create and update): a rule
  // fires when its field's value matches its pattern. The error is the rule's own message,
  // on its error field (none: the top of the page).
  ruleViolation(obj, rec) {
    for (const r of this.policy.rules) {
      if (r.object !== obj.name || rec[r.field] == null || !r.re.test(String(rec[r.field]))) continue;
      return err('FIELD_CUSTOM_VALIDATION_EXCEPTION', r.message, r.errorField ? [r.errorField] : []);
    }
    return null;
  }

  // Unique fields (an External ID marked Unique): a value written may be on no other live
  // record; compared ignoring case unless the field is case-sensitive. Salesforce names the
  // field and the other record in the message and sends no fields.
  duplicateOf(obj, rec, changes) {
    for (const f of obj.fields) {
      if (!f.unique || !(f.name in changes) || rec[f.name] == null) continue;
      const norm = (v) => (f.caseSensitive ? String(v) : String(v).toLowerCase());
      const want = norm(rec[f.name]);
      for (const o of this.tables.get(obj.name).values()) {
        if (o.IsDeleted || o.Id === rec.Id || o[f.name] == null || norm(o[f.name]) !== want) continue;
        return err('DUPLICATE_VALUE', `duplicate value found: ${f.name} duplicates value on record with id: ${o.Id}`);
      }
    }
    return null;
  }

  // Active duplicate rules (action Block), an exact-match stand-in for Salesforce's matching
  // rules: a save that sets one of a rule's fields, with every field of the rule set, is
  // refused when live records of the object have the same values (ignoring case and the
  // spaces around). The error names the rule and the records it matched, as the REST API
  // does in duplicateResult. Sforce-Duplicate-Rule-Header: allowSave=true lets it through.
  duplicateRuleMatch(obj, rec, changes, ctx) {
    if (ctx.allowSave) return null;
    const norm = (v) => String(v).trim().toLowerCase();
    for (const r of this.policy.dupRules) {
      if (r.object !== obj.name || !r.fields.some((f) => f in changes) || r.fields.some((f) => rec[f] == null)) continue;
      const matches = [];
      for (const o of this.tables.get(obj.name).values()) {
        if (o.IsDeleted || o.Id === rec.Id || !r.fields.every((f) => o[f] != null && norm(o[f]) === norm(rec[f]))) continue;
        matches.push(o.Id);
      }
      if (!matches.length) continue;
      const message = 'Use one of these records?';
      const v = ctx.version || '59.0';
      const e = err('DUPLICATES_DETECTED', message, []);
      e.extra = {
        duplicateResult: {
          allowSave: false,
          duplicateRule: r.rule,
          duplicateRuleEntityType: obj.name,
          errorMessage: message,
          matchResults: [{
            entityType: obj.name,
            errors: [],
            matchEngine: 'ExactMatchEngine',
            matchRecords: matches.map((id) => ({
              additionalInformation: [],
              fieldDiffs: [],
              matchConfidence: 100.0,
              record: { attributes: { type: obj.name, url: `/services/data/v${v}/sobjects/${obj.name}/${id}` }, Id: id },
            })),
            rule: r.matchRule,
            size: matches.length,
            success: true,
          }],
        },
      };
      return e;
    }
    return null;
  }

  // ------------------------------------------------------------ validation
  // Validates a client field map for create/update. Returns {values} (canonical, by API
  // name) or {error}. raw is the request body text (for parser error positions).
  validate(obj, body, mode, ctx = {}) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      const [tok] = jsonToken(body);
      return { error: err('JSON_PARSER_ERROR', `Cannot deserialize instance of ${obj.name} from ${tok} value or request may be missing a required field at [line:1, column:1]`, null) };
    }
    const values = {};
    const entries = [];
    for (const key of Object.keys(body)) {
      if (key === 'attributes') continue;
      const field = obj.fieldByLower.get(key.toLowerCase());
      if (!field) {
        return { error: err('INVALID_FIELD', `No such column '${key}' on sobject of type ${obj.name}`, null) };
      }
      entries.push([key, field, body[key]]);
    }
    // Read-only fields
    const bad = [];
    for (const [, field, v] of entries) {
      if (field.name === 'Id') {
        if (mode === 'create') return { error: err('INVALID_FIELD_FOR_INSERT_UPDATE', 'cannot specify Id in an insert call', ['Id']) };
        if (v != null && normalizeId(String(v)) !== ctx.id) {
          return { error: err('INVALID_FIELD_FOR_INSERT_UPDATE', 'Unable to create/update fields: Id. Please check the security settings of this field and verify that it is read/write for your profile or permission set.', ['Id']) };
        }
        continue;
      }
      if (mode === 'create' ? !field.createable : !field.updateable) bad.push(field.name);
    }
    if (bad.length) {
      return {
        error: err(
          'INVALID_FIELD_FOR_INSERT_UPDATE',
          `Unable to create/update fields: ${bad.join(', ')}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
          bad,
        ),
      };
    }
    for (const [key, field, v] of entries) {
      if (field.name === 'Id') continue;
      const r = this.coerce(obj, field, key, v, ctx.raw);
      if (r.error) return r;
      values[field.name] = r.v;
    }
    return { values };
  }

  coerce(obj, field, key, v, raw) {
    const label = field.label;
    if (v !== null && typeof v === 'object') {
      const jt = { boolean: 'boolean', date: 'date', datetime: 'datetime', int: 'int', double: 'double', currency: 'double', percent: 'double' }[field.type] || 'String';
      return { error: parserError(jt, key, v, raw) };
    }
    switch (field.type) {
      case 'boolean': {
        if (v === null) return { v: false };
        if (typeof v === 'boolean') return { v };
        if (v === 'true' || v === 'false') return { v: v === 'true' };
        return { error: parserError('boolean', key, v, raw) };
      }
      case 'int':
      case 'double':
      case 'currency':
      case 'percent': {
        if (v === null || v === '') return { v: null };
        let n = v;
        if (typeof v === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(v)) n = Number(v);
        if (typeof n !== 'number' || !Number.isFinite(n)) {
          return { error: parserError(field.type === 'int' ? 'int' : 'double', key, v, raw) };
        }
        if (field.type === 'int') {
          if (!Number.isInteger(n)) return { error: parserError('int', key, v, raw) };
          if (Math.abs(n) >= 10 ** field.digits) {
            return { error: err('NUMBER_OUTSIDE_VALID_RANGE', `${label}: value outside of valid range on numeric field: ${v}`, [field.name]) };
          }
          return { v: n };
        }
        const rounded = round(n, field.scale);
        if (Math.abs(Math.trunc(rounded)) >= 10 ** (field.precision - field.scale)) {
          return { error: err('NUMBER_OUTSIDE_VALID_RANGE', `${label}: value outside of valid range on numeric field: ${v}`, [field.name]) };
        }
        return { v: rounded };
      }
      case 'date': {
        if (v === null || v === '') return { v: null };
        const m = typeof v === 'string' ? DATE_RE.exec(v) : null;
        const ok = m && !Number.isNaN(Date.parse(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`)) &&
          new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`).toISOString().startsWith(`${m[1]}-${m[2]}-${m[3]}`);
        if (!ok) return { error: parserError('date', key, v, raw) };
        return { v: `${m[1]}-${m[2]}-${m[3]}` };
      }
      case 'datetime': {
        if (v === null || v === '') return { v: null };
        const ms = typeof v === 'string' ? parseDateTimeLiteral(v) : null;
        if (ms === null) return { error: parserError('datetime', key, v, raw) };
        return { v: fmtDateTime(ms) };
      }
      case 'reference': {
        if (v === null || v === '') return { v: null };
        const s = String(v);
        const id = normalizeId(s);
        if (!id) return { error: err('MALFORMED_ID', `${label}: id value of incorrect type: ${s}`, [field.name]) };
        const target = SCHEMA.byPrefix.get(id.slice(0, 3));
        if (!target || !field.referenceTo.includes(target.name)) {
          return { error: err('FIELD_INTEGRITY_EXCEPTION', `${label}: id value of incorrect type: ${s}`, [field.name]) };
        }
        const rec = this.get(target.name, id);
        if (!rec) return { error: err('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id') };
        if (rec.IsDeleted) return { error: err('ENTITY_IS_DELETED', 'entity is deleted') };
        if (this.policy.unshared.has(id)) {
          return { error: err('INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY', `insufficient access rights on cross-reference id: ${id.slice(0, 15)}`) };
        }
        if (field.name === 'OwnerId' && rec.IsActive === false) {
          return { error: err('INACTIVE_OWNER_OR_USER', `operation performed with inactive user [${id}] as owner of ${obj.label.toLowerCase()}`) };
        }
        return { v: id };
      }
      default: {
        // text types
        if (v === null) return { v: null };
        const s = String(v);
        if (s === '') return { v: null }; // Salesforce stores empty text as null
        if (s.length > field.length) {
          return { error: err('STRING_TOO_LONG', `${label}: data value too large: ${s} (max length=${field.length})`, [field.name]) };
        }
        if (field.type === 'email' && !EMAIL_RE.test(s)) {
          return { error: err('INVALID_EMAIL_ADDRESS', `${label}: invalid email address: ${s}`, [field.name]) };
        }
        if (field.type === 'picklist' && field.restrictedPicklist && !field.picklistValues.some((p) => p.value === s)) {
          return { error: err('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `${label}: bad value for restricted picklist field: ${s}`, [field.name]) };
        }
        return { v: s };
      }
    }
  }

  requiredMissing(obj, rec) {
    const missing = obj.required.filter((f) => rec[f.name] == null).map((f) => f.name);
    if (!missing.length) return null;
    return err('REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing);
  }

  derive(obj, rec, changes, creating) {
    if (obj.name === 'Contact' || obj.name === 'Lead' || obj.name === 'User') {
      rec.Name = [rec.FirstName, rec.LastName].filter((x) => x).join(' ');
    }
    if (obj.name === 'Opportunity') {
      if ((creating || 'StageName' in changes) && !('Probability' in changes)) {
        rec.Probability = STAGES.has(rec.StageName) ? STAGES.get(rec.StageName) : rec.Probability;
      }
      rec.IsClosed = rec.StageName === 'Closed Won' || rec.StageName === 'Closed Lost';
      rec.IsWon = rec.StageName === 'Closed Won';
    }
  }

  blank(obj) {
    const rec = {};
    for (const f of obj.fields) rec[f.name] = f.type === 'boolean' ? (f.defaultValue ?? false) : f.defaultValue ?? null;
    return rec;
  }

  // ------------------------------------------------------------ create
  // Full create: validate, then insert. Returns {rec} or {error}.
  create(obj, body, ctx = {}) {
    const prep = this.prepareCreate(obj, body, ctx);
    if (prep.error) return prep;
    return { rec: this.commitCreate(obj, prep) };
  }

  prepareCreate(obj, body, ctx = {}) {
    if (!obj.createable) return { error: err('INVALID_TYPE_FOR_OPERATION', `entity type cannot be inserted: ${obj.name}`) };
    const r = this.validate(obj, body, 'create', ctx);
    if (r.error) return r;
    const rec = { ...this.blank(obj), ...r.values };
    if (obj.hasOwner && rec.OwnerId == null) rec.OwnerId = ctx.userId || this.apiUserId;
    const refused = this.requiredMissing(obj, rec) || this.ruleViolation(obj, rec) || this.duplicateOf(obj, rec, r.values) ||
      this.duplicateRuleMatch(obj, rec, r.values, ctx);
    if (refused) return { error: refused };
    return { rec, changes: r.values, userId: ctx.userId || this.apiUserId };
  }

  // API creates (counted in dml stats; seeding is not).
  commitCreate(obj, prep, createdMs, modifiedMs) {
    this.dml.creates[obj.name] = (this.dml.creates[obj.name] || 0) + 1;
    return this._insert(obj, prep.rec, prep.changes, createdMs, modifiedMs, prep.userId);
  }

  _insert(obj, rec, changes, createdMs, modifiedMs, userId) {
    const full = { ...this.blank(obj), ...rec };
    full.Id = this.nextId(obj);
    if (obj.autoNumber) {
      const n = (this.autoNumbers.get(obj.name) || 0) + 1;
      this.autoNumbers.set(obj.name, n);
      const fmt = obj.autoNumber.displayFormat || '{0}';
      full[obj.autoNumber.name] = fmt.replace(/\{(0+)\}/, (_, z) => String(n).padStart(z.length, '0'));
    }
    this.derive(obj, full, changes || rec, true);
    const c = createdMs ?? this.nowMs();
    const m = modifiedMs ?? c;
    const uid = userId || this.apiUserId || full.Id;
    full.IsDeleted = false;
    full.CreatedDate = fmtDateTime(c);
    full.LastModifiedDate = fmtDateTime(m);
    full.SystemModstamp = fmtDateTime(m);
    full.CreatedById = uid;
    full.LastModifiedById = uid;
    this.tables.get(obj.name).set(full.Id, full);
    return full;
  }

  // ------------------------------------------------------------ update
  // Looks a record up for update/delete. Returns {rec} or {error} (status set).
  findForWrite(obj, idText) {
    const id = normalizeId(idText);
    if (!id) return { error: err('MALFORMED_ID', `${obj.label} ID: id value of incorrect type: ${idText}`, ['Id']) };
    if (id.slice(0, 3) !== obj.keyPrefix) {
      return { error: err('MALFORMED_ID', `${obj.label} ID: id value of incorrect type: ${idText}`, ['Id']) };
    }
    const rec = this.get(obj.name, id);
    if (!rec) return { error: err('NOT_FOUND', 'The requested resource does not exist', null, 404) };
    if (rec.IsDeleted) return { error: err('ENTITY_IS_DELETED', 'entity is deleted', [], 404) };
    return { rec };
  }

  prepareUpdate(obj, idText, body, ctx = {}) {
    if (!obj.updateable) return { error: err('INVALID_TYPE_FOR_OPERATION', `entity type cannot be updated: ${obj.name}`) };
    const found = this.findForWrite(obj, idText);
    if (found.error) return found;
    const blocked = this.writeBlocked(found.rec.Id);
    if (blocked) return { error: blocked };
    const r = this.validate(obj, body, 'update', { ...ctx, id: found.rec.Id });
    if (r.error) return r;
    const rec = { ...found.rec, ...r.values };
    const refused = this.requiredMissing(obj, rec) || this.ruleViolation(obj, rec) || this.duplicateOf(obj, rec, r.values) ||
      this.duplicateRuleMatch(obj, rec, r.values, ctx);
    if (refused) return { error: refused };
    return { id: found.rec.Id, rec, changes: r.values, userId: ctx.userId || this.apiUserId };
  }

  commitUpdate(obj, prep) {
    // The record may have changed since prepare (allOrNone batches): re-merge onto current.
    const cur = this.get(obj.name, prep.id);
    const rec = { ...cur, ...prep.changes };
    this.derive(obj, rec, prep.changes, false);
    const ts = fmtDateTime(Math.max(this.nowMs(), Date.parse(cur.SystemModstamp.replace('+0000', 'Z'))));
    rec.LastModifiedDate = ts;
    rec.SystemModstamp = ts;
    rec.LastModifiedById = prep.userId;
    this.tables.get(obj.name).set(rec.Id, rec);
    this.dml.updates[obj.name] = (this.dml.updates[obj.name] || 0) + 1;
    return rec;
  }

  update(obj, idText, body, ctx = {}) {
    const prep = this.prepareUpdate(obj, idText, body, ctx);
    if (prep.error) return prep;
    return { rec: this.commitUpdate(obj, prep) };
  }

  // ------------------------------------------------------------ delete
  prepareDelete(obj, idText) {
    if (!obj.deletable) return { error: err('INVALID_TYPE_FOR_OPERATION', `entity type cannot be deleted: ${obj.name}`) };
    const found = this.findForWrite(obj, idText);
    if (found.error) return found;
    const blocked = this.writeBlocked(found.rec.Id);
    if (blocked) return { error: blocked };
    return { id: found.rec.Id };
  }

  commitDelete(obj, id, userId) {
    const now = this.nowMs();
    const ts = fmtDateTime(now);
    const cur = this.get(obj.name, id);
    if (!cur || cur.IsDeleted) return;
    this.tables.get(obj.name).set(id, { ...cur, IsDeleted: true, SystemModstamp: ts });
    this.deletedAt.get(obj.name).set(id, now);
    this.dml.deletes[obj.name] = (this.dml.deletes[obj.name] || 0) + 1;
    // Cascades: Account deletes its Contacts and Opportunities; lookups elsewhere are cleared.
    for (const rel of obj.childRelationships) {
      const child = getObject(rel.childSObject);
      for (const r of this.tables.get(child.name).values()) {
        if (r.IsDeleted || r[rel.field] !== id) continue;
        if (rel.cascadeDelete) this.commitDelete(child, r.Id, userId);
        else {
          this.tables.get(child.name).set(r.Id, {
            ...r,
            [rel.field]: null,
            LastModifiedDate: ts,
            SystemModstamp: ts,
            LastModifiedById: userId || this.apiUserId,
          });
        }
      }
    }
  }

  delete(obj, idText, userId) {
    const prep = this.prepareDelete(obj, idText);
    if (prep.error) return prep;
    this.commitDelete(obj, prep.id, userId);
    return { id: prep.id };
  }

  // ------------------------------------------------------------ replication
  updatedIds(obj, lo, hi) {
    const a = fmtDateTime(lo);
    const b = fmtDateTime(hi);
    const rows = [];
    for (const r of this.tables.get(obj.name).values()) {
      if (!r.IsDeleted && r.SystemModstamp >= a && r.SystemModstamp <= b) rows.push(r);
    }
    rows.sort((x, y) => (x.SystemModstamp < y.SystemModstamp ? -1 : x.SystemModstamp > y.SystemModstamp ? 1 : 0));
    return rows.map((r) => r.Id);
  }

  deletedRecords(obj, lo, hi) {
    const out = [];
    for (const [id, ms] of this.deletedAt.get(obj.name)) {
      if (ms >= lo && ms <= hi) out.push({ id, deletedDate: fmtDateTime(ms) });
    }
    out.sort((x, y) => (x.deletedDate < y.deletedDate ? -1 : x.deletedDate > y.deletedDate ? 1 : 0));
    return out;
  }

  // ------------------------------------------------------------ seeding
  // Inserts generated records with timestamps spread over the past days (bulk-load style:
  // each batch of up to 200 shares one CreatedDate second). Returns counts per object.
  seedPast(counts, opts = {}) {
    return this._seed(counts, opts.when || 'past', opts);
  }

  seedNow(counts, opts = {}) {
    return this._seed(counts, 'now', opts);
  }

  _seed(counts, when, opts) {
    const r = this.rng;
    const now = this.nowMs();
    const created = {};
    const days = opts.days ?? 20;
    const spanStart = now - days * 86400000;
    const users = this.all('User').filter((u) => u.IsActive).map((u) => u.Id);
    // Parents first: accounts land in the first 40% of the span, their children after.
    const make = (objName, n, gen, from = 0.4, to = 1) => {
      if (!n) return;
      const obj = getObject(objName);
      // Timestamps: 'past' spreads batches over [now-days, now-1h); 'now' stamps now.
      const size = opts.batch || 200;
      const batches = Math.ceil(n / size);
      for (let b = 0; b < batches; b++) {
        let c;
        if (when === 'now') c = now;
        else {
          const frac = batches === 1 ? r.next() : (b + r.next() * 0.5) / batches;
          const span = days * 86400000 - 3600000;
          c = Math.floor((spanStart + (from + frac * (to - from)) * span) / 1000) * 1000;
        }
        const end = Math.min(n, (b + 1) * size);
        for (let i = b * size; i < end; i++) {
          const vals = gen(i);
          const owner = users.length ? users[i % users.length] : this.apiUserId;
          if (obj.hasOwner) vals.OwnerId = owner;
          let m = c;
          if (when !== 'now' && r.chance(0.3)) {
            m = Math.min(now - 60000, c + r.int(1, 5 * 86400) * 1000);
            m = Math.max(m, c);
          }
          const rec = { ...this.blank(obj), ...vals };
          this._insert(obj, rec, vals, c, m, owner);
        }
      }
      created[objName] = (created[objName] || 0) + n;
    };
    const liveAccounts = () => this.all('Account').filter((a) => !a.IsDeleted);
    make('Account', counts.accounts, (i) => seed.account(r, this.count('Account', true) + i), 0, 0.4);
    const accts = liveAccounts();
    const accountIds = accts.map((a) => a.Id);
    const accountDomains = accts.map((a) => (a.Website ? a.Website.replace(/^https?:\/\/(www\.)?/, '') : 'example.com'));
    const accountNames = accts.map((a) => a.Name);
    const base = (name) => this.count(name, true);
    const cBase = base('Contact');
    make('Contact', counts.contacts, (i) => seed.contact(r, cBase + i, accountIds, accountDomains));
    const lBase = base('Lead');
    make('Lead', counts.leads, (i) => seed.lead(r, lBase + i));
    const oBase = base('Opportunity');
    make('Opportunity', counts.opportunities, (i) => seed.opportunity(r, oBase + i, accountIds, accountNames, now));
    const pBase = base('Product2');
    make('Product2', counts.products, (i) => seed.product(r, pBase + i));
    const iBase = base('Invoice__c');
    make('Invoice__c', counts.invoices, (i) => seed.invoice(r, iBase + i, accountIds, now));
    return created;
  }
}

module.exports = { Store, err };
