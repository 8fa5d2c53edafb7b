/* Unit tests for upstream/stripe_collections (generated from Stripe's OpenAPI spec): facts
 * from Stripe's API docs, and the shape every collection must have. */
#include <stdbool.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "upstream/provider.h"
#include "upstream/stripe_collections.h"

static const provider_field *field(const char *coll, const char *name)
{
    const provider_collection *c = provider_find(stripe_collections, coll);
    return c ? provider_field_find(c, name) : NULL;
}

/* The field exists with this type and these flags. */
static bool is(const char *coll, const char *name, enum field_type t, bool create, bool update)
{
    const provider_field *f = field(coll, name);
    return f && f->type == t && f->create == create && f->update == update;
}

static bool is_required(const char *coll, const char *name)
{
    const provider_field *f = field(coll, name);
    return f && f->required;
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static void test_list(void)
{
    static const char *const names[] = {"customer", "product", "price", "coupon", "subscription", "invoice",
                                        "payment_intent"};
    int n = 0;
    while (stripe_collections[n])
        n++;
    CHECK(n == 7, "stripe_collections lists 7 collections (got %d)", n);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const provider_collection *c = provider_find(stripe_collections, names[i]);
        CHECK(c && streq(c->name, names[i]) && streq(c->provider, "stripe"), "provider_find finds %s",
              names[i]);
    }
    CHECK(provider_find(stripe_collections, "charge") == NULL, "provider_find: no charge collection");
    CHECK(provider_find(stripe_collections, "customer") == &stripe_customer, "customer is stripe_customer");
    CHECK(provider_find(stripe_collections, "payment_intent") == &stripe_payment_intent,
          "payment_intent is stripe_payment_intent");
}

/* Every collection: paths, a description, fields with unique non-empty names, id first and
 * read-only, writable fields only where there is a write path. */
static void test_shape(void)
{
    for (const provider_collection *const *p = stripe_collections; *p; p++) {
        const provider_collection *c = *p;
        bool ok = c->list_path && strncmp(c->list_path, "/v1/", 4) == 0 && c->item_path &&
                  strncmp(c->item_path, c->list_path, strlen(c->list_path)) == 0 &&
                  streq(c->item_path + strlen(c->list_path), "/{id}");
        CHECK(ok, "%s: list path %s, item path %s", c->name, c->list_path, c->item_path);
        CHECK(!c->create_path || streq(c->create_path, c->list_path), "%s: create path is the list path",
              c->name);
        CHECK(!c->update_path || streq(c->update_path, c->item_path), "%s: update path is the item path",
              c->name);
        CHECK(!c->delete_path || streq(c->delete_path, c->item_path), "%s: delete path is the item path",
              c->name);
        CHECK(c->description && c->description[0], "%s: has a description", c->name);
        const provider_field *id = c->nfields > 0 ? &c->fields[0] : NULL;
        CHECK(id && streq(id->name, "id") && id->type == FIELD_TEXT && !id->create && !id->update &&
                  !id->required,
              "%s: %d fields, id first, text, read-only", c->name, c->nfields);
        int empty = 0, dups = 0, unsorted = 0, stray = 0, long_desc = 0;
        for (int i = 0; i < c->nfields; i++) {
            const provider_field *f = &c->fields[i];
            if (!f->name || !f->name[0]) {
                empty++;
                continue;
            }
            for (int j = 0; j < i; j++)
                if (c->fields[j].name && strcmp(c->fields[j].name, f->name) == 0)
                    dups++;
            if (i >= 2 && c->fields[i - 1].name && strcmp(c->fields[i - 1].name, f->name) >= 0)
                unsorted++;
            if ((f->create && !c->create_path) || (f->update && !c->update_path) ||
                (f->required && !f->create))
                stray++;
            if (f->description && strlen(f->description) > 300)
                long_desc++;
        }
        CHECK(empty == 0, "%s: every field has a name", c->name);
        CHECK(dups == 0, "%s: no duplicate field names (%d)", c->name, dups);
        CHECK(unsorted == 0, "%s: fields after id are sorted (%d out of order)", c->name, unsorted);
        CHECK(stray == 0, "%s: create/update/required only with a write path (%d)", c->name, stray);
        CHECK(long_desc == 0, "%s: descriptions are at most 300 bytes (%d longer)", c->name, long_desc);
    }
}

static void test_customer(void)
{
    const provider_collection *c = &stripe_customer;
    CHECK(streq(c->object, "customer"), "customer: object customer");
    CHECK(streq(c->list_path, "/v1/customers"), "customer: list path");
    CHECK(streq(c->item_path, "/v1/customers/{id}"), "customer: item path");
    CHECK(streq(c->create_path, "/v1/customers"), "customer: create path");
    CHECK(streq(c->update_path, "/v1/customers/{id}"), "customer: update path");
    CHECK(streq(c->delete_path, "/v1/customers/{id}"), "customer: delete path");
    CHECK(is("customer", "id", FIELD_TEXT, false, false), "customer.id: text, neither create nor update");
    CHECK(is("customer", "email", FIELD_TEXT, true, true), "customer.email: text, create and update");
    CHECK(is("customer", "name", FIELD_TEXT, true, true), "customer.name: text, create and update");
    CHECK(is("customer", "created", FIELD_TIMESTAMPTZ, false, false),
          "customer.created: timestamptz, read-only");
    CHECK(is("customer", "balance", FIELD_BIGINT, true, true), "customer.balance: bigint, writable");
    CHECK(is("customer", "metadata", FIELD_JSONB, true, true), "customer.metadata: jsonb, writable");
    CHECK(is("customer", "address", FIELD_JSONB, true, true), "customer.address: jsonb (a nullable $ref)");
    CHECK(is("customer", "default_source", FIELD_TEXT, false, true),
          "customer.default_source: text (expandable id), update only");
    CHECK(is("customer", "test_clock", FIELD_TEXT, true, false), "customer.test_clock: text, create only");
    CHECK(is("customer", "livemode", FIELD_BOOLEAN, false, false), "customer.livemode: boolean, read-only");
    CHECK(is("customer", "subscriptions", FIELD_JSONB, false, false), "customer.subscriptions: jsonb list");
    CHECK(field("customer", "payment_method") == NULL, "customer: create param payment_method is no field");
    CHECK(field("customer", "expand") == NULL, "customer: expand is no field");
    const provider_field *email = field("customer", "email");
    CHECK(email && streq(email->description, "The customer's email address."), "customer.email: description");
    CHECK(!is_required("customer", "email"), "customer: nothing required on create");
}

