#!/bin/bash
# Start Lumos Studio; the first start installs its dependencies into .venv
cd "$(dirname "$0")/../.." || exit 1
exec python3 bootstrap.py app
