#!/usr/bin/env bash
# The Stripe fake's fidelity, proved with Stripe's official Node library (stripe-node,
# pinned to API version 2023-08-16): see tests/fakes/stripe/README.md.
exec bash "$(dirname "$0")/../fakes/stripe/run-tests.sh"
