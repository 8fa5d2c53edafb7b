'use strict';
// Deterministic, realistic-looking org data. Values are field maps as a client would send
// them; the store stamps ids, audit fields and derived fields.

const { INDUSTRIES, LEAD_SOURCES, SALUTATIONS, LEAD_STATUSES, STAGES } = require('./schema');

function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
  };
}

const FIRST = [
  'James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael', 'Linda', 'David',
  'Elizabeth', 'William', 'Barbara', 'Richard', 'Susan', 'Joseph', 'Jessica', 'Thomas', 'Sarah',
  'Charles', 'Karen', 'Christopher', 'Lisa', 'Daniel', 'Nancy', 'Matthew', 'Betty', 'Anthony',
  'Margaret', 'Mark', 'Sandra', 'Priya', 'Wei', 'Aisha', 'Mateo', 'Sofia', 'Hiroshi', 'Yuki',
  'Olga', 'Lars', 'Ingrid', 'Jamal', 'Fatima', 'Diego', 'Chloé', 'François', 'Zoë', 'Siobhan',
  'Nikolai', 'Ana', 'Kwame',
];
const LAST = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez',
  'Martinez', 'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore',
  'Jackson', 'Martin', 'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez',
  'Lewis', 'Robinson', 'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen',
  'Hill', 'Flores', "O'Brien", 'Müller', 'Kowalski', 'Nakamura', 'Patel', 'Okafor', 'Andersson',
  'Dubois', 'Rossi', 'van der Berg',
];
const CO_A = [
  'Acme', 'Globex', 'Initech', 'Umbrella', 'Stark', 'Wayne', 'Wonka', 'Tyrell', 'Cyberdyne',
  'Soylent', 'Hooli', 'Vandelay', 'Pied Piper', 'Massive Dynamic', 'Aperture', 'Oscorp', 'Gringotts',
  'Blue Sun', 'Monarch', 'Dunder Mifflin', 'Prestige', 'Nakatomi', 'Virtucon', 'Gekko', 'Sterling',
];
const CO_B = ['Corp', 'Inc.', 'LLC', 'Industries', 'Systems', 'Holdings', 'Labs', 'Group', 'Partners', 'Ltd'];
const CITIES = [
  ['San Francisco', 'CA', '94105', 'USA'], ['New York', 'NY', '10001', 'USA'], ['Austin', 'TX', '78701', 'USA'],
  ['Chicago', 'IL', '60601', 'USA'], ['Seattle', 'WA', '98101', 'USA'], ['Boston', 'MA', '02110', 'USA'],
  ['Denver', 'CO', '80202', 'USA'], ['Atlanta', 'GA', '30303', 'USA'], ['London', null, 'EC1A 1BB', 'United Kingdom'],
  ['Paris', null, '75001', 'France'], ['Berlin', null, '10115', 'Germany'], ['Toronto', 'ON', 'M5H 2N2', 'Canada'],
  ['Sydney', 'NSW', '2000', 'Australia'], ['Tokyo', null, '100-0001', 'Japan'], ['Dublin', null, 'D02 XY45', 'Ireland'],
];
const STREETS = ['Market St', 'Main St', 'Oak Ave', 'Pine St', 'Maple Dr', 'Cedar Ln', 'Elm St', 'Broadway', 'Lake Shore Dr', 'Mission St'];
const TITLES = [
  'CEO', 'CFO', 'CTO', 'VP Sales', 'VP Marketing', 'Director of Engineering', 'Account Manager',
  'Sales Representative', 'Procurement Manager', 'Operations Manager', 'Software Engineer',
  'Product Manager', 'Office Manager', 'Head of Finance', null,
];
const DEPTS = ['Sales', 'Marketing', 'Engineering', 'Finance', 'Operations', 'Procurement', 'IT', null];
const PRODUCTS = [
  ['GenWatt Diesel 10kW', 'GC1020', 'Hardware'], ['GenWatt Propane 100kW', 'GC5040', 'Hardware'],
  ['Installation: Industrial - High', 'IN7080', 'Services'], ['SLA: Gold', 'SL9060', 'Support'],
  ['Analytics Cloud License', 'SW1001', 'Software'], ['SLA: Silver', 'SL9050', 'Support'],
  ['Training: Onsite (per day)', 'TR2001', 'Services'], ['Edge Gateway Appliance', 'HW3003', 'Hardware'],
];

const ascii = (s) => s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[^A-Za-z]/g, '').toLowerCase();
const phone = (r) => `(${r.int(201, 989)}) 555-${String(r.int(0, 9999)).padStart(4, '0')}`;
const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);

function account(r, i) {
  const name = i < CO_A.length * CO_B.length
    ? `${CO_A[i % CO_A.length]} ${CO_B[Math.floor(i / CO_A.length) % CO_B.length]}`
    : `${r.pick(CO_A)} ${r.pick(CO_B)} ${i}`;
  const [city, state, zip, country] = r.pick(CITIES);
  const domain = ascii(name.split(' ')[0]) + '.example.com';
  return {
    Name: name,
    Type: r.pick(['Prospect', 'Customer - Direct', 'Customer - Channel', 'Technology Partner']),
    BillingStreet: `${r.int(1, 9999)} ${r.pick(STREETS)}`,
    BillingCity: city,
    BillingState: state,
    BillingPostalCode: zip,
    BillingCountry: country,
    Phone: phone(r),
    AccountNumber: `CD${String(100000 + i * 7919).slice(-6)}`,
    Website: `https://www.${domain}`,
    Industry: r.pick(INDUSTRIES),
    AnnualRevenue: r.int(1, 500) * 100000,
    NumberOfEmployees: r.int(5, 20000),
    Rating: r.pick(['Hot', 'Warm', 'Cold', null]),
    Description: r.chance(0.3) ? `Key account in ${city}.` : null,
  };
}

