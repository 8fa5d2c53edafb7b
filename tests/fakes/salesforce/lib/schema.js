'use strict';
// Object and field metadata of the fake org. Everything the server validates, the
// SOQL engine type-checks and describe returns is derived from the definitions here.

const PICK = (values, defaultValue) =>
  values.map((v) => ({
    active: true,
    defaultValue: v === defaultValue,
    label: v,
    validFor: null,
    value: v,
  }));

const SOAP_TYPES = {
  id: 'tns:ID',
  reference: 'tns:ID',
  string: 'xsd:string',
  textarea: 'xsd:string',
  email: 'xsd:string',
  phone: 'xsd:string',
  url: 'xsd:string',
  picklist: 'xsd:string',
  boolean: 'xsd:boolean',
  int: 'xsd:int',
  double: 'xsd:double',
  currency: 'xsd:double',
  percent: 'xsd:double',
  date: 'xsd:date',
  datetime: 'xsd:dateTime',
};

const TEXT_TYPES = new Set(['string', 'textarea', 'email', 'phone', 'url', 'picklist']);
const NUMBER_TYPES = new Set(['int', 'double', 'currency', 'percent']);

// f(name, type, label, opts) builds one field description.
function f(name, type, label, opts = {}) {
  const custom = name.endsWith('__c');
  const isText = TEXT_TYPES.has(type);
  const length =
    opts.length ??
    (type === 'id' || type === 'reference'
      ? 18
      : type === 'email'
        ? 80
        : type === 'phone'
          ? 40
          : type === 'url'
            ? 255
            : type === 'picklist'
              ? 255
              : type === 'textarea'
                ? 32000
                : isText
                  ? 255
                  : 0);
  const system = !!opts.system;
  const createable = opts.createable ?? !system;
  const updateable = opts.updateable ?? createable;
  const boolean = type === 'boolean';
  const field = {
    aggregatable: type !== 'textarea' || length <= 255,
    autoNumber: !!opts.autoNumber,
    byteLength: isText || type === 'id' || type === 'reference' ? length * 3 : 0,
    calculated: !!opts.calculated,
    calculatedFormula: null,
    caseSensitive: false,
    createable,
    custom,
    defaultValue: boolean ? (opts.defaultValue ?? false) : (opts.defaultValue ?? null),
    defaultedOnCreate: opts.defaultedOnCreate ?? (boolean || system || !!opts.autoNumber),
    digits: type === 'int' ? (opts.digits ?? 9) : 0,
    externalId: !!opts.externalId,
    filterable: type !== 'textarea' || length <= 255,
    groupable: !NUMBER_TYPES.has(type) && type !== 'datetime' && type !== 'textarea',
    idLookup: type === 'id' || !!opts.idLookup,
    inlineHelpText: null,
    label,
    length,
    name,
    nameField: !!opts.nameField,
    nillable: opts.nillable ?? !(boolean || type === 'id' || system || opts.required),
    picklistValues: opts.picklistValues ?? [],
    precision: opts.precision ?? 0,
    referenceTo: opts.referenceTo ?? [],
    relationshipName: opts.relationshipName ?? null,
    restrictedPicklist: !!opts.restrictedPicklist,
    scale: opts.scale ?? 0,
    soapType: SOAP_TYPES[type],
    sortable: type !== 'textarea' || length <= 255,
    type,
    unique: !!opts.unique,
    updateable,
  };
  if (opts.displayFormat) field.displayFormat = opts.displayFormat; // auto-number format (not in describe)
  return field;
}

const sysFields = (owner) => {
  const list = [
    f('Id', 'id', owner === 'User' ? 'User ID' : `${owner} ID`, { system: true }),
    f('IsDeleted', 'boolean', 'Deleted', { system: true }),
  ];
  return list;
};

