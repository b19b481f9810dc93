#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image (Ubuntu). The autograder zip holds
# this file, run_autograder and a copy of the minivit repository in minivit/; Gradescope unpacks it
# into /autograder/source/.
set -euo pipefail
apt-get update -q
apt-get install -y -q python3 python3-pip python3-venv
python3 -m pip install --break-system-packages /autograder/source/minivit \
    || python3 -m pip install /autograder/source/minivit