function contact(r, i, accountIds, accountDomains) {
  const first = r.pick(FIRST);
  const last = r.pick(LAST);
  const ai = accountIds.length ? i % accountIds.length : -1;
  const domain = ai >= 0 ? accountDomains[ai] : 'example.org';
  const [city, state, zip, country] = r.pick(CITIES);
  return {
    AccountId: ai >= 0 ? accountIds[ai] : null,
    FirstName: first,
    LastName: last,
    Salutation: r.chance(0.5) ? r.pick(SALUTATIONS) : null,
    Email: `${ascii(first)}.${ascii(last)}${i}@${domain}`,
    Phone: phone(r),
    MobilePhone: r.chance(0.6) ? phone(r) : null,
    Title: r.pick(TITLES),
    Department: r.pick(DEPTS),
    LeadSource: r.chance(0.7) ? r.pick(LEAD_SOURCES) : null,
    MailingStreet: `${r.int(1, 9999)} ${r.pick(STREETS)}`,
    MailingCity: city,
    MailingState: state,
    MailingPostalCode: zip,
    MailingCountry: country,
    Birthdate: r.chance(0.4) ? isoDate(Date.UTC(r.int(1955, 2000), r.int(0, 11), r.int(1, 28))) : null,
    HasOptedOutOfEmail: r.chance(0.1),
  };
}

function lead(r, i) {
  const first = r.pick(FIRST);
  const last = r.pick(LAST);
  const company = `${r.pick(CO_A)} ${r.pick(CO_B)}`;
  const [city, state, zip, country] = r.pick(CITIES);
  return {
    FirstName: first,
    LastName: last,
    Company: company,
    Title: r.pick(TITLES),
    Email: `${ascii(first)}.${ascii(last)}${i}@${ascii(company.split(' ')[0])}.example.net`,
    Phone: phone(r),
    City: city,
    State: state,
    PostalCode: zip,
    Country: country,
    LeadSource: r.pick(LEAD_SOURCES),
    Status: r.pick(LEAD_STATUSES.slice(0, 2)),
    Industry: r.pick(INDUSTRIES),
    Rating: r.pick(['Hot', 'Warm', 'Cold']),
    NumberOfEmployees: r.int(1, 5000),
  };
}

function opportunity(r, i, accountIds, accountNames, now) {
  const ai = accountIds.length ? i % accountIds.length : -1;
  const stage = r.pick([...STAGES.keys()]);
  return {
    AccountId: ai >= 0 ? accountIds[ai] : null,
    Name: `${ai >= 0 ? accountNames[ai] : 'New'} - ${r.pick(['Expansion', 'Renewal', 'New Business', 'Pilot', 'Upgrade'])}`,
    StageName: stage,
    Amount: r.int(5, 500) * 1000,
    CloseDate: isoDate(now + r.int(-60, 120) * 86400000),
    Type: r.pick(['New Customer', 'Existing Customer - Upgrade', 'Existing Customer - Replacement']),
    LeadSource: r.pick(LEAD_SOURCES),
  };
}

function product(r, i) {
  const p = PRODUCTS[i % PRODUCTS.length];
  return {
    Name: i < PRODUCTS.length ? p[0] : `${p[0]} (${i})`,
    ProductCode: i < PRODUCTS.length ? p[1] : `${p[1]}-${i}`,
    Family: p[2],
    IsActive: r.chance(0.85),
    Description: `${p[0]} — standard catalog item.`,
  };
}

function invoice(r, i, accountIds, now) {
  const status = r.pick(['Draft', 'Sent', 'Paid', 'Void']);
  return {
    Account__c: accountIds.length ? accountIds[i % accountIds.length] : null,
    Amount__c: r.int(10000, 2500000) / 100,
    Status__c: status,
    Due_Date__c: isoDate(now + r.int(-30, 60) * 86400000),
    Paid__c: status === 'Paid',
    Notes__c: r.chance(0.3) ? 'Net 30.' : null,
  };
}

const USERS = [
  { Username: 'integration@apigres-fake.example', FirstName: 'Integration', LastName: 'User', Email: 'integration@apigres-fake.example', Alias: 'integ', Title: 'API Integration', IsActive: true, TimeZoneSidKey: 'GMT', LocaleSidKey: 'en_US' },
  { Username: 'admin@apigres-fake.example', FirstName: 'Ada', LastName: 'Admin', Email: 'ada.admin@apigres-fake.example', Alias: 'aadmin', Title: 'System Administrator', IsActive: true, TimeZoneSidKey: 'America/Los_Angeles', LocaleSidKey: 'en_US' },
  { Username: 'former.rep@apigres-fake.example', FirstName: 'Fred', LastName: 'Former', Email: 'fred.former@apigres-fake.example', Alias: 'fformer', Title: 'Sales Representative', IsActive: false, TimeZoneSidKey: 'America/New_York', LocaleSidKey: 'en_US' },
];

module.exports = { prng, account, contact, lead, opportunity, product, invoice, USERS, ascii };
