#!/usr/bin/env bash
# The Salesforce fake's fidelity, proved with jsforce: see tests/fakes/salesforce/README.md.
exec bash "$(dirname "$0")/../fakes/salesforce/run-tests.sh"