const auditFields = () => [
  f('CreatedDate', 'datetime', 'Created Date', { system: true }),
  f('CreatedById', 'reference', 'Created By ID', {
    system: true,
    referenceTo: ['User'],
    relationshipName: 'CreatedBy',
  }),
  f('LastModifiedDate', 'datetime', 'Last Modified Date', { system: true }),
  f('LastModifiedById', 'reference', 'Last Modified By ID', {
    system: true,
    referenceTo: ['User'],
    relationshipName: 'LastModifiedBy',
  }),
  f('SystemModstamp', 'datetime', 'System Modstamp', { system: true }),
];

const ownerField = () =>
  f('OwnerId', 'reference', 'Owner ID', {
    referenceTo: ['User'],
    relationshipName: 'Owner',
    nillable: false,
    defaultedOnCreate: true,
  });

const INDUSTRIES = [
  'Agriculture', 'Apparel', 'Banking', 'Biotechnology', 'Chemicals', 'Communications',
  'Construction', 'Consulting', 'Education', 'Electronics', 'Energy', 'Engineering',
  'Entertainment', 'Environmental', 'Finance', 'Food & Beverage', 'Government', 'Healthcare',
  'Hospitality', 'Insurance', 'Machinery', 'Manufacturing', 'Media', 'Not For Profit',
  'Recreation', 'Retail', 'Shipping', 'Technology', 'Telecommunications', 'Transportation',
  'Utilities', 'Other',
];
const LEAD_SOURCES = ['Web', 'Phone Inquiry', 'Partner Referral', 'Purchased List', 'Other'];
const SALUTATIONS = ['Mr.', 'Ms.', 'Mrs.', 'Dr.', 'Prof.'];
const RATINGS = ['Hot', 'Warm', 'Cold'];
const STAGES = [
  ['Prospecting', 10],
  ['Qualification', 10],
  ['Needs Analysis', 20],
  ['Value Proposition', 50],
  ['Id. Decision Makers', 60],
  ['Perception Analysis', 70],
  ['Proposal/Price Quote', 75],
  ['Negotiation/Review', 90],
  ['Closed Won', 100],
  ['Closed Lost', 0],
];
const LEAD_STATUSES = [
  'Open - Not Contacted',
  'Working - Contacted',
  'Closed - Converted',
  'Closed - Not Converted',
];

