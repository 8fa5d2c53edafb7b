'use strict';
// Salesforce record ids: 3-char key prefix, 2-char instance, 1 reserved char, 9 base-62
// digits (15 case-sensitive chars), then the 3-char case-safe suffix that makes 18.

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SUFFIX = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';
const INSTANCE = '5g';

function suffix(id15) {
  let out = '';
  for (let chunk = 0; chunk < 3; chunk++) {
    let n = 0;
    for (let i = 0; i < 5; i++) {
      const c = id15.charCodeAt(chunk * 5 + i);
      if (c >= 65 && c <= 90) n |= 1 << i;
    }
    out += SUFFIX[n];
  }
  return out;
}

function base62(n, width) {
  let s = '';
  while (n > 0) {
    s = B62[n % 62] + s;
    n = Math.floor(n / 62);
  }
  return s.padStart(width, '0');
}

// Ids grow monotonically (like real ones within a pod) but start at a per-prefix offset and
// step by 37, so they mix digits, upper and lower case like real ids do.
function prefixBase(prefix) {
  let h = 2166136261;
  for (let i = 0; i < prefix.length; i++) h = Math.imul(h ^ prefix.charCodeAt(i), 16777619) >>> 0;
  return (h % 3000000) * 62 ** 3 + 62 ** 6 * 40;
}

function makeId(prefix, counter) {
  const id15 = prefix + INSTANCE + '0' + base62(prefixBase(prefix) + counter * 37, 9);
  return id15 + suffix(id15);
}

const ID_SHAPE = /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/;

// Returns the 18-char form of a 15/18-char id, or null when it is not a valid id.
function normalizeId(s) {
  if (typeof s !== 'string' || !ID_SHAPE.test(s)) return null;
  if (s.length === 15) return s + suffix(s);
  const id15 = s.slice(0, 15);
  // The suffix is case-insensitive; a wrong suffix makes the id invalid.
  if (suffix(id15) !== s.slice(15).toUpperCase()) return null;
  return id15 + suffix(id15);
}

function looksLikeId(s) {
  return typeof s === 'string' && ID_SHAPE.test(s);
}

module.exports = { makeId, normalizeId, looksLikeId, suffix, base62 };