static void test_product_price_coupon(void)
{
    CHECK(streq(stripe_product.item_path, "/v1/products/{id}"), "product: item path");
    CHECK(stripe_product.delete_path != NULL, "product: can be deleted");
    CHECK(is("product", "name", FIELD_TEXT, true, true) && is_required("product", "name"),
          "product.name: text, writable, required on create");
    CHECK(is("product", "default_price", FIELD_TEXT, false, true), "product.default_price: id, update only");
    CHECK(is("product", "images", FIELD_JSONB, true, true), "product.images: jsonb array");
    CHECK(is("product", "updated", FIELD_TIMESTAMPTZ, false, false), "product.updated: timestamptz");

    CHECK(streq(stripe_price.create_path, "/v1/prices") && streq(stripe_price.update_path, "/v1/prices/{id}"),
          "price: create and update paths");
    CHECK(stripe_price.delete_path == NULL, "price: no delete path");
    CHECK(is("price", "unit_amount", FIELD_BIGINT, true, false), "price.unit_amount: bigint, not updatable");
    CHECK(is("price", "currency", FIELD_TEXT, true, false) && is_required("price", "currency"),
          "price.currency: required on create, not updatable");
    CHECK(is("price", "active", FIELD_BOOLEAN, true, true), "price.active: updatable");
    CHECK(is("price", "metadata", FIELD_JSONB, true, true), "price.metadata: updatable");
    CHECK(is("price", "nickname", FIELD_TEXT, true, true), "price.nickname: updatable");
    CHECK(is("price", "product", FIELD_TEXT, true, false), "price.product: expandable id, create only");
    CHECK(is("price", "recurring", FIELD_JSONB, true, false), "price.recurring: jsonb, create only");
    CHECK(is("price", "type", FIELD_TEXT, false, false), "price.type: text enum, read-only");

    CHECK(streq(stripe_coupon.delete_path, "/v1/coupons/{id}"), "coupon: delete path");
    CHECK(is("coupon", "percent_off", FIELD_NUMERIC, true, false),
          "coupon.percent_off: numeric, create only");
    CHECK(is("coupon", "name", FIELD_TEXT, true, true), "coupon.name: updatable");
    CHECK(is("coupon", "redeem_by", FIELD_TIMESTAMPTZ, true, false), "coupon.redeem_by: timestamptz, create");
    CHECK(is("coupon", "valid", FIELD_BOOLEAN, false, false), "coupon.valid: read-only");
}

static void test_subscription_readonly(void)
{
    const provider_collection *s = &stripe_subscription;
    CHECK(streq(s->item_path, "/v1/subscriptions/{id}"), "subscription: item path");
    CHECK(streq(s->delete_path, "/v1/subscriptions/{id}"), "subscription: delete (cancel) path");
    CHECK(is("subscription", "customer", FIELD_TEXT, true, false) && is_required("subscription", "customer"),
          "subscription.customer: id, required on create, not updatable");
    CHECK(is("subscription", "current_period_end", FIELD_TIMESTAMPTZ, false, false),
          "subscription.current_period_end: timestamptz, read-only");
    CHECK(is("subscription", "cancel_at_period_end", FIELD_BOOLEAN, true, true),
          "subscription.cancel_at_period_end: writable");
    CHECK(is("subscription", "items", FIELD_JSONB, true, true), "subscription.items: jsonb");

    const provider_collection *ro[] = {&stripe_invoice, &stripe_payment_intent};
    for (int i = 0; i < 2; i++) {
        const provider_collection *c = ro[i];
        CHECK(!c->create_path && !c->update_path && !c->delete_path, "%s: read-only (no write paths)",
              c->name);
        int writable = 0;
        for (int j = 0; j < c->nfields; j++)
            writable += c->fields[j].create || c->fields[j].update || c->fields[j].required;
        CHECK(writable == 0, "%s: no writable fields (%d)", c->name, writable);
    }
    CHECK(streq(stripe_invoice.item_path, "/v1/invoices/{id}"), "invoice: item path");
    CHECK(streq(stripe_payment_intent.list_path, "/v1/payment_intents"), "payment_intent: list path");
    CHECK(is("invoice", "amount_due", FIELD_BIGINT, false, false), "invoice.amount_due: bigint");
    CHECK(is("invoice", "lines", FIELD_JSONB, false, false), "invoice.lines: jsonb");
    CHECK(is("payment_intent", "amount", FIELD_BIGINT, false, false), "payment_intent.amount: bigint");
    CHECK(is("payment_intent", "customer", FIELD_TEXT, false, false), "payment_intent.customer: id");
    const provider_field *amount = field("payment_intent", "amount");
    CHECK(amount && amount->description && strstr(amount->description, "\302\245100"),
          "payment_intent.amount: description keeps its UTF-8 (yen sign)");
}

int main(void)
{
    test_list();
    test_shape();
    test_customer();
    test_product_price_coupon();
    test_subscription_readonly();
    return unit_done();
}