const OBJECTS = [
  {
    name: 'Account',
    label: 'Account',
    labelPlural: 'Accounts',
    keyPrefix: '001',
    fields: [
      ...sysFields('Account'),
      f('Name', 'string', 'Account Name', { length: 255, required: true, nameField: true }),
      f('Type', 'picklist', 'Account Type', {
        length: 255,
        picklistValues: PICK([
          'Prospect', 'Customer - Direct', 'Customer - Channel', 'Channel Partner / Reseller',
          'Installation Partner', 'Technology Partner', 'Other',
        ]),
      }),
      f('ParentId', 'reference', 'Parent Account ID', {
        referenceTo: ['Account'],
        relationshipName: 'Parent',
      }),
      f('BillingStreet', 'textarea', 'Billing Street', { length: 255 }),
      f('BillingCity', 'string', 'Billing City', { length: 40 }),
      f('BillingState', 'string', 'Billing State/Province', { length: 80 }),
      f('BillingPostalCode', 'string', 'Billing Zip/Postal Code', { length: 20 }),
      f('BillingCountry', 'string', 'Billing Country', { length: 80 }),
      f('Phone', 'phone', 'Account Phone'),
      f('Fax', 'phone', 'Account Fax'),
      f('AccountNumber', 'string', 'Account Number', { length: 40 }),
      f('Website', 'url', 'Website'),
      f('Industry', 'picklist', 'Industry', { picklistValues: PICK(INDUSTRIES) }),
      f('AnnualRevenue', 'currency', 'Annual Revenue', { precision: 18, scale: 0 }),
      f('NumberOfEmployees', 'int', 'Employees', { digits: 8 }),
      f('Rating', 'picklist', 'Account Rating', { picklistValues: PICK(RATINGS) }),
      f('Description', 'textarea', 'Account Description', { length: 32000 }),
      ownerField(),
      ...auditFields(),
    ],
  },
  {
    name: 'Contact',
    label: 'Contact',
    labelPlural: 'Contacts',
    keyPrefix: '003',
    fields: [
      ...sysFields('Contact'),
      f('AccountId', 'reference', 'Account ID', {
        referenceTo: ['Account'],
        relationshipName: 'Account',
      }),
      f('LastName', 'string', 'Last Name', { length: 80, required: true }),
      f('FirstName', 'string', 'First Name', { length: 40 }),
      f('Salutation', 'picklist', 'Salutation', { length: 40, picklistValues: PICK(SALUTATIONS) }),
      f('Name', 'string', 'Full Name', {
        length: 121,
        createable: false,
        updateable: false,
        nillable: false,
        nameField: true,
        defaultedOnCreate: false,
      }),
      f('MailingStreet', 'textarea', 'Mailing Street', { length: 255 }),
      f('MailingCity', 'string', 'Mailing City', { length: 40 }),
      f('MailingState', 'string', 'Mailing State/Province', { length: 80 }),
      f('MailingPostalCode', 'string', 'Mailing Zip/Postal Code', { length: 20 }),
      f('MailingCountry', 'string', 'Mailing Country', { length: 80 }),
      f('Phone', 'phone', 'Business Phone'),
      f('MobilePhone', 'phone', 'Mobile Phone'),
      f('Email', 'email', 'Email', { idLookup: true }),
      f('Title', 'string', 'Title', { length: 128 }),
      f('Department', 'string', 'Department', { length: 80 }),
      f('LeadSource', 'picklist', 'Lead Source', { length: 40, picklistValues: PICK(LEAD_SOURCES) }),
      f('Birthdate', 'date', 'Birthdate'),
      f('HasOptedOutOfEmail', 'boolean', 'Email Opt Out'),
      f('Description', 'textarea', 'Contact Description', { length: 32000 }),
      // a custom External ID marked Unique (case-insensitive), as integrations add one
      f('External_Id__c', 'string', 'External ID', { length: 40, externalId: true, unique: true, idLookup: true }),
      ownerField(),
      ...auditFields(),
    ],
  },
  {
    name: 'Lead',
    label: 'Lead',
    labelPlural: 'Leads',
    keyPrefix: '00Q',
    fields: [
      ...sysFields('Lead'),
      f('LastName', 'string', 'Last Name', { length: 80, required: true }),
      f('FirstName', 'string', 'First Name', { length: 40 }),
      f('Salutation', 'picklist', 'Salutation', { length: 40, picklistValues: PICK(SALUTATIONS) }),
      f('Name', 'string', 'Full Name', {
        length: 121,
        createable: false,
        updateable: false,
        nillable: false,
        nameField: true,
        defaultedOnCreate: false,
      }),
      f('Title', 'string', 'Title', { length: 128 }),
      f('Company', 'string', 'Company', { length: 255, required: true }),
      f('Street', 'textarea', 'Street', { length: 255 }),
      f('City', 'string', 'City', { length: 40 }),
      f('State', 'string', 'State/Province', { length: 80 }),
      f('PostalCode', 'string', 'Zip/Postal Code', { length: 20 }),
      f('Country', 'string', 'Country', { length: 80 }),
      f('Phone', 'phone', 'Phone'),
      f('MobilePhone', 'phone', 'Mobile Phone'),
      f('Email', 'email', 'Email', { idLookup: true }),
      f('Website', 'url', 'Website'),
      f('LeadSource', 'picklist', 'Lead Source', { length: 40, picklistValues: PICK(LEAD_SOURCES) }),
      f('Status', 'picklist', 'Status', {
        length: 40,
        nillable: false,
        defaultedOnCreate: true,
        defaultValue: 'Open - Not Contacted',
        picklistValues: PICK(LEAD_STATUSES, 'Open - Not Contacted'),
      }),
      f('Industry', 'picklist', 'Industry', { length: 40, picklistValues: PICK(INDUSTRIES) }),
      f('Rating', 'picklist', 'Rating', { length: 40, picklistValues: PICK(RATINGS) }),
      f('AnnualRevenue', 'currency', 'Annual Revenue', { precision: 18, scale: 0 }),
      f('NumberOfEmployees', 'int', 'Employees', { digits: 8 }),
      f('IsConverted', 'boolean', 'Converted', { updateable: false }),
      f('Description', 'textarea', 'Description', { length: 32000 }),
      ownerField(),
      ...auditFields(),
    ],
  },
  {
    name: 'Opportunity',
    label: 'Opportunity',
    labelPlural: 'Opportunities',
    keyPrefix: '006',
    fields: [
      ...sysFields('Opportunity'),
      f('AccountId', 'reference', 'Account ID', {
        referenceTo: ['Account'],
        relationshipName: 'Account',
      }),
      f('Name', 'string', 'Name', { length: 120, required: true, nameField: true }),
      f('Description', 'textarea', 'Description', { length: 32000 }),
      f('StageName', 'picklist', 'Stage', {
        length: 255,
        required: true,
        picklistValues: PICK(STAGES.map((s) => s[0])),
      }),
      f('Amount', 'currency', 'Amount', { precision: 18, scale: 2 }),
      f('Probability', 'percent', 'Probability (%)', {
        precision: 3,
        scale: 0,
        defaultedOnCreate: true,
      }),
      f('CloseDate', 'date', 'Close Date', { required: true }),
      f('Type', 'picklist', 'Opportunity Type', {
        picklistValues: PICK([
          'New Customer', 'Existing Customer - Upgrade', 'Existing Customer - Replacement',
          'Existing Customer - Downgrade',
        ]),
      }),
      f('LeadSource', 'picklist', 'Lead Source', { length: 40, picklistValues: PICK(LEAD_SOURCES) }),
      f('IsClosed', 'boolean', 'Closed', { createable: false, updateable: false, calculated: false }),
      f('IsWon', 'boolean', 'Won', { createable: false, updateable: false }),
      ownerField(),
      ...auditFields(),
    ],
  },
  {
    name: 'User',
    label: 'User',
    labelPlural: 'Users',
    keyPrefix: '005',
    createable: false,
    updateable: false,
    deletable: false,
    fields: [
      f('Id', 'id', 'User ID', { system: true }),
      f('Username', 'string', 'Username', { length: 80, required: true, unique: true, idLookup: true, createable: false, updateable: false }),
      f('LastName', 'string', 'Last Name', { length: 80, required: true, createable: false, updateable: false }),
      f('FirstName', 'string', 'First Name', { length: 40, createable: false, updateable: false }),
      f('Name', 'string', 'Full Name', { length: 121, createable: false, updateable: false, nillable: false, nameField: true }),
      f('Email', 'email', 'Email', { length: 128, required: true, createable: false, updateable: false }),
      f('Alias', 'string', 'Alias', { length: 8, required: true, createable: false, updateable: false }),
      f('Title', 'string', 'Title', { length: 80, createable: false, updateable: false }),
      f('IsActive', 'boolean', 'Active', { createable: false, updateable: false }),
      f('TimeZoneSidKey', 'picklist', 'Time Zone', {
        length: 40, required: true, createable: false, updateable: false, restrictedPicklist: true,
        picklistValues: PICK(['America/Los_Angeles', 'America/New_York', 'Europe/London', 'GMT']),
      }),
      f('LocaleSidKey', 'picklist', 'Locale', {
        length: 40, required: true, createable: false, updateable: false, restrictedPicklist: true,
        picklistValues: PICK(['en_US', 'en_GB', 'de_DE', 'fr_FR']),
      }),
      f('CreatedDate', 'datetime', 'Created Date', { system: true }),
      f('CreatedById', 'reference', 'Created By ID', { system: true, referenceTo: ['User'], relationshipName: 'CreatedBy' }),
      f('LastModifiedDate', 'datetime', 'Last Modified Date', { system: true }),
      f('LastModifiedById', 'reference', 'Last Modified By ID', { system: true, referenceTo: ['User'], relationshipName: 'LastModifiedBy' }),
      f('SystemModstamp', 'datetime', 'System Modstamp', { system: true }),
    ],
  },
  {
    name: 'Product2',
    label: 'Product',
    labelPlural: 'Products',
    keyPrefix: '01t',
    fields: [
      ...sysFields('Product'),
      f('Name', 'string', 'Product Name', { length: 255, required: true, nameField: true }),
      f('ProductCode', 'string', 'Product Code', { length: 255 }),
      f('Description', 'textarea', 'Product Description', { length: 4000 }),
      f('IsActive', 'boolean', 'Active'),
      f('Family', 'picklist', 'Product Family', {
        picklistValues: PICK(['Hardware', 'Software', 'Services', 'Support']),
      }),
      ...auditFields(),
    ],
  },
  {
    name: 'Invoice__c',
    label: 'Invoice',
    labelPlural: 'Invoices',
    keyPrefix: 'a00',
    custom: true,
    fields: [
      ...sysFields('Record'),
      f('Name', 'string', 'Invoice Number', {
        length: 80,
        autoNumber: true,
        createable: false,
        updateable: false,
        nillable: false,
        nameField: true,
        displayFormat: 'INV-{0000}',
      }),
      f('Account__c', 'reference', 'Account', {
        referenceTo: ['Account'],
        relationshipName: 'Account__r',
      }),
      f('Amount__c', 'currency', 'Amount', { precision: 16, scale: 2 }),
      f('Status__c', 'picklist', 'Status', {
        restrictedPicklist: true,
        defaultValue: 'Draft',
        defaultedOnCreate: true,
        picklistValues: PICK(['Draft', 'Sent', 'Paid', 'Void'], 'Draft'),
      }),
      f('Due_Date__c', 'date', 'Due Date'),
      f('Paid__c', 'boolean', 'Paid'),
      f('Notes__c', 'textarea', 'Notes', { length: 1000 }),
      ownerField(),
      ...auditFields(),
    ],
  },
];

// Child relationships for describe (cascade rules are applied by the store).
const CHILD_RELATIONSHIPS = {
  Account: [
    { childSObject: 'Contact', field: 'AccountId', relationshipName: 'Contacts', cascadeDelete: true },
    { childSObject: 'Opportunity', field: 'AccountId', relationshipName: 'Opportunities', cascadeDelete: true },
    { childSObject: 'Account', field: 'ParentId', relationshipName: 'ChildAccounts', cascadeDelete: false },
    { childSObject: 'Invoice__c', field: 'Account__c', relationshipName: 'Invoices__r', cascadeDelete: false },
  ],
};

function build() {
  const byName = new Map();
  const byLower = new Map();
  const byPrefix = new Map();
  for (const o of OBJECTS) {
    const obj = {
      name: o.name,
      label: o.label,
      labelPlural: o.labelPlural,
      keyPrefix: o.keyPrefix,
      custom: !!o.custom,
      createable: o.createable ?? true,
      updateable: o.updateable ?? true,
      deletable: o.deletable ?? true,
      fields: o.fields,
      fieldByLower: new Map(),
      relByLower: new Map(), // relationshipName (lower) -> reference field
      required: [],
      hasOwner: o.fields.some((x) => x.name === 'OwnerId'),
      childRelationships: CHILD_RELATIONSHIPS[o.name] || [],
      autoNumber: null,
    };
    for (const fld of o.fields) {
      obj.fieldByLower.set(fld.name.toLowerCase(), fld);
      if (fld.type === 'reference' && fld.relationshipName) {
        obj.relByLower.set(fld.relationshipName.toLowerCase(), fld);
      }
      if (!fld.nillable && fld.createable && !fld.defaultedOnCreate) obj.required.push(fld);
      if (fld.autoNumber) obj.autoNumber = fld;
    }
    byName.set(o.name, obj);
    byLower.set(o.name.toLowerCase(), obj);
    byPrefix.set(o.keyPrefix, obj);
  }
  return { byName, byLower, byPrefix, list: [...byName.values()] };
}

const SCHEMA = build();

function getObject(name) {
  if (typeof name !== 'string') return null;
  return SCHEMA.byLower.get(name.toLowerCase()) || null;
}

function urlsFor(obj, v) {
  const base = `/services/data/v${v}/sobjects/${obj.name}`;
  return {
    compactLayouts: `${base}/describe/compactLayouts`,
    rowTemplate: `${base}/{ID}`,
    approvalLayouts: `${base}/describe/approvalLayouts`,
    describe: `${base}/describe`,
    quickActions: `${base}/quickActions`,
    layouts: `${base}/describe/layouts`,
    sobject: base,
  };
}

function globalEntry(obj, v) {
  return {
    activateable: false,
    createable: obj.createable,
    custom: obj.custom,
    customSetting: false,
    deepCloneable: false,
    deletable: obj.deletable,
    deprecatedAndHidden: false,
    feedEnabled: !obj.custom,
    hasSubtypes: false,
    isInterface: false,
    isSubtype: false,
    keyPrefix: obj.keyPrefix,
    label: obj.label,
    labelPlural: obj.labelPlural,
    layoutable: true,
    mergeable: obj.name === 'Account' || obj.name === 'Contact' || obj.name === 'Lead',
    mruEnabled: true,
    name: obj.name,
    queryable: true,
    replicateable: true,
    retrieveable: true,
    searchable: true,
    triggerable: true,
    undeletable: obj.deletable,
    updateable: obj.updateable,
    urls: urlsFor(obj, v),
  };
}

function describe(obj, v) {
  return {
    ...globalEntry(obj, v),
    actionOverrides: [],
    childRelationships: obj.childRelationships.map((c) => ({
      cascadeDelete: c.cascadeDelete,
      childSObject: c.childSObject,
      deprecatedAndHidden: false,
      field: c.field,
      junctionIdListNames: [],
      junctionReferenceTo: [],
      relationshipName: c.relationshipName,
      restrictedDelete: false,
    })),
    compactLayoutable: true,
    defaultImplementation: null,
    extendedBy: null,
    extendsInterfaces: null,
    fields: obj.fields.map(({ displayFormat, ...fld }) => fld),
    implementedBy: null,
    implementsInterfaces: null,
    listviewable: null,
    lookupLayoutable: null,
    namedLayoutInfos: [],
    networkScopeFieldName: null,
    recordTypeInfos: [
      {
        active: true,
        available: true,
        defaultRecordTypeMapping: true,
        developerName: 'Master',
        master: true,
        name: 'Master',
        recordTypeId: '012000000000000AAA',
        urls: { layout: `/services/data/v${v}/sobjects/${obj.name}/describe/layouts/012000000000000AAA` },
      },
    ],
    searchLayoutable: true,
    sobjectDescribeOption: 'FULL',
    supportedScopes: [{ label: 'All ' + obj.labelPlural.toLowerCase(), name: 'everything' }],
  };
}

module.exports = {
  SCHEMA,
  getObject,
  describe,
  globalEntry,
  STAGES: new Map(STAGES),
  TEXT_TYPES,
  NUMBER_TYPES,
  INDUSTRIES,
  LEAD_SOURCES,
  SALUTATIONS,
  LEAD_STATUSES,
};
